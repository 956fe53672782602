"""Typed results of Sandpit's HTTP API, parsed from its JSON.

Every class has ``from_dict`` (tolerant: missing fields get defaults, unknown ones are kept
in ``raw``) so a newer server's extra fields never break an older client.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Mapping, Optional

__all__ = [
    "Artifact",
    "Chunk",
    "CommandResult",
    "CompileResult",
    "ExecuteResult",
    "ExecutionError",
    "FileInfo",
    "Health",
    "PackageInfo",
    "RunResult",
    "SessionInfo",
    "Usage",
    "parse_time",
]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(Z|z|[+-]\d{2}:?\d{2})?$"
)


def parse_time(value: Any) -> Optional[datetime]:
    """An RFC 3339 timestamp (``2026-11-27T20:00:00Z``, any number of fraction digits) as an
    aware datetime; ``None`` for ``None`` or anything unreadable. A timestamp without an offset
    is taken as UTC."""
    if not isinstance(value, str):
        return None
    m = _TIME_RE.match(value.strip())
    if not m:
        return None
    year, month, day, hour, minute, second, frac, offset = m.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    if offset is None or offset in ("Z", "z"):
        tz = timezone.utc
    else:
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz
        )
    except ValueError:
        return None


def _str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _opt_str(value: Any) -> Optional[str]:
    return value if isinstance(value, str) else None


def _bool(value: Any) -> bool:
    return bool(value) if value is not None else False


def _opt_int(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return None


def _opt_float(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return None


def _dict(value: Any) -> Dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _b64(data: Any) -> bytes:
    if not isinstance(data, str):
        return b""
    try:
        return base64.b64decode(data)
    except (binascii.Error, ValueError):
        return b""


@dataclass
class Chunk:
    """Output of a running program as it comes: ``stream`` is ``"stdout"`` or ``"stderr"``."""

    stream: str
    text: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Chunk":
        return cls(stream=_str(data.get("stream"), "stdout"), text=_str(data.get("text")))


@dataclass
class Artifact:
    """A figure a run captured (matplotlib): ``data`` decodes ``data_base64``."""

    name: str
    mime: str
    data_base64: str = field(repr=False)

    @property
    def data(self) -> bytes:
        return _b64(self.data_base64)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Artifact":
        return cls(
            name=_str(data.get("name")),
            mime=_str(data.get("mime"), "application/octet-stream"),
            data_base64=_str(data.get("data_base64")),
        )


@dataclass
class CommandResult:
    """The answer of a shell command (``POST .../commands``)."""

    stdout: str = ""
    stderr: str = ""
    exit_code: Optional[int] = None
    timed_out: bool = False
    truncated: bool = False
    oom_killed: bool = False
    duration_ms: Optional[int] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def success(self) -> bool:
        """Exited 0, within its timeout, not killed for memory."""
        return self.exit_code == 0 and not self.timed_out and not self.oom_killed

    @property
    def text(self) -> str:
        return self.stdout

    @classmethod
    def _fields(cls, data: Mapping[str, Any]) -> Dict[str, Any]:
        return dict(
            stdout=_str(data.get("stdout")),
            stderr=_str(data.get("stderr")),
            exit_code=_opt_int(data.get("exit_code")),
            timed_out=_bool(data.get("timed_out")),
            truncated=_bool(data.get("truncated")),
            oom_killed=_bool(data.get("oom_killed")),
            duration_ms=_opt_int(data.get("duration_ms")),
            raw=dict(data),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CommandResult":
        return cls(**cls._fields(_dict(data)))


@dataclass
class CompileResult(CommandResult):
    """The compile step of a compiled language's run."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CompileResult":
        return cls(**cls._fields(_dict(data)))


@dataclass
class RunResult:
    """One program's run (``POST /v1/run``, ``POST .../run``); the CLI's ``--json`` shape."""

    stdout: str = ""
    stderr: str = ""
    exit_code: Optional[int] = None
    timed_out: bool = False
    truncated: bool = False
    oom_killed: bool = False
    duration_ms: Optional[int] = None
    compile: Optional[CompileResult] = None
    artifacts: List[Artifact] = field(default_factory=list)
    cpu_ms: Optional[int] = None
    memory_peak_bytes: Optional[int] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def success(self) -> bool:
        """Compiled (if it had to), exited 0, within its timeout, not killed for memory."""
        if self.compile is not None and not self.compile.success:
            return False
        return self.exit_code == 0 and not self.timed_out and not self.oom_killed

    @property
    def text(self) -> str:
        """The program's standard output."""
        return self.stdout

    @property
    def images(self) -> List[bytes]:
        """The PNG figures among ``artifacts``, decoded."""
        return [a.data for a in self.artifacts if a.mime == "image/png"]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunResult":
        data = _dict(data)
        compile_data = data.get("compile")
        artifacts = data.get("artifacts")
        return cls(
            stdout=_str(data.get("stdout")),
            stderr=_str(data.get("stderr")),
            exit_code=_opt_int(data.get("exit_code")),
            timed_out=_bool(data.get("timed_out")),
            truncated=_bool(data.get("truncated")),
            oom_killed=_bool(data.get("oom_killed")),
            duration_ms=_opt_int(data.get("duration_ms")),
            compile=CompileResult.from_dict(compile_data) if isinstance(compile_data, Mapping) else None,
            artifacts=[Artifact.from_dict(a) for a in artifacts if isinstance(a, Mapping)]
            if isinstance(artifacts, list)
            else [],
            cpu_ms=_opt_int(data.get("cpu_ms")),
            memory_peak_bytes=_opt_int(data.get("memory_peak_bytes")),
            raw=data,
        )


@dataclass
class ExecutionError:
    """An exception raised by code run with ``execute`` (``ZeroDivisionError: division by zero``)."""

    name: str
    value: str
    traceback: List[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.name}: {self.value}" if self.value else self.name

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ExecutionError":
        tb = data.get("traceback")
        if isinstance(tb, str):
            tb = tb.splitlines()
        return cls(
            name=_str(data.get("name")),
            value=_str(data.get("value")),
            traceback=[str(line) for line in tb] if isinstance(tb, list) else [],
        )


@dataclass
class ExecuteResult:
    """A stateful ``execute`` call: ``results`` are mime bundles such as
    ``{"text/plain": "42"}`` or ``{"image/png": "<base64>"}``."""

    results: List[Dict[str, Any]] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    error: Optional[ExecutionError] = None
    timed_out: bool = False
    truncated: bool = False
    state_lost: bool = False
    kernel_started: bool = False
    duration_ms: Optional[int] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def success(self) -> bool:
        """No exception was raised and the call finished within its timeout."""
        return self.error is None and not self.timed_out

    @property
    def text(self) -> Optional[str]:
        """The last ``text/plain`` result (the value of the last expression), or None."""
        for bundle in reversed(self.results):
            value = bundle.get("text/plain")
            if isinstance(value, str):
                return value
        return None

    @property
    def images(self) -> List[bytes]:
        """Every ``image/png`` result, decoded from base64 (one per figure created or changed)."""
        return [_b64(b["image/png"]) for b in self.results if isinstance(b.get("image/png"), str)]

    @property
    def html(self) -> List[str]:
        return [b["text/html"] for b in self.results if isinstance(b.get("text/html"), str)]

    @property
    def json(self) -> List[Any]:
        return [b["application/json"] for b in self.results if "application/json" in b]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ExecuteResult":
        data = _dict(data)
        results = data.get("results")
        error = data.get("error")
        return cls(
            results=[dict(r) for r in results if isinstance(r, Mapping)] if isinstance(results, list) else [],
            stdout=_str(data.get("stdout")),
            stderr=_str(data.get("stderr")),
            error=ExecutionError.from_dict(error) if isinstance(error, Mapping) else None,
            timed_out=_bool(data.get("timed_out")),
            truncated=_bool(data.get("truncated")),
            state_lost=_bool(data.get("state_lost")),
            kernel_started=_bool(data.get("kernel_started")),
            duration_ms=_opt_int(data.get("duration_ms")),
            raw=data,
        )


@dataclass
class FileInfo:
    """A file object: ``kind`` is ``"file"``, ``"dir"`` or ``"symlink"``; ``path`` is
    relative to the session's workdir; ``mode`` is octal text such as ``"644"``."""

    name: str
    path: str
    kind: str = "file"
    size: Optional[int] = None
    mode: Optional[str] = None
    modified: Optional[datetime] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"

    @property
    def is_file(self) -> bool:
        return self.kind == "file"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FileInfo":
        data = _dict(data)
        path = _str(data.get("path"))
        name = _str(data.get("name")) or path.rstrip("/").rsplit("/", 1)[-1]
        mode = data.get("mode")
        if isinstance(mode, int) and not isinstance(mode, bool):
            mode = format(mode, "o")
        return cls(
            name=name,
            path=path or name,
            kind=_str(data.get("kind"), "file"),
            size=_opt_int(data.get("size")),
            mode=mode if isinstance(mode, str) else None,
            modified=parse_time(data.get("modified")),
            raw=data,
        )


@dataclass
class PackageInfo:
    name: str
    version: Optional[str] = None

    @classmethod
    def from_any(cls, item: Any) -> "PackageInfo":
        """From ``{"name": ..., "version": ...}`` or from a requirement text (``six==1.16.0``)."""
        if isinstance(item, Mapping):
            return cls(name=_str(item.get("name")), version=_opt_str(item.get("version")))
        text = str(item).strip()
        if "==" in text:
            name, version = text.split("==", 1)
            return cls(name=name.strip(), version=version.strip() or None)
        return cls(name=text)

    from_dict = from_any


@dataclass
class Usage:
    """What a session uses now (``GET /v1/sessions/{id}``)."""

    cpu_seconds: Optional[float] = None
    memory_bytes: Optional[int] = None
    memory_peak_bytes: Optional[int] = None
    memory_limit_bytes: Optional[int] = None
    pids: Optional[int] = None
    disk_used_bytes: Optional[int] = None
    disk_limit_bytes: Optional[int] = None
    net_rx_bytes: Optional[int] = None
    net_tx_bytes: Optional[int] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Usage":
        data = _dict(data)
        return cls(
            cpu_seconds=_opt_float(data.get("cpu_seconds")),
            memory_bytes=_opt_int(data.get("memory_bytes")),
            memory_peak_bytes=_opt_int(data.get("memory_peak_bytes")),
            memory_limit_bytes=_opt_int(data.get("memory_limit_bytes")),
            pids=_opt_int(data.get("pids")),
            disk_used_bytes=_opt_int(data.get("disk_used_bytes")),
            disk_limit_bytes=_opt_int(data.get("disk_limit_bytes")),
            net_rx_bytes=_opt_int(data.get("net_rx_bytes")),
            net_tx_bytes=_opt_int(data.get("net_tx_bytes")),
            raw=data,
        )


@dataclass
class SessionInfo:
    """A session object; ``usage`` is set by ``GET /v1/sessions/{id}`` (``session.info()``)."""

    id: str
    language: str = ""
    name: Optional[str] = None
    image: Optional[str] = None
    state: Optional[str] = None
    runtime: Optional[str] = None
    network: Optional[str] = None
    created_at: Optional[datetime] = None
    expires_at: Optional[datetime] = None
    idle_timeout: Optional[float] = None
    last_used_at: Optional[datetime] = None
    metadata: Dict[str, Any] = field(default_factory=dict)
    libraries: List[str] = field(default_factory=list)
    usage: Optional[Usage] = None
    run_timeout: Optional[float] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SessionInfo":
        data = _dict(data)
        usage = data.get("usage")
        libraries = data.get("libraries")
        return cls(
            id=str(data.get("id", "")),
            language=_str(data.get("language")),
            name=_opt_str(data.get("name")),
            image=_opt_str(data.get("image")),
            state=_opt_str(data.get("state")),
            runtime=_opt_str(data.get("runtime")),
            network=_opt_str(data.get("network")),
            created_at=parse_time(data.get("created_at")),
            expires_at=parse_time(data.get("expires_at")),
            idle_timeout=_opt_float(data.get("idle_timeout")),
            last_used_at=parse_time(data.get("last_used_at")),
            metadata=_dict(data.get("metadata")),
            libraries=[str(x) for x in libraries] if isinstance(libraries, list) else [],
            usage=Usage.from_dict(usage) if isinstance(usage, Mapping) else None,
            run_timeout=_opt_float(data.get("run_timeout")),
            raw=data,
        )


@dataclass
class Health:
    """``GET /health``: ``status`` is ``"ok"`` or ``"unavailable"``; ``engine`` holds
    ``kind``, ``version`` and ``api_version``."""

    status: str
    version: Optional[str] = None
    engine: Dict[str, Any] = field(default_factory=dict)
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Health":
        data = _dict(data)
        return cls(
            status=_str(data.get("status"), "unknown"),
            version=_opt_str(data.get("version")),
            engine=_dict(data.get("engine")),
            raw=data,
        )
