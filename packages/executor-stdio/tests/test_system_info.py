"""system_info_executor: real values of this machine, parsing of /proc, and no command run."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aipartnerupflow.core.errors import InputValidationError
from aipartnerupflow.extensions.stdio import SystemInfoExecutor
from aipartnerupflow.extensions.stdio.sysinfo import (
    RESOURCES,
    cpu_info,
    human_bytes,
    memory_info,
    os_info,
)


async def info(**inputs: Any) -> dict[str, Any]:
    return await SystemInfoExecutor().execute(inputs)


@pytest.fixture
def no_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to start a program fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"system_info_executor started a program: {args!r}")

    for module, name in [
        (subprocess, "Popen"),
        (asyncio, "create_subprocess_exec"),
        (asyncio, "create_subprocess_shell"),
        (os, "system"),
        (os, "popen"),
        (os, "fork"),
        (os, "posix_spawn"),
        (os, "posix_spawnp"),
        (os, "execv"),
        (os, "execve"),
    ]:
        if hasattr(module, name):
            monkeypatch.setattr(module, name, refuse)


async def test_all_reads_every_resource_without_running_a_command(no_commands: None) -> None:
    result = await info(resource="all")
    assert set(result) == set(RESOURCES)
    # the original project's keys
    assert {"system", "brand", "cores", "threads"} <= set(result["cpu"])
    assert {"system", "total", "total_gb"} <= set(result["memory"])
    assert {"system", "total", "used", "available", "used_percent"} <= set(result["disk"])


async def test_default_resource_is_all(no_commands: None) -> None:
    assert set(await info()) == set(RESOURCES)


async def test_cpu_matches_the_os(no_commands: None) -> None:
    cpu = await info(resource="cpu")
    assert cpu["threads"] == os.cpu_count()
    assert 1 <= cpu["cores"] <= cpu["threads"]
    if hasattr(os, "sched_getaffinity"):
        assert cpu["usable_cpus"] == len(os.sched_getaffinity(0))


async def test_disk_matches_statvfs(tmp_path: Path, no_commands: None) -> None:
    disk = await info(resource="disk", path=str(tmp_path))
    usage = shutil.disk_usage(tmp_path)
    assert disk["total_bytes"] == usage.total
    assert disk["path"] == str(tmp_path)
    assert disk["total"] == human_bytes(usage.total)
    assert 0 <= disk["used_percent"] <= 100


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="no /proc on this OS")
async def test_memory_matches_proc(no_commands: None) -> None:
    memory = await info(resource="memory")
    first = Path("/proc/meminfo").read_text().splitlines()[0]  # MemTotal: N kB
    assert memory["total_bytes"] == int(first.split()[1]) * 1024
    assert 0 < memory["available_bytes"] <= memory["total_bytes"]
    assert memory["total_gb"] == round(memory["total_bytes"] / 1024**3, 2)


async def test_os_python_and_load(no_commands: None) -> None:
    os_facts = await info(resource="os")
    assert os_facts["release"] == os.uname().release
    assert os_facts["hostname"] == os.uname().nodename
    python = await info(resource="python")
    assert python["version_info"] == list(sys.version_info[:3])
    load = await info(resource="load")
    assert load["load_1"] == pytest.approx(os.getloadavg()[0], abs=5)


def test_cpuinfo_counts_physical_cores(tmp_path: Path) -> None:
    blocks = []
    for n, (physical, core) in enumerate([(0, 0), (0, 0), (0, 1), (0, 1), (1, 0), (1, 0)]):
        blocks.append(
            f"processor\t: {n}\nmodel name\t: Test CPU @ 3.00GHz\n"
            f"physical id\t: {physical}\ncore id\t\t: {core}\n"
        )
    (tmp_path / "cpuinfo").write_text("\n".join(blocks))
    cpu = cpu_info(tmp_path)
    assert cpu["brand"] == "Test CPU @ 3.00GHz"
    assert cpu["cores"] == 3


def test_missing_proc_gives_nulls_not_errors(tmp_path: Path) -> None:
    memory = memory_info(tmp_path)
    assert memory["total"] is None and memory["used_percent"] is None
    assert os_info(tmp_path)["uptime_seconds"] is None
    assert cpu_info(tmp_path)["cores"] == os.cpu_count()


def test_meminfo_without_memavailable(tmp_path: Path) -> None:
    (tmp_path / "meminfo").write_text("MemTotal: 2048 kB\nMemFree: 512 kB\nGarbage line\n")
    memory = memory_info(tmp_path)
    assert memory["total_bytes"] == 2048 * 1024
    assert memory["available_bytes"] == 512 * 1024
    assert memory["used_percent"] == 75.0
    assert memory["total"] == "2.0 MiB"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KiB"),
        (5 * 1024**5, "5.0 PiB"),
        (2**80, f"{2**80 / 1024**5:.1f} PiB"),
    ],
)
def test_human_bytes(value: int, text: str) -> None:
    assert human_bytes(value) == text


@pytest.mark.parametrize(
    ("inputs", "match"),
    [
        ({"resource": "gpu"}, "resource"),
        ({"resource": "disk", "path": "relative"}, "absolute"),
        ({"resource": "disk", "path": "/tmp\x00x"}, "absolute"),
        ({"resource": "disk", "path": "/no/such/place"}, "does not exist"),
    ],
)
async def test_bad_inputs(inputs: dict[str, Any], match: str) -> None:
    with pytest.raises(InputValidationError, match=match):
        await info(**inputs)
