#!/usr/bin/env python3
"""Round trip of one stateful `execute` call, in one run, three ways against the same engine:

- MCP over stdio: `sandpit mcp`, driven by the official MCP Python SDK;
- MCP over streamable HTTP: `/mcp` on `sandpit serve`, driven by the same SDK;
- the HTTP API's own `POST /v1/sessions/{id}/execute`, with a keep-alive HTTP client.

Each side opens one Python session, warms it up (the kernel starts on the first call), then
times N calls of the same small cell, round trip as the client sees it. The sandbox's own
share (the kernel call, `duration_ms` of the HTTP API's answer) is shown beside them.

    source scripts/mcp-client.sh && ensure_mcp_client
    "$SANDPIT_MCP_PYTHON" bench/mcp_bench.py [--sandpit target/release/sandpit] [-n 50] [--json]

The server runs on a free loopback port with a data folder of its own, removed at the end;
every session either side opened is closed.
"""

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

CELL = "x = x + 1 if 'x' in globals() else 1\nx"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def summary(samples):
    ms = sorted(s * 1000 for s in samples)
    return {
        "n": len(ms),
        "median_ms": statistics.median(ms),
        "p90_ms": ms[int(0.9 * (len(ms) - 1))],
        "mean_ms": statistics.fmean(ms),
        "min_ms": ms[0],
    }


async def mcp_side(server, n, warmup):
    times = []
    async with Client(server, read_timeout_seconds=120) as client:
        created = await client.call_tool("create_session", {"language": "python"})
        text = "".join(c.text for c in created.content if c.type == "text")
        if created.is_error:
            raise SystemExit(f"create_session failed: {text}")
        session = text.split("session_id: ", 1)[1].split()[0]
        try:
            for i in range(warmup + n):
                started = time.perf_counter()
                r = await client.call_tool("execute", {"session_id": session, "code": CELL})
                elapsed = time.perf_counter() - started
                if r.is_error:
                    raise SystemExit(f"execute failed: {r.content}")
                if i >= warmup:
                    times.append(elapsed)
        finally:
            await client.call_tool("close_session", {"session_id": session})
    return times


def http_api_side(url, key, n, warmup):
    headers = {"Authorization": f"Bearer {key}"}
    times, kernel = [], []
    with httpx2.Client(base_url=url, headers=headers, timeout=120) as http:
        r = http.post("/v1/sessions", json={"language": "python"})
        r.raise_for_status()
        session = r.json()["id"]
        try:
            for i in range(warmup + n):
                started = time.perf_counter()
                r = http.post(f"/v1/sessions/{session}/execute", json={"code": CELL})
                elapsed = time.perf_counter() - started
                r.raise_for_status()
                if i >= warmup:
                    times.append(elapsed)
                    kernel.append(r.json()["duration_ms"] / 1000)
        finally:
            http.delete(f"/v1/sessions/{session}")
    return times, kernel


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    default_bin = os.path.join(root, "target", "release", "sandpit")
    if not os.path.exists(default_bin):
        default_bin = os.path.join(root, "target", "debug", "sandpit")
    parser.add_argument("--sandpit", default=default_bin, help="the sandpit binary (default: target/release, else target/debug)")
    parser.add_argument("-n", type=int, default=50, help="timed calls per side (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls first (default 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()
    if not os.path.exists(args.sandpit):
        raise SystemExit(f"mcp_bench.py: {args.sandpit} is missing: cargo build --release -p sandpit-cli")

    data = tempfile.mkdtemp(prefix="sandpit-mcp-bench-")
    key = subprocess.run(
        [args.sandpit, "keys", "add", "--name", "bench", "--data-dir", data],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, SANDPIT_POOL="python=0")
    log = open(os.path.join(data, "server.log"), "w")
    server = subprocess.Popen(
        [args.sandpit, "serve", "--addr", f"127.0.0.1:{port}", "--data-dir", data],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx2.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            if server.poll() is not None or time.time() > deadline:
                raise SystemExit("mcp_bench.py: sandpit serve did not start; see " + log.name)
            time.sleep(0.1)

        stdio = StdioServerParameters(
            command=args.sandpit, args=["mcp"],
            env={k: v for k, v in os.environ.items() if k.startswith(("SANDPIT_", "DOCKER_"))},
        )
        http_transport = streamable_http_client(
            f"{url}/mcp", http_client=create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
        )
        results = {}
        results["mcp_stdio"] = summary(asyncio.run(mcp_side(stdio, args.n, args.warmup)))
        results["mcp_http"] = summary(asyncio.run(mcp_side(http_transport, args.n, args.warmup)))
        api, kernel = http_api_side(url, key, args.n, args.warmup)
        results["http_api"] = summary(api)
        results["kernel_only"] = summary(kernel)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        subprocess.run(["rm", "-rf", data], check=False)

    if args.json:
        json.dump({"binary": args.sandpit, "cell": CELL, "results": results}, sys.stdout, indent=2)
        print()
        return
    labels = {
        "mcp_stdio": "MCP execute, stdio (sandpit mcp)",
        "mcp_http": "MCP execute, streamable HTTP (/mcp)",
        "http_api": "HTTP API execute (POST .../execute)",
        "kernel_only": "  of which in the sandbox (duration_ms)",
    }
    print(f"binary: {args.sandpit}; {args.n} calls per side after {args.warmup} warm-up calls")
    print(f"{'':40} {'median':>8} {'p90':>8} {'mean':>8} {'min':>8}   (ms)")
    for k, label in labels.items():
        r = results[k]
        print(f"{label:40} {r['median_ms']:8.2f} {r['p90_ms']:8.2f} {r['mean_ms']:8.2f} {r['min_ms']:8.2f}")


if __name__ == "__main__":
    main()
