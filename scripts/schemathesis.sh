#!/usr/bin/env bash
# Property-based test of a running `sandpit serve` with schemathesis (PyPI): every operation of
# URL/openapi.json is called with generated requests, and any 5xx (or a dropped connection) is
# a failure. Bounded: a modest number of examples per operation, so it ends in minutes.
#
#   source scripts/schemathesis.sh && run_schemathesis http://127.0.0.1:9501 sp_...
#   scripts/schemathesis.sh http://127.0.0.1:9501 sp_...          # the same, as a command
#
# Environment: SCHEMATHESIS_VENV (where it is installed once; default
# ~/.cache/sandpit/schemathesis), SCHEMATHESIS_VERSION (default 4.32.5), SCHEMATHESIS_EXAMPLES
# (per operation; default 25), SCHEMATHESIS_SEED (default 1, so a run can be repeated),
# PIP_CERT (default /etc/ssl/certs/ca-certificates.crt when it exists: PyPI may be reached
# through a TLS-intercepting proxy). Exits non-zero when a check failed.

# Installs schemathesis into its own virtual environment, once.
schemathesis_install() {
    local venv="${SCHEMATHESIS_VENV:-$HOME/.cache/sandpit/schemathesis}"
    local version="${SCHEMATHESIS_VERSION:-4.32.5}"
    if [ -x "$venv/bin/schemathesis" ] \
        && "$venv/bin/python" -c "import importlib.metadata as m; assert m.version('schemathesis') == '$version'" 2>/dev/null; then
        echo "$venv"
        return 0
    fi
    if ! command -v python3 >/dev/null 2>&1; then
        echo "schemathesis: python3 is missing; install it (apt-get install python3 python3-venv)" >&2
        return 2
    fi
    if [ -z "${PIP_CERT:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
        export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
    fi
    echo "schemathesis: installing schemathesis $version into $venv" >&2
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv" >&2 || {
        echo "schemathesis: cannot make a virtual environment (apt-get install python3-venv)" >&2
        return 2
    }
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$version" >&2 || {
        echo "schemathesis: pip could not install schemathesis $version from PyPI" >&2
        return 2
    }
    echo "$venv"
}

# One schemathesis run; extra arguments are passed on. Output goes to the file $1.
_schemathesis_pass() {
    local log="$1" venv="$2" url="$3" key="$4"
    shift 4
    local examples="${SCHEMATHESIS_EXAMPLES:-25}" seed="${SCHEMATHESIS_SEED:-1}"
    # Only server errors are failures here (the Rust tests check the answers' shapes);
    # examples, coverage and fuzzing phases (the document declares no links for stateful).
    # From a folder of its own: schemathesis keeps a cache in the working folder.
    (cd "$(dirname "$log")" && "$venv/bin/schemathesis" "$@" run "$url/openapi.json" \
        --url "$url" \
        --header "Authorization: Bearer $key" \
        --checks not_a_server_error \
        --max-examples "$examples" \
        --seed "$seed" \
        --phases examples,coverage,fuzzing \
        --request-timeout 120 \
        --workers 2 \
        --no-color \
        --generation-database none \
        "${SCHEMATHESIS_FILTERS[@]}" \
        >"$log" 2>&1)
}

# Opens a Python session with KEY at URL; prints its id.
_schemathesis_session() {
    python3 - "$1" "$2" <<'PY'
import json, sys, urllib.request
url, key = sys.argv[1], sys.argv[2]
req = urllib.request.Request(url + "/v1/sessions", data=b'{"language": "python"}', method="POST",
                             headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req, timeout=120))["id"])
PY
}

# run_schemathesis URL KEY: checks that no generated request gets a 5xx; prints a summary.
# Two passes: every operation (ids it learns from answers, such as the session list, reach
# real sessions), then the session routes on one session opened for it (closing and changing
# that session left out, so it lasts the pass).
run_schemathesis() {
    local url="${1:?usage: run_schemathesis URL KEY}"
    local key="${2:?usage: run_schemathesis URL KEY}"
    url="${url%/}"
    local venv
    venv="$(schemathesis_install)" || return $?
    local dir
    dir="$(mktemp -d -t schemathesis.XXXXXX)"
    local started=$SECONDS status=0 second=0 session
    echo "schemathesis: $url/openapi.json, ${SCHEMATHESIS_EXAMPLES:-25} examples per operation, seed ${SCHEMATHESIS_SEED:-1}" >&2
    SCHEMATHESIS_FILTERS=()
    _schemathesis_pass "$dir/all.log" "$venv" "$url" "$key" || status=$?
    cat "$dir/all.log"
    if session="$(_schemathesis_session "$url" "$key")"; then
        echo "schemathesis: again, the session routes on session $session" >&2
        printf '[parameters]\n"path.id" = "%s"\n' "$session" >"$dir/session.toml"
        SCHEMATHESIS_FILTERS=(--include-path-regex '^/v1/sessions/\{id\}'
            --exclude-name 'DELETE /v1/sessions/{id}' --exclude-name 'PATCH /v1/sessions/{id}')
        _schemathesis_pass "$dir/session.log" "$venv" "$url" "$key" --config-file "$dir/session.toml" || second=$?
        cat "$dir/session.log"
    else
        echo "schemathesis: could not open a session for the second pass" >&2
        second=1
    fi
    local failures
    failures="$(cat "$dir"/*.log | grep -cE '^- ST[0-9]+ ' || true)"
    echo "schemathesis: summary: every operation: exit $status; session routes on one session: exit $second; ${failures:-0} failures listed; $((SECONDS - started)) s"
    grep -hE '^ +[0-9]+ generated' "$dir"/*.log | sed 's/^ */schemathesis:   test cases: /' || true
    rm -rf "$dir"
    [ "$status" -eq 0 ] && [ "$second" -eq 0 ]
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    run_schemathesis "$@"
fi
