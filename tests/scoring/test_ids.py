"""IdIndex: bulk id -> row lookups, the same answers as a dict on any strings; RowTexts: rows back to text.

RowTexts's output is checked against the job layer's per-record formatters in tests/jobs/test_records.py.
"""

from __future__ import annotations

import threading

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recbatch.ids import IdIndex, IdLists, RowTexts, first_invalid_id, scan_id_lines

# Short ids over a few characters collide often in every prefix and length; any Unicode too.
_IDS = st.one_of(
    st.text(alphabet="ab\u00e9\U0001f600", min_size=1, max_size=6), st.text(min_size=1, max_size=40)
)


def _dict_rows(ids: list[str], keys: list[str]) -> list[int]:
    rows = {id_: row for row, id_ in enumerate(ids)}
    return [rows.get(key, -1) for key in keys]


@settings(max_examples=200, deadline=None)
@given(ids=st.lists(_IDS, unique=True, max_size=300), others=st.lists(_IDS, max_size=100), data=st.data())
def test_rows_match_a_dict(ids: list[str], others: list[str], data: st.DataObject) -> None:
    keys = data.draw(st.permutations(ids + others))
    index = IdIndex(ids)
    assert len(index) == len(ids)
    rows = index.rows(keys)
    assert rows.dtype == np.int64
    assert rows.shape == (len(keys),)
    assert rows.tolist() == _dict_rows(ids, keys)


def test_a_large_catalogue_and_many_keys(rng: np.random.Generator) -> None:
    ids = [f"item-{i}" for i in rng.permutation(200_000)]
    keys = [f"item-{i}" for i in rng.integers(0, 220_000, size=100_000)]  # a tenth unknown
    index = IdIndex(ids)
    assert index.rows(keys).tolist() == _dict_rows(ids, keys)
    assert index.rows(tuple(keys[:5])).tolist() == _dict_rows(ids, keys[:5])
    assert index.rows([]).shape == (0,)


def test_lone_surrogates_match_only_themselves() -> None:
    # UTF-8 cannot encode these: they are compared as written ("surrogatepass"), like a dict does.
    ids = ["\ud800", "a\udfffb", "plain"]
    index = IdIndex(ids)
    keys = ["\ud800", "a\udfffb", "plain", "\udc00", "a\udffeb", "\U00010000"]
    assert index.rows(keys).tolist() == [0, 1, 2, -1, -1, -1]


def test_an_empty_index_finds_nothing() -> None:
    assert IdIndex([]).rows(["a", ""]).tolist() == [-1, -1]


def test_repeated_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="ids must be unique: row 2 repeats row 0"):
        IdIndex(["a", "b", "a"])


@pytest.mark.parametrize("bad", [[1], ["a", None], [b"a"]])
def test_keys_must_be_strings(bad: list[object]) -> None:
    index = IdIndex(["a"])
    with pytest.raises(TypeError, match=r"keys\[\d\] must be a str"):
        index.rows(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"ids\[\d\] must be a str"):
        IdIndex(bad)  # type: ignore[arg-type]


def test_not_a_sequence() -> None:
    with pytest.raises(TypeError, match="keys must be a sequence of str"):
        IdIndex(["a"]).rows(5)  # type: ignore[arg-type]


def test_concurrent_lookups_agree(rng: np.random.Generator) -> None:
    ids = [f"u{i}" for i in range(50_000)]
    index = IdIndex(ids)
    batches = [[f"u{i}" for i in rng.integers(0, 60_000, size=20_000)] for _ in range(4)]
    expected = [_dict_rows(ids, keys) for keys in batches]
    results: list[list[int]] = [[] for _ in batches]

    def look_up(slot: int) -> None:
        for _ in range(5):
            results[slot] = index.rows(batches[slot]).tolist()

    threads = [threading.Thread(target=look_up, args=(slot,)) for slot in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == expected


def test_row_texts_join_rows_and_skip_padding() -> None:
    texts = RowTexts([b"x", b"yy", b""])
    assert len(texts) == 3
    indices = np.array([[1, -1, 0], [-1, -1, -1], [2, 2, 0]], dtype=np.int32)  # converted to int64
    assert texts.format_rows(indices) == [b"[yy,x]", b"[]", b"[,,x]"]
    scored = texts.format_rows(indices, np.full((3, 3), 0.5), head=b"<", middle=b"|", tail=b">")
    assert scored == [b"<[yy,x]|[0.5,0.5]>", b"<[]|[]>", b"<[,,x]|[0.5,0.5,0.5]>"]
    assert texts.format_rows(np.zeros((0, 4), dtype=np.int64)) == []
    assert RowTexts([]).format_rows(np.full((1, 2), -1)) == [b"[]"]


def test_row_texts_past_the_end_come_from_extra() -> None:
    texts, extra = RowTexts([b"a", b"b"]), RowTexts([b"X", b"YY"])
    indices = np.array([[3, 0, -1, 2], [1, 1, 3, -1]])
    assert texts.format_rows(indices, extra=extra) == [b"[YY,a,X]", b"[b,b,YY]"]
    assert texts.format_rows(indices, np.full((2, 4), 0.25), extra=extra, middle=b"|") == [
        b"[YY,a,X]|[0.25,0.25,0.25]",
        b"[b,b,YY]|[0.25,0.25,0.25]",
    ]
    with pytest.raises(IndexError, match="row 4 is past the last of 4 texts"):
        texts.format_rows(np.array([[4]]), extra=extra)
    with pytest.raises(IndexError, match="row 2 is past the last of 2 texts"):
        texts.format_rows(np.array([[2]]))  # no extra: past the end is an error


def test_row_texts_need_bytes_and_rows_in_range() -> None:
    with pytest.raises(TypeError, match=r"texts\[1\] must be bytes, got str"):
        RowTexts([b"a", "b"])  # type: ignore[list-item]
    with pytest.raises(IndexError, match="row 1 is past the last of 1 texts"):
        RowTexts([b"a"]).format_rows(np.array([[0, 1]]))
    with pytest.raises(ValueError, match="indices must be a 2-D array"):
        RowTexts([b"a"]).format_rows(np.array([0]))


def test_json_strings_are_orjsons_for_every_code_point() -> None:
    points = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000]  # surrogates: next test
    ids = [chr(c) for c in points] + ['a"b\\c\x00\x1f\x7f\u2028', "plain", ""]
    texts = RowTexts.json_strings(ids)
    written = texts.format_rows(np.arange(len(ids)).reshape(-1, 1))
    assert written == [b"[" + orjson.dumps(id_) + b"]" for id_ in ids]


def test_json_strings_escape_lone_surrogates() -> None:
    written = RowTexts.json_strings(["\ud800", "a\udfffb"]).format_rows(np.array([[0, 1]]))
    assert written == [b'["\\ud800","a\\udfffb"]']
    with pytest.raises(TypeError, match=r"ids\[0\] must be a str, got bytes"):
        RowTexts.json_strings([b"a"])  # type: ignore[list-item]


class _Text(str):
    """A str subclass: not what JSON gives, so not an id."""


_ENTRIES = st.one_of(
    st.text(max_size=6),
    st.text(min_size=250, max_size=260),  # around the limit
    st.text(alphabet="\U0001f600", min_size=255, max_size=257),  # characters, not bytes, count
    st.integers(),
    st.none(),
    st.lists(st.text(max_size=2), max_size=2),
    st.builds(_Text, st.text(min_size=1, max_size=3)),
)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(_ENTRIES, max_size=40))
def test_first_invalid_id_matches_a_loop(values: list[object]) -> None:
    expected = next(
        (i for i, v in enumerate(values) if type(v) is not str or not 0 < len(v) <= 256),
        -1,
    )
    assert first_invalid_id(values, 256) == expected


def test_first_invalid_id_needs_a_list() -> None:
    assert first_invalid_id([], 1) == -1
    with pytest.raises(TypeError):
        first_invalid_id(("a",), 1)  # type: ignore[arg-type]


# IdLists: lists of ids as spans of one buffer.

_LISTS = st.lists(st.one_of(st.none(), st.lists(_IDS, max_size=5)), max_size=8)


def _as_lists(lists: IdLists) -> list[list[str]]:
    strings = lists.strings()
    return [strings[lists.offsets[i] : lists.offsets[i + 1]] for i in range(len(lists))]


@settings(max_examples=200, deadline=None)
@given(lists=_LISTS, data=st.data())
def test_id_lists_take_and_replace_as_python_lists(
    lists: list[list[str] | None], data: st.DataObject
) -> None:
    plain = [items or [] for items in lists]
    id_lists = IdLists.from_lists(lists)
    assert len(id_lists) == len(lists)
    assert _as_lists(id_lists) == plain
    picks = data.draw(st.lists(st.integers(0, max(0, len(lists) - 1)), max_size=10)) if lists else []
    assert _as_lists(id_lists.take(np.asarray(picks, dtype=np.int64))) == [plain[i] for i in picks]
    replacements: dict[int, list[str]] = {}
    if lists:
        positions = st.integers(0, len(lists) - 1)
        replacements = data.draw(st.dictionaries(positions, st.lists(_IDS, max_size=4), max_size=4))
    replaced = id_lists.replace(replacements)
    assert _as_lists(replaced) == [replacements.get(i, items) for i, items in enumerate(plain)]
    flat = [item for items in plain for item in items]
    assert id_lists.entry_bytes(np.arange(len(flat))) == [
        item.encode("utf-8", "surrogatepass") for item in flat
    ]


@settings(max_examples=100, deadline=None)
@given(ids=st.lists(_IDS, unique=True, max_size=200), lists=_LISTS)
def test_rows_in_matches_rows(ids: list[str], lists: list[list[str] | None]) -> None:
    index = IdIndex(ids)
    some_known = [items if i % 2 else [*(items or []), *ids[:3]] for i, items in enumerate(lists)]
    id_lists = IdLists.from_lists(some_known)
    flat = [item for items in some_known for item in items or []]
    assert index.rows_in(id_lists).tolist() == index.rows(flat).tolist() == _dict_rows(ids, flat)


def test_rows_in_checks_its_spans() -> None:
    index = IdIndex(["a"])
    for starts, lengths in (([0], [2]), ([-1], [1]), ([0], [-1]), ([0, 1], [1])):
        bad = IdLists(
            b"a",
            np.asarray(starts, dtype=np.int64),
            np.asarray(lengths, dtype=np.int64),
            np.zeros(2, dtype=np.int64),
        )
        with pytest.raises(ValueError, match=r"span|same length"):
            index.rows_in(bad)


def test_scan_id_lines_reads_the_shape() -> None:
    lines = [
        b'{"userId":"u1","itemList":["a","b"]}',
        b'{"userId":"u\\u0032","itemList":["c"]}',
        b'{"userId":"u3"}',
    ]
    scan = scan_id_lines(lines, "userId", "itemList", max_id_chars=256, max_list=500)
    assert scan.ids == ["u1", None, None]  # the escape and the missing list: for a JSON parser
    assert _as_lists(scan.lists) == [["a", "b"], [], []]
    users = scan_id_lines(lines, "userId", max_id_chars=256, max_list=500)
    assert users.ids == [None, None, "u3"]
    assert _as_lists(users.lists) == [[], [], []]
    assert scan_id_lines([], "userId", max_id_chars=1, max_list=1).ids == []
