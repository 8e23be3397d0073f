"""Push notifications: delivered to a webhook receiver on loopback, SSRF guard by default."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from a2a.types import (
    AuthenticationInfo,
    DeleteTaskPushNotificationConfigRequest,
    GetTaskPushNotificationConfigRequest,
    ListTaskPushNotificationConfigsRequest,
    SendMessageConfiguration,
    SendMessageRequest,
    Task,
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
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aipartnerupflow.api.push import QueuedPushSender, push_policy
from aipartnerupflow.core.executors.policy import OutboundPolicy


@dataclass
class Receiver:
    """A webhook receiver; ``fail_first`` answers 500 to that many requests first."""

    fail_first: int = 0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    attempts: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> Starlette:
        async def hook(request: Request) -> JSONResponse:
            self.attempts += 1
            if self.attempts <= self.fail_first:
                return JSONResponse({"error": "try again"}, status_code=500)
            body = await request.json()
            self.bodies.append(body)
            self.headers.append(dict(request.headers))
            state = body.get("statusUpdate", {}).get("status", {}).get("state")
            if state in {"TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED"}:
                self.done.set()
            return JSONResponse({"ok": True})

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


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
    receiver = Receiver(fail_first=1)
    async with (
        on_loopback(receiver.app()) as hook_base,
        over_http(push_allow_private=True) as server,
    ):
        client = await server.client(streaming=False)
        task = (await collect(client.send_message(_with_push(f"{hook_base}/hook", "push-"))))[0]
        assert task.task.status.state == TaskState.TASK_STATE_COMPLETED
        await asyncio.wait_for(receiver.done.wait(), 60)  # hang guard only
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


# -- the policy, without a server ----------------------------------------------------------


class OneConfigStore:
    """A push config store holding one config for every task (the sender only reads it)."""

    def __init__(self, url: str) -> None:
        self.config = TaskPushNotificationConfig(id="hook", url=url, token="hook-token")

    async def get_info_for_dispatch(self, task_id: str) -> list[TaskPushNotificationConfig]:
        return [self.config]


def fake_resolver(answers: dict[str, list[list[str]]], real: Any) -> Any:
    """``loop.getaddrinfo`` that answers each listed name from its next list of addresses (the
    last one repeats); other names resolve for real. (Same shape as executor-http's.)"""
    calls: dict[str, int] = {}

    async def getaddrinfo(host: str, port: int, **kwargs: Any) -> list[Any]:
        if host not in answers:
            return await real(host, port, **kwargs)  # type: ignore[no-any-return]
        turn = calls[host] = calls.get(host, 0) + 1
        addresses = answers[host][min(turn, len(answers[host])) - 1]
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    return getaddrinfo


@pytest_asyncio.fixture
async def sender_for() -> AsyncIterator[Any]:
    """``sender_for(policy, url)``: a QueuedPushSender on the kit's transport; closed after."""
    made: list[QueuedPushSender] = []

    def make(policy: OutboundPolicy, url: str = "http://unused.test/") -> QueuedPushSender:
        sender = QueuedPushSender(OneConfigStore(url), policy, backoff_seconds=0)  # type: ignore[arg-type]
        made.append(sender)
        return sender

    yield make
    for sender in made:
        await sender.aclose()


@pytest.mark.parametrize(
    ("policy", "url", "allowed"),
    [
        (push_policy(), "http://127.0.0.1:8000/hook", False),
        (push_policy(), "http://[::1]/hook", False),
        (push_policy(), "http://2130706433/hook", False),  # 127.0.0.1 spelt as a number
        (push_policy(), "http://localhost:8000/hook", False),
        (push_policy(), "http://169.254.169.254/latest", False),
        (push_policy(allow_private=True), "http://169.254.169.254/latest", False),
        (push_policy(), "http://10.0.0.8/hook", False),
        (push_policy(), "file:///etc/passwd", False),
        (push_policy(), "ftp://example.com/x", False),
        (push_policy(), "not a url", False),
        (push_policy(allow_private=True), "http://127.0.0.1:8000/hook", True),
        (push_policy(allow_private=True), "gopher://127.0.0.1/x", False),
        (push_policy(allowed_hosts=["127.0.0.0/8"]), "http://127.0.0.1:9/x", True),
        (push_policy(allowed_hosts=["127.0.0.0/8"]), "http://10.1.1.1/x", False),
        (push_policy(allowed_hosts=["Hooks.Example"]), "https://hooks.example/x", True),
        (push_policy(allowed_hosts=["hooks.example"]), "https://other.example/x", False),
    ],
)
async def test_push_url_policy(
    sender_for: Any, policy: OutboundPolicy, url: str, allowed: bool
) -> None:
    assert await sender_for(policy).validate_url(url) is allowed


async def test_refused_push_urls_are_logged_without_credentials(
    sender_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aipartnerupflow.api.push")
    url = "http://hook-user:hunter2-pass@127.0.0.1:9/hook?token=tok-abc123&x=1"
    sender = sender_for(push_policy(), url)
    assert await sender.validate_url(url) is False
    # a stored config the policy refuses at delivery time (say, the policy was tightened)
    await sender.send_notification("t1", Task(id="t1", context_id="c1"))
    await sender.aclose()
    assert sender.failed == 1
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 2
    for text in refusals:
        assert "http://127.0.0.1:9/hook?token=***&x=1" in text
        assert "loopback" in text
    assert "hunter2-pass" not in caplog.text
    assert "tok-abc123" not in caplog.text
    assert "hook-user" not in caplog.text


async def test_dns_rebinding_cannot_reach_loopback(
    sender_for: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The name answers a public address when the config is validated, then 127.0.0.1: the
    delivery checks the address it connects to, so it never reaches the loopback receiver."""
    receiver = Receiver()
    async with on_loopback(receiver.app()) as hook_base:
        port = int(hook_base.rsplit(":", 1)[1])
        url = f"http://rebind.test:{port}/hook"
        loop = asyncio.get_running_loop()
        answers = {"rebind.test": [["93.184.215.14"], ["127.0.0.1"]]}
        monkeypatch.setattr(loop, "getaddrinfo", fake_resolver(answers, loop.getaddrinfo))
        sender = sender_for(push_policy(), url)
        assert await sender.validate_url(url) is True  # first answer: a public address
        await sender.send_notification("t1", Task(id="t1", context_id="c1"))
        await sender.aclose()
        assert receiver.attempts == 0
        assert (sender.delivered, sender.failed) == (0, 1)
        assert "'rebind.test' refused by the outbound policy" in caplog.text
        assert "loopback" in caplog.text

        # Control: with loopback allowed, the same name does reach the receiver, so the
        # refusal above came from the checked, pinned address and not from anything else.
        pinned = {"rebind.test": [["127.0.0.1"]]}
        monkeypatch.setattr(loop, "getaddrinfo", fake_resolver(pinned, loop.getaddrinfo))
        allowed = sender_for(push_policy(allow_private=True), url)
        await allowed.send_notification("t2", Task(id="t2", context_id="c2"))
        await allowed.aclose()
    assert (allowed.delivered, allowed.failed) == (1, 0)
    assert receiver.attempts == 1
    assert receiver.headers[0]["host"] == f"rebind.test:{port}"
    assert receiver.headers[0]["x-a2a-notification-token"] == "hook-token"
