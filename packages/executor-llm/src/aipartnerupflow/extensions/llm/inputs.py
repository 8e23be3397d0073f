"""The inputs of ``llm_executor``: JSON Schema, and their translation into a :class:`Request`.

Nothing here imports LiteLLM or does I/O. :func:`make_request` renders the templates, checks
the JSON Schema of a JSON answer, resolves the key and checks a task's own ``api_base``
against the outbound policy; every problem is an
:class:`~aipartnerupflow.core.errors.InputValidationError` raised before any call is paid for.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from aipartnerupflow.core.errors import ConfigurationError, InputValidationError
from aipartnerupflow.core.executors.secrets import read_secret_env
from aipartnerupflow.extensions.llm.settings import ENV_PREFIX, LLMSettings
from aipartnerupflow.extensions.llm.templates import render

__all__ = ["DEFAULT_TIMEOUT", "INPUT_SCHEMA", "PASSTHROUGH", "Request", "make_request"]

DEFAULT_TIMEOUT = 120.0
MAX_TIMEOUT = 3600.0
MAX_MESSAGES = 1000

#: Sampling parameters forwarded to LiteLLM as they are (other unknown inputs are ignored:
#: the engine merges dependency results into the inputs).
PASSTHROUGH: dict[str, dict[str, Any]] = {
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "presence_penalty": {"type": "number", "minimum": -2, "maximum": 2},
    "frequency_penalty": {"type": "number", "minimum": -2, "maximum": 2},
    "seed": {"type": "integer"},
    "user": {"type": "string", "maxLength": 256},
    "reasoning_effort": {"type": "string", "maxLength": 32},
}

_MESSAGE = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": {"type": ["string", "array", "null"]},
        "name": {"type": "string"},
        "tool_call_id": {"type": "string"},
        "tool_calls": {"type": "array"},
    },
}

INPUT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "llm_executor inputs",
    "type": "object",
    "properties": {
        "model": {
            "type": "string",
            "minLength": 1,
            "description": "LiteLLM model string, e.g. openai/gpt-4o-mini, anthropic/claude-"
            "sonnet-4-5, ollama/llama3 (default: AIPARTNERUPFLOW_LLM_MODEL).",
        },
        "messages": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_MESSAGES,
            "items": _MESSAGE,
            "description": "Chat messages; string contents are templates.",
        },
        "prompt": {
            "type": "string",
            "description": "A single user message (a template); instead of or after messages.",
        },
        "system_prompt": {
            "type": "string",
            "description": "A system message put first (a template).",
        },
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "max_tokens": {"type": "integer", "minimum": 1},
        "stop": {
            "oneOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}, "maxItems": 16},
            ]
        },
        "response_format": {
            "description": "'text' (default) or 'json'; or OpenAI's object form "
            '({"type": "json_object"} / {"type": "json_schema", "json_schema": {...}}).',
            "oneOf": [
                {"enum": ["text", "json", "json_object"]},
                {"type": "object", "required": ["type"]},
            ],
        },
        "json_schema": {
            "type": "object",
            "description": "JSON Schema the JSON answer must match (implies response_format "
            "json); an invalid answer gets one repair request.",
        },
        "stream": {
            "type": "boolean",
            "default": False,
            "description": "Stream the answer; tokens so far are reported as progress.",
        },
        "timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": MAX_TIMEOUT,
            "default": DEFAULT_TIMEOUT,
            "description": "Seconds allowed for each provider call.",
        },
        "api_key": {"type": "string", "minLength": 1, "description": "API key (a secret)."},
        "api_key_env": {
            "type": "string",
            "minLength": 1,
            "description": "Environment variable holding the API key (allow-listed by the "
            "operator).",
        },
        "api_base": {
            "type": "string",
            "minLength": 1,
            "description": "Base URL of the provider's API (checked by the outbound policy).",
        },
        "tools": {
            "type": "array",
            "description": "Tool definitions (only when the operator sets "
            "AIPARTNERUPFLOW_LLM_ALLOW_TOOLS); tool calls are returned, never executed.",
        },
        "tool_choice": {},
        "checkpoint": {
            "type": "boolean",
            "default": True,
            "description": "Reuse a stored answer of the same request on retry or resume.",
        },
        **PASSTHROUGH,
    },
    # The engine merges dependency results into the inputs under each dependency's id.
    "additionalProperties": True,
}


@dataclass(slots=True)
class Request:
    """A validated call: what LiteLLM gets (``params``, without the key) and how to check it."""

    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    api_key: str | None
    stream: bool
    timeout: float
    json_mode: bool
    json_schema: dict[str, Any] | None
    checkpoint: bool
    secrets: list[str] = field(default_factory=list)


def _fail(problem: str) -> InputValidationError:
    return InputValidationError(f"llm_executor inputs: {problem}")


def _number(inputs: dict[str, Any], name: str) -> float | None:
    value = inputs.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(f"{name!r} must be a finite number")
    return float(value)


def _messages(inputs: dict[str, Any], variables: dict[str, Any]) -> list[dict[str, Any]]:
    raw = inputs.get("messages")
    prompt, system = inputs.get("prompt"), inputs.get("system_prompt")
    if raw is None and prompt is None:
        raise _fail("give 'messages' (a list of {role, content}) or 'prompt' (a string)")
    out: list[dict[str, Any]] = []
    if system is not None:
        if not isinstance(system, str):
            raise _fail("'system_prompt' must be a string")
        out.append({"role": "system", "content": render(system, variables, where="system_prompt")})
    if raw is not None:
        if not isinstance(raw, list) or not raw:
            raise _fail("'messages' must be a non-empty list of {role, content} objects")
        for i, message in enumerate(raw):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise _fail(f"messages[{i}] must be an object with a 'role'")
            item = dict(message)
            content = item.get("content")
            if isinstance(content, str):
                item["content"] = render(content, variables, where=f"messages[{i}].content")
            elif isinstance(content, list):
                parts = []
                for j, part in enumerate(content):
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        part = {
                            **part,
                            "text": render(
                                part["text"], variables, where=f"messages[{i}].content[{j}]"
                            ),
                        }
                    parts.append(part)
                item["content"] = parts
            out.append(item)
    if prompt is not None:
        if not isinstance(prompt, str):
            raise _fail("'prompt' must be a string")
        out.append({"role": "user", "content": render(prompt, variables, where="prompt")})
    for i, message in enumerate(out):
        content = message.get("content")
        texts: list[Any] = [content] if isinstance(content, str) else []
        if isinstance(content, list):
            texts = [p.get("text") for p in content if isinstance(p, dict)]
        if any(isinstance(t, str) and "\x00" in t for t in texts):
            raise _fail(f"message {i} contains a NUL character, which providers refuse")
    return out


def _json_options(inputs: dict[str, Any]) -> tuple[bool, dict[str, Any] | None, Any]:
    """(json wanted, schema to validate, response_format for the provider)."""
    fmt = inputs.get("response_format", "text")
    schema = inputs.get("json_schema")
    if fmt in (None, "text") and schema is None:
        return False, None, None
    if isinstance(fmt, dict):
        kind = fmt.get("type")
        if kind == "text":
            if schema is not None:
                raise _fail("'json_schema' needs a JSON response_format, not text")
            return False, None, None
        if kind == "json_schema":
            spec = fmt.get("json_schema")
            if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
                raise _fail(
                    'response_format {"type": "json_schema"} needs "json_schema": '
                    '{"name": ..., "schema": {...}}'
                )
            schema = schema if schema is not None else spec["schema"]
        elif kind != "json_object":
            raise _fail(
                f"response_format type {kind!r} is unknown; use text, json_object or json_schema"
            )
        provider_format: Any = fmt
    elif fmt in (None, "text", "json", "json_object"):
        provider_format = (
            {"type": "json_schema", "json_schema": {"name": "result", "schema": schema}}
            if schema is not None
            else {"type": "json_object"}
        )
    else:
        raise _fail(f"response_format {fmt!r} is unknown; use 'text' or 'json'")
    if schema is not None:
        if not isinstance(schema, dict):
            raise _fail("'json_schema' must be a JSON Schema object")
        from jsonschema import validators
        from jsonschema.exceptions import SchemaError

        try:
            validators.validator_for(schema).check_schema(schema)
        except SchemaError as exc:
            raise _fail(f"'json_schema' is not a valid JSON Schema: {exc.message}") from None
    return True, schema, provider_format


def _api_key(inputs: dict[str, Any], settings: LLMSettings) -> str | None:
    key, env = inputs.get("api_key"), inputs.get("api_key_env")
    if key is not None and env is not None:
        raise _fail("give 'api_key' or 'api_key_env', not both")
    if env is not None:
        return read_secret_env(
            env,
            allowed=settings.readable_env(),
            setting=f"{ENV_PREFIX}SECRET_ENV or AIPARTNERUPFLOW_SECRET_ENV",
            field="api_key_env",
        )
    if key is not None:
        if not isinstance(key, str) or not key:
            raise _fail("'api_key' must be a non-empty string")
        return key
    return settings.api_key


def make_request(
    inputs: dict[str, Any],
    settings: LLMSettings,
    *,
    dependency_results: dict[str, Any] | None = None,
) -> Request:
    """Check and translate the inputs; raises before anything is sent."""
    model = inputs.get("model") or settings.model
    if not isinstance(model, str) or not model.strip():
        raise _fail(
            "'model' is required (a LiteLLM model string such as openai/gpt-4o-mini), or set "
            f"{ENV_PREFIX}MODEL"
        )
    secret_names = {"api_key", "api_key_env"}
    public = {k: v for k, v in inputs.items() if k not in secret_names}
    variables = {**public, "inputs": public, "deps": dict(dependency_results or {})}
    messages = _messages(inputs, variables)
    json_mode, schema, provider_format = _json_options(inputs)

    params: dict[str, Any] = {}
    temperature = _number(inputs, "temperature")
    if temperature is not None:
        params["temperature"] = temperature
    max_tokens = inputs.get("max_tokens")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise _fail("'max_tokens' must be a positive integer")
    if settings.max_tokens is not None:
        max_tokens = min(max_tokens or settings.max_tokens, settings.max_tokens)
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    if inputs.get("stop") is not None:
        params["stop"] = inputs["stop"]
    for name in PASSTHROUGH:
        if inputs.get(name) is not None:
            params[name] = inputs[name]
    if provider_format is not None:
        params["response_format"] = provider_format
    if inputs.get("tools") is not None:
        if not settings.allow_tools:
            raise _fail(
                "'tools' are off: the operator must set AIPARTNERUPFLOW_LLM_ALLOW_TOOLS=true "
                "(tool calls are returned to the task, never executed)"
            )
        params["tools"] = inputs["tools"]
        if inputs.get("tool_choice") is not None:
            params["tool_choice"] = inputs["tool_choice"]

    api_base = inputs.get("api_base")
    if api_base is not None:
        if not isinstance(api_base, str):
            raise _fail("'api_base' must be a URL string")
        settings.policy().check_url(api_base)
    else:
        api_base = settings.api_base
    if api_base:
        params["api_base"] = api_base

    timeout = _number(inputs, "timeout")
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    if not 0 < timeout <= MAX_TIMEOUT:
        raise _fail(f"'timeout' must be above 0 and at most {MAX_TIMEOUT:g} seconds")
    stream = inputs.get("stream", False)
    if not isinstance(stream, bool):
        raise _fail("'stream' must be true or false")
    checkpoint = inputs.get("checkpoint", True)
    if not isinstance(checkpoint, bool):
        raise _fail("'checkpoint' must be true or false")
    try:
        json.dumps([messages, params], allow_nan=False)
    except ValueError:
        raise _fail("the request holds NaN or Infinity, which JSON cannot carry") from None
    except (TypeError, RecursionError) as exc:
        raise _fail(f"the request cannot be sent as JSON: {exc}") from None
    key = _api_key(inputs, settings)
    if key is not None and not key.strip():
        raise ConfigurationError("the LLM API key is empty")
    return Request(
        model=model.strip(),
        messages=messages,
        params=params,
        api_key=key,
        stream=stream,
        timeout=timeout,
        json_mode=json_mode,
        json_schema=schema,
        checkpoint=checkpoint and settings.checkpoints,
        secrets=[key] if key else [],
    )
