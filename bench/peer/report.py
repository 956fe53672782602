"""Prints the table of `scripts/bench-peer.sh` from the two JSON halves:
`sandpit bench --peer --json` and `llm_sandbox_bench.py`."""

from __future__ import annotations

import argparse
import json

# key, label, unit, target (kind, value) or None
ROWS = [
    ("oneshot_ms", "one-shot: open + run print(1) + close", "ms", ("faster_than_default", 20.0)),
    ("open_ms", "  open", "ms", None),
    ("run_ms", "  run in an open session", "ms", None),
    ("close_ms", "  close", "ms", ("max", 100.0)),
    ("stateful_call_ms", "stateful call (x = 41 / print(x + 1))", "ms", ("max", 5.0)),
    ("stateful_open_ms", "  stateful session open, kernel ready", "ms", None),
    ("pool_acquire_ms", "pool acquire", "ms", ("max", 5.0)),
    ("pool_cycle_ms", "pool acquire + run + release", "ms", None),
    ("concurrent_open_ms", "{n} sessions opened at once, wall", "ms", ("raw_ratio", 1.3)),
    ("idle_kernel_mib", "idle session with kernel (usage - cache)", "MiB", ("max", 30.0)),
    ("idle_nokernel_mib", "  idle session, no kernel", "MiB", None),
]

RAW = {
    "oneshot_ms": "raw_oneshot_ms",
    "open_ms": "raw_open_ms",
    "run_ms": "raw_run_ms",
    "close_ms": "raw_close_ms",
    "concurrent_open_ms": "raw_concurrent_open_ms",
}


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 0.1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("sandpit")
    p.add_argument("peer")
    p.add_argument("--machine", default="")
    a = p.parse_args()
    ours = json.load(open(a.sandpit, encoding="utf-8"))
    peer = json.load(open(a.peer, encoding="utf-8"))
    n_conc = ours.get("concurrent", 50)

    def med(rows: dict, key: str) -> float | None:
        f = rows.get(key)
        return f["median"] if f else None

    def count(rows: dict, key: str) -> str:
        f = rows.get(key)
        return str(f["n"]) if f else "0"

    footnotes: list[str] = []

    def peer_cell(variant: str, key: str) -> tuple[str, float | None]:
        v = med(peer["rows"][variant], key)
        if v is not None:
            return fmt(v), v
        err = peer["errors"][variant].get(key)
        if err:
            if err not in footnotes:
                footnotes.append(err)
            return f"fails[{footnotes.index(err) + 1}]", None
        return "-", None

    header = (
        f"{'figure (median)':<42} {'unit':<4} {'Sandpit':>8} {'raw':>8} "
        f"{'llm-sb default':>14} {'x':>6} {'llm-sb skip':>11} {'x':>6}  {'n S/d/s':<10} target"
    )
    lines = [header, "-" * (len(header) + 22)]
    for key, label, unit, target in ROWS:
        rows = ours["rows"]
        s = med(rows, key)
        raw_key = RAW.get(key)
        raw = med(rows, raw_key) if raw_key else None
        d_txt, d = peer_cell("default", key)
        k_txt, k = peer_cell("skip", key)
        rd = f"{d / s:.1f}x" if d is not None and s else "-"
        rk = f"{k / s:.2f}x" if k is not None and s else "-"
        n = f"{count(rows, key)}/{count(peer['rows']['default'], key)}/{count(peer['rows']['skip'], key)}"
        tgt = ""
        if target and s is not None:
            kind, val = target
            if kind == "max":
                ok = s <= val
                tgt = f"<= {fmt(val)} {unit}: {'met' if ok else 'MISSED'}"
            elif kind == "faster_than_default":
                ok = d is not None and d / s >= val
                tgt = f">= {val:.0f}x faster than llm-sb default: {'met' if ok else 'MISSED'}"
            elif kind == "raw_ratio":
                ok = raw is not None and s / raw <= val
                got = f"{s / raw:.2f}x raw" if raw else "no raw figure"
                tgt = f"<= {val}x raw engine ({got}): {'met' if ok else 'MISSED'}"
        lines.append(
            f"{label.format(n=n_conc):<42} {unit:<4} {fmt(s):>8} {fmt(raw):>8} "
            f"{d_txt:>14} {rd:>6} {k_txt:>11} {rk:>6}  {n:<10} {tgt}"
        )
    print(
        f"Sandpit {ours.get('version', '?')} vs llm-sandbox {peer.get('version', '?')} "
        f"(docker-py {peer.get('docker_py', '?')}), same engine, image {ours.get('image')}"
    )
    if a.machine:
        print(f"machine: {a.machine}")
    print()
    print("\n".join(lines))
    print()
    print("x = llm-sandbox / Sandpit (above 1: Sandpit is faster or smaller).")
    print("raw = the engine alone via bollard: create + start (network none), one exec of python, a forced")
    print(f"  remove; for the concurrent row, {n_conc} creates + starts at once.")
    print("llm-sb default = llm-sandbox's defaults (environment setup: venv + pip install --upgrade pip);")
    print("llm-sb skip = skip_environment_setup=True. n S/d/s = samples for Sandpit / default / skip.")
    print("stateful: Sandpit execute() vs llm-sandbox InteractiveSandboxSession.run(), median per call over")
    print("  both calls of every round. Memory: the container's memory cgroup from the engine's one-shot")
    print("  stats, usage minus page cache (cgroup v1 total_cache), 2 s after the kernel was ready.")
    print("pool: Sandpit SessionPool (idle 2, max 4; release closes the session, a fresh one opens in the")
    print("  background) vs llm-sandbox's Docker pool (min 2, max 4; PooledSandboxSession.open() as acquire;")
    print("  release hands the same container, state and files included, to the next caller).")
    for i, f in enumerate(footnotes, 1):
        print(f"[{i}] {f}")
    for note in peer.get("notes", []):
        print(f"llm-sandbox: {note}")


if __name__ == "__main__":
    main()
