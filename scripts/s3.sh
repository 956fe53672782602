#!/usr/bin/env bash
# A real S3-protocol server on loopback for the snapshot tests: s3s-fs (from crates.io)
# serving a temporary folder. Source this file, then call `ensure_s3`; it exports
#
#   SANDPIT_TEST_S3_URL    s3://BUCKET/PREFIX, the store the tests write snapshots to
#   AWS_ENDPOINT_URL       http://127.0.0.1:PORT
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION
#
# and stops the server when the shell that sourced it exits (`stop_s3` does it earlier).
# Run alone (`scripts/s3.sh`), it starts a server and prints the variables, then waits
# until interrupted.

S3S_FS_VERSION=0.14.1   # later versions need a newer Rust than these machines have

_s3_bin() {
    local bin
    bin=$(command -v s3s-fs 2>/dev/null) && { echo "$bin"; return 0; }
    bin="${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs"
    [ -x "$bin" ] && { echo "$bin"; return 0; }
    return 1
}

# Installs s3s-fs when missing (about three minutes of compiling), starts it on a free
# loopback port with a fresh root folder and one bucket, and exports the variables above.
ensure_s3() {
    local bin root log pid url deadline
    if ! bin=$(_s3_bin); then
        echo "installing s3s-fs $S3S_FS_VERSION (cargo install, a few minutes)"
        cargo install "s3s-fs@$S3S_FS_VERSION" --features binary --locked \
            || { echo "s3.sh: cargo install s3s-fs@$S3S_FS_VERSION failed" >&2; return 1; }
        bin=$(_s3_bin) || { echo "s3.sh: s3s-fs is not on PATH after installing it" >&2; return 1; }
    fi
    if [ -n "${_SANDPIT_S3_PID:-}" ] && kill -0 "$_SANDPIT_S3_PID" 2>/dev/null; then
        echo "s3s-fs already running (pid $_SANDPIT_S3_PID) at $AWS_ENDPOINT_URL"
        return 0
    fi
    root=$(mktemp -d "${TMPDIR:-/tmp}/sandpit-s3.XXXXXX")
    mkdir -p "$root/data/sandpit-test"   # a folder under the root is a bucket
    log="$root/s3s-fs.log"
    local access="sandpit-test" secret
    secret=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    # Port 0: the kernel picks a free port; the server logs the address it got.
    RUST_LOG=info "$bin" --host 127.0.0.1 --port 0 \
        --access-key "$access" --secret-key "$secret" "$root/data" \
        >"$log" 2>&1 </dev/null &
    pid=$!
    deadline=$((SECONDS + 30))
    url=
    while [ -z "$url" ]; do
        url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$log" 2>/dev/null | head -n 1 || true)
        [ -n "$url" ] && break
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "s3.sh: s3s-fs exited; its log:" >&2
            cat "$log" >&2
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "s3.sh: s3s-fs did not report its address within 30 s; its log:" >&2
            cat "$log" >&2
            kill "$pid" 2>/dev/null || true
            return 1
        fi
        sleep 0.2
    done
    _SANDPIT_S3_PID=$pid
    _SANDPIT_S3_ROOT=$root
    export SANDPIT_TEST_S3_URL="s3://sandpit-test/snapshots"
    export AWS_ENDPOINT_URL="$url"
    export AWS_ACCESS_KEY_ID="$access"
    export AWS_SECRET_ACCESS_KEY="$secret"
    export AWS_REGION="${AWS_REGION:-us-east-1}"
    # Stop the server with the shell, keeping any EXIT trap set before.
    local previous
    previous=$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT\$//")
    case "$previous" in
        *stop_s3*) ;;
        "") trap stop_s3 EXIT ;;
        *) trap "stop_s3; $previous" EXIT ;;
    esac
    echo "s3s-fs $S3S_FS_VERSION (pid $pid) at $url, bucket folder $root/data/sandpit-test"
}

# Stops the server ensure_s3 started and removes its folder.
stop_s3() {
    if [ -n "${_SANDPIT_S3_PID:-}" ]; then
        # `|| true`: under `set -e` (test.sh) a failing status here would end the EXIT trap.
        kill "$_SANDPIT_S3_PID" 2>/dev/null || true
        wait "$_SANDPIT_S3_PID" 2>/dev/null || true
        _SANDPIT_S3_PID=
    fi
    if [ -n "${_SANDPIT_S3_ROOT:-}" ]; then
        rm -rf "$_SANDPIT_S3_ROOT" || true
        _SANDPIT_S3_ROOT=
    fi
    return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    ensure_s3
    printf 'export %s=%q\n' SANDPIT_TEST_S3_URL "$SANDPIT_TEST_S3_URL" \
        AWS_ENDPOINT_URL "$AWS_ENDPOINT_URL" AWS_ACCESS_KEY_ID "$AWS_ACCESS_KEY_ID" \
        AWS_SECRET_ACCESS_KEY "$AWS_SECRET_ACCESS_KEY" AWS_REGION "$AWS_REGION"
    echo "# serving until interrupted" >&2
    wait "$_SANDPIT_S3_PID"
fi
