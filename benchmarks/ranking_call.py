"""The personalized-ranking job's call alone: ``rank_ranking_batch`` over 1,024-line batches.

    python benchmarks/ranking_call.py                  # one thread, 10 seconds
    python benchmarks/ranking_call.py --threads 2 --seconds 30

Each line is ``{"userId": ..., "itemList": [50 ids]}`` (as ``job_benchmark.py`` writes them) over
200,000 users and a 100,000 x 64 catalogue; the call reads, ranks and writes them as the job
does. Prints microseconds per line: the best and the median pass over 200,000 lines.

For an A/B of two builds on a noisy machine, run both at the same moment, one thread each, so
that both see the same minute (NOTES, "Measuring on this machine"): an editable install ignores
``PYTHONPATH``, so the other build runs as
``PYTHONPATH=<its package's parent>:<site-packages> python -S benchmarks/ranking_call.py``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from recbatch.ids import IdIndex
from recbatch.ranking import rank_ranking_batch


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=64)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    user_factors = rng.standard_normal((args.users, args.dim), dtype=np.float32)
    item_factors = rng.standard_normal((args.items, args.dim), dtype=np.float32)
    users = IdIndex([f"u{u}" for u in range(args.users)])
    items = IdIndex([f"i{i}" for i in range(args.items)])
    lines = [
        (json.dumps({"userId": f"u{u}", "itemList": [f"i{i}" for i in listed]}) + "\n").encode()
        for u, listed in zip(
            rng.integers(0, args.users, args.lines),
            rng.integers(0, args.items, (args.lines, 50)),
            strict=True,
        )
    ]
    batches = [lines[start : start + 1024] for start in range(0, len(lines), 1024)]

    passes: list[float] = []
    stop = time.perf_counter() + args.seconds
    while not passes or time.perf_counter() < stop:
        start = time.perf_counter()
        for batch in batches:
            ranked = rank_ranking_batch(
                batch,
                users=users,
                items=items,
                user_factors=user_factors,
                item_factors=item_factors,
                max_id_chars=256,
                max_list=500,
                threads=args.threads,
            )
            assert ranked.done.all()
        passes.append((time.perf_counter() - start) / len(lines))
    passes.sort()
    print(
        f"{args.threads} thread(s): {1e6 * passes[0]:.2f} us per line best, "
        f"{1e6 * passes[len(passes) // 2]:.2f} median ({len(passes)} passes of {len(lines):,} lines)"
    )


if __name__ == "__main__":
    main()
