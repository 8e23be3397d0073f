"""Registered secrets never reach results, errors, events, stored rows or log records."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aipartnerupflow.core.errors import ConfigurationError, InputValidationError
from aipartnerupflow.core.events import TaskEvent
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.executors import (
    MASK,
    SecretScrubber,
    add_secret,
    read_secret_env,
    redact_url,
    scrubbing,
)
from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.storage import create_session

SECRET = f"tok-{uuid.uuid4().hex}"
OTHER = f"pw-{uuid.uuid4().hex}"
library = logging.getLogger("some.third.party.library")


def _log_everywhere() -> None:
    library.warning("connecting with token %s", SECRET)
    library.info("f-string too: " + SECRET)
    logging.getLogger().debug("root logger %r", {"auth": SECRET})
    try:
        raise ValueError(f"the server rejected {SECRET}")
    except ValueError:
        library.exception("call failed")


class Leaky(ExecutableTask):
    """Registers a secret, then puts it everywhere an executor could."""

    id = "kit_leaky"

    async def execute(self, inputs: dict[str, Any]) -> Any:
        ctx = self.context
        assert ctx is not None
        ctx.add_secret(SECRET)
        add_secret(OTHER)  # the module-level helper reaches the same context
        _log_everywhere()
        await asyncio.to_thread(library.error, "from a thread: %s", SECRET)
        ctx.report_progress(0.5, f"half way with {SECRET}")
        if inputs.get("fail"):
            try:
                raise KeyError(OTHER)
            except KeyError as cause:
                raise RuntimeError(f"auth failed for {SECRET}") from cause
        return {
            "token": SECRET,
            SECRET: "a key too",
            "nested": [[{"deep": f"Bearer {SECRET}", "other": OTHER}]],
            "number": 3,
        }


@pytest.fixture
async def manager() -> AsyncIterator[TaskManager]:
    registry = ExecutorRegistry()
    registry.register(Leaky)
    tm = TaskManager(create_session("duckdb:///:memory:"), registry=registry)
    yield tm
    await tm.close()


async def _collect(sub: Any) -> list[TaskEvent]:
    return [event async for event in sub]


def _clean(where: str, text: str) -> None:
    assert SECRET not in text, f"the secret appears in {where}: {text[:500]}"
    assert OTHER not in text, f"the second secret appears in {where}: {text[:500]}"


@pytest.mark.parametrize("fail", [False, True])
async def test_secret_is_scrubbed_everywhere(
    manager: TaskManager, caplog: pytest.LogCaptureFixture, fail: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    tid = f"leak-{uuid.uuid4().hex[:8]}"
    sub = manager.subscribe(tid)
    events = asyncio.create_task(_collect(sub))
    tree = [
        {"id": tid, "name": "leaky", "schemas": {"method": "kit_leaky"}, "inputs": {"fail": fail}}
    ]
    result = await asyncio.wait_for(manager.run_tasks(tree), 60)
    seen = await asyncio.wait_for(events, 60)
    outcome = result.task(tid)

    assert outcome.status == ("failed" if fail else "completed")
    if fail:
        assert outcome.error is not None
        assert "auth failed for ***" in outcome.error
    else:
        assert outcome.result == {
            "token": MASK,
            MASK: "a key too",
            "nested": [[{"deep": f"Bearer {MASK}", "other": MASK}]],
            "number": 3,
        }
    _clean("the result", json.dumps(outcome.result))
    _clean("the error", str(outcome.error))

    stored = await manager.storage.get_task(tid)
    assert stored is not None
    _clean("the stored row", json.dumps(stored.to_dict(), default=str))

    assert any(e.message and MASK in e.message for e in seen), "the progress event is missing"
    _clean("the events", json.dumps([e.to_dict() for e in seen], default=str))

    messages = [r.getMessage() for r in caplog.records]
    assert any("connecting with token ***" in m for m in messages), messages
    assert any("from a thread: ***" in m for m in messages), messages
    assert any("call failed" in m for m in messages)
    _clean("the log messages", "\n".join(messages))
    _clean("the formatted logs (tracebacks included)", caplog.text)
    formatter = logging.Formatter()
    for record in caplog.records:
        _clean("a formatted record", formatter.format(record))


async def test_secrets_of_one_task_do_not_leak_into_another(manager: TaskManager) -> None:
    """Each attempt has its own scrubber: a later task's log records are not touched."""
    tree = [{"id": "a", "name": "a", "schemas": {"method": "kit_leaky"}, "inputs": {}}]
    await manager.run_tasks(tree)
    assert SecretScrubber().text(SECRET) == SECRET
    add_secret(SECRET)  # outside a task: a no-op, nothing raised


def test_scrubber_masks_longest_first_and_ignores_short_values() -> None:
    scrubber = SecretScrubber(["abcd", "abcdefgh", "xy", 42])  # type: ignore[list-item]
    assert scrubber.text("abcdefgh abcd xy") == "*** *** xy"
    assert scrubber.secrets == ("abcdefgh", "abcd")


def test_scrubber_walks_deep_structures_without_recursion() -> None:
    scrubber = SecretScrubber([SECRET])
    value: Any = SECRET
    for _ in range(5000):
        value = [{"k": value}]
    out = scrubber.data(value)
    for _ in range(5000):
        out = out[0]["k"]
    assert out == MASK


def test_scrubber_leaves_non_strings_alone() -> None:
    scrubber = SecretScrubber([SECRET])
    data = {"n": 1.5, "b": True, "none": None, "t": [SECRET, 2]}
    assert scrubber.data(data) == {"n": 1.5, "b": True, "none": None, "t": [MASK, 2]}


def test_scrubbing_scope_covers_log_records(caplog: pytest.LogCaptureFixture) -> None:
    from aipartnerupflow.core.executors.secrets import install_log_scrubbing

    install_log_scrubbing()
    caplog.set_level(logging.INFO)
    with scrubbing(SecretScrubber([SECRET])):
        library.info("inside %s", SECRET)
    library.info("outside %s", SECRET)
    assert [r.getMessage() for r in caplog.records] == [
        "inside ***",
        f"outside {SECRET}",
    ]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:pw@example.com/p?q=1", "https://example.com/p?q=1"),
        ("https://example.com/?api_key=abc&x=1", "https://example.com/?api_key=***&x=1"),
        ("https://example.com/?access_token=abc", "https://example.com/?access_token=***"),
        ("https://example.com/#frag", "https://example.com/"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_read_secret_env_needs_the_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIT_TEST_TOKEN", SECRET)
    setting = "AIPARTNERUPFLOW_SECRET_ENV"
    with pytest.raises(InputValidationError, match=setting) as refused:
        read_secret_env("KIT_TEST_TOKEN", allowed=(), setting=setting, field="token_env")
    assert SECRET not in str(refused.value)
    with pytest.raises(InputValidationError, match="must name an environment variable"):
        read_secret_env(3, allowed=("KIT_TEST_TOKEN",), setting=setting)
    with pytest.raises(ConfigurationError, match="is not set"):
        read_secret_env("KIT_UNSET_VAR", allowed=("KIT_UNSET_VAR",), setting=setting)
    scrubber = SecretScrubber()
    with scrubbing(scrubber):
        value = read_secret_env("KIT_TEST_TOKEN", allowed=["KIT_TEST_TOKEN"], setting=setting)
    assert value == SECRET
    assert scrubber.text(value) == MASK  # registered as a secret
