"""What the client sends for each call, and how it reads canned answers shaped like the spec's.

These tests check the client against docs/http-api.md, not the server: the answers come from
httpx's own in-process transport (part of httpx, no mocking library). The server itself is
tested in the test_server_*.py files.
"""

import asyncio
import json
import socket

import httpx
import pytest

import sandpit

SESSION = {
    "id": "4f0c9a1b2c3d",
    "name": None,
    "language": "python",
    "image": "sandpit/python:latest",
    "state": "running",
    "runtime": None,
    "network": "none",
    "created_at": "2026-11-27T20:00:00Z",
    "expires_at": "2026-11-28T02:00:00Z",
    "idle_timeout": 1800,
    "last_used_at": "2026-11-27T20:00:00Z",
    "metadata": {},
    "libraries": [],
}
RUN = {"stdout": "42\n", "stderr": "", "exit_code": 0, "timed_out": False, "truncated": False,
       "oom_killed": False, "duration_ms": 90, "compile": None, "artifacts": [], "cpu_ms": 41,
       "memory_peak_bytes": 9437184}
FILE = {"name": "in.txt", "path": "data/in.txt", "kind": "file", "size": 2, "mode": "644",
        "modified": "2026-11-27T20:00:00Z"}
SID = SESSION["id"]
BASE = f"/v1/sessions/{SID}"


class Server:
    """Canned answers by (method, raw path); records every request."""

    def __init__(self):
        self.routes = {}
        self.requests = []

    def on(self, method, path, status=200, body=None, content=None, headers=None):
        self.routes[(method, path)] = (status, body, content, headers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        key = (request.method, request.url.raw_path.decode().split("?")[0])
        if key not in self.routes:
            return httpx.Response(404, json={"error": "not_found", "message": f"no route {key}"})
        status, body, content, headers = self.routes[key]
        if body is not None:
            return httpx.Response(status, json=body, headers=headers)
        return httpx.Response(status, content=content or b"", headers=headers)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def client(self, **kw):
        return sandpit.Client("http://sandpit.test", api_key="sp_test", transport=httpx.MockTransport(self), **kw)

    def async_client(self, **kw):
        return sandpit.AsyncClient("http://sandpit.test", api_key="sp_test", transport=httpx.MockTransport(self), **kw)


def body(request):
    return json.loads(request.content)


def read_timeout(request):
    return request.extensions["timeout"]["read"]


@pytest.fixture
def server():
    s = Server()
    s.on("POST", "/v1/sessions", 201, SESSION)
    s.on("GET", BASE, 200, SESSION)
    s.on("DELETE", BASE, 204)
    return s


def sse(*events):
    out = []
    for name, data in events:
        out.append(f"event: {name}\ndata: {json.dumps(data)}\n\n")
    return "".join(out).encode()


# ---------------------------------------------------------------- configuration


def test_key_and_url_from_environment(monkeypatch, server):
    monkeypatch.setenv("SANDPIT_URL", "http://from-env.test:9501/")
    monkeypatch.setenv("SANDPIT_API_KEY", "sp_env")
    c = sandpit.Client(transport=httpx.MockTransport(server))
    assert c.base_url == "http://from-env.test:9501" and c.api_key == "sp_env"
    server.on("GET", "/health", 200, {"status": "ok", "engine": {}, "version": "1"})
    assert c.health().ok
    assert server.last.headers["authorization"] == "Bearer sp_env"
    assert server.last.url.host == "from-env.test"


def test_default_url(monkeypatch):
    monkeypatch.delenv("SANDPIT_URL", raising=False)
    monkeypatch.delenv("SANDPIT_API_KEY", raising=False)
    c = sandpit.Client()
    assert c.base_url == "http://127.0.0.1:9501" and c.api_key is None


# ---------------------------------------------------------------- running code


def test_one_shot_run(server):
    server.on("POST", "/v1/run", 200, RUN)
    c = server.client()
    r = c.run("python", "print(6*7)", timeout=5)
    assert r.stdout == "42\n" and r.success
    req = server.last
    assert body(req) == {"language": "python", "code": "print(6*7)", "timeout": 5}
    assert req.headers["authorization"] == "Bearer sp_test"
    # the code's timeout + margin + time to open a sandbox
    assert read_timeout(req) == 5 + 30 + 600


def test_session_options_and_created_flag(server):
    c = server.client()
    s = c.session("python", name="n1", libraries=("six",), env={"N": 1}, memory="512m", cpus=1.5,
                  timeout=3600, run_timeout=7, metadata={"user": "alice"})
    assert s.created and s.id == SID and s.language == "python"
    assert body(server.last) == {"language": "python", "name": "n1", "libraries": ["six"],
                                 "env": {"N": "1"}, "memory": "512m", "cpus": 1.5, "timeout": 3600,
                                 "run_timeout": 7, "metadata": {"user": "alice"}}
    server.on("POST", "/v1/sessions", 200, SESSION)
    assert not c.session("python", name="n1").created
    with pytest.raises(TypeError):
        c.session("python", colour="blue")


def test_run_execute_command_bodies_and_timeouts(server):
    server.on("POST", f"{BASE}/run", 200, RUN)
    server.on("POST", f"{BASE}/execute", 200, {"results": [{"text/plain": "42"}], "error": None})
    server.on("POST", f"{BASE}/commands", 200, {"stdout": "hi\n", "exit_code": 0})
    c = server.client()
    s = c.session("python", run_timeout=120)
    s.run("print(1)", stdin="in", args=["a"], env={"K": "v"})
    assert body(server.last) == {"code": "print(1)", "stdin": "in", "args": ["a"], "env": {"K": "v"}}
    assert read_timeout(server.last) == 120 + 30  # the session's run_timeout + margin
    s.run("print(1)", libraries=["six"], timeout=2)
    assert read_timeout(server.last) == max(60, 2 + 30 + 600)
    assert s.execute("x + 1", timeout=300).text == "42"
    assert body(server.last) == {"code": "x + 1", "timeout": 300}
    assert read_timeout(server.last) == 330
    assert s.command("echo hi", stdin="x").stdout == "hi\n"
    assert body(server.last) == {"command": "echo hi", "stdin": "x"}
    assert s.run_command("echo hi").exit_code == 0


def test_attached_session_without_known_run_timeout_waits_default_plus_margin(server):
    server.on("POST", f"{BASE}/execute", 200, {"results": []})
    s = server.client().get_session(SID)
    s.execute("1")
    assert read_timeout(server.last) == 60 + 30


# ---------------------------------------------------------------- sessions


def test_list_sessions_filters(server):
    server.on("GET", "/v1/sessions", 200, {"sessions": [SESSION]})
    c = server.client()
    got = c.list_sessions(language="python", name=["a", "b"], metadata={"user": "alice"})
    assert [s.id for s in got] == [SID]
    assert server.last.url.params.multi_items() == [
        ("language", "python"), ("name", "a"), ("name", "b"), ("metadata.user", "alice")]


def test_patch_and_info(server):
    server.on("PATCH", BASE, 200, dict(SESSION, expires_at="2026-11-27T21:00:00Z"))
    server.on("GET", BASE, 200, dict(SESSION, usage={"pids": 3}))
    s = server.client().get_session(SID)
    info = s.set_timeout(3600)
    assert body(server.last) == {"timeout": 3600} and info.expires_at.hour == 21
    assert s.info().usage.pids == 3


def test_with_closes_and_close_is_idempotent(server):
    c = server.client()
    with c.session("python") as s:
        pass
    assert server.last.method == "DELETE" and server.last.url.path == BASE
    assert s.closed and s.close() is False
    server.on("DELETE", BASE, 404, {"error": "not_found", "message": "no"})
    assert c.get_session(SID).kill() is False


def test_error_in_block_is_not_hidden_by_close(server):
    server.on("DELETE", BASE, 500, {"error": "internal", "message": "engine hiccup"})
    c = server.client()
    with pytest.raises(KeyError):
        with c.session("python"):
            raise KeyError("mine")


# ---------------------------------------------------------------- files, packages, env


def test_file_paths_are_encoded_and_dotdot_reaches_the_server(server):
    server.on("PUT", f"{BASE}/files/data/a%20b%3F.bin", 201, FILE)
    server.on("GET", f"{BASE}/files/%2E%2E/etc/passwd", 400, {"error": "invalid_input", "message": "'..' is refused"})
    s = server.client().get_session(SID)
    s.files.write("data/a b?.bin", b"\xff\x00", mode=0o755)
    assert server.last.content == b"\xff\x00"
    assert server.last.url.params["mode"] == "755"
    with pytest.raises(sandpit.InvalidInput):
        s.files.read("../etc/passwd")
    assert server.last.url.raw_path == f"{BASE}/files/%2E%2E/etc/passwd".encode()


def test_text_is_written_as_utf8_and_read_back_as_bytes(server, tmp_path):
    server.on("PUT", f"{BASE}/files/t.txt", 201, FILE)
    server.on("GET", f"{BASE}/files/t.txt", 200, content="héllo".encode(), headers={"content-type": "application/octet-stream"})
    s = server.client().get_session(SID)
    s.files.write("t.txt", "héllo")
    assert server.last.content == "héllo".encode("utf-8")
    assert s.files.read("t.txt") == "héllo".encode()
    assert s.files.read_text("t.txt") == "héllo"
    local = tmp_path / "big.bin"
    local.write_bytes(bytes(range(256)) * 1000)
    with open(local, "rb") as fh:
        s.files.write("t.txt", fh)
    assert server.last.content == local.read_bytes()
    assert server.last.headers["content-length"] == str(256000)


def test_list_exists_info_ops(server):
    server.on("GET", f"{BASE}/files", 200, {"files": [FILE]})
    server.on("POST", f"{BASE}/files/ops", 200, dict(FILE, path="data/out.txt", name="out.txt"))
    s = server.client().get_session(SID)
    assert [f.name for f in s.files.list("data", recursive=True, pattern="*.txt")] == ["in.txt"]
    assert server.last.url.params.multi_items() == [("path", "data"), ("recursive", "true"), ("pattern", "*.txt")]
    s.files.list()
    assert server.last.url.params.multi_items() == []
    assert s.files.exists("data/in.txt") and not s.files.exists("data/other.txt")
    assert s.files.info("data/in.txt").size == 2
    with pytest.raises(sandpit.NotFound):
        s.files.info("data/other.txt")
    assert s.files.move("data/in.txt", "data/out.txt").name == "out.txt"
    assert body(server.last) == {"op": "move", "path": "data/in.txt", "to": "data/out.txt"}
    s.files.mkdir("d")
    assert body(server.last) == {"op": "mkdir", "path": "d"}
    server.on("GET", f"{BASE}/files", 404, {"error": "not_found", "message": "no folder"})
    assert not s.files.exists("nope/x")


def test_upload_multipart_and_download(server, tmp_path):
    server.on("POST", f"{BASE}/files", 201, {"files": [dict(FILE, name="y.bin", path="data/y.bin")]})
    server.on("GET", f"{BASE}/files/data/y.bin", 200, content=b"\x00\xffdata")
    s = server.client().get_session(SID)
    local = tmp_path / "x.bin"
    local.write_bytes(b"\x00\xffdata")
    assert s.files.upload(local, "data/y.bin").path == "data/y.bin"
    req = server.last
    assert req.headers["content-type"].startswith("multipart/form-data")
    assert b'name="file"; filename="y.bin"' in req.content and b"\x00\xffdata" in req.content
    assert b'name="path"' in req.content and b"\r\n\r\ndata\r\n" in req.content
    s.files.upload(local)
    assert b'filename="x.bin"' in server.last.content and b'name="path"' not in server.last.content
    s.files.upload(local, "data/")
    assert b'filename="x.bin"' in server.last.content and b"\r\n\r\ndata\r\n" in server.last.content
    out = s.files.download("data/y.bin", tmp_path / "sub" / "z.bin")
    assert out.read_bytes() == b"\x00\xffdata"
    assert s.files.download("data/y.bin", tmp_path).name == "y.bin"


def test_packages_and_env(server):
    server.on("POST", f"{BASE}/packages", 200, {"installed": [{"name": "six", "version": "1.16.0"}]})
    server.on("GET", f"{BASE}/packages", 200, {"packages": [{"name": "Six", "version": "1.16.0"}]})
    server.on("DELETE", f"{BASE}/packages/six", 204)
    server.on("GET", f"{BASE}/env", 200, {"env": {"A": "1", "B": "2"}})
    server.on("PUT", f"{BASE}/env", 200, {"env": {"A": "1", "C": "3"}})
    s = server.client().get_session(SID)
    assert s.packages.install("six", ["requests==2.31.0"], upgrade=True)[0].version == "1.16.0"
    assert body(server.last) == {"packages": ["six", "requests==2.31.0"], "upgrade": True}
    assert read_timeout(server.last) == 600 + 30  # the install allowance + margin
    assert s.packages.is_installed("six") and s.packages.is_installed("six==1.16.0")
    assert not s.packages.is_installed("six==1.0")
    s.packages.uninstall("six")
    assert server.last.method == "DELETE"
    with pytest.raises(ValueError):
        s.packages.install()
    assert s.env.get() == {"A": "1", "B": "2"}
    s.env.update({"C": 3})
    assert body(server.last) == {"env": {"A": "1", "B": "2", "C": "3"}}
    s.env.unset("B")
    assert body(server.last) == {"env": {"A": "1"}}
    server.on("PUT", f"{BASE}/env", 204)
    assert s.env.set({"X": "y"}) == {"X": "y"}


# ---------------------------------------------------------------- streaming


def test_stream_yields_chunks_then_result(server):
    server.on("POST", f"{BASE}/run", 200, headers={"content-type": "text/event-stream"}, content=sse(
        ("output", {"stream": "stdout", "text": "0\n"}),
        ("output", {"stream": "stderr", "text": "warn\n"}),
        ("output", {"stream": "stdout", "text": "1\n"}),
        ("result", dict(RUN, stdout="0\n1\n", stderr="warn\n")),
    ))
    s = server.client().get_session(SID)
    stream = s.run_stream("for i in range(2): print(i)")
    seen = []
    for chunk in stream:
        seen.append((chunk.stream, chunk.text, stream.result))
    assert seen == [("stdout", "0\n", None), ("stderr", "warn\n", None), ("stdout", "1\n", None)]
    assert isinstance(stream.result, sandpit.RunResult) and stream.result.stdout == "0\n1\n"
    assert server.last.headers["accept"] == "text/event-stream"
    assert stream.text() == "0\nwarn\n1\n"
    assert stream.wait() is stream.result


def test_stream_error_event_raises_its_kind(server):
    server.on("POST", f"{BASE}/execute", 200, headers={"content-type": "text/event-stream"}, content=sse(
        ("output", {"stream": "stdout", "text": "partial"}),
        ("error", {"error": "gone", "message": "container removed"}),
    ))
    s = server.client().get_session(SID)
    stream = s.execute_stream("x")
    with pytest.raises(sandpit.Gone) as info:
        for _ in stream:
            pass
    assert info.value.status == 410 and stream.chunks[0].text == "partial"


def test_stream_answered_with_an_error_status(server):
    server.on("POST", f"{BASE}/commands", 403, {"error": "refused", "message": "strict policy"})
    s = server.client().get_session(SID)
    with pytest.raises(sandpit.Refused):
        list(s.command_stream("ls"))


def test_stream_without_result_or_not_sse_is_a_protocol_error(server):
    s = server.client().get_session(SID)
    server.on("POST", f"{BASE}/run", 200, headers={"content-type": "text/event-stream"},
              content=sse(("output", {"stream": "stdout", "text": "x"})))
    with pytest.raises(sandpit.ProtocolError):
        s.run_stream("x").wait()
    server.on("POST", f"{BASE}/run", 200, RUN)
    with pytest.raises(sandpit.ProtocolError):
        list(s.run_stream("x"))


def test_stream_closed_before_start_sends_nothing(server):
    s = server.client().get_session(SID)
    n = len(server.requests)
    with s.run_stream("x") as stream:
        pass
    assert list(stream) == [] and len(server.requests) == n


# ---------------------------------------------------------------- failures to reach the server


def test_unreachable_server_is_connection_error():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    c = sandpit.Client(f"http://127.0.0.1:{port}", api_key="sp_x")
    with pytest.raises(sandpit.ConnectionError) as info:
        c.run("python", "print(1)")
    assert isinstance(info.value, sandpit.SandpitError) and info.value.status is None


def test_health_unavailable_is_an_answer(server):
    server.on("GET", "/health", 503, {"status": "unavailable", "engine": None, "version": "1"})
    h = server.client().health()
    assert not h.ok and h.status == "unavailable"


# ---------------------------------------------------------------- async


def test_async_client_same_calls(server, tmp_path):
    server.on("POST", "/v1/run", 200, RUN)
    server.on("POST", f"{BASE}/execute", 200, {"results": [{"text/plain": "42"}]})
    server.on("PUT", f"{BASE}/files/a.bin", 201, FILE)
    server.on("GET", f"{BASE}/files/a.bin", 200, content=b"\xfe\xff")
    server.on("POST", f"{BASE}/files", 201, {"files": [FILE]})
    server.on("POST", f"{BASE}/commands", 200, headers={"content-type": "text/event-stream"}, content=sse(
        ("output", {"stream": "stdout", "text": "a"}),
        ("result", {"stdout": "a", "exit_code": 0}),
    ))
    local = tmp_path / "u.bin"
    local.write_bytes(b"\x01\x02")

    async def main():
        async with server.async_client() as c:
            assert (await c.run("python", "print(6*7)")).stdout == "42\n"
            async with c.session("python", run_timeout=5) as s:
                assert s.created and (await s.execute("x + 1")).text == "42"
                assert read_timeout(server.last) == 60  # max(default, 5 + 30)
                await s.files.write("a.bin", b"\xfe\xff")
                assert await s.files.read("a.bin") == b"\xfe\xff"
                with open(local, "rb") as fh:
                    await s.files.write("a.bin", fh)
                assert server.last.content == b"\x01\x02"
                await s.files.upload(local)
                assert b'filename="u.bin"' in server.last.content
                chunks = []
                async with s.command_stream("printf a") as stream:
                    async for chunk in stream:
                        chunks.append((chunk.text, stream.result))
                assert chunks == [("a", None)] and stream.result.exit_code == 0
            assert server.last.method == "DELETE" and s.closed
            s2 = await c.get_session(SID)
            assert s2.id == SID and not s2.created

    asyncio.run(main())


def test_async_errors(server):
    async def main():
        async with server.async_client() as c:
            with pytest.raises(sandpit.NotFound):
                await c.get_session("nope")

    asyncio.run(main())


def test_async_session_used_without_await_says_so(server):
    c = server.async_client()
    opener = c.session("python")
    with pytest.raises(AttributeError, match="await"):
        opener.execute("1")
    asyncio.run(c.close())
