"""Command line: choose scenarios, pin CPUs, run them in turn, save and summarise results."""

from __future__ import annotations

import argparse
import json
import time
import traceback
from pathlib import Path

from bench import proc
from bench.context import Context
from bench.progress import say
from bench.quiet import wait_quiet
from bench.report import summary_markdown
from bench.results import Result, machine, save
from bench.scenarios import SCENARIOS
from bench.servers import ROOT, SERVERS

RESULTS = ROOT / "bench" / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "scenarios", nargs="*", default=["all"],
        help="'all', 'list', 'plot RESULT.json', or scenario names: " + ", ".join(SCENARIOS),
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="shorter phases (smoke run)")
    parser.add_argument("--server-cpu", type=int, default=0, help="CPU the server is pinned to")
    parser.add_argument("--client-cpu", type=int, default=1, help="CPU the load client uses")
    parser.add_argument("--out", type=Path, help="results directory (default: timestamped)")
    parser.add_argument(
        "--only", default="", help="comma-separated servers to run: " + ", ".join(SERVERS)
    )
    parser.add_argument(
        "--plot", type=Path, default=ROOT / "docs" / "fanout.png",
        help="where the sweep scenario writes its PNG",
    )  # fmt: skip
    return parser.parse_args(argv)


async def run_all(ctx: Context, names: list[str]) -> list[Result]:
    results: list[Result] = []
    for name in names:
        scenario = SCENARIOS[name]
        say(f"== {name}: {scenario.summary.strip().splitlines()[0]}")
        await wait_quiet()
        start = time.monotonic()
        try:
            result = await scenario.run(ctx)
        except Exception:
            traceback.print_exc()
            result = Result(name, notes=["failed: " + traceback.format_exc(limit=3)])
        result.seconds = round(time.monotonic() - start, 1)
        save(result, ctx.out_dir)
        for check in result.checks:
            say("   " + check.line())
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names: list[str] = args.scenarios
    if names == ["list"]:
        for scenario in SCENARIOS.values():
            print(f"{scenario.name:10} {scenario.summary.strip().splitlines()[0]}")
        return 0
    if names and names[0] == "plot":
        from bench.plot import plot_sweep

        for path in names[1:]:
            plot_sweep(json.loads(Path(path).read_text()), args.plot)
        return 0
    if "all" in names:
        names = list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        say(f"unknown scenario(s): {', '.join(unknown)}; try: python -m bench list")
        return 2
    out = args.out or RESULTS / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    (out / "machine.json").write_text(json.dumps(machine(), indent=2) + "\n")
    proc.raise_nofile()
    proc.pin_self(args.client_cpu)
    ctx = Context(
        server_cpu=args.server_cpu,
        client_cpu=args.client_cpu,
        out_dir=out,
        quick=args.quick,
        plot_path=args.plot,
        only=frozenset(filter(None, args.only.split(","))),
    )
    import uvloop

    results = uvloop.run(run_all(ctx, names))
    summary = summary_markdown(results, machine())
    (out / "summary.md").write_text(summary)
    latest = RESULTS / "latest"
    if latest.is_symlink() or not latest.exists():
        latest.unlink(missing_ok=True)
        latest.symlink_to(out.resolve())
    say("\n" + summary)
    say(f"results: {out}")
    return 1 if any(r.notes and r.notes[0].startswith("failed") for r in results) else 0
