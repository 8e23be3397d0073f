"""The a2a-sdk's DEBUG records never carry task payloads (inputs, tokens) to the logs."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from a2a.types import Task, TaskState, TaskStatus
from a2a_helpers import collect, in_process, send_request

from aipartnerupflow.api.sdk_logs import summarise

SECRET = "tok-3f9c1d2e-do-not-log"


def _tree() -> list[dict[str, Any]]:
    return [
        {
            "id": "root",
            "name": "root",
            "schemas": {"method": "a2a_test_echo"},
            "inputs": {"text": "hello", "auth_token": SECRET},
        }
    ]


async def test_sdk_debug_records_summarise_tasks_and_messages(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="a2a"):
        async with in_process() as server:
            client = await server.client()
            events = await collect(client.send_message(send_request(_tree())))
    assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    sdk = [r for r in caplog.records if r.name.startswith("a2a.")]
    enqueued = [r.getMessage() for r in sdk if "Enqueuing" in str(r.msg)]
    assert enqueued, "the SDK's enqueue records were not seen: the test proves nothing"
    assert any("<Task id=" in m or "<TaskStatusUpdateEvent" in m for m in enqueued)
    assert SECRET not in caplog.text
    assert "hello" not in "\n".join(r.getMessage() for r in sdk)


def test_summary_names_type_ids_and_state_only() -> None:
    task = Task(id="t1", context_id="c1", status=TaskStatus(state=TaskState.TASK_STATE_WORKING))
    task.metadata.update({"auth_token": SECRET})
    text = summarise(task)
    assert text == "<Task id=t1 context_id=c1 state=TASK_STATE_WORKING>"
