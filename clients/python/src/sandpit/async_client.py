"""The asynchronous client: ``AsyncClient``, ``AsyncSession`` and their helpers; the same API
as the sync one, with ``await`` (and ``async for``/``async with``)."""

from __future__ import annotations

import contextlib
import os
import pathlib
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
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

__all__ = ["AsyncClient", "AsyncSession", "AsyncFiles", "AsyncPackages", "AsyncEnv", "AsyncStream"]

T = TypeVar("T")


class AsyncClient:
    """The async twin of :class:`sandpit.Client` (same arguments, same methods, awaited).

    ``async with sandpit.AsyncClient() as client:`` closes its connections at the end."""

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
        transport: Optional[httpx.AsyncBaseTransport] = None,
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
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=core.default_headers(self.api_key, headers),
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            verify=verify,
            transport=transport,
        )

    # ------------------------------------------------------------------ plumbing

    async def _send(self, call: core.Call, *, stream: bool = False) -> httpx.Response:
        content = call.content
        if isinstance(content, core.FileBody):
            content = core.AsyncFileBody(content)
        try:
            request = self._http.build_request(
                call.method,
                call.path,
                params=call.params,
                json=call.json,
                content=content,
                files=call.files,
                data=call.data,
                headers=call.headers or None,
                timeout=core.http_timeout(call, self.timeouts),
            )
        except httpx.HTTPError as exc:  # pragma: no cover
            raise core.transport_error(exc) from exc
        try:
            response = await self._http.send(request, stream=stream)
        except httpx.HTTPError as exc:
            raise core.transport_error(exc, request) from exc
        if response.status_code >= 400:
            try:
                await response.aread()
            except httpx.HTTPError:
                pass
            finally:
                await response.aclose()
            raise error_from_response(response)
        return response

    async def _call(self, call: core.Call) -> Any:
        response = await self._send(call)
        return call.parse(response)

    def _stream(self, call: core.Call) -> "AsyncStream[Any]":
        return AsyncStream(self, core.as_stream(call))

    # ------------------------------------------------------------------ the API

    async def health(self) -> Health:
        call = core.health()
        try:
            return await self._call(call)
        except SandpitError as exc:
            if exc.status == 503 and isinstance(exc.body, dict) and "status" in exc.body:
                return Health.from_dict(exc.body)
            raise

    async def run(
        self,
        language: str,
        code: str,
        libraries: Optional[Sequence[str]] = None,
        stdin: Optional[str] = None,
        args: Optional[Sequence[str]] = None,
        timeout: Optional[float] = None,
    ) -> RunResult:
        """Run one program in a fresh sandbox (``POST /v1/run``)."""
        return await self._call(core.one_shot_run(language, code, libraries, stdin, args, timeout))

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
    ) -> "_SessionOpener":
        """Open a session: ``s = await client.session("python")``, or
        ``async with client.session("python") as s:`` to close it at the end."""
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

        async def open_it() -> AsyncSession:
            response = await self._send(call)
            info = call.parse(response)
            return AsyncSession(self, info, created=response.status_code == 201, run_timeout=run_timeout)

        return _SessionOpener(open_it)

    create_session = session

    def get_session(self, session_id: str) -> "_SessionOpener":
        """Attach to an existing session: ``await client.get_session(id)`` (or ``async with``)."""

        async def get_it() -> AsyncSession:
            info = await self._call(core.get_session(session_id))
            return AsyncSession(self, info, created=False)

        return _SessionOpener(get_it)

    connect = get_session

    async def list_sessions(
        self,
        language: Union[str, Sequence[str], None] = None,
        name: Union[str, Sequence[str], None] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> List[SessionInfo]:
        return await self._call(core.list_sessions(language, name, metadata))

    async def close(self) -> None:
        await self._http.aclose()

    aclose = close

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<sandpit.AsyncClient {self.base_url}>"


class _SessionOpener:
    """What ``AsyncClient.session()`` returns: await it for the session, or use it with
    ``async with`` to have the session closed at the end of the block."""

    def __init__(self, open_it: Callable[[], Awaitable["AsyncSession"]]) -> None:
        self._open = open_it
        self._session: Optional[AsyncSession] = None

    def __await__(self) -> Generator[Any, None, "AsyncSession"]:
        return self._open().__await__()

    async def __aenter__(self) -> "AsyncSession":
        self._session = await self._open()
        return self._session

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._session is not None:
            await self._session.__aexit__(exc_type, exc, tb)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"{name!r}: the session is not open yet; use `s = await client.session(...)` "
            f"or `async with client.session(...) as s:`"
        )


class AsyncStream(Generic[T]):
    """Output of a streamed run: ``async for chunk in stream``, then ``stream.result``.
    Prefer ``async with session.run_stream(...) as stream:`` when you may leave early, so the
    connection is closed (which stops the work on the server) at once."""

    def __init__(self, client: AsyncClient, call: core.Call) -> None:
        self._client = client
        self._call = call
        self._state = core.StreamState(call.parse_result or (lambda body: body))
        self._gen: Optional[AsyncIterator[Chunk]] = None
        self.chunks: List[Chunk] = []

    @property
    def result(self) -> Optional[T]:
        return self._state.result

    @property
    def done(self) -> bool:
        return self._state.done

    async def _events(self) -> AsyncIterator[Chunk]:
        response = await self._client._send(self._call, stream=True)
        try:
            core.check_event_stream(response)
            response.encoding = "utf-8"
            decoder = SSEDecoder()
            try:
                async for line in response.aiter_lines():
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
            await response.aclose()

    def __aiter__(self) -> "AsyncStream[T]":
        return self

    async def __anext__(self) -> Chunk:
        if self._gen is None:
            self._gen = self._events()
        return await self._gen.__anext__()

    async def wait(self) -> T:
        """Read the rest of the stream and return the result."""
        async for _ in self:
            pass
        return self._state.finish()

    def text(self) -> str:
        return "".join(c.text for c in self.chunks)

    async def close(self) -> None:
        if self._gen is not None:
            await self._gen.aclose()  # type: ignore[attr-defined]
        else:
            self._gen = _empty()

    aclose = close

    async def __aenter__(self) -> "AsyncStream[T]":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


async def _empty() -> AsyncIterator[Chunk]:
    return
    yield  # pragma: no cover - makes this an async generator


class AsyncSession:
    """The async twin of :class:`sandpit.Session`."""

    def __init__(
        self,
        client: AsyncClient,
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
        self.files = AsyncFiles(self)
        self.packages = AsyncPackages(self)
        self.env = AsyncEnv(self)

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

    async def info(self) -> SessionInfo:
        return self._remember(await self.client._call(core.get_session(self.id)))

    async def update(
        self,
        *,
        timeout: Optional[float] = None,
        idle_timeout: Optional[float] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> SessionInfo:
        return self._remember(
            await self.client._call(core.update_session(self.id, timeout, idle_timeout, metadata))
        )

    async def set_timeout(self, seconds: float) -> SessionInfo:
        return await self.update(timeout=seconds)

    async def close(self) -> bool:
        if self.closed:
            return False
        try:
            await self.client._call(core.delete_session(self.id))
        except (NotFound, Gone):
            self.closed = True
            return False
        self.closed = True
        return True

    kill = close

    async def __aenter__(self) -> "AsyncSession":
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            await self.close()
            return
        with contextlib.suppress(SandpitError):
            await self.close()

    def __repr__(self) -> str:
        return f"<sandpit.AsyncSession id={self.id} language={self.language}{' closed' if self.closed else ''}>"

    async def run(
        self,
        code: str,
        libraries: Optional[Sequence[str]] = None,
        stdin: Optional[str] = None,
        args: Optional[Sequence[str]] = None,
        timeout: Optional[float] = None,
        env: Optional[Mapping[str, Any]] = None,
    ) -> RunResult:
        return await self.client._call(
            core.session_run(self.id, code, libraries, stdin, args, timeout, env, self._run_timeout)
        )

    async def execute(self, code: str, timeout: Optional[float] = None) -> ExecuteResult:
        return await self.client._call(core.session_execute(self.id, code, timeout, self._run_timeout))

    async def command(
        self,
        cmd: str,
        timeout: Optional[float] = None,
        stdin: Optional[str] = None,
        env: Optional[Mapping[str, Any]] = None,
    ) -> CommandResult:
        return await self.client._call(
            core.session_command(self.id, cmd, timeout, stdin, env, self._run_timeout)
        )

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
    ) -> AsyncStream[RunResult]:
        """``async for chunk in session.run_stream(code): ...`` (not awaited)."""
        return self.client._stream(
            core.session_run(self.id, code, libraries, stdin, args, timeout, env, self._run_timeout)
        )

    def execute_stream(self, code: str, timeout: Optional[float] = None) -> AsyncStream[ExecuteResult]:
        return self.client._stream(core.session_execute(self.id, code, timeout, self._run_timeout))

    def command_stream(
        self,
        cmd: str,
        timeout: Optional[float] = None,
        stdin: Optional[str] = None,
        env: Optional[Mapping[str, Any]] = None,
    ) -> AsyncStream[CommandResult]:
        return self.client._stream(
            core.session_command(self.id, cmd, timeout, stdin, env, self._run_timeout)
        )


class AsyncFiles:
    """The async twin of :class:`sandpit.client.Files`."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    @property
    def _client(self) -> AsyncClient:
        return self._session.client

    @property
    def _id(self) -> str:
        return self._session.id

    async def write(self, path: core.PathLike, data: Any, mode: Union[int, str, None] = None) -> FileInfo:
        return await self._client._call(core.file_write(self._id, path, data, mode))

    async def read(self, path: core.PathLike) -> bytes:
        return await self._client._call(core.file_read(self._id, path))

    async def read_text(self, path: core.PathLike, encoding: str = "utf-8", errors: str = "strict") -> str:
        return (await self.read(path)).decode(encoding, errors)

    async def list(
        self, path: core.PathLike = ".", recursive: bool = False, pattern: Optional[str] = None
    ) -> List[FileInfo]:
        return await self._client._call(core.file_list(self._id, path, recursive, pattern))

    async def info(self, path: core.PathLike) -> FileInfo:
        parent, name = core.split_remote(path)
        if name in ("", "."):
            raise ValueError("the workdir itself has no file object; name a file or folder in it")
        entry = core.find_entry(await self.list(parent), name)
        if entry is None:
            raise NotFound(f"no file {os.fspath(path)!r} in the session")
        return entry

    async def exists(self, path: core.PathLike) -> bool:
        parent, name = core.split_remote(path)
        try:
            entries = await self.list(parent)
        except NotFound:
            return False
        if name in ("", "."):
            return True
        return core.find_entry(entries, name) is not None

    async def delete(self, path: core.PathLike) -> None:
        await self._client._call(core.file_delete(self._id, path))

    remove = delete

    async def copy(self, path: core.PathLike, to: core.PathLike) -> FileInfo:
        return await self._client._call(core.file_op(self._id, "copy", path, to))

    async def move(self, path: core.PathLike, to: core.PathLike) -> FileInfo:
        return await self._client._call(core.file_op(self._id, "move", path, to))

    rename = move

    async def mkdir(self, path: core.PathLike) -> FileInfo:
        return await self._client._call(core.file_op(self._id, "mkdir", path))

    make_dir = mkdir

    async def upload(self, local_path: core.PathLike, remote_path: Optional[core.PathLike] = None) -> FileInfo:
        local = pathlib.Path(local_path)
        if local.is_dir():
            raise IsADirectoryError(f"{local} is a folder: use upload_dir")
        folder, name = core.upload_target(local.name, remote_path)
        with open(local, "rb") as fh:
            files = await self._client._call(core.file_upload(self._id, [(name, fh)], folder))
        if not files:
            return await self.info(name if folder is None else f"{folder.rstrip('/')}/{name}")
        return files[0]

    async def upload_dir(
        self, local_dir: core.PathLike, remote_dir: Optional[core.PathLike] = None
    ) -> List[FileInfo]:
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
                uploaded.append(await self.mkdir(remote))
                continue
            with contextlib.ExitStack() as stack:
                parts = [(n, stack.enter_context(open(os.path.join(folder, n), "rb"))) for n in files]
                uploaded.extend(await self._client._call(core.file_upload(self._id, parts, remote)))
        return uploaded

    async def download(
        self, remote_path: core.PathLike, local_path: Optional[core.PathLike] = None
    ) -> pathlib.Path:
        _, name = core.split_remote(remote_path)
        local = pathlib.Path(local_path) if local_path is not None else pathlib.Path(name)
        if local.is_dir():
            local = local / name
        local.parent.mkdir(parents=True, exist_ok=True)
        call = core.file_read(self._id, remote_path)
        response = await self._client._send(call, stream=True)
        tmp = local.with_name(local.name + ".part")
        try:
            with open(tmp, "wb") as out:
                async for block in response.aiter_bytes():
                    out.write(block)
            os.replace(tmp, local)
        except httpx.HTTPError as exc:
            raise core.transport_error(exc, response.request) from exc
        finally:
            await response.aclose()
            if tmp.exists():
                tmp.unlink()
        return local


class AsyncPackages:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def install(
        self, *names: Union[str, Sequence[str]], upgrade: bool = False, requirements: Optional[str] = None
    ) -> List[PackageInfo]:
        call = core.packages_install(self._session.id, core.flatten_names(names), upgrade, requirements)
        return await self._session.client._call(call)

    async def list(self) -> List[PackageInfo]:
        return await self._session.client._call(core.packages_list(self._session.id))

    async def uninstall(self, name: str) -> None:
        await self._session.client._call(core.packages_uninstall(self._session.id, name))

    async def is_installed(self, name: str) -> bool:
        return core.package_matches(await self.list(), name)


class AsyncEnv:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self) -> Dict[str, str]:
        return await self._session.client._call(core.env_get(self._session.id))

    async def set(self, env: Mapping[str, Any]) -> Dict[str, str]:
        return await self._session.client._call(core.env_put(self._session.id, env))

    async def update(self, env: Optional[Mapping[str, Any]] = None, **more: Any) -> Dict[str, str]:
        current = await self.get()
        current.update({str(k): str(v) for k, v in (env or {}).items()})
        current.update({k: str(v) for k, v in more.items()})
        return await self.set(current)

    async def unset(self, *keys: str) -> Dict[str, str]:
        current = await self.get()
        for key in keys:
            current.pop(key, None)
        return await self.set(current)
