"""llm-sandbox's half of `scripts/bench-peer.sh`: the same figures as `sandpit bench --peer`,
measured with llm-sandbox on the same engine and image, printed as one JSON object.

Two variants: "default" (llm-sandbox's defaults: environment setup on, i.e. a venv in the
container and `pip install --upgrade pip` through the network) and "skip" (skip_environment_setup=True).
Containers get the machine's CA bundle the way a user here would give it: a read-only volume
and PIP_CERT (runtime_configs). Every container carries the label sandpit.bench-peer=RUN_ID and
is removed at the end, whatever happened.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

import docker
from llm_sandbox import SandboxSession
from llm_sandbox.interactive import InteractiveSandboxSession
from llm_sandbox.pool import PoolConfig, PooledSandboxSession, create_pool_manager

LABEL = "sandpit.bench-peer"
CA_IN_CONTAINER = "/etc/ssl/certs/host-ca.crt"


def log(msg: str) -> None:
    print(f"llm-sandbox: {msg}", file=sys.stderr, flush=True)


class Figure:
    def __init__(self) -> None:
        self.samples: list[float] = []

    def add_ms(self, seconds: float) -> None:
        self.samples.append(seconds * 1000.0)

    def json(self) -> dict:
        return {
            "median": round(statistics.median(self.samples), 3) if self.samples else None,
            "n": len(self.samples),
            "samples": [round(s, 3) for s in self.samples],
        }


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        # One client for every session (as Sandpit shares one Engine), with room for the
        # concurrent opens' connections.
        self.client = docker.from_env(max_pool_size=max(16, args.concurrent + 8), timeout=600)
        self.results: dict[str, dict] = {"default": {}, "skip": {}}
        self.errors: dict[str, dict] = {"default": {}, "skip": {}}
        self.notes: list[str] = []

    # -- configuration ------------------------------------------------------------------
    def runtime_configs(self) -> dict:
        # A fresh dict each time: llm-sandbox adds to it (PYTHONUNBUFFERED, mem_limit).
        return {
            "volumes": {self.args.ca: {"bind": CA_IN_CONTAINER, "mode": "ro"}},
            "environment": {"PIP_CERT": CA_IN_CONTAINER},
            "labels": {LABEL: self.args.run_id},
        }

    def session(self, variant: str) -> SandboxSession:
        return SandboxSession(
            client=self.client,
            lang="python",
            image=self.args.image,
            runtime_configs=self.runtime_configs(),
            skip_environment_setup=(variant == "skip"),
        )

    def put(self, variant: str, key: str, figure: Figure) -> None:
        """Adds a figure, or its samples to the figure already under `key`."""
        old = self.results[variant].get(key)
        if old:
            figure.samples = old["samples"] + figure.samples
        self.results[variant][key] = figure.json()

    def fail(self, variant: str, keys: list[str], exc: BaseException) -> None:
        msg = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:400]
        log(f"{variant}: {', '.join(keys)} failed: {msg}")
        for k in keys:
            self.errors[variant][k] = msg

    def guarded(self, variant: str, keys: list[str], fn) -> None:
        try:
            fn(variant)
        except Exception as exc:  # noqa: BLE001 - recorded in the report, then cleaned up
            traceback.print_exc(file=sys.stderr)
            self.fail(variant, keys, exc)
            self.cleanup()

    # -- figures --------------------------------------------------------------------------
    def one_shot(self, variant: str) -> None:
        n = self.args.iterations if variant == "skip" else self.args.slow_iterations
        total, opened, ran, closed = Figure(), Figure(), Figure(), Figure()
        for i in range(n + 1):  # one warm-up, not counted
            s = self.session(variant)
            t0 = time.perf_counter()
            s.open()
            t1 = time.perf_counter()
            try:
                r = s.run("print(1)")
            finally:
                t2 = time.perf_counter()
                s.close()
                t3 = time.perf_counter()
            if r.stdout != "1\n" or r.exit_code != 0:
                raise RuntimeError(f"run printed {r.stdout!r}, exit {r.exit_code}, stderr {r.stderr[-300:]!r}")
            if i > 0:
                total.add_ms(t3 - t0)
                opened.add_ms(t1 - t0)
                ran.add_ms(t2 - t1)
                closed.add_ms(t3 - t2)
        for key, f in (("oneshot_ms", total), ("open_ms", opened), ("run_ms", ran), ("close_ms", closed)):
            self.put(variant, key, f)

    def check_setup(self, variant: str) -> None:
        """environment_setup() ignores failed commands: check that pip was really upgraded."""
        s = self.session(variant)
        s.open()
        try:
            out = s.execute_command("/sandbox/.sandbox-venv/bin/pip --version")
            self.notes.append(f"{variant}: venv pip after open: {(out.stdout or out.stderr).strip()[:120]}")
        finally:
            s.close()

    def interactive(self, variant: str) -> InteractiveSandboxSession:
        return InteractiveSandboxSession(
            client=self.client,
            lang="python",
            image=self.args.image,
            runtime_configs=self.runtime_configs(),
            skip_environment_setup=(variant == "skip"),
        )

    def stateful(self, variant: str) -> None:
        s = self.interactive(variant)
        t0 = time.perf_counter()
        s.open()
        opened = Figure()
        opened.add_ms(time.perf_counter() - t0)
        try:
            s.run("pass")  # first request, not counted
            calls, prints = Figure(), Figure()
            for _ in range(self.args.stateful_rounds):
                t = time.perf_counter()
                a = s.run("x = 41")
                calls.add_ms(time.perf_counter() - t)
                t = time.perf_counter()
                b = s.run("print(x + 1)")
                d = time.perf_counter() - t
                calls.add_ms(d)
                prints.add_ms(d)
                if a.exit_code != 0 or b.stdout != "42\n":
                    raise RuntimeError(f"stateful calls gave {a!r} / {b!r}")
        finally:
            s.close()
        self.put(variant, "stateful_open_ms", opened)
        self.put(variant, "stateful_call_ms", calls)
        self.put(variant, "stateful_print_ms", prints)

    def pool(self, variant: str) -> None:
        config = PoolConfig(min_pool_size=2, max_pool_size=4)
        pool = create_pool_manager(
            client=self.client,
            backend="docker",
            config=config,
            lang="python",
            image=self.args.image,
            runtime_configs=self.runtime_configs(),
            skip_environment_setup=(variant == "skip"),
        )
        try:
            deadline = time.monotonic() + 600
            while pool.get_stats()["state_counts"]["idle"] < 2:
                if time.monotonic() > deadline:
                    raise TimeoutError("the pool did not warm up in 600 s")
                time.sleep(0.2)
            acquire, run, release, cycle = Figure(), Figure(), Figure(), Figure()
            for i in range(self.args.iterations + 1):
                t0 = time.perf_counter()
                s = PooledSandboxSession(pool_manager=pool)
                s.open()
                t1 = time.perf_counter()
                try:
                    r = s.run("print(1)")
                finally:
                    t2 = time.perf_counter()
                    s.close()
                    t3 = time.perf_counter()
                if r.stdout != "1\n" or r.exit_code != 0:
                    raise RuntimeError(f"pooled run printed {r.stdout!r}, exit {r.exit_code}, stderr {r.stderr[-300:]!r}")
                if i > 0:
                    acquire.add_ms(t1 - t0)
                    run.add_ms(t2 - t1)
                    release.add_ms(t3 - t2)
                    cycle.add_ms(t3 - t0)
        finally:
            pool.close()
        for key, f in (
            ("pool_acquire_ms", acquire),
            ("pool_run_ms", run),
            ("pool_release_ms", release),
            ("pool_cycle_ms", cycle),
        ):
            self.put(variant, key, f)

    def memory(self, variant: str) -> None:
        """Idle interactive sessions (IPython runner started), and plain sessions for context."""
        n = self.args.memory_sessions
        plain: list = []
        try:
            for _ in range(n):
                s = self.session(variant)
                s.open()
                plain.append(s)
            time.sleep(1)
            bare = Figure()
            bare.samples = [self.container_memory(s.container)[0] for s in plain]
            self.put(variant, "idle_nokernel_mib", bare)
        finally:
            for s in plain:
                s.close()
        sessions: list = []
        opened = Figure()
        try:
            for _ in range(n):
                s = self.interactive(variant)
                t0 = time.perf_counter()
                s.open()
                opened.add_ms(time.perf_counter() - t0)
                sessions.append(s)
            time.sleep(2)
            net, usage, rss = Figure(), Figure(), Figure()
            for s in sessions:
                m = self.container_memory(s.container)
                net.samples.append(m[0])
                usage.samples.append(m[1])
                rss.samples.append(m[2])
        finally:
            for s in sessions:
                s.close()
        self.put(variant, "stateful_open_ms", opened)
        self.put(variant, "idle_kernel_mib", net)
        self.put(variant, "idle_kernel_usage_mib", usage)
        self.put(variant, "idle_kernel_rss_mib", rss)

    @staticmethod
    def container_memory(container) -> tuple[float, float, float]:
        st = container.stats(stream=False, one_shot=True)["memory_stats"]
        usage = st.get("usage", 0)
        stats = st.get("stats", {})

        def pick(*keys: str) -> int:
            return next((stats[k] for k in keys if k in stats), 0)

        cache = pick("total_cache", "cache", "file")
        rss = pick("total_rss", "rss", "anon")
        mib = 1024.0 * 1024.0
        return (max(usage - cache, 0) / mib, usage / mib, rss / mib)

    def concurrent(self, variant: str) -> None:
        n = self.args.concurrent
        reps = self.args.concurrent_reps if variant == "skip" else self.args.slow_concurrent_reps
        opened, closed = Figure(), Figure()
        for _ in range(reps):
            sessions = [self.session(variant) for _ in range(n)]
            errors: list[BaseException] = []
            lock = threading.Lock()

            def open_one(s) -> None:
                try:
                    s.open()
                except BaseException as exc:  # noqa: BLE001
                    with lock:
                        errors.append(exc)

            with ThreadPoolExecutor(max_workers=n) as ex:
                t0 = time.perf_counter()
                list(ex.map(open_one, sessions))
                t1 = time.perf_counter()
                list(ex.map(lambda s: s.close() if s.container else None, sessions))
                t2 = time.perf_counter()
            if errors:
                raise RuntimeError(f"{len(errors)} of {n} opens failed, first: {errors[0]!r}")
            opened.add_ms(t1 - t0)
            closed.add_ms(t2 - t1)
            time.sleep(2)
        self.put(variant, "concurrent_open_ms", opened)
        self.put(variant, "concurrent_close_ms", closed)

    # -- housekeeping -------------------------------------------------------------------
    def cleanup(self) -> int:
        removed = 0
        for c in self.client.containers.list(all=True, filters={"label": f"{LABEL}={self.args.run_id}"}):
            try:
                c.remove(force=True)
                removed += 1
            except docker.errors.NotFound:
                pass
        return removed

    def run(self) -> dict:
        steps = [
            ("one-shot open + run + close", ["oneshot_ms", "open_ms", "run_ms", "close_ms"], self.one_shot),
            ("interactive session", ["stateful_open_ms", "stateful_call_ms", "stateful_print_ms"], self.stateful),
            ("pool", ["pool_acquire_ms", "pool_run_ms", "pool_release_ms", "pool_cycle_ms"], self.pool),
            (
                "memory",
                ["idle_nokernel_mib", "idle_kernel_mib", "idle_kernel_usage_mib", "idle_kernel_rss_mib"],
                self.memory,
            ),
            ("concurrent opens", ["concurrent_open_ms", "concurrent_close_ms"], self.concurrent),
        ]
        try:
            self.guarded("default", ["setup_check"], self.check_setup)
            for name, keys, fn in steps:
                for variant in ("skip", "default"):
                    log(f"{variant}: {name}")
                    self.guarded(variant, keys, fn)
        finally:
            left = self.cleanup()
            if left:
                self.notes.append(f"removed {left} containers left behind")
        return {
            "tool": "llm-sandbox",
            "version": _version(),
            "docker_py": docker.__version__,
            "image": self.args.image,
            "variants": {
                "default": "llm-sandbox defaults: environment setup on (venv + pip install --upgrade pip)",
                "skip": "skip_environment_setup=True",
            },
            "rows": self.results,
            "errors": self.errors,
            "notes": self.notes,
        }


def _version() -> str:
    from importlib.metadata import version

    return version("llm-sandbox")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--image", default="sandpit/python:latest")
    p.add_argument("--ca", default="/etc/ssl/certs/ca-certificates.crt")
    p.add_argument("--run-id", required=True, help="value of the sandpit.bench-peer label")
    p.add_argument("--iterations", type=int, default=20, help="one-shot (skip variant) and pool iterations")
    p.add_argument("--slow-iterations", type=int, default=5, help="one-shot iterations with environment setup")
    p.add_argument("--stateful-rounds", type=int, default=100)
    p.add_argument("--concurrent", type=int, default=50)
    p.add_argument("--concurrent-reps", type=int, default=3, help="repetitions without environment setup")
    p.add_argument("--slow-concurrent-reps", type=int, default=1, help="repetitions with environment setup")
    p.add_argument("--memory-sessions", type=int, default=3)
    p.add_argument("--out", help="write the JSON here instead of standard output")
    args = p.parse_args()
    report = Bench(args).run()
    text = json.dumps(report, indent=2)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
