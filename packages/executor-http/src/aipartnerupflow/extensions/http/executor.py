"""``rest_executor``: one HTTP request per task, on a shared httpx client.

The engine owns retries (the task's ``retry``): a failure a later attempt may fix raises a
:class:`~aipartnerupflow.core.errors.RetryableError` (with the server's ``Retry-After``), any
other a :class:`~aipartnerupflow.core.errors.PermanentError`. Importing this module does not
import httpx; the first request does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, ClassVar

from aipartnerupflow.core.context import current_task_context
from aipartnerupflow.core.errors import InputValidationError, OutboundPolicyError
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.executors.caps import OutputCap, effective_limit
from aipartnerupflow.core.executors.secrets import (
    SecretScrubber,
    active_scrubber,
    install_log_scrubbing,
    is_sensitive_name,
    read_secret_env,
    scrubbing,
)
from aipartnerupflow.core.inputs import input_problem
from aipartnerupflow.extensions.http.errors import (
    HttpConnectionError,
    HttpRedirectError,
    HttpTimeoutError,
    HttpTlsError,
    PermanentHttpStatusError,
    RetryableHttpStatusError,
)
from aipartnerupflow.extensions.http.policy import (
    ENV_CA_BUNDLE,
    ENV_SECRET_ENV,
    OutboundPolicy,
    get_default_policy,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_RETRY_STATUSES", "INPUT_SCHEMA", "RestExecutor"]

logger = logging.getLogger(__name__)

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRY_STATUSES = (429, 502, 503, 504)
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
EXCERPT_CHARS = 300

_STATUS = {"type": "integer", "minimum": 100, "maximum": 599}
_STATUS_PATTERN = {"type": "string", "pattern": "^[1-5]([0-9]{2}|xx|XX)$"}
_SCALAR = {"type": ["string", "number", "boolean"]}
# Secret-bearing fields have no JSON-Schema type: a schema error message would quote the value.
# Their types are checked in _plan, with messages that never repeat it.
_SECRET = {"writeOnly": True, "description": "a string (never shown in results, errors or logs)"}

INPUT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "rest_executor inputs",
    "type": "object",
    "required": ["url"],
    "properties": {
        "url": {
            "type": "string",
            "minLength": 1,
            "description": "http(s) URL; user-info in it is sent as basic auth, never shown.",
        },
        "method": {
            "type": "string",
            "enum": [*METHODS, *(m.lower() for m in METHODS)],
            "default": "GET",
        },
        "headers": {
            "type": "object",
            "description": "Header values: strings, numbers or booleans.",
            "additionalProperties": {"writeOnly": True},
        },
        "params": {
            "type": "object",
            "description": "Query parameters, added to those already in the URL.",
            "additionalProperties": {
                "anyOf": [_SCALAR, {"type": "null"}, {"type": "array", "items": _SCALAR}]
            },
        },
        "json": {"description": "Request body sent as JSON."},
        "data": {
            "type": ["string", "object"],
            "description": "Raw body (a string), or form fields (an object).",
        },
        "form": {
            "type": "object",
            "description": "Form fields, sent as application/x-www-form-urlencoded.",
            "additionalProperties": {"anyOf": [_SCALAR, {"type": "array", "items": _SCALAR}]},
        },
        "timeout": {
            "description": "Seconds allowed per attempt, or per phase as an object.",
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        k: {"type": "number", "exclusiveMinimum": 0}
                        for k in ("connect", "read", "write", "pool", "total")
                    },
                },
            ],
            "default": DEFAULT_TIMEOUT,
        },
        "auth": {
            "type": "object",
            "required": ["type"],
            "additionalProperties": False,
            "properties": {
                "type": {"type": "string", "enum": ["bearer", "basic", "api_key", "apikey"]},
                "token": _SECRET,
                "token_env": {"type": "string"},
                "username": {"type": "string"},
                "password": _SECRET,
                "password_env": {"type": "string"},
                "name": {"type": "string", "minLength": 1},
                "key": {"type": "string", "minLength": 1},
                "value": _SECRET,
                "value_env": {"type": "string"},
                "in": {"type": "string", "enum": ["header", "query"]},
                "location": {"type": "string", "enum": ["header", "query"]},
            },
        },
        "retryable_status": {
            "description": "Statuses outside expected_status that a later attempt may fix: the "
            "task's retry settings retry them (honouring Retry-After); any other status fails "
            "the task at once.",
            "type": "array",
            "items": _STATUS,
            "default": list(DEFAULT_RETRY_STATUSES),
        },
        "expected_status": {
            "description": 'Accepted statuses: 200, "2xx", or a list of them (default "2xx").',
            "anyOf": [
                _STATUS,
                _STATUS_PATTERN,
                {"type": "array", "items": {"anyOf": [_STATUS, _STATUS_PATTERN]}, "minItems": 1},
            ],
        },
        "verify": {"type": "boolean", "default": True},
        "follow_redirects": {"type": "boolean", "default": False},
        "max_redirects": {"type": "integer", "minimum": 0, "maximum": 20, "default": 5},
        "max_response_bytes": {"type": "integer", "minimum": 0},
    },
    # The engine merges dependency results into the inputs under the dependency's id, so extra
    # keys are allowed (and ignored).
    "additionalProperties": True,
}


# -- request plan ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Plan:
    method: str
    url: str  # without user-info
    headers: dict[str, str]
    auth_headers: dict[str, str]
    body: dict[str, Any]
    timeout: dict[str, float]
    total: float | None
    retry_statuses: frozenset[int]
    expected: tuple[tuple[int, int], ...]
    expected_text: str
    verify: bool
    follow_redirects: bool
    max_redirects: int
    max_bytes: int
    policy: OutboundPolicy
    scrubber: SecretScrubber = field(default_factory=SecretScrubber)

    def accepts(self, status: int) -> bool:
        return any(lo <= status <= hi for lo, hi in self.expected)


def _str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _expected(spec: Any) -> tuple[tuple[tuple[int, int], ...], str]:
    items = spec if isinstance(spec, list) else [spec]
    ranges: list[tuple[int, int]] = []
    for item in items:
        if isinstance(item, int):
            ranges.append((item, item))
        else:
            text = str(item).lower()
            if text.endswith("xx"):
                base = int(text[0]) * 100
                ranges.append((base, base + 99))
            else:
                ranges.append((int(text), int(text)))
    return tuple(ranges), ", ".join(_str(i) for i in items)


def _collect_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _collect_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _collect_strings(v)]
    return []


def _raw_secrets(inputs: dict[str, Any]) -> list[str]:
    """Secret-looking strings in raw (possibly invalid) inputs, to mask in validation errors."""
    found: list[str] = []
    auth = inputs.get("auth")
    if isinstance(auth, dict):
        found += [
            s
            for k, v in auth.items()
            if k in ("token", "password", "value")
            for s in _collect_strings(v)
        ]
    for key in ("headers", "params"):
        given = inputs.get(key)
        if isinstance(given, dict):
            found += [
                s
                for k, v in given.items()
                if is_sensitive_name(str(k))
                for s in _collect_strings(v)
            ]
    return found


_TASK_RETRY = {
    "attempts": "max_attempts",
    "backoff": "backoff_seconds",
    "backoff_multiplier": "backoff_multiplier",
    "max_delay": "max_backoff_seconds",
}


def _refuse_inputs_retry(inputs: dict[str, Any]) -> None:
    """``inputs.retry`` is not a request setting: the task's ``retry`` is the one mechanism."""
    if "retry" not in inputs:
        return
    ctx = current_task_context()
    if ctx is not None and "retry" in ctx.dependency_results:
        return  # the result of a dependency whose id is "retry", merged in by the engine
    given = inputs["retry"]
    moved = {
        new: given[old]
        for old, new in _TASK_RETRY.items()
        if isinstance(given, dict) and isinstance(given.get(old), int | float)
    }
    example = json.dumps({"retry": moved or {"max_attempts": 3, "backoff_seconds": 1}})
    raise InputValidationError(
        "rest_executor inputs: input 'retry' is not supported: retries belong to the task, so "
        f"move them out of inputs to the task's own retry, e.g. {example} (the engine retries "
        "timeouts, connection errors and the statuses of input 'retryable_status', honouring "
        "Retry-After)"
    )


def _read_secret(auth: dict[str, Any], key: str, policy: OutboundPolicy) -> str:
    value = auth.get(key)
    if isinstance(value, str):
        return value
    if value is not None:
        raise InputValidationError(f"rest_executor inputs: input 'auth.{key}' must be a string")
    env_name = auth.get(f"{key}_env")
    if not isinstance(env_name, str):
        raise InputValidationError(
            f"rest_executor inputs: input 'auth': {auth['type']} auth needs {key!r} or {key}_env"
        )
    return read_secret_env(
        env_name, allowed=policy.secret_env, setting=ENV_SECRET_ENV, field=f"auth.{key}_env"
    )


def _plan(
    inputs: dict[str, Any],
    policy: OutboundPolicy,
    scrubber: SecretScrubber,
    *,
    validated: bool = False,
) -> _Plan:
    """Validate the inputs (unless ``validated`` against :data:`INPUT_SCHEMA` already) and
    turn them into a request plan (no I/O).

    Every secret found goes to ``scrubber`` (the task's), so the engine masks it everywhere.
    """
    scrubber.add(*_raw_secrets(inputs))
    if not validated:
        problem = input_problem(INPUT_SCHEMA, inputs)
        if problem:
            raise InputValidationError(scrubber.text(f"rest_executor inputs: {problem}"))
    _refuse_inputs_retry(inputs)

    import httpx  # validated inputs only; this module is imported lazily by execute()

    method = str(inputs.get("method", "GET")).upper()
    raw_url = inputs["url"]
    try:
        url = httpx.URL(raw_url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise InputValidationError(
            f"rest_executor inputs: input 'url' is not a URL: {exc}"
        ) from None
    if not url.scheme or (url.scheme in ("http", "https") and not url.host):
        raise InputValidationError(
            "rest_executor inputs: input 'url' must be an absolute http(s) URL, such as "
            "https://example.com/path"
        )
    username, password = url.username, url.password
    had_userinfo = bool(url.userinfo)
    if had_userinfo:
        scrubber.add(password, url.userinfo.decode("ascii", "replace"))
        url = url.copy_with(username=None, password=None)
    if url.fragment:
        url = url.copy_with(fragment=None)
    scrubber.add(*(v for k, v in url.params.multi_items() if is_sensitive_name(k)))
    try:
        policy.check_url(str(url))
    except OutboundPolicyError as exc:
        raise OutboundPolicyError(f"{method} {scrubber.url(str(url))}: {exc}") from None

    headers: dict[str, str] = {}
    for name, value in (inputs.get("headers") or {}).items():
        if not isinstance(value, str | int | float | bool):
            raise InputValidationError(
                f"rest_executor inputs: input 'headers.{name}' must be a string, number or boolean"
            )
        headers[str(name)] = _str(value)
        if is_sensitive_name(str(name)):
            scrubber.add(_str(value))
    params: list[tuple[str, str]] = []
    for name, value in (inputs.get("params") or {}).items():
        values = value if isinstance(value, list) else [value]
        params += [(name, "" if v is None else _str(v)) for v in values]

    auth_headers: dict[str, str] = {}
    auth = inputs.get("auth")
    if auth is None and had_userinfo:
        auth = {"type": "basic", "username": username, "password": password}
    if auth is not None:
        kind = auth["type"]
        if kind == "bearer":
            token = _read_secret(auth, "token", policy)
            scrubber.add(token)
            auth_headers["Authorization"] = f"Bearer {token}"
        elif kind == "basic":
            user = auth.get("username", username or "")
            secret = (
                _read_secret(auth, "password", policy)
                if ("password" in auth or "password_env" in auth)
                else ""
            )
            raw = base64.b64encode(f"{user}:{secret}".encode()).decode("ascii")
            scrubber.add(secret, raw)
            auth_headers["Authorization"] = f"Basic {raw}"
        else:
            name = auth.get("name") or auth.get("key")
            location = auth.get("in") or auth.get("location") or "header"
            value = _read_secret(auth, "value", policy)
            scrubber.add(value)
            if location == "query":
                name = name or "api_key"
                params.append((name, value))
                scrubber.params.add(name)
            else:
                auth_headers[name or "X-API-Key"] = value

    if params:  # appended to the URL's own query (httpx would replace it)
        url = url.copy_with(params=httpx.QueryParams([*url.params.multi_items(), *params]))

    bodies = [k for k in ("json", "data", "form") if k in inputs]
    if len(bodies) > 1:
        raise InputValidationError(
            f"rest_executor inputs: give only one request body, not {' and '.join(bodies)}"
        )
    body: dict[str, Any] = {}
    if "json" in inputs:
        body["json"] = inputs["json"]
    elif isinstance(inputs.get("data"), str):
        body["content"] = inputs["data"].encode()
    elif "data" in inputs or "form" in inputs:
        fields = inputs.get("form", inputs.get("data")) or {}
        body["data"] = {
            k: [_str(x) for x in v] if isinstance(v, list) else _str(v) for k, v in fields.items()
        }

    spec = inputs.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(spec, dict):
        timeout = {k: float(spec[k]) for k in ("connect", "read", "write", "pool") if k in spec}
        total = float(spec["total"]) if "total" in spec else None
    else:
        timeout = dict.fromkeys(("connect", "read", "write", "pool"), float(spec))
        total = float(spec)

    expected, expected_text = _expected(inputs.get("expected_status", "2xx"))
    return _Plan(
        method=method,
        url=str(url),
        headers=headers,
        auth_headers=auth_headers,
        body=body,
        timeout=timeout,
        total=total,
        retry_statuses=frozenset(inputs.get("retryable_status", DEFAULT_RETRY_STATUSES)),
        expected=expected,
        expected_text=expected_text,
        verify=bool(inputs.get("verify", True)),
        follow_redirects=bool(inputs.get("follow_redirects", False)),
        max_redirects=int(inputs.get("max_redirects", 5)),
        max_bytes=effective_limit(inputs.get("max_response_bytes"), policy.max_response_bytes),
        policy=policy,
        scrubber=scrubber,
    )


# -- responses ------------------------------------------------------------------------------


_TEXT_TYPES = re.compile(
    r"^(text/.*|application/(xml|javascript|ecmascript|x-www-form-urlencoded|x-ndjson"
    r"|problem\+xml)|.*\+xml)$"
)


def _media_type(headers: httpx.Headers) -> str:
    value: str = headers.get("content-type", "")
    return value.split(";", 1)[0].strip().lower()


def _decode_body(
    content: bytes, headers: httpx.Headers, charset: str | None, truncated: bool
) -> tuple[Any, str]:
    """The body as (value, kind): kind is json, text, base64 or empty."""
    if not content:
        return None, "empty"
    media = _media_type(headers)
    encoding = charset or "utf-8"
    try:
        text: str | None = content.decode(encoding, errors="strict")
    except (UnicodeDecodeError, LookupError):
        text = None
    is_json = media == "application/json" or media.endswith("+json")
    if is_json and text is not None and not truncated:
        try:
            return json.loads(text), "json"
        except ValueError:
            pass
    if text is not None:
        return text, "text"
    if charset or is_json or _TEXT_TYPES.match(media):
        try:
            return content.decode(encoding, errors="replace"), "text"
        except LookupError:
            return content.decode("utf-8", errors="replace"), "text"
    return base64.b64encode(content).decode("ascii"), "base64"


def _excerpt(content: bytes, scrubber: SecretScrubber) -> str:
    text = " ".join(content[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace").split())
    text = scrubber.text(text)
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "..."


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    from datetime import UTC, datetime

    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(slots=True)
class _Received:
    status: int
    reason: str
    headers: httpx.Headers
    content: bytes
    truncated: bool
    charset: str | None
    url: str


class _RedirectRefused(OutboundPolicyError):
    """Internal: a redirect target the policy refuses (its message names the hop)."""


# -- the executor ---------------------------------------------------------------------------


class RestExecutor(ExecutableTask):
    """Send one HTTP request and return the response (status, headers, body).

    Constructor params: none from task JSON. Python code may pass ``policy=OutboundPolicy(...)``
    (task JSON cannot, since it can only carry plain data); see :mod:`.policy`.
    """

    id = "rest_executor"
    name = "HTTP request"
    description = (
        "Send an HTTP request (any method, JSON/form/raw body, bearer/basic/API-key auth) and "
        "return the status, headers and body. Targets are limited by the outbound policy; "
        "the task's retry settings retry timeouts, connection errors and 429/502/503/504."
    )
    tags = ["http", "rest", "api", "webhook"]
    input_schema: ClassVar[dict[str, Any] | None] = INPUT_SCHEMA
    examples = [
        {
            "title": "GET JSON",
            "inputs": {"url": "https://api.example.com/items", "params": {"limit": 10}},
        },
        {
            "title": "POST with a bearer token (retried by the task's retry settings)",
            "inputs": {
                "url": "https://api.example.com/items",
                "method": "POST",
                "json": {"name": "widget"},
                "auth": {"type": "bearer", "token_env": "EXAMPLE_API_TOKEN"},
                "expected_status": [200, 201],
            },
        },
    ]

    #: Policy for this class; ``None`` uses :func:`.policy.get_default_policy` at each request.
    policy: ClassVar[OutboundPolicy | None] = None

    def __init__(self, *, policy: OutboundPolicy | None = None, **params: Any) -> None:
        if policy is not None and not isinstance(policy, OutboundPolicy):
            raise TypeError(
                "the outbound policy can only be set from Python code (an OutboundPolicy), "
                "not from task params"
            )
        if params:
            raise TypeError(
                f"rest_executor takes no params (got {', '.join(sorted(params))}); "
                "put request settings in the task's inputs"
            )
        self._policy = policy
        self._running: asyncio.Task[Any] | None = None

    def outbound_policy(self) -> OutboundPolicy:
        """The policy this executor applies: instance, class, process default, settings."""
        return self._policy or type(self).policy or get_default_policy()

    async def cancel(self) -> None:
        """Interrupt the request in flight (its connection is closed)."""
        task = self._running
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Send the request described by ``inputs`` once; raise an ``HttpError`` (or an
        input, configuration or policy error) on failure."""
        self._running = asyncio.current_task()
        install_log_scrubbing()
        ambient = active_scrubber()  # the task's (ctx.secrets) when the engine runs us
        scrubber = ambient if ambient is not None else SecretScrubber()
        scope = contextlib.nullcontext() if ambient is not None else scrubbing(scrubber)
        try:
            with scope:
                # the engine validated these very inputs against get_input_schema()
                validated = (
                    current_task_context() is not None and self.get_input_schema() is INPUT_SCHEMA
                )
                plan = _plan(inputs, self.outbound_policy(), scrubber, validated=validated)
                return await self._send(plan)
        finally:
            self._running = None

    async def _send(self, plan: _Plan) -> dict[str, Any]:
        from aipartnerupflow.extensions.http._client import ClientKey, get_client

        client = await get_client(ClientKey(verify=plan.verify, policy=plan.policy))
        received = await self._attempt(client, plan)
        scrub = plan.scrubber
        body, kind = _decode_body(
            received.content, received.headers, received.charset, received.truncated
        )
        return {
            "success": True,
            "status_code": received.status,
            "reason": received.reason,
            "method": plan.method,
            "url": received.url,
            "headers": scrub.data(dict(received.headers.items())),
            "body": scrub.data(body) if kind != "base64" else body,
            "body_type": kind,
            "size": len(received.content),
            "truncated": received.truncated,
            "max_response_bytes": plan.max_bytes,
        }

    async def _attempt(self, client: httpx.AsyncClient, plan: _Plan) -> _Received:
        import httpx

        shown = plan.scrubber.url(plan.url)
        context = f"{plan.method} {shown}"
        try:
            async with asyncio.timeout(plan.total):
                received = await self._send_following(client, plan)
        except _RedirectRefused as exc:
            raise OutboundPolicyError(str(exc)) from None
        except OutboundPolicyError as exc:
            raise OutboundPolicyError(plan.scrubber.text(f"{context}: {exc}")) from None
        except (TimeoutError, httpx.TimeoutException) as exc:
            phases: dict[type[BaseException], str] = {
                httpx.ConnectTimeout: "connecting",
                httpx.ReadTimeout: "waiting for the response",
                httpx.WriteTimeout: "sending the request",
                httpx.PoolTimeout: "waiting for a free connection",
            }
            phase = phases.get(type(exc), "in total")
            limit = plan.timeout.get("connect") if phase == "connecting" else None
            raise HttpTimeoutError(
                plan.scrubber.text(
                    f"{context} timed out {phase}"
                    + (f" (timeout {limit:g}s)" if limit else "")
                    + (
                        f" (timeout {plan.total:g}s per attempt)"
                        if phase == "in total" and plan.total
                        else ""
                    )
                ),
                method=plan.method,
                url=shown,
            ) from None
        except httpx.ConnectError as exc:
            detail = str(exc) or type(exc).__name__
            if "CERTIFICATE_VERIFY_FAILED" in detail or "certificate verify failed" in detail:
                raise HttpTlsError(
                    plan.scrubber.text(
                        f"{context} failed: cannot connect: {detail} (TLS certificate not "
                        f"trusted: trust its CA with {ENV_CA_BUNDLE}, or set verify: false for "
                        "testing only)"
                    ),
                    method=plan.method,
                    url=shown,
                ) from None
            raise HttpConnectionError(
                plan.scrubber.text(f"{context} failed: cannot connect: {detail}"),
                method=plan.method,
                url=shown,
            ) from None
        except (httpx.TransportError, httpx.DecodingError) as exc:
            if isinstance(exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError)):
                raise InputValidationError(
                    plan.scrubber.text(f"rest_executor inputs: cannot send {context}: {exc}")
                ) from None
            raise HttpConnectionError(
                plan.scrubber.text(
                    f"{context} failed: {type(exc).__name__}: {exc or 'connection broken'}"
                ),
                method=plan.method,
                url=shown,
            ) from None

        if plan.accepts(received.status):
            return received
        excerpt = _excerpt(received.content, plan.scrubber)
        redirect_note = ""
        if received.status in REDIRECT_STATUSES and not plan.follow_redirects:
            location = received.headers.get("location")
            if location:
                target = plan.scrubber.url(str(httpx.URL(plan.url).join(location)))
                redirect_note = f" redirecting to {target} (set follow_redirects: true to follow)"
        message = (
            f"{plan.method} {received.url} returned {received.status} {received.reason}".rstrip()
            + f" (expected {plan.expected_text})"
            + redirect_note
            + (f": {excerpt}" if excerpt else "")
        )
        if received.status in plan.retry_statuses:
            raise RetryableHttpStatusError(
                message,
                method=plan.method,
                url=received.url,
                status_code=received.status,
                body_excerpt=excerpt,
                retry_after=_retry_after(received.headers),
            )
        raise PermanentHttpStatusError(
            message,
            method=plan.method,
            url=received.url,
            status_code=received.status,
            body_excerpt=excerpt,
        )

    async def _send_following(self, client: httpx.AsyncClient, plan: _Plan) -> _Received:
        """Send the request, following redirects when asked; every hop is policy-checked."""
        import httpx

        policy = plan.policy
        origin = httpx.URL(plan.url)
        url = origin
        method = plan.method
        body = dict(plan.body)
        headers = dict(plan.headers)
        hops = 0
        while True:
            same_origin = (url.scheme, url.host, url.port) == (
                origin.scheme,
                origin.host,
                origin.port,
            )
            send_headers = {**headers, **plan.auth_headers} if same_origin else headers
            try:
                request = client.build_request(
                    method,
                    url,
                    headers=send_headers,
                    timeout=httpx.Timeout(**plan.timeout)
                    if len(plan.timeout) == 4
                    else httpx.Timeout(DEFAULT_TIMEOUT, **plan.timeout),
                    **body,
                )
            except UnicodeEncodeError:
                raise InputValidationError(
                    "rest_executor inputs: header names and values must be ASCII text"
                ) from None
            shown = plan.scrubber.url(str(request.url))
            logger.debug("rest_executor: %s %s", method, shown)
            response = await client.send(request, stream=True)
            try:
                location = response.headers.get("location")
                if plan.follow_redirects and response.status_code in REDIRECT_STATUSES and location:
                    if hops >= plan.max_redirects:
                        raise HttpRedirectError(
                            f"{plan.method} {plan.scrubber.url(plan.url)} failed: more than "
                            f"{plan.max_redirects} redirects (last to {shown})",
                            method=plan.method,
                            url=plan.scrubber.url(plan.url),
                        )
                    hops += 1
                    next_url = url.join(location).copy_with(fragment=None)
                    if next_url.userinfo:
                        next_url = next_url.copy_with(username=None, password=None)
                    try:
                        policy.check_url(str(next_url))
                    except OutboundPolicyError as exc:
                        hop = plan.scrubber.text(f"{method} {plan.scrubber.url(str(next_url))}")
                        raise _RedirectRefused(f"{hop}: {exc}") from None
                    if (response.status_code == 303 and method != "HEAD") or (
                        response.status_code in (301, 302) and method == "POST"
                    ):
                        method = "GET"
                        body = {}
                        headers = {
                            k: v
                            for k, v in headers.items()
                            if k.lower() not in ("content-type", "content-length")
                        }
                    if (next_url.scheme, next_url.host, next_url.port) != (
                        url.scheme,
                        url.host,
                        url.port,
                    ):
                        headers = {k: v for k, v in headers.items() if not is_sensitive_name(k)}
                    url = next_url
                    continue
                content, truncated = await _read_limited(response, plan.max_bytes)
                return _Received(
                    status=response.status_code,
                    reason=response.reason_phrase,
                    headers=response.headers,
                    content=content,
                    truncated=truncated,
                    charset=response.charset_encoding,
                    url=shown,
                )
            finally:
                await response.aclose()


async def _read_limited(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """Read at most ``limit`` body bytes; True when more was sent (the rest is not read)."""
    cap = OutputCap(limit)
    async for chunk in response.aiter_bytes():
        if not cap.feed(chunk):
            break
    return cap.data, cap.truncated
