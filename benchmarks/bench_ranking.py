"""pytest-benchmark: ranking candidate lists, ``CandidateRanker.rank`` against NumPy (not part of the test suite).

    .venv/bin/pytest benchmarks/bench_ranking.py --benchmark-enable --benchmark-columns=median,ops

A personalized-ranking batch: 1,024 lists of 50 items (a few repeats) from a 100,000 x 64
catalogue. The NumPy case is what the ranking job did before the extension ranked its lists:
repeats dropped per list with ``dict.fromkeys``, the (user, item) pairs' float64 dot products
(``einsum`` over gathered rows), the softmax denominator, and ``lexsort`` by score and row. Both
run on one thread; each checks its order against the other's. The last case is the job's whole
batch as it runs now: the same lists as JSON input lines, read, ranked and written as output lines
by ``rank_ranking_lines`` (its items checked against ``CandidateRanker``'s order).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from recbatch.ids import IdIndex
from recbatch.ranking import CandidateRanker, rank_ranking_lines

ITEMS, DIM, LISTS, LENGTH = 100_000, 64, 1024, 50

_rng = np.random.default_rng(0)
_ITEMS = _rng.standard_normal((ITEMS, DIM), dtype=np.float32)
_QUERIES = _rng.standard_normal((LISTS, DIM), dtype=np.float32)
_CANDIDATES = _rng.integers(0, ITEMS, LISTS * LENGTH)
_CANDIDATES[1::25] = _CANDIDATES[::25]  # two repeats per list
_INDPTR = np.arange(0, LISTS * LENGTH + 1, LENGTH)
_RANKER = CandidateRanker(_ITEMS)


def _numpy_rank(threads: int) -> NDArray[np.int64]:
    del threads  # NumPy's einsum and lexsort run on one thread
    lists = [list(dict.fromkeys(_CANDIDATES[a:b].tolist())) for a, b in itertools.pairwise(_INDPTR)]
    counts = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    width = int(counts.max())
    rows = np.fromiter((r for items in lists for r in items), dtype=np.int64, count=int(counts.sum()))
    record = np.repeat(np.arange(len(lists)), counts)
    slot = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    scores = np.einsum("ij,ij->i", _QUERIES[record].astype(np.float64), _ITEMS[rows].astype(np.float64))
    key = np.full((len(lists), width), -np.inf)
    key[record, slot] = scores
    catalogue = np.full((len(lists), width), np.iinfo(np.int64).max)
    catalogue[record, slot] = rows
    peak = key.max(axis=1, keepdims=True)
    np.log(np.exp(key - peak).sum(axis=1))  # the softmax denominator, as the job took it
    order = np.lexsort((catalogue, -key), axis=-1)
    # Back to rows, for the comparison: the ranked rows of each list.
    return np.where(
        np.take_along_axis(key, order, axis=-1) > -np.inf, np.take_along_axis(catalogue, order, axis=-1), -1
    )


def _ranker_rank(threads: int) -> NDArray[np.int64]:
    ranked = _RANKER.rank(_QUERIES, _INDPTR, _CANDIDATES, threads=threads)
    starts = _INDPTR[:-1, None]
    return np.where(ranked.order >= 0, _CANDIDATES[np.where(ranked.order >= 0, starts + ranked.order, 0)], -1)


@pytest.mark.parametrize("rank", [_numpy_rank, _ranker_rank], ids=["numpy", "CandidateRanker"])
def test_rank_lists(benchmark: Any, rank: Any) -> None:
    ranked = benchmark.pedantic(rank, args=(1,), rounds=30, warmup_rounds=2)
    reference = _numpy_rank(1)
    np.testing.assert_array_equal(ranked[:, : reference.shape[1]], reference)
    benchmark.extra_info["us_per_list"] = round(1e6 * benchmark.stats.stats.median / LISTS, 2)


def test_rank_lists_two_threads(benchmark: Any) -> None:
    benchmark.pedantic(_ranker_rank, args=(2,), rounds=30, warmup_rounds=2)
    benchmark.extra_info["us_per_list"] = round(1e6 * benchmark.stats.stats.median / LISTS, 2)


_USERS = IdIndex([f"u{u}" for u in range(LISTS)])
_ITEM_IDS = IdIndex([f"i{i}" for i in range(ITEMS)])
_LINES = [
    json.dumps({"userId": f"u{u}", "itemList": [f"i{i}" for i in _CANDIDATES[a:b]]}).encode()
    for u, (a, b) in enumerate(itertools.pairwise(_INDPTR))
]


def _lines_rank(threads: int) -> list[bytes | None]:
    return rank_ranking_lines(
        _LINES,
        users=_USERS,
        items=_ITEM_IDS,
        user_factors=_QUERIES,
        item_factors=_ITEMS,
        max_id_chars=256,
        max_list=500,
        threads=threads,
    )


def test_rank_ranking_lines(benchmark: Any) -> None:
    written = benchmark.pedantic(_lines_rank, args=(1,), rounds=30, warmup_rounds=2)
    ranked = _ranker_rank(1)
    for line, rows in zip(written, ranked, strict=True):
        assert line is not None
        items = json.loads(line)["output"]["recommendedItems"]
        assert items == [f"i{row}" for row in rows if row >= 0]
    benchmark.extra_info["us_per_line"] = round(1e6 * benchmark.stats.stats.median / LISTS, 2)
