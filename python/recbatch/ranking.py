"""Ranking given candidate lists: each query's own short list of items, ordered by score.

Where :class:`recbatch.ItemIndex` finds the best k of a whole catalogue, a
:class:`CandidateRanker` orders the items a caller names for each query: Personalize's
personalized ranking (a user and an itemList), or re-ranking the output of a retrieval stage.
The lists go to the compiled extension in CSR layout, and the work runs there with the GIL
released: repeats dropped, float64 inner products, ordering, and each list's log-sum-exp (the
softmax denominator over the list).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from recbatch import _core
from recbatch.ids import IdIndex
from recbatch.scoring import _as_matrix, _thread_count

__all__ = [
    "CandidateRanker",
    "RankedLineBatch",
    "RankedLists",
    "rank_by_value",
    "rank_ranking_batch",
    "rank_ranking_lines",
]


@dataclass(frozen=True)
class RankedLists:
    """Every candidate list, ranked.

    A repeated entry counts once, at its first position. Catalogue entries come first, by score
    descending with ties broken by the lower item row; entries outside the catalogue (negative)
    follow in list order.

    Attributes:
        order: (n, width) int64: ``order[i, j]`` is the position within list i of its j-th entry
            once ranked; -1 past the list's distinct entries. ``width`` is the longest list.
        scores: (n, width) float64 score of each ranked entry; -inf for entries outside the
            catalogue and for padding.
        logsumexp: (n,) float64 ``log(sum(exp(score)))`` over each list's catalogue entries, -inf
            for a list without any (see :meth:`softmax`).
    """

    order: NDArray[np.int64]
    scores: NDArray[np.float64]
    logsumexp: NDArray[np.float64]

    def softmax(self) -> NDArray[np.float64]:
        """(n, width) each ranked entry's share of its list: ``exp(score - logsumexp)`` over the
        catalogue entries (they sum to 1 per list), 0 for entries outside it and for padding."""
        known = self.scores > -np.inf
        with np.errstate(under="ignore", invalid="ignore"):  # -inf - -inf: a list without catalogue items
            shares = np.exp(self.scores - self.logsumexp[:, None])
        return np.where(known, shares, 0.0)


def _candidate_lists(
    indptr: ArrayLike, candidates: ArrayLike, n_items: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(indptr, candidates) as int64 arrays, checked: a CSR layout whose entries lie below n_items."""
    arrays = []
    for name, value in (("indptr", indptr), ("candidates", candidates)):
        array = np.asarray(value)
        if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
            msg = f"{name} must be a 1-D integer array"
            raise TypeError(msg)
        if array.dtype.kind == "u" and array.size and array.max() > np.iinfo(np.int64).max:
            msg = f"{name} holds a value beyond int64"
            raise ValueError(msg)
        arrays.append(np.ascontiguousarray(array, dtype=np.int64))
    offsets, entries = arrays
    if (
        offsets.size < 1
        or offsets[0] != 0
        or offsets[-1] != entries.size
        or np.any(offsets[1:] < offsets[:-1])
    ):
        msg = "indptr must have n_lists + 1 entries, start at 0, never decrease, and end at len(candidates)"
        raise ValueError(msg)
    if entries.size and entries.max() >= n_items:
        bad = int(np.flatnonzero(entries >= n_items)[0])
        msg = f"candidates must be item rows below n_items = {n_items} (or negative): entry {bad} is {int(entries[bad])}"
        raise ValueError(msg)
    return offsets, entries


class CandidateRanker:
    """Ranks candidate lists by their queries' inner products with an item catalogue.

    Args:
        items: (m, d) item vectors, finite. A C-contiguous float32 array is used in place (keep
            it unchanged while the ranker is in use); anything else is converted once.

    Thread-safe: ranking reads the items and writes only its own outputs.
    """

    def __init__(self, items: ArrayLike) -> None:
        self._items = _as_matrix("items", items)

    @property
    def n_items(self) -> int:
        """The number of items (m)."""
        return int(self._items.shape[0])

    @property
    def dim(self) -> int:
        """The vector dimension (d)."""
        return int(self._items.shape[1])

    def rank(
        self, queries: ArrayLike, indptr: ArrayLike, candidates: ArrayLike, *, threads: int | None = None
    ) -> RankedLists:
        """Each list ``candidates[indptr[i]:indptr[i + 1]]`` ranked by ``queries[i] . items[c]``.

        Args:
            queries: (n, d) one query per list, finite.
            indptr: (n + 1,) the lists' bounds in ``candidates`` (CSR layout).
            candidates: item rows; a negative entry is something outside the catalogue, kept in
                place after the ranked items (equal negative entries in a list are repeats).
            threads: worker threads; default: the CPUs this process may run on.

        Scores are float64 sums of the exact float32 products (softmax over a short list is
        sensitive to rounding).
        """
        matrix = _as_matrix("queries", queries)
        if matrix.shape[1] != self.dim:
            msg = f"queries have dim {matrix.shape[1]} but the items have dim {self.dim}"
            raise ValueError(msg)
        offsets, entries = _candidate_lists(indptr, candidates, self.n_items)
        if offsets.size - 1 != matrix.shape[0]:
            msg = f"indptr must have n_queries + 1 = {matrix.shape[0] + 1} entries, got {offsets.size}"
            raise ValueError(msg)
        order, scores, lse = _core.rank_lists(
            matrix, self._items, None, offsets, entries, _thread_count(threads)
        )
        return RankedLists(order=order, scores=scores, logsumexp=lse)


def rank_by_value(values: ArrayLike, indptr: ArrayLike, candidates: ArrayLike) -> RankedLists:
    """Each candidate list ranked by a fixed value per item (popularity, say), as
    :meth:`CandidateRanker.rank` ranks by inner products: ``scores`` are ``values[c]``.

    Args:
        values: (m,) finite values, one per item.
        indptr, candidates: the lists, as for :meth:`CandidateRanker.rank`.
    """
    array = np.asarray(values)
    if array.ndim != 1 or array.dtype.kind not in "fiub":
        msg = "values must be a 1-D array of real numbers"
        raise TypeError(msg)
    item_values = np.ascontiguousarray(array, dtype=np.float64)
    if not np.isfinite(item_values).all():
        bad = int(np.flatnonzero(~np.isfinite(item_values))[0])
        msg = f"values must be finite: entry {bad} is {item_values[bad]}"
        raise ValueError(msg)
    offsets, entries = _candidate_lists(indptr, candidates, item_values.size)
    order, scores, lse = _core.rank_lists(None, None, item_values, offsets, entries, 1)
    return RankedLists(order=order, scores=scores, logsumexp=lse)


@dataclass(frozen=True)
class RankedLineBatch:
    """A batch's output lines from :func:`rank_ranking_batch`, as one bytes object.

    Attributes:
        text: the output lines of the lines done, one after another, in input order.
        done: (n,) bool, per input line: its output line is in ``text``.
        ends: (done.sum(),) int64, per line done: where its output line ends in ``text``.
    """

    text: bytes
    done: NDArray[np.bool_]
    ends: NDArray[np.int64]

    def lines(self) -> list[bytes | None]:
        """One output line per input line, None for a line left to the caller."""
        out: list[bytes | None] = [None] * self.done.size
        start = 0
        for position, end in zip(np.flatnonzero(self.done).tolist(), self.ends.tolist(), strict=True):
            out[position] = self.text[start:end]
            start = end
        return out


def rank_ranking_batch(
    lines: Sequence[bytes],
    *,
    users: IdIndex,
    items: IdIndex,
    user_factors: NDArray[np.float32],
    item_factors: NDArray[np.float32],
    popularity: NDArray[np.float64] | None = None,
    max_id_chars: int,
    max_list: int,
    threads: int | None = None,
) -> RankedLineBatch:
    """:func:`rank_ranking_lines` with the lines done as one bytes object: what a job writes, with
    no Python object per line (creating them took about a quarter of a microsecond per line, on
    one thread, while the GIL was held)."""
    buffer = b"".join(lines)
    line_ends = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
    np.cumsum(line_ends, out=line_ends)
    text, done, ends = _core.rank_ranking_lines(
        users._core,
        items._core,
        user_factors,
        item_factors,
        None if popularity is None else np.ascontiguousarray(popularity, dtype=np.float64),
        buffer,
        line_ends,
        max_id_chars,
        max_list,
        _thread_count(threads),
    )
    return RankedLineBatch(text=text, done=done.astype(bool), ends=ends)


def rank_ranking_lines(
    lines: Sequence[bytes],
    *,
    users: IdIndex,
    items: IdIndex,
    user_factors: NDArray[np.float32],
    item_factors: NDArray[np.float32],
    popularity: NDArray[np.float64] | None = None,
    max_id_chars: int,
    max_list: int,
    threads: int | None = None,
) -> list[bytes | None]:
    """Personalized ranking's output lines for a batch of JSON input lines, read, ranked and
    written in the extension with the GIL released, or None for a line left to the caller.

    A line is done here when it has exactly the shape ``{"userId": ..., "itemList": [...]}``
    that :func:`recbatch.ids.scan_id_lines` accepts and its user is one of ``users``, or
    ``popularity`` (one finite value >= 0 per item) is given. Its output line is
    ``{"input":<line>,"output":{"recommendedItems":[...],"scores":[...]},"error":null}`` and a
    newline: the list's items of the catalogue by ``user . item`` descending (ties by the lower
    row), each with its softmax share over them, then the other items in list order, with 0; a
    repeated item counts once. A user not in ``users`` has the list ranked by popularity
    instead, each item's share its part of the list's total, summed in rank order (equal shares
    where the total is 0). Each item is written as the JSON string its line holds (the lines done
    hold no escapes), which is the catalogue's text for it. :func:`rank_ranking_batch` gives the
    same lines as one bytes object.
    """
    return rank_ranking_batch(
        lines,
        users=users,
        items=items,
        user_factors=user_factors,
        item_factors=item_factors,
        popularity=popularity,
        max_id_chars=max_id_chars,
        max_list=max_list,
        threads=threads,
    ).lines()
