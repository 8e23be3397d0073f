"""The ``example_executor`` for aipartnerupflow (the template for executor packages).

Keep this module light: the entry point targets ``executor.py``, and any heavy SDK is imported
inside ``execute()``, never at import time.
"""

from __future__ import annotations

__all__ = ["EXECUTOR_ID"]

#: The id tasks use in ``schemas.method``; also the entry-point name in pyproject.toml.
EXECUTOR_ID = "example_executor"
