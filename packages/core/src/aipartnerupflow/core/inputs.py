"""Inputs: JSON-Schema validation and merging dependency results into a dependent's inputs."""

from __future__ import annotations

import json
from typing import Any

from aipartnerupflow.core.executor import ExecutableTask

__all__ = ["check_inputs", "constructor_params", "input_problem", "merge_dependency_results"]

_validators: dict[str, Any] = {}
#: id(schema) -> (schema, validator); the schema is kept, so its id cannot be reused.
_by_identity: dict[int, tuple[dict[str, Any], Any]] = {}
_PERMISSIVE: tuple[dict[str, Any], ...] = ({}, {"type": "object"})


def input_problem(schema: dict[str, Any], inputs: dict[str, Any]) -> str | None:
    """None when ``inputs`` match ``schema``, else one readable sentence naming the field.

    Validators are cached per schema object: do not change a schema in place once used.
    """
    if schema in _PERMISSIVE:
        return None if isinstance(inputs, dict) else "inputs must be a JSON object"
    # Executors return the same schema object on every call: look it up by identity first
    # (serialising a large schema for the key costs more than validating small inputs).
    known = _by_identity.get(id(schema))
    if known is not None and known[0] is schema:
        validator = known[1]
    else:
        key = json.dumps(schema, sort_keys=True, default=str)
        validator = _validators.get(key)
        if validator is None:
            from jsonschema import validators

            cls = validators.validator_for(schema)
            cls.check_schema(schema)
            validator = _validators[key] = cls(schema)
        if len(_by_identity) < 4096:
            _by_identity[id(schema)] = (schema, validator)
    from jsonschema.exceptions import best_match

    error = best_match(validator.iter_errors(inputs))
    if error is None:
        return None
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [r for r in error.validator_value if r not in error.instance]
        field = ".".join(filter(None, [path, missing[0] if missing else ""]))
        return f"input {field!r} is required but missing"
    where = f"input {path!r}" if path else "inputs"
    return f"{where}: {_describe(error.validator, error.validator_value, error.message)}"


def _describe(keyword: Any, expected: Any, message: str) -> str:
    """What a value must be, without quoting the value (it may be a secret)."""
    if keyword == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        return "must be of type " + " or ".join(str(k) for k in kinds)
    if keyword == "enum":
        return "must be one of " + ", ".join(repr(v) for v in expected)
    if keyword == "const":
        return f"must be {expected!r}"
    wording = {
        "minimum": "must be at least {}",
        "maximum": "must be at most {}",
        "exclusiveMinimum": "must be greater than {}",
        "exclusiveMaximum": "must be less than {}",
        "minLength": "must be at least {} characters long",
        "maxLength": "must be at most {} characters long",
        "pattern": "must match {!r}",
        "minItems": "must have at least {} items",
        "maxItems": "must have at most {} items",
        "format": "must be a valid {}",
        "multipleOf": "must be a multiple of {}",
    }.get(str(keyword))
    if wording is not None:
        return wording.format(expected)
    if keyword in ("additionalProperties", "required", "dependentRequired"):
        return message  # names keys, never values
    return f"does not match the input schema ('{keyword}')"


def constructor_params(params: dict[str, Any]) -> dict[str, Any]:
    """A task's params as executor constructor arguments (``executor_id`` only selects)."""
    if "executor_id" not in params:
        return params
    return {k: v for k, v in params.items() if k != "executor_id"}


def check_inputs(
    cls: type[ExecutableTask], params: dict[str, Any], inputs: dict[str, Any]
) -> str | None:
    """Build the executor with ``params`` and check ``inputs`` against its input schema."""
    try:
        executor = cls(**constructor_params(params))
    except TypeError as exc:
        return f"executor {cls.id!r} does not accept these params: {exc}"
    try:
        schema = executor.get_input_schema()
        problem = input_problem(schema, inputs)
    except Exception as exc:
        return f"executor {cls.id!r} has an invalid input schema: {exc}"
    return f"inputs do not match the input schema of {cls.id!r}: {problem}" if problem else None


def merge_dependency_results(
    inputs: dict[str, Any], schemas: dict[str, Any], results: dict[str, Any]
) -> dict[str, Any]:
    """The inputs a dependent runs with; the stored definition is never changed.

    Each dependency's result goes under the dependency's id; when ``schemas.input_schema``
    declares properties and a result is an object, its matching fields are also copied to the
    top level. Inputs given explicitly in the task win over copied fields.
    """
    if not results:
        return inputs
    merged = dict(inputs)
    schema = schemas.get("input_schema") if isinstance(schemas, dict) else None
    props = schema.get("properties") if isinstance(schema, dict) else None
    for dep_id, result in results.items():
        merged.setdefault(dep_id, result)
        if isinstance(props, dict) and isinstance(result, dict):
            for field, value in result.items():
                if field in props and field not in inputs:
                    merged[field] = value
    return merged
