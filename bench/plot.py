"""The PNG of the sweep scenario: deliveries/s and p99 latency against subscribers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

STYLE = {"lucent_ws": ("tab:blue", "o"), "naive": ("tab:red", "s")}


def plot_sweep(result: dict[str, Any], path: Path) -> None:
    """Draw the two panels of a sweep result (as saved JSON) into ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rate_ax, p99_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, points in result["figures"].items():
        sizes = sorted(int(n) for n in points)
        color, marker = STYLE.get(name, ("tab:gray", "^"))
        rates = [points[str(n)]["deliveries_per_s"] / 1000 for n in sizes]
        p99 = [points[str(n)]["p99_ms"] for n in sizes]
        rate_ax.plot(sizes, rates, marker=marker, color=color, label=name)
        p99_ax.plot(sizes, p99, marker=marker, color=color, label=name)
    rate_ax.set(xscale="log", xlabel="subscribers in the room", ylabel="thousand deliveries/s")
    rate_ax.set_title("Throughput, 8 broadcasts in flight")
    p99_ax.set(xscale="log", yscale="log", xlabel="subscribers in the room", ylabel="p99 (ms)")
    p99_ax.set_title("End-to-end p99, one broadcast at a time")
    for ax in (rate_ax, p99_ax):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle("Server on one core, load client on the other, compression off", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
