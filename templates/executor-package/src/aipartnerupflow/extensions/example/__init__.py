"""Example executors for aipartnerupflow: the template for executor packages.

Two skeletons; keep the one that fits and delete the other:

* :mod:`.network` - ``example_fetch``: reaches a URL the task names, through the kit's
  outbound policy, with a secret from an allow-listed environment variable and a capped body;
* :mod:`.command` - ``example_command``: runs a program (argv, never a shell) with the kit's
  subprocess runner; ``dangerous``, so operators enable it explicitly.

Keep this module light: entry points target the executor modules, and any heavy SDK is
imported inside ``execute()``, never at import time.
"""

from __future__ import annotations

__all__ = ["COMMAND_ID", "FETCH_ID"]

#: The ids tasks use in ``schemas.method``; also the entry-point names in pyproject.toml.
FETCH_ID = "example_fetch"
COMMAND_ID = "example_command"
