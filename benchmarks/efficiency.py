"""recbatch's brute force as a share of the machine's float32 FMA peak, and what the
log-sum-exp costs on top (issue 5, targets 1 and 4).

    python benchmarks/efficiency.py --threads 2 --scale 0.1
    taskset -c 0,1 python benchmarks/efficiency.py --threads 2   # two cores of a bigger machine

Per workload (W1/W2/W3 with --scale times the queries, Gaussian inputs) and SIMD level (the
plain float32 path ``avx512``, or ``avx2`` where that is the widest, and the default path), the
median wall time of --repeat runs, effective GFLOP/s (2*n*m*d / time) and that rate as a share
of the FMA peak measured by ``limits.fma_peaks`` at the same thread count (a register-only FMA
loop, widest ISA, wall clock). ``logsumexp=True`` is timed on the float32 path, whose work it
shares (it turns screening and pruning off), and reported as a ratio to it. Runs alternate
between variants so that background load hits them alike.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from limits import fma_peaks
from workloads import WORKLOADS, gaussian_arrays

import recbatch


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workloads", default="W1,W2,W3")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scale", type=float, default=0.1, help="multiplies the number of queries")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    peaks = [p for p in fma_peaks(args.threads) if p.gflops]
    peak = max(peaks, key=lambda p: p.gflops or 0.0)
    print(
        f"recbatch {recbatch.__version__}; FMA peak ({peak.isa}, {args.threads} threads): {peak.gflops:.0f} GFLOP/s",
        flush=True,
    )
    levels = recbatch.available_simd_levels()
    float_level = "avx512" if "avx512" in levels else levels[-1]
    default_level = recbatch.simd_level()
    print("| workload | path | seconds | GFLOP/s | % of FMA peak | vs float32 path |")
    print("|---|---|---:|---:|---:|---:|")
    for name in args.workloads.split(","):
        wl = WORKLOADS[name].scaled(args.scale)
        queries, items = gaussian_arrays(wl, seed=0)
        index = recbatch.ItemIndex(items)
        variants = {f"{float_level}": (float_level, False), f"{float_level} + logsumexp": (float_level, True)}
        if default_level != float_level:
            variants[f"{default_level} (default)"] = (default_level, False)
        times: dict[str, list[float]] = {label: [] for label in variants}
        for _ in range(args.repeat):
            for label, (level, lse) in variants.items():
                start = time.perf_counter()
                index.search(queries, wl.k, threads=args.threads, simd=level, logsumexp=lse)
                times[label].append(time.perf_counter() - start)
        base = statistics.median(times[float_level])
        for label, samples in times.items():
            seconds = statistics.median(samples)
            gflops = wl.flops / seconds / 1e9
            shape = f"{name}: {wl.n:,} x {wl.m:,}, d={wl.d}, k={wl.k}"
            print(
                f"| {shape} | {label} | {seconds:.3f} | {gflops:.0f} | {100 * gflops / (peak.gflops or np.nan):.0f}% "
                f"| {seconds / base:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
