"""``apflow_api_executor``: run a task tree on another aipartnerupflow instance, over A2A.

The tree goes to the remote instance as one A2A message; its progress comes back as local
progress, its per-task results as this task's result, a remote failure fails this task with the
remote error, and cancelling this task cancels the remote tree. Each attempt's remote context id
(the remote root task id) is derived from the local task id and attempt, so a resumed process
finds and re-attaches to the run it had submitted instead of submitting it again. Any A2A 1.0
agent can be called with a ``text`` or ``data`` message: its artifacts are the result.

Importing this module does not import a2a-sdk; the first call does.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from aipartnerupflow.core.errors import TaskTimeoutError
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.executors.secrets import add_secret, redact_url
from aipartnerupflow.extensions.apflow.request import (
    DEFAULT_POLL_INTERVAL,
    DEFAULT_TIMEOUT,
    parse_request,
    run_key,
)
from aipartnerupflow.extensions.apflow.settings import ApflowSettings

if TYPE_CHECKING:
    from a2a.client import Client

    from aipartnerupflow.extensions.apflow.remote import RemoteRun

__all__ = ["INPUT_SCHEMA", "ApflowApiExecutor"]

_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
_SECONDS = {"type": "number", "exclusiveMinimum": 0}

INPUT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "apflow_api_executor inputs",
    "type": "object",
    "properties": {
        "base_url": {
            "type": "string",
            "minLength": 1,
            "description": "The remote instance's (or agent's) base URL; its card is read from "
            "/.well-known/agent-card.json below it.",
        },
        "agent_card_url": {
            "type": "string",
            "minLength": 1,
            "description": "The agent card's URL, instead of base_url.",
        },
        "auth_token": {
            "type": "string",
            "minLength": 1,
            "description": "Bearer token for the remote side (a secret: never in results, "
            "errors or logs).",
        },
        "headers": {**_STRINGS, "description": "Extra HTTP headers; their values are secrets."},
        "tasks": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "object"},
            "description": "The task tree to run remotely (one root), as tasks.create takes it.",
        },
        "method": {
            "enum": ["tasks.execute", "tasks.create", "execute"],
            "description": "Original-project form: with params.tasks, the same as 'tasks'.",
        },
        "params": {"type": "object", "description": "Original-project form: {tasks: [...]}."},
        "text": {"type": "string", "description": "A text message for any A2A agent."},
        "data": {"description": "A JSON data message for any A2A agent."},
        "streaming": {
            "type": "boolean",
            "default": True,
            "description": "Follow the run over a stream of events (false: poll for it).",
        },
        "use_streaming": {"type": "boolean", "description": "Original name of 'streaming'."},
        "wait": {
            "type": "boolean",
            "default": True,
            "description": "Wait for the remote run to end (false: return once it is "
            "submitted, with its ids).",
        },
        "wait_for_completion": {"type": "boolean", "description": "Original name of 'wait'."},
        "timeout": {
            **_SECONDS,
            "default": DEFAULT_TIMEOUT,
            "description": "Seconds for the whole remote run; then it is cancelled remotely.",
        },
        "poll_interval": {
            **_SECONDS,
            "default": DEFAULT_POLL_INTERVAL,
            "description": "First delay between status requests when polling (doubling, "
            "at most 30 s).",
        },
        "max_output_bytes": {
            "type": "integer",
            "minimum": 0,
            "description": "Most bytes of JSON kept of the remote results.",
        },
    },
    # Dependency results arrive under their task ids: extra keys are allowed (and ignored).
    "additionalProperties": True,
}


class ApflowApiExecutor(ExecutableTask):
    """Run a task tree on a remote aipartnerupflow instance (or message any A2A agent)."""

    id = "apflow_api_executor"
    name = "Remote aipartnerupflow instance"
    description = (
        "Run a task tree on another aipartnerupflow instance over A2A (progress relayed, "
        "per-task results returned, cancellation propagated, re-attach after a restart), or "
        "send a text/data message to any A2A 1.0 agent and return its artifacts."
    )
    tags = ["a2a", "remote", "delegation", "api"]
    examples = [
        {
            "title": "Run a subtree on another instance",
            "inputs": {
                "base_url": "https://flows.example.com",
                "auth_token": "<token>",
                "tasks": [
                    {
                        "id": "fetch",
                        "name": "fetch",
                        "schemas": {"method": "rest_executor"},
                        "inputs": {"url": "https://api.example.com/data"},
                    },
                ],
                "timeout": 600,
            },
        },
        {
            "title": "Ask any A2A agent",
            "inputs": {"base_url": "https://agent.example.com", "text": "summarise this week"},
        },
    ]
    input_schema = INPUT_SCHEMA
    params_schema = {"type": "object", "additionalProperties": False, "properties": {}}

    def __init__(self) -> None:
        self._run: RemoteRun | None = None

    async def cancel(self) -> None:
        """Nothing ahead: when the engine cancels ``execute``, it cancels the remote run."""

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Submit (or re-attach to) the remote run and follow it to its end."""
        from aipartnerupflow.extensions.apflow.remote import RemoteRun, open_client

        settings = ApflowSettings.get()
        ctx = self.context
        key = run_key(ctx.task_id if ctx else None, ctx.attempt if ctx else None)
        request = parse_request(inputs, settings, key)
        add_secret(*request.secrets)
        policy = settings.policy()
        policy.check_url(request.card_url)
        label = redact_url(request.card_url)

        def progress(value: float, message: str | None) -> None:
            if ctx is not None:
                ctx.report_progress(value, message)

        run = RemoteRun(request, key, progress)
        self._run = run
        async with open_client(request, policy, settings.request_timeout) as (client, _card):
            try:
                async with asyncio.timeout(request.timeout):
                    await self._follow(client, run)
            except asyncio.CancelledError:
                # Cancel the remote run even if this task is cancelled again meanwhile (the
                # request is bounded by cancel_timeout), so the client stays open until then.
                stop = asyncio.ensure_future(
                    self._cancel_remote(client, run, settings.cancel_timeout)
                )
                while not stop.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.shield(stop)
                raise
            except TimeoutError:
                await self._cancel_remote(client, run, settings.cancel_timeout)
                raise TaskTimeoutError(
                    f"the remote run at {label} did not finish within {request.timeout:g} s "
                    "(it was cancelled there)"
                ) from None
        if not request.wait:
            return {"success": True, "submitted": True, "remote": run.summary()}
        return run.outcome(request.max_output_bytes)

    async def _follow(self, client: Client, run: RemoteRun) -> None:
        request = run.request
        ctx = self.context
        task_id, attempt = (ctx.task_id, ctx.attempt) if ctx is not None else (None, 1)
        interrupted = ctx.interrupted_attempt if ctx is not None else None
        if not await run.locate(client, task_id, attempt, interrupted):
            streaming = request.streaming and request.wait
            await run.submit(client, follow=streaming)
        elif request.streaming and request.wait and not run.terminal:
            await run.subscribe(client)
        if not request.wait:
            return
        if not run.terminal:
            await run.poll(client)
        if run.reply is None:
            await run.refresh(client)  # the stored task holds every artifact and the summary

    @staticmethod
    async def _cancel_remote(client: Client, run: RemoteRun, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                await run.cancel(client)
        except TimeoutError:
            pass
