"""One-shot runs, errors and health, against a real Sandpit server (see conftest.py)."""

import pytest

import sandpit

pytestmark = pytest.mark.server

# shaped like the spec's ids (12 hex digits), so a server that checks the shape still says 404
MISSING_ID = "0000deadbeef"

HELLO = {
    "python": "print(6*7)",
    "java": (
        "public class Main {\n"
        "    public static void main(String[] args) {\n"
        "        System.out.println(6 * 7);\n"
        "    }\n"
        "}\n"
    ),
    "javascript": "console.log(6*7)",
    "cpp": "#include <iostream>\nint main() {\n    std::cout << 6 * 7 << std::endl;\n    return 0;\n}\n",
    "go": 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println(6 * 7)\n}\n',
    "ruby": "puts 6*7",
}


@pytest.mark.parametrize("language", sorted(HELLO))
def test_one_shot_run_in_every_language(client, language):
    r = client.run(language, HELLO[language], timeout=60)
    assert isinstance(r, sandpit.RunResult)
    assert r.stdout.strip() == "42", (r.stdout, r.stderr, r.compile)
    assert r.exit_code == 0 and r.success and not r.timed_out
    assert r.text == r.stdout


def test_one_shot_stdin_and_args(client):
    r = client.run("python", "import sys; print(input()[::-1], sys.argv[1:])", stdin="abc\n", args=["x", "y z"])
    assert r.stdout == "cba ['x', 'y z']\n"


def test_one_shot_with_libraries(client):
    r = client.run("python", "import tabulate; print(tabulate.__name__)", libraries=["tabulate"])
    assert r.stdout == "tabulate\n", r.stderr


def test_failing_program_is_a_result_not_an_error(client):
    r = client.run("python", "import sys; print('bye', file=sys.stderr); sys.exit(3)")
    assert r.exit_code == 3 and not r.success and r.stderr == "bye\n"


def test_compile_error_comes_back_in_compile(client):
    r = client.run("cpp", "int main() { return undefined_name; }")
    assert not r.success
    assert r.compile is not None and r.compile.exit_code != 0
    assert "undefined_name" in r.compile.stderr


def test_program_timeout_is_timed_out_not_an_error(client):
    r = client.run("python", "while True: pass", timeout=1)
    assert r.timed_out and not r.success


def test_unknown_language_is_invalid_input(client):
    with pytest.raises(sandpit.InvalidInput) as info:
        client.run("cobol", "DISPLAY 'HI'.")
    assert info.value.status == 400 and info.value.kind == "invalid_input"
    with pytest.raises(sandpit.InvalidInput):
        client.session("cobol")


def test_wrong_key_is_unauthorized(server_config):
    url, _ = server_config
    with sandpit.Client(url, api_key="sp_not_a_real_key") as bad:
        with pytest.raises(sandpit.Unauthorized) as info:
            bad.list_sessions()
        assert info.value.status == 401
        with pytest.raises(sandpit.Unauthorized):
            bad.run("python", "print(1)")


def test_missing_key_is_unauthorized(server_config, monkeypatch):
    url, _ = server_config
    monkeypatch.delenv("SANDPIT_API_KEY", raising=False)
    with sandpit.Client(url, api_key="") as bad:
        with pytest.raises(sandpit.Unauthorized):
            bad.list_sessions()


def test_unknown_session_is_not_found(client):
    with pytest.raises(sandpit.NotFound) as info:
        client.get_session(MISSING_ID)
    assert info.value.status == 404


def test_health_needs_no_key(server_config):
    url, _ = server_config
    with sandpit.Client(url, api_key="") as anonymous:
        h = anonymous.health()
    assert h.ok, h
    assert h.engine.get("kind")


def test_client_from_environment(server_config, monkeypatch):
    url, key = server_config
    monkeypatch.setenv("SANDPIT_URL", url)
    monkeypatch.setenv("SANDPIT_API_KEY", key)
    with sandpit.Client() as c:
        assert c.run("python", "print('env')").stdout == "env\n"
