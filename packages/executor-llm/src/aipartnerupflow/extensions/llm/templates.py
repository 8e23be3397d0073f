"""Prompt templating in a sandbox (Jinja2's :class:`SandboxedEnvironment`).

Templates see the task's inputs (top level and as ``inputs``) and its dependencies' results
(``deps``, by task id). They cannot reach Python internals (the sandbox), cannot build huge
strings (``*`` and ``**`` are capped) and their output is capped. User data is never passed
to ``str.format``.
"""

from __future__ import annotations

import json
import operator
from functools import lru_cache
from typing import Any

from aipartnerupflow.core.errors import InputValidationError

__all__ = ["MAX_RENDERED_CHARS", "MAX_TEMPLATE_CHARS", "needs_rendering", "render"]

MAX_TEMPLATE_CHARS = 200_000
MAX_RENDERED_CHARS = 2_000_000
_MAX_POWER = 10_000


def needs_rendering(text: str) -> bool:
    """Whether ``text`` holds template syntax at all (plain text is passed through as is)."""
    return "{{" in text or "{%" in text or "{#" in text


def _tojson(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent, default=str)


@lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import SandboxedEnvironment

    class _Capped(SandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
            if op == "**":
                if isinstance(right, int | float) and abs(right) > _MAX_POWER:
                    raise SecurityError(f"exponent {right} is too large in a template")
                return operator.pow(left, right)
            for seq, n in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(n, int)
                    and len(seq) * n > MAX_RENDERED_CHARS
                ):
                    raise SecurityError("a template tried to build an over-long value")
            return operator.mul(left, right)

    env = _Capped(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.filters["tojson"] = _tojson
    return env


def render(text: str, variables: dict[str, Any], *, where: str) -> str:
    """Render ``text`` with ``variables``; a clear :class:`InputValidationError` otherwise."""
    if not needs_rendering(text):
        return text
    if len(text) > MAX_TEMPLATE_CHARS:
        raise InputValidationError(
            f"llm_executor inputs: {where} is a template of {len(text)} characters; at most "
            f"{MAX_TEMPLATE_CHARS} are allowed"
        )
    from jinja2.exceptions import SecurityError, TemplateError, UndefinedError

    env = _environment()
    try:
        out = env.from_string(text).render(variables)
    except UndefinedError as exc:
        raise InputValidationError(
            f"llm_executor inputs: {where} uses an undefined variable ({exc.message}); "
            "templates see the inputs by name, 'inputs' and 'deps' (results by task id). "
            "Write {% raw %}...{% endraw %} around text that only looks like a template"
        ) from None
    except SecurityError as exc:
        raise InputValidationError(
            f"llm_executor inputs: {where} was refused by the template sandbox: {exc}"
        ) from None
    except TemplateError as exc:
        raise InputValidationError(
            f"llm_executor inputs: {where} is not a valid template: {exc}"
        ) from None
    except (ArithmeticError, TypeError, ValueError, RecursionError) as exc:
        raise InputValidationError(
            f"llm_executor inputs: {where} failed to render: {type(exc).__name__}: {exc}"
        ) from None
    if len(out) > MAX_RENDERED_CHARS:
        raise InputValidationError(
            f"llm_executor inputs: {where} renders to {len(out)} characters; at most "
            f"{MAX_RENDERED_CHARS} are allowed"
        )
    return str(out)
