"""The executor contract: tests every executor package runs, ours and third parties' alike.

Subclass :class:`ExecutorContract` in a test module, say which executor it checks, and give it
inputs. pytest collects the inherited tests (the subclass name must start with ``Test``)::

    import pytest
    from aipartnerupflow.testing.contract import ExecutorContract
    from my_package.executor import MyExecutor


    class TestMyExecutorContract(ExecutorContract):
        executor_class = MyExecutor
        heavy_modules = ("my_sdk",)          # importing the entry point must not import these
        secrets = ("s3cr3t-token",)          # must never appear in results, errors or logs

        @pytest.fixture
        def valid_inputs(self, my_server):   # fixtures may use your own fixtures
            return {"url": my_server.url, "token": "s3cr3t-token"}

        @pytest.fixture
        def invalid_inputs(self):            # (inputs, name of the offending field) pairs
            return [({}, "url"), ({"url": 3}, "url")]

        @pytest.fixture
        def failing_inputs(self, my_server):
            return {"url": my_server.url + "/error"}

        @pytest.fixture
        def slow_inputs(self, my_server):    # runs until cancelled
            return {"url": my_server.url + "/hang"}

What is checked:

* identity: ``id``, ``name``, ``description`` are non-empty strings, ``tags`` a list of strings,
  ``examples`` JSON-serialisable; ``id`` is a lower-case identifier;
* the entry point (unless ``entry_point = False``): an ``aipartnerupflow.executors`` entry point
  named ``id`` is installed and resolves to ``executor_class`` or one of its bases;
* the input schema is a valid JSON Schema (``jsonschema``'s ``check_schema``) of an object, and
  ``valid_inputs`` and the inputs of every example match it;
* through a real :class:`~aipartnerupflow.TaskManager` (in-memory DuckDB): valid inputs complete
  with a strict-JSON result; each invalid input is rejected with its field named (when the tree
  is created, or as the task's error); failing inputs end the task ``failed`` with a message;
  cancelling a running task ends it ``cancelled`` (``slow_inputs``); ``cancel()`` on an idle
  executor is harmless;
* no secret appears in results, errors or log records (captured at DEBUG);
* lazy import: in a fresh interpreter, importing the entry-point target imports none of
  ``heavy_modules``.

Tests whose fixture returns ``None`` (or an empty list) are skipped, so start small. The
executor is registered in a private registry for these tests, so the process-wide registry is
untouched. Override ``executor_params`` for constructor params (task ``params``), and
``wait_until_busy`` (a fixture returning an async callable) to wait, before cancelling, until the
work is really under way (for instance until your test server has received the request).
``run_timeout`` only guards against a hang; it is not a speed requirement.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
import pytest_asyncio

from aipartnerupflow.core.executor import ExecutableTask

if TYPE_CHECKING:
    from aipartnerupflow.core.manager import TaskManager
    from aipartnerupflow.core.registry import ExecutorRegistry
    from aipartnerupflow.core.results import TaskOutcome

__all__ = ["ExecutorContract", "InvalidCase"]

#: An invalid input and the name of the field the rejection must mention.
InvalidCase = tuple[dict[str, Any], str]

_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_GROUP = "aipartnerupflow.executors"


class _Probe:
    """Signals when an executor's ``execute`` starts (used by the cancellation test)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()


def _probe_class(cls: type[ExecutableTask], probe: _Probe) -> type[ExecutableTask]:
    class Probe(cls):  # type: ignore[valid-type,misc]
        id = f"{cls.id}__contract_probe"

        async def execute(self, inputs: dict[str, Any]) -> Any:
            probe.started.set()
            return await super().execute(inputs)

    Probe.__name__ = Probe.__qualname__ = f"{cls.__name__}ContractProbe"
    return Probe


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
    #: Strings that must never appear in results, errors or logs.
    secrets: ClassVar[Sequence[str]] = ()
    #: Seconds after which an engine run is considered hung (a guard, not a speed check).
    run_timeout: ClassVar[float] = 120.0

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
    def slow_inputs(self) -> dict[str, Any] | None:
        """Inputs whose work lasts until cancelled (None skips the cancellation test)."""
        return None

    @pytest.fixture
    def wait_until_busy(self) -> Callable[[], Awaitable[None]] | None:
        """An async callable awaited after ``execute`` starts and before cancelling."""
        return None

    # -- machinery ---------------------------------------------------------------------------

    def _executor(self) -> ExecutableTask:
        return self.executor_class(**self.executor_params)

    @pytest.fixture
    def contract_registry(self) -> ExecutorRegistry:
        """A private registry that knows the executor under test."""
        from aipartnerupflow.core.registry import ExecutorRegistry

        registry = ExecutorRegistry()
        registry.register(self.executor_class, override=True)
        return registry

    @pytest_asyncio.fixture
    async def contract_manager(
        self, contract_registry: ExecutorRegistry
    ) -> AsyncIterator[TaskManager]:
        """A TaskManager (in-memory DuckDB) using :meth:`contract_registry`."""
        from aipartnerupflow.core.manager import TaskManager
        from aipartnerupflow.core.storage import create_session

        manager = TaskManager(create_session("duckdb:///:memory:"), registry=contract_registry)
        try:
            yield manager
        finally:
            await manager.close()

    def _task(self, inputs: dict[str, Any], method: str | None = None) -> dict[str, Any]:
        executor_id = method or self.executor_class.id
        return {
            "id": f"contract-{uuid.uuid4().hex[:12]}",
            "name": f"contract {executor_id}",
            "schemas": {"method": executor_id},
            "params": dict(self.executor_params),
            "inputs": inputs,
        }

    async def _run_one(self, manager: TaskManager, inputs: dict[str, Any]) -> TaskOutcome:
        task = self._task(inputs)
        result = await asyncio.wait_for(manager.run_tasks([task]), self.run_timeout)
        return result.task(task["id"])

    def _assert_no_secrets(self, where: str, text: str) -> None:
        for secret in self.secrets:
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
            pytest.skip("no example has an 'inputs' object")
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
    async def test_invalid_inputs_rejected(
        self, contract_manager: TaskManager, invalid_inputs: list[InvalidCase]
    ) -> None:
        from aipartnerupflow.core.errors import TaskTreeValidationError

        if not invalid_inputs:
            pytest.skip("no invalid_inputs given")
        for inputs, field in invalid_inputs:
            try:
                outcome = await self._run_one(contract_manager, inputs)
            except TaskTreeValidationError as exc:
                message = str(exc)
            else:
                assert outcome.status == "failed", f"{inputs!r} was accepted"
                message = outcome.error or ""
            assert field in message, (
                f"the rejection of {inputs!r} does not name {field!r}: {message}"
            )

    @pytest.mark.asyncio
    async def test_failing_inputs_fail(
        self, contract_manager: TaskManager, failing_inputs: dict[str, Any] | None
    ) -> None:
        if failing_inputs is None:
            pytest.skip("no failing_inputs given")
        outcome = await self._run_one(contract_manager, failing_inputs)
        assert outcome.status == "failed", f"task ended {outcome.status}"
        assert isinstance(outcome.error, str), "a failed task must have an error message"
        assert outcome.error.strip(), "a failed task must have an error message"

    @pytest.mark.asyncio
    async def test_cancellation(
        self,
        contract_registry: ExecutorRegistry,
        contract_manager: TaskManager,
        slow_inputs: dict[str, Any] | None,
        wait_until_busy: Callable[[], Awaitable[None]] | None,
    ) -> None:
        if slow_inputs is None:
            pytest.skip("no slow_inputs given")
        probe = _Probe()
        probe_cls = _probe_class(self.executor_class, probe)
        contract_registry.register(probe_cls, override=True)
        task = self._task(slow_inputs, method=probe_cls.id)
        run = asyncio.create_task(contract_manager.run_tasks([task]))
        try:
            await asyncio.wait_for(probe.started.wait(), self.run_timeout)
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

    @pytest.mark.asyncio
    async def test_cancel_when_idle(self) -> None:
        await self._executor().cancel()

    @pytest.mark.asyncio
    async def test_no_secrets_in_results_errors_or_logs(
        self,
        contract_manager: TaskManager,
        valid_inputs: dict[str, Any],
        failing_inputs: dict[str, Any] | None,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        if not self.secrets:
            pytest.skip("no secrets given")
        caplog.set_level(logging.DEBUG)
        outcome = await self._run_one(contract_manager, valid_inputs)
        self._assert_no_secrets("the result", json.dumps(outcome.result, default=str))
        self._assert_no_secrets("the error", str(outcome.error))
        if failing_inputs is not None:
            outcome = await self._run_one(contract_manager, failing_inputs)
            self._assert_no_secrets("the result", json.dumps(outcome.result, default=str))
            self._assert_no_secrets("the error", str(outcome.error))
        self._assert_no_secrets("the logs", caplog.text)
        for record in caplog.records:
            self._assert_no_secrets("the logs", record.getMessage())

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
            pytest.skip("no heavy_modules given")
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
