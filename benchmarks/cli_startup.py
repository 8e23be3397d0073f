"""How fast the ``apflow`` command starts: help, version, and a whole ``run flow`` of 10 no-op
tasks, each as a fresh process, repeated; plus the slowest imports of each.

    uv run python benchmarks/cli_startup.py [--runs 10] [--json]

Figures are wall-clock seconds of complete processes (hyperfine-style: warm-up, then N runs;
min / median / mean / max). Bytecode is written on the warm-up run (as a normal install has
it), so the figures do not include compiling sources. Targets (issue 27): help <= 0.1 s,
run flow of 10 no-op tasks <= 0.3 s (issue 5's were 0.3 s and 0.8 s).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TASKS = json.dumps(
    [{"name": "root", "schemas": {"method": "bench_noop"}}]
    + [
        {"name": f"t{i}", "parent_id": "root", "schemas": {"method": "bench_noop"}}
        for i in range(1, 10)
    ]
)


def apflow_command() -> list[str]:
    """The installed ``apflow`` script next to this interpreter (else ``python -m``)."""
    script = Path(sys.executable).with_name("apflow")
    if script.exists():
        return [str(script)]
    found = shutil.which("apflow")
    return [found] if found else [sys.executable, "-m", "aipartnerupflow.cli"]


def environment(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIPARTNERUPFLOW_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        AIPARTNERUPFLOW_DATABASE_URL=f"duckdb:///{tmp / 'bench.duckdb'}",
        AIPARTNERUPFLOW_DAEMON_DIR=str(tmp / "daemon"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH", "")])),
    )
    return env


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr}")
    return elapsed


def measure(cmd: list[str], env: dict[str, str], cwd: Path, runs: int) -> dict[str, float]:
    timed(cmd, env, cwd)  # warm-up: caches, bytecode
    samples = [timed(cmd, env, cwd) for _ in range(runs)]
    return {
        "min": min(samples),
        "median": statistics.median(samples),
        "mean": statistics.fmean(samples),
        "max": max(samples),
    }


def slowest_imports(
    cmd: list[str], env: dict[str, str], cwd: Path, top: int
) -> list[tuple[str, float]]:
    """Top-level imports by cumulative time (``python -X importtime``), of the same program
    (the installed script where there is one: ``python -m`` skips its root-help fast path)."""
    script = cmd[0] if Path(cmd[0]).name in ("apflow", "aipartnerupflow") else None
    program = [script] if script else ["-m", "aipartnerupflow.cli"]
    args = [sys.executable, "-X", "importtime", *program, *cmd[1:]]
    proc = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True)
    rows: list[tuple[str, float]] = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line.split(":", 1)[1].split("|"))
        if not cumulative.isdigit():
            continue
        depth = len(line.rsplit("|", 1)[1]) - len(line.rsplit("|", 1)[1].lstrip())
        if depth <= 2:  # top-level modules only
            rows.append((name, int(cumulative) / 1e6))
    rows.sort(key=lambda r: r[1], reverse=True)
    return rows[:top]


def through_daemon(
    apflow: list[str], plugin: list[str], env: dict[str, str], tmp: Path, runs: int
) -> dict[str, dict[str, float]]:
    """The same run and count while the a2a daemon holds the file (they go through its API)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    start = [*apflow, *plugin, "daemon", "start", "--port", port]
    started = subprocess.run(start, env=env, cwd=tmp, capture_output=True, text=True)
    if started.returncode != 0:
        print(f"(daemon not measured: {started.stderr.strip()})", file=sys.stderr)
        return {}
    try:
        run = [*apflow, *plugin, "run", "flow", "--json", "--tasks", TASKS]
        return {
            "run flow through the daemon (10 no-op, --json)": measure(run, env, tmp, runs),
            "tasks count through the daemon": measure(
                [*apflow, "tasks", "count", "--json"], env, tmp, runs
            ),
        }
    finally:
        subprocess.run([*apflow, "daemon", "stop"], env=env, cwd=tmp, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="measured runs per command")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--imports", type=int, default=8, help="slowest imports to list")
    args = parser.parse_args()

    apflow = apflow_command()
    with tempfile.TemporaryDirectory(prefix="apflow-bench-") as name:
        tmp = Path(name)
        env = environment(tmp)
        plugin = ["--plugin", "cli_noop_plugin"]
        cases: dict[str, list[str]] = {
            "apflow --help": [*apflow, "--help"],
            "apflow run flow --help": [*apflow, "run", "flow", "--help"],
            "apflow tasks list --help": [*apflow, "tasks", "list", "--help"],
            "apflow version": [*apflow, "version"],
            "apflow daemon status": [*apflow, "daemon", "status"],
            "apflow run flow (10 no-op tasks, --json)": [
                *apflow,
                *plugin,
                "run",
                "flow",
                "--json",
                "--tasks",
                TASKS,
            ],
            "apflow run flow (10 no-op tasks, summary)": [
                *apflow,
                *plugin,
                "run",
                "flow",
                "--tasks",
                TASKS,
            ],
            "apflow tasks count": [*apflow, "tasks", "count", "--json"],
        }
        results: dict[str, Any] = {
            "runs": args.runs,
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "commands": {},
            "imports": {},
        }
        for label, cmd in cases.items():
            results["commands"][label] = measure(cmd, env, tmp, args.runs)
        for label in ("apflow --help", "apflow run flow (10 no-op tasks, --json)"):
            results["imports"][label] = slowest_imports(cases[label], env, tmp, args.imports)
        results["commands"].update(through_daemon(apflow, plugin, env, tmp, args.runs))

    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"apflow start-up, {args.runs} runs each after a warm-up "
        f"(python {results['python']}, {results['cpus']} CPUs); seconds"
    )
    print(f"{'command':<48} {'min':>6} {'median':>7} {'mean':>6} {'max':>6}")
    for label, stats in results["commands"].items():
        print(
            f"{label:<48} {stats['min']:6.3f} {stats['median']:7.3f} {stats['mean']:6.3f} "
            f"{stats['max']:6.3f}"
        )
    for label, rows in results["imports"].items():
        print(f"\nslowest top-level imports of `{label}` (cumulative, -X importtime):")
        for module, seconds in rows:
            print(f"  {seconds:6.3f}  {module}")


if __name__ == "__main__":
    main()
