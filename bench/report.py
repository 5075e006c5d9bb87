"""Markdown summary of a run: checks against targets, then each scenario's figures."""

from __future__ import annotations

from typing import Any

from bench.results import Result


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _table(rows: dict[str, dict[str, Any]]) -> list[str]:
    keys: list[str] = []
    for row in rows.values():
        keys.extend(k for k in row if k not in keys and not isinstance(row[k], dict | list))
    lines = ["| | " + " | ".join(rows) + " |", "|---" * (len(rows) + 1) + "|"]
    for key in keys:
        lines.append(f"| {key} | " + " | ".join(_fmt(r.get(key, "")) for r in rows.values()) + " |")
    return lines


def summary_markdown(results: list[Result], machine: dict[str, Any]) -> str:
    """The run as Markdown."""
    lines = [
        f"Machine: {machine['cpu']}, {machine['cores']} cores, Linux {machine['kernel']}, "
        f"Python {machine['python']}, load average {machine['loadavg_at_start'][0]:.2f}",
        "",
        "| scenario | target | figure | result |",
        "|---|---|---|---|",
    ]
    for result in results:
        for check in result.checks:
            lines.append(
                f"| {result.scenario} | {check.name} {check.op} {_fmt(check.limit)}{check.unit} "
                f"| {_fmt(check.value)}{check.unit} | {'pass' if check.passed else 'MISS'} |"
            )
    for result in results:
        lines += ["", f"### {result.scenario} ({result.seconds:.0f} s)", ""]
        rows = {k: v for k, v in result.figures.items() if isinstance(v, dict)}
        flat = {k: v for k, v in result.figures.items() if not isinstance(v, dict)}
        if rows:
            nested = all(isinstance(v, dict) for row in rows.values() for v in row.values())
            if nested:
                for name, sub in rows.items():
                    lines += [f"{name}:", "", *_table(sub), ""]
            else:
                lines += _table(rows)
        lines += [f"- {k}: {_fmt(v)}" for k, v in flat.items()]
        lines += [f"- note: {n}" for n in result.notes]
    return "\n".join(lines) + "\n"
