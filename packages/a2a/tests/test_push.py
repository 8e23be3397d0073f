"""Push notifications: delivered to a webhook receiver on loopback, SSRF guard by default."""

from __future__ import annotations

from typing import Any

from a2a.types import (
    AuthenticationInfo,
    DeleteTaskPushNotificationConfigRequest,
    GetTaskPushNotificationConfigRequest,
    ListTaskPushNotificationConfigsRequest,
    SendMessageConfiguration,
    SendMessageRequest,
    TaskPushNotificationConfig,
    TaskState,
)
from a2a_helpers import (
    chain,
    collect,
    in_process,
    on_loopback,
    over_http,
    send_request,
    tasks_message,
)

from aipartnerupflow.testing.webhook import WebhookReceiver

_TERMINAL = {"TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED"}


def _finished(bodies: list[Any]) -> bool:
    """Whether the receiver has seen the task's terminal status update."""
    return any(
        b.get("statusUpdate", {}).get("status", {}).get("state") in _TERMINAL for b in bodies
    )


def _with_push(url: str, prefix: str) -> SendMessageRequest:
    config = SendMessageConfiguration(
        task_push_notification_config=TaskPushNotificationConfig(
            url=url,
            token="secret-token",
            id="hook-1",
            authentication=AuthenticationInfo(scheme="Bearer", credentials="hook-credential"),
        )
    )
    return SendMessageRequest(message=tasks_message(chain(prefix)), configuration=config)


async def test_push_notifications_reach_a_loopback_receiver_when_allowed() -> None:
    receiver = WebhookReceiver(fail_first=1)
    async with (
        on_loopback(receiver.app()) as hook_base,
        over_http(push_allow_private=True) as server,
    ):
        client = await server.client(streaming=False)
        task = (await collect(client.send_message(_with_push(f"{hook_base}/hook", "push-"))))[0]
        assert task.task.status.state == TaskState.TASK_STATE_COMPLETED
        await receiver.wait_for(_finished, 60)  # hang guard only
    assert receiver.attempts == len(receiver.bodies) + 1  # the first attempt was retried
    assert "task" in receiver.bodies[0]
    assert all(h["x-a2a-notification-token"] == "secret-token" for h in receiver.headers)
    assert all(h["authorization"] == "Bearer hook-credential" for h in receiver.headers)
    kinds = [next(iter(b)) for b in receiver.bodies]
    assert "artifactUpdate" in kinds
    assert kinds[-1] == "statusUpdate"
    ids = {b[k].get("taskId", b[k].get("id")) for b, k in zip(receiver.bodies, kinds, strict=True)}
    assert ids == {task.task.id}


async def test_loopback_push_targets_are_refused_by_default() -> None:
    async with in_process() as server:
        client = await server.client(streaming=False)
        task = (await collect(client.send_message(send_request(chain("nopush-")))))[0].task
        create = await server.rpc(
            "CreateTaskPushNotificationConfig",
            {"taskId": task.id, "url": "http://127.0.0.1:9/hook"},
        )
        metadata = await server.rpc(
            "CreateTaskPushNotificationConfig",
            {"taskId": task.id, "url": "http://169.254.169.254/latest/meta-data"},
        )
        on_send = await server.rpc(
            "SendMessage",
            {
                "message": {
                    "messageId": "m9",
                    "role": "ROLE_USER",
                    "parts": [{"data": {"tasks": chain("nopush2-")}}],
                },
                "configuration": {"taskPushNotificationConfig": {"url": "http://localhost:1/x"}},
            },
        )
    for response in (create, metadata, on_send):
        error = response.json()["error"]
        assert error["code"] == -32602
        assert "push notification URL" in error["message"]


async def test_allow_listed_hosts_and_config_crud() -> None:
    async with in_process(push_allowed_hosts="hooks.example, 10.0.0.0/8") as server:
        client = await server.client(streaming=False)
        task = (await collect(client.send_message(send_request(chain("crud-")))))[0].task
        created = await client.create_task_push_notification_config(
            TaskPushNotificationConfig(
                task_id=task.id, id="c1", url="https://hooks.example/a", token="t1"
            )
        )
        assert created.id == "c1"
        await client.create_task_push_notification_config(
            TaskPushNotificationConfig(task_id=task.id, id="c2", url="http://10.1.2.3/b")
        )
        got = await client.get_task_push_notification_config(
            GetTaskPushNotificationConfigRequest(task_id=task.id, id="c1")
        )
        assert got.url == "https://hooks.example/a"
        listed = await client.list_task_push_notification_configs(
            ListTaskPushNotificationConfigsRequest(task_id=task.id)
        )
        assert sorted(c.id for c in listed.configs) == ["c1", "c2"]
        await client.delete_task_push_notification_config(
            DeleteTaskPushNotificationConfigRequest(task_id=task.id, id="c1")
        )
        listed = await client.list_task_push_notification_configs(
            ListTaskPushNotificationConfigsRequest(task_id=task.id)
        )
        assert [c.id for c in listed.configs] == ["c2"]
        refused = await server.rpc(
            "CreateTaskPushNotificationConfig", {"taskId": task.id, "url": "http://127.0.0.1/hook"}
        )
        assert refused.json()["error"]["code"] == -32602
