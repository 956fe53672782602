#!/usr/bin/env python3
"""Figures of a three-node Sandpit cluster on this machine, measured in one run (the cluster
of scripts/cluster.sh: a network namespace and a Docker engine per node, three etcd members):

- create p50 and execute p50 through the node that owns the session and through another
  node (target: forwarding adds <= 2 ms to execute);
- creates per second with 1 node against 3 nodes, on the same cores;
- etcd writes (revisions) per session created, per execute and per close (target: O(1) per
  session, none per call);
- how long a node killed by PID takes to be declared lost and its sessions to answer 410
  (target <= 10 s).

    sudo python3 bench/cluster_bench.py [--sandpit target/release/sandpit] [--json] [--mtls]

With --mtls the nodes forward to each other over mTLS (certificates made by openssl for the
run, in /var/tmp/sandpit-cluster/tls), as `[cluster.tls]` configures them.

The figures are reported whatever they are. Only the standard library is used; the cluster is
torn down at the end (scripts/cluster.sh down), every session closed first.
"""

import argparse
import base64
import concurrent.futures
import http.client
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATE = "/var/tmp/sandpit-cluster"
ETCD = "etcd://198.18.1.21:2379,198.18.1.22:2379,198.18.1.23:2379"
NODES = [("n%d" % i, "198.18.0.1%d" % i) for i in (1, 2, 3)]


def script(*args):
    subprocess.run(["bash", os.path.join(ROOT, "scripts/cluster.sh"), *args], check=True)


def request(host, method, path, key, body=None, timeout=120):
    conn = http.client.HTTPConnection(host, 9501, timeout=timeout)
    headers = {"Authorization": "Bearer " + key}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    text = r.read()
    conn.close()
    try:
        return r.status, json.loads(text) if text else None
    except ValueError:
        return r.status, text.decode(errors="replace")


class Client:
    """One keep-alive connection to a node."""

    def __init__(self, host, key):
        self.conn = http.client.HTTPConnection(host, 9501, timeout=120)
        self.key = key

    def post(self, path, body):
        self.conn.request("POST", path, body=json.dumps(body).encode(),
                          headers={"Authorization": "Bearer " + self.key,
                                   "Content-Type": "application/json"})
        r = self.conn.getresponse()
        return r.status, json.loads(r.read() or b"null")


def etcd_revision():
    conn = http.client.HTTPConnection("198.18.1.21", 2379, timeout=5)
    key = base64.b64encode(b"/sandpit/bench-probe").decode()
    conn.request("POST", "/v3/kv/range", body=json.dumps({"key": key}))
    answer = json.loads(conn.getresponse().read())
    conn.close()
    return int(answer["header"]["revision"])


def certificates():
    """The cluster's CA and a certificate per node for its peer address."""
    tls = os.path.join(STATE, "tls")
    os.makedirs(tls, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda *a: subprocess.run(["openssl", *a], cwd=tls, check=True, capture_output=True)
    run("req", "-x509", "-days", "2", *ec, "-subj", "/CN=sandpit bench ca", "-keyout", "ca.key",
        "-out", "ca.pem", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, addr in NODES:
        with open(os.path.join(tls, name + ".ext"), "w") as f:
            f.write("subjectAltName=IP:%s\nextendedKeyUsage=serverAuth,clientAuth\n" % addr)
        run("req", *ec, "-subj", "/CN=" + name, "-keyout", name + ".key", "-out", name + ".csr")
        run("x509", "-req", "-days", "2", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey",
            "ca.key", "-CAcreateserial", "-extfile", name + ".ext", "-out", name + ".pem")
    return tls


def start_node(sandpit, i, name, addr, tls=None):
    data = "%s/n%d/sandpit" % (STATE, i)
    os.makedirs(data, exist_ok=True)
    log = open("%s/n%d/serve.log" % (STATE, i), "ab")
    env = dict(os.environ, DOCKER_HOST="unix:///run/spc/n%d/docker.sock" % i,
               SANDPIT_POOL="", SANDPIT_SWEEP_INTERVAL="1",
               SANDPIT_SESSIONS_PER_KEY="500", SANDPIT_RUNS_PER_KEY="64")
    peer = ["--advertise", "http://%s:9501" % addr]
    if tls:
        peer = ["--advertise", "https://%s:9502" % addr, "--peer-addr", addr + ":9502",
                "--peer-ca", tls + "/ca.pem", "--peer-cert", "%s/%s.pem" % (tls, name),
                "--peer-key", "%s/%s.key" % (tls, name)]
    p = subprocess.Popen(["nsenter", "--net=/var/run/netns/spc-n%d" % i, sandpit, "serve",
                          "--addr", addr + ":9501", "--data-dir", data, "--cluster", ETCD,
                          "--node-name", name, *peer],
                         env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=log)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection(addr, 9501, timeout=2)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return p
        except OSError:
            time.sleep(0.3)
    raise SystemExit("node %s did not start" % name)


def ms(values):
    return round(statistics.median(values) * 1000, 2)


def create(host, key, node):
    t = time.perf_counter()
    status, body = request(host, "POST", "/v1/sessions", key,
                           {"language": "python", "node": node})
    took = time.perf_counter() - t
    if status != 201:
        raise SystemExit("create on %s via %s: %s %s" % (node, host, status, body))
    return body["id"], took


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sandpit", default=os.path.join(ROOT, "target/debug/sandpit"))
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--creates", type=int, default=10)
    ap.add_argument("--executes", type=int, default=100)
    ap.add_argument("--mtls", action="store_true", help="the nodes talk mTLS to each other")
    args = ap.parse_args()
    sandpit = os.path.abspath(args.sandpit)
    script("up", "sandpit/python:latest")
    procs = {}
    opened = []
    out = {"cores": os.cpu_count(), "mtls": args.mtls}
    tls = certificates() if args.mtls else None
    try:
        for i, (name, addr) in enumerate(NODES, 1):
            procs[name] = start_node(sandpit, i, name, addr, tls)
        key = subprocess.run([sandpit, "keys", "add", "--name", "bench", "--cluster", ETCD],
                             check=True, capture_output=True, text=True).stdout.strip()
        time.sleep(2)
        owner_host, other_host = NODES[0][1], NODES[1][1]

        # Create p50: through the owner, and through another node (placed on n1 either way).
        rev0 = etcd_revision()
        direct, forwarded = [], []
        for _ in range(args.creates):
            sid, took = create(owner_host, key, "n1")
            opened.append((sid, owner_host))
            direct.append(took)
            sid, took = create(other_host, key, "n1")
            opened.append((sid, owner_host))
            forwarded.append(took)
        time.sleep(3)  # the nodes' load announcements land
        rev1 = etcd_revision()
        out["create_p50_ms_owner"] = ms(direct)
        out["create_p50_ms_forwarded"] = ms(forwarded)
        out["etcd_revisions_per_create"] = round((rev1 - rev0) / (2 * args.creates), 2)

        # Execute p50 on one session of n1, alternating the way in.
        sid = opened[0][0]
        owner, other = Client(owner_host, key), Client(other_host, key)
        for c in (owner, other):
            for _ in range(5):
                c.post("/v1/sessions/%s/execute" % sid, {"code": "1"})
        a, b = [], []
        rev2 = etcd_revision()
        for _ in range(args.executes):
            for c, into in ((owner, a), (other, b)):
                t = time.perf_counter()
                status, body = c.post("/v1/sessions/%s/execute" % sid, {"code": "1"})
                into.append(time.perf_counter() - t)
                if status != 200:
                    raise SystemExit("execute: %s %s" % (status, body))
        rev3 = etcd_revision()
        out["execute_p50_ms_owner"] = ms(a)
        out["execute_p50_ms_forwarded"] = ms(b)
        out["forwarding_adds_ms"] = round(out["execute_p50_ms_forwarded"] - out["execute_p50_ms_owner"], 2)
        out["etcd_revisions_per_execute"] = round((rev3 - rev2) / (2 * args.executes), 3)

        # Creates per second: 12 creates, 4 clients, all on n1, then spread over 3 nodes.
        def burst(pinned):
            jobs = []
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                t = time.perf_counter()
                for k in range(12):
                    host = NODES[k % 3][1]
                    jobs.append(pool.submit(create, host, key, "n1" if pinned else None))
                ids = [j.result()[0] for j in jobs]
                took = time.perf_counter() - t
            for i in ids:
                opened.append((i, owner_host))
            return round(12 / took, 2)

        out["creates_per_s_1_node"] = burst(True)
        out["creates_per_s_3_nodes"] = burst(False)

        # Closes.
        rev4 = etcd_revision()
        for sid, host in opened:
            status, _ = request(host, "DELETE", "/v1/sessions/" + sid, key)
            if status != 204:
                raise SystemExit("closing %s: %s" % (sid, status))
        n = len(opened)
        opened = []
        time.sleep(3)
        out["etcd_revisions_per_close"] = round((etcd_revision() - rev4) / n, 2)

        # A node lost: n3 (server and engine) killed by PID; a session of n3 through n1.
        lost_sid, _ = create(NODES[0][1], key, "n3")
        t = time.perf_counter()
        procs["n3"].kill()
        procs["n3"].wait()
        with open("/run/spc/n3/docker.pid") as f:
            os.kill(int(f.read().strip()), 9)
        while time.perf_counter() - t < 60:
            status, _ = request(NODES[0][1], "GET", "/v1/sessions/" + lost_sid, key, timeout=5)
            if status == 410:
                break
            time.sleep(0.1)
        out["node_lost_to_410_s"] = round(time.perf_counter() - t, 2)
        out["lease_ttl_s"] = 5
    finally:
        for sid, host in opened:
            try:
                request(host, "DELETE", "/v1/sessions/" + sid, key, timeout=30)
            except Exception:
                pass
        for p in procs.values():
            p.kill()
            p.wait()
        script("down")
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print("%-28s %s" % (k, v))


if __name__ == "__main__":
    sys.exit(main())
