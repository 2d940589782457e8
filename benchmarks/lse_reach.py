"""How many items a log-sum-exp could skip with a bounded error (NOTES entry 53; analysis, not built).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/lse_reach.py

Each item contributes exp(s) to the softmax denominator. An item more than T = ln(m) + b ln 2 below
a query's largest score adds less than 2^-b of the sum, and so do all such items together. They
could be skipped with a relative error below 2^-b, far under float32 rounding for b = 30. The
script prints, for 200 queries of each workload (float64 scores), the typical gap between a
query's largest and median score and the share of items that lie within T of the largest, which
would still need their exact scores.
"""

from __future__ import annotations

import argparse

import numpy as np
import workloads as w
from numpy.typing import NDArray

rng = np.random.default_rng(1)


def share(name: str, queries: NDArray[np.float32], items: NDArray[np.float32]) -> None:
    q = queries[rng.choice(len(queries), 200, replace=False)].astype(np.float64)
    s = q @ items.T.astype(np.float64)
    m = items.shape[0]
    mx = s.max(axis=1, keepdims=True)
    out = []
    for bits in (30, 24):
        reach = np.log(m) + bits * np.log(2)
        out.append(f"T={reach:.1f} (b={bits}): {100 * np.mean(s >= mx - reach):.1f}%")
    spread = np.median(mx[:, 0] - np.median(s, axis=1))
    print(
        f"{name}: m={m}, median (max - median score) {spread:.1f} nats; items within T of the max: "
        + ", ".join(out)
    )


def main() -> None:
    # No options; parsed so that --help shows the docstring instead of running.
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    for name in ("W1", "W2", "W3"):
        queries, items = w.gaussian_arrays(w.WORKLOADS[name].scaled(0.01))
        share(name, queries, items)
    real = w.real_model(w.RealModelConfig())  # built once (about a minute), then cached
    share("REAL (ALS)", real.users, real.items)


if __name__ == "__main__":
    main()
