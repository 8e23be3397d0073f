"""The executor contract: tests every executor package runs, ours and third parties' alike.

Subclass :class:`ExecutorContract` in a test module, say which executor it checks, and give it
inputs. pytest collects the inherited tests (the subclass name must start with ``Test``)::

    import pytest
    from aipartnerupflow.testing.contract import ExecutorContract
    from my_package.executor import MyExecutor


    class TestMyExecutorContract(ExecutorContract):
        executor_class = MyExecutor
        strict = True                        # a missing fixture fails instead of skipping
        network = True                       # it connects where the task says
        heavy_modules = ("my_sdk",)          # importing the entry point must not import these
        secrets = ("s3cr3t-token",)          # must never appear in results, errors or logs

        @pytest.fixture
        def valid_inputs(self, my_server):   # fixtures may use your own fixtures
            return {"url": my_server.url}

        @pytest.fixture
        def invalid_inputs(self):            # (inputs, name of the offending field) pairs
            return [({}, "url"), ({"url": 3}, "url")]

        @pytest.fixture
        def failing_inputs(self, my_server):
            return {"url": my_server.url + "/error"}

        @pytest.fixture
        def permanent_failing_inputs(self, my_server):   # raise PermanentError: run once
            return {"url": my_server.url + "/status/401"}

        @pytest.fixture
        def slow_inputs(self, my_server):    # runs until cancelled (or timed out)
            return {"url": my_server.url + "/hang"}

        @pytest.fixture
        def oversized_inputs(self, my_server):   # (inputs, the cap in bytes they exceed)
            return {"url": my_server.url + "/big/1000000", "max_bytes": 1000}, 1000

        @pytest.fixture
        def loopback_inputs(self, my_server):    # a target on 127.0.0.1
            return {"url": my_server.url}

What is checked:

* identity: ``id``, ``name``, ``description`` are non-empty strings, ``tags`` a list of strings,
  ``examples`` JSON-serialisable; ``id`` is a lower-case identifier;
* the entry point (unless ``entry_point = False``): an ``aipartnerupflow.executors`` entry point
  named ``id`` is installed and resolves to ``executor_class`` or one of its bases;
* the input schema is a valid JSON Schema (``jsonschema``'s ``check_schema``) of an object, and
  ``valid_inputs`` and the inputs of every example match it;
* through a real :class:`~aipartnerupflow.TaskManager` (in-memory DuckDB): valid inputs complete
  with a strict-JSON result, also when the task depends on another task (its inputs then carry
  the dependency's result under the dependency's id, so the schema must allow extra keys); each
  invalid input is rejected with its field named; failing inputs end the task ``failed`` with a
  message; permanently failing inputs run once although the task allows 3 attempts;
  cancelling a running task ends it ``cancelled``, and a task timing out ends ``failed``, each
  leaving no child process, no open client socket and no pending asyncio task behind;
  ``cancel()`` on an idle executor is harmless;
* output caps: ``oversized_inputs`` complete with a result that says it was truncated and stays
  near the cap;
* ``dangerous = True`` executors: a task is refused at creation, nothing stored, with a message
  naming ``AIPARTNERUPFLOW_ENABLED_EXECUTORS``, until that setting lists the id (the other
  tests enable it);
* ``network = True`` executors: ``loopback_inputs`` fail with ``OutboundPolicyError`` (run once)
  unless the ``private_allowed`` fixture says the policy in force allows private addresses;
* no secret (``secrets``, and every value the executor registered with ``ctx.add_secret``)
  appears in results, errors, events, the stored row (its ``inputs`` and ``params`` aside:
  they are stored as given) or log records (captured at DEBUG);
* lazy import: in a fresh interpreter, importing the entry-point target imports none of
  ``heavy_modules``.

A test whose fixture returns ``None`` (or an empty list) is skipped, so you can start small; in
strict mode (``strict = True``, or ``APFLOW_CONTRACT_STRICT=1`` in the environment) it fails
instead, naming the fixture to write. List in ``not_applicable`` the fixtures and attributes
that cannot apply to your executor (``("slow_inputs",)`` for one that cannot be slow): those
tests skip even in strict mode, saying so. Tests that do not apply by class (the opt-in test of
an executor that is not dangerous) always skip.

The executor is registered in a private registry for these tests, so the process-wide registry
is untouched; what runs is a thin subclass under the same id that records its calls, inputs,
errors and registered secrets. Override ``executor_params`` for constructor params (task
``params``), and ``wait_until_busy`` (a fixture returning an async callable) to wait, before
cancelling, until the work is really under way (for instance until your test server has
received the request). ``run_timeout`` only guards against a hang; it is not a speed
requirement. ``timeout_seconds`` is the task timeout of the timeout test.

Leak checks compare before and after: children of this process and any process carrying the
run's marker environment variable (``APFLOW_CONTRACT_MARKER``; a child started with a clean
environment is found as a child only), client TCP sockets of this process (connections whose
local port is not one this process listens on), and unfinished asyncio tasks of the test's loop
not created by ``aipartnerupflow.core``. Shared clients are closed first
(:func:`~aipartnerupflow.core.executors.aclose_loop_resources`, as ``TaskManager.close()``
does), so a pool keeping idle connections is fine; serve test servers from a thread
(:class:`~aipartnerupflow.testing.server.LoopbackServer`), not from the test's loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

import pytest
import pytest_asyncio

from aipartnerupflow.core.executor import ExecutableTask

if TYPE_CHECKING:
    from aipartnerupflow.core.events import TaskEvent
    from aipartnerupflow.core.manager import TaskManager
    from aipartnerupflow.core.registry import ExecutorRegistry
    from aipartnerupflow.core.results import TaskOutcome

__all__ = ["STRICT_ENV", "ExecutorContract", "InvalidCase", "OversizedCase"]

#: An invalid input and the name of the field the rejection must mention.
InvalidCase = tuple[dict[str, Any], str]
#: Inputs whose output exceeds a cap, and that cap in bytes.
OversizedCase = tuple[dict[str, Any], int]

#: Environment variable that turns strict mode on for every contract class.
STRICT_ENV = "APFLOW_CONTRACT_STRICT"
_MARKER_ENV = "APFLOW_CONTRACT_MARKER"
_ENABLE = "AIPARTNERUPFLOW_ENABLED_EXECUTORS"
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_GROUP = "aipartnerupflow.executors"
_CORE_DIR = str(Path(sys.modules[ExecutableTask.__module__].__file__ or "").parent)
_RETRY3 = {"max_attempts": 3, "backoff_seconds": 0.01, "jitter": False}


@dataclass
class ContractProbe:
    """What the executor under test did during one test (the registered class records it)."""

    started: asyncio.Event = field(default_factory=asyncio.Event)
    calls: int = 0
    inputs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)


def _probe_class(cls: type[ExecutableTask], probe: ContractProbe) -> type[ExecutableTask]:
    class Probe(cls):  # type: ignore[valid-type,misc]
        async def execute(self, inputs: dict[str, Any]) -> Any:
            probe.calls += 1
            probe.inputs.append(inputs)
            probe.started.set()
            try:
                return await super().execute(inputs)
            except BaseException as exc:
                probe.errors.append(exc)
                raise
            finally:
                ctx = self.context
                if ctx is not None:
                    probe.secrets.update(ctx.secrets.secrets)

    Probe.__name__ = Probe.__qualname__ = f"{cls.__name__}ContractProbe"
    Probe.__module__ = cls.__module__
    return Probe


class _Source(ExecutableTask):
    """The dependency of the dependent-task test: returns a fixed result."""

    id = "contract_dependency_source"

    async def execute(self, inputs: dict[str, Any]) -> Any:
        return {"contract_value": "from-the-dependency", "n": 1}


# -- leak checks ------------------------------------------------------------------------------


def _psutil() -> Any:
    import psutil

    return psutil


def _processes(marker: str) -> set[int]:
    """Live descendants of this process, and live processes carrying ``marker``."""
    psutil = _psutil()
    me = psutil.Process()
    found: set[int] = set()
    candidates = list(me.children(recursive=True))
    for proc in psutil.process_iter():
        if proc.pid == me.pid:
            continue
        try:
            if proc.environ().get(_MARKER_ENV) == marker:
                candidates.append(proc)
        except (psutil.Error, OSError):
            continue
    for proc in candidates:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                found.add(proc.pid)
        except psutil.Error:
            continue
    return found


def _client_sockets() -> set[tuple[Any, ...]]:
    """Connected TCP sockets of this process that are not the server side of a listener."""
    psutil = _psutil()
    me = psutil.Process()
    get = getattr(me, "net_connections", None) or me.connections
    connections = get(kind="inet")
    listening = {c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN}
    return {
        (c.fd, tuple(c.laddr), tuple(c.raddr))
        for c in connections
        if c.raddr and c.status != psutil.CONN_LISTEN and c.laddr.port not in listening
    }


def _tasks() -> set[asyncio.Task[Any]]:
    current = asyncio.current_task()
    out = set()
    for task in asyncio.all_tasks():
        if task is current or task.done():
            continue
        code = getattr(task.get_coro(), "cr_code", None)
        if code is not None and code.co_filename.startswith(_CORE_DIR):
            continue  # the engine's own machinery
        out.add(task)
    return out


@dataclass
class _Snapshot:
    processes: set[int]
    sockets: set[tuple[Any, ...]]
    tasks: set[asyncio.Task[Any]]


def _snapshot(marker: str) -> _Snapshot:
    return _Snapshot(_processes(marker), _client_sockets(), _tasks())


async def _assert_nothing_leaked(before: _Snapshot, marker: str, after_what: str) -> None:
    from aipartnerupflow.core.executors import aclose_loop_resources

    await aclose_loop_resources()
    problems: list[str] = []
    for _ in range(250):  # let closing transports and exiting processes finish (hang guard)
        now = _snapshot(marker)
        problems = []
        if extra := now.processes - before.processes:
            problems.append(f"processes still running: {sorted(extra)}")
        if extra_sockets := now.sockets - before.sockets:
            problems.append(f"client sockets still open: {sorted(extra_sockets, key=str)}")
        if extra_tasks := now.tasks - before.tasks:
            problems.append(f"asyncio tasks still pending: {sorted(map(repr, extra_tasks))}")
        if not problems:
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"after {after_what} the executor left behind: " + "; ".join(problems))


def _truncation_reported(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                if isinstance(key, str) and "truncated" in key.lower() and inner is True:
                    return True
                stack.append(inner)
        elif isinstance(item, list):
            stack.extend(item)
    return False


async def _collect(sub: Any) -> list[TaskEvent]:
    return [event async for event in sub]


class ExecutorContract:
    """Base class of an executor's contract tests; see the module docstring."""

    #: The executor under test (required).
    executor_class: ClassVar[type[ExecutableTask]]
    #: Constructor params (the task's ``params``) used for every task.
    executor_params: ClassVar[dict[str, Any]] = {}
    #: Require an installed entry point named ``executor_class.id``.
    entry_point: ClassVar[bool] = True
    #: ``module:attr`` imported by the lazy-import test (default: the entry point, else the class).
    import_target: ClassVar[str | None] = None
    #: Modules that importing the executor must not import (the heavy SDK).
    heavy_modules: ClassVar[Sequence[str]] = ()
    #: Strings that must never appear in results, errors, events, stored rows or logs.
    secrets: ClassVar[Sequence[str]] = ()
    #: Seconds after which an engine run is considered hung (a guard, not a speed check).
    run_timeout: ClassVar[float] = 120.0
    #: The task timeout of the timeout test (``slow_inputs`` must outlast it).
    timeout_seconds: ClassVar[float] = 2.0
    #: A missing fixture fails its test instead of skipping it (also: ``APFLOW_CONTRACT_STRICT=1``).
    strict: ClassVar[bool] = False
    #: Fixture or attribute names that cannot apply to this executor: their tests skip.
    not_applicable: ClassVar[Sequence[str]] = ()
    #: The executor connects where its inputs say (the loopback-denial test applies).
    network: ClassVar[bool] = False

    # -- fixtures a subclass overrides -------------------------------------------------------

    @pytest.fixture
    def valid_inputs(self) -> dict[str, Any]:
        """Inputs with which the task completes."""
        pytest.fail(f"{type(self).__name__} must define a valid_inputs fixture")

    @pytest.fixture
    def invalid_inputs(self) -> list[InvalidCase]:
        """(inputs, field) pairs the input schema rejects, naming ``field``."""
        return []

    @pytest.fixture
    def failing_inputs(self) -> dict[str, Any] | None:
        """Inputs that pass the schema but make ``execute`` fail (None skips the test)."""
        return None

    @pytest.fixture
    def permanent_failing_inputs(self) -> dict[str, Any] | None:
        """Inputs with which ``execute`` raises a permanent error (never retried)."""
        return None

    @pytest.fixture
    def slow_inputs(self) -> dict[str, Any] | None:
        """Inputs whose work lasts until cancelled (None skips the cancel and timeout tests)."""
        return None

    @pytest.fixture
    def oversized_inputs(self) -> OversizedCase | None:
        """(inputs, cap in bytes): inputs producing far more output (10x or more) than the cap."""
        return None

    @pytest.fixture
    def loopback_inputs(self) -> dict[str, Any] | None:
        """Inputs whose target is a loopback address (network executors)."""
        return None

    @pytest.fixture
    def private_allowed(self) -> bool:
        """Whether the outbound policy in force allows private addresses (default: no)."""
        return False

    @pytest.fixture
    def wait_until_busy(self) -> Callable[[], Awaitable[None]] | None:
        """An async callable awaited after ``execute`` starts and before cancelling."""
        return None

    # -- machinery ---------------------------------------------------------------------------

    def _strict(self) -> bool:
        flag = os.environ.get(STRICT_ENV, "").strip().lower()
        return self.strict or flag in {"1", "true", "yes", "on"}

    def _missing(self, name: str, what: str) -> NoReturn:
        """Skip (or fail, in strict mode) a test whose fixture or attribute is missing."""
        if name in self.not_applicable:
            pytest.skip(f"{name} is declared not applicable")
        if self._strict():
            pytest.fail(
                f"strict contract: {type(self).__name__} gives no {name} ({what}); provide it, "
                f"or list {name!r} in not_applicable if it cannot apply"
            )
        pytest.skip(f"no {name} given")

    def _executor(self) -> ExecutableTask:
        return self.executor_class(**self.executor_params)

    @pytest.fixture
    def contract_probe(self) -> ContractProbe:
        """What the executor under test did in this test."""
        return ContractProbe()

    @pytest.fixture
    def contract_enabled(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        """Enable a dangerous executor for the test (its opt-in is tested on its own)."""
        from aipartnerupflow.core.settings import reload_settings

        if getattr(self.executor_class, "dangerous", False):
            current = os.environ.get(_ENABLE, "")
            monkeypatch.setenv(_ENABLE, ",".join(filter(None, [current, self.executor_class.id])))
        reload_settings()
        yield
        reload_settings()

    @pytest.fixture
    def contract_marker(self, monkeypatch: pytest.MonkeyPatch) -> str:
        """A value in the environment that processes started during the test inherit."""
        marker = uuid.uuid4().hex
        monkeypatch.setenv(_MARKER_ENV, marker)
        return marker

    @pytest.fixture
    def contract_registry(self, contract_probe: ContractProbe) -> ExecutorRegistry:
        """A private registry: the executor under test (recording into ``contract_probe``)."""
        from aipartnerupflow.core.registry import ExecutorRegistry

        registry = ExecutorRegistry()
        registry.register(_probe_class(self.executor_class, contract_probe), override=True)
        registry.register(_Source, override=True)
        return registry

    @pytest_asyncio.fixture
    async def contract_manager(
        self, contract_registry: ExecutorRegistry, contract_enabled: None
    ) -> AsyncIterator[TaskManager]:
        """A TaskManager (in-memory DuckDB) using :meth:`contract_registry`."""
        from aipartnerupflow.core.manager import TaskManager
        from aipartnerupflow.core.storage import create_session

        manager = TaskManager(create_session("duckdb:///:memory:"), registry=contract_registry)
        try:
            yield manager
        finally:
            await manager.close()

    def _task(self, inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
        executor_id = self.executor_class.id
        return {
            "id": f"contract-{uuid.uuid4().hex[:12]}",
            "name": f"contract {executor_id}",
            "schemas": {"method": executor_id},
            "params": dict(self.executor_params),
            "inputs": inputs,
            **extra,
        }

    async def _run_one(
        self, manager: TaskManager, inputs: dict[str, Any], **extra: Any
    ) -> TaskOutcome:
        task = self._task(inputs, **extra)
        result = await asyncio.wait_for(manager.run_tasks([task]), self.run_timeout)
        return result.task(task["id"])

    def _assert_no_secrets(self, where: str, text: str, extra: Sequence[str] = ()) -> None:
        for secret in (*self.secrets, *extra):
            assert secret not in text, f"a secret appears in {where}"

    # -- identity and schema -----------------------------------------------------------------

    def test_identity(self) -> None:
        cls = self.executor_class
        assert issubclass(cls, ExecutableTask)
        for attr in ("id", "name", "description"):
            value = getattr(cls, attr, None)
            assert isinstance(value, str), f"{cls.__name__}.{attr} must be a string"
            assert value.strip(), f"{cls.__name__}.{attr} must not be empty"
        assert _ID.match(cls.id), f"id {cls.id!r} must be lower-case letters, digits and _"
        assert isinstance(cls.tags, list)
        assert all(isinstance(t, str) and t for t in cls.tags), "tags must be non-empty strings"
        assert isinstance(cls.examples, list)
        assert all(isinstance(e, dict) for e in cls.examples), "examples must be dicts"
        json.dumps(cls.examples, allow_nan=False)

    def test_entry_point(self) -> None:
        if not self.entry_point:
            pytest.skip("entry_point = False: the executor is registered in-process")
        cls = self.executor_class
        found = [ep for ep in metadata.entry_points(group=_GROUP) if ep.name == cls.id]
        assert found, (
            f"no {_GROUP!r} entry point named {cls.id!r} is installed; add it to pyproject.toml "
            f'([project.entry-points."{_GROUP}"]) and reinstall the package'
        )
        targets = {ep.value for ep in found}
        assert len(targets) == 1, f"several targets claim {cls.id!r}: {sorted(targets)}"
        target = found[0].load()
        assert isinstance(target, type), f"the entry point {cls.id!r} points at {target!r}"
        assert issubclass(cls, target), (
            f"the entry point {cls.id!r} points at {target!r}, not at {cls.__name__} or a base"
        )

    def test_input_schema_is_valid_json_schema(self) -> None:
        from jsonschema import validators

        schema = self._executor().get_input_schema()
        assert isinstance(schema, dict), "get_input_schema() must return a dict"
        json.dumps(schema, allow_nan=False)
        validators.validator_for(schema).check_schema(schema)
        assert schema.get("type", "object") == "object", "the inputs must be a JSON object"

    def test_valid_inputs_match_schema(self, valid_inputs: dict[str, Any]) -> None:
        from jsonschema import validators

        schema = self._executor().get_input_schema()
        cls = validators.validator_for(schema)
        errors = [e.message for e in cls(schema).iter_errors(valid_inputs)]
        assert not errors, f"valid_inputs do not match the input schema: {errors}"

    def test_examples_match_schema(self) -> None:
        from jsonschema import validators

        examples = [
            e["inputs"] for e in self.executor_class.examples if isinstance(e.get("inputs"), dict)
        ]
        if not examples:
            self._missing("examples", "an example with an 'inputs' object")
        schema = self._executor().get_input_schema()
        validator = validators.validator_for(schema)(schema)
        for inputs in examples:
            errors = [e.message for e in validator.iter_errors(inputs)]
            assert not errors, f"example inputs {inputs!r} do not match the schema: {errors}"

    # -- behaviour through the engine --------------------------------------------------------

    @pytest.mark.asyncio
    async def test_valid_inputs_complete(
        self, contract_manager: TaskManager, valid_inputs: dict[str, Any]
    ) -> None:
        outcome = await self._run_one(contract_manager, valid_inputs)
        assert outcome.status == "completed", f"task ended {outcome.status}: {outcome.error}"
        text = json.dumps(outcome.result, allow_nan=False)
        assert json.loads(text) == outcome.result, "the result must survive a JSON round trip"

    @pytest.mark.asyncio
    async def test_runs_as_a_dependent(
        self,
        contract_manager: TaskManager,
        contract_probe: ContractProbe,
        valid_inputs: dict[str, Any],
    ) -> None:
        source_id = f"contract-dep-{uuid.uuid4().hex[:8]}"
        source = {
            "id": source_id,
            "name": "contract dependency",
            "schemas": {"method": _Source.id},
        }
        task = self._task(valid_inputs, parent_id=source["id"], dependencies=[{"id": source["id"]}])
        result = await asyncio.wait_for(
            contract_manager.run_tasks([source, task]), self.run_timeout
        )
        outcome = result.task(task["id"])
        assert outcome.status == "completed", (
            f"as a dependent the task ended {outcome.status}: {outcome.error} (the engine puts "
            f"each dependency's result in the inputs under its id: the input schema must allow "
            f"extra keys, no additionalProperties: false)"
        )
        assert contract_probe.inputs, "the executor did not run"
        seen = contract_probe.inputs[-1]
        assert seen.get(source_id) == {"contract_value": "from-the-dependency", "n": 1}

    @pytest.mark.asyncio
    async def test_invalid_inputs_rejected(
        self, contract_manager: TaskManager, invalid_inputs: list[InvalidCase]
    ) -> None:
        from aipartnerupflow.core.errors import TaskTreeValidationError

        if not invalid_inputs:
            self._missing("invalid_inputs", "(inputs, field) pairs the schema rejects")
        for inputs, name in invalid_inputs:
            try:
                outcome = await self._run_one(contract_manager, inputs)
            except TaskTreeValidationError as exc:
                message = str(exc)
            else:
                assert outcome.status == "failed", f"{inputs!r} was accepted"
                message = outcome.error or ""
            assert name in message, f"the rejection of {inputs!r} does not name {name!r}: {message}"

    @pytest.mark.asyncio
    async def test_failing_inputs_fail(
        self, contract_manager: TaskManager, failing_inputs: dict[str, Any] | None
    ) -> None:
        if failing_inputs is None:
            self._missing("failing_inputs", "inputs that make execute() fail")
        outcome = await self._run_one(contract_manager, failing_inputs)
        assert outcome.status == "failed", f"task ended {outcome.status}"
        assert isinstance(outcome.error, str), "a failed task must have an error message"
        assert outcome.error.strip(), "a failed task must have an error message"

    @pytest.mark.asyncio
    async def test_permanent_errors_are_not_retried(
        self,
        contract_manager: TaskManager,
        contract_probe: ContractProbe,
        permanent_failing_inputs: dict[str, Any] | None,
    ) -> None:
        if permanent_failing_inputs is None:
            self._missing("permanent_failing_inputs", "inputs that fail with a PermanentError")
        outcome = await self._run_one(contract_manager, permanent_failing_inputs, retry=_RETRY3)
        assert outcome.status == "failed", f"task ended {outcome.status}"
        assert contract_probe.calls == 1, (
            f"a permanent failure ran {contract_probe.calls} times with retry.max_attempts 3: "
            f"raise aipartnerupflow.core.errors.PermanentError for failures no retry can fix"
        )

    @pytest.mark.asyncio
    async def test_cancellation(
        self,
        contract_manager: TaskManager,
        contract_probe: ContractProbe,
        contract_marker: str,
        slow_inputs: dict[str, Any] | None,
        wait_until_busy: Callable[[], Awaitable[None]] | None,
    ) -> None:
        if slow_inputs is None:
            self._missing("slow_inputs", "inputs whose work lasts until cancelled")
        before = _snapshot(contract_marker)
        task = self._task(slow_inputs)
        run = asyncio.create_task(contract_manager.run_tasks([task]))
        try:
            await asyncio.wait_for(contract_probe.started.wait(), self.run_timeout)
            if wait_until_busy is not None:
                await asyncio.wait_for(wait_until_busy(), self.run_timeout)
            assert not run.done(), "the slow task ended before it could be cancelled"
            await contract_manager.cancel_task(task["id"])
            result = await asyncio.wait_for(run, self.run_timeout)
        finally:
            if not run.done():
                run.cancel()
        outcome = result.task(task["id"])
        assert outcome.status == "cancelled", f"task ended {outcome.status}: {outcome.error}"
        await _assert_nothing_leaked(before, contract_marker, "cancellation")

    @pytest.mark.asyncio
    async def test_timeout(
        self,
        contract_manager: TaskManager,
        contract_marker: str,
        slow_inputs: dict[str, Any] | None,
    ) -> None:
        if slow_inputs is None:
            self._missing("slow_inputs", "inputs whose work lasts until cancelled")
        before = _snapshot(contract_marker)
        outcome = await self._run_one(
            contract_manager, slow_inputs, timeout_seconds=self.timeout_seconds
        )
        assert outcome.status == "failed", f"task ended {outcome.status}: {outcome.error}"
        assert "timed out" in (outcome.error or ""), outcome.error
        await _assert_nothing_leaked(before, contract_marker, "a timeout")

    @pytest.mark.asyncio
    async def test_cancel_when_idle(self) -> None:
        await self._executor().cancel()

    @pytest.mark.asyncio
    async def test_output_cap_honoured(
        self, contract_manager: TaskManager, oversized_inputs: OversizedCase | None
    ) -> None:
        if oversized_inputs is None:
            self._missing("oversized_inputs", "(inputs, cap) producing more output than the cap")
        inputs, cap = oversized_inputs
        outcome = await self._run_one(contract_manager, inputs)
        assert outcome.status == "completed", f"task ended {outcome.status}: {outcome.error}"
        assert _truncation_reported(outcome.result), (
            "the result does not say it was truncated (a '...truncated' field that is true; "
            "aipartnerupflow.core.executors.OutputCap.report() gives one)"
        )
        size = len(json.dumps(outcome.result).encode())
        assert size <= 4 * cap + 16_384, f"the result is {size} bytes for a cap of {cap}"

    @pytest.mark.asyncio
    async def test_dangerous_executor_needs_opt_in(
        self,
        contract_manager: TaskManager,
        valid_inputs: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        from aipartnerupflow.core.errors import TaskTreeValidationError
        from aipartnerupflow.core.settings import reload_settings

        if not getattr(self.executor_class, "dangerous", False):
            pytest.skip("the executor is not dangerous")
        monkeypatch.delenv(_ENABLE, raising=False)
        reload_settings()
        task = self._task(valid_inputs)
        with pytest.raises(TaskTreeValidationError) as refused:
            await contract_manager.run_tasks([task])
        assert _ENABLE in str(refused.value), f"the refusal does not name {_ENABLE}"
        assert self.executor_class.id in str(refused.value)
        assert await contract_manager.storage.get_task(task["id"]) is None, "it was stored"
        monkeypatch.setenv(_ENABLE, self.executor_class.id)
        reload_settings()
        outcome = await self._run_one(contract_manager, valid_inputs)
        assert outcome.status == "completed", f"once enabled it ended {outcome.status}"

    @pytest.mark.asyncio
    async def test_loopback_denied_by_default(
        self,
        contract_manager: TaskManager,
        contract_probe: ContractProbe,
        loopback_inputs: dict[str, Any] | None,
        private_allowed: bool,
    ) -> None:
        from aipartnerupflow.core.errors import OutboundPolicyError

        if not self.network:
            pytest.skip("network = False: the executor makes no connections of its own")
        if loopback_inputs is None:
            self._missing("loopback_inputs", "inputs whose target is 127.0.0.1")
        outcome = await self._run_one(contract_manager, loopback_inputs, retry=_RETRY3)
        denied = [e for e in contract_probe.errors if isinstance(e, OutboundPolicyError)]
        if private_allowed:
            assert not denied, f"the policy allows private addresses, yet: {denied[0]}"
            return
        assert outcome.status == "failed", f"a loopback target ended {outcome.status}"
        assert denied, (
            f"a loopback target must fail with OutboundPolicyError (use "
            f"aipartnerupflow.core.executors.OutboundPolicy), not: {outcome.error}"
        )
        assert contract_probe.calls == 1, "a policy refusal must not be retried"

    @pytest.mark.asyncio
    async def test_no_secrets_in_results_errors_events_rows_or_logs(
        self,
        contract_manager: TaskManager,
        contract_probe: ContractProbe,
        valid_inputs: dict[str, Any],
        failing_inputs: dict[str, Any] | None,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        runs = [valid_inputs] + ([failing_inputs] if failing_inputs is not None else [])
        outcomes: list[tuple[TaskOutcome, list[TaskEvent], dict[str, Any]]] = []
        for inputs in runs:
            task = self._task(inputs)
            events = asyncio.create_task(_collect(contract_manager.subscribe(task["id"])))
            result = await asyncio.wait_for(contract_manager.run_tasks([task]), self.run_timeout)
            seen = await asyncio.wait_for(events, self.run_timeout)
            stored = await contract_manager.storage.get_task(task["id"])
            assert stored is not None
            row = {k: v for k, v in stored.to_dict().items() if k not in ("inputs", "params")}
            outcomes.append((result.task(task["id"]), seen, row))
        registered = sorted(contract_probe.secrets)
        if not self.secrets and not registered:
            self._missing("secrets", "secret values the executor handles (or registers)")
        for outcome, seen, row in outcomes:
            result_text = json.dumps(outcome.result, default=str)
            self._assert_no_secrets("the result", result_text, registered)
            self._assert_no_secrets("the error", str(outcome.error), registered)
            events_text = json.dumps([e.to_dict() for e in seen], default=str)
            self._assert_no_secrets("the events", events_text, registered)
            self._assert_no_secrets("the stored row", json.dumps(row, default=str), registered)
        self._assert_no_secrets("the logs", caplog.text, registered)
        for record in caplog.records:
            self._assert_no_secrets("the logs", record.getMessage(), registered)

    # -- lazy import -------------------------------------------------------------------------

    def _import_target(self) -> str:
        if self.import_target:
            return self.import_target
        cls = self.executor_class
        for ep in metadata.entry_points(group=_GROUP):
            if ep.name == cls.id:
                return ep.value
        return f"{cls.__module__}:{cls.__qualname__}"

    def test_lazy_import(self) -> None:
        if not self.heavy_modules:
            self._missing("heavy_modules", "the SDK modules importing the executor must not import")
        target = self._import_target()
        code = (
            "import importlib, json, sys\n"
            f"module, _, attr = {target!r}.partition(':')\n"
            "obj = importlib.import_module(module.strip())\n"
            "for part in filter(None, attr.strip().split('.')):\n"
            "    obj = getattr(obj, part)\n"
            f"heavy = {list(self.heavy_modules)!r}\n"
            "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=self.run_timeout,
            check=False,
        )
        assert proc.returncode == 0, f"importing {target} failed:\n{proc.stderr}"
        imported = json.loads(proc.stdout.strip().splitlines()[-1])
        assert not imported, f"importing {target} imports {imported}; import them lazily"
