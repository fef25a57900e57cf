"""What machine the benchmark ran on, and how busy it was while it ran."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TICKS = os.sysconf("SC_CLK_TCK")


def describe(wrk: str | None) -> dict[str, Any]:
    """nproc, CPU model, memory, kernel and tool versions."""
    cpu_model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    memory_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kb = int(line.split()[1])
    wrk_version = (
        subprocess.run(  # noqa: S603 - wrk -v
            [wrk, "-v"], capture_output=True, text=True, check=False
        ).stdout.splitlines()
        if wrk
        else []
    )
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk_version[0] if wrk_version else "",
        "loadavg_at_start": list(os.getloadavg()),
    }


def _cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    fields = [float(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])
    return total - idle, total


def busy_fraction(seconds: float = 1.0) -> float:
    """Share of all CPUs in use over the next ``seconds`` (0..1)."""
    busy_a, total_a = _cpu_times()
    time.sleep(seconds)
    busy_b, total_b = _cpu_times()
    return (busy_b - busy_a) / max(total_b - total_a, 1.0)


def wait_quiet(limit: float, timeout: float, say: Callable[[str], None]) -> float:
    """Wait until the machine is at most ``limit`` busy (or ``timeout`` s); return the level.

    Before a run the benchmark's own servers are idle, so whatever keeps the CPUs busy then
    belongs to someone else and would distort the run.
    """
    deadline = time.monotonic() + timeout
    level = busy_fraction(0.5)
    warned = False
    while level > limit and time.monotonic() < deadline:
        if not warned:
            say(f"  machine {level:.0%} busy before the run; waiting up to {timeout:.0f} s")
            warned = True
        level = busy_fraction(1.0)
    return level


def load() -> dict[str, Any]:
    """The load averages and the share of all CPUs busy over the next second."""
    return {
        "loadavg": [round(value, 2) for value in os.getloadavg()],
        "busy": round(busy_fraction(1.0), 3),
    }


def process_ticks(pids: Iterable[int]) -> float:
    """CPU seconds (user + system) used so far by these processes."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def children_cpu() -> float:
    """CPU seconds of this process's finished children (wrk)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Meter:
    """CPU use during one run: the whole machine, the server under test, wrk, the rest."""

    pids: Callable[[], list[int]]
    cpus: int = os.cpu_count() or 1

    def __enter__(self) -> Meter:
        self._pids = self.pids()
        self._busy, self._total = _cpu_times()
        self._server = process_ticks(self._pids)
        self._each = [process_ticks([pid]) for pid in self._pids]
        self._wrk = children_cpu()
        self._started = time.monotonic()
        return self

    def __exit__(self, *_exc: object) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        busy, total = _cpu_times()
        capacity = elapsed * self.cpus
        self.machine = (busy - self._busy) / max(total - self._total, 1.0)
        self.server_seconds = process_ticks(self._pids) - self._server
        self.server = self.server_seconds / capacity
        pairs = zip(self._pids, self._each, strict=True)
        each = [process_ticks([pid]) - start for pid, start in pairs]
        # The busiest process's part of the server's CPU: 1/workers when the load is even.
        self.busiest = max(each) / max(sum(each), 1e-9)
        self.wrk = (children_cpu() - self._wrk) / capacity
        self.other = max(self.machine - self.server - self.wrk, 0.0)

    def as_dict(self) -> dict[str, float]:
        """Shares of all CPUs (0..1), and the server's CPU seconds."""
        return {
            "server_seconds": round(self.server_seconds, 3),
            "machine_busy": round(self.machine, 3),
            "server": round(self.server, 3),
            "wrk": round(self.wrk, 3),
            "other": round(self.other, 3),
            "busiest_process": round(self.busiest, 3),
        }
