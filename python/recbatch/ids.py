"""String ids to rows, many at a time.

A catalogue's id -> row dict outgrows the CPU caches, and each lookup then waits on several cache
misses in turn. :class:`IdIndex` keeps the ids in a compact table in the compiled extension and
looks up a whole list of keys in one call, overlapping those misses: what a job needs for the
up to 500 items of each personalized-ranking record.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from recbatch import _core

__all__ = ["IdIndex"]


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
