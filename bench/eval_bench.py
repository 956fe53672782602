#!/usr/bin/env python3
"""An eval-style load: a few hundred small, independent Python programs that check their own
answers (as a code-model evaluation or an RL harness sends them), through `POST /v1/run` of a
real `sandpit serve` with 1, 8 and 32 clients, in fresh sandboxes and in recycled ones (a
sandbox reset by its agent and reused for the same key), beside the same programs run as plain
local processes on this machine with the same concurrency.

    python3 bench/eval_bench.py [--sandpit target/release/sandpit] [--programs 300]
        [--clients 1,8,32] [--pool 8] [--json]

Reports runs per second, p50 and p99 latency and failures for each mode and client count, the
recycled throughput as a share of the local processes' (target: at least 100% with 8 clients),
and the containers of the server left once it stopped (target: none). The exit status is 1
when a program failed or a container leaked. Only the standard library is used; the server runs
on a free loopback port with a data folder of its own, removed at the end.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_SHARE = 1.0  # recycled runs/s >= local processes' runs/s with 8 clients

TASKS = [
    # (source template, expected value as Python computes it on the host)
    ("print(sum(i * i for i in range({n})))", lambda n: sum(i * i for i in range(n))),
    ("print(sorted([(x * 7919) % {m} for x in range(50)])[{k}])",
     lambda n: sorted([(x * 7919) % (n + 13) for x in range(50)])[n % 50]),
    ("s = 'abcdefghij' * {r}\nprint(s[::-1].count('j'))", lambda n: ("abcdefghij" * (n % 40 + 1))[::-1].count("j")),
    ("import json\nprint(len(json.dumps({{'k': list(range({n}))}})))",
     lambda n: len(json.dumps({"k": list(range(n))}))),
    ("a, b = 0, 1\nfor _ in range({f}):\n    a, b = b, a + b\nprint(a)", None),
    ("print(len([p for p in range(2, {n}) if all(p % d for d in range(2, int(p ** 0.5) + 1))]))",
     lambda n: len([p for p in range(2, n) if all(p % d for d in range(2, int(p ** 0.5) + 1))])),
]


def fib(k):
    a, b = 0, 1
    for _ in range(k):
        a, b = b, a + b
    return a


def programs(count):
    """`count` programs, each printing 'ok' when its own answer matches the expected one."""
    out = []
    for i in range(count):
        template, expect = TASKS[i % len(TASKS)]
        n = 200 + i
        values = {"n": n, "m": n + 13, "k": n % 50, "r": n % 40 + 1, "f": 30 + i % 60}
        expected = fib(values["f"]) if expect is None else expect(n)
        body = template.format(**values)
        # The program checks itself: its printed value against the expected one.
        code = (
            "import io, contextlib\n"
            "buf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf):\n"
            + "".join("    " + line + "\n" for line in body.split("\n"))
            + f"got = buf.getvalue().strip()\n"
            f"assert got == {str(expected)!r}, (got, {str(expected)!r})\n"
            "print('ok')\n"
        )
        out.append(code)
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(sorted_ms, p):
    if not sorted_ms:
        return float("nan")
    k = max(0, min(len(sorted_ms) - 1, int(round(p / 100.0 * (len(sorted_ms) - 1)))))
    return sorted_ms[k]


def measure(name, clients, codes, run_one):
    """Runs every program with `clients` workers; the figures."""
    latencies, failures, lock = [], [], threading.Lock()
    queue = list(enumerate(codes))

    def worker():
        local = threading.local()
        while True:
            with lock:
                if not queue:
                    return
                i, code = queue.pop()
            t0 = time.perf_counter()
            try:
                ok, detail = run_one(local, code)
            except Exception as e:  # noqa: BLE001 - every failure counts
                ok, detail = False, repr(e)
            took = (time.perf_counter() - t0) * 1000.0
            with lock:
                latencies.append(took)
                if not ok:
                    failures.append((i, str(detail)[:200]))

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    lat = sorted(latencies)
    return {
        "mode": name,
        "clients": clients,
        "runs": len(lat),
        "failures": len(failures),
        "failure_samples": failures[:3],
        "per_s": round(len(lat) / wall, 1),
        "p50_ms": round(percentile(lat, 50), 1),
        "p99_ms": round(percentile(lat, 99), 1),
        "wall_s": round(wall, 2),
    }


def local_run(_local, code):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    return out.returncode == 0 and out.stdout == "ok\n", out.stderr[-200:]


def http_run(port, key, fresh):
    def run(local, code):
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        body = json.dumps({"language": "python", "code": code, "timeout": 30, "fresh": fresh})
        conn.request("POST", "/v1/run", body=body,
                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        r = conn.getresponse()
        answer = json.loads(r.read() or b"null")
        ok = r.status == 200 and answer.get("exit_code") == 0 and answer.get("stdout") == "ok\n"
        return ok, (r.status, answer)

    return run


def containers(label):
    out = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label={label}", "--format", "{{.Names}}"],
        capture_output=True, text=True, check=False,
    )
    return [l for l in out.stdout.split() if l]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_bin = os.path.join(ROOT, "target/release/sandpit")
    if not os.path.exists(default_bin):
        default_bin = os.path.join(ROOT, "target/debug/sandpit")
    ap.add_argument("--sandpit", default=default_bin)
    ap.add_argument("--programs", type=int, default=300)
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--pool", type=int, default=8, help="warm Python sandboxes for fresh runs")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    client_counts = [int(c) for c in args.clients.split(",") if c.strip()]
    codes = programs(args.programs)

    data = tempfile.mkdtemp(prefix="sandpit-eval-bench-")
    port = free_port()
    key = subprocess.run(
        [args.sandpit, "keys", "add", "--name", "eval", "--data-dir", data],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    env = dict(os.environ)
    env.update({
        "SANDPIT_POOL": f"python={args.pool}",
        "SANDPIT_RUNS_PER_KEY": str(max(client_counts)),
        "SANDPIT_LOG": env.get("SANDPIT_LOG", "warn"),
    })
    log = open(os.path.join(data, "server.log"), "w")
    server = subprocess.Popen(
        [args.sandpit, "serve", "--addr", f"127.0.0.1:{port}", "--data-dir", data],
        env=env, stdout=log, stderr=log, start_new_session=True,
    )
    results, label = [], None
    try:
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start; see " + log.name)
                time.sleep(0.2)
        # Warm-up: the pool fills, the first sandboxes are made.
        warm = http_run(port, key, False)
        for code in codes[:4]:
            warm(threading.local(), code)
        for clients in client_counts:
            results.append(measure("local", clients, codes, local_run))
            results.append(measure("recycled", clients, codes, http_run(port, key, False)))
            results.append(measure("fresh", clients, codes, http_run(port, key, True)))
        with sqlite3.connect(os.path.join(data, "sandpit.db")) as db:
            row = db.execute("SELECT value FROM server WHERE key = 'id'").fetchone()
        label = f"sandpit.server={row[0]}" if row else None
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
    time.sleep(2)
    leaked = containers(label) if label else []
    shutil.rmtree(data, ignore_errors=True)

    by = {(r["mode"], r["clients"]): r for r in results}
    share = {
        c: round(by[("recycled", c)]["per_s"] / by[("local", c)]["per_s"], 2)
        for c in client_counts
        if ("local", c) in by and by[("local", c)]["per_s"]
    }
    report = {"programs": len(codes), "results": results, "recycled_share_of_local": share,
              "leaked_containers": leaked}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{len(codes)} self-checking Python programs per row")
        print(f"{'mode':<9} {'clients':>7} {'runs/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7}")
        for r in results:
            print(f"{r['mode']:<9} {r['clients']:>7} {r['per_s']:>8} {r['p50_ms']:>8} {r['p99_ms']:>8} {r['failures']:>7}")
        for c, s in share.items():
            print(f"recycled / local with {c} clients: {s:.0%}")
        print(f"containers left: {len(leaked)}")
        for r in results:
            for sample in r["failure_samples"]:
                print(f"  {r['mode']} x{r['clients']} failed: {sample}")
    failed = any(r["failures"] for r in results) or leaked
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
