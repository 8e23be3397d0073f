"""Facts about this machine, read from the standard library and ``/proc``; no command is run.

Each function returns a JSON-ready dict. Where ``/proc`` is missing (macOS, Windows) the
fields it would give are ``None``, and ``system`` says which OS answered.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

__all__ = [
    "RESOURCES",
    "cpu_info",
    "disk_info",
    "human_bytes",
    "load_info",
    "memory_info",
    "os_info",
    "python_info",
    "read_resource",
]

RESOURCES = ("cpu", "memory", "disk", "os", "python", "load")
_PROC = Path("/proc")


def human_bytes(n: int | None) -> str | None:
    """``n`` bytes in binary units (``"15.5 GiB"``)."""
    if n is None:
        return None
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _percent(part: int | None, whole: int | None) -> float | None:
    if part is None or not whole:
        return None
    return round(100.0 * part / whole, 1)


def cpu_info(proc: Path = _PROC) -> dict[str, Any]:
    """Model, physical cores, logical CPUs (``threads``) and the CPUs this process may use."""
    brand: str | None = None
    cores: set[tuple[str, str]] = set()
    text = _read(proc / "cpuinfo")
    if text is not None:
        physical = core = ""
        for line in [*text.splitlines(), ""]:
            key, _, value = (part.strip() for part in line.partition(":"))
            if key in ("model name", "Model", "Hardware", "cpu model") and brand is None:
                brand = value or None
            elif key == "physical id":
                physical = value
            elif key == "core id":
                core = value
            elif not key:  # a blank line ends one processor's block
                if core:
                    cores.add((physical, core))
                physical = core = ""
    if brand is None and sys.platform == "win32":
        # not platform.processor(): on Linux and macOS it runs uname -p or sysctl
        brand = os.environ.get("PROCESSOR_IDENTIFIER") or None
    logical = os.cpu_count()
    try:
        usable: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = logical
    return {
        "system": platform.system(),
        "brand": brand,
        "architecture": platform.machine() or None,
        "cores": len(cores) or logical,
        "threads": logical,
        "usable_cpus": usable,
    }


def _meminfo(proc: Path) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in (_read(proc / "meminfo") or "").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            scale = 1024 if len(parts) > 1 and parts[1].lower() == "kb" else 1
            values[key.strip()] = int(parts[0]) * scale
    return values


def memory_info(proc: Path = _PROC) -> dict[str, Any]:
    """Total, available and used memory and swap, in bytes (``total`` also for people)."""
    info = _meminfo(proc)
    total = info.get("MemTotal")
    available = info.get("MemAvailable", info.get("MemFree"))
    used = total - available if total is not None and available is not None else None
    swap_total = info.get("SwapTotal")
    swap_free = info.get("SwapFree")
    return {
        "system": platform.system(),
        "total": human_bytes(total),
        "total_gb": round(total / 1024**3, 2) if total is not None else None,
        "total_bytes": total,
        "available_bytes": available,
        "used_bytes": used,
        "used_percent": _percent(used, total),
        "swap_total_bytes": swap_total,
        "swap_used_bytes": (
            swap_total - swap_free if swap_total is not None and swap_free is not None else None
        ),
    }


def disk_info(path: str = "/") -> dict[str, Any]:
    """Size, use and free space of the file system holding ``path``."""
    usage = shutil.disk_usage(path)
    return {
        "system": platform.system(),
        "path": path,
        "total": human_bytes(usage.total),
        "used": human_bytes(usage.used),
        "available": human_bytes(usage.free),
        "used_percent": _percent(usage.used, usage.total),
        "total_bytes": usage.total,
        "used_bytes": usage.used,
        "available_bytes": usage.free,
    }


def _os_release() -> dict[str, str]:
    for candidate in (Path("/etc/os-release"), Path("/usr/lib/os-release")):
        text = _read(candidate)
        if text is None:
            continue
        fields = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip():
                fields[key.strip()] = value.strip().strip("'\"")
        return fields
    return {}


def os_info(proc: Path = _PROC) -> dict[str, Any]:
    """Kernel, distribution, host name and uptime."""
    release = _os_release()
    uptime: float | None = None
    text = _read(proc / "uptime")
    if text:
        try:
            uptime = float(text.split()[0])
        except (ValueError, IndexError):
            uptime = None
    return {
        "system": platform.system(),
        "release": platform.release(),
        "version": platform.version(),
        "machine": platform.machine() or None,
        "hostname": socket.gethostname(),
        "distribution": release.get("PRETTY_NAME") or release.get("NAME"),
        "distribution_id": release.get("ID"),
        "distribution_version": release.get("VERSION_ID"),
        "uptime_seconds": uptime,
    }


def python_info() -> dict[str, Any]:
    """The Python running the executor."""
    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "version_info": list(sys.version_info[:3]),
        "platform": sys.platform,
        "compiler": platform.python_compiler() or None,
    }


def load_info() -> dict[str, Any]:
    """Load averages over 1, 5 and 15 minutes (None where the OS has none)."""
    try:
        one, five, fifteen = os.getloadavg()
    except (AttributeError, OSError):
        return {"system": platform.system(), "load_1": None, "load_5": None, "load_15": None}
    cpus = os.cpu_count() or 1
    return {
        "system": platform.system(),
        "load_1": round(one, 2),
        "load_5": round(five, 2),
        "load_15": round(fifteen, 2),
        "load_1_per_cpu": round(one / cpus, 2),
    }


def read_resource(resource: str, path: str = "/") -> dict[str, Any]:
    """One resource's facts (``all``: every resource under its name)."""
    if resource == "all":
        return {name: read_resource(name, path) for name in RESOURCES}
    if resource == "cpu":
        return cpu_info()
    if resource == "memory":
        return memory_info()
    if resource == "disk":
        return disk_info(path)
    if resource == "os":
        return os_info()
    if resource == "python":
        return python_info()
    if resource == "load":
        return load_info()
    raise ValueError(f"unknown resource {resource!r}")
