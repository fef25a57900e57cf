"""A probe: nothing_shared.py, and none of Warden's own per-request work either.

On top of nothing_shared.py, the request hooks go (the request id, the access log line,
the metrics, the security headers, the body checks) and so does flask-cors: what is left
is Flask, flask-smorest, flask-jwt-extended and marshmallow around the view. Used as a
checkout's wsgi.py (of a checkout that has bench/probes), like nothing_shared.py.
"""

from __future__ import annotations

from flask import request

from bench.probes.nothing_shared import app
from project.api.middleware import normalize_auth_scheme

app.before_request_funcs[None] = [lambda: normalize_auth_scheme(request.environ)]
app.after_request_funcs[None] = []
