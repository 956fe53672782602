# shellcheck shell=bash
# The real clients of the compatibility APIs (docs/compat.md §4), for tests/it/compat.rs.
# Sourced by scripts/test.sh.
#
#   ensure_compat_clients   installs, once, into $SANDPIT_CLIENTS_DIR (default
#                           /var/cache/sandpit-clients):
#                             - npm's piston-client 1.0.2 (node_modules/),
#                             - a venv with aio-piston 1.0.0, aiohttp and requests (venv/);
#                           then exports SANDPIT_NODE_PATH (that node_modules folder) and
#                           SANDPIT_PYTHON (the venv's python), which the tests read.
#                           A second call finds the stamp files and returns at once.
#
# Both registries may sit behind a TLS-intercepting proxy: npm gets NODE_EXTRA_CA_CERTS and pip
# PIP_CERT (the host's bundle, /etc/ssl/certs/ca-certificates.crt, unless already set).

_clients_npm_spec="piston-client@1.0.2"
_clients_pip_spec="aio-piston==1.0.0 aiohttp==3.14.5 requests==2.34.2"

# Installs Debian packages when a command is missing (root only).
_clients_need() {
    local cmd=$1
    shift
    command -v "$cmd" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "clients.sh: $cmd is missing; install $* (apt-get install $*)" >&2
        return 1
    fi
    echo "clients.sh: installing $* for $cmd"
    apt-get update >/dev/null || echo "clients.sh: apt-get update reported errors; trying the install anyway" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" || return 1
    command -v "$cmd" >/dev/null 2>&1
}

ensure_compat_clients() {
    local dir=${SANDPIT_CLIENTS_DIR:-/var/cache/sandpit-clients}
    local ca=/etc/ssl/certs/ca-certificates.crt
    local python
    _clients_need node nodejs || return 1
    _clients_need npm npm || return 1
    python=$(command -v python3.11 || command -v python3 || true)
    if [ -z "$python" ]; then
        _clients_need python3 python3 python3-venv || return 1
        python=$(command -v python3)
    fi
    mkdir -p "$dir" || return 1

    if [ "$(cat "$dir/npm.stamp" 2>/dev/null)" != "$_clients_npm_spec" ] \
        || [ ! -f "$dir/node_modules/piston-client/package.json" ]; then
        echo "clients.sh: npm install $_clients_npm_spec into $dir"
        NODE_EXTRA_CA_CERTS=${NODE_EXTRA_CA_CERTS:-$ca} npm install --prefix "$dir" \
            --no-audit --no-fund --loglevel=error "$_clients_npm_spec" || {
            echo "clients.sh: npm could not install $_clients_npm_spec" >&2
            return 1
        }
        printf '%s' "$_clients_npm_spec" >"$dir/npm.stamp"
    fi

    if [ "$(cat "$dir/pip.stamp" 2>/dev/null)" != "$_clients_pip_spec" ] \
        || [ ! -x "$dir/venv/bin/python" ]; then
        echo "clients.sh: pip install $_clients_pip_spec into $dir/venv"
        if [ ! -x "$dir/venv/bin/python" ]; then
            "$python" -m venv "$dir/venv" || {
                echo "clients.sh: $python cannot make a venv (Debian: apt-get install python3-venv)" >&2
                return 1
            }
        fi
        # shellcheck disable=SC2086 # the spec is a list of requirements
        PIP_CERT=${PIP_CERT:-$ca} "$dir/venv/bin/pip" install --quiet \
            --disable-pip-version-check $_clients_pip_spec || {
            echo "clients.sh: pip could not install $_clients_pip_spec" >&2
            return 1
        }
        printf '%s' "$_clients_pip_spec" >"$dir/pip.stamp"
    fi

    export SANDPIT_NODE_PATH="$dir/node_modules"
    export SANDPIT_PYTHON="$dir/venv/bin/python"
    echo "compat clients: SANDPIT_NODE_PATH=$SANDPIT_NODE_PATH SANDPIT_PYTHON=$SANDPIT_PYTHON"
}
