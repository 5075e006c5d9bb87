"""MkDocs hooks: pages generated from the code at build time, never copied by hand.

A page asks for generated content with a marker line:

- ``<!-- generated: admin-openapi -->``: the admin API, from the OpenAPI document
  that ``GET /admin/openapi.json`` serves (``lucent_ws.admin.openapi.build_spec``
  over the routes of a freshly built admin app), as tables, plus the document itself;
- ``<!-- generated: cli-help -->``: ``lucent-ws --help``, as the command prints it.

An unknown marker, or a generator that fails, fails the build.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

from mkdocs.exceptions import PluginError

_MARKER = re.compile(r"^<!-- generated: ([\w-]+) -->$", re.MULTILINE)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Replace each generated-content marker of a page with its content."""
    return _MARKER.sub(lambda match: _generate(match.group(1)), markdown)


def _generate(name: str) -> str:
    generators = {"admin-openapi": admin_openapi, "cli-help": cli_help}
    if name not in generators:
        raise PluginError(f"unknown generated content {name!r}; known: {sorted(generators)}")
    try:
        return generators[name]()
    except PluginError:
        raise
    except Exception as exc:
        raise PluginError(f"generating {name!r} failed: {exc!r}") from exc


def openapi_document() -> dict[str, Any]:
    """The document ``GET /admin/openapi.json`` serves for an admin app at ``/admin``."""
    from lucent_ws import WebSocketManager
    from lucent_ws.admin import ADMIN_KEY, create_admin_app
    from lucent_ws.admin.openapi import build_spec

    app = create_admin_app(WebSocketManager(), token="docs-build")
    return build_spec(app[ADMIN_KEY].routes, server_url="/admin")


def cli_help() -> str:
    """``lucent-ws --help`` in a fenced block, unaffected by the builder's environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUCENT_WS_")}
    env["COLUMNS"] = "88"
    result = subprocess.run(
        [sys.executable, "-m", "lucent_ws", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    return f"```text\n{result.stdout.rstrip()}\n```"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _schema_name(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        return f"[`{name}`](#schema-{name.lower()})"
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_schema_name(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        values = schema["additionalProperties"]
        return f"object of {_schema_name(values)}" if values else "object"
    if schema.get("nullable"):
        return f"{kind} or null"
    return str(kind)


def _constraints(schema: dict[str, Any]) -> str:
    parts = []
    for key, label in (
        ("minimum", "min"),
        ("maximum", "max"),
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("default", "default"),
    ):
        if key in schema:
            parts.append(f"{label} {json.dumps(schema[key])}")
    return "; ".join(parts)


def _properties_table(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    rows = ["| field | type | required | description |", "|---|---|---|---|"]
    for name, prop in schema.get("properties", {}).items():
        notes = "; ".join(
            part for part in (prop.get("description", ""), _constraints(prop)) if part
        )
        yes = "yes" if name in required else ""
        rows.append(f"| `{name}` | {_schema_name(prop)} | {yes} | {_cell(notes)} |")
    return rows


def _operation(method: str, path: str, op: dict[str, Any]) -> list[str]:
    lines = [f"### {method.upper()} `{path}`", "", _cell(op.get("summary", "")), ""]
    public = op.get("security") == []
    lines += [f"Authentication: {'none' if public else 'admin token or dashboard session'}.", ""]
    params = op.get("parameters", [])
    if params:
        lines += ["| parameter | in | type | required | notes |", "|---|---|---|---|---|"]
        for param in params:
            schema = param.get("schema", {})
            yes = "yes" if param.get("required") else ""
            lines.append(
                f"| `{param['name']}` | {param['in']} | {_schema_name(schema)} | {yes} "
                f"| {_cell(_constraints(schema))} |"
            )
        lines.append("")
    body = op.get("requestBody")
    if body:
        for media, content in body.get("content", {}).items():
            schema = content.get("schema", {})
            lines += [f"Request body (`{media}`): {_schema_name(schema)}", ""]
            if "properties" in schema:
                lines += [*_properties_table(schema), ""]
    lines += ["| status | meaning | body |", "|---|---|---|"]
    for status, answer in sorted(op.get("responses", {}).items()):
        bodies = [
            f"`{media}` {_schema_name(content.get('schema', {}))}"
            for media, content in answer.get("content", {}).items()
        ]
        lines.append(
            f"| {status} | {_cell(answer.get('description', ''))} | {', '.join(bodies) or '—'} |"
        )
    return [*lines, ""]


def admin_openapi() -> str:
    """The admin API as Markdown: operations, schemas, then the whole JSON document."""
    spec = openapi_document()
    info = spec["info"]
    lines = [
        f"Generated at build time from the OpenAPI {spec['openapi']} document "
        f"**{info['title']} {info['version']}**: {info.get('description', '')}",
        "",
        f"Server URL: `{spec['servers'][0]['url']}` (the prefix the admin app is mounted at).",
        "",
        "## Operations",
        "",
    ]
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            lines += _operation(method, path, op)
    lines += ["## Schemas", ""]
    for name, schema in spec["components"]["schemas"].items():
        lines += [f"### {name} {{#schema-{name.lower()}}}", ""]
        if schema.get("description"):
            lines += [_cell(schema["description"]), ""]
        lines += [*_properties_table(schema), ""]
    lines += ["## Security schemes", "", "| name | type | details |", "|---|---|---|"]
    for name, scheme in spec["components"]["securitySchemes"].items():
        details = ", ".join(
            f"{key}: {value}" for key, value in scheme.items() if key not in {"type"}
        )
        lines.append(f"| `{name}` | {scheme['type']} | {_cell(details)} |")
    document = json.dumps(spec, indent=2, sort_keys=False)
    lines += [
        "",
        "## The document",
        "",
        '??? note "openapi.json, as served"',
        "",
        "    ```json",
        *(f"    {line}" for line in document.splitlines()),
        "    ```",
        "",
    ]
    return "\n".join(lines)
