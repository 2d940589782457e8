"""What filters and the log-sum-exp cost: each variant's time against the plain search.

    python benchmarks/filters.py [--queries 20000] [--items 100000] [--dim 64] [--k 25] [--repeat 3]

Default shape: W1's catalogue (100,000 items, d=64, k=25) with 20,000 queries, Gaussian inputs,
2 threads. Per SIMD level (the best one and, where it differs, the plain float32 ``avx512``
path) it times the plain search, 100 random excluded items per query, an allow mask of half the
catalogue, and ``logsumexp=True``. The variants run round-robin (so background load hits them
alike) and the median of --repeat runs is kept. Issue 5's targets: filters within 10% of the
plain search, the log-sum-exp within 15% (of the float32 path: the exact softmax denominator
needs every item's exact score, so it turns screening and pruning off).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable

import numpy as np
from workloads import seen_items

import recbatch


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--k", type=int, default=25)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--levels", default=None, help="comma-separated SIMD levels (default: best, and avx512)"
    )
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    queries = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    index = recbatch.ItemIndex(rng.standard_normal((args.items, args.dim), dtype=np.float32))
    seen = seen_items(args.queries, args.items, 100)
    allow = np.random.default_rng(6).random(args.items) < 0.5
    if args.levels:
        levels = args.levels.split(",")
    else:
        best = recbatch.simd_level()
        float_level = {
            "avx2_int8": "avx2",
            "avx2_vnni": "avx2",
            "avx512_vnni": "avx512",
            "amx_int8": "avx512",
        }
        levels = [best] + ([float_level[best]] if best in float_level else [])

    variants: dict[str, dict[str, object]] = {
        "plain": {},
        "exclude 100/query": {"exclude": seen},
        "allow half": {"allow": allow},
        "logsumexp": {"logsumexp": True},
    }
    print(f"{args.queries:,} x {args.items:,}, d={args.dim}, k={args.k}, {args.threads} threads", flush=True)
    for level in levels:
        runs: list[tuple[str, Callable[[], object]]] = [
            (name, functools.partial(index.search, queries, args.k, threads=args.threads, simd=level, **kw))  # type: ignore[arg-type]
            for name, kw in variants.items()
        ]
        times: dict[str, list[float]] = {name: [] for name, _ in runs}
        for _ in range(args.repeat):
            for name, run in runs:
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
        plain = statistics.median(times["plain"])
        for name, samples in times.items():
            median = statistics.median(samples)
            print(f"{level:12s} {name:18s} {median:7.3f} s  {median / plain:5.2f}x plain", flush=True)


if __name__ == "__main__":
    main()
