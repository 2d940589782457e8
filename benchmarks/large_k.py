"""Large k, as batch segment jobs ask (each item's top users): recbatch against NumPy.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/large_k.py
    python benchmarks/large_k.py --ks 1000,10000 --threads 2 --no-numpy

A Gaussian catalogue (--items x --dim, 200,000 x 64 by default: the users of a segment job) and
--queries queries (the items). Per k, milliseconds per query, the minimum of --repeat runs:
``ItemIndex.search`` on --threads threads, and NumPy on one thread (``queries @ items.T`` in
batches of 50, ``argpartition`` to the k best, then those k by score and lower index: recbatch's
order), its BLAS held to one thread with threadpoolctl. The last column is the share of the k
items both return (float32 sums in another order may swap items at the k-th score). Unset
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for the NumPy column (see NOTES, "Measuring on this
machine").
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from numpy.typing import NDArray

import recbatch

BATCH = 50  # NumPy's queries per matrix product: 50 x 200,000 float32 scores are 40 MB


def numpy_top_k(queries: NDArray[np.float32], items: NDArray[np.float32], k: int) -> NDArray[np.int64]:
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), BATCH):
        scores = queries[start : start + BATCH] @ items.T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(scores, part, axis=1)
        # Score descending, then index ascending, as recbatch orders ties.
        order = np.lexsort((part, -top), axis=1)
        out[start : start + BATCH] = np.take_along_axis(part, order, axis=1)
    return out


def best_ms(call: object, repeat: int, n: int) -> float:
    assert callable(call)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best / n * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--ks", default="100,1000,10000,100000")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-numpy", action="store_true")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    scale = args.dim**-0.25
    items = (rng.standard_normal((args.items, args.dim)) * scale).astype(np.float32)
    queries = (rng.standard_normal((args.queries, args.dim)) * scale).astype(np.float32)
    index = recbatch.ItemIndex(items, threads=args.threads)
    print(
        f"{args.items:,} x {args.dim} catalogue, {args.queries} queries, recbatch on {args.threads} thread(s)"
    )
    print("| k | recbatch, ms per query | NumPy (one thread) | NumPy / recbatch | items in common |")
    print("|---:|---:|---:|---:|---|")
    for k in (int(x) for x in args.ks.split(",")):
        ours = best_ms(lambda k=k: index.search(queries, k, threads=args.threads), args.repeat, args.queries)
        if args.no_numpy:
            print(f"| {k:,} | {ours:.3f} | | | |")
            continue
        # Imported here: only this column needs it, and lent machines lack it.
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            theirs = best_ms(lambda k=k: numpy_top_k(queries, items, k), args.repeat, args.queries)
            expected = numpy_top_k(queries, items, k)
        got = index.search(queries, k).indices
        common = np.mean([len(np.intersect1d(a, b)) / k for a, b in zip(got, expected, strict=True)])
        print(f"| {k:,} | {ours:.3f} | {theirs:.3f} | {theirs / ours:.1f}x | {100 * common:.3f}% |")


if __name__ == "__main__":
    main()
