"""make postman: run the Postman collection with newman against a live Warden.

Starts the Procfile processes for real (gunicorn web and the mail worker, in production mode)
on a fresh PostgreSQL database, a flushed Redis database and a local SMTP sink, creates an
admin, runs docs/postman/warden.postman_collection.json with newman, stops everything and exits
with newman's exit code. Extra arguments are passed on to ``newman run`` (e.g.
``--reporters cli,junit``). Run ``npm ci`` first: newman comes from node_modules.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from tests.live import ROOT
from tests.mailbox import Mailbox
from tools.stack import production_stack

COLLECTION = ROOT / "docs" / "postman" / "warden.postman_collection.json"
ENVIRONMENT = ROOT / "docs" / "postman" / "warden.local.postman_environment.json"
NEWMAN = ROOT / "node_modules" / ".bin" / "newman"
ADMIN_EMAIL = "admin@example.com"


def serve_mailbox(mailbox: Mailbox) -> ThreadingHTTPServer:
    """Serve ``GET /token?to=…&subject=…`` on loopback: the link token of a delivered mail."""
    # The collection's "(mailed token)" requests read the one-time token of a verification,
    # reset or email-change link from here (as mailboxUrl). A lookup waits up to 15 s for the
    # worker to deliver the mail, and answers 404 naming the mails that did arrive otherwise.

    class Handler(BaseHTTPRequestHandler):
        """Answers the token lookups."""

        def do_GET(self) -> None:
            """Wait for the mail and answer its token as JSON."""
            query = parse_qs(urlsplit(self.path).query)
            to, subject = query.get("to", [""])[0], query.get("subject", [""])[0]
            try:
                received = mailbox.wait_for(to, subject, timeout=15)
                status = 200
                body = {"to": received.to, "subject": received.subject, "token": received.token}
            except AssertionError as exc:  # no such mail, or no token in it
                status, body = 404, {"detail": str(exc)}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep newman's output clean."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, name="mailbox-http", daemon=True).start()
    return server


def newman_command(
    base_url: str, mailbox_url: str, admin_password: str, extra: list[str]
) -> list[str]:
    """The newman command line for this deployment."""
    return [
        str(NEWMAN),
        "run",
        str(COLLECTION.relative_to(ROOT)),
        "-e",
        str(ENVIRONMENT.relative_to(ROOT)),
        "--env-var",
        f"baseUrl={base_url}",
        "--env-var",
        f"mailboxUrl={mailbox_url}",
        "--env-var",
        f"adminEmail={ADMIN_EMAIL}",
        "--env-var",
        f"adminPassword={admin_password}",
        "--timeout-request",
        "30000",
        *extra,
    ]


def report_mail(mailbox: Mailbox, timeout: float = 10.0, settle: float = 1.0) -> None:
    """Say how many mails the worker delivered to the sink, once delivery has settled."""
    deadline = time.monotonic() + timeout
    count, since = len(mailbox.messages()), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = len(mailbox.messages())
        if now != count:
            count, since = now, time.monotonic()
        elif count and time.monotonic() - since >= settle:
            break
    subjects = sorted({message.subject for message in mailbox.messages()})
    print(f"postman: the worker delivered {count} mail(s) to the SMTP sink: {subjects}")


def main(extra: list[str]) -> int:
    """Start the service, run the collection, stop; return newman's exit code."""
    if not NEWMAN.exists():
        print("postman: node_modules/.bin/newman is missing; run `npm ci` first", file=sys.stderr)
        return 2
    # The production rate limits hold: the collection keeps within them and waits out a 429.
    overrides = {"WEB_CONCURRENCY": "2", "BCRYPT_ROUNDS": "4"}
    with production_stack(
        "postman", redis_db=14, admin_email=ADMIN_EMAIL, overrides=overrides
    ) as stack:
        mailbox_http = serve_mailbox(stack.mailbox)
        try:
            mailbox_url = f"http://127.0.0.1:{mailbox_http.server_address[1]}"
            command = newman_command(
                stack.deployment.base, mailbox_url, stack.admin_password, extra
            )
            code = subprocess.run(command, cwd=ROOT, check=False).returncode
            report_mail(stack.mailbox)
        finally:
            mailbox_http.shutdown()
            mailbox_http.server_close()
        if code != 0:
            stack.failed()
            print(f"postman: newman failed ({code})")
        return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
