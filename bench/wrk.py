"""Run wrk with bench/wrk.lua and read back its one-line JSON summary."""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent / "wrk.lua"
MARKER = "BENCH_JSON "


@dataclass(frozen=True)
class Load:
    """How hard wrk pushes: threads, connections, seconds."""

    threads: int
    connections: int
    duration: float


@dataclass(frozen=True)
class Result:
    """One wrk run."""

    requests: int
    errors: int
    status_errors: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    exhausted: bool
    tokens_used: int

    @property
    def ok(self) -> int:
        """Answers with a 2xx/3xx status."""
        return self.requests - self.status_errors

    @property
    def rps(self) -> float:
        """Successful answers per second."""
        return self.ok / self.duration_s if self.duration_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        """For the JSON report."""
        return {**asdict(self), "rps": round(self.rps, 2), "ok": self.ok}


class NoSummaryError(RuntimeError):
    """wrk ended without its summary line (the server refused or died)."""


def run(wrk: str, url: str, load: Load, *mode: str, timeout_s: int = 30) -> Result:
    """Run wrk against ``url`` in one mode of bench/wrk.lua."""
    command = [
        wrk,
        f"-t{load.threads}",
        f"-c{load.connections}",
        f"-d{max(1, round(load.duration))}s",
        f"--timeout={timeout_s}s",
        "-s",
        str(SCRIPT),
        url,
        "--",
        *mode,
    ]
    completed = subprocess.run(  # noqa: S603 - wrk with our own arguments
        command, capture_output=True, text=True, check=False, timeout=load.duration + 120
    )
    for line in completed.stdout.splitlines():
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER) :])
            break
    else:
        raise NoSummaryError(f"wrk gave no summary:\n{completed.stdout}\n{completed.stderr}")
    errors = data["errors"]
    latency = data["latency_us"]
    return Result(
        requests=int(data["requests"]),
        errors=int(errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]),
        status_errors=int(errors["status"]),
        duration_s=data["duration_us"] / 1e6,
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        exhausted=bool(data["exhausted_threads"]),
        tokens_used=int(data["tokens_used"]),
    )


def run_on(
    server: Any, ready_path: str, say: Any, wrk: str, url: str, load: Load, *mode: str
) -> tuple[Result, bool]:
    """run(), and if the server under test died meanwhile, restart it and run once more.

    Returns the result and whether a restart happened (the report says so).
    """
    try:
        return run(wrk, url, load, *mode), False
    except NoSummaryError as error:
        server.revive(error, ready_path, say)
        return run(wrk, url, load, *mode), True
