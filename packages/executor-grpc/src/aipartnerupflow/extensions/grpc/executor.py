"""``grpc_executor``: one real gRPC call per task (unary, server-, client- or bidi-streaming).

Importing this module imports neither grpcio nor protobuf; the first call does.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aipartnerupflow.core.errors import (
    ConfigurationError,
    ExecutorError,
    InputValidationError,
    PermanentError,
    RetryableError,
)
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.executors.caps import effective_limit
from aipartnerupflow.core.executors.resources import loop_resource
from aipartnerupflow.core.executors.secrets import add_secret, is_sensitive_name
from aipartnerupflow.extensions.grpc.settings import GrpcSettings

if TYPE_CHECKING:
    from google.protobuf.message import Message

    import grpc
    from aipartnerupflow.extensions.grpc.descriptors import MethodTypes

__all__ = ["INPUT_SCHEMA", "GrpcExecutor", "GrpcStatusError"]

DEFAULT_TIMEOUT = 30.0

#: Status codes a later attempt may fix, and those no retry can fix.
RETRYABLE = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED"})
PERMANENT = frozenset(
    {
        "INVALID_ARGUMENT",
        "NOT_FOUND",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "UNIMPLEMENTED",
        "FAILED_PRECONDITION",
        "OUT_OF_RANGE",
        "ALREADY_EXISTS",
    }
)

_PEM = {"type": "string", "minLength": 1}
_SECRET = {"writeOnly": True, "description": "a string (never shown in results, errors or logs)"}

INPUT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "grpc_executor inputs",
    "type": "object",
    "properties": {
        "target": {
            "type": "string",
            "minLength": 1,
            "description": "host:port of the server ([v6 address]:port for IPv6).",
        },
        "server": {"type": "string", "minLength": 1, "description": "Alias of target."},
        "method": {
            "type": "string",
            "minLength": 1,
            "description": "Full method name: package.Service/Method.",
        },
        "service": {
            "type": "string",
            "description": "package.Service, when method holds only the method name.",
        },
        "request": {
            "description": "The request message as JSON (protobuf JSON mapping); a list of "
            "messages for client-streaming and bidi-streaming methods.",
            "type": ["object", "array"],
        },
        "metadata": {
            "type": "object",
            "description": "Request metadata (lower-case keys); values of auth-like keys are "
            "secrets. Keys ending in -bin take base64.",
            "additionalProperties": _SECRET,
        },
        "timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": DEFAULT_TIMEOUT,
            "description": "Deadline of the call (and of the reflection lookup), in seconds.",
        },
        "tls": {
            "description": "true for TLS with the trusted roots, or an object.",
            "anyOf": [
                {"type": "boolean"},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "ca_cert": {**_PEM, "description": "PEM of CAs to trust for this call."},
                        "client_cert": {**_PEM, "description": "PEM client certificate chain."},
                        "client_key": {**_SECRET, "description": "PEM private key (secret)."},
                        "server_name": {
                            "type": "string",
                            "minLength": 1,
                            "description": "Name the server certificate must carry.",
                        },
                    },
                },
            ],
        },
        "descriptor_set": {
            "type": "string",
            "description": "base64 of a serialized FileDescriptorSet with the method's types "
            "(default: ask the server's reflection service).",
        },
        "max_messages": {"type": "integer", "minimum": 1},
        "max_response_bytes": {"type": "integer", "minimum": 1},
    },
    "required": ["method"],  # and target (or server): checked in execute, naming the field
    # Dependency results arrive under their task ids: extra keys are allowed (and ignored).
    "additionalProperties": True,
}


class GrpcStatusError(ExecutorError):
    """The server answered with a non-OK status (``code`` is its name, e.g. ``NOT_FOUND``)."""

    def __init__(self, message: str, code: str, details: str) -> None:
        super().__init__(message)
        self.code = code
        self.details = details


class _PermanentStatus(GrpcStatusError, PermanentError):
    pass


class _RetryableStatus(GrpcStatusError, RetryableError):
    pass


def _status_error(code: str, details: str, path: str) -> GrpcStatusError:
    text = f"{path} failed with {code}" + (f": {details}" if details else "")
    if code in RETRYABLE:
        return _RetryableStatus(text, code, details)
    if code in PERMANENT:
        return _PermanentStatus(text, code, details)
    return GrpcStatusError(text, code, details)


def _split_target(target: str) -> tuple[str, int]:
    text = target.strip()
    for prefix in ("dns:///", "grpc://", "grpcs://"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    host, sep, port = text.rpartition(":")
    if text.startswith("[") and "]" in text:
        host, _, rest = text[1:].partition("]")
        sep, port = ":", rest.removeprefix(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputValidationError(
            f"input 'target': {target!r} is not host:port (for example 'api.example.com:443')"
        )
    return host, int(port)


@dataclass(frozen=True, slots=True)
class _Tls:
    root: bytes | None
    key: bytes | None
    chain: bytes | None
    server_name: str | None


@dataclass(frozen=True, slots=True)
class _ChannelKey:
    target: str  # ipv4:1.2.3.4:50051: the checked address, never resolved again
    authority: str
    tls: _Tls | None
    max_bytes: int


def _tls(spec: Any, settings: GrpcSettings) -> _Tls | None:
    if spec is None or spec is False:
        return None
    root = None
    if settings.ca_bundle:
        try:
            with open(settings.ca_bundle, "rb") as fh:
                root = fh.read()
        except OSError as exc:
            raise ConfigurationError(
                f"AIPARTNERUPFLOW_GRPC_CA_BUNDLE: cannot read {settings.ca_bundle!r}: "
                f"{exc.strerror}"
            ) from None
    if spec is True:
        return _Tls(root, None, None, None)
    key = spec.get("client_key")
    if key is not None and not isinstance(key, str):
        raise InputValidationError("input 'tls.client_key' must be a PEM string")
    if key:
        add_secret(key)
    if bool(key) != bool(spec.get("client_cert")):
        raise InputValidationError("inputs 'tls.client_cert' and 'tls.client_key' go together")
    ca = spec.get("ca_cert")
    return _Tls(
        root=ca.encode() if ca else root,
        key=key.encode() if key else None,
        chain=spec["client_cert"].encode() if spec.get("client_cert") else None,
        server_name=spec.get("server_name"),
    )


def _metadata(raw: Any) -> list[tuple[str, str | bytes]]:
    out: list[tuple[str, str | bytes]] = []
    for key, value in (raw or {}).items():
        name = str(key)
        if name != name.lower() or not name or any(c.isspace() for c in name):
            raise InputValidationError(
                f"input 'metadata': key {name!r} must be lower-case with no spaces"
            )
        if not isinstance(value, str):
            raise InputValidationError(f"input 'metadata.{name}' must be a string")
        if is_sensitive_name(name):
            add_secret(value)
        if name.endswith("-bin"):
            try:
                out.append((name, base64.b64decode(value, validate=True)))
            except (binascii.Error, ValueError):
                raise InputValidationError(
                    f"input 'metadata.{name}': keys ending in -bin take base64"
                ) from None
        else:
            out.append((name, value))
    return out


def _channel_options(key: _ChannelKey) -> list[tuple[str, Any]]:
    options: list[tuple[str, Any]] = [
        ("grpc.default_authority", key.authority),
        ("grpc.enable_http_proxy", 0),  # the policy checked the target, not a proxy
        ("grpc.max_receive_message_length", key.max_bytes),
        # Connections belong to this channel, so closing it closes them (the global pool
        # would keep them open for other channels).
        ("grpc.use_local_subchannel_pool", 1),
    ]
    if key.tls is not None and key.tls.server_name:
        options.append(("grpc.ssl_target_name_override", key.tls.server_name))
    elif key.tls is not None:
        options.append(("grpc.ssl_target_name_override", key.authority.rpartition(":")[0]))
    return options


def _credentials(tls: _Tls) -> grpc.ChannelCredentials:
    import grpc

    return grpc.ssl_channel_credentials(
        root_certificates=tls.root, private_key=tls.key, certificate_chain=tls.chain
    )


def _aio_channel(key: _ChannelKey) -> grpc.aio.Channel:
    import grpc

    options = _channel_options(key)
    if key.tls is None:
        return grpc.aio.insecure_channel(key.target, options=options)
    return grpc.aio.secure_channel(key.target, _credentials(key.tls), options=options)


def _sync_channel(key: _ChannelKey) -> grpc.Channel:
    import grpc

    options = _channel_options(key)
    if key.tls is None:
        return grpc.insecure_channel(key.target, options=options)
    return grpc.secure_channel(key.target, _credentials(key.tls), options=options)


async def _close_aio(channel: grpc.aio.Channel) -> None:
    await channel.close()


def _address_target(address: str, port: int) -> str:
    return f"ipv6:[{address}]:{port}" if ":" in address else f"ipv4:{address}:{port}"


def _parse(types: MethodTypes, request: Any) -> list[Message]:
    from google.protobuf import json_format

    name = types.request.DESCRIPTOR.full_name
    if types.client_streaming:
        items = request if isinstance(request, list) else [request]
    elif isinstance(request, list):
        raise InputValidationError(
            f"input 'request': {types.path} takes one {name} message (an object), not a list"
        )
    else:
        items = [request]
    messages = []
    for i, item in enumerate(items):
        where = f"request[{i}]" if types.client_streaming else "request"
        if item is None:
            item = {}
        if not isinstance(item, dict):
            raise InputValidationError(f"input '{where}' must be an object ({name})")
        try:
            messages.append(json_format.ParseDict(item, types.request()))
        except json_format.ParseError as exc:
            raise InputValidationError(f"input '{where}' does not fit {name}: {exc}") from None
    return messages


def _to_json(message: Message) -> dict[str, Any]:
    from google.protobuf import json_format

    data: dict[str, Any] = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return data


def _metadata_json(metadata: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in metadata or ():
        shown = base64.b64encode(value).decode() if isinstance(value, bytes) else value
        out.setdefault(key, []).append(shown)
    return {k: v[0] if len(v) == 1 else v for k, v in out.items()}


class GrpcExecutor(ExecutableTask):
    """Call one gRPC method and return its response(s) as JSON."""

    id = "grpc_executor"
    name = "gRPC call"
    description = (
        "Call a gRPC method (unary or streaming) with a JSON request; message types come from "
        "server reflection or a FileDescriptorSet. Targets are limited by the outbound policy."
    )
    tags = ["grpc", "rpc", "protobuf", "api"]
    examples = [
        {
            "title": "Health check",
            "inputs": {
                "target": "api.example.com:443",
                "tls": True,
                "method": "grpc.health.v1.Health/Check",
                "request": {"service": ""},
            },
        }
    ]
    input_schema = INPUT_SCHEMA
    params_schema = {"type": "object", "additionalProperties": False, "properties": {}}

    def __init__(self) -> None:
        self._call: Any = None

    async def cancel(self) -> None:
        """Cancel the call in flight (the server sees CANCELLED)."""
        call = self._call
        if call is not None:
            call.cancel()

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Make the call described by ``inputs``."""
        settings = GrpcSettings.get()
        policy = settings.policy()
        raw_target = inputs.get("target") or inputs.get("server")
        if not isinstance(raw_target, str):
            raise InputValidationError("input 'target' (host:port) is required")
        host, port = _split_target(raw_target)
        from aipartnerupflow.extensions.grpc.descriptors import split_method

        service, method = split_method(str(inputs["method"]), inputs.get("service"))
        metadata = _metadata(inputs.get("metadata"))
        tls = _tls(inputs.get("tls"), settings)
        timeout = float(inputs.get("timeout", DEFAULT_TIMEOUT))
        max_bytes = effective_limit(inputs.get("max_response_bytes"), settings.max_response_bytes)
        max_messages = effective_limit(inputs.get("max_messages"), settings.max_messages)
        started = time.monotonic()
        try:
            addresses = await asyncio.wait_for(policy.resolve(host, port), timeout)
        except ConnectionError as exc:
            raise RetryableError(f"{raw_target}: {exc}") from None
        except TimeoutError:
            raise RetryableError(f"{raw_target}: resolving timed out after {timeout:g}s") from None
        key = _ChannelKey(
            target=_address_target(addresses[0], port),
            authority=f"{host}:{port}",
            tls=tls,
            max_bytes=max_bytes,
        )
        types = await self._types(key, inputs, service, method, timeout, raw_target, settings)
        messages = _parse(types, inputs.get("request"))
        resource = ("grpc-aio", key)
        channel = await loop_resource(resource, lambda: _aio_channel(key), _close_aio)
        cancelled = False
        try:
            result = await self._call_method(
                channel, types, messages, metadata, timeout, max_bytes, max_messages
            )
        except asyncio.CancelledError:
            cancelled = True
        if cancelled:
            # Raised afresh, outside the handler: the original's traceback runs through
            # grpc's call objects, and whoever keeps the exception (a log, a test) would keep
            # the call and so its connection alive after the channel is closed.
            raise asyncio.CancelledError
        result["duration"] = round(time.monotonic() - started, 6)
        result["target"] = raw_target
        return result

    async def _types(
        self,
        key: _ChannelKey,
        inputs: dict[str, Any],
        service: str,
        method: str,
        deadline: float,
        shown: str,
        settings: GrpcSettings,
    ) -> MethodTypes:
        from aipartnerupflow.extensions.grpc import descriptors

        if "descriptor_set" in inputs:
            pool = descriptors.pool_from_sets(
                [descriptors.descriptor_set_from_base64(inputs["descriptor_set"])]
            )
            return descriptors.find_method(
                pool, service, method, source="the task's descriptor_set"
            )
        if settings.descriptor_sets:
            sets = descriptors.descriptor_sets_from_files(settings.descriptor_sets)
            pool = descriptors.pool_from_sets(sets)
            return descriptors.find_method(
                pool, service, method, source="the configured descriptor sets"
            )
        return await self._reflect(key, service, method, deadline, shown)

    async def _reflect(
        self, key: _ChannelKey, service: str, method: str, deadline: float, shown: str
    ) -> MethodTypes:
        import grpc
        from aipartnerupflow.extensions.grpc import descriptors

        def lookup() -> MethodTypes:
            # A short-lived channel: the reflection client keeps a stream (and a thread) open
            # for as long as its channel lives. The found message classes outlive it.
            channel = _sync_channel(key)
            try:
                grpc.channel_ready_future(channel).result(timeout=deadline)
                pool = descriptors.reflection_pool(channel)
                return descriptors.find_method(
                    pool, service, method, source=f"{shown}'s reflection service"
                )
            finally:
                channel.close()

        async def reflect() -> MethodTypes:
            try:
                # The reflection client is blocking: run it off the event loop.
                return await asyncio.wait_for(asyncio.to_thread(lookup), deadline)
            except (TimeoutError, grpc.FutureTimeoutError):
                raise RetryableError(
                    f"{shown}: no answer from the server's reflection service within {deadline:g}s"
                ) from None
            except grpc.RpcError as exc:
                code = exc.code().name if hasattr(exc, "code") else "UNKNOWN"
                if code == "UNIMPLEMENTED":
                    raise PermanentError(
                        f"{shown} has no server reflection: give the message types as "
                        "'descriptor_set' (base64 FileDescriptorSet) or configure "
                        "AIPARTNERUPFLOW_GRPC_DESCRIPTOR_SETS"
                    ) from None
                details = exc.details() if hasattr(exc, "details") else str(exc)
                raise _status_error(code, details or "", "server reflection") from None

        # Found types are kept per loop and target, so later calls skip the lookup.
        return await loop_resource(("grpc-types", key, service, method), reflect, lambda _: None)

    async def _call_method(
        self,
        channel: grpc.aio.Channel,
        types: MethodTypes,
        messages: list[Message],
        metadata: list[tuple[str, str | bytes]],
        deadline: float,
        max_bytes: int,
        max_messages: int,
    ) -> dict[str, Any]:
        import grpc

        serialize = types.request.SerializeToString
        deserialize = types.response.FromString
        kind = types.kind
        truncated = False
        responses: list[dict[str, Any]] = []
        call: Any = None
        try:
            if kind == "unary":
                call = channel.unary_unary(
                    types.path, request_serializer=serialize, response_deserializer=deserialize
                )(messages[0], timeout=deadline, metadata=metadata)
            elif kind == "server-streaming":
                call = channel.unary_stream(
                    types.path, request_serializer=serialize, response_deserializer=deserialize
                )(messages[0], timeout=deadline, metadata=metadata)
            elif kind == "client-streaming":
                call = channel.stream_unary(
                    types.path, request_serializer=serialize, response_deserializer=deserialize
                )(_iterate(messages), timeout=deadline, metadata=metadata)
            else:
                call = channel.stream_stream(
                    types.path, request_serializer=serialize, response_deserializer=deserialize
                )(_iterate(messages), timeout=deadline, metadata=metadata)
            self._call = call
            if types.server_streaming:
                size = 0
                async for reply in call:
                    size += reply.ByteSize()
                    if len(responses) >= max_messages or size > max_bytes:
                        truncated = True
                        call.cancel()
                        break
                    responses.append(_to_json(reply))
                single = None
            else:
                single = _to_json(await call)
            trailing = await call.trailing_metadata() if not truncated else None
            initial = await call.initial_metadata()
        except grpc.aio.AioRpcError as exc:
            raise _status_error(exc.code().name, exc.details() or "", types.path) from None
        finally:
            # A traceback kept by the caller (a cancelled task's exception) holds this frame;
            # the call object in it would keep the connection open after the channel closed.
            self._call = call = None
        result: dict[str, Any] = {
            "method": types.path,
            "kind": kind,
            "status_code": "OK",
            "initial_metadata": _metadata_json(initial),
            "trailing_metadata": _metadata_json(trailing),
        }
        if types.server_streaming:
            result.update(
                responses=responses,
                count=len(responses),
                truncated=truncated,
                max_messages=max_messages,
            )
        else:
            result["response"] = single
        return result


async def _iterate(messages: list[Message]) -> AsyncIterator[Message]:
    for message in messages:
        yield message
