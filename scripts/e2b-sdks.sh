# shellcheck shell=bash
# E2B's own SDKs, unchanged, for tests/it/e2b*.rs (docs/compat.md, "E2B"). Sourced by
# scripts/test.sh.
#
#   ensure_e2b_sdks   installs, once, into $SANDPIT_E2B_DIR (default /var/cache/sandpit-e2b):
#                       - venv/      Python e2b + e2b-code-interpreter, the newest releases
#                                    checked against Sandpit (_e2b_pip_new);
#                       - venv-v1/   the older pair that still creates with POST /sandboxes
#                                    (_e2b_pip_old);
#                       - node_modules/  npm e2b + @e2b/code-interpreter (_e2b_npm);
#                     then exports SANDPIT_E2B_PYTHON, SANDPIT_E2B_PYTHON_V1 and
#                     SANDPIT_E2B_NODE_PATH, which the tests read. A second call finds the stamp
#                     files and returns at once.
#
# To move to newer SDK releases, change the versions below: the stamps make the next call
# install them.
#
# Both registries may sit behind a TLS-intercepting proxy: npm gets NODE_EXTRA_CA_CERTS and pip
# PIP_CERT (the host's bundle, /etc/ssl/certs/ca-certificates.crt, unless already set).

_e2b_pip_new="e2b==2.63.0 e2b-code-interpreter==2.11.5"
_e2b_pip_old="e2b==2.30.0 e2b-code-interpreter==2.9.0"
_e2b_npm="e2b@2.51.0 @e2b/code-interpreter@2.8.0"

# Installs Debian packages when a command is missing (root only).
_e2b_need() {
    local cmd=$1
    shift
    command -v "$cmd" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "e2b-sdks.sh: $cmd is missing; install $* (apt-get install $*)" >&2
        return 1
    fi
    echo "e2b-sdks.sh: installing $* for $cmd"
    apt-get update >/dev/null || echo "e2b-sdks.sh: apt-get update reported errors; trying the install anyway" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" || return 1
    command -v "$cmd" >/dev/null 2>&1
}

# _e2b_venv DIR SPEC: a venv in DIR holding SPEC, unless its stamp says so already.
_e2b_venv() {
    local dir=$1 spec=$2 python=$3
    local ca=/etc/ssl/certs/ca-certificates.crt
    if [ "$(cat "$dir.stamp" 2>/dev/null)" = "$spec" ] && [ -x "$dir/bin/python" ]; then
        return 0
    fi
    echo "e2b-sdks.sh: pip install $spec into $dir"
    if [ ! -x "$dir/bin/python" ]; then
        "$python" -m venv "$dir" || {
            echo "e2b-sdks.sh: $python cannot make a venv (Debian: apt-get install python3-venv)" >&2
            return 1
        }
    fi
    # shellcheck disable=SC2086 # the spec is a list of requirements
    PIP_CERT=${PIP_CERT:-$ca} "$dir/bin/pip" install --quiet --disable-pip-version-check $spec || {
        echo "e2b-sdks.sh: pip could not install $spec" >&2
        return 1
    }
    printf '%s' "$spec" >"$dir.stamp"
}

ensure_e2b_sdks() {
    local dir=${SANDPIT_E2B_DIR:-/var/cache/sandpit-e2b}
    local ca=/etc/ssl/certs/ca-certificates.crt
    local python
    _e2b_need node nodejs || return 1
    _e2b_need npm npm || return 1
    # The SDKs need Python 3.11 or newer (Debian bookworm's python3 is 3.11): the first
    # interpreter that runs and is new enough.
    _e2b_need python3 python3 python3-venv || return 1
    python=
    for candidate in python3 python3.11 python3.12 python3.13; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            python=$(command -v "$candidate")
            break
        fi
    done
    if [ -z "$python" ]; then
        echo "e2b-sdks.sh: no Python 3.11 or newer runs here, which E2B's SDKs need" >&2
        return 1
    fi
    mkdir -p "$dir" || return 1

    _e2b_venv "$dir/venv" "$_e2b_pip_new" "$python" || return 1
    _e2b_venv "$dir/venv-v1" "$_e2b_pip_old" "$python" || return 1

    if [ "$(cat "$dir/npm.stamp" 2>/dev/null)" != "$_e2b_npm" ] \
        || [ ! -f "$dir/node_modules/@e2b/code-interpreter/package.json" ]; then
        echo "e2b-sdks.sh: npm install $_e2b_npm into $dir"
        # shellcheck disable=SC2086 # the spec is a list of packages
        NODE_EXTRA_CA_CERTS=${NODE_EXTRA_CA_CERTS:-$ca} npm install --prefix "$dir" \
            --no-audit --no-fund --loglevel=error $_e2b_npm || {
            echo "e2b-sdks.sh: npm could not install $_e2b_npm" >&2
            return 1
        }
        printf '%s' "$_e2b_npm" >"$dir/npm.stamp"
    fi

    export SANDPIT_E2B_PYTHON="$dir/venv/bin/python"
    export SANDPIT_E2B_PYTHON_V1="$dir/venv-v1/bin/python"
    export SANDPIT_E2B_NODE_PATH="$dir/node_modules"
    echo "E2B SDKs: SANDPIT_E2B_PYTHON=$SANDPIT_E2B_PYTHON SANDPIT_E2B_PYTHON_V1=$SANDPIT_E2B_PYTHON_V1 SANDPIT_E2B_NODE_PATH=$SANDPIT_E2B_NODE_PATH"
}
