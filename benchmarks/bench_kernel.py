"""pytest-benchmark benchmarks of recbatch's kernel (not part of the test suite).

    .venv/bin/pytest benchmarks/bench_kernel.py --benchmark-enable
    .venv/bin/pytest benchmarks/bench_kernel.py --benchmark-enable -k W2 --benchmark-columns=median,ops

Shapes are small versions of peers.py's workloads (same d and k, fewer queries and items) so
that the whole file runs in about a minute on two cores. Each case records its effective
GFLOP/s (2*n*m*d / median seconds) in ``extra_info`` and checks a few result rows against a
float64 reference, so that a fast wrong answer cannot pass for a benchmark. Without
``--benchmark-enable`` (the project's default addopts disable benchmarks) each case runs once,
which makes the file a quick smoke test of the same paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.typing import NDArray
from workloads import RealModelConfig, Workload, gaussian_arrays, real_model, seen_items

import recbatch

THREADS = 2
CHECK_ROWS = 4  # rows compared with the float64 reference after each benchmark

SHAPES = {
    "W1": Workload("W1", 2_000, 20_000, 64, 25),
    "W2": Workload("W2", 500, 200_000, 128, 100),
    "W3": Workload("W3", 10_000, 5_000, 32, 10),
}


@dataclass(frozen=True)
class Case:
    wl: Workload
    queries: NDArray[np.float32]
    items: NDArray[np.float32]
    index: recbatch.ItemIndex


_CASES: dict[str, Case] = {}


def case(name: str) -> Case:
    """Arrays and a built index per shape, made once per session."""
    if name not in _CASES:
        if name == "REAL":
            model = real_model(RealModelConfig().scaled(0.1))
            wl = Workload("REAL", 2_000, model.items.shape[0], model.items.shape[1], 25)
            queries, items = np.ascontiguousarray(model.users[: wl.n]), model.items
        else:
            wl = SHAPES[name]
            queries, items = gaussian_arrays(wl, seed=0)
        _CASES[name] = Case(wl, queries, items, recbatch.ItemIndex(items))
    return _CASES[name]


def check_rows(
    c: Case,
    result: recbatch.TopKResult,
    *,
    exclude: sp.csr_matrix | None = None,
    allow: NDArray[np.bool_] | None = None,
) -> None:
    """The first rows' top k equal the float64 reference's (up to float32 near-ties)."""
    k = c.wl.k
    for row in range(min(CHECK_ROWS, c.wl.n)):
        scores = c.items.astype(np.float64) @ c.queries[row].astype(np.float64)
        eligible = np.ones(c.wl.m, dtype=bool)
        if exclude is not None:
            eligible[exclude.indices[exclude.indptr[row] : exclude.indptr[row + 1]]] = False
        if allow is not None:
            eligible &= allow
        masked = np.where(eligible, scores, -np.inf)
        order = np.argsort(-masked, kind="stable")
        kth = masked[order[k - 1]]
        got = result.indices[row]
        assert eligible[got].all(), f"row {row}: an excluded or disallowed item came back"
        # Every returned item scores at least the reference k-th best, up to float32 rounding.
        tol = 1e-4 * max(1.0, abs(kth))
        assert (masked[got] >= kth - tol).all(), f"row {row}: an item below the k-th best came back"
        if result.logsumexp is not None:
            finite = masked[eligible]
            top = finite.max()
            ref = top + np.log(np.exp(finite - top).sum())
            assert abs(result.logsumexp[row] - ref) <= 1e-5 * max(1.0, abs(ref))


def record(benchmark: Any, wl: Workload) -> None:
    """Effective GFLOP/s from the median time, when benchmarks ran (not with them disabled)."""
    benchmark.extra_info["flops"] = wl.flops
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        benchmark.extra_info["gflops"] = round(wl.flops / stats.stats.median / 1e9, 1)


@pytest.mark.parametrize("name", ["W1", "W2", "W3", "REAL"])
@pytest.mark.parametrize("threads", [1, THREADS])
def test_plain(benchmark: Any, name: str, threads: int) -> None:
    c = case(name)
    benchmark.group = f"{name} plain"
    result = benchmark(lambda: c.index.search(c.queries, c.wl.k, threads=threads))
    record(benchmark, c.wl)
    check_rows(c, result)


@pytest.mark.parametrize("name", ["W1", "W2", "W3"])
def test_exclude_100(benchmark: Any, name: str) -> None:
    """100 already-seen items per query (issue 5: within 10% of the unfiltered throughput)."""
    c = case(name)
    seen = seen_items(c.wl.n, c.wl.m, 100)
    benchmark.group = f"{name} filters"
    result = benchmark(lambda: c.index.search(c.queries, c.wl.k, exclude=seen, threads=THREADS))
    record(benchmark, c.wl)
    check_rows(c, result, exclude=seen)


@pytest.mark.parametrize("name", ["W1", "W2", "W3"])
def test_allow_half(benchmark: Any, name: str) -> None:
    """An allow mask of half the catalogue (issue 5: within 10% of the unfiltered throughput)."""
    c = case(name)
    allow = np.random.default_rng(6).random(c.wl.m) < 0.5
    benchmark.group = f"{name} filters"
    result = benchmark(lambda: c.index.search(c.queries, c.wl.k, allow=allow, threads=THREADS))
    record(benchmark, c.wl)
    check_rows(c, result, allow=allow)


@pytest.mark.parametrize("name", ["W1", "W2", "W3"])
def test_logsumexp(benchmark: Any, name: str) -> None:
    """The softmax denominator in the same pass (issue 5: within 15% of the plain search)."""
    c = case(name)
    benchmark.group = f"{name} filters"
    result = benchmark(lambda: c.index.search(c.queries, c.wl.k, logsumexp=True, threads=THREADS))
    record(benchmark, c.wl)
    assert result.logsumexp is not None
    check_rows(c, result)
