"""Cheap value coercion for simple option types, so starting the CLI does not import pydantic.

Typer 0.2x converts every option value through a pydantic ``TypeAdapter``; importing pydantic
(and its plugin loader, which scans every installed distribution's entry points) costs more
than the rest of the start-up. ``str``, ``int``, ``float`` and ``bool`` options (optional or
in lists, with ``min``/``max``) need none of that. :func:`install` routes exactly those
through a small converter and leaves everything else to typer. If typer's internals are not
the expected ones, nothing is changed.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any, Union, get_args, get_origin

__all__ = ["install"]

_SIMPLE = (str, int, float, bool)
_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}
_installed = False


def _simple(annotation: Any) -> tuple[type, bool] | None:
    """``(type, is_list)`` for str/int/float/bool, optional or in a list; None otherwise."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) != 1:
            return None
        return _simple(members[0])
    if origin is list:
        args = get_args(annotation)
        if len(args) == 1 and args[0] in _SIMPLE:
            return args[0], True
        return None
    if annotation in _SIMPLE:
        return annotation, False
    return None


def install() -> None:
    """Patch typer's runtime-parameter factory (once); a no-op if typer looks different."""
    global _installed
    if _installed:
        return
    _installed = True
    try:
        from typer import core
        from typer._click.exceptions import BadParameter
        from typer._coercion import RuntimeParam
    except ImportError:  # pragma: no cover - another typer
        return
    original = getattr(core, "build_runtime_param", None)
    if original is None or not hasattr(core._TyperParameter, "get_runtime_param"):
        return  # pragma: no cover

    def convert(kind: type, value: Any, info: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            result = value
        elif kind is bool:
            text = str(value).strip().lower()
            if text not in _TRUE | _FALSE:
                raise BadParameter(f"{value!r} is not a valid boolean.", ctx=ctx, param=param)
            return text in _TRUE
        elif kind is str:
            return str(value)
        else:
            try:
                result = kind(value)
            except (TypeError, ValueError):
                label = "integer" if kind is int else "number"
                raise BadParameter(
                    f"{value!r} is not a valid {label}.", ctx=ctx, param=param
                ) from None
        low, high = getattr(info, "min", None), getattr(info, "max", None)
        if kind in (int, float) and (low is not None or high is not None):
            if getattr(info, "clamp", False):
                result = max(low, result) if low is not None else result
                return min(high, result) if high is not None else result
            if (low is not None and result < low) or (high is not None and result > high):
                bounds = " and ".join(
                    part
                    for part in (
                        f"x>={low}" if low is not None else "",
                        f"x<={high}" if high is not None else "",
                    )
                    if part
                )
                raise BadParameter(f"{result} is not in the range {bounds}.", ctx=ctx, param=param)
        return result

    @dataclass(frozen=True)
    class SimpleRuntimeParam(RuntimeParam):
        """str/int/float/bool coercion without pydantic."""

        kind: type = str
        is_list: bool = False

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if self.is_list:
                items = value if isinstance(value, list | tuple) else [value]
                return [convert(self.kind, v, self.parameter_info, param, ctx) for v in items]
            return convert(self.kind, value, self.parameter_info, param, ctx)

    def build_runtime_param(descriptor: Any) -> Any:
        info = descriptor.parameter_info
        simple = _simple(descriptor.annotation)
        if (
            simple is None
            or descriptor.file_annotation is not None
            or getattr(info, "parser", None) is not None
            or getattr(info, "click_type", None) is not None
        ):
            return original(descriptor)
        kind, is_list = simple
        return SimpleRuntimeParam(
            parameter_info=info, annotation=descriptor.annotation, kind=kind, is_list=is_list
        )

    setattr(core, "build_runtime_param", build_runtime_param)  # noqa: B010
