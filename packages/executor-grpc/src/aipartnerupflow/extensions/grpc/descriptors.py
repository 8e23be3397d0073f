"""Finding a method's message types: a FileDescriptorSet, or the server's reflection service.

This module imports protobuf and grpcio; the executor imports it on first use only.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

import grpc
from aipartnerupflow.core.errors import ConfigurationError, InputValidationError

__all__ = ["MethodTypes", "find_method", "pool_from_sets", "reflection_pool", "split_method"]


@dataclass(frozen=True, slots=True)
class MethodTypes:
    """What a call needs: the wire path, message classes and streaming kinds."""

    path: str  # /package.Service/Method
    request: type[Message]
    response: type[Message]
    client_streaming: bool
    server_streaming: bool

    @property
    def kind(self) -> str:
        """unary, server-streaming, client-streaming or bidi-streaming."""
        if self.client_streaming and self.server_streaming:
            return "bidi-streaming"
        if self.client_streaming:
            return "client-streaming"
        return "server-streaming" if self.server_streaming else "unary"


def split_method(method: str, service: str | None = None) -> tuple[str, str]:
    """``(package.Service, Method)`` from ``package.Service/Method`` (a leading ``/`` and the
    original project's separate ``service`` field are accepted)."""
    text = method.strip().lstrip("/")
    if service:
        svc, name = service.strip().strip("/"), text
    elif "/" in text:
        svc, _, name = text.rpartition("/")
    else:
        svc, _, name = text.rpartition(".")
    if not svc or not name or "/" in name or "/" in svc:
        raise InputValidationError(
            f"input 'method': {method!r} is not a full method name; use "
            "'package.Service/Method' (for example 'grpc.health.v1.Health/Check')"
        )
    return svc, name


def _decode_set(data: bytes, where: str) -> descriptor_pb2.FileDescriptorSet:
    fds = descriptor_pb2.FileDescriptorSet()
    try:
        fds.ParseFromString(data)
    except DecodeError as exc:
        raise InputValidationError(
            f"{where} is not a serialized FileDescriptorSet: {exc}"
        ) from None
    if not fds.file:
        raise InputValidationError(f"{where} holds no file descriptors")
    return fds


def descriptor_set_from_base64(text: Any) -> descriptor_pb2.FileDescriptorSet:
    """A task's ``descriptor_set`` input (base64 of a serialized FileDescriptorSet)."""
    if not isinstance(text, str):
        raise InputValidationError("input 'descriptor_set' must be a base64 string")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InputValidationError("input 'descriptor_set' is not valid base64") from None
    return _decode_set(data, "input 'descriptor_set'")


def descriptor_sets_from_files(paths: Iterable[str]) -> list[descriptor_pb2.FileDescriptorSet]:
    """The configured descriptor-set files (AIPARTNERUPFLOW_GRPC_DESCRIPTOR_SETS)."""
    sets = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"AIPARTNERUPFLOW_GRPC_DESCRIPTOR_SETS: cannot read {path!r}: {exc.strerror}"
            ) from None
        try:
            sets.append(_decode_set(data, f"descriptor set file {path!r}"))
        except InputValidationError as exc:
            raise ConfigurationError(f"AIPARTNERUPFLOW_GRPC_DESCRIPTOR_SETS: {exc}") from None
    return sets


def pool_from_sets(
    sets: Iterable[descriptor_pb2.FileDescriptorSet],
) -> descriptor_pool.DescriptorPool:
    """A descriptor pool holding every file of ``sets`` (dependencies first or not)."""
    pool = descriptor_pool.DescriptorPool()
    pending = {f.name: f for s in sets for f in s.file}
    while pending:
        progressed = False
        for name, proto in list(pending.items()):
            if any(dep in pending for dep in proto.dependency):
                continue
            try:
                pool.Add(proto)
            except TypeError as exc:
                raise InputValidationError(f"descriptor file {name!r} is invalid: {exc}") from None
            del pending[name]
            progressed = True
        if not progressed:
            missing = sorted({d for p in pending.values() for d in p.dependency if d in pending})
            raise InputValidationError(
                f"descriptor files import each other in a cycle: {', '.join(missing)}"
            )
    return pool


def reflection_pool(channel: grpc.Channel) -> descriptor_pool.DescriptorPool:
    """A pool that asks the server's reflection service (blocking: call it off the loop)."""
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    return descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))


def find_method(
    pool: descriptor_pool.DescriptorPool, service: str, method: str, *, source: str
) -> MethodTypes:
    """The method's types from ``pool`` (blocking when the pool uses reflection)."""
    try:
        svc = pool.FindServiceByName(service)
    except KeyError:
        raise InputValidationError(
            f"input 'method': service {service!r} is not known to {source}"
        ) from None
    found = svc.methods_by_name.get(method)
    if found is None:
        names = ", ".join(sorted(svc.methods_by_name)) or "none"
        raise InputValidationError(
            f"input 'method': service {service!r} has no method {method!r} (it has: {names})"
        )
    return MethodTypes(
        path=f"/{service}/{method}",
        request=message_factory.GetMessageClass(found.input_type),
        response=message_factory.GetMessageClass(found.output_type),
        client_streaming=found.client_streaming,
        server_streaming=found.server_streaming,
    )
