"""Exact top-k against the float64 reference, at every SIMD level this CPU has."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import recbatch
from tests.scoring.reference import (
    check_logsumexp,
    check_top_k,
    eligibility,
    exact_top_k,
    logsumexp,
    reference,
)

DIMS = [1, 3, 7, 17, 63, 64, 65, 129, 300]


def gaussian(rng: np.random.Generator, rows: int, dim: int) -> np.ndarray:
    return rng.standard_normal((rows, dim)).astype(np.float32)


@pytest.mark.parametrize("dim", DIMS)
def test_matches_reference_for_odd_dims(level: str, dim: int, rng: np.random.Generator) -> None:
    queries, items = gaussian(rng, 29, dim), gaussian(rng, 517, dim)
    result = recbatch.top_k(queries, items, 10, simd=level, threads=2, logsumexp=True)
    ref = reference(queries, items, eligibility(29, 517, None, None))
    check_top_k(result, ref, 10)
    assert result.logsumexp is not None
    check_logsumexp(result.logsumexp, ref)


@pytest.mark.parametrize(
    ("n_items", "k"), [(40, 1), (40, 40), (40, 41), (33, 100), (1, 3), (64, 64), (1000, 1)]
)
def test_k_edges_pad_with_minus_one(level: str, n_items: int, k: int, rng: np.random.Generator) -> None:
    queries, items = gaussian(rng, 13, 8), gaussian(rng, n_items, 8)
    result = recbatch.top_k(queries, items, k, simd=level)
    check_top_k(result, reference(queries, items, eligibility(13, n_items, None, None)), k)


@pytest.mark.parametrize("k", [600, 2500, 7000])
def test_large_k_matches_reference(level: str, k: int, rng: np.random.Generator) -> None:
    # Segment jobs' sizes: lists of k >= 512 are buffered and selected, not heaps (NOTES 78),
    # and chunks hold fewer queries; k = 7,000 passes the 6,000 items and pads. Exclusions and an
    # allow mask remove items on the way, and two thread counts split the work differently.
    n, m = 40, 6000
    queries, items = gaussian(rng, n, 20), gaussian(rng, m, 20)
    allow = rng.random(m) < 0.9
    lists = [sorted(rng.choice(m, size=int(rng.integers(0, 40)), replace=False).tolist()) for _ in range(n)]
    ref = reference(queries, items, eligibility(n, m, lists, allow))
    results = [
        recbatch.top_k(queries, items, k, exclude=to_csr(lists, m), allow=allow, simd=level, threads=threads)
        for threads in (1, 3)
    ]
    check_top_k(results[0], ref, k)
    np.testing.assert_array_equal(results[0].indices, results[1].indices)
    np.testing.assert_array_equal(results[0].scores, results[1].scores)


def test_integer_embeddings_keep_index_order_on_ties(level: str, rng: np.random.Generator) -> None:
    # Small integers: every float32 score is exact, so ties are real and the order is fully defined.
    queries = rng.integers(-2, 3, size=(50, 5)).astype(np.float32)
    items = rng.integers(-2, 3, size=(300, 5)).astype(np.float32)
    ref = reference(queries, items, eligibility(50, 300, None, None))
    want_indices, want_scores = exact_top_k(ref, 40)
    for threads in (1, 2, 3):
        result = recbatch.top_k(queries, items, 40, simd=level, threads=threads)
        np.testing.assert_array_equal(result.indices, want_indices)
        np.testing.assert_array_equal(result.scores, want_scores.astype(np.float32))


def test_threads_give_identical_results(level: str, rng: np.random.Generator) -> None:
    queries, items = gaussian(rng, 300, 24), gaussian(rng, 2000, 24)
    index = recbatch.ItemIndex(items)
    first = index.search(queries, 17, simd=level, threads=1, logsumexp=True)
    for threads in (2, 3, 7):
        other = index.search(queries, 17, simd=level, threads=threads, logsumexp=True)
        np.testing.assert_array_equal(other.indices, first.indices)
        np.testing.assert_array_equal(other.scores, first.scores)
        assert first.logsumexp is not None and other.logsumexp is not None
        np.testing.assert_array_equal(other.logsumexp, first.logsumexp)


def test_index_is_the_same_whatever_threads_packed_it(rng: np.random.Generator) -> None:
    # 40,000 items: three spans of norms and of blocks, so the packing really splits; the
    # catalogue's norms are spread so that spans differ (and the sort by norm matters).
    queries = gaussian(rng, 60, 20)
    items = gaussian(rng, 40_000, 20) * rng.lognormal(0, 1, size=(40_000, 1)).astype(np.float32)
    ref = reference(queries, items, eligibility(60, 40_000, None, None))
    one = recbatch.ItemIndex(items, threads=1)
    for threads in (2, 3, 8):
        other = recbatch.ItemIndex(items, threads=threads)
        for level in recbatch.available_simd_levels():
            want = one.search(queries, 30, simd=level, threads=2)
            got = other.search(queries, 30, simd=level, threads=2)
            check_top_k(got, ref, 30)
            np.testing.assert_array_equal(got.indices, want.indices, err_msg=level)
            np.testing.assert_array_equal(got.scores, want.scores, err_msg=level)


def random_exclusions(rng: np.random.Generator, n: int, m: int, per_row: int) -> list[list[int]]:
    lists = [
        sorted(rng.choice(m, size=rng.integers(0, per_row + 1), replace=False).tolist()) for _ in range(n)
    ]
    lists[0] = list(range(m))  # every item excluded for one query
    return lists


def to_csr(lists: list[list[int]], m: int) -> sp.csr_matrix:
    indptr = np.cumsum([0] + [len(x) for x in lists])
    indices = np.array([i for row in lists for i in row], dtype=np.int64)
    return sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(lists), m))


def test_logsumexp_of_a_row_does_not_depend_on_its_neighbours(level: str, rng: np.random.Generator) -> None:
    # A few rows exclude the longest items (stored first: the whole first tile), so they start
    # their log-sum-exp a tile later than the other rows of their group. Shifting the batch by
    # five rows regroups them; every row's result must come out bit for bit the same (the same
    # user gets the same scores whichever lines share its batch).
    n, m = 300, 6000
    queries, items = gaussian(rng, n, 24), gaussian(rng, m, 24)
    longest = np.argsort(-np.linalg.norm(items, axis=1), kind="stable")[:3000].tolist()
    lists = [sorted(longest) if rng.random() < 0.1 else [] for _ in range(n)]
    index = recbatch.ItemIndex(items)
    whole = index.search(queries, 17, exclude=to_csr(lists, m), simd=level, logsumexp=True)
    ref = reference(queries, items, eligibility(n, m, lists, None))
    check_top_k(whole, ref, 17)
    assert whole.logsumexp is not None
    check_logsumexp(whole.logsumexp, ref)
    shifted = index.search(queries[5:], 17, exclude=to_csr(lists[5:], m), simd=level, logsumexp=True)
    np.testing.assert_array_equal(shifted.indices, whole.indices[5:])
    assert shifted.logsumexp is not None
    np.testing.assert_array_equal(shifted.logsumexp, whole.logsumexp[5:])


def test_exclusions_as_csr_and_as_pair(level: str, rng: np.random.Generator) -> None:
    n, m = 40, 700
    queries, items = gaussian(rng, n, 16), gaussian(rng, m, 16)
    lists = random_exclusions(rng, n, m, 300)
    ref = reference(queries, items, eligibility(n, m, lists, None))
    csr = to_csr(lists, m)
    pairs = [
        (csr.indptr.astype(p), csr.indices.astype(i))
        for p in (np.int32, np.int64)
        for i in (np.int32, np.int64)
    ]
    # Other integer types and strided views are converted on the way in.
    pairs += [
        (csr.indptr.astype(np.uint16), csr.indices.astype(np.uint32)),
        (csr.indptr, np.repeat(csr.indices, 2)[::2]),
    ]
    for exclude in (csr, *pairs):
        result = recbatch.top_k(queries, items, 25, exclude=exclude, simd=level, logsumexp=True)
        check_top_k(result, ref, 25)
        assert np.all(result.indices[0] == -1)
        assert result.logsumexp is not None
        assert result.logsumexp[0] == -np.inf
        check_logsumexp(result.logsumexp[1:], ref, rows=slice(1, None))


@pytest.mark.parametrize("m", [32 * 1024, 32 * 1024 + 1])
def test_exclusions_over_a_large_catalogue(level: str, m: int, rng: np.random.Generator) -> None:
    # Per-row exclusion bitmaps over a catalogue of 1,024 blocks and more (the sorted lists used
    # beyond the bitmaps' memory budget are forced in tests/cpp/test_search.cpp).
    n = 24
    queries, items = gaussian(rng, n, 6), gaussian(rng, m, 6)
    lists = [sorted(rng.choice(m, size=int(rng.integers(0, 400)), replace=False).tolist()) for _ in range(n)]
    # Each row also excludes its own best items, so exclusion visibly changes every answer.
    best = np.argsort(-(queries.astype(np.float64) @ items.astype(np.float64).T), axis=1)[:, :30]
    lists = [sorted(set(row) | set(best[i].tolist())) for i, row in enumerate(lists)]
    result = recbatch.top_k(
        queries, items, 15, exclude=to_csr(lists, m), simd=level, threads=2, logsumexp=True
    )
    ref = reference(queries, items, eligibility(n, m, lists, None))
    check_top_k(result, ref, 15)
    assert result.logsumexp is not None
    check_logsumexp(result.logsumexp, ref)


def test_unsorted_and_duplicate_exclusions_are_accepted(level: str, rng: np.random.Generator) -> None:
    queries, items = gaussian(rng, 2, 4), gaussian(rng, 50, 4)
    indptr = np.array([0, 4, 6])
    indices = np.array([9, 3, 9, 0, 49, 1])
    result = recbatch.top_k(queries, items, 50, exclude=(indptr, indices), simd=level)
    ref = reference(queries, items, eligibility(2, 50, [[0, 3, 9], [1, 49]], None))
    check_top_k(result, ref, 50)


def test_allow_mask_and_index_array(level: str, rng: np.random.Generator) -> None:
    n, m = 30, 900
    queries, items = gaussian(rng, n, 12), gaussian(rng, m, 12)
    mask = rng.random(m) < 0.3
    lists = random_exclusions(rng, n, m, 50)
    ref = reference(queries, items, eligibility(n, m, lists, mask))
    for allow in (mask, np.flatnonzero(mask)):
        result = recbatch.top_k(
            queries, items, 20, allow=allow, exclude=to_csr(lists, m), simd=level, logsumexp=True
        )
        check_top_k(result, ref, 20)
        assert result.logsumexp is not None
        check_logsumexp(result.logsumexp[1:], ref, rows=slice(1, None))


def test_large_catalogue_spans_many_tiles(level: str, rng: np.random.Generator) -> None:
    queries, items = gaussian(rng, 25, 32), gaussian(rng, 20_011, 32)
    result = recbatch.top_k(queries, items, 100, simd=level, threads=3, logsumexp=True)
    ref = reference(queries, items, eligibility(25, 20_011, None, None))
    check_top_k(result, ref, 100)
    assert result.logsumexp is not None
    np.testing.assert_allclose(result.logsumexp, logsumexp(ref), rtol=1e-5)


def test_logsumexp_when_later_tiles_score_far_above_earlier_ones(
    level: str, rng: np.random.Generator
) -> None:
    # Items are stored by decreasing norm, and here the longest ones point away from most
    # queries: scores climb by hundreds across (and within) tiles, far past where a float32 exp
    # taken against the running maximum overflows, so the kernel's recovery path must run.
    dim, m, n = 8, 5000, 40
    cos = np.linspace(-1.0, 1.0, m)
    rest = rng.standard_normal((m, dim - 1))
    rest /= np.linalg.norm(rest, axis=1, keepdims=True)
    items = np.concatenate([cos[:, None], np.sqrt(1.0 - cos**2)[:, None] * rest], axis=1)
    items = (items * np.linspace(100.0, 20.0, m)[:, None])[rng.permutation(m)].astype(np.float32)
    queries = rng.standard_normal((n, dim)) * 0.3
    queries[:, 0] += 4.0
    queries[::3] *= -1.0  # and some rows meet their best items first
    queries = queries.astype(np.float32)
    result = recbatch.top_k(queries, items, 5, simd=level, threads=2, logsumexp=True)
    ref = reference(queries, items, eligibility(n, m, None, None))
    check_top_k(result, ref, 5)
    assert result.logsumexp is not None
    np.testing.assert_allclose(result.logsumexp, logsumexp(ref), rtol=1e-6)


@pytest.mark.parametrize("offset", [0.0, 300.0, -5000.0, 2.0**20, -(2.0**20), 5e9, -5e9, 2.0**100])
def test_logsumexp_of_scores_far_from_zero(level: str, offset: float, rng: np.random.Generator) -> None:
    # Scores are offset + multiples of a power of two fine enough to keep a spread of several
    # e-folds up to 2^20 and no finer than float32's grid at the offset beyond: every float32
    # dot product is exact, FMA or not, so the float64 log-sum-exp of the exact scores is the
    # answer up to the exponential's own error. It must not drift with the offset (it did, by
    # 1.3e-8 |offset|), nor turn infinite where the float32 shift M log2(e) loses its units (it
    # did from about 4e9).
    m, n, dim = 5000, 24, 6
    grid = max(2.0**-3, 2.0 ** np.ceil(np.log2(abs(offset) / 2.0**23 + 1e-300)))
    items = np.concatenate([np.ones((m, 1)), rng.integers(-8, 9, (m, dim - 1))], axis=1).astype(np.float32)
    queries = np.concatenate(
        [np.full((n, 1), offset), rng.integers(-8, 9, (n, dim - 1)) * grid], axis=1
    ).astype(np.float32)
    exact = queries.astype(np.float64) @ items.astype(np.float64).T
    assert np.array_equal(exact, exact.astype(np.float32))  # every score is a float32
    top = exact.max(axis=1)
    expected = top + np.log(np.exp(exact - top[:, None]).sum(axis=1))
    result = recbatch.top_k(queries, items, 3, simd=level, threads=2, logsumexp=True)
    np.testing.assert_array_equal(result.scores[:, 0], top.astype(np.float32))
    assert result.logsumexp is not None
    assert np.all(np.isfinite(result.logsumexp))
    np.testing.assert_allclose(result.logsumexp - top, expected - top, rtol=0, atol=2e-5)


@pytest.mark.parametrize(("n", "m"), [(40, 1), (3, 40_000), (30, 3000)])
def test_logsumexp_is_never_below_the_best_score(
    level: str, n: int, m: int, rng: np.random.Generator
) -> None:
    # The best item's own term of the sum is e^0: log-sum-exp >= best score, exactly equal for
    # one item. (The vectorised exponential's last bits once left it ~1e-7 below, and the best
    # item's softmax share above 1.) A few queries over many items take catalogue ranges.
    queries, items = gaussian(rng, n, 8), gaussian(rng, m, 8)
    result = recbatch.top_k(queries, items, 5, simd=level, threads=2, logsumexp=True)
    assert result.logsumexp is not None
    best = result.scores[:, 0].astype(np.float64)
    assert (result.logsumexp >= best).all()
    if m == 1:
        np.testing.assert_array_equal(result.logsumexp, best)


def test_simd_levels_agree_with_scalar(rng: np.random.Generator) -> None:
    queries, items = gaussian(rng, 64, 65), gaussian(rng, 3000, 65)
    index = recbatch.ItemIndex(items)
    scalar = index.search(queries, 30, simd="scalar", logsumexp=True)
    ref = reference(queries, items, eligibility(64, 3000, None, None))
    for level in recbatch.available_simd_levels():
        other = index.search(queries, 30, simd=level, logsumexp=True)
        check_top_k(other, ref, 30)
        # Same items except where rounding reorders a near-tie; scores within rounding.
        same = (other.indices == scalar.indices).mean()
        assert same > 0.98
        np.testing.assert_allclose(other.scores, scalar.scores, rtol=1e-5, atol=1e-4)
        assert other.logsumexp is not None and scalar.logsumexp is not None
        np.testing.assert_allclose(other.logsumexp, scalar.logsumexp, rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 40),
    m=st.integers(1, 300),
    dim=st.integers(1, 70),
    k=st.integers(1, 320),
    threads=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    level=st.sampled_from(recbatch.available_simd_levels()),
)
def test_property_random_shapes(
    n: int, m: int, dim: int, k: int, threads: int, seed: int, level: str
) -> None:
    rng = np.random.default_rng(seed)
    queries = (rng.standard_normal((n, dim)) * rng.uniform(0.1, 10)).astype(np.float32)
    items = (rng.standard_normal((m, dim)) * rng.uniform(0.1, 10)).astype(np.float32)
    allow = rng.random(m) < 0.8 if seed % 2 else None
    result = recbatch.top_k(queries, items, k, allow=allow, threads=threads, simd=level, logsumexp=True)
    ref = reference(queries, items, eligibility(n, m, None, allow))
    check_top_k(result, ref, k)
    assert result.logsumexp is not None
    check_logsumexp(result.logsumexp, ref)


def test_spread_norms_prune_exactly(level: str, rng: np.random.Generator) -> None:
    # Long and short item vectors, as trained recommenders have: most blocks are provably
    # out of reach, and skipping them must not change a single result.
    n, m, dim = 60, 6000, 24
    queries = gaussian(rng, n, dim)
    items = gaussian(rng, m, dim) * rng.lognormal(0.0, 1.0, size=(m, 1)).astype(np.float32)
    lists = random_exclusions(rng, n, m, 40)
    ref = reference(queries, items, eligibility(n, m, lists, None))
    for k in (1, 10, 100):
        result = recbatch.top_k(queries, items, k, exclude=to_csr(lists, m), simd=level, threads=2)
        check_top_k(result, ref, k)


def test_spread_norms_with_exact_ties(level: str, rng: np.random.Generator) -> None:
    # Integer vectors scaled by integer factors: exact scores, many ties across norms.
    queries = rng.integers(-2, 3, size=(40, 6)).astype(np.float32)
    items = (rng.integers(-2, 3, size=(800, 6)) * rng.integers(1, 6, size=(800, 1))).astype(np.float32)
    ref = reference(queries, items, eligibility(40, 800, None, None))
    want_indices, want_scores = exact_top_k(ref, 30)
    for threads in (1, 3):
        result = recbatch.top_k(queries, items, 30, simd=level, threads=threads)
        np.testing.assert_array_equal(result.indices, want_indices)
        np.testing.assert_array_equal(result.scores, want_scores.astype(np.float32))
