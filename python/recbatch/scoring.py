"""The scoring API: exact top-k inner-product search over an item catalogue.

This module validates and coerces user input, then hands raw contiguous buffers to
the compiled kernel (``recbatch._core``). It holds no algorithm of its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from recbatch import _core

__all__ = [
    "ExcludeLike",
    "ItemIndex",
    "TopKResult",
    "available_simd_levels",
    "default_threads",
    "simd_level",
    "top_k",
]

#: Per-query exclusions: a ``scipy.sparse`` CSR matrix of shape (n_queries, n_items)
#: or an ``(indptr, indices)`` pair in CSR layout.
ExcludeLike = Any  # scipy.sparse CSR matrix, or tuple[ArrayLike, ArrayLike]

# Beyond this many threads a search gains nothing (they would wait for tasks); larger counts are
# taken as this one.
_MAX_THREADS = 1 << 16
# The largest k: the kernel's argument is a C int64, and n x k results must fit in memory anyway.
_MAX_K = (1 << 62) - 1
# Inner products must stay finite in float32; the check below leaves room for the rounding of a
# dot product's partial sums (relative dim * 2^-24 at most; dim below 2^16 keeps it under 2^-8).
_SCORE_LIMIT = float(np.finfo(np.float32).max) * (1.0 - 2.0**-8)

_LEVEL_ORDER = ("scalar", "avx2", "avx2_int8", "avx2_vnni", "avx512", "avx512_vnni", "amx_int8", "neon")


@dataclass(frozen=True)
class TopKResult:
    """The k best items per query.

    Attributes:
        indices: (n, k) int64 item rows, best first; -1 where fewer than k items were eligible.
        scores: (n, k) float32 inner products matching ``indices``; -inf where padded.
        logsumexp: (n,) float64 ``log(sum_j exp(q . v_j))`` over every eligible item, or None
            when it was not asked for (-inf where no item was eligible).
    """

    indices: NDArray[np.int64]
    scores: NDArray[np.float32]
    logsumexp: NDArray[np.float64] | None = None


def available_simd_levels() -> list[str]:
    """The SIMD paths this CPU can run, in order of preference (``"scalar"`` first, always there)."""
    return list(_core.available_simd_levels())


def simd_level() -> str:
    """The SIMD path searches use by default.

    That is the preferred path the CPU supports (the last of :func:`available_simd_levels`),
    unless the environment variable ``RECBATCH_SIMD`` names another one it supports (a path the
    CPU lacks is never chosen).
    """
    detected = _core.detected_simd_level()
    wanted = os.environ.get("RECBATCH_SIMD", "").strip().lower()
    if not wanted:
        return detected
    available = available_simd_levels()
    if wanted not in _LEVEL_ORDER:
        msg = f"RECBATCH_SIMD={wanted!r} is not a SIMD level; expected one of {', '.join(available)}"
        raise ValueError(msg)
    if wanted not in available:
        # A level the CPU lacks would crash with an illegal instruction: keep the detected one.
        return detected
    return wanted


def _thread_count(threads: int | None) -> int:
    """A validated thread count; None means :func:`default_threads`."""
    if threads is None:
        return default_threads()
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        msg = f"threads must be a positive integer, got {threads!r}"
        raise ValueError(msg)
    # More workers than that would only wait; the kernel's argument is a C int64.
    return int(min(threads, _MAX_THREADS))


def default_threads() -> int:
    """The CPUs this process may run on (its affinity mask, not the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _as_matrix(name: str, value: ArrayLike) -> NDArray[np.float32]:
    array = np.asarray(value)
    if array.dtype.kind not in "fiub":
        msg = f"{name} must hold real numbers, got dtype {array.dtype}"
        raise TypeError(msg)
    if array.ndim != 2:
        msg = f"{name} must be a 2-D array (rows x dim), got {array.ndim} dimension(s)"
        raise ValueError(msg)
    if array.shape[1] < 1:
        msg = f"{name} must have at least one column (dim >= 1)"
        raise ValueError(msg)
    # One copy at most: to contiguous float32 (other float dtypes are rounded to float32).
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below, naming the row
        matrix = np.ascontiguousarray(array, dtype=np.float32)
    bad = _first_nonfinite_row(matrix)
    if bad is not None:
        msg = f"{name} must be finite: row {bad} holds NaN or infinity"
        if array.dtype != np.float32 and np.isfinite(np.asarray(array[bad], dtype=np.float64)).all():
            msg += " after conversion to float32 (a value is beyond float32's range)"
        raise ValueError(msg)
    return matrix


def _first_nonfinite_row(matrix: NDArray[np.float32]) -> int | None:
    """The first row holding NaN or infinity, without an (n x d) temporary.

    A row sum is non-finite whenever the row holds NaN or infinity (they propagate), so the
    common all-finite case costs one pass and n floats; only a non-finite sum (or an overflow
    of finite values) pays for the exact check, a bounded chunk at a time.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        sums = matrix.sum(axis=1, dtype=np.float32)
    suspects = np.flatnonzero(~np.isfinite(sums))
    for row in suspects:
        if not np.isfinite(matrix[row]).all():
            return int(row)
    return None


def _check_score_range(queries: NDArray[np.float32], max_item_norm: float) -> None:
    """Refuse queries whose inner products with the items could overflow float32.

    By Cauchy-Schwarz every score (and every partial sum of one) is at most |q| max|v|. The
    common case pays two reductions over the queries (|q| <= sqrt(dim) max|q_i|); only a
    failing bound computes the rows' norms, a chunk at a time, to name the first bad row.
    """
    if queries.size == 0 or max_item_norm == 0.0:
        return
    peak = max(float(queries.max()), -float(queries.min()))
    if peak * np.sqrt(queries.shape[1]) * max_item_norm <= _SCORE_LIMIT:
        return
    for start in range(0, queries.shape[0], 4096):
        chunk = queries[start : start + 4096].astype(np.float64)
        norms = np.sqrt(np.einsum("ij,ij->i", chunk, chunk))
        over = np.flatnonzero(norms * max_item_norm > _SCORE_LIMIT)
        if over.size:
            row = start + int(over[0])
            msg = (
                f"queries row {row}: its inner products with the items may reach "
                f"{float(norms[over[0]]) * max_item_norm:.3g} (|q| x the largest |item|), beyond float32's "
                f"largest value {float(np.finfo(np.float32).max):.3g}; scale the queries or the items down"
            )
            raise ValueError(msg)


def _exclusions(
    exclude: ExcludeLike | None, n_queries: int, n_items: int
) -> tuple[NDArray[np.int64] | NDArray[np.int32], NDArray[np.int64] | NDArray[np.int32]] | tuple[None, None]:
    if exclude is None:
        return None, None
    if isinstance(exclude, tuple):
        if len(exclude) != 2:
            msg = "exclude as a tuple must be (indptr, indices)"
            raise TypeError(msg)
        indptr = np.asarray(exclude[0])
        indices = np.asarray(exclude[1])
    elif hasattr(exclude, "tocsr") and hasattr(exclude, "shape"):
        shape = tuple(exclude.shape)
        if shape != (n_queries, n_items):
            msg = f"exclude must have shape (n_queries, n_items) = ({n_queries}, {n_items}), got {shape}"
            raise ValueError(msg)
        csr = exclude.tocsr()
        indptr = np.asarray(csr.indptr)
        indices = np.asarray(csr.indices)
    else:
        msg = "exclude must be a scipy.sparse CSR matrix or an (indptr, indices) pair"
        raise TypeError(msg)
    for name, arr in (("exclude indptr", indptr), ("exclude indices", indices)):
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
            msg = f"{name} must be a 1-D integer array"
            raise TypeError(msg)
    if indptr.shape[0] != n_queries + 1:
        msg = f"exclude indptr must have n_queries + 1 = {n_queries + 1} entries, got {indptr.shape[0]}"
        raise ValueError(msg)
    # int64 and int32 (scipy's usual index type) go to the kernel as they are: widening a
    # copy would cost 8 bytes per excluded entry, the largest allocation of a filtered search.
    indptr, indices = _as_index_array(indptr), _as_index_array(indices)
    if indptr[0] != 0 or indptr[-1] != indices.shape[0] or np.any(indptr[1:] < indptr[:-1]):
        msg = "exclude indptr must start at 0, never decrease, and end at len(indices)"
        raise ValueError(msg)
    if indices.size and (indices.min() < 0 or indices.max() >= n_items):
        bad = int(np.flatnonzero((indices < 0) | (indices >= n_items))[0])
        msg = f"exclude indices must lie in [0, {n_items}): entry {bad} is {int(indices[bad])}"
        raise ValueError(msg)
    # Rows may be unsorted and hold duplicates: the kernel maps each row to its own storage
    # order (items are stored by norm) and sorts it there anyway.
    return indptr, indices


def _as_index_array(array: NDArray[Any]) -> NDArray[np.int64] | NDArray[np.int32]:
    """The array itself where the kernel can read it in place, else an int64 copy."""
    if array.dtype in (np.int64, np.int32) and array.flags.c_contiguous:
        return array
    if array.dtype.kind == "u" and array.size and array.max() > np.iinfo(np.int64).max:
        msg = "exclude indices must lie in [0, n_items)"
        raise ValueError(msg)
    return np.ascontiguousarray(array, dtype=np.int64)


def _allow_mask(allow: ArrayLike | None, n_items: int) -> NDArray[np.uint8] | None:
    if allow is None:
        return None
    array = np.asarray(allow)
    if array.dtype == np.bool_:
        if array.shape != (n_items,):
            msg = f"allow as a boolean mask must have length n_items = {n_items}, got shape {array.shape}"
            raise ValueError(msg)
        return np.ascontiguousarray(array, dtype=np.uint8)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
        msg = "allow must be a boolean mask of length n_items or a 1-D array of item indices"
        raise TypeError(msg)
    if array.size and (array.min() < 0 or array.max() >= n_items):
        msg = f"allow indices must lie in [0, {n_items})"
        raise ValueError(msg)
    mask = np.zeros(n_items, dtype=np.uint8)
    mask[array.astype(np.intp, copy=False)] = 1  # an empty list arrives as float64
    return mask


class ItemIndex:
    """An item catalogue packed once for repeated exact top-k searches.

    An index is thread-safe (any number of threads may search it at once) and pickles by value
    (its float32 items; the copy is packed again where it is loaded), so it can be broadcast to
    Spark, Ray or Dask workers.

    Args:
        items: (m, d) item vectors. Converted to contiguous float32 (one copy) and then
            packed into the kernel's layout; the caller's array is not referenced afterwards.
        threads: worker threads for the packing; default: the CPUs this process may run on.
            The index is the same whatever the count.
    """

    def __init__(self, items: ArrayLike, *, threads: int | None = None) -> None:
        matrix = _as_matrix("items", items)
        if matrix.shape[0] < 1:
            msg = "items must have at least one row"
            raise ValueError(msg)
        self._index = _core.ItemIndex(matrix, _thread_count(threads))

    def __reduce__(self) -> tuple[type[ItemIndex], tuple[NDArray[np.float32]]]:
        # Pickled by value (for Spark broadcasts, Ray and Dask tasks): the float32 item vectors,
        # bit for bit; the copy is packed again where it is loaded, with that machine's threads.
        return (ItemIndex, (self._index.items(),))

    @property
    def n_items(self) -> int:
        """The number of items (m)."""
        return self._index.n_items

    @property
    def dim(self) -> int:
        """The vector dimension (d)."""
        return self._index.dim

    def search(
        self,
        queries: ArrayLike,
        k: int,
        *,
        exclude: ExcludeLike | None = None,
        allow: ArrayLike | None = None,
        threads: int | None = None,
        logsumexp: bool = False,
        simd: str | None = None,
        stats: dict[str, int] | None = None,
    ) -> TopKResult:
        """The k items with the largest inner product for every query.

        Args:
            queries: (n, d) query vectors (users, or items for related items).
            k: how many items per query (>= 1; more than n_items pads with -1 / -inf).
            exclude: per-query items that must not be returned (CSR (n, m), or (indptr, indices)).
            allow: the only items that may be returned: a boolean mask of length m or indices.
            threads: worker threads; default: the CPUs this process may run on.
            logsumexp: also return log(sum(exp(scores))) over every eligible item.
            simd: force a SIMD path (``"scalar"``, ``"avx2"``, ...) no wider than the CPU's.
            stats: a dict to which this search adds the int8 screening pass's counters
                (``screened_queries``, ``candidates``, ``rescored_blocks``, ``rescored_items``,
                ``paused_tiles``; zeros on paths without screening): how much it pruned.

        Returns:
            A :class:`TopKResult`; rows sorted by score, ties broken by lower item index.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            msg = f"k must be an integer, got {type(k).__name__}"
            raise TypeError(msg)
        if k < 1 or k > _MAX_K:
            msg = f"k must be >= 1 and below 2**62, got {k}"
            raise ValueError(msg)
        if simd is not None and not isinstance(simd, str):
            msg = f"simd must be a str such as 'avx2' (or None), got {type(simd).__name__}"
            raise TypeError(msg)
        matrix = _as_matrix("queries", queries)
        if matrix.shape[1] != self.dim:
            msg = f"queries have dim {matrix.shape[1]} but the items have dim {self.dim}"
            raise ValueError(msg)
        _check_score_range(matrix, self._index.max_norm)
        threads = _thread_count(threads)
        level = simd_level() if simd is None else simd.strip().lower()
        if level not in available_simd_levels():
            msg = f"simd={simd!r} is not available on this CPU; available: {available_simd_levels()}"
            raise ValueError(msg)
        indptr, indices = _exclusions(exclude, matrix.shape[0], self.n_items)
        mask = _allow_mask(allow, self.n_items)
        top_indices, top_scores, lse = self._index.search(
            matrix, int(k), indptr, indices, mask, int(threads), bool(logsumexp), level, stats
        )
        return TopKResult(indices=top_indices, scores=top_scores, logsumexp=lse)


def top_k(
    queries: ArrayLike,
    items: ArrayLike,
    k: int,
    *,
    exclude: ExcludeLike | None = None,
    allow: ArrayLike | None = None,
    threads: int | None = None,
    logsumexp: bool = False,
    simd: str | None = None,
) -> TopKResult:
    """One-shot form of :meth:`ItemIndex.search` (packs ``items`` for this call only)."""
    return ItemIndex(items, threads=threads).search(
        queries, k, exclude=exclude, allow=allow, threads=threads, logsumexp=logsumexp, simd=simd
    )
