#!/usr/bin/env bash
# The official MCP Python SDK (`mcp` on PyPI) in a virtual environment, for the tests that use
# it as the client of `sandpit mcp` (stdio) and of `/mcp` on `sandpit serve` (streamable HTTP),
# and for bench/mcp_bench.py.
#
#   source scripts/mcp-client.sh && ensure_mcp_client
#
# Makes (or reuses) the venv at $SANDPIT_MCP_VENV (default target/mcp-venv), installs `mcp`
# and `jsonschema` when they are missing, and exports SANDPIT_MCP_PYTHON (the venv's python).
# Idempotent. pip trusts $PIP_CERT (default: $SANDPIT_CA_BUNDLE, else the system bundle) so
# PyPI can be reached through a TLS-intercepting proxy.

ensure_mcp_client() {
    local root venv spec
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    venv=${SANDPIT_MCP_VENV:-$root/target/mcp-venv}
    spec=${SANDPIT_MCP_SPEC:-mcp>=1.9}
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import mcp, jsonschema' 2>/dev/null; then
        export SANDPIT_MCP_PYTHON="$venv/bin/python"
        echo "MCP client: $("$venv/bin/python" -c 'from importlib.metadata import version; print("mcp", version("mcp"))') in $venv"
        return 0
    fi
    command -v python3 >/dev/null 2>&1 || { echo "mcp-client.sh: python3 is missing (apt-get install python3 python3-venv)" >&2; return 1; }
    if [ ! -x "$venv/bin/python" ]; then
        if ! python3 -m venv "$venv" 2>/dev/null; then
            if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
                echo "mcp-client.sh: installing python3-venv"
                apt-get install -y --no-install-recommends python3-venv >/dev/null \
                    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends python3-venv >/dev/null; } \
                    || { echo "mcp-client.sh: could not install python3-venv" >&2; return 1; }
                rm -rf "$venv"
                python3 -m venv "$venv" || return 1
            else
                echo "mcp-client.sh: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2
                return 1
            fi
        fi
    fi
    local cert=${PIP_CERT:-${SANDPIT_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}}
    echo "mcp-client.sh: installing $spec and jsonschema into $venv"
    if ! PIP_CERT="$cert" "$venv/bin/pip" install --quiet --disable-pip-version-check "$spec" jsonschema; then
        echo "mcp-client.sh: pip could not install $spec (PIP_CERT=$cert)" >&2
        return 1
    fi
    export SANDPIT_MCP_PYTHON="$venv/bin/python"
    echo "MCP client: $("$venv/bin/python" -c 'from importlib.metadata import version; print("mcp", version("mcp"))') in $venv"
}
