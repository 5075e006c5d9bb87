"""Griffe extension: the docstrings' Sphinx roles become links in the API reference.

The code's docstrings use reST roles (``:class:`~lucent_ws.manager.WebSocketManager```).
Markdown would show them verbatim, so each becomes an optional cross-reference: a link
when the target is rendered on the site, plain code otherwise (no broken link).
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|exc|obj):`(~?)([\w.]+)`")


def _target(obj: griffe.Object, name: str) -> str:
    """The full path of ``name`` as seen from ``obj``'s scope, or ``name`` itself."""
    head, _, rest = name.partition(".")
    try:
        path = obj.resolve(head)
    except griffe.NameResolutionError:
        return name
    return f"{path}.{rest}" if rest else path


def _rewrite(obj: griffe.Object) -> None:
    docstring = obj.docstring
    if docstring is None or ":" not in docstring.value:
        return

    def link(match: re.Match[str]) -> str:
        short, name = match.group(1), match.group(2)
        shown = name.rsplit(".", 1)[-1] if short else name
        target = html.escape(_target(obj, name), quote=True)
        code = f"<code>{html.escape(shown)}</code>"
        return f'<autoref identifier="{target}" optional>{code}</autoref>'

    docstring.value = _ROLE.sub(link, docstring.value)


class SphinxRoles(griffe.Extension):
    """Rewrite reST roles in every docstring of a loaded package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Visit every object of ``pkg`` once it is fully loaded."""
        pending: list[griffe.Object] = [pkg]
        while pending:
            obj = pending.pop()
            _rewrite(obj)
            pending.extend(member for member in obj.members.values() if not member.is_alias)
