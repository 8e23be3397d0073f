"""``mcp_executor``: call a tool, read a resource or get a prompt on an MCP server.

Servers are reached over streamable HTTP (``url``; the outbound policy applies to every
connection) or stdio (``command``; off until ``AIPARTNERUPFLOW_MCP_ALLOW_STDIO`` and the
program allow-list permit it). Sessions are shared per server within an event loop and closed
by :func:`~aipartnerupflow.core.executors.aclose_loop_resources`. Importing this module does
not import the mcp SDK; the first call does.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import TYPE_CHECKING, Any

from aipartnerupflow.core.errors import InputValidationError, PermanentError, TaskTimeoutError
from aipartnerupflow.core.executor import ExecutableTask
from aipartnerupflow.core.executors.caps import effective_limit
from aipartnerupflow.core.executors.process import check_argv
from aipartnerupflow.core.executors.programs import check_env_name, resolve_cwd, resolve_program
from aipartnerupflow.core.executors.resources import (
    forget_loop_resource,
    loop_resource,
    loop_resources,
)
from aipartnerupflow.core.executors.secrets import add_secret, is_sensitive_name, redact_url
from aipartnerupflow.core.inputs import input_problem
from aipartnerupflow.extensions.mcp.content import (
    Budget,
    content_json,
    contents_json,
    listing_json,
    structured_json,
)
from aipartnerupflow.extensions.mcp.errors import (
    McpProtocolError,
    McpToolError,
    PermanentProtocolError,
    StdioRefusedError,
)
from aipartnerupflow.extensions.mcp.settings import McpSettings

if TYPE_CHECKING:
    from aipartnerupflow.core.context import TaskContext
    from aipartnerupflow.extensions.mcp.connection import Connection, HttpServer, StdioServer
    from mcp import ClientSession

__all__ = ["INPUT_SCHEMA", "OPERATIONS", "McpExecutor"]

DEFAULT_TIMEOUT = 30.0
OPERATIONS = (
    "call_tool",
    "read_resource",
    "get_prompt",
    "list_tools",
    "list_resources",
    "list_resource_templates",
    "list_prompts",
)
_TRANSPORTS = {"http": "http", "streamable_http": "http", "streamable-http": "http"}
_MAX_DEPTH = 64
_MAX_PAGES = 100
#: JSON-RPC error codes no retry can fix.
_PERMANENT_CODES = frozenset({-32700, -32600, -32601, -32602, -32002})

_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}

INPUT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "mcp_executor inputs",
    "type": "object",
    "properties": {
        "transport": {
            "enum": ["http", "streamable_http", "streamable-http", "stdio"],
            "description": "How to reach the server (default: http when 'url' is given, stdio "
            "when 'command' is).",
        },
        "operation": {
            "enum": list(OPERATIONS),
            "description": "What to do (default: call_tool with tool_name, read_resource with "
            "resource_uri, get_prompt with prompt_name).",
        },
        "url": {"type": "string", "minLength": 1, "description": "Streamable HTTP endpoint."},
        "headers": {
            **_STRINGS,
            "description": "HTTP headers; their values are secrets (never in results, errors "
            "or logs).",
        },
        "command": {
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
            "description": "stdio server: program and arguments (the program must be "
            "allow-listed by the operator).",
        },
        "env": {**_STRINGS, "description": "Variables for a stdio server (operator-allowed)."},
        "cwd": {"type": "string", "description": "Working directory of a stdio server."},
        "tool_name": {"type": "string", "minLength": 1},
        "arguments": {
            "type": "object",
            "description": "Tool arguments (checked against the tool's input schema), or "
            "prompt arguments (strings).",
        },
        "resource_uri": {"type": "string", "minLength": 1},
        "prompt_name": {"type": "string", "minLength": 1},
        "timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": DEFAULT_TIMEOUT,
            "description": "Seconds for the whole operation, connecting included.",
        },
        "max_output_bytes": {
            "type": "integer",
            "minimum": 0,
            "description": "Most content bytes kept (text and decoded binary together).",
        },
    },
    # Dependency results arrive under their task ids: extra keys are allowed (and ignored).
    "additionalProperties": True,
}


def _depth_ok(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True


def _finite(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _text_of(content: list[dict[str, Any]]) -> str:
    return "\n".join(c["text"] for c in content if c.get("type") == "text" and "text" in c)


def _operation(inputs: dict[str, Any]) -> str:
    op = inputs.get("operation")
    if op is not None:
        return str(op)
    for field, implied in (
        ("tool_name", "call_tool"),
        ("resource_uri", "read_resource"),
        ("prompt_name", "get_prompt"),
    ):
        if inputs.get(field):
            return implied
    raise InputValidationError(
        f"input 'operation' is required (one of {', '.join(OPERATIONS)}), or give tool_name, "
        "resource_uri or prompt_name"
    )


def _transport(inputs: dict[str, Any]) -> str:
    raw = inputs.get("transport")
    if raw is None:
        if inputs.get("url") is not None:
            return "http"
        if inputs.get("command") is not None:
            return "stdio"
        raise InputValidationError(
            "input 'url' (a streamable HTTP server) or 'command' (a stdio server) is required"
        )
    return "stdio" if raw == "stdio" else _TRANSPORTS[str(raw)]


def _key(kind: str, *parts: Any) -> tuple[str, str]:
    digest = hashlib.sha256(json.dumps([kind, *parts], default=str).encode()).hexdigest()
    return ("mcp_executor", digest)  # no header value or argument in a key's repr


class McpExecutor(ExecutableTask):
    """Call an MCP tool, read a resource or get a prompt, and return the result as JSON."""

    id = "mcp_executor"
    name = "MCP client"
    description = (
        "Call a tool, read a resource or get a prompt on an MCP server over streamable HTTP "
        "(limited by the outbound policy) or stdio (off until the operator allows it)."
    )
    tags = ["mcp", "tools", "agents", "api"]
    examples = [
        {
            "title": "Call a tool over streamable HTTP",
            "inputs": {
                "url": "https://mcp.example.com/mcp",
                "headers": {"Authorization": "Bearer <token>"},
                "operation": "call_tool",
                "tool_name": "search",
                "arguments": {"query": "weather in Paris"},
            },
        },
        {
            "title": "Read a resource from an allow-listed stdio server",
            "inputs": {
                "transport": "stdio",
                "command": ["/usr/local/bin/my-mcp-server", "--read-only"],
                "operation": "read_resource",
                "resource_uri": "file:///docs/readme.md",
            },
        },
    ]
    input_schema = INPUT_SCHEMA
    params_schema = {"type": "object", "additionalProperties": False, "properties": {}}

    def __init__(self) -> None:
        self._connection: Connection | None = None
        self._key: tuple[str, str] | None = None

    async def cancel(self) -> None:
        """Nothing to do ahead: when the engine then cancels ``execute``, the request in
        flight is cancelled and announced to the server (``notifications/cancelled``), and a
        stdio server the task used is stopped (see :meth:`_drop_stdio`)."""

    async def _drop_stdio(self) -> None:
        """Close the stdio server of this task's connection (its child processes end)."""
        from aipartnerupflow.extensions.mcp.connection import StdioServer

        conn, key = self._connection, self._key
        self._connection = None
        if conn is None or key is None or not isinstance(conn.server, StdioServer):
            return
        if loop_resources().get(key) is conn:  # not a newer session of the same server
            await forget_loop_resource(key)
        else:
            await conn.aclose()

    async def execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Run the operation described by ``inputs``."""
        import asyncio

        from aipartnerupflow.extensions.mcp.connection import StaleConnectionError

        settings = McpSettings.get()
        operation = _operation(inputs)
        transport = _transport(inputs)
        timeout = inputs.get("timeout", DEFAULT_TIMEOUT)
        if not isinstance(timeout, int | float) or not math.isfinite(timeout) or timeout <= 0:
            raise InputValidationError("input 'timeout' must be a positive number of seconds")
        timeout = min(float(timeout), settings.max_timeout)
        budget = Budget(effective_limit(inputs.get("max_output_bytes"), settings.max_output_bytes))
        call = self._prepare(operation, inputs)
        server: HttpServer | StdioServer
        if transport == "stdio":
            server, label, key = self._stdio(inputs, settings)
        else:
            server, label, key = self._http(inputs, settings)
        ctx = self.context
        try:
            async with asyncio.timeout(timeout):
                conn = await self._connect(server, label, key, settings)
                try:
                    result = await call(conn, budget, ctx)
                except StaleConnectionError:  # nothing was sent: once more, on a new session
                    conn = await self._connect(server, label, key, settings)
                    result = await call(conn, budget, ctx)
        except asyncio.CancelledError:
            await asyncio.shield(self._drop_stdio())
            raise
        except TimeoutError:
            await self._drop_stdio()
            raise TaskTimeoutError(
                f"{operation} on MCP server {label} did not finish within {timeout:g} s"
            ) from None
        out: dict[str, Any] = {
            "success": True,
            "operation": operation,
            "transport": transport,
            "server": conn.server_info,
            "result": result,
        }
        if budget.truncated:
            out["truncated"] = True
        return out

    # -- servers ---------------------------------------------------------------------------

    def _http(
        self, inputs: dict[str, Any], settings: McpSettings
    ) -> tuple[HttpServer, str, tuple[str, str]]:
        from aipartnerupflow.extensions.mcp.connection import HttpServer

        url = inputs.get("url")
        if not isinstance(url, str) or not url:
            raise InputValidationError(
                "input 'url' (the server's streamable HTTP endpoint) is required"
            )
        if "\x00" in url:
            raise InputValidationError("input 'url' contains a NUL byte")
        headers = inputs.get("headers") or {}
        if not isinstance(headers, dict):
            raise InputValidationError("input 'headers' must be an object of name: value strings")
        secrets: list[str] = []
        for name, value in headers.items():
            if not isinstance(value, str) or any(c in value for c in "\r\n\x00"):
                raise InputValidationError(
                    f"input 'headers.{name}' must be a string without line breaks or NUL"
                )
            secrets.append(value)
            scheme, _, credential = value.partition(" ")
            if credential and scheme.isalpha():  # "Bearer <token>": the token alone too
                secrets.append(credential.strip())
        from urllib.parse import parse_qsl, urlsplit

        for param, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
            if is_sensitive_name(param):  # ?token=…, ?api_key=…
                secrets.append(value)
        if urlsplit(url).password:
            secrets.append(str(urlsplit(url).password))
        add_secret(*secrets)
        policy = settings.policy()
        policy.check_url(url)
        label = redact_url(url)

        def client() -> Any:
            import httpx

            from aipartnerupflow.core.executors.http_transport import policy_client

            return policy_client(
                policy, headers=dict(headers), timeout=httpx.Timeout(30.0, read=None)
            )

        key = _key("http", url, sorted(headers.items()), policy)
        return HttpServer(url, dict(headers), client, tuple(secrets)), label, key

    def _stdio(
        self, inputs: dict[str, Any], settings: McpSettings
    ) -> tuple[StdioServer, str, tuple[str, str]]:
        from aipartnerupflow.extensions.mcp.connection import StdioServer

        argv = check_argv(inputs.get("command"))
        if not settings.allow_stdio:
            raise StdioRefusedError(
                "stdio MCP servers are off: the operator must set "
                "AIPARTNERUPFLOW_MCP_ALLOW_STDIO=true and list the program in "
                "AIPARTNERUPFLOW_MCP_ALLOWED_EXECUTABLES"
            )
        program = resolve_program(
            argv[0],
            allowed=settings.allowed_executables,
            search_path=settings.search_path,
            allowed_setting="AIPARTNERUPFLOW_MCP_ALLOWED_EXECUTABLES",
            search_setting="AIPARTNERUPFLOW_MCP_SEARCH_PATH",
            refused=StdioRefusedError,
            execute_listed=True,
        )
        cwd = resolve_cwd(
            inputs.get("cwd"),
            allowed_dirs=settings.allowed_dirs,
            setting="AIPARTNERUPFLOW_MCP_ALLOWED_DIRS",
            refused=StdioRefusedError,
            unset_means="the server runs in the engine's working directory",
        )
        env = {"PATH": settings.search_path}
        secrets: list[str] = []
        raw_env = inputs.get("env") or {}
        if not isinstance(raw_env, dict):
            raise InputValidationError("input 'env' must be an object of NAME: value strings")
        for name, value in raw_env.items():
            check_env_name(
                name,
                f"env.{name}",
                allowed=settings.env_allow,
                setting="AIPARTNERUPFLOW_MCP_ENV_ALLOW",
                refused=StdioRefusedError,
            )
            if not isinstance(value, str) or "\x00" in value:
                raise InputValidationError(f"input 'env.{name}' must be a string without NUL")
            if is_sensitive_name(name):
                secrets.append(value)
            env[name] = value
        add_secret(*secrets)
        full = [program, *argv[1:]]
        key = _key("stdio", full, sorted(env.items()), cwd)
        return StdioServer(full, env, cwd, tuple(secrets)), program, key

    async def _connect(
        self,
        server: HttpServer | StdioServer,
        label: str,
        key: tuple[str, str],
        settings: McpSettings,
    ) -> Connection:
        from aipartnerupflow.extensions.mcp.connection import Connection

        async def open_connection() -> Connection:
            return await Connection(server, label).start(settings.connect_timeout)

        async def close(conn: Connection) -> None:
            await conn.aclose()

        conn = await loop_resource(key, open_connection, close)
        if not conn.alive:  # the server went away since: start afresh
            await forget_loop_resource(key)
            conn = await loop_resource(key, open_connection, close)
        self._connection, self._key = conn, key
        return conn

    # -- operations ------------------------------------------------------------------------

    def _prepare(self, operation: str, inputs: dict[str, Any]) -> Any:
        """Check the operation's inputs; returns ``async (conn, budget, ctx) -> result``."""
        arguments = inputs.get("arguments")
        if arguments is not None:
            if not isinstance(arguments, dict):
                raise InputValidationError("input 'arguments' must be an object")
            if not _depth_ok(arguments, _MAX_DEPTH):
                raise InputValidationError(
                    f"input 'arguments' is nested more than {_MAX_DEPTH} levels deep"
                )
            if not _finite(arguments):
                raise InputValidationError(
                    "input 'arguments' contains NaN or Infinity, which JSON cannot carry"
                )
        if operation == "call_tool":
            name = _required(inputs, "tool_name")
            return lambda conn, budget, ctx: self._call_tool(
                conn, name, arguments or {}, budget, ctx
            )
        if operation == "read_resource":
            uri = _required(inputs, "resource_uri")
            return lambda conn, budget, ctx: self._read_resource(conn, uri, budget)
        if operation == "get_prompt":
            name = _required(inputs, "prompt_name")
            strings = arguments or {}
            for arg, value in strings.items():
                if not isinstance(value, str):
                    raise InputValidationError(
                        f"input 'arguments.{arg}': prompt arguments must be strings"
                    )
            return lambda conn, budget, ctx: self._get_prompt(conn, name, strings, budget)
        return lambda conn, budget, ctx: self._list(conn, operation, budget)

    async def _tool(self, conn: Connection, name: str) -> Any:
        if conn.tools is None or name not in conn.tools:
            tools = await _paged(conn, "list_tools", "tools")
            conn.tools = {tool.name: tool for tool in tools}
        tool = conn.tools.get(name)
        if tool is None:
            known = ", ".join(sorted(conn.tools)[:20]) or "none"
            raise InputValidationError(
                f"input 'tool_name': the server has no tool {name!r} (its tools: {known})"
            )
        return tool

    async def _call_tool(
        self,
        conn: Connection,
        name: str,
        arguments: dict[str, Any],
        budget: Budget,
        ctx: TaskContext | None,
    ) -> dict[str, Any]:
        tool = await self._tool(conn, name)
        schema = tool.inputSchema
        if isinstance(schema, dict) and schema:
            try:
                problem = input_problem(schema, arguments)
            except Exception as exc:  # the server's schema is not a valid JSON Schema
                raise PermanentError(
                    f"the server's input schema of tool {name!r} is not a valid JSON Schema "
                    f"({type(exc).__name__}), so its arguments cannot be checked"
                ) from None
            if problem:
                problem = problem.replace("input '", "input 'arguments.", 1).replace(
                    "inputs:", "input 'arguments':", 1
                )
                raise InputValidationError(
                    f"the arguments do not match the input schema of tool {name!r}: {problem}"
                )
        last = [0.0]

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            if ctx is None or not isinstance(progress, int | float) or not math.isfinite(progress):
                return
            if isinstance(total, int | float) and math.isfinite(total) and total > 0:
                last[0] = min(1.0, max(last[0], progress / total))
            shown = message or (f"{progress:g}/{total:g}" if total else f"{progress:g}")
            ctx.report_progress(last[0], shown)

        async def call(session: ClientSession) -> Any:
            return await session.call_tool(name, arguments, progress_callback=on_progress)

        result = await _guarded(conn, call)
        content = [content_json(item, budget) for item in result.content]
        out: dict[str, Any] = {"content": content, "text": _text_of(content)}
        if result.structuredContent is not None:
            out.update(structured_json(result.structuredContent, budget))
        if result.isError:
            text = out["text"] or "the tool reported an error without text"
            raise McpToolError(f"tool {name!r} failed: {text}", out)
        return out

    async def _read_resource(self, conn: Connection, uri: str, budget: Budget) -> dict[str, Any]:
        from pydantic import AnyUrl, ValidationError

        try:
            target = AnyUrl(uri)
        except ValidationError:
            raise InputValidationError(f"input 'resource_uri': {uri!r} is not a URI") from None

        async def read(session: ClientSession) -> Any:
            return await session.read_resource(target)

        result = await _guarded(conn, read)
        return {"uri": uri, "contents": contents_json(result.contents, budget)}

    async def _get_prompt(
        self, conn: Connection, name: str, arguments: dict[str, str], budget: Budget
    ) -> dict[str, Any]:
        async def get(session: ClientSession) -> Any:
            return await session.get_prompt(name, arguments or None)

        result = await _guarded(conn, get)
        messages = [
            {"role": message.role, "content": content_json(message.content, budget)}
            for message in result.messages
        ]
        out: dict[str, Any] = {"messages": messages}
        if result.description:
            out["description"] = result.description
        return out

    async def _list(self, conn: Connection, operation: str, budget: Budget) -> dict[str, Any]:
        field = {
            "list_tools": "tools",
            "list_resources": "resources",
            "list_resource_templates": "resourceTemplates",
            "list_prompts": "prompts",
        }[operation]
        items = await _paged(conn, operation, field)
        if operation == "list_tools":
            conn.tools = {tool.name: tool for tool in items}
        return {field: listing_json(items, budget)}


def _required(inputs: dict[str, Any], field: str) -> str:
    value = inputs.get(field)
    if not isinstance(value, str) or not value:
        raise InputValidationError(f"input {field!r} is required for this operation")
    return value


async def _guarded(conn: Connection, make: Any) -> Any:
    """A request on ``conn``, with JSON-RPC errors as project errors."""
    from mcp.shared.exceptions import McpError

    try:
        return await conn.request(make)
    except McpError as exc:
        code = int(exc.error.code)
        text = f"the MCP server answered with error {code}: {exc.error.message}"
        if code in _PERMANENT_CODES:
            raise PermanentProtocolError(text, code) from None
        raise McpProtocolError(text, code) from None


async def _paged(conn: Connection, method: str, field: str) -> list[Any]:
    """Every item of a paginated list request (at most ``_MAX_PAGES`` pages)."""
    from mcp import types

    items: list[Any] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None

        async def page(session: ClientSession, params: Any = params) -> Any:
            return await getattr(session, method)(params=params)

        result = await _guarded(conn, page)
        items.extend(getattr(result, field))
        cursor = result.nextCursor
        if not cursor:
            break
    return items
