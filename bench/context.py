"""What every scenario receives: CPU assignment, output directory, run length."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.servers import ServerProcess, ServerSpec


@dataclass
class Context:
    """Settings of one benchmark invocation."""

    server_cpu: int
    client_cpu: int
    out_dir: Path
    quick: bool = False
    plot_path: Path | None = None
    only: frozenset[str] = frozenset()

    def wants(self, spec: ServerSpec) -> bool:
        """Whether ``spec`` takes part (all servers unless ``--only`` narrowed them)."""
        return not self.only or spec.name in self.only

    def server(self, spec: ServerSpec, extra: Sequence[str] = ()) -> ServerProcess:
        """A server process pinned to the server CPU, logging into the output directory."""
        return ServerProcess(spec, self.server_cpu, self.out_dir / "logs", extra)

    def seconds(self, full: float) -> float:
        """A phase length: ``full`` normally, a third of it (at least 1 s) with ``--quick``."""
        return max(1.0, full / 3) if self.quick else full
