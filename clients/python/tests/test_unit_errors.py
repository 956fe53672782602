"""Mapping of the API's error bodies and statuses to exceptions (pure logic, no server)."""

import builtins
import pickle

import httpx
import pytest

import sandpit
from sandpit.errors import error_from_body, error_from_response

TABLE = [
    ("invalid_input", 400, sandpit.InvalidInput),
    ("unauthorized", 401, sandpit.Unauthorized),
    ("refused", 403, sandpit.Refused),
    ("not_found", 404, sandpit.NotFound),
    ("conflict", 409, sandpit.Conflict),
    ("gone", 410, sandpit.Gone),
    ("too_large", 413, sandpit.TooLarge),
    ("exhausted", 429, sandpit.Exhausted),
    ("internal", 500, sandpit.InternalError),
    ("unsupported", 501, sandpit.Unsupported),
    ("engine_unavailable", 503, sandpit.EngineUnavailable),
    ("timeout", 504, sandpit.Timeout),
]


def response(status, body=None, text=None, content_type="application/json"):
    req = httpx.Request("GET", "http://sandpit.test/v1/sessions/x")
    if body is not None:
        return httpx.Response(status, json=body, request=req)
    return httpx.Response(
        status, content=(text or "").encode(), headers={"content-type": content_type}, request=req
    )


@pytest.mark.parametrize("kind,status,cls", TABLE)
def test_every_kind_of_the_spec_maps_to_its_class(kind, status, cls):
    err = error_from_response(response(status, {"error": kind, "message": "it went wrong"}))
    assert type(err) is cls
    assert isinstance(err, sandpit.SandpitError)
    assert (err.kind, err.status, err.message) == (kind, status, "it went wrong")
    assert str(err) == "it went wrong"


@pytest.mark.parametrize("kind,status,cls", TABLE)
def test_status_alone_maps_when_body_is_not_json(kind, status, cls):
    err = error_from_response(response(status, text="upstream said no", content_type="text/plain"))
    assert type(err) is cls
    assert err.kind == kind and err.status == status
    assert "upstream said no" in err.message


def test_422_is_invalid_input():
    err = error_from_response(response(422, text="Failed to deserialize the JSON body", content_type="text/plain"))
    assert isinstance(err, sandpit.InvalidInput) and err.status == 422
    err = error_from_response(response(422, {"error": "invalid_input", "message": "missing field `code`"}))
    assert isinstance(err, sandpit.InvalidInput) and err.status == 422 and "code" in err.message


def test_kind_wins_over_status():
    err = error_from_response(response(400, {"error": "not_found", "message": "m"}))
    assert isinstance(err, sandpit.NotFound) and err.status == 400


def test_unknown_kind_falls_back_on_status_and_keeps_kind():
    err = error_from_response(response(404, {"error": "no_such_thing", "message": "m"}))
    assert isinstance(err, sandpit.NotFound) and err.kind == "no_such_thing"
    err = error_from_response(response(418, {"error": "teapot", "message": "short and stout"}))
    assert type(err) is sandpit.SandpitError and err.kind == "teapot" and err.status == 418
    err = error_from_response(response(502, text="bad gateway", content_type="text/html"))
    assert isinstance(err, sandpit.InternalError) and err.status == 502


def test_empty_body_uses_reason_phrase():
    err = error_from_response(response(404, text=""))
    assert isinstance(err, sandpit.NotFound)
    assert "404" in err.message


def test_error_body_without_message():
    err = error_from_response(response(409, {"error": "conflict"}))
    assert isinstance(err, sandpit.Conflict) and err.message == "conflict"


def test_error_event_of_a_stream_gets_the_kinds_status():
    err = error_from_body({"error": "gone", "message": "container removed"}, None)
    assert isinstance(err, sandpit.Gone) and err.status == 410 and err.message == "container removed"


def test_connection_and_timeout_are_also_builtin_exceptions():
    assert issubclass(sandpit.ConnectionError, sandpit.SandpitError)
    assert issubclass(sandpit.ConnectionError, builtins.ConnectionError)
    assert issubclass(sandpit.Timeout, builtins.TimeoutError)
    assert sandpit.ConnectionError is not builtins.ConnectionError
    err = sandpit.Timeout("slow", status=None)
    assert err.status is None and err.kind == "timeout"


def test_errors_survive_pickling():
    err = error_from_response(response(404, {"error": "not_found", "message": "gone fishing"}))
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is sandpit.NotFound
    assert (back.kind, back.status, back.message) == ("not_found", 404, "gone fishing")
