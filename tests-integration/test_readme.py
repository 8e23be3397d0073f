"""The README's commands and code stay true."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "AIPARTNERUPFLOW_DATABASE_URL": f"duckdb:///{tmp_path / 'r.duckdb'}"}


def test_quickstart_sample_runs_and_prints_results(tmp_path: Path) -> None:
    for _ in range(2):  # twice: generated ids never collide
        out = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "quickstart.py")],
            capture_output=True,
            text=True,
            env=_env(tmp_path),
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0].endswith(f"completed  (stored in duckdb:///{tmp_path / 'r.duckdb'})")
        assert '"words": 9' in out.stdout and '"word": "them", "count": 3' in out.stdout


def test_readme_library_example_runs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"## Use it as a library\n\n```python\n(.*?)```", readme, re.S)
    assert code is not None
    script = tmp_path / "example.py"
    script.write_text(code.group(1))
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.splitlines()
    assert first == "completed {'greeting': 'hello world'}"
    assert "'status': 'completed'" in second and "'greeting': 'hello b'" in second


def test_readme_commands_are_the_ones_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "pip install uv nox && nox\n" in readme
    assert "nox" in (ROOT / ".ci" / "run").read_text()


def test_readme_cli_line_runs_the_sample(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    line = "uv run apflow --plugin examples.executors run flow --tasks-file examples/pipeline.json"
    assert line in readme
    apflow = Path(sys.executable).with_name("apflow")
    out = subprocess.run(
        [str(apflow), *line.split()[3:], "--json"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    import json

    doc = json.loads(out.stdout)
    assert doc["status"] == "completed" and len(doc["tasks"]) == 3
