"""The inputs of ``ssh_executor``: JSON Schema, and the checks a schema cannot express.

Field names follow the original project's ``ssh_executor`` (``host``, ``port``, ``username``,
``command``, ``password``, ``key_file``, ``timeout``, ``env``) plus the new ones. Messages name
the field and never repeat a value (it may be a secret).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from aipartnerupflow.core.errors import InputValidationError

__all__ = ["INPUT_SCHEMA", "SshRequest", "parse_request"]

_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_FINGERPRINT = r"^SHA256:[A-Za-z0-9+/]{43}=?$"
_ENV_RE = re.compile(_ENV_NAME)
_FINGERPRINT_RE = re.compile(_FINGERPRINT)
_SECRET = {"type": "string", "minLength": 1, "maxLength": 65536}
_ENV_REF = {"type": "string", "pattern": _ENV_NAME}

INPUT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["host", "username", "command"],
    "properties": {
        "host": {
            "type": "string",
            "minLength": 1,
            "maxLength": 255,
            "description": "Host name or address of the SSH server.",
        },
        "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 22},
        "username": {"type": "string", "minLength": 1, "maxLength": 255},
        "command": {
            "description": "An argv list (each item quoted with shlex.join and run with exec: "
            "no shell interpretation), or a string run as written by the remote user's "
            "login shell (pipes, globs and variables work; quote untrusted values yourself).",
            "oneOf": [
                {"type": "string", "minLength": 1, "maxLength": 131072},
                {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 4096,
                    "items": {"type": "string", "maxLength": 131072},
                },
            ],
        },
        "password": {**_SECRET, "description": "Password (prefer password_env)."},
        "password_env": {
            **_ENV_REF,
            "description": "Environment variable holding the password (the operator must list "
            "it in AIPARTNERUPFLOW_SSH_SECRET_ENV).",
        },
        "private_key": {**_SECRET, "description": "Private key, inline (OpenSSH or PEM text)."},
        "private_key_env": {**_ENV_REF, "description": "Environment variable holding the key."},
        "key_file": {
            "type": "string",
            "minLength": 1,
            "maxLength": 4096,
            "description": "Path of a private key on the engine's machine; only inside the "
            "directories of AIPARTNERUPFLOW_SSH_KEY_DIRS, and not group/other readable.",
        },
        "passphrase": {**_SECRET, "description": "Passphrase of an encrypted private key."},
        "passphrase_env": {**_ENV_REF, "description": "Environment variable of the passphrase."},
        "agent": {
            "type": "boolean",
            "default": False,
            "description": "Also offer the keys of the engine's ssh-agent (needs "
            "AIPARTNERUPFLOW_SSH_ALLOW_AGENT).",
        },
        "host_key_fingerprint": {
            "type": "string",
            "pattern": _FINGERPRINT,
            "description": "Pin the server's host key (SHA256:... as printed by ssh-keygen -l); "
            "the known_hosts file is then not consulted.",
        },
        "host_key_policy": {
            "enum": ["strict", "accept_new"],
            "default": "strict",
            "description": "strict: the host key must be in the known_hosts file. accept_new: "
            "a host with no entry is trusted on first use and added (needs "
            "AIPARTNERUPFLOW_SSH_ALLOW_ACCEPT_NEW); a changed key is always refused.",
        },
        "env": {
            "type": "object",
            "maxProperties": 256,
            "propertyNames": {"pattern": _ENV_NAME, "maxLength": 256},
            "additionalProperties": {"type": "string", "maxLength": 131072},
            "description": "Variables exported (quoted) before the command runs.",
        },
        "cwd": {"type": "string", "minLength": 1, "maxLength": 4096},
        "stdin": {"type": "string", "description": "Text written to the command's stdin."},
        "timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 86400,
            "default": 30,
            "description": "Seconds for the whole task: connecting, logging in and running.",
        },
        "max_output_bytes": {
            "type": "integer",
            "minimum": 0,
            "description": "Most bytes kept of stdout and of stderr (never above "
            "AIPARTNERUPFLOW_SSH_MAX_OUTPUT_BYTES); the result says what was cut.",
        },
        "allowed_exit_codes": {
            "type": "array",
            "minItems": 1,
            "maxItems": 256,
            "items": {"type": "integer", "minimum": 0, "maximum": 255},
            "default": [0],
            "description": "Exit statuses that complete the task; any other fails it.",
        },
    },
    "additionalProperties": True,
}


@dataclass(frozen=True, slots=True)
class SshRequest:
    """Checked inputs of one ssh task."""

    host: str
    port: int
    username: str
    command: str | tuple[str, ...]
    password: str | None = None
    password_env: str | None = None
    private_key: str | None = None
    private_key_env: str | None = None
    key_file: str | None = None
    passphrase: str | None = field(default=None, repr=False)
    passphrase_env: str | None = None
    agent: bool = False
    host_key_fingerprint: str | None = None
    host_key_policy: str = "strict"
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    stdin: str | None = None
    timeout: float = 30.0
    max_output_bytes: int | None = None
    allowed_exit_codes: frozenset[int] = frozenset({0})


def _string(inputs: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = inputs.get(name)
    if value is None:
        if required:
            raise InputValidationError(f"input {name!r} is required but missing")
        return None
    if not isinstance(value, str) or not value:
        raise InputValidationError(f"input {name!r} must be a non-empty string")
    if "\x00" in value:
        raise InputValidationError(f"input {name!r} contains a NUL byte")
    return value


def _command(value: Any) -> str | tuple[str, ...]:
    if isinstance(value, str):
        if not value.strip():
            raise InputValidationError("input 'command' must not be blank")
        if "\x00" in value:
            raise InputValidationError("input 'command' contains a NUL byte")
        return value
    if not isinstance(value, list) or not value:
        raise InputValidationError(
            "input 'command' must be a string (run by the remote shell) or a non-empty list "
            "of strings (argv)"
        )
    for i, arg in enumerate(value):
        if not isinstance(arg, str):
            raise InputValidationError(f"input 'command[{i}]' must be a string")
        if "\x00" in arg:
            raise InputValidationError(f"input 'command[{i}]' contains a NUL byte")
    if not value[0]:
        raise InputValidationError("input 'command[0]' (the program) must not be empty")
    return tuple(value)


def _env(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputValidationError("input 'env' must be an object of strings")
    out: dict[str, str] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not _ENV_RE.match(name):
            raise InputValidationError(
                "input 'env' has a variable name that is not a shell identifier "
                "(letters, digits and _, not starting with a digit)"
            )
        if not isinstance(item, str):
            raise InputValidationError(f"input 'env.{name}' must be a string")
        if "\x00" in item:
            raise InputValidationError(f"input 'env.{name}' contains a NUL byte")
        out[name] = item
    return out


def _timeout(value: Any) -> float:
    if value is None:
        return 30.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputValidationError("input 'timeout' must be a number of seconds")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0 or seconds > 86400:
        raise InputValidationError("input 'timeout' must be more than 0 and at most 86400")
    return seconds


def _exit_codes(value: Any) -> frozenset[int]:
    if value is None:
        return frozenset({0})
    if not isinstance(value, list) or not value:
        raise InputValidationError("input 'allowed_exit_codes' must be a non-empty list")
    codes = set()
    for i, code in enumerate(value):
        if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 255:
            raise InputValidationError(
                f"input 'allowed_exit_codes[{i}]' must be a whole number from 0 to 255"
            )
        codes.add(code)
    return frozenset(codes)


def parse_request(inputs: dict[str, Any]) -> SshRequest:
    """Check ``inputs`` (already matched against :data:`INPUT_SCHEMA` by the engine, but the
    executor may be called directly) and return them as an :class:`SshRequest`."""
    if not isinstance(inputs, dict):
        raise InputValidationError("inputs must be a JSON object")
    host = _string(inputs, "host", required=True) or ""
    username = _string(inputs, "username", required=True) or ""
    port = inputs.get("port", 22)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InputValidationError("input 'port' must be a whole number from 1 to 65535")
    if "command" not in inputs:
        raise InputValidationError("input 'command' is required but missing")
    fingerprint = _string(inputs, "host_key_fingerprint")
    if fingerprint is not None and not _FINGERPRINT_RE.match(fingerprint):
        raise InputValidationError(
            "input 'host_key_fingerprint' must be a SHA256 fingerprint as printed by "
            "`ssh-keygen -l -f key.pub` (SHA256: and 43 base64 characters)"
        )
    policy = inputs.get("host_key_policy", "strict")
    if policy not in ("strict", "accept_new"):
        raise InputValidationError("input 'host_key_policy' must be 'strict' or 'accept_new'")
    agent = inputs.get("agent", False)
    if not isinstance(agent, bool):
        raise InputValidationError("input 'agent' must be true or false")
    limit = inputs.get("max_output_bytes")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InputValidationError("input 'max_output_bytes' must be a whole number, 0 or more")
    stdin = inputs.get("stdin")
    if stdin is not None and not isinstance(stdin, str):
        raise InputValidationError("input 'stdin' must be a string")
    request = SshRequest(
        host=host,
        port=port,
        username=username,
        command=_command(inputs["command"]),
        password=_string(inputs, "password"),
        password_env=_string(inputs, "password_env"),
        private_key=_string(inputs, "private_key"),
        private_key_env=_string(inputs, "private_key_env"),
        key_file=_string(inputs, "key_file"),
        passphrase=_string(inputs, "passphrase"),
        passphrase_env=_string(inputs, "passphrase_env"),
        agent=agent,
        host_key_fingerprint=fingerprint,
        host_key_policy=policy,
        env=_env(inputs.get("env")),
        cwd=_string(inputs, "cwd"),
        stdin=stdin,
        timeout=_timeout(inputs.get("timeout")),
        max_output_bytes=limit,
        allowed_exit_codes=_exit_codes(inputs.get("allowed_exit_codes")),
    )
    keys = [n for n in ("private_key", "private_key_env", "key_file") if getattr(request, n)]
    if len(keys) > 1:
        raise InputValidationError(f"give one private key, not {' and '.join(keys)}")
    if request.password is not None and request.password_env is not None:
        raise InputValidationError("give 'password' or 'password_env', not both")
    if request.passphrase is not None and request.passphrase_env is not None:
        raise InputValidationError("give 'passphrase' or 'passphrase_env', not both")
    if not (keys or request.password or request.password_env or request.agent):
        raise InputValidationError(
            "no credentials: give 'password' (or 'password_env'), a private key ('private_key', "
            "'private_key_env' or 'key_file'), or 'agent': true"
        )
    return request
