"""grpc_executor against a real grpcio server on loopback (see conftest.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trustme

from aipartnerupflow.core.errors import (
    InputValidationError,
    OutboundPolicyError,
    PermanentError,
    RetryableError,
)
from aipartnerupflow.core.manager import TaskManager
from aipartnerupflow.core.registry import ExecutorRegistry
from aipartnerupflow.core.settings import reload_settings
from aipartnerupflow.core.storage import create_session
from aipartnerupflow.extensions.grpc import GrpcExecutor, GrpcStatusError
from aipartnerupflow.testing.contract import ExecutorContract, InvalidCase

from .conftest import TOKEN, DemoServer, descriptor_set_b64


async def call(inputs: dict[str, Any]) -> dict[str, Any]:
    return await GrpcExecutor().execute(inputs)


async def test_unary_by_reflection(grpc_server: DemoServer) -> None:
    result = await call(
        {
            "target": grpc_server.target,
            "method": "demo.Echo/Say",
            "request": {"text": "hi", "times": 3},
            "metadata": {"x-client": "apflow"},
        }
    )
    assert result["response"] == {"text": "HI", "index": 3, "user_agent": "apflow"}
    assert result["status_code"] == "OK"
    assert result["kind"] == "unary"
    assert result["initial_metadata"]["x-served-by"] == "demo"
    assert result["trailing_metadata"]["x-trailer"] == "done"


async def test_original_field_names(grpc_server: DemoServer) -> None:
    result = await call(
        {
            "server": grpc_server.target,
            "service": "demo.Echo",
            "method": "Say",
            "request": {"text": "x"},
        }
    )
    assert result["response"]["text"] == "X"


async def test_health_service_by_reflection(grpc_server: DemoServer) -> None:
    result = await call(
        {
            "target": grpc_server.target,
            "method": "grpc.health.v1.Health/Check",
            "request": {"service": "demo.Echo"},
        }
    )
    assert result["response"] == {"status": "SERVING"}


async def test_server_streaming_collected_with_cap(grpc_server: DemoServer) -> None:
    inputs = {
        "target": grpc_server.target,
        "method": "demo.Echo/Repeat",
        "request": {"text": "r", "times": 5},
    }
    result = await call(inputs)
    assert [r["index"] for r in result["responses"]] == [0, 1, 2, 3, 4]
    assert result["truncated"] is False
    capped = await call({**inputs, "max_messages": 2})
    assert capped["count"] == 2 and capped["truncated"] is True


async def test_client_and_bidi_streaming(grpc_server: DemoServer) -> None:
    collected = await call(
        {
            "target": grpc_server.target,
            "method": "demo.Echo/Collect",
            "request": [{"text": "a"}, {"text": "b"}, {"text": "c"}],
        }
    )
    assert collected["response"] == {"text": "a+b+c", "index": 3, "user_agent": ""}
    chat = await call(
        {
            "target": grpc_server.target,
            "method": "demo.Echo/Chat",
            "request": [{"text": "a", "times": 1}, {"text": "b", "times": 2}],
        }
    )
    assert [r["text"] for r in chat["responses"]] == ["re:a", "re:b"]


async def test_descriptor_set_without_reflection(plain_server: DemoServer) -> None:
    inputs = {"target": plain_server.target, "method": "demo.Echo/Say", "request": {"text": "d"}}
    with pytest.raises(PermanentError, match=r"no server reflection.*descriptor_set"):
        await call(inputs)
    result = await call({**inputs, "descriptor_set": descriptor_set_b64()})
    assert result["response"]["text"] == "D"


async def test_descriptor_set_from_configuration(
    plain_server: DemoServer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    path = tmp_path / "demo.pb"
    path.write_bytes(base64.b64decode(descriptor_set_b64()))
    monkeypatch.setenv("AIPARTNERUPFLOW_GRPC_DESCRIPTOR_SETS", str(path))
    reload_settings()
    result = await call(
        {"target": plain_server.target, "method": "demo.Echo/Say", "request": {"text": "c"}}
    )
    assert result["response"]["text"] == "C"


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("NOT_FOUND", PermanentError),
        ("INVALID_ARGUMENT", PermanentError),
        ("PERMISSION_DENIED", PermanentError),
        ("UNAVAILABLE", RetryableError),
        ("INTERNAL", GrpcStatusError),
    ],
)
async def test_status_codes(grpc_server: DemoServer, code: str, kind: type[Exception]) -> None:
    with pytest.raises(kind) as info:
        await call(
            {
                "target": grpc_server.target,
                "method": "demo.Echo/Fail",
                "request": {"code": code, "text": "boom"},
            }
        )
    assert isinstance(info.value, GrpcStatusError)
    assert info.value.code == code
    assert f"failed with {code}: told to fail: boom" in str(info.value)
    if code == "INTERNAL":
        assert not isinstance(info.value, PermanentError | RetryableError)


async def test_deadline_exceeded_is_retryable(grpc_server: DemoServer) -> None:
    with pytest.raises(RetryableError, match="DEADLINE_EXCEEDED"):
        await call({"target": grpc_server.target, "method": "demo.Echo/Hang", "timeout": 0.3})


async def test_unavailable_server_is_retryable(unused_tcp_port: int) -> None:
    with pytest.raises(RetryableError):
        await call(
            {
                "target": f"127.0.0.1:{unused_tcp_port}",
                "method": "demo.Echo/Say",
                "descriptor_set": descriptor_set_b64(),
                "timeout": 2,
            }
        )


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        ({"method": "demo.Echo/Nope"}, "has no method 'Nope' (it has: Chat, Collect"),
        ({"method": "demo.Nothing/Say"}, "service 'demo.Nothing' is not known"),
        ({"method": "Say"}, "is not a full method name"),
        ({"method": "demo.Echo/Say", "request": {"text": 5}}, "does not fit demo.EchoRequest"),
        ({"method": "demo.Echo/Say", "request": {"nope": 1}}, "does not fit demo.EchoRequest"),
        ({"method": "demo.Echo/Say", "request": [{}]}, "takes one demo.EchoRequest"),
        ({"method": "demo.Echo/Say", "metadata": {"X-Up": "a"}}, "must be lower-case"),
    ],
)
async def test_bad_input_fails_before_any_call(
    grpc_server: DemoServer, inputs: dict[str, Any], words: str
) -> None:
    with pytest.raises(InputValidationError, match=words.replace("(", r"\(").replace(")", r"\)")):
        await call({"target": grpc_server.target, **inputs})
    calls = [m for m in grpc_server.seen_metadata]
    assert calls == []  # the service itself was never called


async def test_bad_target() -> None:
    with pytest.raises(InputValidationError, match="is not host:port"):
        await call({"target": "no-port", "method": "demo.Echo/Say"})


async def test_metadata_auth_and_secret_scrubbing(
    grpc_server: DemoServer, caplog: pytest.LogCaptureFixture
) -> None:
    ok = await call(
        {
            "target": grpc_server.target,
            "method": "demo.Echo/Secret",
            "metadata": {"authorization": f"Bearer {TOKEN}"},
        }
    )
    assert ok["response"]["text"] == "welcome"
    # Through the engine: a rejected token fails the task once (permanent), token never shown.
    registry = ExecutorRegistry()
    registry.register(GrpcExecutor, override=True)
    manager = TaskManager(create_session("duckdb:///:memory:"), registry=registry)
    caplog.set_level(logging.DEBUG)
    try:
        result = await manager.run_tasks(
            [
                {
                    "id": "t",
                    "name": "t",
                    "schemas": {"method": "grpc_executor"},
                    "retry": {"max_attempts": 3, "backoff_seconds": 0},
                    "inputs": {
                        "target": grpc_server.target,
                        "method": "demo.Echo/Secret",
                        "metadata": {"authorization": f"Bearer {TOKEN}-wrong"},
                    },
                }
            ]
        )
        outcome = result.task("t")
        assert outcome.status == "failed"
        assert "UNAUTHENTICATED" in (outcome.error or "")
        stored = await manager.task_repository.get_task_by_id("t")
        assert stored is not None and stored.attempts == 1
        # The token is in the task's own inputs (the caller put it there); never elsewhere.
        assert TOKEN not in f"{stored.result!r} {stored.error!r}" and TOKEN not in caplog.text
    finally:
        await manager.close()


async def test_loopback_denied_by_default(
    grpc_server: DemoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIPARTNERUPFLOW_GRPC_ALLOW_PRIVATE")
    reload_settings()
    with pytest.raises(OutboundPolicyError, match="AIPARTNERUPFLOW_GRPC_ALLOW_PRIVATE"):
        await call({"target": grpc_server.target, "method": "demo.Echo/Say"})
    assert grpc_server.seen_metadata == []


async def test_tls_with_test_ca(tls_server: DemoServer, ca: trustme.CA) -> None:
    pem = ca.cert_pem.bytes().decode()
    result = await call(
        {
            "target": tls_server.target,
            "method": "demo.Echo/Say",
            "request": {"text": "tls"},
            "tls": {"ca_cert": pem, "server_name": "grpc.test.local"},
        }
    )
    assert result["response"]["text"] == "TLS"
    with pytest.raises(RetryableError):  # the system roots do not trust the test CA
        await call(
            {
                "target": tls_server.target,
                "method": "demo.Echo/Say",
                "tls": True,
                "descriptor_set": descriptor_set_b64(),
                "timeout": 3,
            }
        )


async def test_cancel_reaches_the_server(grpc_server: DemoServer) -> None:
    executor = GrpcExecutor()
    job = asyncio.create_task(
        executor.execute({"target": grpc_server.target, "method": "demo.Echo/Hang", "timeout": 60})
    )
    await asyncio.to_thread(grpc_server.hang_started.wait, 10)
    await executor.cancel()
    with pytest.raises((asyncio.CancelledError, GrpcStatusError)):
        await job
    assert await asyncio.to_thread(grpc_server.cancelled.wait, 10)


async def test_channels_reused_and_closed(grpc_server: DemoServer) -> None:
    from aipartnerupflow.core.executors.resources import aclose_loop_resources, loop_resources

    inputs = {"target": grpc_server.target, "method": "demo.Echo/Say"}
    await call(inputs)
    await call(inputs)
    channels = [k for k in loop_resources() if isinstance(k, tuple) and k[0] == "grpc-aio"]
    assert len(channels) == 1
    await aclose_loop_resources()
    assert loop_resources() == {}


class TestGrpcContract(ExecutorContract):
    executor_class = GrpcExecutor
    strict = True
    network = True
    heavy_modules = ("grpc", "google.protobuf")
    secrets = (TOKEN,)

    @pytest.fixture
    def private_allowed(self) -> bool:
        return True  # conftest allows loopback: the test server is there

    @pytest.fixture
    def loopback_inputs(self, grpc_server: DemoServer) -> dict[str, Any]:
        return {"target": grpc_server.target, "method": "demo.Echo/Say"}

    @pytest.fixture
    def permanent_failing_inputs(self, grpc_server: DemoServer) -> dict[str, Any]:
        return {
            "target": grpc_server.target,
            "method": "demo.Echo/Fail",
            "request": {"code": "PERMISSION_DENIED"},
        }

    @pytest.fixture
    def oversized_inputs(self, grpc_server: DemoServer) -> tuple[dict[str, Any], int]:
        # 2,000 replies of ~10 bytes; the cap keeps about 1 KB of them.
        return {
            "target": grpc_server.target,
            "method": "demo.Echo/Repeat",
            "request": {"text": "0123456789", "times": 2000},
            "max_response_bytes": 1000,
        }, 1000

    @pytest.fixture
    def valid_inputs(self, grpc_server: DemoServer) -> dict[str, Any]:
        return {
            "target": grpc_server.target,
            "method": "demo.Echo/Say",
            "request": {"text": "c"},
            "metadata": {"authorization": f"Bearer {TOKEN}"},
        }

    @pytest.fixture
    def invalid_inputs(self) -> list[InvalidCase]:
        return [
            ({"method": "a.B/C"}, "target"),
            ({"target": "h:1", "method": "a.B/C", "timeout": -1}, "timeout"),
        ]

    @pytest.fixture
    def failing_inputs(self, grpc_server: DemoServer) -> dict[str, Any]:
        return {
            "target": grpc_server.target,
            "method": "demo.Echo/Fail",
            "request": {"code": "NOT_FOUND"},
            "metadata": {"authorization": f"Bearer {TOKEN}"},
        }

    @pytest.fixture
    def slow_inputs(self, grpc_server: DemoServer) -> dict[str, Any]:
        return {"target": grpc_server.target, "method": "demo.Echo/Hang", "timeout": 120}

    @pytest.fixture
    def wait_until_busy(self, grpc_server: DemoServer) -> Callable[[], Awaitable[None]]:
        async def wait() -> None:
            await asyncio.to_thread(grpc_server.hang_started.wait, 10)

        return wait
