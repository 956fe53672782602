"""Fixtures for the tests against a real Sandpit server.

The test_server_*.py tests need ``SANDPIT_URL`` and ``SANDPIT_API_KEY`` (scripts/test.sh
starts ``sandpit serve`` and makes a key). Without ``SANDPIT_URL`` they FAIL, so that a
forgotten server never passes for a green run; ``SANDPIT_SKIP_PYTHON_CLIENT=1`` skips them
instead. The test_unit_*.py tests need no server.
"""

import os
import uuid

import pytest

import sandpit

NO_SERVER = (
    "SANDPIT_URL is not set: the Python client's server tests need a running Sandpit server. "
    "Start one (`sandpit serve`), make a key (`sandpit keys add`), and export SANDPIT_URL "
    "(e.g. http://127.0.0.1:9501) and SANDPIT_API_KEY; scripts/test.sh does all of that. "
    "Set SANDPIT_SKIP_PYTHON_CLIENT=1 to skip these tests instead, or run only the unit "
    "tests with `pytest -m 'not server'`."
)
NO_KEY = (
    "SANDPIT_API_KEY is not set: the server tests need a key made with `sandpit keys add` "
    "(SANDPIT_URL is {url})."
)


def _skipping() -> bool:
    return os.environ.get("SANDPIT_SKIP_PYTHON_CLIENT", "") not in ("", "0")


@pytest.fixture(scope="session")
def server_config():
    """(url, key) of the server under test; fails the test when none is configured."""
    if _skipping():
        pytest.skip("SANDPIT_SKIP_PYTHON_CLIENT is set")
    url = os.environ.get("SANDPIT_URL", "").strip()
    if not url:
        pytest.fail(NO_SERVER, pytrace=False)
    key = os.environ.get("SANDPIT_API_KEY", "").strip()
    if not key:
        pytest.fail(NO_KEY.format(url=url), pytrace=False)
    return url, key


@pytest.fixture(scope="module")
def client(server_config):
    url, key = server_config
    with sandpit.Client(url, api_key=key) as c:
        yield c


@pytest.fixture(scope="module")
def py(client):
    """One Python session shared by a module's tests whose state does not matter."""
    with client.session("python", metadata={"suite": "python-client"}) as s:
        yield s


@pytest.fixture
def unique():
    return "pyclient-" + uuid.uuid4().hex[:10]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _skipping() or os.environ.get("SANDPIT_URL", "").strip():
        return
    selected = [
        item
        for item in getattr(terminalreporter, "stats", {}).get("error", [])
        + getattr(terminalreporter, "stats", {}).get("failed", [])
        if "server" in getattr(item, "keywords", {})
    ]
    if selected:
        terminalreporter.write_line("")
        terminalreporter.write_line("sandpit: " + NO_SERVER, red=True, bold=True)
