# shellcheck shell=bash
# Second engines for the tests: Podman (Docker-compatible API on its own socket) and
# gVisor (runsc, registered with the Docker engine). Meant to be *sourced* by
# scripts/test.sh (bash, set -euo pipefail, root, Debian 12, Docker already answering
# on /var/run/docker.sock). Defines functions only; sourcing it changes nothing.
#
#   ensure_podman                 install Podman, start its service, export SANDPIT_PODMAN_HOST
#   ensure_gvisor                 install runsc, register it with dockerd, export SANDPIT_GVISOR=1
#                                 (returns non-zero, with the reason, when gVisor cannot work here)
#   podman_load_images IMAGE...   copy images from Docker into Podman unless already there
#
# Each function is idempotent, prints one line about what it did, and on failure prints
# the reason on stderr and returns non-zero (it never exits the caller's shell). Findings
# behind the choices made here: docs/engines-findings.md.
#
# Podman keeps everything of its own: its configuration in /etc/sandpit-podman (passed to
# the service through CONTAINERS_CONF / CONTAINERS_STORAGE_CONF, so the machine's
# /etc/containers stays as Debian ships it), images and containers under
# /var/lib/sandpit-podman, runtime state under /run/sandpit-podman. Use it through the
# socket: DOCKER_HOST=$SANDPIT_PODMAN_HOST docker ..., or podman --url $SANDPIT_PODMAN_HOST ...

_engines_say() { printf 'engines: %s\n' "$*"; }
_engines_fail() { printf 'engines: %s\n' "$*" >&2; return 1; }

# apt-get with its output in a log file, waiting (up to 10 min) for a dpkg/apt lock
# held by another process.
_engines_apt() {
    local log=/var/log/sandpit-engines-apt.log deadline=$((SECONDS + 600)) rc
    while :; do
        rc=0
        DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
            apt-get -o DPkg::Lock::Timeout=600 "$@" >>"$log" 2>&1 </dev/null || rc=$?
        [ "$rc" = 0 ] && return 0
        if tail -n 5 "$log" | grep -q 'Could not get lock' && [ "$SECONDS" -lt "$deadline" ]; then
            sleep 5
            continue
        fi
        printf 'engines: apt-get %s failed (exit %s); last lines of %s:\n' "$*" "$rc" "$log" >&2
        tail -n 15 "$log" >&2
        return 1
    done
}

# Installs Debian packages (apt-get update first, once per shell).
_engines_install() {
    [ "$(id -u)" = 0 ] || { _engines_fail "installing $* needs root"; return 1; }
    if [ -z "${_ENGINES_APT_UPDATED:-}" ]; then
        # A third-party source that fails must not stop Debian's packages from installing.
        _engines_apt update || printf 'engines: apt-get update reported errors; trying the install anyway\n' >&2
        _ENGINES_APT_UPDATED=1
    fi
    _engines_apt install -y --no-install-recommends "$@"
}

# Writes CONTENT to FILE unless it already holds exactly that; returns 0 when it wrote.
_engines_write_if_changed() {
    local file=$1 content=$2
    if [ -f "$file" ] && [ "$(cat "$file")" = "$content" ]; then
        return 1
    fi
    mkdir -p "$(dirname "$file")" && printf '%s\n' "$content" >"$file"
}

# Now, in seconds with a fraction ($EPOCHREALTIME with a dot in any locale).
_engines_now() {
    local now=$EPOCHREALTIME
    printf '%s' "${now/,/.}"
}

# Seconds since T0 (an _engines_now value), one decimal.
_engines_since() {
    local now
    now=$(_engines_now)
    awk -v a="$1" -v b="$now" 'BEGIN { printf "%.1f", b - a }'
}

_engines_join() {
    local out=$1
    shift
    local part
    for part in "$@"; do out+="; $part"; done
    printf '%s' "$out"
}

_engines_docker_has_runsc() {
    docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'
}

_engines_podman_ping() {
    [ -S "$1" ] && [ "$(curl -s --max-time 5 --unix-socket "$1" http://d/_ping 2>/dev/null)" = OK ]
}

ensure_podman() {
    local sock=/run/sandpit-podman/podman.sock conf_dir=/etc/sandpit-podman
    local pidfile=/run/sandpit-podman/service.pid log=/var/log/sandpit-podman.log
    local t0 did=() pid deadline
    t0=$(_engines_now)
    export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

    if ! command -v podman >/dev/null 2>&1; then
        # Needs no recommends: rootful Podman on overlay over ext4 needs neither
        # fuse-overlayfs, slirp4netns nor uidmap; runc (a Depends alternative, already
        # there with docker.io) is the runtime; containers-common pulls in the CNI plugins
        # that the bridge network uses.
        _engines_install podman || { _engines_fail "could not install podman"; return 1; }
        did+=("installed podman $(dpkg-query -W -f='${Version}' podman 2>/dev/null) in $(_engines_since "$t0") s")
    fi
    command -v curl >/dev/null 2>&1 || _engines_install curl || { _engines_fail "could not install curl"; return 1; }

    # runc, not crun (crun fails on cgroups v1/hybrid machines); cgroupfs and file
    # events because there is no systemd; CNI because that is what Debian's podman
    # brings (no netavark). Default rlimits within the service's own hard limits:
    # Podman gives a container nproc and nofile 1048576 by default, above what the
    # service has (it caps its own nproc at 32768; nofile is the machine's), and root on
    # these machines lacks CAP_SYS_RESOURCE, so without them a start fails with "error
    # setting rlimit type 6 (or 7): operation not permitted". (A request that sets any
    # Ulimits still gets nproc 1048576 unless it sets nproc itself.) Storage of its own,
    # never Docker's.
    local nproc nofile containers_conf storage_conf
    nproc=$(ulimit -Hu)
    { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
    nofile=$(ulimit -Hn)
    { [ "$nofile" = unlimited ] || [ "$nofile" -gt 1048576 ]; } && nofile=1048576
    containers_conf="# Written by sandpit scripts/engines.sh; used only by the sandpit Podman service.
[containers]
default_ulimits = [\"nproc=$nproc:$nproc\", \"nofile=$nofile:$nofile\"]
[engine]
runtime = \"runc\"
cgroup_manager = \"cgroupfs\"
events_logger = \"file\"
[network]
network_backend = \"cni\""
    storage_conf='# Written by sandpit scripts/engines.sh; used only by the sandpit Podman service.
[storage]
driver = "overlay"
graphroot = "/var/lib/sandpit-podman/storage"
runroot = "/run/sandpit-podman/storage"'
    local conf_changed=
    _engines_write_if_changed "$conf_dir/containers.conf" "$containers_conf" && conf_changed=1
    _engines_write_if_changed "$conf_dir/storage.conf" "$storage_conf" && conf_changed=1
    [ -n "$conf_changed" ] && did+=("wrote $conf_dir")

    if [ -n "$conf_changed" ] && _engines_podman_ping "$sock"; then
        # A service of ours that predates this configuration is restarted (its
        # containers live on under conmon); one that is not ours is left alone.
        pid=$(cat "$pidfile" 2>/dev/null) || pid=
        if [ -n "$pid" ] && grep -q 'podman' "/proc/$pid/cmdline" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            deadline=$((SECONDS + 20))
            while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
            did+=("stopped the old service (pid $pid)")
        else
            printf 'engines: note: the Podman service on %s was not started by this script; restart it to apply %s\n' "$sock" "$conf_dir" >&2
        fi
    fi

    if _engines_podman_ping "$sock"; then
        did+=("service already answering on $sock")
    else
        mkdir -p /run/sandpit-podman /var/lib/sandpit-podman || { _engines_fail "cannot create Podman's folders"; return 1; }
        rm -f "$sock"
        local t1
        t1=$(_engines_now)
        CONTAINERS_CONF=$conf_dir/containers.conf CONTAINERS_STORAGE_CONF=$conf_dir/storage.conf \
            setsid nohup podman system service --time=0 "unix://$sock" >>"$log" 2>&1 </dev/null &
        pid=$!
        echo "$pid" >"$pidfile"
        deadline=$((SECONDS + 60))
        until _engines_podman_ping "$sock"; do
            if ! kill -0 "$pid" 2>/dev/null; then
                _engines_fail "podman system service exited; last lines of $log:"
                tail -n 20 "$log" >&2
                return 1
            fi
            if [ "$SECONDS" -ge "$deadline" ]; then
                _engines_fail "the Podman service did not answer on $sock within 60 s; see $log"
                return 1
            fi
            sleep 0.2
        done
        did+=("started the service (pid $pid) on $sock in $(_engines_since "$t1") s")
    fi
    export SANDPIT_PODMAN_HOST="unix://$sock"
    _engines_say "podman: $(_engines_join "${did[@]}")"
}

ensure_gvisor() {
    local runsc=/usr/bin/runsc daemon_json=/etc/docker/daemon.json t0=$(_engines_now) did=() image out rc
    export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
    unset SANDPIT_GVISOR

    if [ ! -x "$runsc" ]; then
        _engines_install runsc || { _engines_fail "gvisor: could not install runsc"; return 1; }
        did+=("installed runsc $(dpkg-query -W -f='${Version}' runsc 2>/dev/null) in $(_engines_since "$t0") s")
    fi

    if ! _engines_docker_has_runsc; then
        # Merge {"runtimes": {"runsc": ...}} into daemon.json, keeping every other key.
        if [ ! -s "$daemon_json" ]; then
            mkdir -p /etc/docker &&
                printf '%s\n' '{"runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]}}}' >"$daemon_json" ||
                { _engines_fail "gvisor: cannot write $daemon_json"; return 1; }
        else
            command -v python3 >/dev/null 2>&1 || _engines_install python3-minimal ||
                { _engines_fail "gvisor: python3 is needed to merge $daemon_json"; return 1; }
            python3 - "$daemon_json" <<'EOF' || { _engines_fail "gvisor: cannot merge runsc into $daemon_json"; return 1; }
import json, os, sys
path = sys.argv[1]
with open(path) as f:
    config = json.load(f)
config.setdefault("runtimes", {})["runsc"] = {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]}
tmp = path + ".sandpit-tmp"
with open(tmp, "w") as f:
    json.dump(config, f, indent=2)
    f.write("\n")
os.replace(tmp, path)
EOF
        fi
        local dockerd_pid
        dockerd_pid=$(cat /var/run/docker.pid 2>/dev/null) && [ -n "$dockerd_pid" ] && kill -HUP "$dockerd_pid" 2>/dev/null ||
            { _engines_fail "gvisor: cannot signal dockerd (no pid in /var/run/docker.pid): restart the engine to load $daemon_json"; return 1; }
        local deadline=$((SECONDS + 30))
        until _engines_docker_has_runsc; do
            if [ "$SECONDS" -ge "$deadline" ]; then
                _engines_fail "gvisor: dockerd does not list runsc 30 s after SIGHUP (is $daemon_json valid? see the engine's log)"
                return 1
            fi
            sleep 0.5
        done
        did+=("registered runsc with dockerd (SIGHUP)")
    fi

    # Does a container really run under gVisor here? (It needs no network: runsc is
    # registered with --network=none.)
    if docker image inspect sandpit/python:latest >/dev/null 2>&1; then
        image=sandpit/python:latest
    else
        image=$(docker images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep -v '<none>' | head -n 1) || true
    fi
    [ -n "$image" ] || { _engines_fail "gvisor: no local image to try runsc with"; return 1; }
    rc=0
    out=$(timeout 120 docker run --rm --runtime=runsc --network none --entrypoint uname "$image" -r 2>&1) || rc=$?
    if [ "$rc" != 0 ]; then
        _engines_fail "gvisor cannot run containers here: docker run --runtime=runsc $image exited $rc: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
        return 1
    fi
    did+=("a runsc container runs ($image, kernel $out)")
    export SANDPIT_GVISOR=1
    _engines_say "gvisor: $(_engines_join "${did[@]}")"
}

podman_load_images() {
    local host=${SANDPIT_PODMAN_HOST:-unix:///run/sandpit-podman/podman.sock} t0=$(_engines_now)
    local image docker_id podman_id todo=() have=() rc
    [ "$#" -gt 0 ] || { _engines_fail "podman_load_images: name at least one image"; return 1; }
    _engines_podman_ping "${host#unix://}" || { _engines_fail "podman_load_images: no Podman service answers on $host (run ensure_podman first)"; return 1; }
    for image in "$@"; do
        docker_id=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null) ||
            { _engines_fail "podman_load_images: Docker has no image $image"; return 1; }
        podman_id=$(DOCKER_HOST=$host docker image inspect --format '{{.Id}}' "$image" 2>/dev/null) || podman_id=
        if [ "$podman_id" = "$docker_id" ]; then have+=("$image"); else todo+=("$image"); fi
    done
    if [ "${#todo[@]}" -gt 0 ]; then
        rc=0
        docker save "${todo[@]}" | DOCKER_HOST=$host docker load -q >/dev/null || rc=$?
        [ "$rc" = 0 ] || { _engines_fail "podman_load_images: docker save ${todo[*]} | docker load into Podman failed"; return 1; }
        for image in "${todo[@]}"; do
            [ "$(DOCKER_HOST=$host docker image inspect --format '{{.Id}}' "$image" 2>/dev/null)" = \
              "$(docker image inspect --format '{{.Id}}' "$image")" ] ||
                { _engines_fail "podman_load_images: $image is not in Podman with Docker's id after loading"; return 1; }
        done
        _engines_say "podman: loaded ${todo[*]} in $(_engines_since "$t0") s${have[*]:+ (already there: ${have[*]})}"
    else
        _engines_say "podman: already has ${have[*]} (same ids as Docker; $(_engines_since "$t0") s)"
    fi
}
