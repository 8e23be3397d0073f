"""aipartnerupflow: task orchestration for agent systems.

This file belongs to aipartnerupflow-core alone; plugin distributions add subpackages under
``aipartnerupflow.extensions`` (PEP 420) without shipping an ``__init__.py`` here. Public names
are imported on first access, so ``import aipartnerupflow`` stays cheap.
"""

from __future__ import annotations

import pkgutil

__path__ = pkgutil.extend_path(__path__, __name__)

from typing import TYPE_CHECKING, Any

from aipartnerupflow.core._exports import EXPORTS, load

if TYPE_CHECKING:  # the names, for type checkers; at run time they load on first use
    from aipartnerupflow.core import *  # noqa: F403

__version__ = "1.0.0"
__all__ = sorted(EXPORTS)


def __getattr__(name: str) -> Any:
    value = load(__name__, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
