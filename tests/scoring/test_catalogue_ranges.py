"""A few queries on many threads: the catalogue is split into ranges scanned as tasks of their own
and merged per query. Results must be those of a single scan, bit for bit.

With d = 32 a tile holds 64 blocks of 32 items; 40,000 items are 1,250 blocks, so up to nine
ranges of two tiles or more, and a range needs about a million multiply-adds (2^20): three
queries x 40,000 items x 32 allow three. Three queries make one query task, and eight threads
ask for sixteen tasks: the search splits the catalogue into three ranges (two queries: two).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import recbatch
from tests.scoring.reference import check_logsumexp, check_top_k, eligibility, reference

N_ITEMS, DIM = 40_000, 32


def items_with_spread_norms(rng: np.random.Generator) -> np.ndarray:
    """Item norms over two orders of magnitude, as trained embeddings have: the norm bound
    then proves most blocks out of reach, and later ranges rely on the bound shared by earlier ones."""
    items = rng.standard_normal((N_ITEMS, DIM)).astype(np.float32)
    norms = (1.0 / rng.uniform(0.01, 1.0, N_ITEMS)).astype(np.float32)
    return items * norms[:, None]


@pytest.mark.parametrize("k", [10, 700])
def test_few_queries_match_the_reference_and_one_thread(level: str, k: int, rng: np.random.Generator) -> None:
    queries = rng.standard_normal((3, DIM)).astype(np.float32)
    items = rng.standard_normal((N_ITEMS, DIM)).astype(np.float32)
    index = recbatch.ItemIndex(items)
    split = index.search(queries, k, threads=8, simd=level, logsumexp=True)
    single = index.search(queries, k, threads=1, simd=level, logsumexp=True)
    ref = reference(queries, items, eligibility(3, N_ITEMS, None, None))
    check_top_k(split, ref, k)
    np.testing.assert_array_equal(split.indices, single.indices)
    np.testing.assert_array_equal(split.scores, single.scores)
    assert split.logsumexp is not None and single.logsumexp is not None
    check_logsumexp(split.logsumexp, ref)


def test_spread_norms_prune_exactly_across_ranges(level: str, rng: np.random.Generator) -> None:
    queries = rng.standard_normal((5, DIM)).astype(np.float32)
    items = items_with_spread_norms(rng)
    index = recbatch.ItemIndex(items)
    split = index.search(queries, 25, threads=8, simd=level)
    single = index.search(queries, 25, threads=1, simd=level)
    check_top_k(split, reference(queries, items, eligibility(5, N_ITEMS, None, None)), 25)
    np.testing.assert_array_equal(split.indices, single.indices)
    np.testing.assert_array_equal(split.scores, single.scores)


def test_ties_across_ranges_go_to_the_lower_index(level: str) -> None:
    # A zero query scores every item 0: the top k is items 0..k-1, wherever they are stored.
    items = np.random.default_rng(7).standard_normal((N_ITEMS, DIM)).astype(np.float32)
    queries = np.zeros((2, DIM), dtype=np.float32)
    result = recbatch.top_k(queries, items, 50, threads=8, simd=level)
    np.testing.assert_array_equal(result.indices, np.tile(np.arange(50), (2, 1)))
    np.testing.assert_array_equal(result.scores, np.zeros((2, 50), dtype=np.float32))


def test_filters_hold_in_every_range(level: str, rng: np.random.Generator) -> None:
    n, k = 4, 30
    queries = rng.standard_normal((n, DIM)).astype(np.float32)
    items = rng.standard_normal((N_ITEMS, DIM)).astype(np.float32)
    # Exclude each query's current top 40 (in every range), and allow about half the catalogue.
    best = np.argsort(-(queries.astype(np.float64) @ items.astype(np.float64).T), axis=1)[:, :40]
    lists = [
        sorted(set(best[i].tolist()) | set(rng.choice(N_ITEMS, 300, replace=False).tolist()))
        for i in range(n)
    ]
    exclude = sp.csr_matrix(
        (np.ones(sum(map(len, lists))), np.concatenate(lists), np.cumsum([0] + [len(x) for x in lists])),
        shape=(n, N_ITEMS),
    )
    allow = rng.random(N_ITEMS) < 0.5
    index = recbatch.ItemIndex(items)
    split = index.search(queries, k, exclude=exclude, allow=allow, threads=8, simd=level, logsumexp=True)
    single = index.search(queries, k, exclude=exclude, allow=allow, threads=1, simd=level, logsumexp=True)
    ref = reference(queries, items, eligibility(n, N_ITEMS, lists, allow))
    check_top_k(split, ref, k)
    np.testing.assert_array_equal(split.indices, single.indices)
    assert split.logsumexp is not None
    check_logsumexp(split.logsumexp, ref)
