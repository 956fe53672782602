"""The synchronous client: ``Client``, ``Session`` and their helpers."""

from __future__ import annotations

import contextlib
import os
import pathlib
from typing import (
    Any,
    Dict,
    Generator,
    Generic,
    List,
    Mapping,
    Optional,
    Sequence,
    TypeVar,
    Union,
)

import httpx

from . import _core as core
from ._sse import SSEDecoder
from .errors import Gone, NotFound, SandpitError, error_from_response
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

__all__ = ["Client", "Session", "Files", "Packages", "Env", "Stream"]

T = TypeVar("T")


class Client:
    """A connection to a Sandpit server.

    ``base_url`` defaults to ``$SANDPIT_URL``, then ``http://127.0.0.1:9501``; ``api_key`` to
    ``$SANDPIT_API_KEY``. ``timeout`` is the wait for plain calls; calls that run code wait
    for the code's own timeout plus ``timeout_margin`` (see :class:`sandpit._core.Timeouts`).
    Use it as a context manager, or call :meth:`close`, to release its connections.
    """

    def __init__(
        self,
        base_url: Optional[str] = None,
        api_key: Optional[str] = None,
        *,
        timeout: float = 60.0,
        timeout_margin: float = 30.0,
        open_timeout: float = 600.0,
        install_timeout: float = 600.0,
        connect_timeout: float = 10.0,
        headers: Optional[Mapping[str, str]] = None,
        verify: Any = True,
        transport: Optional[httpx.BaseTransport] = None,
    ) -> None:
        self.base_url = core.resolve_base_url(base_url)
        self.api_key = core.resolve_api_key(api_key)
        self.timeouts = core.Timeouts(
            default=timeout,
            margin=timeout_margin,
            open=open_timeout,
            install=install_timeout,
            connect=connect_timeout,
        )
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=core.default_headers(self.api_key, headers),
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            verify=verify,
            transport=transport,
        )

    # ------------------------------------------------------------------ plumbing

    def _send(self, call: core.Call, *, stream: bool = False) -> httpx.Response:
        try:
            request = self._http.build_request(
                call.method,
                call.path,
                params=call.params,
                json=call.json,
                content=call.content,
                files=call.files,
                data=call.data,
                headers=call.headers or None,
                timeout=core.http_timeout(call, self.timeouts),
            )
        except httpx.HTTPError as exc:  # pragma: no cover - malformed URL and such
            raise core.transport_error(exc) from exc
        try:
            response = self._http.send(request, stream=stream)
        except httpx.HTTPError as exc:
            raise core.transport_error(exc, request) from exc
        if response.status_code >= 400:
            try:
                response.read()
            except httpx.HTTPError:
                pass
            finally:
                response.close()
            raise error_from_response(response)
        return response

    def _call(self, call: core.Call) -> Any:
        response = self._send(call)
        return call.parse(response)

    def _stream(self, call: core.Call) -> "Stream[Any]":
        return Stream(self, core.as_stream(call))

    # ------------------------------------------------------------------ the API

    def health(self) -> Health:
        """``GET /health``: the server's and the engine's state. An engine out of reach is
        ``Health(status="unavailable")``, not an error."""
        call = core.health()
        try:
            return self._call(call)
        except SandpitError as exc:
            if exc.status == 503 and isinstance(exc.body, dict) and "status" in exc.body:
                return Health.from_dict(exc.body)
            raise

    def run(
        self,
        language: str,
        code: str,
        libraries: Optional[Sequence[str]] = None,
        stdin: Optional[str] = None,
        args: Optional[Sequence[str]] = None,
        timeout: Optional[float] = None,
    ) -> RunResult:
        """Run one program in a fresh sandbox (``POST /v1/run``); the sandbox is removed after."""
        return self._call(core.one_shot_run(language, code, libraries, stdin, args, timeout))

    def session(
        self,
        language: str,
        *,
        name: Optional[str] = None,
        image: Optional[str] = None,
        libraries: Optional[Sequence[str]] = None,
        env: Optional[Mapping[str, Any]] = None,
        network: Optional[str] = None,
        memory: Union[int, str, None] = None,
        cpus: Optional[float] = None,
        max_processes: Optional[int] = None,
        disk: Union[int, str, None] = None,
        policy: Optional[str] = None,
        runtime: Optional[str] = None,
        timeout: Optional[float] = None,
        idle_timeout: Optional[float] = None,
        run_timeout: Optional[float] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> "Session":
        """Open a session (``POST /v1/sessions``). With ``name``, the key's session of that
        name is returned if it exists (``session.created`` is then False).

        ``timeout`` is the session's lifetime in seconds, ``idle_timeout`` closes it after
        that long unused, ``run_timeout`` is the default timeout of each run. Use the
        session as a context manager to close it at the end."""
        options = dict(
            name=name,
            image=image,
            libraries=libraries,
            env=env,
            network=network,
            memory=memory,
            cpus=cpus,
            max_processes=max_processes,
            disk=disk,
            policy=policy,
            runtime=runtime,
            timeout=timeout,
            idle_timeout=idle_timeout,
            run_timeout=run_timeout,
            metadata=metadata,
        )
        call = core.create_session(language, options)
        response = self._send(call)
        info = call.parse(response)
        return Session(self, info, created=response.status_code == 201, run_timeout=run_timeout)

    create_session = session

    def get_session(self, session_id: str) -> "Session":
        """Attach to an existing session of this key (``GET /v1/sessions/{id}``)."""
        info = self._call(core.get_session(session_id))
        return Session(self, info, created=False)

    connect = get_session

    def list_sessions(
        self,
        language: Union[str, Sequence[str], None] = None,
        name: Union[str, Sequence[str], None] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> List[SessionInfo]:
        """This key's sessions (``GET /v1/sessions``); every filter given must match."""
        return self._call(core.list_sessions(language, name, metadata))

    def close(self) -> None:
        """Release the client's connections (sessions stay open on the server)."""
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<sandpit.Client {self.base_url}>"


class Stream(Generic[T]):
    """Output of a streamed run, chunk by chunk: iterate it for :class:`Chunk` objects; once
    it ends, ``result`` holds what the plain route answers. The request is sent when
    iteration starts. Leaving it early (``break``, ``close()``, the ``with`` block's end)
    disconnects, which stops the work on the server."""

    def __init__(self, client: Client, call: core.Call) -> None:
        self._client = client
        self._call = call
        self._state = core.StreamState(call.parse_result or (lambda body: body))
        self._gen: Optional[Generator[Chunk, None, None]] = None
        self.chunks: List[Chunk] = []

    @property
    def result(self) -> Optional[T]:
        """The final result, None until the stream has ended."""
        return self._state.result

    @property
    def done(self) -> bool:
        return self._state.done

    def _events(self) -> Generator[Chunk, None, None]:
        response = self._client._send(self._call, stream=True)
        try:
            core.check_event_stream(response)
            response.encoding = "utf-8"
            decoder = SSEDecoder()
            try:
                for line in response.iter_lines():
                    event = decoder.feed(line)
                    if event is None:
                        continue
                    chunk = self._state.on_event(event)
                    if chunk is not None:
                        self.chunks.append(chunk)
                        yield chunk
                    if self._state.done:
                        return
                event = decoder.flush()
            except httpx.HTTPError as exc:
                raise core.transport_error(exc, response.request) from exc
            if event is not None:
                chunk = self._state.on_event(event)
                if chunk is not None:
                    self.chunks.append(chunk)
                    yield chunk
            self._state.finish()
        finally:
            response.close()

    def __iter__(self) -> "Stream[T]":
        return self

    def __next__(self) -> Chunk:
        if self._gen is None:
            self._gen = self._events()
        return next(self._gen)

    def wait(self) -> T:
        """Read the rest of the stream and return the result."""
        for _ in self:
            pass
        return self._state.finish()

    def text(self) -> str:
        """Everything streamed so far, stdout and stderr in the order they came."""
        return "".join(c.text for c in self.chunks)

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()
        else:
            self._gen = _empty()

    def __enter__(self) -> "Stream[T]":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _empty() -> Generator[Chunk, None, None]:
    return
    yield  # pragma: no cover - makes this a generator


class Session:
    """A sandbox that keeps its state between calls. Close it with :meth:`close` (or
    ``kill()``), or use it in a ``with`` block."""

    def __init__(
        self,
        client: Client,
        info: SessionInfo,
        *,
        created: bool = False,
        run_timeout: Optional[float] = None,
    ) -> None:
        self.client = client
        self.id = info.id
        self.last_info = info
        self.created = created
        self.closed = False
        self._run_timeout = run_timeout if run_timeout is not None else info.run_timeout
        self.files = Files(self)
        self.packages = Packages(self)
        self.env = Env(self)

    @property
    def name(self) -> Optional[str]:
        return self.last_info.name

    @property
    def language(self) -> str:
        return self.last_info.language

    @property
    def metadata(self) -> Dict[str, Any]:
        return self.last_info.metadata

    def _remember(self, info: SessionInfo) -> SessionInfo:
        self.last_info = info
        if info.run_timeout is not None:
            self._run_timeout = info.run_timeout
        return info

    # ------------------------------------------------------------------ state

    def info(self) -> SessionInfo:
        """The session object with ``usage`` (``GET /v1/sessions/{id}``)."""
        return self._remember(self.client._call(core.get_session(self.id)))

    def update(
        self,
        *,
        timeout: Optional[float] = None,
        idle_timeout: Optional[float] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> SessionInfo:
        """``PATCH`` the session: ``timeout`` makes it expire that many seconds from now,
        ``idle_timeout`` changes its idle timeout, ``metadata`` is merged."""
        return self._remember(
            self.client._call(core.update_session(self.id, timeout, idle_timeout, metadata))
        )

    def set_timeout(self, seconds: float) -> SessionInfo:
        """Make the session expire ``seconds`` from now (E2B's ``set_timeout``)."""
        return self.update(timeout=seconds)

    def close(self) -> bool:
        """Delete the session and its container. True if it was deleted now, False if it was
        already gone (closed before, expired, or removed from outside)."""
        if self.closed:
            return False
        try:
            self.client._call(core.delete_session(self.id))
        except (NotFound, Gone):
            self.closed = True
            return False
        self.closed = True
        return True

    kill = close

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
            return
        # Don't hide the error that ended the block behind one from closing.
        with contextlib.suppress(SandpitError):
            self.close()

    def __repr__(self) -> str:
        return f"<sandpit.Session id={self.id} language={self.language}{' closed' if self.closed else ''}>"

    # ------------------------------------------------------------------ running code

    def run(
        self,
        code: str,
        libraries: Optional[Sequence[str]] = None,
        stdin: Optional[str] = None,
        args: Optional[Sequence[str]] = None,
        timeout: Optional[float] = None,
        env: Optional[Mapping[str, Any]] = None,
    ) -> RunResult:
        """Run ``code`` as one program in the session (``POST .../run``). A program that
        fails is a result with its ``exit_code``, not an exception."""
        return self.client._call(
            core.session_run(self.id, code, libraries, stdin, args, timeout, env, self._run_timeout)
        )

    def execute(self, code: str, timeout: Optional[float] = None) -> ExecuteResult:
        """Run ``code`` in the session's kernel, keeping variables between calls, like a
        notebook cell (``POST .../execute``; Python, JavaScript and Ruby)."""
        return self.client._call(core.session_execute(self.id, code, timeout, self._run_timeout))

    def command(
        self,
        cmd: str,
        timeout: Optional[float] = None,
        stdin: Optional[str] = None,
        env: Optional[Mapping[str, Any]] = None,
    ) -> CommandResult:
        """Run one shell command in the session's workdir (``POST .../commands``)."""
        return self.client._call(core.session_command(self.id, cmd, timeout, stdin, env, self._run_timeout))

    run_command = command
    execute_command = command

    def run_stream(
        self,
        code: str,
        libraries: Optional[Sequence[str]] = None,
        stdin: Optional[str] = None,
        args: Optional[Sequence[str]] = None,
        timeout: Optional[float] = None,
        env: Optional[Mapping[str, Any]] = None,
    ) -> Stream[RunResult]:
        """Like :meth:`run`, streamed: iterate for chunks, then read ``.result``."""
        return self.client._stream(
            core.session_run(self.id, code, libraries, stdin, args, timeout, env, self._run_timeout)
        )

    def execute_stream(self, code: str, timeout: Optional[float] = None) -> Stream[ExecuteResult]:
        """Like :meth:`execute`, streamed."""
        return self.client._stream(core.session_execute(self.id, code, timeout, self._run_timeout))

    def command_stream(
        self,
        cmd: str,
        timeout: Optional[float] = None,
        stdin: Optional[str] = None,
        env: Optional[Mapping[str, Any]] = None,
    ) -> Stream[CommandResult]:
        """Like :meth:`command`, streamed."""
        return self.client._stream(
            core.session_command(self.id, cmd, timeout, stdin, env, self._run_timeout)
        )


class Files:
    """The session's files, relative to its workdir (``/sandbox``)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    @property
    def _client(self) -> Client:
        return self._session.client

    @property
    def _id(self) -> str:
        return self._session.id

    def write(self, path: core.PathLike, data: Any, mode: Union[int, str, None] = None) -> FileInfo:
        """Write ``data`` (text is encoded as UTF-8; bytes or a binary file object as they are)
        to ``path``, making its folders. ``mode``: ``0o755`` or ``"755"``."""
        return self._client._call(core.file_write(self._id, path, data, mode))

    def read(self, path: core.PathLike) -> bytes:
        """The file's bytes."""
        return self._client._call(core.file_read(self._id, path))

    def read_text(self, path: core.PathLike, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self.read(path).decode(encoding, errors)

    def list(
        self, path: core.PathLike = ".", recursive: bool = False, pattern: Optional[str] = None
    ) -> List[FileInfo]:
        """The entries of the folder ``path`` (all below it with ``recursive``), those
        matching the glob ``pattern`` if given."""
        return self._client._call(core.file_list(self._id, path, recursive, pattern))

    def info(self, path: core.PathLike) -> FileInfo:
        """The file object of ``path`` (from a listing of its folder); NotFound if absent."""
        parent, name = core.split_remote(path)
        if name in ("", "."):
            raise ValueError("the workdir itself has no file object; name a file or folder in it")
        entry = core.find_entry(self.list(parent), name)
        if entry is None:
            raise NotFound(f"no file {os.fspath(path)!r} in the session", body=None)
        return entry

    def exists(self, path: core.PathLike) -> bool:
        """Whether ``path`` exists (a file, folder or symlink)."""
        parent, name = core.split_remote(path)
        try:
            entries = self.list(parent)
        except NotFound:
            return False
        if name in ("", "."):
            return True
        return core.find_entry(entries, name) is not None

    def delete(self, path: core.PathLike) -> None:
        """Remove a file, or a folder with everything in it."""
        self._client._call(core.file_delete(self._id, path))

    remove = delete

    def copy(self, path: core.PathLike, to: core.PathLike) -> FileInfo:
        return self._client._call(core.file_op(self._id, "copy", path, to))

    def move(self, path: core.PathLike, to: core.PathLike) -> FileInfo:
        return self._client._call(core.file_op(self._id, "move", path, to))

    rename = move

    def mkdir(self, path: core.PathLike) -> FileInfo:
        """Make the folder ``path`` (and its parents)."""
        return self._client._call(core.file_op(self._id, "mkdir", path))

    make_dir = mkdir

    def upload(self, local_path: core.PathLike, remote_path: Optional[core.PathLike] = None) -> FileInfo:
        """Send the local file ``local_path`` as a multipart upload. ``remote_path``: the
        file's path in the session (default: its own name in the workdir); ending in ``/``,
        the folder to put it in."""
        local = pathlib.Path(local_path)
        if local.is_dir():
            raise IsADirectoryError(f"{local} is a folder: use upload_dir")
        folder, name = core.upload_target(local.name, remote_path)
        with open(local, "rb") as fh:
            files = self._client._call(core.file_upload(self._id, [(name, fh)], folder))
        if not files:
            return self.info(name if folder is None else f"{folder.rstrip('/')}/{name}")
        return files[0]

    def upload_dir(self, local_dir: core.PathLike, remote_dir: Optional[core.PathLike] = None) -> List[FileInfo]:
        """Send a local folder with everything in it to ``remote_dir`` (default: a folder of
        the same name in the workdir); one multipart request per folder."""
        root = pathlib.Path(local_dir)
        if not root.is_dir():
            raise NotADirectoryError(f"{root} is not a folder")
        target = os.fspath(remote_dir) if remote_dir is not None else root.name
        target = target.rstrip("/") or target
        uploaded: List[FileInfo] = []
        for folder, dirs, names in os.walk(root):
            dirs.sort()
            rel = pathlib.Path(folder).relative_to(root).as_posix()
            remote = target if rel == "." else f"{target}/{rel}"
            files = sorted(n for n in names if os.path.isfile(os.path.join(folder, n)))
            if not files:
                uploaded.append(self.mkdir(remote))
                continue
            with contextlib.ExitStack() as stack:
                parts = [(n, stack.enter_context(open(os.path.join(folder, n), "rb"))) for n in files]
                uploaded.extend(self._client._call(core.file_upload(self._id, parts, remote)))
        return uploaded

    def download(self, remote_path: core.PathLike, local_path: Optional[core.PathLike] = None) -> pathlib.Path:
        """Save the session's file ``remote_path`` to ``local_path`` (a file, or an existing
        folder to put it in; default: its name in the current folder). Returns the local path."""
        _, name = core.split_remote(remote_path)
        local = pathlib.Path(local_path) if local_path is not None else pathlib.Path(name)
        if local.is_dir():
            local = local / name
        local.parent.mkdir(parents=True, exist_ok=True)
        call = core.file_read(self._id, remote_path)
        response = self._client._send(call, stream=True)
        tmp = local.with_name(local.name + ".part")
        try:
            with open(tmp, "wb") as out:
                for block in response.iter_bytes():
                    out.write(block)
            os.replace(tmp, local)
        except httpx.HTTPError as exc:
            raise core.transport_error(exc, response.request) from exc
        finally:
            response.close()
            if tmp.exists():
                tmp.unlink()
        return local


class Packages:
    """Packages of the session's language (pip for Python, npm for JavaScript, ...)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def install(
        self, *names: Union[str, Sequence[str]], upgrade: bool = False, requirements: Optional[str] = None
    ) -> List[PackageInfo]:
        """Install packages (``install("six", "requests==2.31.0")``; a list works too)."""
        call = core.packages_install(self._session.id, core.flatten_names(names), upgrade, requirements)
        return self._session.client._call(call)

    def list(self) -> List[PackageInfo]:
        return self._session.client._call(core.packages_list(self._session.id))

    def uninstall(self, name: str) -> None:
        self._session.client._call(core.packages_uninstall(self._session.id, name))

    def is_installed(self, name: str) -> bool:
        """Whether ``name`` (``six``, or ``six==1.16.0`` for a version) is installed."""
        return core.package_matches(self.list(), name)


class Env:
    """The environment the session's later runs, commands and kernel see."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self) -> Dict[str, str]:
        return self._session.client._call(core.env_get(self._session.id))

    def set(self, env: Mapping[str, Any]) -> Dict[str, str]:
        """Replace the whole environment with ``env``."""
        return self._session.client._call(core.env_put(self._session.id, env))

    def update(self, env: Optional[Mapping[str, Any]] = None, **more: Any) -> Dict[str, str]:
        """Add or change variables, keeping the others (reads, then replaces)."""
        current = self.get()
        current.update({str(k): str(v) for k, v in (env or {}).items()})
        current.update({k: str(v) for k, v in more.items()})
        return self.set(current)

    def unset(self, *keys: str) -> Dict[str, str]:
        """Remove variables (reads, then replaces)."""
        current = self.get()
        for key in keys:
            current.pop(key, None)
        return self.set(current)
