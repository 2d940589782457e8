"""The int8 screening pass (simd="avx2_int8", "avx2_vnni", "avx512_vnni", and "amx_int8" where
the CPU has them) against the float path whose kernel rescores its candidates (simd="avx2" or "avx512").

    python benchmarks/screening.py [W1 W2 W3] [--scale 0.05] [--repeat 3] [--queries bias]

Shapes: W1 5,000 x 100,000 (d=64, k=25), W2 1,000 x 1,000,000 (d=128, k=100), W3 20,000 x
20,000 (d=32, k=10) -- the issue's workloads with fewer queries (--scale multiplies the query
counts). Gaussian inputs, one thread, CPU time (time.process_time), the levels alternated
--repeat times and the minimum kept. Prints, per screening level, the effective GFLOP/s, the
speed-up over its float path, whether the results are identical, and the screening counters per
query (flagged items, rescored 32-item blocks).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import recbatch

# Each screening level and the float level whose kernel rescores its candidates.
FLOAT_LEVEL = {"avx2_int8": "avx2", "avx2_vnni": "avx2", "avx512_vnni": "avx512", "amx_int8": "avx512"}
WORKLOADS = {"W1": (5000, 100_000, 64, 25), "W2": (1000, 1_000_000, 128, 100), "W3": (20000, 20000, 32, 10)}


def make_queries(rng: np.random.Generator, n: int, d: int, kind: str) -> np.ndarray:
    if kind == "student":
        return rng.standard_t(2, size=(n, d)).astype(np.float32)
    queries = rng.standard_normal((n, d), dtype=np.float32)
    if kind == "bias":
        queries[:, -1] = 10.0
    return queries


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("workloads", nargs="*", choices=[*WORKLOADS, []], help="default: all")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the query counts")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--queries",
        choices=["gaussian", "bias", "student"],
        default="gaussian",
        help="query entries: Gaussian; Gaussian with one coordinate at 10 (a bias term, which sets"
        " the quantisation step); or Student-t with 2 degrees of freedom (heavy tails)",
    )
    args = parser.parse_args()
    available = recbatch.available_simd_levels()
    screening = [level for level in FLOAT_LEVEL if level in available]
    if not screening:
        raise SystemExit("this CPU has no AVX2: nothing to compare")
    floats = sorted({FLOAT_LEVEL[level] for level in screening})
    for name in args.workloads or list(WORKLOADS):
        n, m, d, k = WORKLOADS[name]
        n = max(12, int(n * args.scale))
        rng = np.random.default_rng(1)
        queries = make_queries(rng, n, d, args.queries)
        index = recbatch.ItemIndex(rng.standard_normal((m, d), dtype=np.float32))
        times: dict[str, list[float]] = {level: [] for level in [*floats, *screening]}
        results = {}
        stats: dict[str, dict[str, int]] = {}
        for _ in range(args.repeat):
            for level, samples in times.items():
                stats[level] = {}
                start = time.process_time()
                results[level] = index.search(queries, k, simd=level, threads=1, stats=stats[level])
                samples.append(time.process_time() - start)
        gflop = 2 * n * m * d / 1e9
        plain_times = ", ".join(
            f"{level} {min(times[level]):.3f}s ({gflop / min(times[level]):.0f})" for level in floats
        )
        print(f"{name} n={n} m={m} d={d} k={k}: {plain_times} (effective GFLOP/s)")
        for level in screening:
            t_plain = min(times[FLOAT_LEVEL[level]])
            plain, screened = results[FLOAT_LEVEL[level]], results[level]
            identical = np.array_equal(plain.indices, screened.indices) and np.array_equal(
                plain.scores, screened.scores
            )
            seconds = min(times[level])
            print(
                f"  {level} {seconds:.3f}s ({gflop / seconds:.0f}), speed-up {t_plain / seconds:.2f}x, "
                f"identical={identical}, flagged/query={stats[level]['candidates'] / n:.0f}, "
                f"rescored blocks/query={stats[level]['rescored_blocks'] / n:.1f} of {(m + 31) // 32}"
                f" (and items one by one {stats[level]['rescored_items'] / n:.0f})",
                flush=True,
            )


if __name__ == "__main__":
    main()
