"""The layering holds: a pure core without aiohttp, nothing imported from the package root."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lucent_ws"
PURE = [
    "codes.py",
    "config.py",
    "errors.py",
    "connection.py",
    "hub.py",
    "outbox.py",
    "closing.py",
    "heartbeat.py",
    "stats.py",
    "cluster.py",
    "replica.py",
    "manager.py",
    "node.py",
    "delivery.py",
    "envelope.py",
    "hooks.py",
    "session.py",
    "protocol.py",
    "replies.py",
    "rules.py",
    "streams.py",
    "history_requests.py",
    "frames.py",
    "jsoncodec.py",
    "broker/backend.py",
    "broker/replication.py",
    "broker/membership.py",
    "broker/queue.py",
    "broker/wire.py",
    "broker/memory.py",
    "policy.py",
    "presence.py",
    "presence_hub.py",
    "history.py",
    "ring.py",
    "recovery.py",
    "resume.py",
    "sequencer.py",
    "history_node.py",
    "shared_reads.py",
    "broker/history.py",
    "broker/snapshots.py",
]


def imports(path: Path) -> list[tuple[str, int]]:
    """Every module a file imports, with the relative level (0: absolute)."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend((alias.name, 0) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level))
    return found


@pytest.mark.parametrize("module", PURE)
def test_the_core_never_imports_aiohttp(module: str) -> None:
    names = [name for name, level in imports(PACKAGE / module) if level == 0]
    assert not [name for name in names if name.split(".")[0] == "aiohttp"], module


def modules_of(package: Path) -> set[str]:
    return {p.stem for p in package.glob("*.py")} | {
        p.name for p in package.iterdir() if p.is_dir()
    }


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=str)
def test_nothing_is_imported_from_the_package_root(path: Path) -> None:
    # ``from .. import protocol`` names a module; ``from .. import ws_manager`` reaches
    # upward into lucent_ws/__init__.py, which imports everything.
    if path.name == "__init__.py":
        return
    depth = len(path.relative_to(PACKAGE).parts)  # lucent_ws/x.py: 1, lucent_ws/a/x.py: 2
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == depth and not node.module:
            names = {alias.name for alias in node.names}
            assert names <= modules_of(PACKAGE), f"{path}: from the package root: {names}"
