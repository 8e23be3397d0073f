"""``apflow generate task-tree "<requirement>"``: print a generated, validated task tree;
``--run`` runs it on the configured database. Loaded by the CLI from the ``aipartnerupflow.cli``
entry point group."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["app"]

app = typer.Typer(
    help="Generate task trees from natural language.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


@app.callback()
def group() -> None:
    """Generate task trees from natural language."""


@app.command("task-tree")
def task_tree(
    ctx: typer.Context,
    requirement: Annotated[str, typer.Argument(help="What the tree must do.")],
    model: Annotated[
        str | None, typer.Option(help="LiteLLM model (default: AIPARTNERUPFLOW_LLM_MODEL).")
    ] = None,
    api_base: Annotated[
        str | None, typer.Option(help="Provider base URL (default: AIPARTNERUPFLOW_LLM_API_BASE).")
    ] = None,
    max_rounds: Annotated[int, typer.Option(min=1, max=10, help="Answers asked for at most.")] = 3,
    temperature: Annotated[float, typer.Option(min=0, max=2)] = 0.2,
    executors: Annotated[
        str | None, typer.Option(help="Comma-separated executor ids the tree may use.")
    ] = None,
    run: Annotated[bool, typer.Option("--run", help="Run the tree once generated.")] = False,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Also write the tree to this file.")
    ] = None,
) -> None:
    """Print the task tree (a JSON array) generated for REQUIREMENT; --run also runs it."""
    from aipartnerupflow.cli._common import CliError, get_state, print_json, run_async
    from aipartnerupflow.core.settings import reload_settings

    state = get_state(ctx)
    state.load_plugins()
    if api_base:  # the operator's own choice: trusted like AIPARTNERUPFLOW_LLM_API_BASE
        os.environ["AIPARTNERUPFLOW_LLM_API_BASE"] = api_base
        reload_settings()
    inputs: dict[str, Any] = {
        "requirement": requirement,
        "max_rounds": max_rounds,
        "temperature": temperature,
        "checkpoint": False,
    }
    if model:
        inputs["model"] = model
    if executors:
        inputs["executors"] = [e.strip() for e in executors.split(",") if e.strip()]
    from aipartnerupflow.extensions.generate.executor import GenerateExecutor

    result = run_async(GenerateExecutor().execute(inputs))
    tasks = result["tasks"]
    if output is not None:
        try:
            Path(output).write_text(json.dumps(tasks, indent=2, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise CliError(f"cannot write {output}: {exc}") from exc
    if not run:
        print_json(tasks)
        return
    outcome = run_async(_run(state, tasks))
    print_json({"tasks": tasks, "run": outcome})
    if outcome["status"] != "completed":
        raise typer.Exit(1)


async def _run(state: Any, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    from aipartnerupflow.cli._common import open_manager

    async with open_manager(state) as manager:
        tree = await manager.run_tasks(tasks)
    result: dict[str, Any] = tree.to_dict()
    return result
