"""Clients generated from docs/openapi.json type-check without casts and walk a live Warden.

openapi-python-client and openapi-typescript (with openapi-fetch) generate a client each; the
flows in tests/clients must pass ``mypy --strict`` and ``tsc --strict`` against it, then run
against gunicorn: register, log in, read, refresh, list sessions, log out, read a problem and
page through users as an admin.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tokenize
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.live import BIN, ROOT, Deployment, call, flush_redis, production_env

pytestmark = pytest.mark.live

OPENAPI = ROOT / "docs" / "openapi.json"
FLOWS = ROOT / "tests" / "clients"
NODE_BIN = ROOT / "node_modules" / ".bin"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "a long pass phrase for the keeper"
SEEDED = 5
PAGE = 3  # the flows' page size
# Lists every type assertion, non-null assertion, `any` and ts-ignore comment of a TS file.
TS_CASTS = """
const fs = require("fs");
const ts = require("typescript");
const file = process.argv[1];
const text = fs.readFileSync(file, "utf8");
const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
const found = [];
const visit = (node) => {
  if (ts.isAsExpression(node) || ts.isTypeAssertionExpression(node)
      || ts.isNonNullExpression(node) || node.kind === ts.SyntaxKind.AnyKeyword) {
    const { line } = source.getLineAndCharacterOfPosition(node.getStart());
    found.push(`${line + 1}: ${node.getText()}`);
  }
  ts.forEachChild(node, visit);
};
visit(source);
for (const [index, line] of text.split("\\n").entries()) {
  if (/@ts-(ignore|expect-error|nocheck)/.test(line)) found.push(`${index + 1}: ${line}`);
}
console.log(JSON.stringify(found));
"""


def run(
    command: Sequence[str | Path], cwd: Path, env: dict[str, str] | None = None, stdin: str = ""
) -> str:
    """Run a command to completion; its standard output, or fail the test showing all output."""
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env or {**os.environ, "PATH": os.pathsep.join([str(BIN), os.environ["PATH"]])},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(map(str, command))} failed:\n{output}"
    return result.stdout


def python_client(folder: Path) -> list[str]:
    """Generate the Python client, type-check flow.py against it; the command to run the flow."""
    generator = str(BIN / "openapi-python-client")
    output = folder / "warden_client"
    run(
        [generator, "generate", "--path", OPENAPI, "--meta", "none", "--output-path", output],
        folder,
    )
    shutil.copy(FLOWS / "flow.py", folder)
    run([BIN / "mypy", "--config-file", FLOWS / "mypy.ini", "flow.py"], cwd=folder)
    return [sys.executable, "flow.py"]


def typescript_client(folder: Path) -> list[str]:
    """Generate the TypeScript types, compile flow.ts against them; the command to run it."""
    (folder / "node_modules").symlink_to(ROOT / "node_modules")
    (folder / "package.json").write_text('{"type": "module"}\n')
    shutil.copy(FLOWS / "flow.ts", folder)
    shutil.copy(FLOWS / "tsconfig.json", folder)
    run([NODE_BIN / "openapi-typescript", OPENAPI, "--output", "schema.ts"], cwd=folder)
    run([NODE_BIN / "tsc", "--project", "."], cwd=folder)
    return ["node", "flow.js"]


CLIENTS: dict[str, Callable[[Path], list[str]]] = {
    "python": python_client,
    "typescript": typescript_client,
}


@pytest.fixture
def node_tools() -> None:
    """Fail saying what to do when node_modules is missing (make test runs npm ci)."""
    for tool in ("openapi-typescript", "tsc"):
        if not (NODE_BIN / tool).exists():
            pytest.fail(f"{NODE_BIN / tool} is missing: run `npm ci` (make test does)")


@pytest.fixture
def warden(empty_database_url: str, tmp_path: Path) -> Iterator[Deployment]:
    """A production deployment serving, with an admin and a few registered users."""
    # Both flows and the seeding register from one address: more than the production limit.
    env = production_env(empty_database_url, RATELIMIT_REGISTER="100 per minute")
    deployment = Deployment(env=env, folder=tmp_path)
    flush_redis(env)
    try:
        deployment.release()
        create_admin = [
            str(BIN / "flask"),
            "users",
            "create-admin",
            ADMIN_EMAIL,
            "--password-stdin",
        ]
        run(create_admin, ROOT, env=env, stdin=ADMIN_PASSWORD)
        deployment.start("web")
        deployment.wait_ready()
        for index in range(SEEDED):
            body = {"email": f"listed{index}@example.com", "password": ADMIN_PASSWORD}
            assert call(deployment.base, "POST", "/api/v1/auth/register", body)[0] == 201
        yield deployment
    finally:
        deployment.stop_all()
        flush_redis(env)


def expected_output(language: str, users: int) -> list[str]:
    """The lines a flow prints, as patterns, when Warden holds ``users`` users after it."""
    email = re.escape(f"{language}-flow@example.com")
    return [
        f"registered {email}",
        r"logged in, access token valid \d+ s",
        rf"me: {email} \(user\)",
        "refreshed the token pair",
        "sessions: 1, current: 1",
        "logged out",
        "problem: 401 token_revoked",
        f"listed {users} users on {-(-users // PAGE)} pages",
    ]


def test_generated_clients_walk_the_account_flows(
    node_tools: None, warden: Deployment, tmp_path: Path
) -> None:
    admin = {"WARDEN_ADMIN_EMAIL": ADMIN_EMAIL, "WARDEN_ADMIN_PASSWORD": ADMIN_PASSWORD}
    users = SEEDED + 1
    for language, generate in CLIENTS.items():
        folder = tmp_path / f"{language}-client"
        folder.mkdir()
        command = generate(folder)
        output = run([*command, warden.base], cwd=folder, env={**os.environ, **admin})
        users += 1  # the flow registers its own user
        lines, expected = output.splitlines(), expected_output(language, users)
        assert len(lines) == len(expected), f"{language} flow printed:\n{output}"
        for line, pattern in zip(lines, expected, strict=True):
            assert re.fullmatch(pattern, line), f"{language} flow: {line!r} is not {pattern!r}"


def python_casts(text: str) -> list[str]:
    """Every cast(), Any and type: ignore in Python source, with its line."""
    found = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.expr):
            continue
        called = ast.unparse(node.func) if isinstance(node, ast.Call) else ""
        named = ast.unparse(node) if isinstance(node, ast.Name | ast.Attribute) else ""
        if called.rpartition(".")[2] == "cast" or named.rpartition(".")[2] == "Any":
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT and "type: ignore" in token.string:
            found.append(f"{token.start[0]}: {token.string}")
    return found


def typescript_casts(text: str, folder: Path) -> list[str]:
    """Every type or non-null assertion, any and ts-ignore in TypeScript source, with its line."""
    source = folder / "source.ts"
    source.write_text(text)
    found: list[str] = json.loads(run(["node", "-e", TS_CASTS, source], cwd=ROOT))
    return found


def test_the_flows_narrow_types_and_never_cast(node_tools: None, tmp_path: Path) -> None:
    assert python_casts((FLOWS / "flow.py").read_text()) == []
    assert typescript_casts((FLOWS / "flow.ts").read_text(), tmp_path) == []
    python = "x = cast(int, y)  # type: ignore[misc]\nz: typing.Any = x\n"
    assert len(python_casts(python)) == 3
    typescript = "const a = b as number;\nconst c = <string>d;\nconst e = f!.g; let h: any;\n"
    assert len(typescript_casts(typescript, tmp_path)) == 4
