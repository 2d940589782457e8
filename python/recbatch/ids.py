"""String ids to rows and back, many at a time.

A catalogue's id -> row dict outgrows the CPU caches, and each lookup then waits on several cache
misses in turn. :class:`IdIndex` keeps the ids in a compact table in the compiled extension and
looks up a whole list of keys in one call, overlapping those misses: what a job needs for the
up to 500 items of each personalized-ranking record.

The other way, :class:`RowTexts` holds one byte string per row (a job's ids as JSON text) and
writes whole result rows of them, with their scores, in the extension: a job's output without a
Python object per id and per score. :func:`first_invalid_id` checks a parsed list of ids (types
and lengths) in one call.

Before any of that, :func:`scan_id_lines` reads a batch of input lines of the shape nearly every
line has (``{"userId": "u1", "itemList": ["i1", "i2"]}``) in one pass in the extension: each
line's own id as a str, and its list as :class:`IdLists`, spans of the lines' bytes that
:meth:`IdIndex.rows_in` looks up where they lie, with no Python object per listed id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from recbatch import _core

__all__ = ["IdIndex", "IdLineScan", "IdLists", "RowTexts", "first_invalid_id", "scan_id_lines"]


def first_invalid_id(values: list[object], max_length: int) -> int:
    """The position of the first entry of the list ``values`` that is not a ``str`` (exactly) of 1
    to ``max_length`` characters, or -1 when every entry is one: a list of ids from JSON checked
    in one pass."""
    return _core.first_invalid_id(values, max_length)


@dataclass(frozen=True, slots=True, eq=False)  # no ==: the fields are arrays
class IdLists:
    """Lists of ids as UTF-8 byte spans of one buffer, in CSR layout: list ``i`` is the spans
    ``offsets[i]`` to ``offsets[i + 1]`` of ``starts`` / ``lengths`` (an empty list has none).
    """

    buffer: bytes
    starts: NDArray[np.int64]
    lengths: NDArray[np.int64]
    offsets: NDArray[np.int64]

    @classmethod
    def from_lists(cls, lists: Sequence[Sequence[str] | None]) -> IdLists:
        """Lists of str (None: an empty list), each id encoded as UTF-8 (lone surrogates as by
        ``surrogatepass``, as :class:`IdIndex` encodes its ids)."""
        encoded = [item.encode("utf-8", "surrogatepass") for items in lists for item in items or ()]
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        starts = np.zeros(len(encoded), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        counts = np.fromiter((len(items or ()) for items in lists), dtype=np.int64, count=len(lists))
        return cls(b"".join(encoded), starts, lengths, _offsets(counts))

    def __len__(self) -> int:
        return self.offsets.size - 1

    def take(self, lists: NDArray[np.int64]) -> IdLists:
        """The lists at positions ``lists``, in that order (the same buffer)."""
        counts = self.offsets[lists + 1] - self.offsets[lists]
        offsets = _offsets(counts)
        entries = np.repeat(self.offsets[lists] - offsets[:-1], counts) + np.arange(offsets[-1])
        return IdLists(self.buffer, self.starts[entries], self.lengths[entries], offsets)

    def replace(self, lists: Mapping[int, Sequence[str]]) -> IdLists:
        """These lists with list ``i`` replaced by ``lists[i]`` (positions below len(self))."""
        if not lists:
            return self
        positions = np.fromiter(sorted(lists), dtype=np.int64, count=len(lists))
        extra = IdLists.from_lists([lists[p] for p in positions.tolist()])
        owner = np.repeat(np.arange(len(self)), np.diff(self.offsets))
        kept = ~np.isin(owner, positions)
        owners = np.concatenate([owner[kept], np.repeat(positions, np.diff(extra.offsets))])
        order = np.argsort(owners, kind="stable")  # entries by list, each list's own order kept
        starts = np.concatenate([self.starts[kept], extra.starts + len(self.buffer)])[order]
        lengths = np.concatenate([self.lengths[kept], extra.lengths])[order]
        counts = np.bincount(owners, minlength=len(self)).astype(np.int64)
        return IdLists(self.buffer + extra.buffer, starts, lengths, _offsets(counts))

    def entry_bytes(self, entries: NDArray[np.int64]) -> list[bytes]:
        """The bytes of the spans at positions ``entries`` (of all lists' entries)."""
        view = memoryview(self.buffer)
        return [
            view[start : start + length].tobytes()
            for start, length in zip(
                self.starts[entries].tolist(), self.lengths[entries].tolist(), strict=True
            )
        ]

    def strings(self) -> list[str]:
        """Every entry, decoded (the ids as str)."""
        return [
            item.decode("utf-8", "surrogatepass") for item in self.entry_bytes(np.arange(self.starts.size))
        ]


def _offsets(counts: NDArray[np.int64]) -> NDArray[np.int64]:
    offsets = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


class IdLineScan(NamedTuple):
    """What :func:`scan_id_lines` read: ``ids[i]`` is line i's id, or None where the line does
    not have the shape (read it with a JSON parser); ``lists`` holds each such line's list (an
    empty one for the others, and for every line when the shape has no list)."""

    ids: list[str | None]
    lists: IdLists


def scan_id_lines(
    lines: Sequence[bytes], id_field: str, list_field: str = "", *, max_id_chars: int, max_list: int
) -> IdLineScan:
    """Read lines of the shape ``{"<id_field>": "<id>"}``, or with ``list_field``,
    ``{"<id_field>": "<id>", "<list_field>": ["<id>", ...]}`` (members in either order, JSON
    whitespace between tokens), in one pass in the extension.

    A line counts only when it is exactly that: no other member, no member twice, every id a
    string with no escape and no control character, valid UTF-8 of 1 to ``max_id_chars``
    characters, a list of 1 to ``max_list`` ids. For such a line a JSON parser would read the
    same ids; every other line (valid or not) is left to one, so nothing is guessed.
    """
    buffer = b"".join(lines)
    ends = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
    np.cumsum(ends, out=ends)
    ids, offsets, starts, lengths = _core.scan_id_lines(
        buffer, ends, id_field, list_field, max_id_chars, max_list
    )
    return IdLineScan(ids, IdLists(buffer, starts, lengths, offsets))


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

    def rows_in(self, lists: IdLists) -> NDArray[np.int64]:
        """The row of every entry of ``lists``, in order, -1 for one that is not an id: the ids
        looked up in their buffer, with no str made for them."""
        return self._core.rows_in(lists.buffer, lists.starts, lists.lengths)


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
        extra: RowTexts | None = None,
        lead: bytes = b"",
        prefixes: Sequence[bytes] | None = None,
    ) -> list[bytes]:
        """One bytes object per row of ``indices`` (n, k).

        Each is ``lead``, then with ``prefixes`` (one bytes object per row) the row's prefix, then
        ``head`` + ``[`` + the texts of the row's entries, comma-separated, + ``]``; with
        ``scores`` (n, k float64), then ``middle`` + ``[`` + the matching scores + ``]``; then
        ``tail``. So a job writes whole output lines, its input lines as the prefixes. Entries below 0 (padding) are left out with their scores. An entry ``e >=
        len(self)`` is ``extra``'s text ``e - len(self)`` (texts a few rows add, without copying
        these). Scores are written as ``recbatch.jobs.records.format_scores`` does: fixed point,
        rounded to 7 decimals, trailing zeros dropped; they must be finite, >= 0 and below 10
        (ValueError). IndexError for an entry past both.
        """
        rows = np.ascontiguousarray(indices, dtype=np.int64)
        values = None if scores is None else np.ascontiguousarray(scores, dtype=np.float64)
        return self._core.format_rows(
            rows, values, lead, prefixes, head, middle, tail, None if extra is None else extra._core
        )
