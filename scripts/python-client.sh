# shellcheck shell=bash
# The Python client's tests against a real `sandpit serve`. Sourced by scripts/test.sh.
#
#   run_python_client_tests SANDPIT_BIN   venv with the client and pytest (once), a server on
#                                         a free loopback port with a data folder of its own and
#                                         a key, pytest, then every session closed and the
#                                         server stopped.

_pyclient_venv=/var/cache/sandpit-venvs/python-client

_pyclient_ensure_venv() {
    local root=$1
    if [ ! -x "$_pyclient_venv/bin/python" ]; then
        python3 -m venv "$_pyclient_venv" || return 1
    fi
    # Reinstalled every time: the client is this checkout's.
    PIP_CERT=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt} "$_pyclient_venv/bin/pip" install \
        --quiet --disable-pip-version-check "$root/clients/python" "pytest>=7" || return 1
}

run_python_client_tests() {
    local bin=$1 root data port url key pid rc=0
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    _pyclient_ensure_venv "$root" || { echo "python-client: cannot make the venv" >&2; return 1; }
    data=$(mktemp -d /tmp/sandpit-pyclient.XXXXXX)
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    url="http://127.0.0.1:$port"
    key=$("$bin" keys add --name python-client --data-dir "$data" 2>/dev/null) || return 1
    SANDPIT_POOL=python=1 "$bin" serve --addr "127.0.0.1:$port" --data-dir "$data" >"$data/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 120); do
        curl -fsS "$url/health" >/dev/null 2>&1 && break
        kill -0 "$pid" 2>/dev/null || { echo "python-client: sandpit serve exited:" >&2; cat "$data/server.log" >&2; return 1; }
        sleep 0.5
    done
    (cd "$root/clients/python" && SANDPIT_URL=$url SANDPIT_API_KEY=$key "$_pyclient_venv/bin/python" -m pytest -q) || rc=$?
    # Whatever a failed test left open is closed before the server stops.
    local ids
    ids=$(curl -fsS -H "Authorization: Bearer $key" "$url/v1/sessions" \
        | python3 -c 'import json, sys; print(" ".join(s["id"] for s in json.load(sys.stdin)["sessions"]))' 2>/dev/null)
    for id in $ids; do
        curl -fsS -X DELETE -H "Authorization: Bearer $key" "$url/v1/sessions/$id" >/dev/null || true
    done
    kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    [ "$rc" = 0 ] || { echo "python-client: server log:" >&2; tail -n 40 "$data/server.log" >&2; }
    rm -rf "$data"
    return "$rc"
}
