"""Every public name is documented, and the documentation site shows it.

Docstrings are read with griffe, the same static reader the site's API reference
uses, so an attribute's docstring (a string after ``NAME = ...``) counts as it does
on the site. The site itself is built once, strictly, into a temporary directory.
"""

from __future__ import annotations

import html
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import griffe
import pytest

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"
PUBLIC_MODULES = (
    "lucent_ws",
    "lucent_ws.admin",
    "lucent_ws.cluster",
    "lucent_ws.broker",
    "lucent_ws.broker.redis",
    "lucent_ws.broker.memory",
    "lucent_ws.client",
)
"""Modules whose ``__all__`` is public API; the reference names things through them."""

_DIRECTIVE = re.compile(r"^::: ([\w.]+)", re.MULTILINE)


def _public_names() -> list[tuple[str, str]]:
    names = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        names += [(module_name, name) for name in module.__all__]
    return names


PUBLIC_NAMES = _public_names()


@pytest.fixture(scope="module")
def package() -> griffe.Module:
    loaded = griffe.load("lucent_ws", search_paths=[str(ROOT)], resolve_aliases=True)
    assert isinstance(loaded, griffe.Module)
    return loaded


def _lookup(package: griffe.Module, module_name: str, name: str) -> griffe.Object:
    submodule = module_name.removeprefix("lucent_ws").lstrip(".")
    found = package[f"{submodule}.{name}" if submodule else name]
    return found.final_target if isinstance(found, griffe.Alias) else found


def _undocumented_members(obj: griffe.Object) -> list[str]:
    """Public methods and properties of a class that have no docstring."""
    missing = []
    for member_name, member in obj.members.items():
        if member_name.startswith("_") or isinstance(member, griffe.Alias):
            continue
        if (member.is_function or "property" in member.labels) and not member.docstring:
            missing.append(member_name)
    return missing


@pytest.mark.parametrize(("module_name", "name"), PUBLIC_NAMES, ids=lambda v: str(v))
def test_public_name_has_a_docstring(package: griffe.Module, module_name: str, name: str) -> None:
    obj = _lookup(package, module_name, name)
    text = obj.docstring.value.strip() if obj.docstring is not None else ""
    assert text, f"{module_name}.{name} ({obj.path}) has no docstring"
    if obj.is_class:
        assert not _undocumented_members(obj), (
            f"public members of {obj.path} without a docstring: {_undocumented_members(obj)}"
        )


def _rendered() -> set[str]:
    return {
        ident
        for page in sorted(REFERENCE.glob("*.md"))
        for ident in _DIRECTIVE.findall(page.read_text(encoding="utf-8"))
    }


def _same_object(module: ModuleType, name: str, ident: str) -> bool:
    """True if ``ident`` (``package.NAME``) is another public path to ``module.name``."""
    owner, _, attr = ident.rpartition(".")
    if owner not in PUBLIC_MODULES:
        return False
    other = importlib.import_module(owner)
    return attr == name and getattr(other, attr, None) is getattr(module, name)


@pytest.mark.parametrize(("module_name", "name"), PUBLIC_NAMES, ids=lambda v: str(v))
def test_public_name_is_in_the_reference(module_name: str, name: str) -> None:
    rendered = _rendered()
    module = importlib.import_module(module_name)
    assert f"{module_name}.{name}" in rendered or any(
        _same_object(module, name, ident) for ident in rendered
    ), f"no '::: {module_name}.{name}' in docs/reference/*.md"


def test_reference_names_things_by_their_public_path() -> None:
    # A module split must not break the reference: no `::: lucent_ws.manager.X`.
    public = {f"{module}.{name}" for module, name in PUBLIC_NAMES} | set(PUBLIC_MODULES)
    internal = sorted(_rendered() - public)
    assert not internal, f"reference pages name internal paths: {internal}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation site, built with ``mkdocs build --strict``."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"strict docs build failed:\n{result.stderr[-4000:]}"
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING")]
    assert not warnings, warnings
    return out


def _text(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def _words(docstring: str) -> str:
    return " ".join(docstring.replace("``", "").split())


def test_manager_page_shows_broadcast_to_room_with_its_docstring(site: Path) -> None:
    from lucent_ws import WebSocketManager

    page = (site / "reference" / "manager.html").read_text(encoding="utf-8")
    anchor = 'id="lucent_ws.WebSocketManager.broadcast_to_room"'
    assert anchor in page, "no broadcast_to_room entry on the manager's reference page"
    # From this entry's heading to the next entry's heading.
    entry = _text(page.split(anchor, 1)[1].split('class="doc doc-heading"', 2)[1])
    doc = WebSocketManager.broadcast_to_room.__doc__ or ""
    first_paragraph = _words(doc.strip().split("\n\n")[0])
    assert first_paragraph, "broadcast_to_room has no docstring"
    print(f"FIGURE broadcast_to_room entry: {entry[:160]!r}")
    # Markup splits words from punctuation ("exclude ."): compare without whitespace.
    assert re.sub(r"\s", "", first_paragraph) in re.sub(r"\s", "", entry)


def test_admin_api_page_covers_every_route_of_the_openapi_document(site: Path) -> None:
    from lucent_ws import WebSocketManager
    from lucent_ws.admin import ADMIN_KEY, create_admin_app
    from lucent_ws.admin.openapi import build_spec

    spec = build_spec(create_admin_app(WebSocketManager(), token="t")[ADMIN_KEY].routes)
    markup = (site / "reference" / "admin-api.html").read_text(encoding="utf-8")
    page = _text(markup)
    headings = {
        _text(heading).rstrip("¶ ") for heading in re.findall(r"<h3[^>]*>(.*?)</h3>", markup)
    }
    operations = [
        f"{method.upper()} {path}" for path, ops in spec["paths"].items() for method in ops
    ]
    missing = [op for op in operations if op not in headings]
    schemas = list(spec["components"]["schemas"])
    print(f"FIGURE admin API page: {len(operations)} operations, {len(schemas)} schemas")
    assert not missing, f"operations missing from the admin API page: {missing}"
    assert all(name in page for name in schemas)
    assert json.dumps(spec["info"]["title"]).strip('"') in page


def test_operating_page_lists_every_command_line_flag(site: Path) -> None:
    helptext = subprocess.run(
        [sys.executable, "-m", "lucent_ws", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    flags = sorted(set(re.findall(r"(--[a-z][a-z-]+)", helptext)))
    page = _text((site / "guides" / "operating.html").read_text(encoding="utf-8"))
    print(f"FIGURE operating page: {len(flags)} flags")
    assert flags
    assert [flag for flag in flags if flag not in page] == []
