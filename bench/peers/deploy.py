"""Install, seed and serve the peers for bench/run.py (runs in the harness's own venv).

The peers run from bench/.venv-peers, built from bench/requirements-peers.txt on first use
(and again when that file changes), so their packages never enter the app's environment.
Each gets a throwaway database on the same PostgreSQL as Warden, the same number of
workers, and a pool of tokens for the same number of users as Warden's pool.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import stack

BENCH = Path(__file__).resolve().parent.parent
VENV = BENCH / ".venv-peers"
REQUIREMENTS = BENCH / "requirements-peers.txt"
USERS = 1000


@dataclass(frozen=True)
class PeerKind:
    """How one peer is seeded and served."""

    name: str
    module: str
    driver: str  # SQLAlchemy driver name in its database URL
    header: str  # where its token goes: "bearer" or the name of the header
    path: str

    def command(self, port: int, workers: int) -> list[str]:
        """The server command line."""
        if self.name == "fastapi_users":
            return [
                str(VENV / "bin" / "uvicorn"),
                f"{self.module}:app",
                "--host=127.0.0.1",
                f"--port={port}",
                f"--workers={workers}",
                "--no-access-log",
                "--log-level=warning",
                f"--app-dir={BENCH.parent}",
            ]
        return [
            str(VENV / "bin" / "gunicorn"),
            f"--pythonpath={BENCH.parent}",
            f"--bind=127.0.0.1:{port}",
            f"--workers={workers}",
            "--log-level=warning",
            f"{self.module}:app",
        ]


KINDS = (
    PeerKind("fst", "bench.peers.fst_app", "psycopg", "Authentication-Token", "/users/me"),
    PeerKind("fastapi_users", "bench.peers.fastapi_users_app", "asyncpg", "bearer", "/users/me"),
)


@dataclass
class Peer:
    """One running peer."""

    kind: PeerKind
    database: stack.Database
    server: stack.Server
    tokens: Path

    def wrk_mode(self) -> list[str]:
        """bench/wrk.lua arguments: its tokens in its header."""
        if self.kind.header == "bearer":
            return ["bearer", str(self.tokens)]
        return ["header", self.kind.header, str(self.tokens)]

    def stop(self) -> None:
        """Stop the server and drop the database."""
        self.server.stop()
        self.database.drop()


def ensure_venv(say: Callable[[str], None]) -> None:
    """Build bench/.venv-peers from the pinned requirements unless it is up to date."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    marker = VENV / "requirements.sha256"
    if marker.is_file() and marker.read_text().strip() == digest:
        return
    say(f"installing the peers into {VENV} (once per change of {REQUIREMENTS.name})")
    if not (VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)  # noqa: S603
    result = subprocess.run(  # noqa: S603 - pip from the peers' own venv
        [str(VENV / "bin" / "pip"), "install", "-q", "-r", str(REQUIREMENTS)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise stack.BenchError(f"installing the peers failed:\n{result.stderr[-3000:]}")
    marker.write_text(digest + "\n")


def start(
    box: stack.Sink, *, workers: int, tokens: int, say: Callable[[str], None]
) -> dict[str, Peer]:
    """Seed and start every peer; the caller stops them."""
    ensure_venv(say)
    peers: dict[str, Peer] = {}
    try:
        for kind in KINDS:
            database = stack.Database(kind.name)
            url = database.url.replace("postgresql://", f"postgresql+{kind.driver}://", 1)
            url = url.replace("postgresql+psycopg://", f"postgresql+{kind.driver}://", 1)
            env = {"PEER_DATABASE_URL": url, "PATH": str(VENV / "bin")}
            token_file = box.folder / f"tokens-{kind.name}.txt"
            seeded = subprocess.run(  # noqa: S603 - the peer's own seed command
                [str(VENV / "bin" / "python"), "-m", kind.module, "seed", str(USERS),
                 str(token_file), str(tokens)],
                cwd=BENCH.parent,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )  # fmt: skip
            if seeded.returncode != 0:
                database.drop()
                raise stack.BenchError(f"seeding {kind.name} failed:\n{seeded.stderr[-3000:]}")
            # Started from bench/peers/, where no gunicorn.conf.py of Warden's is picked up.
            server = stack.Server(f"peer-{kind.name}", BENCH / "peers", env, [], box.folder)
            server.command = kind.command(server.port, workers)
            peers[kind.name] = Peer(kind, database, server, token_file)
            server.start()
            server.wait_ready("/docs" if kind.name == "fastapi_users" else "/login")
            say(f"[{kind.name}] database {database.name}, {workers} workers on {server.base}")
    except BaseException:
        for peer in peers.values():
            peer.stop()
        raise
    return peers
