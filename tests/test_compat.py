"""Each private internal project/compat.py relies on still exists and still takes effect."""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import pkgutil
import sys
from typing import Any

import flask_limiter
import flask_smorest
import marshmallow as ma
import pytest
from flask import Flask
from flask_jwt_extended import JWTManager, create_access_token, decode_token

import project
from project import compat
from project.core.logging import configure_logging
from project.core.verified_tokens import CACHE_KEY
from project.extensions import jwt, limiter

# marshmallow documents overriding these to write a custom field.
FIELD_HOOKS = {"_serialize", "_deserialize"}


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def logged_line() -> int:
    """The caller's line number logging puts on a record (0 when it skips the lookup)."""
    logger = logging.getLogger("warden.test_compat")
    handler = Records()
    logger.addHandler(handler)
    try:
        logger.warning("where am I")
    finally:
        logger.removeHandler(handler)
    return handler.records[0].lineno


def test_configure_logging_stops_the_caller_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    assert hasattr(logging, "_srcfile")
    source = os.path.normcase(logging.addLevelName.__code__.co_filename)
    monkeypatch.setattr(logging, "_srcfile", source)
    assert logged_line() > 0
    configure_logging(level=logging.getLevelName(logging.getLogger().level))
    assert logging._srcfile is None
    assert logged_line() == 0


def test_a_view_documented_in_place_reaches_the_spec() -> None:
    app = Flask(__name__)
    app.config.update(API_TITLE="t", API_VERSION="1", OPENAPI_VERSION="3.0.2")
    api = flask_smorest.Api(app)
    blp = flask_smorest.Blueprint("things", __name__, url_prefix="/things")

    @blp.response(200)
    def things() -> str:
        return ""

    compat.document_operation(things, responses={401: "UNAUTHORIZED"})
    blp.route("/")(things)
    api.register_blueprint(blp)
    operation = api.spec.to_dict()["paths"]["/things/"]["get"]
    assert set(operation["responses"]) >= {"200", "401"}


def test_the_auth_decorators_document_their_security(app: Flask) -> None:
    operation = app.test_client().get("/api/v1/openapi.json").json["paths"]["/api/v1/users/me"]
    assert operation["get"]["security"] == [{"bearerAuth": []}, {"cookieAuth": []}]
    assert "401" in operation["get"]["responses"]


def test_jwt_manager_decodes_through_the_overridden_method() -> None:
    private = JWTManager._decode_jwt_from_config
    parameters = inspect.signature(private).parameters
    assert list(parameters) == ["self", "encoded_token", "csrf_value", "allow_expired"]
    assert parameters["csrf_value"].default is None
    assert parameters["allow_expired"].default is False
    assert isinstance(jwt, compat.CachingJWTManager)
    assert "_decode_jwt_from_config" in compat.CachingJWTManager.__dict__


def test_flask_jwt_extended_decodes_through_the_override(app: Flask) -> None:
    with app.test_request_context():
        token = create_access_token(identity="someone")
        app.extensions[CACHE_KEY].clear()
        assert decode_token(token)["sub"] == "someone"
        assert token in app.extensions[CACHE_KEY]


def test_flask_limiter_runs_through_the_wrapped_hooks(app: Flask) -> None:
    wrapped = {
        name: [
            getattr(hook.__wrapped__, "__func__", None) or hook.__wrapped__.func
            for hook in hooks[None]
            if getattr(hook, "__wrapped__", None) is not None
        ]
        for name, hooks in (
            ("before", app.before_request_funcs),
            ("after", app.after_request_funcs),
            ("teardown", app.teardown_request_funcs),
        )
    }
    assert wrapped == {
        "before": [flask_limiter.Limiter._check_request_limit],
        "after": [flask_limiter.Limiter._Limiter__inject_headers],  # type: ignore[attr-defined]
        "teardown": [flask_limiter.Limiter._Limiter__release_context],  # type: ignore[attr-defined]
    }
    for hooks in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        assert not any(
            getattr(hook, "__self__", None) is limiter or limiter in getattr(hook, "args", ())
            for hook in hooks[None]
        )


def test_the_gate_refuses_an_app_without_flask_limiters_hooks() -> None:
    with pytest.raises(RuntimeError):
        compat.gate_limiter_hooks(Flask(__name__), limiter, lambda: False)


def test_the_gate_refuses_an_app_with_flask_limiters_headers() -> None:
    app = Flask(__name__)
    app.config["RATELIMIT_HEADERS_ENABLED"] = True
    with pytest.raises(RuntimeError, match="headers"):
        compat.gate_limiter_hooks(app, limiter, lambda: False)


def project_classes() -> list[type]:
    for module in pkgutil.walk_packages(project.__path__, "project."):
        importlib.import_module(module.name)
    return [
        cls
        for name, module in list(sys.modules.items())
        if name == "project" or name.startswith("project.")
        for cls in vars(module).values()
        if isinstance(cls, type) and cls.__module__ == name
    ]


def defined_in(cls: type, value: Any) -> bool:
    """Whether ``value`` is a function written in the body of ``cls``."""
    function = getattr(value, "__func__", value)
    return inspect.isfunction(function) and function.__qualname__.startswith(cls.__qualname__ + ".")


def test_no_class_outside_compat_overrides_a_library_private() -> None:
    overrides = [
        f"{cls.__module__}.{cls.__qualname__}.{attr}"
        for cls in project_classes()
        if cls.__module__ != "project.compat"
        for attr, value in vars(cls).items()
        if attr.startswith("_") and not attr.startswith("__") and defined_in(cls, value)
        if not (issubclass(cls, ma.fields.Field) and attr in FIELD_HOOKS)
        for base in cls.__mro__[1:]
        if not base.__module__.startswith("project") and attr in vars(base)
    ]
    assert overrides == []
