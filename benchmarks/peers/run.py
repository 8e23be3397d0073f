"""The engine beside DBOS Transact and Prefect 3, interleaved, in one run (issue 27).

    nox -s bench_peers [-- --reps 3 --sections engine workers cli a2a floor --only chain_200]

Sections (each prints a Markdown table; ``--save FILE`` stores every figure as JSON):

* ``engine``: the workloads of ``benchmarks/run.py`` (fan-out 1,000 and 10,000 no-op,
  chain 200, 50 x 100 ms sleepers), each run in a fresh process, on ours (DuckDB file and
  PostgreSQL), DBOS (SQLite and PostgreSQL) and Prefect 3 (local mode); one repetition runs
  every side once per workload, in an order that rotates from one repetition to the next.
  A run that exceeds ``--timeout`` is reported as such, and that side is not tried on that
  workload again;
* ``workers``: PostgreSQL with 1 and 2 worker processes, ours (``benchmarks/workers.py``)
  and DBOS queue workers (``dbos_workers.py``): throughput and ready-to-start p50/p95;
* ``cli``: a whole process running 10 no-op tasks from the command line: ``apflow run flow``
  (``benchmarks/cli_startup.py``), ``python dbos_workloads.py`` and ``python
  prefect_workloads.py`` (each on a kept database, after one untimed run);
* ``a2a``: ``GetTask`` requests/s, our server against a bare a2a-sdk server
  (``a2a_get_task.py``);
* ``floor``: the least time to durably write each workload's rows (``storage_floor.py``),
  beside the engine's time for that workload.

Figures are medians with their range (min-max) over the repetitions; ``ours/peer`` is the
ratio of the medians (below 1: ours is faster). The load average is printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import BENCHMARKS, POSTGRES_ADMIN_URL, WORKLOADS

HERE = Path(__file__).resolve().parent
PY = sys.executable
SECTIONS = ["engine", "workers", "cli", "a2a", "floor"]

#: Each side's command for one workload (a fresh process printing one JSON line).
SIDES: dict[str, list[str]] = {
    "ours DuckDB": [PY, str(BENCHMARKS / "run.py"), "--backend", "duckdb", "--one"],
    "ours PostgreSQL": [PY, str(BENCHMARKS / "run.py"), "--backend", "postgres", "--one"],
    "DBOS SQLite": [PY, str(HERE / "dbos_workloads.py"), "--db", "sqlite", "--one"],
    "DBOS PostgreSQL": [PY, str(HERE / "dbos_workloads.py"), "--db", "postgres", "--one"],
    "Prefect 3": [PY, str(HERE / "prefect_workloads.py"), "--one"],
}
#: Which of ours each peer is compared with: the embedded store with the embedded peers.
COUNTERPART = {
    "DBOS SQLite": "ours DuckDB",
    "DBOS PostgreSQL": "ours PostgreSQL",
    "Prefect 3": "ours DuckDB",
}


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


def _json_line(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            result: dict[str, Any] = json.loads(line)
            return result
    raise ValueError(f"no JSON line in the output: {stdout[-500:]!r}")


def run_process(cmd: list[str], timeout: float) -> dict[str, Any]:
    """One benchmark process; its JSON line, or ``{"timeout": s}`` / ``{"error": text}``."""
    # Its own process group, so a timeout also ends what it started (Prefect's server).
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"timeout": timeout}
    if proc.returncode != 0:
        return {"error": (stderr or stdout).strip().splitlines()[-1:]}
    return _json_line(stdout)


def _rotated(items: list[str], rep: int) -> list[str]:
    k = rep % len(items)
    return items[k:] + items[:k]


def engine(
    reps: int,
    workloads: list[str],
    sides: list[str],
    timeouts: dict[str, float],
    runs: dict[str, dict[str, list[dict[str, Any]]]],
    checkpoint: Callable[[], None],
) -> dict[str, Any]:
    """Fills ``runs`` (workload -> side -> results), saving after every run."""
    for w in workloads:
        for side in sides:
            runs.setdefault(w, {}).setdefault(side, [])
    for rep in range(reps):
        for workload in workloads:
            for side in _rotated(sides, rep):
                done = runs[workload][side]
                if any("timeout" in r for r in done):
                    continue  # capped once: not tried again
                result = run_process([*SIDES[side], workload], timeouts[workload])
                done.append(result)
                checkpoint()
                print(f"  rep {rep + 1} {workload:<15} {side:<16} {_brief(result)}", flush=True)
    return runs


def _brief(result: dict[str, Any]) -> str:
    if "timeout" in result:
        return f"> {result['timeout']:.0f} s (timed out)"
    if "error" in result:
        return f"error: {result['error']}"
    return f"{result['seconds']:.3f} s"


def _seconds(results: list[dict[str, Any]]) -> list[float]:
    return [r["seconds"] for r in results if "seconds" in r]


def _cell(results: list[dict[str, Any]], unit: str = "s", scale: float = 1.0) -> str:
    values = _seconds(results)
    if not values:
        for r in results:
            if "timeout" in r:
                return f"> {r['timeout']:.0f} s (capped)"
        return "failed" if results else "—"
    med = statistics.median(values) * scale
    if len(values) == 1:
        return f"{med:.3f} {unit}"
    return f"{med:.3f} {unit} ({min(values) * scale:.3f}-{max(values) * scale:.3f})"


def _ratio(ours: list[dict[str, Any]], peer: list[dict[str, Any]]) -> str:
    mine, theirs = _seconds(ours), _seconds(peer)
    if mine and theirs:
        return f"{statistics.median(mine) / statistics.median(theirs):.3f}"
    if mine and any("timeout" in r for r in peer):
        cap = next(r["timeout"] for r in peer if "timeout" in r)
        return f"< {statistics.median(mine) / cap:.4f}"
    return "—"


def engine_table(runs: dict[str, Any], sides: list[str]) -> list[str]:
    peers = [s for s in sides if s in COUNTERPART and COUNTERPART[s] in sides]
    head = ["workload", *sides, *(f"{COUNTERPART[p]} / {p}" for p in peers)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for workload, by_side in runs.items():
        if not all(s in by_side for s in sides):
            continue
        cells = [_cell(by_side[s]) for s in sides]
        ratios = [_ratio(by_side[COUNTERPART[p]], by_side[p]) for p in peers]
        lines.append("| " + " | ".join([workload, *cells, *ratios]) + " |")
    return lines


def workers_section(reps: int, timeout: float) -> dict[str, Any]:
    import workers as ours_workers  # benchmarks/workers.py

    fanout = ours_workers.fanout_tree(2000)
    chain = ours_workers.chain_tree(200)

    def ours_throughput(n: int) -> dict[str, Any]:
        url, handle = ours_workers._database(POSTGRES_ADMIN_URL)
        try:
            seconds, _ = asyncio.run(ours_workers._run(url, fanout, n))
        finally:
            ours_workers._drop(handle)
        return {"seconds": seconds, "tasks": len(fanout)}

    def ours_latency() -> dict[str, Any]:
        url, handle = ours_workers._database(POSTGRES_ADMIN_URL)
        try:
            asyncio.run(ours_workers._run(url, chain, 2))
            waits = sorted(ours_workers._latencies(url))
        finally:
            ours_workers._drop(handle)
        return {
            "p50_ms": statistics.median(waits) * 1000,
            "p95_ms": waits[int(len(waits) * 0.95) - 1] * 1000,
        }

    dbos = [PY, str(HERE / "dbos_workers.py"), "--timeout", str(timeout)]
    out: dict[str, Any] = {}
    for rep in range(reps):
        for n in (1, 2):
            for side in _rotated(["ours", "DBOS"], rep):
                key = f"{side} {n} worker{'s' if n > 1 else ''}"
                if side == "ours":
                    result = ours_throughput(n)
                else:
                    result = run_process([*dbos, "--throughput", str(n)], timeout * 2)
                out.setdefault(key, []).append(result)
                print(f"  rep {rep + 1} {key:<18} {_brief(result)}", flush=True)
        for side in _rotated(["ours", "DBOS"], rep):
            key = f"{side} latency"
            if side == "ours":
                result = ours_latency()
            else:
                result = run_process([*dbos, "--latency", "--links", "50"], timeout * 2)
            out.setdefault(key, []).append(result)
            print(f"  rep {rep + 1} {key:<18} {result}", flush=True)
    return out


def _ms(results: list[dict[str, Any]], key: str) -> str:
    values = [r[key] for r in results if key in r]
    if not values:
        return "—"
    return f"{statistics.median(values):.1f} ms ({min(values):.1f}-{max(values):.1f})"


def _rate(results: list[dict[str, Any]]) -> tuple[str, float | None]:
    rates = [r["tasks"] / r["seconds"] for r in results if "seconds" in r]
    if not rates:
        return "—", None
    med = statistics.median(rates)
    return f"{med:,.0f} tasks/s ({min(rates):,.0f}-{max(rates):,.0f})", med


def workers_table(out: dict[str, Any]) -> list[str]:
    lines = ["| | ours | DBOS | ours/DBOS |", "|---|---|---|---|"]
    for n in (1, 2):
        suffix = f"{n} worker{'s' if n > 1 else ''}"
        ours, ours_med = _rate(out.get(f"ours {suffix}", []))
        peer, peer_med = _rate(out.get(f"DBOS {suffix}", []))
        ratio = f"{ours_med / peer_med:.2f} (throughput)" if ours_med and peer_med else "—"
        lines.append(f"| throughput, {suffix} (2,001 no-op) | {ours} | {peer} | {ratio} |")
    for key in ("p50_ms", "p95_ms"):
        ours_l, peer_l = out.get("ours latency", []), out.get("DBOS latency", [])
        a = [r[key] for r in ours_l if key in r]
        b = [r[key] for r in peer_l if key in r]
        ratio = f"{statistics.median(a) / statistics.median(b):.3f}" if a and b else "—"
        label = key.split("_")[0]
        lines.append(
            f"| ready-to-start {label}, 2 workers | {_ms(ours_l, key)} | {_ms(peer_l, key)} "
            f"| {ratio} |"
        )
    return lines


def cli_section(reps: int, timeout: float) -> dict[str, Any]:
    import cli_startup  # benchmarks/cli_startup.py

    with tempfile.TemporaryDirectory(prefix="peers-cli-") as name:
        tmp = Path(name)
        env = cli_startup.environment(tmp)
        (tmp / "prefect").mkdir()
        commands = {
            "ours (apflow run flow)": [
                *cli_startup.apflow_command(),
                "--plugin",
                "cli_noop_plugin",
                "run",
                "flow",
                "--json",
                "--tasks",
                cli_startup.TASKS,
            ],
            "DBOS SQLite": [
                PY,
                str(HERE / "dbos_workloads.py"),
                "--one",
                "cli_10",
                "--no-warm-up",
                "--sqlite",
                str(tmp / "dbos.sqlite"),
            ],
            "Prefect 3": [
                PY,
                str(HERE / "prefect_workloads.py"),
                "--one",
                "cli_10",
                "--no-warm-up",
                "--home",
                str(tmp / "prefect"),
            ],
        }
        out: dict[str, list[float]] = {label: [] for label in commands}
        for cmd in commands.values():  # untimed first run: database created, bytecode written
            subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, timeout=timeout)
        for rep in range(reps):
            for label in _rotated(list(commands), rep):
                out[label].append(cli_startup.timed(commands[label], env, tmp))
                print(f"  rep {rep + 1} {label:<24} {out[label][-1]:.3f} s", flush=True)
    return out


def cli_table(out: dict[str, list[float]]) -> list[str]:
    ours = statistics.median(out["ours (apflow run flow)"])
    lines = ["| whole process, 10 no-op tasks | wall time | ours/peer |", "|---|---|---|"]
    for label, samples in out.items():
        med = statistics.median(samples)
        ratio = "" if label.startswith("ours") else f"{ours / med:.3f}"
        lines.append(f"| {label} | {med:.3f} s ({min(samples):.3f}-{max(samples):.3f}) | {ratio} |")
    return lines


def a2a_section(reps: int) -> dict[str, Any]:
    out = run_process([PY, str(HERE / "a2a_get_task.py"), "--reps", str(reps)], 600)
    print(f"  {out}", flush=True)
    return out


def a2a_table(out: dict[str, Any]) -> list[str]:
    if "ours_rps" not in out:
        return [f"A2A GetTask not measured: {out}"]
    s = out["samples"]
    share = out["ours_rps"] / out["bare_rps"]
    return [
        "| GetTask, 8 concurrent | requests/s | ours/bare |",
        "|---|---|---|",
        f"| ours (DuckDB file) | {out['ours_rps']:,.0f} ({min(s['ours']):,.0f}-"
        f"{max(s['ours']):,.0f}) | {share:.2f} (target ≥ 0.80) |",
        f"| bare a2a-sdk, InMemoryTaskStore | {out['bare_rps']:,.0f} ({min(s['bare']):,.0f}-"
        f"{max(s['bare']):,.0f}) | |",
    ]


def floor_section() -> dict[str, Any]:
    out = run_process([PY, str(HERE / "storage_floor.py")], 900)
    print(f"  {out}", flush=True)
    return out


def floor_table(floor: dict[str, Any], runs: dict[str, Any] | None) -> list[str]:
    from _common import TASKS

    lines = [
        "| workload (rows) | DuckDB floor | ours DuckDB | ours/floor | PostgreSQL floor "
        "| ours PostgreSQL | ours/floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for workload, rows in TASKS.items():
        cells = [f"{workload} ({rows:,})"]
        for backend, side in (("duckdb", "ours DuckDB"), ("postgres", "ours PostgreSQL")):
            f = floor.get(f"{backend}/{rows}")
            ours = _seconds((runs or {}).get(workload, {}).get(side, []))
            cells.append(f"{f['min_s']:.3f} s" if f else "—")
            cells.append(f"{statistics.median(ours):.3f} s" if ours else "—")
            ratio = statistics.median(ours) / f["min_s"] if f and ours else None
            cells.append(f"{ratio:.1f}x" if ratio else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--sections", nargs="*", choices=SECTIONS, default=SECTIONS)
    parser.add_argument("--only", nargs="*", choices=WORKLOADS, default=WORKLOADS)
    parser.add_argument("--sides", nargs="*", choices=list(SIDES), default=list(SIDES))
    parser.add_argument("--timeout", type=float, default=150.0, help="cap per run (s)")
    parser.add_argument(
        "--cap-10000", type=float, default=60.0, help="cap per fanout_10000 run (s)"
    )
    parser.add_argument("--save", type=Path, help="write every figure to this JSON file")
    parser.add_argument(
        "--render", type=Path, nargs="*", help="print the tables of saved runs (merged), run none"
    )
    args = parser.parse_args()
    if args.render:
        merged: dict[str, Any] = {}
        for path in args.render:
            merged = _merge(merged, json.loads(path.read_text()))
        print("\n".join(tables(merged, list(SIDES))))
        return
    started = time.perf_counter()
    report: dict[str, Any] = {"load_before": load(), "reps": args.reps, "loads": {}}

    def checkpoint() -> None:
        report["load_after"] = load()
        report["wall_s"] = time.perf_counter() - started
        if args.save:
            args.save.parent.mkdir(parents=True, exist_ok=True)
            args.save.write_text(json.dumps(report, indent=2) + "\n")

    timeouts = {w: args.cap_10000 if w == "fanout_10000" else args.timeout for w in WORKLOADS}
    for section in args.sections:
        report["loads"][section] = load()
        print(f"{section} (load {load()})", flush=True)
        if section == "engine":
            report["engine"] = {}
            engine(args.reps, args.only, args.sides, timeouts, report["engine"], checkpoint)
        elif section == "workers":
            report["workers"] = workers_section(args.reps, args.timeout)
        elif section == "cli":
            report["cli"] = cli_section(args.reps, args.timeout)
        elif section == "a2a":
            report["a2a"] = a2a_section(args.reps)
        elif section == "floor":
            report["floor"] = floor_section()
        checkpoint()
    print("\n".join(tables(report, args.sides)))
    print(
        f"\nload average (1/5/15 min) before {report['load_before']}, after "
        f"{report['load_after']}; {report['wall_s']:.0f} s in all"
    )


def _merge(into: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """Saved runs combined: sections from later files win, engine results are appended."""
    out = dict(into)
    for key, value in report.items():
        if key == "engine" and "engine" in out:
            for workload, by_side in value.items():
                for side, results in by_side.items():
                    out["engine"].setdefault(workload, {}).setdefault(side, []).extend(results)
        else:
            out[key] = value
    return out


def tables(report: dict[str, Any], sides: list[str]) -> list[str]:
    lines: list[str] = []
    if "engine" in report:
        lines += ["", "engine workloads:", *engine_table(report["engine"], sides)]
    if "workers" in report:
        lines += ["", "PostgreSQL workers:", *workers_table(report["workers"])]
    if "cli" in report:
        lines += ["", "whole process:", *cli_table(report["cli"])]
    if "a2a" in report:
        lines += ["", "A2A:", *a2a_table(report["a2a"])]
    if "floor" in report:
        lines += ["", "storage floor:", *floor_table(report["floor"], report.get("engine"))]
    return lines


if __name__ == "__main__":
    main()
