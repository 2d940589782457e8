"""How the kernel scales with threads: W2's shape (queries x 1,000,000 items, d=128, k=100).

    python benchmarks/thread_scaling.py --threads 1,2,4,8,16 --queries 8000

Prints, per SIMD level and thread count, the median seconds of --repeat runs, effective
GFLOP/s (2*n*m*d / time) and the speed-up over one thread; beside them, the machine's own
scaling: a register-only FMA loop (``limits.fma_peaks``, best of 5) at the same thread count and
its speed-up over one thread. Many-core CPUs lower their clock as more cores run wide vector
code, so the loop's speed-up is the most any compute-bound kernel can reach there; the last
column is the search's speed-up as a share of it (--no-peak skips the loop).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
from limits import fma_peaks

import recbatch


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=8000)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--threads", default="1,2,4,8,16")
    parser.add_argument("--levels", default=None, help="comma-separated SIMD levels (default: the best one)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-peak", action="store_true", help="skip the FMA loop at each thread count")
    args = parser.parse_args()
    thread_counts = [int(t) for t in args.threads.split(",")]

    rng = np.random.default_rng(0)
    items = rng.standard_normal((args.items, args.dim), dtype=np.float32)
    queries = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    index = recbatch.ItemIndex(items)
    flops = 2.0 * args.queries * args.items * args.dim
    levels = args.levels.split(",") if args.levels else [recbatch.simd_level()]
    print(f"{cpu_name()}; {len(os.sched_getaffinity(0))} usable CPUs; recbatch {recbatch.__version__}")
    print(
        f"{args.queries:,} queries x {args.items:,} items, d={args.dim}, k={args.k}; median of {args.repeat}"
    )
    loop = {} if args.no_peak else {t: fma_loop(t) for t in sorted({1, *thread_counts})}
    print(
        "| SIMD | threads | seconds | GFLOP/s | speed-up | FMA loop GFLOP/s | loop speed-up | share of loop's |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for level in levels:
        base = None
        for threads in thread_counts:
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                index.search(queries, args.k, threads=threads, simd=level)
                times.append(time.perf_counter() - start)
            seconds = statistics.median(times)
            base = base or seconds * threads if threads == 1 else base
            speedup = (base / seconds) if base else float("nan")
            peak = loop.get(threads)
            loop_speedup = peak / loop[1] if peak and loop.get(1) else float("nan")
            print(
                f"| {level} | {threads} | {seconds:.4f} | {flops / seconds / 1e9:.0f} | {speedup:.2f}x"
                f" | {peak or float('nan'):.0f} | {loop_speedup:.2f}x | {speedup / loop_speedup:.0%} |",
                flush=True,
            )


def fma_loop(threads: int) -> float | None:
    """The widest ISA's register-only FMA loop at ``threads`` threads, GFLOP/s (None without one)."""
    rates = [p.gflops for p in fma_peaks(threads) if p.gflops]
    return max(rates) if rates else None


if __name__ == "__main__":
    main()
