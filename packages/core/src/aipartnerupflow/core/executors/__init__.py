"""The executor kit: what every executor package builds on (stdlib and pydantic only).

* :mod:`.policy` - :class:`OutboundPolicy`: which hosts may be reached; checks resolved
  addresses and pins the connection to them (no DNS rebinding), denies metadata endpoints;
* :mod:`.secrets` - :func:`add_secret`, :class:`SecretScrubber`, :func:`read_secret_env`:
  registered secrets never reach results, errors, events or logs;
* :mod:`.caps` - :class:`OutputCap`: keep N bytes of a stream and say what was cut;
* :mod:`.process` - :func:`run_process`: argv only, own process group, SIGTERM then SIGKILL,
  capped output, exit-code policy; no child survives its task;
* :mod:`.programs` - :func:`resolve_program`, :func:`resolve_cwd`, :func:`check_env_name`:
  allow-listed programs (matched on resolved absolute paths), directories and variables;
* :mod:`.resources` - :func:`loop_resource`: per-event-loop clients with one close path;
* :mod:`.settings` - :class:`OutboundSettings`, :class:`SecretEnvSettings`: the settings
  fields every network executor shares (allowed hosts, private targets, secret variables);
* :mod:`.metadata` - :func:`executor_info` (class metadata without an instance) and the
  opt-in gate for dangerous executors;
* :mod:`.http_transport` (needs httpx: ``aipartnerupflow-core[httpx]``) - an httpx transport
  that applies an :class:`OutboundPolicy` to every connection.

Error classes live in :mod:`aipartnerupflow.core.errors`: ``PermanentError`` (never retried),
``RetryableError`` (``retry_after``), ``OutboundPolicyError``. Names import lazily.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aipartnerupflow.core.executors.caps import (
        DEFAULT_MAX_OUTPUT_BYTES as DEFAULT_MAX_OUTPUT_BYTES,
    )
    from aipartnerupflow.core.executors.caps import OutputCap as OutputCap
    from aipartnerupflow.core.executors.caps import cap_text as cap_text
    from aipartnerupflow.core.executors.caps import effective_limit as effective_limit
    from aipartnerupflow.core.executors.metadata import ENABLE_SETTING as ENABLE_SETTING
    from aipartnerupflow.core.executors.metadata import ExecutorInfo as ExecutorInfo
    from aipartnerupflow.core.executors.metadata import executor_info as executor_info
    from aipartnerupflow.core.executors.metadata import gate_problem as gate_problem
    from aipartnerupflow.core.executors.metadata import params_problem as params_problem
    from aipartnerupflow.core.executors.policy import OutboundPolicy as OutboundPolicy
    from aipartnerupflow.core.executors.policy import Target as Target
    from aipartnerupflow.core.executors.policy import normalise_host as normalise_host
    from aipartnerupflow.core.executors.process import ProcessExitError as ProcessExitError
    from aipartnerupflow.core.executors.process import ProcessResult as ProcessResult
    from aipartnerupflow.core.executors.process import check_argv as check_argv
    from aipartnerupflow.core.executors.process import run_process as run_process
    from aipartnerupflow.core.executors.programs import (
        ProgramRefusedError as ProgramRefusedError,
    )
    from aipartnerupflow.core.executors.programs import check_env_name as check_env_name
    from aipartnerupflow.core.executors.programs import resolve_cwd as resolve_cwd
    from aipartnerupflow.core.executors.programs import resolve_program as resolve_program
    from aipartnerupflow.core.executors.resources import (
        aclose_loop_resources as aclose_loop_resources,
    )
    from aipartnerupflow.core.executors.resources import (
        forget_loop_resource as forget_loop_resource,
    )
    from aipartnerupflow.core.executors.resources import loop_resource as loop_resource
    from aipartnerupflow.core.executors.secrets import MASK as MASK
    from aipartnerupflow.core.executors.secrets import SecretScrubber as SecretScrubber
    from aipartnerupflow.core.executors.secrets import active_scrubber as active_scrubber
    from aipartnerupflow.core.executors.secrets import add_secret as add_secret
    from aipartnerupflow.core.executors.secrets import is_sensitive_name as is_sensitive_name
    from aipartnerupflow.core.executors.secrets import read_secret_env as read_secret_env
    from aipartnerupflow.core.executors.secrets import redact_url as redact_url
    from aipartnerupflow.core.executors.secrets import scrubbing as scrubbing
    from aipartnerupflow.core.executors.secrets import wrap_log_records as wrap_log_records
    from aipartnerupflow.core.executors.settings import OutboundSettings as OutboundSettings
    from aipartnerupflow.core.executors.settings import SecretEnvSettings as SecretEnvSettings

_WHERE = {
    "DEFAULT_MAX_OUTPUT_BYTES": "caps",
    "OutputCap": "caps",
    "cap_text": "caps",
    "effective_limit": "caps",
    "ENABLE_SETTING": "metadata",
    "ExecutorInfo": "metadata",
    "executor_info": "metadata",
    "gate_problem": "metadata",
    "params_problem": "metadata",
    "OutboundPolicy": "policy",
    "Target": "policy",
    "normalise_host": "policy",
    "ProcessExitError": "process",
    "ProcessResult": "process",
    "check_argv": "process",
    "run_process": "process",
    "ProgramRefusedError": "programs",
    "check_env_name": "programs",
    "resolve_cwd": "programs",
    "resolve_program": "programs",
    "aclose_loop_resources": "resources",
    "forget_loop_resource": "resources",
    "loop_resource": "resources",
    "MASK": "secrets",
    "SecretScrubber": "secrets",
    "active_scrubber": "secrets",
    "add_secret": "secrets",
    "is_sensitive_name": "secrets",
    "read_secret_env": "secrets",
    "redact_url": "secrets",
    "scrubbing": "secrets",
    "wrap_log_records": "secrets",
    "OutboundSettings": "settings",
    "SecretEnvSettings": "settings",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
