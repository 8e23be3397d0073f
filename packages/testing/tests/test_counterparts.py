"""The shared test counterparts: HTTP target, fake resolver, webhook receiver, fake chat server."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl

import httpx
import pytest

from aipartnerupflow.testing.chat_server import ChatReply, FakeChatServer
from aipartnerupflow.testing.http_target import HttpTarget
from aipartnerupflow.testing.resolver import FakeResolver
from aipartnerupflow.testing.webhook import WebhookReceiver

# -- HTTP target --------------------------------------------------------------------------------


async def test_http_target_echoes_and_records(http_target: HttpTarget) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.put(f"{http_target.url}/echo/a/b?x=1", content=b"body")
    assert response.json()["path"] == "/echo/a/b"
    assert http_target.state.requests[-1]["method"] == "PUT"
    assert http_target.state.requests[-1]["query"] == [("x", "1")]


async def test_http_target_status_flaky_and_hang(http_target: HttpTarget) -> None:
    http_target.state.flaky_left = 1
    http_target.state.flaky_retry_after = "2"
    async with httpx.AsyncClient() as client:
        status = await client.get(f"{http_target.url}/status/418?retry_after=5")
        first = await client.get(f"{http_target.url}/flaky")
        second = await client.get(f"{http_target.url}/flaky")
        hang = asyncio.create_task(client.get(f"{http_target.url}/hang"))
        await http_target.state.wait_received()
        hang.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hang
    assert (status.status_code, status.headers["retry-after"]) == (418, "5")
    assert (first.status_code, first.headers["retry-after"]) == (503, "2")
    assert second.json()["ok"] is True
    assert await http_target.state.wait_disconnected()


async def test_https_target_with_the_test_ca(https_target: HttpTarget, ca_bundle: str) -> None:
    assert https_target.url.startswith("https://127.0.0.1:")
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca_bundle)) as client:
        response = await client.get(f"{https_target.url}/text")
    assert response.text == "héllo wörld"
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{https_target.url}/text")  # not trusted by default


# -- fake resolver ------------------------------------------------------------------------------


async def test_fake_resolver_answers_and_records(fake_resolver: FakeResolver) -> None:
    fake_resolver.add("svc.test", "127.0.0.1", "::1")
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo("svc.test", 80, type=socket.SOCK_STREAM)
    assert [i[4][0] for i in infos] == ["127.0.0.1", "::1"]
    only4 = await loop.getaddrinfo("SVC.test.", 80, family=socket.AF_INET)
    assert [i[4][0] for i in only4] == ["127.0.0.1"]
    with pytest.raises(socket.gaierror):
        await loop.getaddrinfo("unknown.test", 80)
    assert fake_resolver.calls == [("svc.test", 80), ("SVC.test.", 80), ("unknown.test", 80)]


async def test_fake_resolver_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = FakeResolver(fallback=True).install(monkeypatch)
    infos = await asyncio.get_running_loop().getaddrinfo("127.0.0.1", 80)
    assert infos[0][4][0] == "127.0.0.1"
    assert resolver.calls == [("127.0.0.1", 80)]


def test_fake_resolver_refuses_a_typo() -> None:
    with pytest.raises(ValueError):
        FakeResolver().add("x.test", "127.0.0.300")


# -- webhook receiver ---------------------------------------------------------------------------


async def test_webhook_receiver_fails_first_then_records(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.fail_first = 1
    async with httpx.AsyncClient() as client:
        first = await client.post(webhook_receiver.url, json={"n": 1})
        second = await client.post(webhook_receiver.url, json={"n": 2}, headers={"X-T": "v"})
        bad = await client.post(webhook_receiver.url, content=b"{nope")
        other = await client.get(webhook_receiver.url)
    assert [first.status_code, second.status_code, bad.status_code, other.status_code] == [
        500,
        200,
        400,
        404,
    ]
    assert await webhook_receiver.wait_for(lambda bodies: len(bodies) >= 1) == [{"n": 2}]
    assert webhook_receiver.headers[0]["x-t"] == "v"
    assert webhook_receiver.attempts == 3
    assert webhook_receiver.rejected == [b"{nope"]


async def test_webhook_wait_for_times_out(webhook_receiver: WebhookReceiver) -> None:
    with pytest.raises(TimeoutError, match="did not get"):
        await webhook_receiver.wait_for(lambda bodies: bool(bodies), timeout=0.1)


# -- fake chat server ---------------------------------------------------------------------------


def _auth(server: FakeChatServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.api_key}"}


async def test_chat_completion_and_default_echo(chat_server: FakeChatServer) -> None:
    chat_server.script(ChatReply.text("Hello!"))
    body = {"model": "m1", "messages": [{"role": "user", "content": "hi there"}]}
    async with httpx.AsyncClient(base_url=chat_server.base_url, headers=_auth(chat_server)) as c:
        first = (await c.post("/chat/completions", json=body)).json()
        second = (await c.post("/chat/completions", json=body)).json()
        models = (await c.get("/models")).json()
    assert first["object"] == "chat.completion"
    assert first["model"] == "m1"
    assert first["choices"][0]["message"] == {"role": "assistant", "content": "Hello!"}
    assert first["choices"][0]["finish_reason"] == "stop"
    assert first["usage"]["total_tokens"] == 15
    assert second["choices"][0]["message"]["content"] == "echo: hi there"
    assert models["data"][0]["id"] == "fake-model"
    assert chat_server.requests[0] == body


async def test_chat_json_answer_and_tool_call(chat_server: FakeChatServer) -> None:
    chat_server.script(ChatReply.json({"answer": 42}), ChatReply.tool_call("weather", {"c": "P"}))
    body = {"messages": [{"role": "user", "content": "q"}]}
    async with httpx.AsyncClient(base_url=chat_server.base_url, headers=_auth(chat_server)) as c:
        answer = (await c.post("/chat/completions", json=body)).json()
        tool = (await c.post("/chat/completions", json=body)).json()
    assert json.loads(answer["choices"][0]["message"]["content"]) == {"answer": 42}
    call = tool["choices"][0]["message"]["tool_calls"][0]
    assert call["type"] == "function"
    assert call["function"]["name"] == "weather"
    assert json.loads(call["function"]["arguments"]) == {"c": "P"}
    assert tool["choices"][0]["finish_reason"] == "tool_calls"


async def _stream(client: httpx.AsyncClient, body: dict[str, object]) -> list[object]:
    chunks: list[object] = []
    async with client.stream("POST", "/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                data = line[len("data: ") :]
                chunks.append(data if data == "[DONE]" else json.loads(data))
    return chunks


async def test_chat_streaming_text_and_tool_calls(chat_server: FakeChatServer) -> None:
    chat_server.script(
        ChatReply.text("Hello streaming world", chunks=4), ChatReply.tool_call("f", {"x": 1})
    )
    body = {"stream": True, "messages": [{"role": "user", "content": "q"}]}
    async with httpx.AsyncClient(base_url=chat_server.base_url, headers=_auth(chat_server)) as c:
        text = await _stream(c, {**body, "stream_options": {"include_usage": True}})
        tools = await _stream(c, body)
    assert text[-1] == "[DONE]"
    events = [c for c in text[:-1] if isinstance(c, dict)]
    assert all(e["object"] == "chat.completion.chunk" for e in events)
    content = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
    assert content == "Hello streaming world"
    assert len([e for e in events if e["choices"] and e["choices"][0]["delta"].get("content")]) == 4
    finals = [e["choices"][0]["finish_reason"] for e in events if e["choices"]]
    assert finals[-1] == "stop"
    assert events[-1]["usage"]["total_tokens"] == 15
    args = "".join(
        d["tool_calls"][0]["function"].get("arguments", "")
        for d in (e["choices"][0]["delta"] for e in tools[:-1] if isinstance(e, dict))
        if "tool_calls" in d
    )
    assert json.loads(args) == {"x": 1}


async def test_chat_errors_429_500_and_bad_key(chat_server: FakeChatServer) -> None:
    chat_server.script(ChatReply.error(429, retry_after=2), ChatReply.error(500))
    body = {"messages": [{"role": "user", "content": "q"}]}
    async with httpx.AsyncClient(base_url=chat_server.base_url, headers=_auth(chat_server)) as c:
        limited = await c.post("/chat/completions", json=body)
        broken = await c.post("/chat/completions", json=body)
        bad_body = await c.post("/chat/completions", json={"messages": "no"})
    async with httpx.AsyncClient(base_url=chat_server.base_url) as anonymous:
        refused = await anonymous.post("/chat/completions", json=body)
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "2")
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert broken.status_code == 500
    assert bad_body.status_code == 400
    assert refused.status_code == 401
    assert len(chat_server.requests) == 2  # only well-formed, authorised requests are recorded


async def test_chat_reply_delay_is_recorded_first(chat_server: FakeChatServer) -> None:
    chat_server.script(ChatReply.text("late", delay=600))
    body = {"messages": [{"role": "user", "content": "slow"}]}
    async with httpx.AsyncClient(base_url=chat_server.base_url, headers=_auth(chat_server)) as c:
        pending = asyncio.create_task(c.post("/chat/completions", json=body))
        while not chat_server.requests:  # recorded on arrival, before the delay
            await asyncio.sleep(0.01)
        assert not pending.done()
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
    assert chat_server.requests == [body]
