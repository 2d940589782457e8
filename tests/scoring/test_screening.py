"""The int8 screening pass (``avx2_int8``, ``avx2_vnni``, ``avx512_vnni``, ``amx_int8``) must not change a single result.

Each of these levels runs a float kernel (avx2's, or avx512's) behind an int8 screening pass that
proves which items can still reach each query's top k (with vpmaddubsw and 6-bit queries, with
vpdpbusd on ymm or zmm registers, or with the AMX tile unit); only those are rescored in float32. Their results must be
IDENTICAL (indices and scores, bit for bit) to their float level on the same index, on inputs
built to stress the bound: near-ties, exact ties, huge and tiny norms, quantisation residuals that
add up coherently, tiny k, k = m, filters, odd dimensions (the AMX kernel's tile shapes change at
16 and 32 groups of 4). Every test checks every screening level this CPU has.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import recbatch
from tests.scoring.reference import check_top_k, eligibility, exact_top_k, reference

# Each screening level and the float level whose kernel rescores its candidates.
FLOAT_LEVEL = {"avx2_int8": "avx2", "avx2_vnni": "avx2", "avx512_vnni": "avx512", "amx_int8": "avx512"}
SCREEN_LEVELS = [level for level in FLOAT_LEVEL if level in recbatch.available_simd_levels()]
pytestmark = pytest.mark.skipif(not SCREEN_LEVELS, reason="this CPU has no AVX2")


def same_as_plain(
    queries: np.ndarray, items: np.ndarray, k: int, *, min_screened: float = 0.0, **options: object
) -> recbatch.TopKResult:
    """Searches at every screening level and its float level; asserts identical results, returns one."""
    index = recbatch.ItemIndex(items)
    screened = None
    for level in SCREEN_LEVELS:
        plain = index.search(queries, k, simd=FLOAT_LEVEL[level], **options)  # type: ignore[arg-type]
        stats: dict[str, int] = {}
        screened = index.search(queries, k, simd=level, stats=stats, **options)  # type: ignore[arg-type]
        np.testing.assert_array_equal(screened.indices, plain.indices, err_msg=level)
        np.testing.assert_array_equal(screened.scores, plain.scores, err_msg=level)
        if min_screened:
            # The screening pass really ran and really skipped items.
            assert stats["screened_queries"] >= min_screened * len(queries), level
            assert stats["candidates"] < len(queries) * index.n_items, level
    assert screened is not None
    return screened


def gaussian(rng: np.random.Generator, rows: int, dim: int) -> np.ndarray:
    return rng.standard_normal((rows, dim)).astype(np.float32)


@pytest.mark.parametrize("dim", [1, 2, 3, 5, 7, 17, 63, 64, 65, 100, 128, 129, 192, 300])
def test_identical_for_odd_dims(dim: int, rng: np.random.Generator) -> None:
    queries, items = gaussian(rng, 37, dim), gaussian(rng, 5000, dim)
    result = same_as_plain(queries, items, 10, threads=2, min_screened=1.0)
    check_top_k(result, reference(queries, items, eligibility(37, 5000, None, None)), 10)


@pytest.mark.parametrize("k", [1, 2, 31, 32, 33, 700, 1999, 2000, 2001, 5000])
def test_identical_for_every_k(k: int, rng: np.random.Generator) -> None:
    queries, items = gaussian(rng, 25, 24), gaussian(rng, 2000, 24)
    result = same_as_plain(queries, items, k, threads=1)
    check_top_k(result, reference(queries, items, eligibility(25, 2000, None, None)), k)


def test_identical_where_screening_pauses(rng: np.random.Generator) -> None:
    # k at 3% of the catalogue: most blocks hold a candidate, so screening pauses for the float
    # kernel and resumes as the norms fall along the scan (log-normal norms).
    n, m, k = 30, 20000, 600
    queries = gaussian(rng, n, 16)
    items = gaussian(rng, m, 16) * rng.lognormal(0.0, 1.0, (m, 1)).astype(np.float32)
    result = same_as_plain(queries, items, k, threads=2)
    check_top_k(result, reference(queries, items, eligibility(n, m, None, None)), k)
    index = recbatch.ItemIndex(items)
    for level in SCREEN_LEVELS:
        stats: dict[str, int] = {}
        index.search(queries, k, simd=level, threads=2, stats=stats)
        assert stats["paused_tiles"] > 0, level
        assert stats["rescored_blocks"] + stats["rescored_items"] > 0, level


def test_near_ties_at_the_kth_score(rng: np.random.Generator) -> None:
    # Every item is one base vector plus a perturbation of a few ulps: all scores agree to
    # float32 rounding, so only exact arithmetic separates the top k from the rest.
    dim, m = 48, 6000
    base = rng.standard_normal(dim).astype(np.float32)
    items = (base[None, :] * (1 + rng.integers(-4, 5, size=(m, dim)) * 2.0**-23)).astype(np.float32)
    queries = (base[None, :] + 0.01 * gaussian(rng, 30, dim)).astype(np.float32)
    for k in (1, 10, 100):
        same_as_plain(queries, items, k, threads=2, min_screened=1.0)


def test_exact_duplicates_keep_index_order(rng: np.random.Generator) -> None:
    # Many copies of few vectors: exact ties everywhere; lower index first.
    distinct = gaussian(rng, 40, 20)
    items = distinct[rng.integers(0, 40, size=3000)]
    queries = gaussian(rng, 30, 20)
    result = same_as_plain(queries, items, 50, threads=3)
    check_top_k(result, reference(queries, items, eligibility(30, 3000, None, None)), 50)


def test_integer_embeddings_exact(rng: np.random.Generator) -> None:
    queries = rng.integers(-3, 4, size=(60, 9)).astype(np.float32)
    items = (rng.integers(-3, 4, size=(4000, 9)) * rng.integers(1, 4, size=(4000, 1))).astype(np.float32)
    ref = reference(queries, items, eligibility(60, 4000, None, None))
    for k in (1, 25, 4000):
        want_indices, want_scores = exact_top_k(ref, k)
        result = same_as_plain(queries, items, k, threads=2)
        np.testing.assert_array_equal(result.indices, want_indices)
        np.testing.assert_array_equal(result.scores, want_scores.astype(np.float32))


def test_coherent_quantisation_residuals(rng: np.random.Generator) -> None:
    # Item values sit half-way between int8 steps (the largest rounding error) and the
    # queries point along those residuals, so the errors add up instead of cancelling:
    # the int8 estimate is off by close to the worst case the bound allows.
    dim, m = 64, 4000
    steps = rng.integers(-120, 121, size=(m, dim)) + 0.49
    steps[:, 0] = 127  # pins each item's scale at 1 / 127 of its largest entry
    items = (steps * rng.lognormal(0, 2, size=(m, 1))).astype(np.float32)
    residual_sign = np.sign(steps - np.round(steps))
    queries = (residual_sign[rng.integers(0, m, size=40)] * (1 + 0.49 / 127)).astype(np.float32)
    queries[:, 0] = 127 / 127.5
    for k in (1, 5, 64):
        same_as_plain(queries, items, k, threads=2)


@pytest.mark.parametrize("scale", [1e-30, 1e-12, 1e12, 1e17, "edge", 1e19])
def test_huge_and_tiny_norms(scale: float | str, rng: np.random.Generator) -> None:
    # Down to products in the subnormal range; up to scores whose bound |q| max|v| is half of
    # float32's largest value ("edge"), where the screen's own arithmetic must not overflow.
    # Beyond (1e19 * 1e19 * 32 terms), the search refuses the queries, naming the first row.
    queries = gaussian(rng, 20, 32)
    items = gaussian(rng, 3000, 32) * rng.lognormal(0, 1.5, size=(3000, 1)).astype(np.float32)
    if scale == "edge":
        bound = np.linalg.norm(queries, axis=1).max() * np.linalg.norm(items.astype(np.float64), axis=1).max()
        scale = float(np.sqrt(0.5 * float(np.finfo(np.float32).max) / bound))
    assert isinstance(scale, float)
    queries = (queries * np.float32(scale)).astype(np.float32)
    items = (items * np.float32(scale)).astype(np.float32)
    if scale > 1e18:
        with pytest.raises(ValueError, match="queries row 0: its inner products with the items may reach"):
            recbatch.top_k(queries, items, 10)
        return
    same_as_plain(queries, items, 10, threads=2)


def test_zero_vectors(rng: np.random.Generator) -> None:
    queries = gaussian(rng, 24, 16)
    queries[::3] = 0.0
    items = gaussian(rng, 2000, 16)
    items[::7] = 0.0
    same_as_plain(queries, items, 20, threads=2)


def test_spread_norms_with_pruning(rng: np.random.Generator) -> None:
    n, m, dim = 60, 20000, 32
    queries = gaussian(rng, n, dim)
    items = gaussian(rng, m, dim) * rng.lognormal(0.0, 1.0, size=(m, 1)).astype(np.float32)
    for k in (1, 10, 100):
        result = same_as_plain(queries, items, k, threads=2, min_screened=1.0)
        check_top_k(result, reference(queries, items, eligibility(n, m, None, None)), k)


def test_exclusions_and_allow(rng: np.random.Generator) -> None:
    n, m = 40, 3000
    queries, items = gaussian(rng, n, 33), gaussian(rng, m, 33)
    lists = [sorted(rng.choice(m, size=rng.integers(0, 400), replace=False).tolist()) for _ in range(n)]
    lists[0] = list(range(m))
    # Exclude each query's best items, so the screen must look past them.
    best = np.argsort(-(queries @ items.T), axis=1)[:, :30]
    for row in range(1, n, 2):
        lists[row] = sorted(set(lists[row]) | set(best[row].tolist()))
    indptr = np.cumsum([0] + [len(x) for x in lists])
    csr = sp.csr_matrix((np.ones(indptr[-1]), [i for x in lists for i in x], indptr), shape=(n, m))
    allow = rng.random(m) < 0.5
    ref = reference(queries, items, eligibility(n, m, lists, allow))
    for k in (1, 20, 3000):
        result = same_as_plain(queries, items, k, exclude=csr, allow=allow, threads=2)
        check_top_k(result, ref, k)
        assert np.all(result.indices[0] == -1)


def test_logsumexp_turns_screening_off(rng: np.random.Generator) -> None:
    queries, items = gaussian(rng, 30, 16), gaussian(rng, 3000, 16)
    index = recbatch.ItemIndex(items)
    for level in SCREEN_LEVELS:
        plain = index.search(queries, 10, simd=FLOAT_LEVEL[level], logsumexp=True)
        stats = {"screened_queries": 7}  # counters are added to what the dict holds
        screened = index.search(queries, 10, simd=level, logsumexp=True, stats=stats)
        assert stats["screened_queries"] == 7 and stats["paused_tiles"] == 0
        unscreened = index.search(queries, 10, simd=level, stats=stats)
        np.testing.assert_array_equal(unscreened.indices, plain.indices)
        assert stats["screened_queries"] == 7 + 30
        np.testing.assert_array_equal(screened.indices, plain.indices)
        np.testing.assert_array_equal(screened.scores, plain.scores)
        assert screened.logsumexp is not None and plain.logsumexp is not None
        np.testing.assert_array_equal(screened.logsumexp, plain.logsumexp)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 30),
    m=st.integers(1, 2500),
    dim=st.integers(1, 80),
    k=st.integers(1, 120),
    threads=st.integers(1, 3),
    log_scale=st.floats(-20, 18),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_identical(
    n: int, m: int, dim: int, k: int, threads: int, log_scale: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    scale = np.float32(10.0**log_scale)
    queries = (rng.standard_normal((n, dim)) * scale).astype(np.float32)
    items = (rng.standard_normal((m, dim)) * rng.lognormal(0, 1, size=(m, 1)) * scale).astype(np.float32)
    if seed % 3 == 0:  # coarse values: many exact ties
        queries, items = np.round(queries / scale) * scale, np.round(items / scale) * scale
    allow = rng.random(m) < 0.7 if seed % 2 else None
    queries, items = queries.astype(np.float32), items.astype(np.float32)
    norms = [np.linalg.norm(x.astype(np.float64), axis=1).max() for x in (queries, items)]
    if norms[0] * norms[1] > float(np.finfo(np.float32).max) * (1 - 2**-8):  # scores could overflow
        with pytest.raises(ValueError, match="its inner products with the items may reach"):
            recbatch.top_k(queries, items, k)
        return
    same_as_plain(queries, items, k, allow=allow, threads=threads)


def assert_a_survives_screening_behind_b(
    queries: np.ndarray,
    a_items: np.ndarray,
    b_items: np.ndarray,
    decoy_norms: tuple[float, float],
    rng: np.random.Generator,
) -> None:
    """Query i's best item is A[i]; B[i], longer, is scanned first and sets its threshold.

    Items are in units of 1/64 (an int8 step where an item's largest entry is 127). Decoys
    (dimension 0 only, score 0, norms between B's and A's) put A past the first tile, which is
    scored in float32 without screening (k <= 32: one full tile, 1,024 items at d = 64), and
    small random fillers make up the catalogue. A must come out first at every screening level.
    """
    n, dim = queries.shape
    decoys = np.zeros((1100, dim))
    decoys[:, 0] = np.linspace(*decoy_norms, 1100)
    fillers = rng.integers(-20, 21, size=(3000, dim)).astype(np.float64)
    items = (np.concatenate([fillers, a_items, decoys, b_items]) / 64).astype(np.float32)
    for k in (1, 2):
        result = same_as_plain(queries, items, k, threads=1, min_screened=1.0)
        np.testing.assert_array_equal(result.indices[:, 0], len(fillers) + np.arange(n))


def test_bound_is_tight_where_the_error_is_coherent(rng: np.random.Generator) -> None:
    # A case where the int8 estimate of the true best item A is off by nearly the full bound.
    # Queries are exact in int8 (entries +-127, scale 1), so the error is q . (v - v~); A's
    # entries sit 0.49 of a step from the int8 grid, with signs matching the query's, so
    # that error is sum |q_i| |r_i| = |q| |v - v~|: the Cauchy-Schwarz bound, attained.
    # Item B is exact in int8 and scores just below A but above A's estimate plus half the
    # bound: a bound too small by half would drop A and return B.
    signs = rng.choice([-1.0, 1.0], size=(40, 64))
    signs[:, 0] = 0.0  # the query ignores dimension 0, which only makes items longer
    queries = (127 * signs).astype(np.float32)
    base = signs * 50.0  # equal magnitudes: every A (and every B) has the same norm
    base[:, 1] = 127 * signs[:, 1]  # pins each item's int8 scale at exactly one step
    a_items = base.copy()
    a_items[:, 2:] += 0.49 * signs[:, 2:]
    b_items = base.copy()
    b_items[:, 2:32] += signs[:, 2:32]  # 30 full steps: between A's estimate (+0) and A (+30.38)
    b_items[:, 0] = 127.0  # longer than A (436 vs 417 steps)
    assert_a_survives_screening_behind_b(queries, a_items, b_items, (434, 420), rng)


def test_bound_is_tight_where_the_query_error_is_coherent(rng: np.random.Generator) -> None:
    # The query's side of the bound, on avx2_int8's coarse 6-bit grid (31 levels): items are
    # exact in int8 and all of equal magnitude, and the query's entries sit 0.49 of a step from
    # the grid with signs matching the item's, so the screening error q~ . v - q . v is the
    # Cauchy-Schwarz bound |q - q~| |v| itself. Item B scores between A's estimate plus half the
    # bound and A: a query term too small by half would drop A and return B. (On the 127-level
    # grids the same queries are off by less, a weaker case, and must give identical results too.)
    signs = rng.choice([-1.0, 1.0], size=(40, 64))
    signs[:, 0] = 0.0
    queries = (24.49 * signs).astype(np.float32)
    queries[:, 1] = 31 * signs[:, 1]  # pins the 6-bit query scale at exactly 1
    a_items = 127 * signs  # on the int8 grid, block scale one step
    b_items = a_items.copy()
    b_items[:, 2] = 87 * signs[:, 2]  # 40 steps short in one dimension: 980 below A, bound 3,889
    b_items[:, 0] = 127.0  # longer than A (1011.8 vs 1008.0 steps)
    assert_a_survives_screening_behind_b(queries, a_items, b_items, (1011, 1009), rng)
