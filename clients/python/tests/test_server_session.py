"""Sessions: state, figures, commands, streaming, packages, env and lifecycle, against a real
Sandpit server (see conftest.py). One Python session (``py``) is shared by the module."""

import time
from datetime import datetime, timezone

import pytest

import sandpit
from sandpit.models import PNG_MAGIC

pytestmark = pytest.mark.server


def test_state_across_execute_calls(py):
    r = py.execute("x = 41")
    assert r.success, r.error
    r = py.execute("print(x + 1)")
    assert r.stdout == "42\n"
    r = py.execute("x + 1")
    assert r.text == "42"


def test_execute_error_is_in_the_result(py):
    r = py.execute("1 / 0")
    assert not r.success
    assert r.error is not None and r.error.name == "ZeroDivisionError"
    assert "division by zero" in r.error.value
    # the kernel lives on
    assert py.execute("'still here'").text == "'still here'"


def test_matplotlib_figure_is_one_png(py):
    r = py.execute(
        "import matplotlib\n"
        "import matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots()\n"
        "ax.plot([1, 2, 3], [1, 4, 9])\n"
    )
    assert r.success, r.error
    assert len(r.images) == 1, r.results
    assert r.images[0][:8] == PNG_MAGIC


def test_run_in_session_with_stdin_args_env(py):
    r = py.run(
        "import os, sys\nprint(input(), sys.argv[1:], os.environ.get('K'))",
        stdin="line\n",
        args=["a"],
        env={"K": "v"},
    )
    assert r.stdout == "line ['a'] v\n" and r.success


def test_command(py):
    r = py.command("echo hi && echo err >&2")
    assert (r.stdout, r.stderr, r.exit_code) == ("hi\n", "err\n", 0)
    r = py.run_command("cat", stdin="from stdin")
    assert r.stdout == "from stdin"
    assert py.command("exit 4").exit_code == 4


def test_run_stream_yields_chunks_before_the_result(py):
    code = "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.3)\n"
    stream = py.run_stream(code)
    seen = []
    for chunk in stream:
        assert isinstance(chunk, sandpit.Chunk)
        seen.append((time.monotonic(), chunk, stream.result))
    assert seen, "no output event came before the result"
    assert all(result is None for _, _, result in seen)
    assert "".join(c.text for _, c, _ in seen if c.stream == "stdout") == "0\n1\n2\n"
    # streamed while running: the first chunk came well before the last
    assert seen[-1][0] - seen[0][0] > 0.3
    assert isinstance(stream.result, sandpit.RunResult)
    assert stream.result.stdout == "0\n1\n2\n" and stream.result.exit_code == 0


def test_execute_and_command_streams(py):
    stream = py.execute_stream("print('a'); print('b')\n6 * 7")
    text = "".join(c.text for c in stream)
    assert text == "a\nb\n"
    assert isinstance(stream.result, sandpit.ExecuteResult) and stream.result.text == "42"
    stream = py.command_stream("echo one; echo two >&2")
    chunks = list(stream)
    assert {c.stream for c in chunks} == {"stdout", "stderr"}
    assert stream.result.exit_code == 0


def test_stream_left_early_does_not_break_the_session(py):
    with py.run_stream("import time\nfor i in range(100):\n    print(i, flush=True)\n    time.sleep(0.1)") as stream:
        for chunk in stream:
            break
    assert py.execute("1 + 1").text == "2"


def test_env_set_then_seen_by_run(py):
    py.env.set({"GREETING": "hello", "OTHER": "x"})
    env = py.env.get()
    assert env["GREETING"] == "hello" and env["OTHER"] == "x"
    assert py.run("import os; print(os.environ['GREETING'])").stdout == "hello\n"
    assert py.command("echo $GREETING").stdout == "hello\n"
    py.env.update(GREETING="hi")
    py.env.unset("OTHER")
    env = py.env.get()
    assert env["GREETING"] == "hi" and "OTHER" not in env
    assert py.run("import os; print(os.environ['GREETING'], 'OTHER' in os.environ)").stdout == "hi False\n"
    py.env.set({})


def test_packages_install_and_list(py):
    # tabulate is not in the default Python image (six is, through Debian's packages)
    installed = py.packages.install("tabulate")
    assert isinstance(installed, list)
    assert py.packages.is_installed("tabulate")
    assert "tabulate" in {p.name.lower() for p in py.packages.list()}
    r = py.run("from tabulate import tabulate; print(tabulate([[1, 2]]))")
    assert r.success and "1  2" in r.stdout


def test_info_usage_and_set_timeout(py):
    info = py.info()
    assert info.id == py.id and info.language == "python" and info.state == "running"
    assert info.usage is not None and info.usage.memory_limit_bytes
    updated = py.set_timeout(3600)
    assert updated.expires_at is not None
    # the server runs on this machine: its clock is ours
    left = (updated.expires_at - datetime.now(timezone.utc)).total_seconds()
    assert 3600 - 120 < left <= 3600 + 5, updated.expires_at
    assert py.info().expires_at == updated.expires_at


def test_list_sessions_filters(client, py):
    ids = [s.id for s in client.list_sessions(language="python", metadata={"suite": "python-client"})]
    assert py.id in ids
    assert py.id not in [s.id for s in client.list_sessions(metadata={"suite": "another"})]


def test_named_session_is_get_or_create_and_closed_after_with(client, unique):
    with client.session("python", name=unique, run_timeout=20) as s:
        assert s.created and s.name == unique
        again = client.session("python", name=unique)
        assert again.id == s.id and not again.created
        assert client.get_session(s.id).id == s.id
    assert s.closed
    with pytest.raises(sandpit.NotFound):
        client.get_session(s.id)
    assert s.id not in [x.id for x in client.list_sessions(name=unique)]
    assert s.close() is False


def test_session_closed_after_with_even_on_error(client):
    with pytest.raises(RuntimeError):
        with client.session("python") as s:
            raise RuntimeError("boom")
    with pytest.raises(sandpit.NotFound):
        client.get_session(s.id)


def test_calls_on_a_closed_session_are_not_found(client):
    s = client.session("python")
    assert s.kill() is True
    with pytest.raises(sandpit.NotFound):
        s.execute("1")
