"""Reading a JSON answer: strict parsing (no NaN), code fences tolerated, schema checked."""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["JsonProblem", "parse_json_answer"]

_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)
MAX_PROBLEMS = 10


class JsonProblem(ValueError):
    """The answer is not the JSON asked for; ``problems`` are written for the model."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_answer(content: str | None, schema: dict[str, Any] | None) -> Any:
    """The JSON value of ``content``, checked against ``schema``; raises :class:`JsonProblem`."""
    if content is None or not content.strip():
        raise JsonProblem(["the answer is empty; a JSON value was expected"])
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise JsonProblem(["the answer is nested too deeply"]) from None
    except ValueError as exc:
        raise JsonProblem([f"the answer is not valid JSON: {exc}"]) from None
    if schema is not None:
        from jsonschema import validators

        validator = validators.validator_for(schema)(schema)
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errors:
            problems = []
            for error in errors[:MAX_PROBLEMS]:
                path = "/".join(str(p) for p in error.absolute_path) or "(root)"
                problems.append(f"at {path}: {error.message[:300]}")
            if len(errors) > MAX_PROBLEMS:
                problems.append(f"and {len(errors) - MAX_PROBLEMS} more problems")
            raise JsonProblem(problems)
    return value
