#!/usr/bin/env python3
"""A bounded loopback load on `sandpit serve`: 50 concurrent clients (each with its own
keep-alive connection) calling

- `POST /v1/run` with Python `print(1)`, served from the warm pool;
- `POST /v1/sessions/{id}/execute` of a small cell on open sessions (kernels started first);
- `GET /v1/sessions` as a baseline: the same HTTP path, key check and JSON, no sandbox;

reporting p50/p90/p99/max latency as the client sees it, throughput and errors for each; the
server's resident memory (RSS) when idle, before and after the load; and, after the sessions
are closed and the server stopped, the containers of that server left behind (leaks).

    python3 bench/http_load.py [--sandpit target/release/sandpit] [--clients 50]
        [--run-rounds 4] [--exec-rounds 40] [--pool 50] [--json]

Targets (issue 9): /v1/run p50 <= 100 ms; execute p50 <= 5 ms; idle RSS <= 30 MiB; zero
errors; zero leaked containers. The figures are reported whatever they are; the exit status is
1 when a request failed or a container leaked, else 0. Only the standard library is used; the
server runs on a free loopback port with a data folder of its own, removed at the end. Every
request loop is bounded in count, and each request in time.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = {"run_p50_ms": 100.0, "execute_p50_ms": 5.0, "idle_rss_mib": 30.0}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


class Client:
    """One keep-alive connection with the key."""

    def __init__(self, port, key, timeout=120):
        self.port, self.key, self.timeout = port, key, timeout
        self.conn = None

    def call(self, method, path, body=None):
        """(status, parsed JSON or text); reconnects once if the connection was closed."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.key}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                try:
                    return r.status, json.loads(raw) if raw else None
                except ValueError:
                    return r.status, raw.decode(errors="replace")
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()


def percentile(sorted_ms, p):
    if not sorted_ms:
        return float("nan")
    k = max(0, min(len(sorted_ms) - 1, int(round(p / 100.0 * (len(sorted_ms) - 1)))))
    return sorted_ms[k]


def load(name, port, key, clients, rounds, request_of, check, pause=0.0):
    """`clients` threads, each `rounds` calls of `request_of(i, r)` -> (method, path, body),
    `pause` seconds apart; `check(status, body)` says whether an answer is right. Returns the
    figures."""
    latencies, errors, lock = [], [], threading.Lock()
    barrier = threading.Barrier(clients)

    def worker(i):
        c = Client(port, key)
        try:
            mine, bad = [], []
            barrier.wait(timeout=120)
            for r in range(rounds):
                method, path, body = request_of(i, r)
                t0 = time.perf_counter()
                try:
                    status, answer = c.call(method, path, body)
                    ok = check(status, answer)
                except Exception as e:  # noqa: BLE001 - every failure is an error here
                    status, answer, ok = None, repr(e), False
                mine.append((time.perf_counter() - t0) * 1000.0)
                if not ok:
                    bad.append((status, str(answer)[:300]))
                if pause:
                    time.sleep(pause)
            with lock:
                latencies.extend(mine)
                errors.extend(bad)
        finally:
            c.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    lat = sorted(latencies)
    return {
        "name": name,
        "clients": clients,
        "requests": len(lat),
        "errors": len(errors),
        "error_samples": errors[:5],
        "p50_ms": round(percentile(lat, 50), 2),
        "p90_ms": round(percentile(lat, 90), 2),
        "p99_ms": round(percentile(lat, 99), 2),
        "max_ms": round(lat[-1], 2) if lat else None,
        "mean_ms": round(statistics.fmean(lat), 2) if lat else None,
        "wall_s": round(wall, 2),
        "per_s": round(len(lat) / wall, 1) if wall else None,
    }


def containers(label):
    out = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label={label}", "--format", "{{.Names}}"],
        capture_output=True, text=True, check=False,
    )
    return [l for l in out.stdout.split() if l]


def server_label(session_id):
    out = subprocess.run(
        ["docker", "inspect", f"sandpit-python-{session_id}", "--format",
         '{{index .Config.Labels "sandpit.server"}}'],
        capture_output=True, text=True, check=True,
    )
    return "sandpit.server=" + out.stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_bin = os.path.join(ROOT, "target/release/sandpit")
    if not os.path.exists(default_bin):
        default_bin = os.path.join(ROOT, "target/debug/sandpit")
    ap.add_argument("--sandpit", default=default_bin, help="the sandpit binary (default: release if built)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--run-rounds", type=int, default=4, help="POST /v1/run calls per client")
    ap.add_argument("--exec-rounds", type=int, default=40, help="execute calls per client")
    ap.add_argument("--sessions", type=int, default=0, help="sessions for execute (default: one per client)")
    ap.add_argument("--pool", type=int, default=50, help="warm Python sessions for /v1/run")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args()
    n = args.clients
    sessions = args.sessions or n

    data = tempfile.mkdtemp(prefix="sandpit-http-load-")
    port = free_port()
    key = subprocess.run(
        [args.sandpit, "keys", "add", "--name", "load", "--data-dir", data],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    env = dict(os.environ)
    env.update({
        "SANDPIT_POOL": f"python={args.pool}",
        "SANDPIT_RUNS_PER_KEY": str(max(64, n + 8)),
        "SANDPIT_SESSIONS_PER_KEY": str(max(64, sessions + 8)),
        "SANDPIT_LOG": env.get("SANDPIT_LOG", "warn"),
    })
    log = open(os.path.join(data, "server.log"), "w")
    server = subprocess.Popen(
        [args.sandpit, "serve", "--addr", f"127.0.0.1:{port}", "--data-dir", data],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
    )
    report = {"sandpit": args.sandpit, "clients": n, "pool": args.pool, "sessions": sessions}
    failed = False
    ids = []
    label = None
    admin = Client(port, key)
    try:
        deadline = time.time() + 60
        while True:
            try:
                if admin.call("GET", "/health")[0] == 200:
                    break
            except OSError:
                admin.close()
                admin = Client(port, key)
            if time.time() > deadline or server.poll() is not None:
                raise SystemExit("the server did not start; see " + log.name)
            time.sleep(0.2)
        report["rss_mib_started"] = round(rss_mib(server.pid), 1)

        # Sessions for execute, kernels started; then the pool gets time to fill.
        def open_one(_):
            c = Client(port, key)
            try:
                status, s = c.call("POST", "/v1/sessions", {"language": "python"})
                assert status == 201, (status, s)
                status, out = c.call("POST", f"/v1/sessions/{s['id']}/execute", {"code": "x = 1"})
                assert status == 200, (status, out)
                return s["id"]
            finally:
                c.close()

        t0 = time.perf_counter()
        opened, lock = [], threading.Lock()

        def opener(i):
            sid = open_one(i)
            with lock:
                opened.append(sid)

        threads = [threading.Thread(target=opener, args=(i,)) for i in range(sessions)]
        for i, t in enumerate(threads):
            t.start()
            if i % 8 == 7:  # a few at a time: 2 cores
                for u in threads[i - 7:i + 1]:
                    u.join()
        for t in threads:
            t.join()
        ids = opened
        if len(ids) != sessions:
            raise SystemExit(f"only {len(ids)} of {sessions} sessions opened")
        label = server_label(ids[0])
        report["open_sessions_s"] = round(time.perf_counter() - t0, 1)
        pool_wait = time.time() + 180
        while time.time() < pool_wait:
            pooled = [c for c in containers(label) if c not in {f"sandpit-python-{i}" for i in ids}]
            if len(pooled) >= args.pool:
                break
            time.sleep(1)
        time.sleep(3)
        report["rss_mib_idle_before"] = round(rss_mib(server.pid), 1)

        results = []
        results.append(load(
            "GET /v1/sessions (no sandbox: the HTTP path alone)", port, key, n, args.exec_rounds,
            lambda i, r: ("GET", "/v1/sessions?language=python", None),
            lambda s, b: s == 200 and len(b["sessions"]) == sessions,
        ))
        results.append(load(
            "POST /v1/sessions/{id}/execute, sequential (1 client)", port, key, 1, 200,
            lambda i, r: ("POST", f"/v1/sessions/{ids[0]}/execute", {"code": "x + 1"}),
            lambda s, b: s == 200 and b["results"] == [{"text/plain": "2"}],
        ))
        results.append(load(
            f"POST /v1/sessions/{{id}}/execute ({sessions} sessions)", port, key, n, args.exec_rounds,
            lambda i, r: ("POST", f"/v1/sessions/{ids[i % len(ids)]}/execute", {"code": "x + 1"}),
            lambda s, b: s == 200 and b["results"] == [{"text/plain": "2"}],
        ))
        results.append(load(
            "POST /v1/run python print(1), sequential (1 client)", port, key, 1, 10,
            lambda i, r: ("POST", "/v1/run", {"language": "python", "code": "print(1)"}),
            lambda s, b: s == 200 and b["stdout"] == "1\n" and b["exit_code"] == 0,
        ))
        # An agent's pace: one call a second, the pool refilled between calls.
        time.sleep(5)
        results.append(load(
            "POST /v1/run python print(1), one call a second (1 client)", port, key, 1, 10,
            lambda i, r: ("POST", "/v1/run", {"language": "python", "code": "print(1)"}),
            lambda s, b: s == 200 and b["stdout"] == "1\n" and b["exit_code"] == 0,
            pause=1.0,
        ))
        # Give the pool time to fill again after the sequential runs.
        time.sleep(10)
        results.append(load(
            "POST /v1/run python print(1), warm pool", port, key, n, args.run_rounds,
            lambda i, r: ("POST", "/v1/run", {"language": "python", "code": "print(1)"}),
            lambda s, b: s == 200 and b["stdout"] == "1\n" and b["exit_code"] == 0,
        ))
        report["loads"] = results
        time.sleep(5)
        report["rss_mib_idle_after"] = round(rss_mib(server.pid), 1)
        failed = any(r["errors"] for r in results)
    finally:
        for sid in ids:
            try:
                admin.call("DELETE", f"/v1/sessions/{sid}")
            except Exception:  # noqa: BLE001 - best effort; the leak check below tells
                pass
        admin.close()
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log.close()
        if label:
            time.sleep(1)
            leaked = containers(label)
            report["leaked_containers"] = len(leaked)
            report["leaked_names"] = leaked[:10]
            failed = failed or bool(leaked)
        if failed:
            report["server_log_tail"] = open(os.path.join(data, "server.log")).read()[-3000:]
        shutil.rmtree(data, ignore_errors=True)

    loads = {r["name"]: r for r in report.get("loads", [])}
    run = next((r for k, r in loads.items() if k.endswith("warm pool")), None)
    exe = next((r for k, r in loads.items() if "sessions)" in k), None)
    report["targets"] = {
        "run_p50_ms": {"target": TARGETS["run_p50_ms"], "measured": run and run["p50_ms"]},
        "execute_p50_ms": {"target": TARGETS["execute_p50_ms"], "measured": exe and exe["p50_ms"]},
        "idle_rss_mib": {"target": TARGETS["idle_rss_mib"], "measured": report.get("rss_mib_idle_before")},
        "errors": {"target": 0, "measured": sum(r["errors"] for r in loads.values())},
        "leaked_containers": {"target": 0, "measured": report.get("leaked_containers")},
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"sandpit serve under load ({args.sandpit}; {n} clients, pool {args.pool}, {sessions} sessions)")
        print(f"{'load':58} {'reqs':>6} {'err':>4} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8} {'req/s':>7}")
        for r in report.get("loads", []):
            print(f"{r['name'][:58]:58} {r['requests']:>6} {r['errors']:>4} {r['p50_ms']:>6.1f}ms"
                  f" {r['p90_ms']:>6.1f}ms {r['p99_ms']:>6.1f}ms {r['max_ms']:>6.1f}ms {r['per_s']:>7}")
            for e in r["error_samples"]:
                print(f"    error: {e}")
        print(f"server RSS: {report.get('rss_mib_started')} MiB started, "
              f"{report.get('rss_mib_idle_before')} MiB idle before the load "
              f"({sessions} sessions open), {report.get('rss_mib_idle_after')} MiB idle after")
        print(f"containers of the server left after it stopped: {report.get('leaked_containers')}"
              + (f" {report['leaked_names']}" if report.get("leaked_names") else ""))
        for name, t in report["targets"].items():
            print(f"target {name}: {t['measured']} (target {t['target']})")
        if failed and report.get("server_log_tail"):
            print("server log (tail):\n" + report["server_log_tail"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
