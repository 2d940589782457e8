"""String ids to rows and back, many at a time.

A catalogue's id -> row dict outgrows the CPU caches, and each lookup then waits on several cache
misses in turn. :class:`IdIndex` keeps the ids in a compact table in the compiled extension and
looks up a whole list of keys in one call, overlapping those misses: what a job needs for the
up to 500 items of each personalized-ranking record.

The other way, :class:`RowTexts` holds one byte string per row (a job's ids as JSON text) and
writes whole result rows of them, with their scores, in the extension: a job's output without a
Python object per id and per score. :func:`first_invalid_id` checks a parsed list of ids (types
and lengths) in one call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from recbatch import _core

__all__ = ["IdIndex", "RowTexts", "first_invalid_id"]


def first_invalid_id(values: list[object], max_length: int) -> int:
    """The position of the first entry of the list ``values`` that is not a ``str`` (exactly) of 1
    to ``max_length`` characters, or -1 when every entry is one: a list of ids from JSON checked
    in one pass."""
    return _core.first_invalid_id(values, max_length)


class IdIndex:
    """The row of each id: ``ids[row]``.

    Args:
        ids: unique strings (ValueError names the first repeat); their rows are their positions.

    Thread-safe: an IdIndex does not change after it is built.
    """

    def __init__(self, ids: Sequence[str]) -> None:
        self._core = _core.IdIndex(ids)

    def __len__(self) -> int:
        return len(self._core)

    def rows(self, keys: Sequence[str]) -> NDArray[np.int64]:
        """The row of each key, -1 for a key that is not an id (the same as ``dict.get(key, -1)``)."""
        return self._core.rows(keys)


class RowTexts:
    """One byte string per row (each id's JSON text, say), written out by rows of results.

    Args:
        texts: the byte string of each row (copied).
    """

    def __init__(self, texts: Sequence[bytes]) -> None:
        self._core = _core.RowTexts(texts)

    @classmethod
    def json_strings(cls, ids: Sequence[str]) -> RowTexts:
        """Each id as a JSON string, quotes included, byte for byte as ``orjson.dumps(id)`` (ids
        with lone surrogates, which orjson refuses, as ``json.dumps(id)``: escaped)."""
        texts = cls.__new__(cls)
        texts._core = _core.RowTexts.json_strings(ids)
        return texts

    def __len__(self) -> int:
        return len(self._core)

    def format_rows(
        self,
        indices: NDArray[np.int64],
        scores: NDArray[np.float64] | None = None,
        *,
        head: bytes = b"",
        middle: bytes = b"",
        tail: bytes = b"",
    ) -> list[bytes]:
        """One bytes object per row of ``indices`` (n, k).

        Each is ``head`` + ``[`` + the texts of the row's entries, comma-separated, + ``]``; with
        ``scores`` (n, k float64), then ``middle`` + ``[`` + the matching scores + ``]``; then
        ``tail``. Entries below 0 (padding) are left out with their scores. Scores are written as
        ``recbatch.jobs.records.format_scores`` does: fixed point, rounded to 7 decimals, trailing
        zeros dropped; they must be finite, >= 0 and below 10 (ValueError). IndexError for an entry
        >= len(self).
        """
        rows = np.ascontiguousarray(indices, dtype=np.int64)
        values = None if scores is None else np.ascontiguousarray(scores, dtype=np.float64)
        return self._core.format_rows(rows, values, head, middle, tail)
