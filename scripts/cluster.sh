#!/usr/bin/env bash
# A Sandpit cluster's machinery on one machine, for tests/it/cluster.rs and for trying the
# cluster by hand: network namespaces joined by a switch namespace, a Docker engine per node,
# and etcd members. The nodes themselves (`sandpit serve --cluster ...`) are started by the
# caller, in their namespaces, with `nsenter --net=/var/run/netns/NS`.
#
#   scripts/cluster.sh up [IMAGE...]   # clean up a crashed run, then build it all
#                                      # (images copied into each node's engine; default python)
#   scripts/cluster.sh down [--purge]  # remove every container, stop every process, remove it
#                                      # all but the engines' image stores (--purge: those too)
#   scripts/cluster.sh dockerd I       # (re)start node I's engine
#   scripts/cluster.sh etcd J          # (re)start etcd member J (its data kept)
#
# Layout (198.18.0.0/15 is a benchmarking range, never routed):
#   spc-sw        the switch: bridge br-c (clients and nodes, 198.18.0.0/24) and bridge br-r
#                 (the registry, 198.18.1.0/24), so a node can be cut from etcd alone
#   spc-nI        node I: eth0 198.18.0.1I (API), eth1 198.18.1.1I (to etcd); its dockerd
#   spc-eJ        etcd member J: eth0 198.18.1.2J, client port 2379
#   the host      spc-hc 198.18.0.1 and spc-hr 198.18.1.1 (the tests' client and etcdctl)
# A partition of node I from the registry: `ip -n spc-sw link set spc-nIr down`.
#
# dockerd runs with `nsenter --net=` only: `ip netns exec` remounts /sys and dockerd then fails
# with "Devices cgroup isn't mounted". Its engines have no bridge (--bridge=none inside its own
# namespace; never in the host's, where it would delete docker0).
set -euo pipefail

NODES=${SANDPIT_CLUSTER_NODES:-3}
MEMBERS=${SANDPIT_CLUSTER_MEMBERS:-3}
STATE=${SANDPIT_CLUSTER_STATE:-/var/tmp/sandpit-cluster}
# Short: containerd's socket paths live under the exec root.
RUN=/run/spc
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

say() { echo "cluster.sh: $*" >&2; }
die() { say "$*"; exit 1; }

ns_exists() { [ -e "/var/run/netns/$1" ]; }
in_ns() { local ns=$1; shift; nsenter --net="/var/run/netns/$ns" "$@"; }

node_sock() { echo "unix://$RUN/n$1/docker.sock"; }

# Kills the processes of a namespace we made, by PID.
kill_ns() {
    local ns=$1 pids
    ns_exists "$ns" || return 0
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
    for _ in $(seq 50); do
        [ -z "$(ip netns pids "$ns" 2>/dev/null || true)" ] && return 0
        sleep 0.1
    done
}

unmount_under() {
    local root=$1
    awk -v r="$root" '$2 ~ "^"r {print $2}' /proc/mounts | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
}

down() {
    local purge=${1:-}
    for i in $(seq 9); do
        local ns=spc-n$i
        ns_exists "$ns" || continue
        # Every container of every test goes, whatever state the run left.
        if [ -S "$RUN/n$i/docker.sock" ]; then
            ids=$(DOCKER_HOST=$(node_sock "$i") timeout 20 docker ps -aq 2>/dev/null || true)
            [ -n "$ids" ] && DOCKER_HOST=$(node_sock "$i") timeout 60 docker rm -f $ids >/dev/null 2>&1 || true
        fi
        kill_ns "$ns"
    done
    for j in $(seq 9); do kill_ns "spc-e$j"; done
    kill_ns spc-sw
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^spc-' || true); do
        ip netns del "$ns" 2>/dev/null || true
    done
    ip link del spc-hc 2>/dev/null || true
    ip link del spc-hr 2>/dev/null || true
    unmount_under "$RUN"
    unmount_under "$STATE"
    rm -rf "$RUN"
    if [ "$purge" = --purge ]; then
        rm -rf "$STATE"
    else
        # The engines' image stores stay (removing them takes minutes; loading the images
        # again too): a node's engine starts from them with no container left.
        rm -rf "$STATE"/e* "$STATE"/n*/*.log "$STATE"/n*/sandpit "$STATE"/snapshots
    fi
    for d in /sys/fs/cgroup/*/spc-n* /sys/fs/cgroup/spc-n*; do
        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
    return 0
}

# A veth from namespace $1 (named $2 inside, address $3) to bridge $4 of the switch ($5: the
# switch side's name).
wire() {
    local ns=$1 inner=$2 addr=$3 bridge=$4 outer=$5
    ip link add "$outer" type veth peer name "$outer-x"
    ip link set "$outer" netns spc-sw
    ip -n spc-sw link set "$outer" master "$bridge" up
    if [ "$ns" = host ]; then
        ip link set "$outer-x" name "$inner"
        ip addr add "$addr/24" dev "$inner"
        ip link set "$inner" up
    else
        ip link set "$outer-x" netns "$ns"
        ip -n "$ns" link set "$outer-x" name "$inner"
        ip -n "$ns" addr add "$addr/24" dev "$inner"
        ip -n "$ns" link set "$inner" up
        ip -n "$ns" link set lo up
    fi
}

start_dockerd() {
    local i=$1
    local d=$RUN/n$i
    mkdir -p "$d" "$STATE/n$i/data"
    if [ -f "$d/docker.pid" ] && kill -0 "$(cat "$d/docker.pid")" 2>/dev/null; then
        return 0
    fi
    rm -f "$d/docker.pid" "$d/docker.sock"
    setsid nsenter --net=/var/run/netns/spc-n$i dockerd \
        --data-root "$STATE/n$i/data" --exec-root "$d/exec" -H "unix://$d/docker.sock" \
        --pidfile "$d/docker.pid" --bridge=none --iptables=false --ip-masq=false \
        --cgroup-parent=/spc-n$i >>"$STATE/n$i/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 120); do
        DOCKER_HOST=unix://$d/docker.sock timeout 5 docker version >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    tail -n 30 "$STATE/n$i/dockerd.log" >&2
    return 1
}

initial_cluster() {
    local list=
    for j in $(seq "$MEMBERS"); do list="${list:+$list,}e$j=http://198.18.1.2$j:2380"; done
    echo "$list"
}

start_etcd() {
    local j=$1 a=198.18.1.2$1 d=$STATE/e$1
    mkdir -p "$d" "$RUN"
    if [ -f "$RUN/e$j.pid" ] && kill -0 "$(cat "$RUN/e$j.pid")" 2>/dev/null; then
        return 0
    fi
    local state=new
    [ -d "$d/data/member" ] && state=existing
    setsid nsenter --net=/var/run/netns/spc-e$j etcd --name "e$j" --data-dir "$d/data" \
        --listen-client-urls "http://$a:2379" --advertise-client-urls "http://$a:2379" \
        --listen-peer-urls "http://$a:2380" --initial-advertise-peer-urls "http://$a:2380" \
        --initial-cluster "$(initial_cluster)" --initial-cluster-state "$state" \
        --initial-cluster-token sandpit-test >>"$d/etcd.log" 2>&1 </dev/null &
    echo $! >"$RUN/e$j.pid"
}

up() {
    [ "$(id -u)" = 0 ] || die "needs root (network namespaces, engines)"
    for cmd in ip nsenter dockerd docker etcd; do
        command -v "$cmd" >/dev/null || die "$cmd is missing (scripts/test.sh installs it)"
    done
    local images=("$@")
    [ ${#images[@]} -gt 0 ] || images=(sandpit/python:latest)
    for image in "${images[@]}"; do
        docker image inspect "$image" >/dev/null 2>&1 || die "$image is not on the host's engine: sandpit images build"
    done
    down
    mkdir -p "$STATE" "$RUN"
    ip netns add spc-sw
    ip -n spc-sw link set lo up
    for br in br-c br-r; do
        ip -n spc-sw link add "$br" type bridge
        ip -n spc-sw link set "$br" up
    done
    wire host spc-hc 198.18.0.1 br-c spc-hcs
    wire host spc-hr 198.18.1.1 br-r spc-hrs
    for i in $(seq "$NODES"); do
        ip netns add "spc-n$i"
        wire "spc-n$i" eth0 "198.18.0.1$i" br-c "spc-n${i}c"
        wire "spc-n$i" eth1 "198.18.1.1$i" br-r "spc-n${i}r"
    done
    for j in $(seq "$MEMBERS"); do
        ip netns add "spc-e$j"
        wire "spc-e$j" eth0 "198.18.1.2$j" br-r "spc-e${j}r"
    done
    for j in $(seq "$MEMBERS"); do start_etcd "$j"; done
    for i in $(seq "$NODES"); do
        if ! start_dockerd "$i"; then
            # A kept image store that an interrupted run left broken: made anew.
            say "node $i's engine does not start on its kept image store: starting it on a fresh one"
            kill_ns "spc-n$i"
            unmount_under "$STATE/n$i"
            rm -rf "$STATE/n$i/data"
            start_dockerd "$i" || die "node $i's engine did not answer within 60 s"
        fi
        # A crashed run's containers, kept in the image store.
        ids=$(DOCKER_HOST=$(node_sock "$i") docker ps -aq)
        [ -z "$ids" ] || DOCKER_HOST=$(node_sock "$i") docker rm -f $ids >/dev/null
    done
    # One save per image the engines lack (or hold an older build of), loaded into them at once.
    for image in "${images[@]}"; do
        local want lacking=()
        want=$(docker image inspect --format '{{.Id}}' "$image")
        for i in $(seq "$NODES"); do
            [ "$(DOCKER_HOST=$(node_sock "$i") docker image inspect --format '{{.Id}}' "$image" 2>/dev/null)" = "$want" ] \
                || lacking+=("$i")
        done
        [ ${#lacking[@]} -gt 0 ] || continue
        local tar=$STATE/image.tar loads=()
        docker save -o "$tar" "$image"
        for i in "${lacking[@]}"; do
            DOCKER_HOST=$(node_sock "$i") docker load -q -i "$tar" >/dev/null &
            loads+=($!)
        done
        for p in "${loads[@]}"; do wait "$p" || die "loading $image into a node's engine failed"; done
        rm -f "$tar"
    done
    local endpoints=
    for j in $(seq "$MEMBERS"); do endpoints="${endpoints:+$endpoints,}198.18.1.2$j:2379"; done
    for _ in $(seq 60); do
        ETCDCTL_API=3 etcdctl --endpoints "$endpoints" endpoint health >/dev/null 2>&1 && break
        command -v etcdctl >/dev/null || { sleep 2; break; }
        sleep 0.5
    done
    say "up: $NODES nodes (198.18.0.11..), etcd at etcd://$endpoints"
}

case "${1:-}" in
    up) shift; up "$@" ;;
    down) down "${2:-}" ;;
    dockerd) start_dockerd "${2:?node number}" || die "node $2's engine did not answer within 60 s" ;;
    etcd) start_etcd "${2:?member number}" ;;
    *) die "usage: $0 up [IMAGE...] | down [--purge] | dockerd I | etcd J" ;;
esac
