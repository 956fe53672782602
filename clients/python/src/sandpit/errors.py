"""Sandpit's errors: one class per error kind of the HTTP API, all deriving from SandpitError.

The server answers every error with a JSON body such as
``{"error": "not_found", "message": "session 4f0c... does not exist"}``; the class is chosen
from the ``error`` field, and from the HTTP status when the body has none (a proxy's answer,
a plain-text 422 from the JSON extractor, ...).

A program that fails is *not* an error: it is a result with its ``exit_code``.
"""

from __future__ import annotations

import builtins
import json
from typing import Any, Dict, Optional, Tuple, Type

__all__ = [
    "SandpitError",
    "InvalidInput",
    "Unauthorized",
    "Refused",
    "NotFound",
    "Conflict",
    "Gone",
    "TooLarge",
    "Exhausted",
    "InternalError",
    "Unsupported",
    "EngineUnavailable",
    "Timeout",
    "ConnectionError",
    "ProtocolError",
    "error_from_body",
    "error_from_response",
]


_DEFAULT: Any = object()


class SandpitError(Exception):
    """Base of every error this client raises.

    ``kind`` is the API's error kind (``"not_found"``, ...), ``message`` the server's message,
    ``status`` the HTTP status (``None`` when no HTTP answer was had), ``body`` the decoded
    error body when there was one.
    """

    kind: Optional[str] = None
    status: Optional[int] = None

    def __init__(
        self,
        message: str,
        *,
        kind: Optional[str] = None,
        status: Any = _DEFAULT,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind if kind is not None else type(self).kind
        # status: the class's own (its row of the spec's table) unless given, None included
        self.status = type(self).status if status is _DEFAULT else status
        self.body = body

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, status={self.status!r}, message={self.message!r})"

    def __reduce__(self):  # keep kind/status/body through pickling (multiprocessing, ...)
        return (
            _rebuild_error,
            (type(self), self.message, self.kind, self.status, self.body),
        )


def _rebuild_error(cls, message, kind, status, body):
    return cls(message, kind=kind, status=status, body=body)


class InvalidInput(SandpitError):
    """400 (422 for JSON of the wrong shape): malformed JSON, unknown language, bad path, ..."""

    kind = "invalid_input"
    status = 400


class Unauthorized(SandpitError):
    """401: no key, or an unknown or revoked one."""

    kind = "unauthorized"
    status = 401


class Refused(SandpitError):
    """403: the session's policy forbids it (shell commands under ``strict``)."""

    kind = "refused"
    status = 403


class NotFound(SandpitError):
    """404: no such session (for this key), file, package or route."""

    kind = "not_found"
    status = 404


class Conflict(SandpitError):
    """409: a session with that name exists already."""

    kind = "conflict"
    status = 409


class Gone(SandpitError):
    """410: the session's container was removed or killed from outside."""

    kind = "gone"
    status = 410


class TooLarge(SandpitError):
    """413: the request body passes the server's limit."""

    kind = "too_large"
    status = 413


class Exhausted(SandpitError):
    """429: sessions per key, concurrent runs per key, or the sandbox's process limit."""

    kind = "exhausted"
    status = 429


class InternalError(SandpitError):
    """500: a failure inside Sandpit or the engine."""

    kind = "internal"
    status = 500


class Unsupported(SandpitError):
    """501: the engine or runtime cannot do this (e.g. an install after open under gVisor)."""

    kind = "unsupported"
    status = 501


class EngineUnavailable(SandpitError):
    """503: the container engine is out of reach; retry later."""

    kind = "engine_unavailable"
    status = 503


class Timeout(SandpitError, builtins.TimeoutError):
    """504: an engine operation took too long; also raised (with ``status`` None) when the
    server did not answer within the client's HTTP timeout.

    A program's own timeout is not an error: it is ``timed_out=True`` in its result.
    """

    kind = "timeout"
    status = 504


class ConnectionError(SandpitError, builtins.ConnectionError):  # noqa: A001 - the API's name
    """The server could not be reached, or the connection broke. Also a builtin ConnectionError."""

    kind = "connection"
    status = None


class ProtocolError(SandpitError):
    """The server answered something this client cannot read as the API says (a body that is
    not JSON, an event stream that ended without its result, ...)."""

    kind = "protocol"
    status = None


#: error kind -> class, as in the spec's table
KIND_CLASSES: Dict[str, Type[SandpitError]] = {
    cls.kind: cls  # type: ignore[misc]
    for cls in (
        InvalidInput,
        Unauthorized,
        Refused,
        NotFound,
        Conflict,
        Gone,
        TooLarge,
        Exhausted,
        InternalError,
        Unsupported,
        EngineUnavailable,
        Timeout,
    )
}

#: HTTP status -> class, for answers whose body names no kind
STATUS_CLASSES: Dict[int, Type[SandpitError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Refused,
    404: NotFound,
    409: Conflict,
    410: Gone,
    413: TooLarge,
    422: InvalidInput,
    429: Exhausted,
    500: InternalError,
    501: Unsupported,
    503: EngineUnavailable,
    504: Timeout,
}


def _class_for(kind: Optional[str], status: Optional[int]) -> Tuple[Type[SandpitError], Optional[str]]:
    if kind is not None and kind in KIND_CLASSES:
        return KIND_CLASSES[kind], kind
    if status is not None and status in STATUS_CLASSES:
        cls = STATUS_CLASSES[status]
        # An unknown kind is kept as the server said it; the class comes from the status.
        return cls, kind if kind is not None else cls.kind
    if status is not None and status >= 500:
        return InternalError, kind if kind is not None else InternalError.kind
    return SandpitError, kind if kind is not None else (f"http_{status}" if status else None)


def error_from_body(body: Any, status: Optional[int] = None, text: str = "") -> SandpitError:
    """The exception for an error body (already decoded JSON, or anything else) and a status.

    ``status`` is None for an ``error`` event of an event stream (its HTTP status was 200): the
    exception then carries the status the kind has in the spec's table.
    """
    kind: Optional[str] = None
    message: Optional[str] = None
    if isinstance(body, dict):
        raw_kind = body.get("error")
        if isinstance(raw_kind, str) and raw_kind:
            kind = raw_kind
        raw_message = body.get("message")
        if isinstance(raw_message, str) and raw_message:
            message = raw_message
        elif kind is not None:
            message = kind.replace("_", " ")
    cls, kind = _class_for(kind, status)
    if status is None:
        status = cls.status
    if message is None:
        snippet = text.strip()
        if not snippet and body is not None and not isinstance(body, dict):
            snippet = str(body)
        if len(snippet) > 500:
            snippet = snippet[:500] + "..."
        message = snippet or (f"HTTP {status}" if status else "error")
    return cls(message, kind=kind, status=status, body=body)


def error_from_response(response: Any) -> SandpitError:
    """The exception for an ``httpx.Response`` whose status is 400 or more (its body read)."""
    status = response.status_code
    text = ""
    body: Any = None
    try:
        text = response.text
    except Exception:  # pragma: no cover - undecodable body
        text = ""
    if text:
        try:
            body = json.loads(text)
        except ValueError:
            body = None
    if body is None and not text.strip():
        text = getattr(response, "reason_phrase", "") or ""
        if text:
            text = f"HTTP {status} {text}"
    return error_from_body(body, status, text)
