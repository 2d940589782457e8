"""Batch job records: input lines parsed, output lines formatted (SPEC sections 3 and 4).

Input: one JSON object per line. The fields a recipe reads are checked here; everything else on
the line is left alone and echoed. Output: ``{"input":...,"output":...,"error":null}`` per record,
or ``"output":null`` and an ``"error"`` string that starts with one of the stable codes below.

The ``input`` member echoes the input line's JSON text exactly as it was read (surrounding
whitespace removed), so numbers and key order survive untouched; a line that is not JSON is echoed
as a JSON string.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from numpy.typing import ArrayLike, NDArray

from recbatch.ids import IdLists, RowTexts, first_invalid_id, scan_id_lines
from recbatch.model import MAX_ID_LENGTH, Family

__all__ = [
    "ERROR_CODES",
    "INVALID_FIELD",
    "INVALID_JSON",
    "INVALID_RECORD",
    "MAX_ITEM_LIST",
    "MISSING_FIELD",
    "UNKNOWN_ITEM",
    "UNKNOWN_USER",
    "Record",
    "error_line",
    "format_score_rows",
    "format_scores",
    "id_texts",
    "items_lines",
    "items_output",
    "items_scores_output",
    "ok_line",
    "parse_record",
    "parse_records",
    "users_lines",
    "users_output",
]

# Stable error codes: an error string is "<CODE>: <explanation>". Consumers may match the code.
INVALID_JSON = "INVALID_JSON"  # the line is not JSON (or not UTF-8)
INVALID_RECORD = "INVALID_RECORD"  # the line is JSON but not an object
MISSING_FIELD = "MISSING_FIELD"  # a field the recipe needs is absent (or null)
INVALID_FIELD = "INVALID_FIELD"  # a field has the wrong type, length or size
UNKNOWN_USER = "UNKNOWN_USER"  # userId not in the model and no popularity fallback
UNKNOWN_ITEM = "UNKNOWN_ITEM"  # itemId not in the model and no fallback applies
ERROR_CODES = (INVALID_JSON, INVALID_RECORD, MISSING_FIELD, INVALID_FIELD, UNKNOWN_USER, UNKNOWN_ITEM)

#: The most entries an itemList may hold (Personalize's limit for personalized ranking).
MAX_ITEM_LIST = 500

# The fields each family reads; the first is the record's id field.
_FIELDS: dict[Family, tuple[str, ...]] = {
    Family.USER_PERSONALIZATION: ("userId",),
    Family.POPULAR_ITEMS: ("userId",),
    Family.RELATED_ITEMS: ("itemId",),
    Family.PERSONALIZED_RANKING: ("userId", "itemList"),
    Family.USER_SEGMENTATION: ("itemId",),
}

_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


@dataclass(slots=True)
class Record:
    """One parsed input record.

    Attributes:
        input_json: the JSON text echoed as ``"input"`` in the output line.
        error: ``"<CODE>: <explanation>"`` when the record cannot be scored, else None.
        user_id / item_id / item_list: the fields the recipe reads (None when not read).
    """

    input_json: bytes
    error: str | None = None
    user_id: str | None = None
    item_id: str | None = None
    item_list: list[str] | None = None


class _BadRecord(Exception):
    """Internal: the first problem found in a record (becomes Record.error)."""


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _id(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    if value is None:
        raise _BadRecord(f"{MISSING_FIELD}: {name} is required")
    if type(value) is not str:
        raise _BadRecord(f"{INVALID_FIELD}: {name} must be a string, got {_json_type(value)}")
    if not 0 < len(value) <= MAX_ID_LENGTH:
        raise _BadRecord(
            f"{INVALID_FIELD}: {name} must be 1 to {MAX_ID_LENGTH} characters long, got {len(value)}"
        )
    return value


def _item_list(record: dict[str, Any]) -> list[str]:
    value = record.get("itemList")
    if value is None:
        raise _BadRecord(f"{MISSING_FIELD}: itemList is required")
    if type(value) is not list:
        raise _BadRecord(f"{INVALID_FIELD}: itemList must be an array of item ids, got {_json_type(value)}")
    if not 0 < len(value) <= MAX_ITEM_LIST:
        raise _BadRecord(
            f"{INVALID_FIELD}: itemList must hold 1 to {MAX_ITEM_LIST} item ids, got {len(value)}"
        )
    position = first_invalid_id(value, MAX_ID_LENGTH)
    if position < 0:
        return value
    item = value[position]
    what = f"{len(item)} characters" if type(item) is str else _json_type(item)
    raise _BadRecord(
        f"{INVALID_FIELD}: itemList[{position}] must be a string of 1 to {MAX_ID_LENGTH} characters, got {what}"
    )


def _filter_values(record: dict[str, Any]) -> None:
    value = record.get("filterValues")
    if value is None:
        return
    if type(value) is not dict or any(type(v) is not str for v in value.values()):
        raise _BadRecord(
            f"{INVALID_FIELD}: filterValues must be an object mapping placeholder names to strings"
        )


def parse_record(line: bytes, family: Family) -> Record:
    """Parse one input line (non-blank, stripped of surrounding whitespace) for ``family``.

    Never raises for bad input: a bad line gives a Record whose ``error`` is set.
    """
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        echoed = orjson.dumps(line.decode("utf-8", "replace"))
        return Record(echoed, f"{INVALID_JSON}: the line is not valid JSON ({exc.msg} at position {exc.pos})")
    if type(obj) is not dict:
        return Record(line, f"{INVALID_RECORD}: a record must be a JSON object, got {_json_type(obj)}")
    record = Record(line)
    try:
        fields = _FIELDS[family]
        if fields[0] == "userId":
            record.user_id = _id(obj, "userId")
        else:
            record.item_id = _id(obj, "itemId")
        if len(fields) > 1:
            record.item_list = _item_list(obj)
        _filter_values(obj)
    except _BadRecord as bad:
        record.error = str(bad)
    return record


def parse_records(lines: Sequence[bytes], family: Family) -> tuple[list[Record], IdLists | None]:
    """:func:`parse_record` for a batch of lines, and for personalized ranking the records'
    itemLists as :class:`~recbatch.ids.IdLists` (else None).

    The lines of the common shape (the record's id, and its itemList where the recipe reads one,
    and no other member) are read in one pass in the extension; every other line by
    parse_record, with the same result. The records of the lines read there have no
    ``item_list``: their itemLists are only in the IdLists, list i for record i (an empty list
    for a record with an error).
    """
    fields = _FIELDS[family]
    list_field = fields[1] if len(fields) > 1 else ""
    scan = scan_id_lines(lines, fields[0], list_field, max_id_chars=MAX_ID_LENGTH, max_list=MAX_ITEM_LIST)
    # Positional arguments: Record(input_json, error, user_id, item_id).
    if fields[0] == "userId":
        records = [Record(line, None, record_id) for line, record_id in zip(lines, scan.ids, strict=True)]
    else:
        records = [
            Record(line, None, None, record_id) for line, record_id in zip(lines, scan.ids, strict=True)
        ]
    parsed_lists: dict[int, list[str]] = {}  # the itemLists of records read by parse_record
    if None in scan.ids:  # lines of another shape: a JSON parser reads them
        for position, record_id in enumerate(scan.ids):
            if record_id is None:
                record = records[position] = parse_record(lines[position], family)
                if record.item_list is not None and record.error is None:
                    parsed_lists[position] = record.item_list
    if not list_field:
        return records, None
    return records, scan.lists.replace(parsed_lists)


# --------------------------------------------------------------------------------------------
# Output


# A successful line's parts (items_lines and users_lines write them in the extension).
_OK_LEAD = b'{"input":'
_OK_OUTPUT = b',"output":'
_OK_TAIL = b',"error":null}\n'


def ok_line(input_json: bytes, output: bytes) -> bytes:
    """A successful output line (newline included); ``output`` is the output object's JSON."""
    return _OK_LEAD + input_json + _OK_OUTPUT + output + _OK_TAIL


def error_line(input_json: bytes, error: str) -> bytes:
    """A failed record's output line (newline included)."""
    return b'{"input":' + input_json + b',"output":null,"error":' + orjson.dumps(error) + b"}\n"


def items_output(item_ids: list[str]) -> bytes:
    """``{"recommendedItems": [...]}``: related items, popular items."""
    return b'{"recommendedItems":' + orjson.dumps(item_ids) + b"}"


def items_scores_output(item_ids: list[str], scores_json: bytes) -> bytes:
    """``{"recommendedItems": [...], "scores": [...]}`` with scores from :func:`format_score_rows`."""
    return b'{"recommendedItems":' + orjson.dumps(item_ids) + b',"scores":' + scores_json + b"}"


def users_output(user_ids: list[str]) -> bytes:
    """``{"usersList": [...]}``: segment jobs."""
    return b'{"usersList":' + orjson.dumps(user_ids) + b"}"


def id_texts(ids: Sequence[str]) -> RowTexts:
    """Each id's JSON text, as the outputs write it, by row: for :func:`items_lines` and :func:`users_lines`."""
    return RowTexts.json_strings(ids)


def items_lines(
    inputs: Sequence[bytes],
    texts: RowTexts,
    indices: NDArray[np.int64],
    scores: NDArray[np.float64] | None = None,
    *,
    extra: RowTexts | None = None,
) -> list[bytes]:
    """``ok_line(inputs[i], output)`` for each row i of result ``indices``, the output
    :func:`items_output` (or with ``scores``, :func:`items_scores_output`) of the row's ids (from
    ``texts``, then ``extra``: see :meth:`RowTexts.format_rows`); padding (-1) is left out, with
    its score. The lines are written whole in the extension: no output object per record."""
    head = _OK_OUTPUT + b'{"recommendedItems":'
    tail = b"}" + _OK_TAIL
    if scores is None:
        return texts.format_rows(indices, lead=_OK_LEAD, prefixes=inputs, head=head, tail=tail, extra=extra)
    return texts.format_rows(
        indices,
        scores,
        lead=_OK_LEAD,
        prefixes=inputs,
        head=head,
        middle=b',"scores":',
        tail=tail,
        extra=extra,
    )


def users_lines(inputs: Sequence[bytes], texts: RowTexts, indices: NDArray[np.int64]) -> list[bytes]:
    """``ok_line(inputs[i], users_output(...))`` for each row i of result ``indices`` (ids from
    ``texts``); padding left out."""
    return texts.format_rows(
        indices, lead=_OK_LEAD, prefixes=inputs, head=_OK_OUTPUT + b'{"usersList":', tail=b"}" + _OK_TAIL
    )


_DECIMALS = 7
_ONE = 10**_DECIMALS
_LOW = 10_000  # the last 4 decimals


def _table(texts: Sequence[str], width: int) -> NDArray[np.void]:
    """Fixed-width byte strings (NUL-padded) as a 1-D array of ``width``-byte items, for fast gathers."""
    table = np.zeros((len(texts), width), dtype=np.uint8)
    for row, text in enumerate(texts):
        table[row, : len(text)] = np.frombuffer(text.encode(), dtype=np.uint8)
    return table.view(f"V{width}").ravel()


def _high_texts(strip: bool) -> list[str]:
    # Index whole * 1000 + first three decimals -> "d.ddd" (trailing zeros dropped with ``strip``,
    # at least one decimal kept).
    texts = []
    for index in range(10 * 1000):
        whole, high = divmod(index, 1000)
        decimals = f"{high:03d}"
        texts.append(f"{whole}.{(decimals.rstrip('0') or '0') if strip else decimals}")
    return texts


# A score is two table lookups: "d.ddd" (5 bytes) and the last four decimals (4 bytes). The first
# table holds each "d.ddd" twice: as is, then (from _STRIPPED on) without trailing zeros.
_STRIPPED = 10 * 1000
_HIGH = _table(_high_texts(strip=False) + _high_texts(strip=True), 5)
_LOW_STRIPPED = _table([f"{low:04d}".rstrip("0") for low in range(_LOW)], 4)
# One score as laid out in output: 9 characters (NUL where a trailing zero was dropped) + separator.
_SCORE = np.dtype([("high", "V5"), ("low", "V4"), ("separator", "u1")])


def _score_items(values: ArrayLike, separator: int) -> NDArray[np.void]:
    scores = np.asarray(values, dtype=np.float64).ravel()
    if scores.size and (not np.isfinite(scores).all() or scores.min() < 0 or scores.max() >= 9.99999995):
        msg = "scores must be finite, >= 0 and below 10 (they are probabilities)"
        raise ValueError(msg)
    units = np.rint(scores * _ONE).astype(np.int32)  # the score in units of 1e-7 (< 1e8)
    high = units // _LOW
    low = units - high * _LOW
    items = np.empty(scores.size, dtype=_SCORE)
    # The first three decimals lose their trailing zeros only when the last four are all zero.
    items["high"] = _HIGH[high + (low == 0) * _STRIPPED]
    items["low"] = _LOW_STRIPPED[low]
    items["separator"] = separator
    return items


def format_scores(values: ArrayLike) -> list[bytes]:
    """Each score as JSON text: fixed point, rounded to 7 decimals, trailing zeros dropped.

    At least one decimal is kept so every score reads back as a float: 0.1 -> ``0.1``,
    1e-08 -> ``0.0``, 3.4e-06 -> ``0.0000034``, 1 -> ``1.0``. Never exponent notation.
    Scores must be finite, >= 0 and below 10 (they are probabilities).
    """
    # NumPy's bytes dtype drops trailing NULs: exactly the dropped zeros (and the separator 0).
    result: list[bytes] = _score_items(values, 0).view("S10").tolist()
    return result


def format_score_rows(values: ArrayLike, counts: Sequence[int]) -> list[bytes]:
    """JSON arrays of scores, one per row: ``values`` holds the rows back to back, row i has counts[i].

    The whole batch is laid out in one byte matrix (NUL where nothing goes) and split once, so the
    cost per score is a few array operations rather than Python calls.
    """
    items = _score_items(values, ord(","))
    n_rows = len(counts)
    if n_rows == 0:
        return []
    lengths = np.asarray(counts, dtype=np.int64)
    if int(lengths.sum()) != items.size:
        msg = f"counts add up to {int(lengths.sum())} but there are {items.size} scores"
        raise ValueError(msg)
    width = max(1, int(lengths.max()))
    # Per row: "[" + width slots of (9 characters + ",") + "]\n"; unused slots stay NUL.
    layout = np.zeros((n_rows, 1 + width * _SCORE.itemsize + 2), dtype=np.uint8)
    layout[:, 0] = ord("[")
    layout[:, -2] = ord("]")
    layout[:, -1] = ord("\n")
    slots = layout[:, 1:-2].view(_SCORE)  # (n_rows, width)
    if (lengths == width).all():
        slots[:] = items.reshape(n_rows, width)
    else:
        row = np.repeat(np.arange(n_rows), lengths)
        slots[row, np.arange(items.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)] = items
    filled = np.flatnonzero(lengths > 0)
    slots["separator"][filled, lengths[filled] - 1] = 0  # no comma after a row's last score
    return layout.tobytes().translate(None, b"\0").split(b"\n")[:-1]
