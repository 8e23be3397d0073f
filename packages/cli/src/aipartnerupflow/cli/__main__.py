"""``python -m aipartnerupflow.cli``: the same as the ``apflow`` command."""

from __future__ import annotations

from aipartnerupflow.cli.main import main

if __name__ == "__main__":
    main()
