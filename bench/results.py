"""Scenario results: figures, checks against targets, machine description, JSON files."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal


@dataclass
class Check:
    """One target: ``value op limit``."""

    name: str
    value: float
    op: Literal["<=", ">="]
    limit: float
    unit: str = ""

    @property
    def passed(self) -> bool:
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit

    def line(self) -> str:
        mark = "PASS" if self.passed else "MISS"
        target = f"{self.op} {self.limit:,.3g}{self.unit}"
        return f"[{mark}] {self.name}: {self.value:,.3g}{self.unit} (target {target})"


@dataclass
class Result:
    """What one scenario measured."""

    scenario: str
    figures: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    commands: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def check(
        self, name: str, value: float, op: Literal["<=", ">="], limit: float, unit: str = ""
    ) -> None:
        """Record a target check."""
        self.checks.append(Check(name, value, op, limit, unit))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for check, raw in zip(self.checks, data["checks"], strict=True):
            raw["passed"] = check.passed
        return data


def machine() -> dict[str, Any]:
    """The machine and software the figures come from."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in ("aiohttp", "uvloop", "orjson", "lucent_ws"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "-"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
        "loadavg_at_start": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def save(result: Result, out_dir: Path) -> Path:
    """Write ``result`` as JSON into ``out_dir``; return the file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{result.scenario}.json"
    path.write_text(json.dumps(result.to_json(), indent=2, default=str) + "\n")
    return path
