"""A decoder for ``text/event-stream`` (server-sent events), line by line, as the WHATWG
HTML standard describes it: ``event:``/``data:``/``id:``/``retry:`` fields, ``:`` comments,
one optional space after the colon, several ``data:`` lines joined with ``\\n``, an event
dispatched at a blank line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, List, Optional

__all__ = ["ServerSentEvent", "SSEDecoder", "iter_events"]


@dataclass
class ServerSentEvent:
    event: str = "message"
    data: str = ""
    id: Optional[str] = None
    retry: Optional[int] = None


class SSEDecoder:
    """Feed it lines without their line ending; it returns an event when one is complete."""

    def __init__(self) -> None:
        self._event = ""
        self._data: List[str] = []
        self._has_data = False
        self._last_id: Optional[str] = None
        self._retry: Optional[int] = None
        self._first = True

    def feed(self, line: str) -> Optional[ServerSentEvent]:
        if self._first:
            self._first = False
            if line.startswith("\ufeff"):
                line = line[1:]
        # A line handed over with its ending still on (some line splitters keep it).
        line = line.rstrip("\r\n")
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
            self._has_data = True
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry":
            if value.isdigit():
                self._retry = int(value)
        # any other field is ignored, as the standard says
        return None

    def flush(self) -> Optional[ServerSentEvent]:
        """At the end of the stream: the event still being read, if it has data.

        The standard drops such an unfinished event; this decoder hands it over, so that a
        server that closes right after its last ``data:`` line loses nothing."""
        return self._dispatch()

    def _dispatch(self) -> Optional[ServerSentEvent]:
        if not self._has_data:
            self._event = ""
            return None
        event = ServerSentEvent(
            event=self._event or "message",
            data="\n".join(self._data),
            id=self._last_id,
            retry=self._retry,
        )
        self._event = ""
        self._data = []
        self._has_data = False
        return event


def iter_events(lines: Iterable[str]) -> Iterator[ServerSentEvent]:
    """Every event of a stream given as lines (without endings); see also :func:`split_lines`."""
    decoder = SSEDecoder()
    for line in lines:
        event = decoder.feed(line)
        if event is not None:
            yield event
    event = decoder.flush()
    if event is not None:
        yield event


def split_lines(text: str) -> List[str]:
    """Lines of a whole stream's text, split at ``\\r\\n``, ``\\n`` or ``\\r``."""
    lines: List[str] = []
    start = 0
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\r" or c == "\n":
            lines.append(text[start:i])
            if c == "\r" and i + 1 < n and text[i + 1] == "\n":
                i += 1
            start = i + 1
        i += 1
    if start < n:
        lines.append(text[start:])
    return lines
