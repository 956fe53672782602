#!/usr/bin/env bash
# Benchmarks Sandpit against llm-sandbox (the PyPI package) in one run, on the same engine and
# the same image (sandpit/python:latest), and prints one table with both, their ratio per row,
# the targets of issue 5 (met / MISSED) and the machine.
#
#   scripts/bench-peer.sh [-n ITERATIONS] [--slow-iterations N] [--stateful-rounds N]
#                         [--concurrent N] [--concurrent-reps N] [--slow-concurrent-reps N]
#                         [--memory-sessions N]
#
# -n (default 20): one-shot and pool iterations for Sandpit and for llm-sandbox without
# environment setup. llm-sandbox with its default environment setup takes 10-20 s per open
# (a venv and `pip install --upgrade pip` through the network), so its one-shot row has
# --slow-iterations (default 5) and its concurrent row --slow-concurrent-reps (default 1).
#
# Makes (or reuses) a virtual environment at target/bench-peer-venv with llm-sandbox[docker]
# from PyPI (pip gets the CA bundle: $SANDPIT_CA_BUNDLE, else the system bundle), builds the
# CLI in release mode, runs `sandpit bench --peer --json` and bench/peer/llm_sandbox_bench.py,
# and writes both JSON files and the table to target/bench-peer/. Every container either side
# makes is removed at the end, also when a side fails or the run is interrupted.
set -euo pipefail

root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root_dir"

iterations=20
slow_iterations=5
stateful_rounds=100
concurrent=50
concurrent_reps=3
slow_concurrent_reps=1
memory_sessions=3
while [ $# -gt 0 ]; do
    case "$1" in
        -n | --iterations) iterations=$2; shift 2 ;;
        --slow-iterations) slow_iterations=$2; shift 2 ;;
        --stateful-rounds) stateful_rounds=$2; shift 2 ;;
        --concurrent) concurrent=$2; shift 2 ;;
        --concurrent-reps) concurrent_reps=$2; shift 2 ;;
        --slow-concurrent-reps) slow_concurrent_reps=$2; shift 2 ;;
        --memory-sessions) memory_sessions=$2; shift 2 ;;
        -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-peer.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

image=sandpit/python:latest
ca=${SANDPIT_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
venv=${BENCH_PEER_VENV:-$root_dir/target/bench-peer-venv}
peer_spec=${LLM_SANDBOX_SPEC:-llm-sandbox[docker]>=0.3,<0.4}
out=$root_dir/target/bench-peer
run_id=bench-peer-$$-$(date +%s)
sandpit_pid=

section() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench-peer.sh: %s\n' "$*" >&2; exit 1; }

# Removes what this run made: llm-sandbox's containers (label sandpit.bench-peer=RUN_ID), the
# raw engine's (label sandpit.bench-raw=PID) and Sandpit's sessions (owner label host:PID:ticks)
# with their workdir volumes and loop disks. Sandpit closes its own on a normal exit; this is for
# a crash or an interrupt.
cleanup() {
    local ids=() line id owner
    mapfile -t ids < <(docker ps -aq --filter "label=sandpit.bench-peer=$run_id" 2>/dev/null || true)
    if [ -n "$sandpit_pid" ]; then
        mapfile -t -O "${#ids[@]}" ids < <(docker ps -aq --filter "label=sandpit.bench-raw=$sandpit_pid" 2>/dev/null || true)
        while read -r id owner; do
            case "$owner" in *":$sandpit_pid:"*) ids+=("$id") ;; esac
        done < <(docker ps -a --filter label=sandpit.managed --format '{{.ID}} {{.Label "sandpit.owner"}}' 2>/dev/null || true)
    fi
    if [ "${#ids[@]}" -gt 0 ]; then
        echo "bench-peer.sh: removing ${#ids[@]} containers left by this run" >&2
        docker rm -f "${ids[@]}" >/dev/null 2>&1 || true
    fi
    if [ -n "$sandpit_pid" ]; then
        local disks=${SANDPIT_DISK_DIR:-/var/lib/sandpit/disks}
        while read -r line owner; do
            case "$owner" in *":$sandpit_pid:"*) ;; *) continue ;; esac
            docker volume rm -f "$line" >/dev/null 2>&1 || true
            id=${line#sandpit-disk-}
            if [ -f "$disks/$id.img" ]; then
                losetup -j "$disks/$id.img" 2>/dev/null | cut -d: -f1 | xargs -r -n1 losetup -d 2>/dev/null || true
                rm -f "$disks/$id.img" "$disks/$id.dev"
            fi
        done < <(docker volume ls --filter label=sandpit.managed --format '{{.Name}} {{.Label "sandpit.owner"}}' 2>/dev/null || true)
    fi
}
trap cleanup EXIT
# An asynchronous command ignores SIGINT in a script: stop Sandpit's side explicitly.
trap 'if [ -n "$sandpit_pid" ]; then kill "$sandpit_pid" 2>/dev/null || true; wait "$sandpit_pid" 2>/dev/null || true; fi; exit 130' INT TERM

# ---------------------------------------------------------------- prerequisites
command -v docker >/dev/null || die "the docker CLI is missing (it reads the engine's version and cleans up)"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || die "no Docker engine answers (start one: scripts/test.sh does)"
command -v python3 >/dev/null || die "python3 is missing (llm-sandbox is a Python package)"
[ -f "$ca" ] || die "no CA bundle at $ca (set SANDPIT_CA_BUNDLE)"
mkdir -p "$out"

# ---------------------------------------------------------------- llm-sandbox, from PyPI
if [ ! -x "$venv/bin/python" ]; then
    section "making the virtual environment $venv"
    python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
fi
if ! "$venv/bin/python" -c 'import llm_sandbox, docker' 2>/dev/null; then
    section "installing $peer_spec from PyPI"
    PIP_CERT=$ca PIP_DISABLE_PIP_VERSION_CHECK=1 \
        "$venv/bin/pip" install --quiet "$peer_spec" || die "pip could not install $peer_spec"
fi
peer_version=$("$venv/bin/python" -c 'from importlib.metadata import version; print(version("llm-sandbox"))')
section "llm-sandbox $peer_version in $venv"

# ---------------------------------------------------------------- Sandpit
section "building the CLI (release)"
cargo build --release --quiet -p sandpit-cli
sandpit=$root_dir/target/release/sandpit

engine=$(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')
cgroup=$(docker info --format '{{.CgroupVersion}}' 2>/dev/null || echo '?')
mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

section "Sandpit's side: sandpit bench --peer (-n $iterations)"
"$sandpit" bench --peer --json -n "$iterations" --stateful-rounds "$stateful_rounds" \
    --concurrent "$concurrent" --concurrent-reps "$concurrent_reps" \
    --memory-sessions "$memory_sessions" >"$out/sandpit.json" &
sandpit_pid=$!
wait "$sandpit_pid" || die "sandpit bench --peer failed (see above)"

section "llm-sandbox's side: bench/peer/llm_sandbox_bench.py"
"$venv/bin/python" bench/peer/llm_sandbox_bench.py --run-id "$run_id" --image "$image" --ca "$ca" \
    --iterations "$iterations" --slow-iterations "$slow_iterations" \
    --stateful-rounds "$stateful_rounds" --concurrent "$concurrent" \
    --concurrent-reps "$concurrent_reps" --slow-concurrent-reps "$slow_concurrent_reps" \
    --memory-sessions "$memory_sessions" --out "$out/llm-sandbox.json" ||
    die "the llm-sandbox side failed (see above)"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

machine="$(nproc) CPUs (nproc), $mem memory, Docker $engine, cgroup v$cgroup, kernel $(uname -r);"
machine+=" load average $load_before before, $load_after after"
echo
"$venv/bin/python" bench/peer/report.py "$out/sandpit.json" "$out/llm-sandbox.json" \
    --machine "$machine" | tee "$out/table.txt"
echo
echo "JSON (every sample): $out/sandpit.json, $out/llm-sandbox.json; table: $out/table.txt"
