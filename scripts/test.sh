#!/usr/bin/env bash
# The one test command: installs what the machine lacks, makes sure a Docker engine
# answers, builds the workspace and the default images, then runs the tests.
# Extra arguments go to `cargo test --workspace`.
# Idempotent; meant for a fresh Debian machine, run as root.
set -euo pipefail

started=$SECONDS
section() { printf '\n==> [%4ds] %s\n' "$((SECONDS - started))" "$*"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root_dir"

export DEBIAN_FRONTEND=noninteractive
export NEEDRESTART_SUSPEND=1  # no service-restart prompts or restarts during apt-get install
export RUST_BACKTRACE=1
if [ -z "${SANDPIT_CA_BUNDLE:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    export SANDPIT_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
fi

# ---------------------------------------------------------------- tools
section "checking tools"
# command -> Debian package
declare -A pkg_for=(
    [dockerd]=docker.io
    [docker]=docker.io
    [debootstrap]=debootstrap
    [openssl]=openssl
    [ip]=iproute2
    [curl]=curl
    [protoc]=protobuf-compiler
    [etcd]=etcd-server
)
missing=()
# protoc builds the etcd client; etcd is the cluster tests' registry.
for cmd in dockerd docker debootstrap openssl ip curl protoc etcd; do
    # sbin directories are not on every root PATH; look there too.
    if ! PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1; then
        pkg=${pkg_for[$cmd]}
        case " ${missing[*]:-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}) and not root: install them with apt-get"
    echo "installing: ${missing[*]}"
    # A third-party source that fails must not stop Debian's packages from installing.
    apt-get update || echo "test.sh: apt-get update reported errors; trying the install anyway" >&2
    apt-get install -y --no-install-recommends "${missing[@]}"
else
    echo "all present: dockerd docker debootstrap openssl ip curl protoc etcd"
fi
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

if ! command -v cargo >/dev/null 2>&1 && [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]; then
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || die "cargo is not installed (install Rust with rustup)"

# ---------------------------------------------------------------- engine
section "docker engine"
engine_log=/var/log/sandpit-dockerd.log
docker_sock=/var/run/docker.sock

# The docker CLI on PATH may be newer than the engine; it negotiates the API version.
# If it still cannot talk to the engine while Debian's own client can, use Debian's.
engine_answers() {
    timeout 10 docker version >/dev/null 2>&1 && return 0
    if [ -x /usr/bin/docker ] && [ "$(command -v docker)" != /usr/bin/docker ] \
        && timeout 10 /usr/bin/docker version >/dev/null 2>&1; then
        echo "the docker CLI at $(command -v docker) cannot talk to the engine; using /usr/bin/docker" >&2
        shim_dir="${TMPDIR:-/tmp}/sandpit-bin"
        mkdir -p "$shim_dir"
        ln -sf /usr/bin/docker "$shim_dir/docker"
        export PATH="$shim_dir:$PATH"
        return 0
    fi
    return 1
}

dockerd_running() {
    local pid
    [ -f /var/run/docker.pid ] || return 1
    pid=$(cat /var/run/docker.pid 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

if engine_answers; then
    echo "engine answers"
else
    if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST}" != "unix://$docker_sock" ]; then
        die "DOCKER_HOST=$DOCKER_HOST does not answer; not starting a local engine"
    fi
    if dockerd_running; then
        echo "dockerd (pid $(cat /var/run/docker.pid)) is running but not answering yet; waiting"
    else
        [ "$(id -u)" = 0 ] || die "no Docker engine answers and starting dockerd needs root"
        echo "no engine answers: starting dockerd (log: $engine_log)"
        setsid nohup dockerd >>"$engine_log" 2>&1 </dev/null &
        dockerd_pid=$!
    fi
    deadline=$((SECONDS + 60))
    until [ -S "$docker_sock" ] && engine_answers; do
        problem=
        if [ -n "${dockerd_pid:-}" ] && { [ ! -e "/proc/$dockerd_pid" ] || grep -q '^State:[[:space:]]*Z' "/proc/$dockerd_pid/status" 2>/dev/null; }; then
            problem="dockerd exited"
        elif [ "$SECONDS" -ge "$deadline" ]; then
            problem="the Docker engine did not answer within 60 s"
        fi
        if [ -n "$problem" ]; then
            echo "test.sh: $problem; last lines of $engine_log:" >&2
            tail -n 40 "$engine_log" >&2 || true
            exit 1
        fi
        sleep 1
    done
    echo "engine answers after $((SECONDS - deadline + 60)) s"
fi
docker version --format 'client {{.Client.Version}} (API {{.Client.APIVersion}}), engine {{.Server.Version}} (API {{.Server.APIVersion}})' \
    || docker version

# ---------------------------------------------------------------- second engines
# Podman (its Docker-compatible service on a socket of its own) and gVisor (runsc, registered
# with the Docker engine): the language table and the attack suite run on each.
section "Podman and gVisor"
# shellcheck source=scripts/engines.sh
source scripts/engines.sh
ensure_podman || die "Podman could not be set up (see above)"
if ! ensure_gvisor; then
    echo "test.sh: gVisor cannot run on this machine (see above); its tests are skipped" >&2
    export SANDPIT_SKIP_GVISOR=1
fi

# ---------------------------------------------------------------- leftovers
section "leftovers of an earlier run"
# A run or session that was killed leaves its labelled containers (and their volumes) on the
# engines; they would count as leaks of this run. This machine's engines are the tests' own.
remove_leftovers() {
    local containers volumes
    containers=$(docker ps -aq --filter label=sandpit.managed=true)
    if [ -n "$containers" ]; then
        echo "removing $(wc -w <<<"$containers") Sandpit container(s) left on $1 by an earlier run"
        docker rm -f $containers >/dev/null
    fi
    volumes=$(docker volume ls -q --filter label=sandpit.session)
    if [ -n "$volumes" ]; then
        docker volume rm -f $volumes >/dev/null || true
    fi
}
remove_leftovers Docker
DOCKER_HOST=$SANDPIT_PODMAN_HOST remove_leftovers Podman
echo "none left"

# ---------------------------------------------------------------- build
section "cargo build --workspace --all-targets"
cargo build --workspace --all-targets
sandpit="${CARGO_TARGET_DIR:-target}/debug/sandpit"

section "sandpit images build"
"$sandpit" images build

section "images on Podman"
# The base image and one language image are built on Podman itself (debootstrap, import,
# build), the rest are copied from the Docker engine.
"$sandpit" --host "$SANDPIT_PODMAN_HOST" images build ruby
podman_load_images sandpit/python:latest sandpit/java:latest sandpit/javascript:latest \
    sandpit/cpp:latest sandpit/go:latest

# ---------------------------------------------------------------- test
section "S3 server for the snapshot tests"
# s3s-fs on a loopback port serving a temporary folder (installed with cargo the first
# time); exports SANDPIT_TEST_S3_URL and the AWS_* settings, stops with this script.
# shellcheck source=scripts/s3.sh
source scripts/s3.sh
ensure_s3 || die "the S3 server for the snapshot tests could not be started (see above)"

section "compatibility clients"
# piston-client (npm), aio-piston and requests (a venv): tests/it/compat.rs drives the
# compatibility APIs through them.
# shellcheck source=scripts/clients.sh
source scripts/clients.sh
ensure_compat_clients || die "the compatibility APIs' clients could not be installed (see above)"

section "E2B SDKs"
# E2B's own SDKs, unchanged: Python e2b + e2b-code-interpreter (newest, and the older pair that
# creates with POST /sandboxes) in venvs of their own, npm e2b + @e2b/code-interpreter in a
# folder of its own; tests/it/e2b*.rs run them against a real server.
# shellcheck source=scripts/e2b-sdks.sh
source scripts/e2b-sdks.sh
ensure_e2b_sdks || die "E2B's SDKs could not be installed (see above)"

section "MCP client"
# The official MCP Python SDK (a venv): tests/it/mcp.rs and tests/it/tools.rs use it as the
# client of `sandpit mcp` and of /mcp, and its jsonschema checks the tool schemas.
# shellcheck source=scripts/mcp-client.sh
source scripts/mcp-client.sh
ensure_mcp_client || die "the MCP Python SDK could not be installed (see above)"

section "schemathesis"
# Installed once into a venv here, so the property-based test of the HTTP API
# (tests/it/http_system.rs) spends its time testing, not installing.
# shellcheck source=scripts/schemathesis.sh
source scripts/schemathesis.sh
schemathesis_install >/dev/null || die "schemathesis could not be installed (see above)"

section "cargo test --workspace $*"
cargo test --workspace --no-fail-fast "$@"

section "Python client against a real server"
# shellcheck source=scripts/python-client.sh
source scripts/python-client.sh
run_python_client_tests "$sandpit"

section "nothing left behind"
# The cluster test tears its namespaces, engines and etcd members down itself; this catches a
# run that crashed before it could (the engines' image stores stay, for the next run).
bash scripts/cluster.sh down
leaked=$(docker ps -aq --filter label=sandpit.managed=true | wc -l)
leaked_podman=$(DOCKER_HOST=$SANDPIT_PODMAN_HOST docker ps -aq --filter label=sandpit.managed=true 2>/dev/null | wc -l || echo 0)
if [ "$leaked" -gt 0 ] || [ "$leaked_podman" -gt 0 ]; then
    docker ps -a --filter label=sandpit.managed=true --format '{{.Names}} {{.Status}} {{.Labels}}' >&2
    die "$leaked containers on Docker and $leaked_podman on Podman are left by the tests"
fi
echo "no Sandpit container is left on Docker or Podman"

section "all tests passed"
