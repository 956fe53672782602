#!/usr/bin/env python3
"""E2B's SDK on Sandpit beside Sandpit's own HTTP API, for the same work, in one run:

- `Sandbox.create()` (template `code-interpreter-v1`) against `POST /v1/sessions` (Python);
- a `run_code` round trip of a small cell against `POST /v1/sessions/{id}/execute`;
- `commands.run("echo hi")` against `POST /v1/sessions/{id}/commands` (`echo hi`).

Each figure is the median (and p90) of N calls after a warm-up, round trip as the client sees
it; creates are closed after they are timed.

    source scripts/e2b-sdks.sh && ensure_e2b_sdks
    "$SANDPIT_E2B_PYTHON" bench/e2b_bench.py [--sandpit target/release/sandpit] [-n 20] [--json]

The server runs on a free loopback port with a data folder of its own (no warm pool: creates
open their sandbox), removed at the end; every sandbox is killed.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

CELL = "x = x + 1 if 'x' in globals() else 1\nx"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def summary(samples):
    ms = sorted(s * 1000 for s in samples)
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 2),
        "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 2),
        "min_ms": round(ms[0], 2),
    }


def paired(e2b, v1, n, warmup):
    """Times `e2b` and `v1` alternately, so that a load that drifts weighs on both alike."""
    times = ([], [])
    for i in range(warmup + n):
        for side, f in enumerate((e2b, v1)):
            started = time.perf_counter()
            f()
            elapsed = time.perf_counter() - started
            if i >= warmup:
                times[side].append(elapsed)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sandpit", default="target/release/sandpit")
    parser.add_argument("-n", type=int, default=20, help="calls per figure (creates: half)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    data = tempfile.mkdtemp(prefix="sandpit-e2b-bench-")
    key = subprocess.run(
        [args.sandpit, "keys", "add", "--e2b", "--name", "bench", "--data-dir", data],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, SANDPIT_POOL="")
    server = subprocess.Popen(
        [args.sandpit, "serve", "--addr", f"127.0.0.1:{port}", "--data-dir", data],
        env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(data, "server.log"), "w"),
    )
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        os.environ["E2B_API_URL"] = os.environ["E2B_SANDBOX_URL"] = f"{url}/compat/e2b"
        os.environ["E2B_API_KEY"] = key
        from e2b_code_interpreter import Sandbox

        http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300)
        results = {}

        # Creates, alternately, each closed outside its timing; the first pair is a warm-up.
        def e2b_create():
            made.append(Sandbox.create(timeout=600))

        def v1_create():
            r = http.post("/v1/sessions", json={"language": "python"})
            r.raise_for_status()
            made_v1.append(r.json()["id"])

        made, made_v1 = [], []
        rounds = max(args.n // 2, 3)
        e2b_creates, v1_creates = [], []
        for i in range(rounds + 1):
            for f, out in ((e2b_create, e2b_creates), (v1_create, v1_creates)):
                started = time.perf_counter()
                f()
                elapsed = time.perf_counter() - started
                if i:
                    out.append(elapsed)
            made.pop().kill()
            http.delete(f"/v1/sessions/{made_v1.pop()}")
        results["create"] = {"e2b": summary(e2b_creates), "v1": summary(v1_creates)}

        sbx = Sandbox.create(timeout=600)
        sid = http.post("/v1/sessions", json={"language": "python"}).json()["id"]
        try:
            e2b_runs, v1_runs = paired(
                lambda: sbx.run_code(CELL),
                lambda: http.post(f"/v1/sessions/{sid}/execute", json={"code": CELL}).raise_for_status(),
                args.n, 5,
            )
            results["run_code"] = {"e2b": summary(e2b_runs), "v1": summary(v1_runs)}
            e2b_cmd, v1_cmd = paired(
                lambda: sbx.commands.run("echo hi"),
                lambda: http.post(f"/v1/sessions/{sid}/commands", json={"command": "echo hi"}).raise_for_status(),
                args.n, 3,
            )
            results["commands.run"] = {"e2b": summary(e2b_cmd), "v1": summary(v1_cmd)}
        finally:
            sbx.kill()
            http.delete(f"/v1/sessions/{sid}")

        if args.json:
            print(json.dumps(results, indent=2))
        else:
            print(f"{'figure':<14} {'E2B SDK p50':>12} {'p90':>9} {'/v1 p50':>10} {'p90':>9}")
            for name, r in results.items():
                e, v = r["e2b"], r["v1"]
                print(f"{name:<14} {e['median_ms']:>10.2f}ms {e['p90_ms']:>7.2f}ms {v['median_ms']:>8.2f}ms {v['p90_ms']:>7.2f}ms")
    finally:
        server.terminate()
        server.wait(timeout=60)
        subprocess.run(["rm", "-rf", data], check=False)


if __name__ == "__main__":
    sys.exit(main())
