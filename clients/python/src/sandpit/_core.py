"""What the sync and async clients share: configuration, and every API call described as a
plain ``Call`` (method, path, query, body, how long it may take, how to read its answer).
The clients only send a Call and hand its answer to ``call.parse``; nothing here does I/O."""

from __future__ import annotations

import json
import os
import posixpath
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    AsyncIterator,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)
from urllib.parse import quote

import httpx

from ._sse import ServerSentEvent
from ._version import __version__
from .errors import ProtocolError, error_from_body
from .models import (
    Chunk,
    CommandResult,
    ExecuteResult,
    FileInfo,
    Health,
    PackageInfo,
    RunResult,
    SessionInfo,
)

DEFAULT_URL = "http://127.0.0.1:9501"
ENV_URL = "SANDPIT_URL"
ENV_API_KEY = "SANDPIT_API_KEY"

PathLike = Union[str, "os.PathLike[str]"]
Data = Union[str, bytes, bytearray, memoryview]


# ---------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Timeouts:
    """How long the client waits for the server, in seconds.

    * ``default``: a plain call (files, sessions, env, ...).
    * ``margin``: added to the time code may run (its ``timeout``, else the session's
      ``run_timeout``, else ``run_default``), so the HTTP client never cuts a run short.
    * ``open``: added where the server may first open a sandbox (a new session, a one-shot
      run): an image may be built on first use.
    * ``install``: added where libraries or packages are installed (the server gives an
      install 600 s).
    * ``connect``: reaching the server.
    """

    default: float = 60.0
    margin: float = 30.0
    run_default: float = 60.0
    open: float = 600.0
    install: float = 600.0
    connect: float = 10.0


def resolve_base_url(base_url: Optional[str]) -> str:
    url = base_url or os.environ.get(ENV_URL) or DEFAULT_URL
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


def resolve_api_key(api_key: Optional[str]) -> Optional[str]:
    if api_key is not None:
        return api_key
    key = os.environ.get(ENV_API_KEY)
    return key or None


def default_headers(api_key: Optional[str], extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    headers = {"User-Agent": f"sandpit-python/{__version__}", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    if extra:
        headers.update(extra)
    return headers


# ---------------------------------------------------------------------------- calls


Parse = Callable[[httpx.Response], Any]


@dataclass
class Call:
    """One HTTP request of the API and how to read its answer."""

    method: str
    path: str
    parse: Parse
    params: Any = None  # list of (name, value) pairs
    json: Any = None
    content: Any = None
    files: Any = None
    data: Optional[Dict[str, str]] = None
    headers: Dict[str, str] = field(default_factory=dict)
    # what the server may spend time on, to size the read timeout (see read_timeout)
    runs_code: bool = False
    code_timeout: Optional[float] = None
    opens: bool = False
    installs: bool = False
    # for streaming calls: how to read the final ``result`` event's JSON
    parse_result: Optional[Callable[[Any], Any]] = None


def read_timeout(call: Call, timeouts: Timeouts) -> float:
    """Seconds to wait for an answer (or, streaming, between two events) for ``call``."""
    if not (call.runs_code or call.opens or call.installs):
        return timeouts.default
    budget = timeouts.margin
    if call.runs_code:
        budget += call.code_timeout if call.code_timeout is not None else timeouts.run_default
    if call.opens:
        budget += timeouts.open
    if call.installs:
        budget += timeouts.install
    return max(timeouts.default, budget)


def http_timeout(call: Call, timeouts: Timeouts) -> httpx.Timeout:
    read = read_timeout(call, timeouts)
    return httpx.Timeout(read, connect=timeouts.connect)


# ---------------------------------------------------------------------------- answers


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        snippet = response.text[:200]
        raise ProtocolError(
            f"the server's answer to {response.request.method} {response.request.url.path} "
            f"is not JSON: {snippet!r}",
            status=response.status_code,
        ) from exc


def _field(body: Any, name: str, response: httpx.Response) -> Any:
    if not isinstance(body, dict) or name not in body:
        raise ProtocolError(
            f"the server's answer to {response.request.method} {response.request.url.path} "
            f"has no {name!r}: {str(body)[:200]!r}",
            status=response.status_code,
        )
    return body[name]


def parse_none(response: httpx.Response) -> None:
    return None


def parse_bytes(response: httpx.Response) -> bytes:
    return response.content


def parse_run(response: httpx.Response) -> RunResult:
    return RunResult.from_dict(json_body(response))


def parse_execute(response: httpx.Response) -> ExecuteResult:
    return ExecuteResult.from_dict(json_body(response))


def parse_command(response: httpx.Response) -> CommandResult:
    return CommandResult.from_dict(json_body(response))


def parse_session(response: httpx.Response) -> SessionInfo:
    return SessionInfo.from_dict(json_body(response))


def parse_sessions(response: httpx.Response) -> List[SessionInfo]:
    items = _field(json_body(response), "sessions", response)
    return [SessionInfo.from_dict(x) for x in items if isinstance(x, dict)]


def parse_file(response: httpx.Response) -> FileInfo:
    body = json_body(response)
    # Tolerate {"file": {...}} or {"files": [{...}]} around the file object.
    if isinstance(body, dict) and "name" not in body and "path" not in body:
        if isinstance(body.get("file"), dict):
            body = body["file"]
        elif isinstance(body.get("files"), list) and body["files"]:
            body = body["files"][0]
    return FileInfo.from_dict(body)


def parse_files(response: httpx.Response) -> List[FileInfo]:
    items = _field(json_body(response), "files", response)
    return [FileInfo.from_dict(x) for x in items if isinstance(x, dict)]


def parse_installed(response: httpx.Response) -> List[PackageInfo]:
    body = json_body(response)
    items = body.get("installed", []) if isinstance(body, dict) else []
    return [PackageInfo.from_any(x) for x in items or []]


def parse_packages(response: httpx.Response) -> List[PackageInfo]:
    items = _field(json_body(response), "packages", response)
    return [PackageInfo.from_any(x) for x in items]


def parse_env(response: httpx.Response) -> Dict[str, str]:
    env = _field(json_body(response), "env", response)
    return {str(k): "" if v is None else str(v) for k, v in dict(env).items()}


def parse_health(response: httpx.Response) -> Health:
    return Health.from_dict(json_body(response))


# ---------------------------------------------------------------------------- helpers


def seg(value: str) -> str:
    """One path segment (a session id, a package name), percent-encoded."""
    return quote(str(value), safe="")


def file_path(path: PathLike) -> str:
    """A file path for ``/v1/sessions/{id}/files/{path}``, each segment percent-encoded.

    ``..`` is sent as ``%2E%2E``: written plainly, the HTTP library would resolve it inside
    the URL (``/files/../x`` becomes ``/x``) before the server could refuse it. ``.``
    segments, repeated slashes and a trailing slash are dropped (the workdir itself is
    ``%2E``). An absolute path keeps its leading ``/`` (``files//sandbox/x``).
    """
    text = os.fspath(path)
    if not isinstance(text, str):
        raise TypeError("a remote path must be text")
    if text == "":
        raise ValueError("empty remote path")
    absolute = text.startswith("/")
    parts = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            parts.append("%2E%2E")
        else:
            parts.append(quote(part, safe=""))
    if not parts:
        return "/" if absolute else "%2E"
    joined = "/".join(parts)
    return "/" + joined if absolute else joined


def split_remote(path: PathLike) -> Tuple[str, str]:
    """(parent folder, name) of a remote path; the parent of ``x`` is ``.``."""
    text = os.fspath(path)
    stripped = text.rstrip("/") or text
    parent, name = posixpath.split(stripped)
    if parent == "":
        parent = "."
    return parent, name


def to_bytes(data: Any) -> Any:
    """Body of a file write: text as UTF-8, bytes as they are; a binary file object or an
    iterable of bytes is passed on to be streamed."""
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if hasattr(data, "read"):
        return FileBody(data)
    raise TypeError(f"file content must be str, bytes or a binary file, not {type(data).__name__}")


class FileBody:
    """A binary file object sent as a request body in blocks; ``length`` is what is left of
    it to read, when that can be known (then sent as Content-Length)."""

    block = 64 * 1024

    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.length: Optional[int] = None
        try:
            pos = fh.tell()
            end = fh.seek(0, os.SEEK_END)
            fh.seek(pos)
            self.length = max(0, end - pos)
        except (AttributeError, OSError, ValueError):
            self.length = None

    def next_block(self) -> bytes:
        block = self.fh.read(self.block)
        if isinstance(block, str):
            raise TypeError("file content must be read from a file opened in binary mode")
        return block or b""

    def __iter__(self) -> Iterator[bytes]:
        while True:
            block = self.next_block()
            if not block:
                return
            yield block


class AsyncFileBody:
    """The same for the async client (httpx's AsyncClient takes async iterables only)."""

    def __init__(self, body: FileBody) -> None:
        self.body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            block = self.body.next_block()
            if not block:
                return
            yield block


def env_map(env: Optional[Mapping[str, Any]]) -> Optional[Dict[str, str]]:
    if env is None:
        return None
    return {str(k): str(v) for k, v in env.items()}


def str_list(values: Optional[Iterable[Any]], what: str) -> Optional[List[str]]:
    if values is None:
        return None
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{what} must be a list of strings, not one string")
    return [str(v) for v in values]


def _drop_none(d: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _repeat(params: List[Tuple[str, str]], key: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            params.append((key, str(v)))
    else:
        params.append((key, str(value)))


def _mode(mode: Union[int, str, None]) -> Optional[str]:
    if mode is None:
        return None
    if isinstance(mode, int):
        return format(mode, "o")
    return str(mode)


# ---------------------------------------------------------------------------- the API's calls

SESSION_OPTIONS = (
    "name",
    "image",
    "libraries",
    "env",
    "network",
    "memory",
    "cpus",
    "max_processes",
    "disk",
    "policy",
    "runtime",
    "timeout",
    "idle_timeout",
    "run_timeout",
    "metadata",
)


def health() -> Call:
    return Call("GET", "/health", parse_health)


def one_shot_run(
    language: str,
    code: str,
    libraries: Optional[Sequence[str]] = None,
    stdin: Optional[str] = None,
    args: Optional[Sequence[str]] = None,
    timeout: Optional[float] = None,
) -> Call:
    if not language:
        raise ValueError("language is required")
    libs = str_list(libraries, "libraries")
    body = _drop_none(
        {
            "language": language,
            "code": code,
            "libraries": libs,
            "stdin": stdin,
            "args": str_list(args, "args"),
            "timeout": timeout,
        }
    )
    return Call(
        "POST",
        "/v1/run",
        parse_run,
        json=body,
        runs_code=True,
        code_timeout=timeout,
        opens=True,
        installs=bool(libs),
    )


def create_session(language: str, options: Mapping[str, Any]) -> Call:
    if not language:
        raise ValueError("language is required")
    unknown = set(options) - set(SESSION_OPTIONS)
    if unknown:
        raise TypeError(f"unknown session option(s): {', '.join(sorted(unknown))}")
    body: Dict[str, Any] = {"language": language}
    for key in SESSION_OPTIONS:
        value = options.get(key)
        if value is None:
            continue
        if key == "libraries":
            value = str_list(value, "libraries")
        elif key == "env":
            value = env_map(value)
        elif key == "metadata":
            value = dict(value)
        body[key] = value
    return Call(
        "POST",
        "/v1/sessions",
        parse_session,
        json=body,
        opens=True,
        installs=bool(body.get("libraries")),
    )


def list_sessions(
    language: Any = None, name: Any = None, metadata: Optional[Mapping[str, Any]] = None
) -> Call:
    params: List[Tuple[str, str]] = []
    _repeat(params, "language", language)
    _repeat(params, "name", name)
    for key, value in (metadata or {}).items():
        _repeat(params, f"metadata.{key}", value)
    return Call("GET", "/v1/sessions", parse_sessions, params=params or None)


def get_session(session_id: str) -> Call:
    return Call("GET", f"/v1/sessions/{seg(session_id)}", parse_session)


def update_session(
    session_id: str,
    timeout: Optional[float] = None,
    idle_timeout: Optional[float] = None,
    metadata: Optional[Mapping[str, Any]] = None,
) -> Call:
    body = _drop_none(
        {
            "timeout": timeout,
            "idle_timeout": idle_timeout,
            "metadata": dict(metadata) if metadata is not None else None,
        }
    )
    if not body:
        raise ValueError("nothing to change: give timeout, idle_timeout or metadata")
    return Call("PATCH", f"/v1/sessions/{seg(session_id)}", parse_session, json=body)


def delete_session(session_id: str) -> Call:
    return Call("DELETE", f"/v1/sessions/{seg(session_id)}", parse_none)


def _session(session_id: str) -> str:
    return f"/v1/sessions/{seg(session_id)}"


def session_run(
    session_id: str,
    code: str,
    libraries: Optional[Sequence[str]] = None,
    stdin: Optional[str] = None,
    args: Optional[Sequence[str]] = None,
    timeout: Optional[float] = None,
    env: Optional[Mapping[str, Any]] = None,
    session_run_timeout: Optional[float] = None,
) -> Call:
    libs = str_list(libraries, "libraries")
    body = _drop_none(
        {
            "code": code,
            "libraries": libs,
            "stdin": stdin,
            "args": str_list(args, "args"),
            "timeout": timeout,
            "env": env_map(env),
        }
    )
    return Call(
        "POST",
        f"{_session(session_id)}/run",
        parse_run,
        json=body,
        runs_code=True,
        code_timeout=timeout if timeout is not None else session_run_timeout,
        installs=bool(libs),
        parse_result=RunResult.from_dict,
    )


def session_execute(
    session_id: str,
    code: str,
    timeout: Optional[float] = None,
    session_run_timeout: Optional[float] = None,
) -> Call:
    body = _drop_none({"code": code, "timeout": timeout})
    return Call(
        "POST",
        f"{_session(session_id)}/execute",
        parse_execute,
        json=body,
        runs_code=True,
        code_timeout=timeout if timeout is not None else session_run_timeout,
        parse_result=ExecuteResult.from_dict,
    )


def session_command(
    session_id: str,
    command: str,
    timeout: Optional[float] = None,
    stdin: Optional[str] = None,
    env: Optional[Mapping[str, Any]] = None,
    session_run_timeout: Optional[float] = None,
) -> Call:
    body = _drop_none({"command": command, "timeout": timeout, "stdin": stdin, "env": env_map(env)})
    return Call(
        "POST",
        f"{_session(session_id)}/commands",
        parse_command,
        json=body,
        runs_code=True,
        code_timeout=timeout if timeout is not None else session_run_timeout,
        parse_result=CommandResult.from_dict,
    )


def as_stream(call: Call) -> Call:
    call.headers = dict(call.headers, Accept="text/event-stream")
    return call


# files


def file_write(session_id: str, path: PathLike, data: Any, mode: Union[int, str, None] = None) -> Call:
    mode_text = _mode(mode)
    body = to_bytes(data)
    headers = {"Content-Type": "application/octet-stream"}
    if isinstance(body, FileBody) and body.length is not None:
        headers["Content-Length"] = str(body.length)
    return Call(
        "PUT",
        f"{_session(session_id)}/files/{file_path(path)}",
        parse_file,
        content=body,
        params=[("mode", mode_text)] if mode_text is not None else None,
        headers=headers,
    )


def file_read(session_id: str, path: PathLike) -> Call:
    return Call(
        "GET",
        f"{_session(session_id)}/files/{file_path(path)}",
        parse_bytes,
        headers={"Accept": "application/octet-stream"},
    )


def file_delete(session_id: str, path: PathLike) -> Call:
    return Call("DELETE", f"{_session(session_id)}/files/{file_path(path)}", parse_none)


def file_list(
    session_id: str, path: PathLike = ".", recursive: bool = False, pattern: Optional[str] = None
) -> Call:
    params: List[Tuple[str, str]] = []
    text = os.fspath(path) if path is not None else "."
    if text not in ("", "."):
        params.append(("path", text))
    if recursive:
        params.append(("recursive", "true"))
    if pattern is not None:
        params.append(("pattern", pattern))
    return Call("GET", f"{_session(session_id)}/files", parse_files, params=params or None)


def file_op(session_id: str, op: str, path: PathLike, to: Optional[PathLike] = None) -> Call:
    body: Dict[str, Any] = {"op": op, "path": os.fspath(path)}
    if to is not None:
        body["to"] = os.fspath(to)
    return Call("POST", f"{_session(session_id)}/files/ops", parse_file, json=body)


def file_upload(session_id: str, parts: List[Tuple[str, Any]], folder: Optional[str]) -> Call:
    """``parts``: (file name, file object or bytes), sent as ``file`` parts."""
    files = [("file", (name, content, "application/octet-stream")) for name, content in parts]
    data = {"path": folder} if folder not in (None, "", ".") else None
    return Call("POST", f"{_session(session_id)}/files", parse_files, files=files, data=data)


def upload_target(local_name: str, remote_path: Optional[PathLike]) -> Tuple[Optional[str], str]:
    """(remote folder or None for the workdir, remote file name) for an upload.

    ``remote_path`` None: the local file's name in the workdir; ending in ``/``: that folder,
    the local name; otherwise the file's full remote path."""
    if remote_path is None:
        return None, local_name
    text = os.fspath(remote_path)
    if text.endswith("/") or text in ("", "."):
        folder = text.rstrip("/") or ("/" if text.startswith("/") else None)
        return folder, local_name
    parent, name = posixpath.split(text)
    return (parent or None), name


def find_entry(entries: List[FileInfo], name: str) -> Optional[FileInfo]:
    for entry in entries:
        if entry.name == name:
            return entry
    return None


# packages and env


def packages_install(
    session_id: str, names: Sequence[str], upgrade: bool = False, requirements: Optional[str] = None
) -> Call:
    if not names and requirements is None:
        raise ValueError("name at least one package, or give requirements")
    body: Dict[str, Any] = {"packages": list(names), "upgrade": bool(upgrade)}
    if requirements is not None:
        body["requirements"] = requirements
    return Call(
        "POST", f"{_session(session_id)}/packages", parse_installed, json=body, installs=True
    )


def flatten_names(names: Iterable[Any]) -> List[str]:
    out: List[str] = []
    for name in names:
        if isinstance(name, (list, tuple, set, frozenset)):
            out.extend(str(n) for n in name)
        else:
            out.append(str(name))
    return out


def packages_list(session_id: str) -> Call:
    return Call("GET", f"{_session(session_id)}/packages", parse_packages)


def packages_uninstall(session_id: str, name: str) -> Call:
    return Call("DELETE", f"{_session(session_id)}/packages/{seg(name)}", parse_none)


def normalize_package(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def package_matches(packages: List[PackageInfo], spec: str) -> bool:
    """Whether ``spec`` (``six`` or ``six==1.16.0``) is among ``packages``."""
    name, _, version = spec.partition("==")
    wanted = normalize_package(name)
    for p in packages:
        if normalize_package(p.name) == wanted and (not version or p.version == version.strip()):
            return True
    return False


def env_get(session_id: str) -> Call:
    return Call("GET", f"{_session(session_id)}/env", parse_env)


def env_put(session_id: str, env: Mapping[str, Any]) -> Call:
    mapping = env_map(env) or {}

    def parse(response: httpx.Response) -> Dict[str, str]:
        # The spec does not say what PUT answers: the new map, or nothing.
        if response.status_code == 204 or not response.content:
            return dict(mapping)
        try:
            body = response.json()
        except ValueError:
            return dict(mapping)
        if isinstance(body, dict) and isinstance(body.get("env"), dict):
            return {str(k): str(v) for k, v in body["env"].items()}
        return dict(mapping)

    return Call("PUT", f"{_session(session_id)}/env", parse, json={"env": mapping})


# ---------------------------------------------------------------------------- event streams


class StreamState:
    """Turns the events of a streamed run into chunks and, at the end, its result."""

    def __init__(self, parse_result: Callable[[Any], Any]) -> None:
        self._parse_result = parse_result
        self.result: Any = None
        self.done = False

    def on_event(self, event: ServerSentEvent) -> Optional[Chunk]:
        """A chunk for an ``output`` event; sets ``result`` for ``result``; raises the
        mapped error for ``error``; ignores other events."""
        if event.event == "output":
            return Chunk.from_dict(self._json(event))
        if event.event == "result":
            self.result = self._parse_result(self._json(event))
            self.done = True
            return None
        if event.event == "error":
            self.done = True
            body = self._json(event, strict=False)
            raise error_from_body(body, None, event.data)
        return None

    @staticmethod
    def _json(event: ServerSentEvent, strict: bool = True) -> Any:
        try:
            return json.loads(event.data)
        except ValueError as exc:
            if not strict:
                return None
            raise ProtocolError(f"the {event.event!r} event's data is not JSON: {event.data[:200]!r}") from exc

    def finish(self) -> Any:
        if not self.done:
            raise ProtocolError("the event stream ended without a result event")
        return self.result


def check_event_stream(response: httpx.Response) -> None:
    ctype = response.headers.get("content-type", "")
    if not ctype.lower().startswith("text/event-stream"):
        raise ProtocolError(
            f"asked for text/event-stream, the server answered {ctype or 'no content type'} "
            f"(status {response.status_code})",
            status=response.status_code,
        )


# ---------------------------------------------------------------------------- transport failures


def transport_error(exc: Exception, request: Optional[httpx.Request] = None) -> Exception:
    """The SandpitError for a failure of httpx to get an answer."""
    from .errors import ConnectionError, SandpitError, Timeout

    where = ""
    try:
        req = request if request is not None else getattr(exc, "request", None)
        if req is not None:
            where = f" ({req.method} {req.url})"
    except RuntimeError:  # httpx raises when an error has no request attached
        where = ""
    if isinstance(exc, httpx.ConnectTimeout):
        return ConnectionError(f"could not connect to the Sandpit server in time{where}: {exc}")
    if isinstance(exc, httpx.TimeoutException):
        return Timeout(
            f"the Sandpit server did not answer in time{where}; raise the client's timeout "
            f"for long calls: {type(exc).__name__}",
            status=None,
        )
    if isinstance(exc, httpx.TransportError):
        return ConnectionError(f"cannot reach the Sandpit server{where}: {exc or type(exc).__name__}")
    return SandpitError(f"HTTP failure{where}: {exc}", kind="http", status=None)
