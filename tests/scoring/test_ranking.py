"""CandidateRanker and rank_by_value: candidate lists ranked as a float64 NumPy reference ranks them."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

import recbatch
from recbatch.ranking import CandidateRanker, RankedLists, rank_by_value


def reference(
    scores_of: NDArray[np.float64], indptr: list[int], candidates: list[int]
) -> tuple[list[list[int]], list[list[float]], list[float]]:
    """Per list: the ranked positions, their scores and the log-sum-exp. ``scores_of[i]`` holds list
    i's score for every item row."""
    orders, scores, lses = [], [], []
    for i in range(len(indptr) - 1):
        entries = candidates[indptr[i] : indptr[i + 1]]
        first: dict[int, int] = {}
        for position, entry in enumerate(entries):
            first.setdefault(entry, position)
        known = [p for e, p in first.items() if e >= 0]
        outside = [p for e, p in first.items() if e < 0]
        known.sort(key=lambda p: (-scores_of[i, entries[p]], entries[p]))
        values = [float(scores_of[i, entries[p]]) for p in known]
        orders.append(known + outside)
        scores.append(values + [-np.inf] * len(outside))
        if values:
            peak = max(values)
            lses.append(peak + float(np.log(np.sum(np.exp(np.asarray(values) - peak)))))
        else:
            lses.append(-np.inf)
    return orders, scores, lses


def assert_matches(
    got: RankedLists, want: tuple[list[list[int]], list[list[float]], list[float]], *, exact: bool
) -> None:
    orders, scores, lses = want
    width = max((len(c) for c in orders), default=0)
    n = len(orders)
    assert (
        got.order.dtype == np.int64 and got.scores.dtype == np.float64 and got.logsumexp.dtype == np.float64
    )
    assert got.order.shape[0] == n and got.order.shape[1] >= width and got.scores.shape == got.order.shape
    for i in range(n):
        row = got.order[i].tolist()
        assert row == orders[i] + [-1] * (got.order.shape[1] - len(orders[i])), i
        padded = scores[i] + [-np.inf] * (got.order.shape[1] - len(scores[i]))
        if exact:
            assert got.scores[i].tolist() == padded, i
        else:
            np.testing.assert_allclose(got.scores[i], padded, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.logsumexp, lses, rtol=1e-12, atol=1e-12)


_LISTS = st.lists(st.lists(st.integers(-3, 11), max_size=30), max_size=12)


@settings(max_examples=150, deadline=None)
@given(lists=_LISTS, data=st.data())
def test_small_integer_vectors_rank_exactly(lists: list[list[int]], data: st.DataObject) -> None:
    # Small integers make every float64 sum exact, so ties are true ties (broken by the lower row)
    # and the scores must equal the reference's to the bit.
    dim = data.draw(st.integers(1, 9))
    values = st.integers(-2, 2)
    items = np.array(
        data.draw(st.lists(st.lists(values, min_size=dim, max_size=dim), min_size=12, max_size=12))
    )
    queries = np.array(
        data.draw(
            st.lists(st.lists(values, min_size=dim, max_size=dim), min_size=len(lists), max_size=len(lists))
        )
    ).reshape(len(lists), dim)
    indptr = np.cumsum([0] + [len(c) for c in lists]).tolist()
    candidates = [e for c in lists for e in c]
    got = CandidateRanker(items.astype(np.float32)).rank(
        queries.astype(np.float32), indptr, candidates, threads=2
    )
    want = reference(queries.astype(np.float64) @ items.T.astype(np.float64), indptr, candidates)
    assert_matches(got, want, exact=True)


def test_float_vectors_against_float64(rng: np.random.Generator) -> None:
    items = rng.standard_normal((5000, 48)).astype(np.float32)
    n = 300
    lengths = rng.integers(0, 120, n)
    lengths[:2] = 0, 3
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    candidates = rng.integers(-5, items.shape[0], int(indptr[-1]))
    candidates[:3] = -1, -2, -1  # list 1: only entries outside the catalogue (list 0 is empty)
    queries = rng.standard_normal((n, 48)).astype(np.float32)
    got = CandidateRanker(items).rank(queries, indptr, candidates)
    want = reference(
        queries.astype(np.float64) @ items.T.astype(np.float64), indptr.tolist(), candidates.tolist()
    )
    assert_matches(got, want, exact=False)
    # The softmax over each list's catalogue items: the reference's, 0 elsewhere, 1 in all.
    softmax = got.softmax()
    for i, (values, lse) in enumerate(zip(want[1], want[2], strict=True)):
        expected = np.exp(np.asarray(values) - lse) if np.isfinite(lse) else np.zeros(len(values))
        padded = np.concatenate([np.nan_to_num(expected, nan=0.0), np.zeros(softmax.shape[1] - len(values))])
        np.testing.assert_allclose(softmax[i], padded, rtol=1e-12, atol=1e-15)
    has_items = (got.scores > -np.inf).any(axis=1)
    assert not has_items[:2].any()
    np.testing.assert_allclose(softmax.sum(axis=1)[has_items], 1.0, rtol=1e-12)
    assert (softmax.sum(axis=1)[~has_items] == 0).all()


def test_threads_give_the_same_bytes(rng: np.random.Generator) -> None:
    items = rng.standard_normal((2000, 16)).astype(np.float32)
    indptr = np.arange(0, 50 * 700 + 1, 50)
    candidates = rng.integers(0, 2000, indptr[-1])
    queries = rng.standard_normal((700, 16)).astype(np.float32)
    ranker = CandidateRanker(items)
    one = ranker.rank(queries, indptr, candidates, threads=1)
    for threads in (2, 3, 8):
        other = ranker.rank(queries, indptr, candidates, threads=threads)
        assert np.array_equal(one.order, other.order)
        assert one.scores.tobytes() == other.scores.tobytes()
        assert one.logsumexp.tobytes() == other.logsumexp.tobytes()


def test_concurrent_callers(rng: np.random.Generator) -> None:
    # One ranker shared by threads that rank at the same time (the GIL is released inside).
    items = rng.standard_normal((3000, 32)).astype(np.float32)
    ranker = CandidateRanker(items)
    inputs = []
    for _ in range(4):
        indptr = np.arange(0, 40 * 400 + 1, 40)
        inputs.append(
            (rng.standard_normal((400, 32)).astype(np.float32), indptr, rng.integers(0, 3000, indptr[-1]))
        )
    expected = [ranker.rank(*args, threads=1) for args in inputs]
    results: list[RankedLists | None] = [None] * len(inputs)

    def work(i: int) -> None:
        for _ in range(5):
            results[i] = ranker.rank(*inputs[i], threads=2)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for got, want in zip(results, expected, strict=True):
        assert got is not None
        assert np.array_equal(got.order, want.order) and got.scores.tobytes() == want.scores.tobytes()


def test_rank_by_value(rng: np.random.Generator) -> None:
    values = rng.integers(0, 5, 40).astype(np.float64)  # many ties: broken by the lower row
    values[3] = -0.0
    values[4] = 0.0
    lengths = rng.integers(0, 25, 60)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    candidates = rng.integers(-3, 40, int(indptr[-1]))
    got = rank_by_value(values, indptr, candidates)
    want = reference(np.tile(values, (60, 1)), indptr.tolist(), candidates.tolist())
    assert_matches(got, want, exact=True)


def test_empty_inputs() -> None:
    ranker = CandidateRanker(np.ones((3, 2), dtype=np.float32))
    none = ranker.rank(np.zeros((0, 2), dtype=np.float32), [0], [])
    assert none.order.shape == (0, 0) and none.scores.shape == (0, 0) and none.logsumexp.shape == (0,)
    empty_lists = ranker.rank(np.ones((2, 2), dtype=np.float32), [0, 0, 0], np.array([], dtype=np.int64))
    assert empty_lists.order.shape == (2, 0)
    assert empty_lists.logsumexp.tolist() == [-np.inf, -np.inf]
    outside_only = ranker.rank(np.ones((1, 2), dtype=np.float32), [0, 3], [-1, -2, -1])
    assert outside_only.order.tolist() == [[0, 1, -1]]
    assert outside_only.logsumexp.tolist() == [-np.inf]


def test_items_and_queries_are_converted_once() -> None:
    # float64 and int inputs are rounded to float32 as ItemIndex does; the lists may be any integer dtype.
    items = np.arange(12, dtype=np.float64).reshape(4, 3) / 7
    queries = np.array([[1, 2, 3]])
    got = CandidateRanker(items).rank(
        queries, np.array([0, 4], dtype=np.uint8), np.array([3, 1, 2, 0], dtype=np.int16)
    )
    exact = items.astype(np.float32).astype(np.float64) @ queries[0].astype(np.float64)
    assert got.order.tolist() == [[0, 2, 1, 3]]
    np.testing.assert_allclose(got.scores[0], exact[[3, 2, 1, 0]], rtol=1e-15)


@pytest.mark.parametrize(
    ("indptr", "candidates", "error", "match"),
    [
        ([1, 2], [0, 1], ValueError, "indptr must have n_lists \\+ 1 entries, start at 0"),
        ([0, 2, 1], [0, 1], ValueError, "never decrease"),
        ([0, 1], [0, 1], ValueError, "end at len\\(candidates\\)"),
        ([0, 2], [0, 4], ValueError, "candidates must be item rows below n_items = 4 .*: entry 1 is 4"),
        ([0, 2], [0.0, 1.0], TypeError, "candidates must be a 1-D integer array"),
        ([[0, 2]], [0, 1], TypeError, "indptr must be a 1-D integer array"),
        ([0, 1, 2], [0, 1], ValueError, "indptr must have n_queries \\+ 1 = 2 entries, got 3"),
    ],
)
def test_bad_lists_are_refused(indptr: Any, candidates: Any, error: type[Exception], match: str) -> None:
    ranker = CandidateRanker(np.ones((4, 2), dtype=np.float32))
    with pytest.raises(error, match=match):
        ranker.rank(np.ones((1, 2), dtype=np.float32), indptr, candidates)


def test_bad_vectors_are_refused() -> None:
    items = np.ones((4, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="queries have dim 3 but the items have dim 2"):
        CandidateRanker(items).rank(np.ones((1, 3)), [0, 1], [0])
    with pytest.raises(ValueError, match="queries must be finite: row 1 holds NaN"):
        CandidateRanker(items).rank(np.array([[1, 1], [np.nan, 1]]), [0, 1, 2], [0, 1])
    bad_items = items.copy()
    bad_items[2, 1] = np.inf
    with pytest.raises(ValueError, match="items must be finite: row 2"):
        CandidateRanker(bad_items)
    with pytest.raises(ValueError, match="values must be finite: entry 1 is nan"):
        rank_by_value([1.0, np.nan], [0, 1], [0])
    with pytest.raises(TypeError, match="values must be a 1-D array of real numbers"):
        rank_by_value([[1.0]], [0, 1], [0])


def test_exported_at_the_top() -> None:
    assert recbatch.CandidateRanker is CandidateRanker
    assert recbatch.RankedLists is RankedLists
    assert recbatch.rank_by_value is rank_by_value
