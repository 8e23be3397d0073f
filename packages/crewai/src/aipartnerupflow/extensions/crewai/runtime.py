"""Running one crew with real crewai objects: the only module that imports crewai.

crewai is imported on first use, in a worker thread (it takes seconds), after its telemetry,
tracing and version check are turned off unless the operator's settings allow them.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import re
import sys
import threading
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from aipartnerupflow.core.context import current_task_context
from aipartnerupflow.core.errors import (
    ConfigurationError,
    ExecutorError,
    PermanentError,
    RetryableError,
    TaskCancelledError,
)
from aipartnerupflow.core.executors.caps import cap_text
from aipartnerupflow.core.executors.secrets import add_secret
from aipartnerupflow.extensions.crewai.cancellation import Cancellation
from aipartnerupflow.extensions.crewai.settings import CrewaiSettings
from aipartnerupflow.extensions.crewai.spec import AgentSpec, CrewSpec, LlmSpec
from aipartnerupflow.extensions.crewai.tools import resolve_tools

__all__ = ["AgentGaveUpError", "CrewFailedError", "load_crewai", "prepare_environment", "run_crew"]

_INSTALL = 'pip install "aipartnerupflow[crewai]"'
_import_lock = threading.Lock()
_loaded: list[Any] = []  # the crewai module, once imported and hooked


class CrewFailedError(ExecutorError):
    """crewai raised while running the crew."""


class AgentGaveUpError(ExecutorError):
    """An agent ended a task without an answer (empty output)."""


def prepare_environment(settings: CrewaiSettings) -> None:
    """Set crewai's environment switches before it is imported (telemetry, storage)."""
    if not settings.telemetry:
        os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
        os.environ.setdefault("CREWAI_DISABLE_TRACKING", "true")
        os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
        os.environ.setdefault("CREWAI_DISABLE_VERSION_CHECK", "true")
    if settings.storage_dir:
        # crewai reads it as the app name of appdirs.user_data_dir: an absolute path is used as is
        os.environ["CREWAI_STORAGE_DIR"] = os.path.abspath(settings.storage_dir)


async def load_crewai(settings: CrewaiSettings) -> Any:
    """The crewai module, imported once in a worker thread (never blocking the event loop)."""
    if _loaded:
        return _loaded[0]

    def load() -> Any:
        with _import_lock:
            if not _loaded:  # also when the application imported crewai itself first
                prepare_environment(settings)
                module = importlib.import_module("crewai")
                _listen(module)
                _loaded.append(module)
            return _loaded[0]

    try:
        return await asyncio.to_thread(load)
    except ModuleNotFoundError as exc:
        if exc.name == "crewai":
            raise ConfigurationError(
                f"crewai is not installed; the CrewAI executors need it: {_INSTALL}"
            ) from exc
        raise


def _llm(
    crewai: Any, spec: LlmSpec | None, fallback: LlmSpec | None, settings: CrewaiSettings
) -> Any:
    chosen = spec or fallback
    model = (chosen.model if chosen and chosen.model else None) or (
        fallback.model if fallback and fallback.model else settings.model
    )
    options = {**(fallback.options if fallback else {}), **(chosen.options if chosen else {})}
    kwargs: dict[str, Any] = {
        "model": model,
        "timeout": settings.request_timeout,
        "max_retries": 0,  # the engine owns retries
        **options,
    }
    if settings.base_url:
        kwargs["base_url"] = settings.base_url
    if settings.api_key:
        add_secret(settings.api_key)
        kwargs["api_key"] = settings.api_key
    try:
        llm = crewai.LLM(**kwargs)
    except Exception as exc:  # crewai rejects unknown providers and bad options here
        raise PermanentError(f"cannot use LLM model {model!r}: {exc}") from exc
    run = _RUN.get()
    if run is not None:
        run.llms.append(llm)
        _abortable(llm, run.cancelled, settings)
    return _watch(llm)


def _abortable(llm: Any, cancellation: Cancellation, settings: CrewaiSettings) -> None:
    """Give crewai's OpenAI-compatible provider a sync client whose sockets ``cancellation``
    can shut down (crewai calls it from worker threads). Other providers keep their own
    client: cancelling them stops between steps only."""
    build = getattr(llm, "_get_client_params", None)
    if build is None or not hasattr(llm, "_client"):
        return
    import httpcore
    import httpx
    import openai

    class Backend(httpcore.NetworkBackend):
        def __init__(self) -> None:
            self.inner = httpcore.SyncBackend()

        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Any = None,
        ) -> Any:
            if cancellation.is_set():
                raise httpcore.ConnectError("the crew was cancelled")
            stream = self.inner.connect_tcp(host, port, timeout, local_address, socket_options)
            cancellation.register(stream.get_extra_info("socket"))
            return stream

        def connect_unix_socket(
            self, path: str, timeout: float | None = None, socket_options: Any = None
        ) -> Any:
            return self.inner.connect_unix_socket(path, timeout, socket_options)

        def sleep(self, seconds: float) -> None:
            self.inner.sleep(seconds)

    try:
        params = build()
    except ValueError as exc:  # crewai: "OPENAI_API_KEY is required"
        raise ConfigurationError(
            f"no API key for model {getattr(llm, 'model', '?')!r}: set "
            "AIPARTNERUPFLOW_CREWAI_API_KEY (or the provider's variable, such as OPENAI_API_KEY)"
        ) from exc
    transport = httpx.HTTPTransport()
    transport._pool._network_backend = Backend()  # httpcore's pool, our connections
    previous = llm._client
    llm._client = openai.OpenAI(
        **params, http_client=httpx.Client(transport=transport, timeout=settings.request_timeout)
    )
    if previous is not None:
        previous.close()


@dataclass
class _Run:
    """The running crew, for crewai's step and task callbacks (module-level functions: crewai
    warns about closures, which it cannot checkpoint)."""

    name: str
    tasks: int
    cancelled: Cancellation
    done: int = 0
    #: The first LLM call that failed; crewai may retry and carry on, but the engine owns
    #: retries, so the crew fails with it.
    failed: Exception | None = None
    llms: list[Any] = field(default_factory=list)


_RUN: ContextVar[_Run | None] = ContextVar("apflow_crewai_run", default=None)


def _check(run: _Run | None) -> None:
    if run is not None and run.cancelled.is_set():
        raise TaskCancelledError(f"crew {run.name!r} was cancelled")
    if run is not None and run.failed is not None:
        raise run.failed


class _LlmCallFailed(Exception):
    """An LLM call crewai reported as failed (its message carries the HTTP status)."""


def _listen(crewai: Any) -> None:
    """Record crewai's "LLM call failed" events on the running crew (whatever path made the
    call; crewai may retry and carry on, but a failed call fails the crew)."""
    from crewai.events import LLMCallFailedEvent, crewai_event_bus

    @crewai_event_bus.on(LLMCallFailedEvent)
    def _failed(_source: Any, event: Any) -> None:
        run = _RUN.get()
        if run is not None and run.failed is None:
            run.failed = _LlmCallFailed(str(getattr(event, "error", "LLM call failed")))


def _watch(llm: Any) -> Any:
    """Record the first failing call of ``llm`` on the running crew (then re-raise it)."""
    call, acall = llm.call, llm.acall

    def note(exc: Exception) -> None:
        run = _RUN.get()
        if run is not None and run.failed is None:
            run.failed = exc

    def earlier_failure() -> None:
        run = _RUN.get()
        _check(run)  # cancelled: no further LLM call; failed: no retry inside crewai

    def watched_call(*args: Any, **kwargs: Any) -> Any:
        earlier_failure()
        try:
            return call(*args, **kwargs)
        except Exception as exc:
            note(exc)
            raise

    async def watched_acall(*args: Any, **kwargs: Any) -> Any:
        earlier_failure()
        try:
            return await acall(*args, **kwargs)
        except Exception as exc:
            note(exc)
            raise

    object.__setattr__(llm, "call", watched_call)
    object.__setattr__(llm, "acall", watched_acall)
    return llm


def on_step(_step: Any = None) -> None:
    """crewai step callback: stop at the next step once cancelled."""
    _check(_RUN.get())


def on_task_done(_output: Any = None) -> None:
    """crewai task callback: report progress, stop before the next task once cancelled."""
    run = _RUN.get()
    if run is None:
        return
    run.done += 1
    ctx = current_task_context()
    if ctx is not None:
        ctx.report_progress(run.done / run.tasks, f"{run.name}: task {run.done} of {run.tasks}")
    _check(run)


def _agent(crewai: Any, spec: AgentSpec, crew: CrewSpec, settings: CrewaiSettings) -> Any:
    return crewai.Agent(
        role=spec.role,
        goal=spec.goal,
        backstory=spec.backstory,
        llm=_llm(crewai, spec.llm, crew.llm, settings),
        tools=resolve_tools(spec.tools, f"agent {spec.name!r}"),
        max_iter=spec.max_iter or settings.max_iterations,
        allow_delegation=spec.allow_delegation,
        verbose=spec.verbose or crew.verbose,
        memory=False,
        step_callback=on_step,
    )


def _parse(text: str) -> Any:
    """The output as JSON when it is a JSON object or list, else None."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.strip("`").removeprefix("json").strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    return value if isinstance(value, dict | list) else None


def _status(exc: BaseException) -> tuple[int | None, float | None]:
    """(HTTP status, Retry-After) of the first API error in ``exc``'s chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        status = getattr(current, "status_code", None)
        if isinstance(status, int):
            after = None
            response = getattr(current, "response", None)
            header = getattr(getattr(response, "headers", None), "get", lambda _k: None)(
                "retry-after"
            )
            try:
                after = float(header) if header is not None else None
            except ValueError:
                after = None
            return status, after
        if type(current).__name__ in {"APIConnectionError", "APITimeoutError"}:
            return 0, None
        if isinstance(current, _LlmCallFailed):
            found = re.search(r"Error code: (\d{3})", str(current))
            if found:
                return int(found.group(1)), None
            if "Connection error" in str(current) or "timed out" in str(current):
                return 0, None
        current = current.__cause__ or current.__context__
    return None, None


def _failure(crew: CrewSpec, exc: Exception) -> ExecutorError:
    text = str(exc) or type(exc).__name__
    if "None or empty" in text:
        return AgentGaveUpError(
            f"crew {crew.name!r}: an agent gave up (the LLM returned an empty answer)"
        )
    status, after = _status(exc)
    where = f"crew {crew.name!r}"
    if status == 0 or (status is not None and (status == 429 or status >= 500)):
        return RetryableError(f"{where}: the LLM endpoint failed ({text})", retry_after=after)
    if status in (401, 403):
        return PermanentError(
            f"{where}: the LLM endpoint refused the API key (HTTP {status}); set "
            "AIPARTNERUPFLOW_CREWAI_API_KEY (or the provider's variable) to a valid key"
        )
    if status is not None:
        return PermanentError(f"{where}: the LLM endpoint rejected the request ({text})")
    return CrewFailedError(f"{where} failed: {type(exc).__name__}: {text}")


def _usage(output: Any) -> dict[str, int]:
    usage = getattr(output, "token_usage", None)
    fields = ("total_tokens", "prompt_tokens", "completion_tokens", "cached_prompt_tokens")
    values = {f: int(getattr(usage, f, 0) or 0) for f in fields}
    values["successful_requests"] = int(getattr(usage, "successful_requests", 0) or 0)
    return values


def _capped(text: str, limit: int) -> tuple[str, int]:
    return cap_text(text, limit)


async def run_crew(
    crew: CrewSpec,
    inputs: Mapping[str, Any],
    settings: CrewaiSettings,
    cancelled: Cancellation,
) -> dict[str, Any]:
    """Build the crew from ``crew`` and run it; the result or an :class:`ExecutorError`."""
    crewai = await load_crewai(settings)
    run = _Run(name=crew.name, tasks=len(crew.tasks), cancelled=cancelled)
    token = _RUN.set(run)
    try:
        return await _run(crewai, crew, inputs, settings, run)
    except asyncio.CancelledError:
        cancelled.set()  # aborts the request in flight on crewai's worker thread
        raise
    finally:
        _RUN.reset(token)
        await asyncio.shield(_close_clients(run.llms))


async def _close_clients(llms: list[Any]) -> None:
    """Close the HTTP clients crewai's provider objects opened (no socket outlives a run)."""
    for llm in llms:
        for attr in ("_async_client", "_client"):
            client = getattr(llm, attr, None)
            close = getattr(client, "close", None)
            if close is None:
                continue
            try:
                outcome = close()
                if asyncio.iscoroutine(outcome):
                    await outcome
            except Exception:  # closing is best effort; the run's outcome stands
                continue


async def _run(
    crewai: Any, crew: CrewSpec, inputs: Mapping[str, Any], settings: CrewaiSettings, run: _Run
) -> dict[str, Any]:
    cancelled = run.cancelled
    agents = {a.name: _agent(crewai, a, crew, settings) for a in crew.agents}
    tasks: list[Any] = []
    for spec in crew.tasks:
        tasks.append(
            crewai.Task(
                name=spec.name,
                description=spec.description,
                expected_output=spec.expected_output,
                agent=agents[spec.agent],
                context=[tasks[i] for i in spec.context] if spec.context else None,
                callback=on_task_done,
            )
        )
    kickoff = crewai.Crew(
        name=crew.name,
        agents=list(agents.values()),
        tasks=tasks,
        process=crewai.Process.sequential,
        verbose=crew.verbose,
        memory=False,
        task_callback=None,
    )
    _check(run)
    try:
        output = await kickoff.akickoff(inputs=dict(inputs))
    except TaskCancelledError:
        raise
    except ExecutorError:
        raise
    except Exception as exc:
        if cancelled.is_set():
            raise TaskCancelledError(f"crew {crew.name!r} was cancelled") from exc
        cause = run.failed or exc
        raise _failure(crew, cause) from cause
    crewai_event_bus = sys.modules["crewai.events"].crewai_event_bus
    await asyncio.to_thread(crewai_event_bus.flush, 10.0)  # its handlers may run late
    if run.failed is not None:
        raise _failure(crew, run.failed) from run.failed
    _check(run)
    limit = settings.max_output_bytes
    task_results = []
    for spec, task_output in zip(crew.tasks, output.tasks_output, strict=False):
        raw = str(getattr(task_output, "raw", "") or "")
        if not raw.strip():
            raise AgentGaveUpError(
                f"crew {crew.name!r}: agent {spec.agent!r} gave up on task {spec.name!r} "
                "(it returned an empty answer)"
            )
        text, dropped = _capped(raw, limit)
        entry: dict[str, Any] = {"name": spec.name, "agent": spec.agent, "output": text}
        if dropped:
            entry["output_truncated"] = True
        task_results.append(entry)
    if len(task_results) != len(crew.tasks):
        raise AgentGaveUpError(
            f"crew {crew.name!r} finished {len(task_results)} of {len(crew.tasks)} tasks"
        )
    final, dropped = _capped(str(output.raw or ""), limit)
    parsed = None if dropped else _parse(final)
    result: dict[str, Any] = {
        "status": "success",
        "name": crew.name,
        "result": parsed if parsed is not None else final,
        "output": final,
        "tasks": task_results,
        "token_usage": _usage(output),
    }
    if parsed is not None:
        result["json"] = parsed
    if dropped:
        result["output_truncated"] = True
        result["output_dropped_bytes"] = dropped
    return result
