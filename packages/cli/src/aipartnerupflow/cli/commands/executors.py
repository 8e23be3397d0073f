"""``apflow executors``: what can run, from entry points and in-process registrations."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from aipartnerupflow.cli._common import get_state, print_json

__all__ = ["app", "describe_executor"]

app = typer.Typer(
    help="List installed executors and their input schemas.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

#: The setting that enables dangerous executors (core's ENABLE_SETTING; a test checks).
ENABLE_SETTING = "AIPARTNERUPFLOW_ENABLED_EXECUTORS"

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document")]


def describe_executor(executor_id: str) -> dict[str, Any]:
    """The executor's class metadata (read without building it), source and opt-in state.

    Id, name, description, source, class path, tags, examples, input and params schemas,
    ``dangerous`` and ``enabled`` (a dangerous executor is off until
    ``AIPARTNERUPFLOW_ENABLED_EXECUTORS`` lists it), concurrency limit and default timeout.
    """
    from aipartnerupflow.core.executors.metadata import executor_info
    from aipartnerupflow.core.registry import get_executor_registry
    from aipartnerupflow.core.settings import CoreSettings

    registry = get_executor_registry()
    source = registry.source(executor_id)
    cls = registry.get(executor_id)  # imports the plugin; raises the not-found hint
    meta = executor_info(cls, executor_id)
    info: dict[str, Any] = {"id": executor_id, "source": source, **meta.to_dict()}
    info["description"] = meta.description or (cls.__doc__ or "").strip().split("\n\n")[0].replace(
        "\n", " "
    )
    info["class_path"] = f"{cls.__module__}.{cls.__qualname__}"
    info["enabled"] = not meta.dangerous or CoreSettings.get().executor_enabled(executor_id)
    if meta.schema_note:  # only the generic schema: say so rather than show "any object"
        info["input_schema"] = None
    return info


def _safe_describe(executor_id: str) -> dict[str, Any]:
    from aipartnerupflow.core.errors import PluginError

    try:
        return describe_executor(executor_id)
    except PluginError as exc:
        from aipartnerupflow.core.registry import get_executor_registry

        return {
            "id": executor_id,
            "source": get_executor_registry().source(executor_id),
            "name": executor_id,
            "description": "",
            "input_schema": None,
            "dangerous": None,
            "enabled": None,
            "error": str(exc),
        }


def _inputs_summary(schema: dict[str, Any] | None, note: str | None) -> str:
    if schema is None:
        return "(needs params)" if note and "without params" in note else "-"
    props = schema.get("properties")
    if not isinstance(props, dict) or not props:
        return "any object" if schema.get("type") in (None, "object") else str(schema.get("type"))
    required = set(schema.get("required") or [])
    return ", ".join(f"{k}*" if k in required else k for k in props)


def _enabled_text(enabled: bool) -> str:
    return "enabled" if enabled else f"off until {ENABLE_SETTING} lists it"


@app.command("list")
def list_executors(ctx: typer.Context, json_output: JsonOpt = False) -> None:
    """List executors with descriptions and inputs (* = required)."""
    state = get_state(ctx)
    state.load_plugins()
    from aipartnerupflow.core.registry import get_executor_registry

    rows = [_safe_describe(ex_id) for ex_id in get_executor_registry().ids()]
    if json_output:
        print_json(rows)
        return
    from rich.markup import escape

    from aipartnerupflow.cli._common import console

    out = console()
    if not rows:
        out.print(
            "No executors installed. Install some with pip install "
            '"aipartnerupflow[http]" (or [all]), or load your own with --plugin MODULE.'
        )
        return
    for row in rows:
        out.print(f"[bold]{escape(row['id'])}[/]  [dim]({escape(row['source'])})[/]")
        if "error" in row:
            out.print(f"    [red]unavailable: {escape(row['error'])}[/]")
            continue
        if row["description"]:
            out.print(f"    {escape(row['description'])}")
        if row["dangerous"]:
            out.print(f"    [yellow]dangerous[/] ({escape(_enabled_text(row['enabled']))})")
        inputs = _inputs_summary(row["input_schema"], row.get("schema_note"))
        out.print(f"    [dim]inputs:[/] {escape(inputs)}")


@app.command("show")
def show_executor(
    ctx: typer.Context,
    executor_id: Annotated[str, typer.Argument(metavar="ID", help="Executor id")],
    json_output: JsonOpt = False,
) -> None:
    """Show one executor: description, input schema, examples."""
    get_state(ctx).load_plugins()
    info = describe_executor(executor_id)
    if json_output:
        print_json(info)
        return
    lines = [
        f"id:          {info['id']}",
        f"name:        {info['name']}",
        f"source:      {info['source']}",
        f"class:       {info['class_path']}",
        f"description: {info['description'] or '-'}",
    ]
    if info["tags"]:
        lines.append(f"tags:        {', '.join(info['tags'])}")
    if info["dangerous"]:
        enabled = (
            "enabled" if info["enabled"] else "off until AIPARTNERUPFLOW_ENABLED_EXECUTORS lists it"
        )
        lines.append(f"dangerous:   yes ({enabled})")
    else:
        lines.append("dangerous:   no")
    if info["max_concurrency"]:
        lines.append(f"concurrency: at most {info['max_concurrency']} at once")
    if info["default_timeout"]:
        lines.append(f"timeout:     {info['default_timeout']:g} s by default")
    if info["input_schema"] is None:
        lines.append(f"input schema: {info.get('schema_note', 'unknown')}")
    else:
        lines.append("input schema:")
        lines.append(json.dumps(info["input_schema"], indent=2, ensure_ascii=False))
    if info["params_schema"] is not None:
        lines.append("params schema:")
        lines.append(json.dumps(info["params_schema"], indent=2, ensure_ascii=False))
    for i, example in enumerate(info["examples"], 1):
        lines.append(f"example {i}:")
        lines.append(json.dumps(example, indent=2, ensure_ascii=False, default=str))
    typer.echo("\n".join(lines))
