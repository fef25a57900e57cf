"""JSON answers written by orjson read as the json module would have written them."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from flask import Flask, jsonify
from flask.json.provider import DefaultJSONProvider

from project.api.json_provider import OrjsonProvider


@dataclass
class Point:
    """A dataclass, which Flask's provider writes as its fields."""

    x: int
    y: int


VALUES: list[object] = [
    {"id": uuid.UUID(int=7), "when": datetime(2026, 12, 8, 1, 2, 3, tzinfo=UTC)},
    {"day": date(2026, 12, 8), "price": Decimal("1.10"), "point": Point(1, 2)},
    {"text": 'héllo ✓ \u2028 "quoted"\n', "n": [1, 2.5, None, True]},
    {2: "int key", "nested": {"b": 1, "a": 2}},
    {"big": 2**70},  # past 64 bits: orjson refuses, the json module writes it
    {"surrogate": "\ud800"},  # a lone surrogate: not UTF-8, written with an escape
]


# A provider holds its app weakly: the apps live as long as the tests.
APPS = {"reference": Flask("reference"), "fast": Flask("fast")}


def _providers(sort_keys: bool) -> tuple[DefaultJSONProvider, OrjsonProvider]:
    reference, fast = DefaultJSONProvider(APPS["reference"]), OrjsonProvider(APPS["fast"])
    reference.sort_keys = fast.sort_keys = sort_keys
    return reference, fast


@pytest.mark.parametrize(
    ("value", "sort_keys"),
    [(value, False) for value in VALUES]
    # The json module cannot sort an int key among str keys (VALUES[3]).
    + [(value, True) for value in VALUES if value is not VALUES[3]],
)
def test_dumps_reads_back_as_the_json_module_wrote_it(value: object, sort_keys: bool) -> None:
    reference, fast = _providers(sort_keys)
    written = fast.dumps(value)
    assert json.loads(written) == json.loads(reference.dumps(value))
    if sort_keys and value in VALUES[:3]:  # what orjson writes: byte for byte, compact
        assert written == reference.dumps(value, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize("value", VALUES)
def test_response_is_compact_json_with_a_newline(value: object) -> None:
    reference, fast = _providers(False)
    with APPS["fast"].app_context():
        response = fast.response(value)
    with APPS["reference"].app_context():
        expected = reference.response(value)
    assert response.mimetype == "application/json"
    assert response.get_data(as_text=True).endswith("}\n")
    assert json.loads(response.get_data()) == json.loads(expected.get_data())


def test_keeps_the_order_it_is_given() -> None:
    _, fast = _providers(False)
    assert fast.dumps({"b": 1, "a": 2}) == '{"b":1,"a":2}'


def test_response_takes_arguments_as_jsonify_does() -> None:
    _, fast = _providers(False)
    with APPS["fast"].app_context():
        assert json.loads(fast.response(a=1).get_data()) == {"a": 1}
        assert json.loads(fast.response(1, 2).get_data()) == [1, 2]
        assert fast.response().get_data() == b"null\n"
        with pytest.raises(TypeError):
            fast.response(1, a=2)


def test_debug_answers_are_indented_for_people() -> None:
    app = Flask("debug")
    app.json = OrjsonProvider(app)
    app.debug = True
    with app.app_context():
        assert jsonify({"a": 1}).get_data(as_text=True) == '{\n  "a": 1\n}\n'


def test_the_app_answers_with_it(app: Flask) -> None:
    assert isinstance(app.json, OrjsonProvider)
    with app.app_context():
        assert jsonify({"name": "Zoë"}).get_data() == '{"name":"Zoë"}\n'.encode()
