"""The inputs of ``websocket_executor``: JSON Schema, and their translation into a plan.

Nothing here imports websockets or does I/O; :func:`make_plan` raises
:class:`~aipartnerupflow.core.errors.InputValidationError` (or the policy's
:class:`~aipartnerupflow.core.errors.OutboundPolicyError`) before any connection is opened.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from aipartnerupflow.core.errors import InputValidationError
from aipartnerupflow.core.executors.caps import effective_limit
from aipartnerupflow.core.executors.policy import OutboundPolicy, Target
from aipartnerupflow.core.executors.secrets import (
    SecretScrubber,
    is_sensitive_name,
    read_secret_env,
)
from aipartnerupflow.core.inputs import input_problem
from aipartnerupflow.extensions.websocket.settings import ENV_PREFIX, WebSocketSettings

__all__ = ["DEFAULT_TIMEOUT", "INPUT_SCHEMA", "Plan", "make_plan"]

DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 24 * 3600.0
MAX_SEND = 10_000
MAX_MATCH_DEPTH = 32

_TOKEN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
#: Headers the handshake itself sets; a task may not override them.
_RESERVED_HEADERS = frozenset(
    {
        "host",
        "upgrade",
        "connection",
        "content-length",
        "transfer-encoding",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-accept",
    }
)

_LIMIT = {"type": "integer", "minimum": 1}

INPUT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "websocket_executor inputs",
    "type": "object",
    "required": ["url"],
    "properties": {
        "url": {"type": "string", "minLength": 1, "description": "ws:// or wss:// URL."},
        "headers": {
            "type": "object",
            "description": "Extra handshake headers (name: string value). Values of "
            "credential-like headers (Authorization, *token*, *key* …) are secrets.",
            "propertyNames": {"pattern": _TOKEN},
            "additionalProperties": {"type": "string"},
        },
        "headers_env": {
            "type": "object",
            "description": "Handshake headers whose values are read from environment "
            "variables (name: variable); only variables the operator allow-listed.",
            "propertyNames": {"pattern": _TOKEN},
            "additionalProperties": {"type": "string", "minLength": 1},
        },
        "token": {
            "type": "string",
            "minLength": 1,
            "description": "Bearer token, sent as 'Authorization: Bearer <token>'.",
        },
        "token_env": {
            "type": "string",
            "minLength": 1,
            "description": "Environment variable holding the bearer token (allow-listed).",
        },
        "subprotocols": {
            "type": "array",
            "items": {"type": "string", "pattern": _TOKEN},
            "maxItems": 32,
            "description": "Subprotocols offered, in order of preference.",
        },
        "message": {
            "description": "One message to send (the original project's field): a string is "
            "sent as text, anything else as JSON."
        },
        "messages": {
            "type": "array",
            "maxItems": MAX_SEND,
            "description": "Messages to send, in order: strings as text, other values as JSON.",
        },
        "wait_response": {
            "type": "boolean",
            "default": True,
            "description": "The original project's switch: false sends and closes without "
            'waiting (same as wait_for {"messages": 0}).',
        },
        "wait_for": {
            "description": "What ends the exchange: a number of messages, the first JSON "
            "message containing given fields, or the server closing. Default: one message.",
            "oneOf": [
                {
                    "type": "object",
                    "required": ["messages"],
                    "additionalProperties": False,
                    "properties": {"messages": {"type": "integer", "minimum": 0}},
                },
                {
                    "type": "object",
                    "required": ["match"],
                    "additionalProperties": False,
                    "properties": {"match": {"type": "object", "minProperties": 1}},
                },
                {
                    "type": "object",
                    "required": ["close"],
                    "additionalProperties": False,
                    "properties": {"close": {"const": True}},
                },
            ],
        },
        "timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": MAX_TIMEOUT,
            "default": DEFAULT_TIMEOUT,
            "description": "Seconds allowed for the whole exchange (connect, handshake, "
            "sending, waiting).",
        },
        "max_message_bytes": {
            **_LIMIT,
            "description": "Largest message accepted, in bytes (never above the operator's "
            "AIPARTNERUPFLOW_WEBSOCKET_MAX_MESSAGE_BYTES).",
        },
        "max_messages": {
            **_LIMIT,
            "description": "Most messages received (never above the operator's "
            "AIPARTNERUPFLOW_WEBSOCKET_MAX_MESSAGES).",
        },
    },
    # The engine merges dependency results into the inputs under each dependency's id.
    "additionalProperties": True,
}

WaitKind = Literal["messages", "match", "close"]


@dataclass(slots=True)
class Plan:
    """A validated exchange: where to connect, what to send, when to stop."""

    url: str  # what websockets gets: no user-info, no fragment
    shown_url: str  # for results and messages: credentials masked
    target: Target
    policy: OutboundPolicy
    headers: list[tuple[str, str]]
    subprotocols: list[str]
    outgoing: list[str]
    wait: WaitKind
    count: int
    match: dict[str, Any] | None
    timeout: float
    max_message_bytes: int
    max_messages: int
    max_total_bytes: int
    ca_bundle: str | None
    scrubber: SecretScrubber = field(default_factory=SecretScrubber)

    def waiting_for(self) -> str:
        """What the exchange waits for, in words (for messages)."""
        if self.wait == "close":
            return "the server to close the connection"
        if self.wait == "match":
            return f"a message matching {json.dumps(self.match, sort_keys=True)}"
        return f"{self.count} message{'s' if self.count != 1 else ''}"


def _fail(problem: str) -> InputValidationError:
    return InputValidationError(f"websocket_executor inputs: {problem}")


def _raw_secrets(inputs: dict[str, Any]) -> list[str]:
    """Secret-looking values of raw inputs, masked in any validation message."""
    found: list[str] = []
    headers = inputs.get("headers")
    if isinstance(headers, dict):
        for k, v in headers.items():
            if is_sensitive_name(str(k)) and isinstance(v, str):
                found += _credential_parts(v)
    token = inputs.get("token")
    if isinstance(token, str):
        found.append(token)
    return found


_SCHEME_VALUE = re.compile(r"^[A-Za-z][A-Za-z0-9._~+/-]* +(\S.*)$")


def _credential_parts(value: str) -> list[str]:
    """A credential header's value, and its credentials without the scheme (``Bearer x``)."""
    found = _SCHEME_VALUE.match(value)
    return [value, found.group(1)] if found else [value]


def _depth(value: Any, limit: int) -> bool:
    """Whether ``value`` nests no deeper than ``limit`` (iterative)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def _encode(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        raise _fail(f"input {where!r} holds NaN or Infinity, which JSON cannot carry") from None
    except RecursionError:
        raise _fail(f"input {where!r} is nested too deeply to encode as JSON") from None
    except TypeError as exc:
        raise _fail(f"input {where!r} cannot be sent as JSON: {exc}") from None


def _header_value(name: str, value: str, where: str) -> str:
    if any(c in value for c in "\r\n\0"):
        raise _fail(f"input {where!r} contains a line break or NUL, which a header cannot hold")
    if name.lower() in _RESERVED_HEADERS:
        hint = " (use the subprotocols input)" if name.lower() == "sec-websocket-protocol" else ""
        raise _fail(f"input {where!r}: the {name} header is set by the handshake itself{hint}")
    return value


def _split_url(raw: str, scrubber: SecretScrubber) -> tuple[str, tuple[str, str] | None]:
    """The URL without user-info and fragment, and the user-info (registered as a secret)."""
    try:
        parts = urlsplit(raw)
    except ValueError as exc:
        raise _fail(f"input 'url' is not a URL: {exc}") from None
    if parts.scheme.lower() not in ("ws", "wss") or not parts.hostname:
        raise _fail(
            "input 'url' must be an absolute ws:// or wss:// URL, such as ws://example.com/feed"
        )
    userinfo, at, hostport = parts.netloc.rpartition("@")
    credentials = None
    if at:
        user, _, password = userinfo.partition(":")
        credentials = (unquote(user), unquote(password))
        scrubber.add(password, unquote(password), userinfo)
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if is_sensitive_name(key):  # websockets logs the request line
            scrubber.add(value)
    clean = urlunsplit((parts.scheme.lower(), hostport, parts.path, parts.query, ""))
    return clean, credentials


def make_plan(
    inputs: dict[str, Any], settings: WebSocketSettings, *, schema_checked: bool = False
) -> Plan:
    """Validate ``inputs`` against the schema and the operator's settings; no I/O.

    ``schema_checked``: the engine already validated these very inputs against
    :data:`INPUT_SCHEMA` (it does before every ``execute``), so only the rest is checked.
    """
    if not isinstance(inputs, dict):
        raise _fail("inputs must be a JSON object")
    scrubber = SecretScrubber(_raw_secrets(inputs))
    problem = None if schema_checked else input_problem(INPUT_SCHEMA, inputs)
    if problem:
        raise InputValidationError(scrubber.text(f"websocket_executor inputs: {problem}"))

    timeout = float(inputs.get("timeout", DEFAULT_TIMEOUT))
    if not math.isfinite(timeout) or timeout <= 0:
        raise _fail("input 'timeout' must be a positive number of seconds")

    url, credentials = _split_url(inputs["url"], scrubber)
    policy = settings.policy()
    target = policy.check_url(url, schemes=("ws", "wss"))

    headers: list[tuple[str, str]] = []
    for name, value in (inputs.get("headers") or {}).items():
        headers.append((name, _header_value(name, value, f"headers.{name}")))
        if is_sensitive_name(name):
            scrubber.add(*_credential_parts(value))
    readable = settings.readable_env()
    setting = f"{ENV_PREFIX}SECRET_ENV or AIPARTNERUPFLOW_SECRET_ENV"
    for name, env_name in (inputs.get("headers_env") or {}).items():
        where = f"headers_env.{name}"
        value = read_secret_env(env_name, allowed=readable, setting=setting, field=where)
        scrubber.add(value)
        headers.append((name, _header_value(name, value, where)))
    if "token" in inputs and "token_env" in inputs:
        raise _fail("give input 'token' or 'token_env', not both")
    token = inputs.get("token")
    if "token_env" in inputs:
        token = read_secret_env(
            inputs["token_env"], allowed=readable, setting=setting, field="token_env"
        )
    if token is not None:
        scrubber.add(token)
        headers.append(
            ("Authorization", f"Bearer {_header_value('Authorization', token, 'token')}")
        )
    if credentials is not None:
        import base64

        raw = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode("ascii")
        scrubber.add(raw)
        headers.append(("Authorization", f"Basic {raw}"))
    if sum(1 for n, _ in headers if n.lower() == "authorization") > 1:
        raise _fail(
            "more than one Authorization header: give only one of headers.Authorization, "
            "token, token_env and user-info in the URL"
        )

    single = inputs.get("message") is not None
    if single and inputs.get("messages") is not None:
        raise _fail("give input 'message' (one) or 'messages' (a list), not both")
    raw_out = [inputs["message"]] if single else list(inputs.get("messages") or [])
    label = "message" if single else "messages[{}]"
    outgoing = [_encode(m, label.format(i)) for i, m in enumerate(raw_out)]

    wait_for = inputs.get("wait_for")
    if wait_for is not None and inputs.get("wait_response") is False:
        raise _fail("give input 'wait_for' or 'wait_response': false, not both")
    wait: WaitKind = "messages"
    count, match = 1, None
    if inputs.get("wait_response") is False:
        count = 0
    elif isinstance(wait_for, dict) and "messages" in wait_for:
        count = int(wait_for["messages"])
    elif isinstance(wait_for, dict) and "match" in wait_for:
        wait, match = "match", wait_for["match"]
        if not _depth(match, MAX_MATCH_DEPTH):
            raise _fail(f"input 'wait_for.match' nests deeper than {MAX_MATCH_DEPTH} levels")
    elif isinstance(wait_for, dict):
        wait = "close"

    max_messages = effective_limit(inputs.get("max_messages"), settings.max_messages)
    if wait == "messages" and count > max_messages:
        raise _fail(
            f"input 'wait_for.messages' asks for {count} messages, more than the limit of "
            f"{max_messages} (input 'max_messages', at most {ENV_PREFIX}MAX_MESSAGES="
            f"{settings.max_messages})"
        )
    return Plan(
        url=url,
        shown_url=scrubber.url(url),
        target=target,
        policy=policy,
        headers=headers,
        subprotocols=list(inputs.get("subprotocols") or []),
        outgoing=outgoing,
        wait=wait,
        count=count,
        match=match,
        timeout=timeout,
        max_message_bytes=effective_limit(
            inputs.get("max_message_bytes"), settings.max_message_bytes
        ),
        max_messages=max_messages,
        max_total_bytes=settings.max_total_bytes,
        ca_bundle=settings.ca_bundle,
        scrubber=scrubber,
    )
