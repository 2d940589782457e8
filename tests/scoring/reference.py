"""A float64 NumPy oracle for the scoring contract, and the comparison rules used by the tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

import recbatch

EPS32 = float(np.finfo(np.float32).eps)


@dataclass
class Reference:
    scores: NDArray[np.float64]  # (n, m) exact scores, -inf where not eligible
    bound: NDArray[np.float64]  # (n, m) float32 rounding bound of each score
    order: NDArray[np.int64]  # (n, m) items by (score desc, index asc)
    eligible: NDArray[np.bool_]  # (n, m)


def eligibility(
    n: int, m: int, exclude_lists: list[list[int]] | None, allow: NDArray[np.bool_] | None
) -> NDArray[np.bool_]:
    eligible = np.ones((n, m), dtype=bool)
    if allow is not None:
        eligible &= allow[None, :]
    if exclude_lists is not None:
        for row, items in enumerate(exclude_lists):
            eligible[row, items] = False
    return eligible


def reference(
    queries: NDArray[np.float32], items: NDArray[np.float32], eligible: NDArray[np.bool_]
) -> Reference:
    q = queries.astype(np.float64)
    v = items.astype(np.float64)
    scores = q @ v.T
    # Worst-case error of a float32 dot product of length d, with margin for FMA ordering.
    bound = (queries.shape[1] + 2) * EPS32 * (np.abs(q) @ np.abs(v).T) + 1e-30
    masked = np.where(eligible, scores, -np.inf)
    n, m = masked.shape
    index = np.broadcast_to(np.arange(m), (n, m))
    order = np.lexsort((index, -masked), axis=1)
    return Reference(scores=masked, bound=bound, order=order, eligible=eligible)


def logsumexp(ref: Reference) -> NDArray[np.float64]:
    s = ref.scores
    top = s.max(axis=1, keepdims=True)
    safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return (np.log(np.exp(s - safe).sum(axis=1)) + safe[:, 0]).astype(np.float64)


def check_logsumexp(got: NDArray[np.float64] | None, ref: Reference, rows: slice = slice(None)) -> None:
    """The log-sum-exp of each row's eligible scores, up to float32 rounding: it moves by at most
    the largest error of a row's scores (it is 1-Lipschitz in them), plus its own evaluation."""
    assert got is not None
    expected = logsumexp(ref)[rows]
    bound = np.where(ref.eligible, ref.bound, 0.0).max(axis=1)[rows]
    assert got.shape == expected.shape
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(got[~finite], expected[~finite])
    error = np.abs(got[finite] - expected[finite])
    assert np.all(error <= 1e-5 * np.maximum(1.0, np.abs(expected[finite])) + bound[finite]), (got, expected)


def check_top_k(result: recbatch.TopKResult, ref: Reference, k: int) -> None:
    """The returned rows are a valid top k of the exact scores, up to float32 rounding."""
    n = ref.scores.shape[0]
    assert result.indices.shape == (n, k) and result.indices.dtype == np.int64
    assert result.scores.shape == (n, k) and result.scores.dtype == np.float32
    for row in range(n):
        n_eligible = int(ref.eligible[row].sum())
        kk = min(k, n_eligible)
        got = result.indices[row]
        got_scores = result.scores[row]
        # Padding: exactly the slots beyond the eligible count.
        assert np.all(got[kk:] == -1), f"row {row}: expected padding after {kk}"
        assert np.all(np.isneginf(got_scores[kk:]))
        real = got[:kk]
        assert np.all(real >= 0) and len(np.unique(real)) == kk, f"row {row}: bad or repeated indices"
        assert np.all(ref.eligible[row, real]), f"row {row}: returned an ineligible item"
        exact = ref.scores[row, real]
        bound = ref.bound[row, real]
        assert np.all(np.abs(got_scores[:kk] - exact) <= bound), f"row {row}: scores off"
        # Sorted best first; equal scores by lower index.
        s = got_scores[:kk]
        assert np.all(s[:-1] >= s[1:]), f"row {row}: not sorted"
        ties = s[:-1] == s[1:]
        assert np.all(real[:-1][ties] < real[1:][ties]), f"row {row}: tie not broken by index"
        if kk == 0:
            continue
        # Membership: anything clearly above the k-th exact score must be in, and nothing
        # clearly below it may be: only near-ties (within rounding) may differ.
        kth_item = ref.order[row, kk - 1]
        kth = ref.scores[row, kth_item]
        slack = ref.bound[row].max() * 2
        clearly_in = np.flatnonzero(ref.scores[row] > kth + slack)
        assert set(clearly_in.tolist()) <= set(real.tolist()), f"row {row}: missed a clear top-k item"
        assert np.all(exact >= kth - slack), f"row {row}: returned an item clearly below the k-th"


def exact_top_k(ref: Reference, k: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """The reference rows, padded like the kernel (for inputs whose float32 scores are exact)."""
    n, m = ref.scores.shape
    kk = min(k, m)
    indices = np.full((n, k), -1, dtype=np.int64)
    scores = np.full((n, k), -np.inf)
    order = ref.order[:, :kk]
    picked = np.take_along_axis(ref.scores, order, axis=1)
    indices[:, :kk] = np.where(np.isfinite(picked), order, -1)
    scores[:, :kk] = picked
    return indices, scores
