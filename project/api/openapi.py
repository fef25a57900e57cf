"""The flask-smorest Api, documenting errors as problem+json."""

from __future__ import annotations

import http

import flask_smorest
from flask_smorest.utils import prepare_response

from project.schemas.problems import ProblemSchema

PROBLEM_CONTENT_TYPE = "application/problem+json"


class Api(flask_smorest.Api):  # type: ignore[misc]
    """Api whose error responses are RFC 9457 documents."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, object] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                prepare_response(response, self.spec, PROBLEM_CONTENT_TYPE)
            else:
                prepare_response(response, self.spec, self.DEFAULT_RESPONSE_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM_CONTENT_TYPE)
        self.spec.components.response("DEFAULT_ERROR", default, lazy=True)
