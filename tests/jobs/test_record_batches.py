"""parse_records: a batch of lines read in the extension where they have the common shape, with
exactly parse_record's results for every line, whatever the line holds."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recbatch.jobs.records import MAX_ITEM_LIST, Record, parse_record, parse_records
from recbatch.model import MAX_ID_LENGTH, Family

# Ids as a job sees them: short ASCII most often, any Unicode (controls and quotes included,
# which JSON escapes), and the lengths around the limit.
_ID = st.one_of(
    st.text(alphabet="ab1_", min_size=1, max_size=6),
    st.text(max_size=12),
    st.sampled_from(["x" * MAX_ID_LENGTH, "x" * (MAX_ID_LENGTH + 1), "\u00e9" * MAX_ID_LENGTH, ""]),
    st.text(alphabet="\u00e9\u20ac\U0001f600", min_size=1, max_size=4),
)
_SPACE = st.sampled_from(["", "", " ", "\t", "\n", "\r", "  "])


@st.composite
def _string(draw: st.DrawFn, text: st.SearchStrategy[str] = _ID) -> str:
    """A JSON string token: as orjson writes it (raw UTF-8), or with every non-ASCII escaped."""
    value = draw(text)
    return json.dumps(value, ensure_ascii=draw(st.booleans()))


def _id_list(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:
        count = draw(st.sampled_from([MAX_ITEM_LIST, MAX_ITEM_LIST + 1]))
        return "[" + ",".join(['"i"'] * count) + "]"
    items = draw(st.lists(_string(), max_size=6))
    return "[" + ",".join(draw(_SPACE) + item + draw(_SPACE) for item in items) + "]"


def _other_value(draw: st.DrawFn) -> str:
    return draw(st.sampled_from(["7", "-1.5e3", "null", "true", '{"k": "v"}', '["a"]', '"v"']))


@st.composite
def _line(draw: st.DrawFn, family: Family) -> bytes:
    """Mostly the family's own shape; then now and then a member added, dropped, repeated or of
    another type, a key escaped, and damage to the bytes."""
    by_item = family in (Family.RELATED_ITEMS, Family.USER_SEGMENTATION)
    members = [("itemId" if by_item else "userId", draw(_string()))]
    if family is Family.PERSONALIZED_RANKING:
        members.append(("itemList", _id_list(draw)))
    for _ in range(draw(st.integers(0, 3)) // 2):  # no change half the time
        change = draw(st.sampled_from(["add", "drop", "repeat", "retype", "escape key"]))
        at = draw(st.integers(0, len(members) - 1)) if members else 0
        if change == "add":
            key = draw(st.sampled_from(["userId", "itemId", "itemList", "filterValues", "context"]))
            value = (
                _id_list(draw)
                if key == "itemList"
                else draw(st.one_of(_string(), st.just(_other_value(draw))))
            )
            members.append((key, value))
        elif members and change == "drop":
            members.pop(at)
        elif members and change == "repeat":
            members.append(members[at])
        elif members and change == "retype":
            members[at] = (members[at][0], _other_value(draw))
        elif members:
            members[at] = (members[at][0].replace("I", "\\u0049"), members[at][1])
    members = draw(st.permutations(members))
    s = _SPACE
    body = ",".join(f'{draw(s)}"{key}"{draw(s)}:{draw(s)}{value}{draw(s)}' for key, value in members)
    line = ("{" + body + "}").encode()
    damage = draw(st.sampled_from(["none"] * 6 + ["cut", "byte", "tail", "not an object"]))
    if damage == "cut":
        line = line[: draw(st.integers(0, len(line)))]
    elif damage == "byte":  # any byte anywhere: invalid UTF-8, a control character, a stray quote
        at = draw(st.integers(0, len(line)))
        byte = draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\x01", b'"', b"\\", b"\xc3"]))
        line = line[:at] + byte + line[at:]
    elif damage == "tail":
        line += draw(st.sampled_from([b" x", b"}", b",", b" {}"]))
    elif damage == "not an object":
        line = b"[" + line + b"]"
    return line.strip()


def _same(fast: Record, slow: Record) -> None:
    assert (fast.input_json, fast.error, fast.user_id, fast.item_id) == (
        slow.input_json,
        slow.error,
        slow.user_id,
        slow.item_id,
    )


def _check(lines: list[bytes], family: Family) -> None:
    records, lists = parse_records(lines, family)
    assert len(records) == len(lines)
    expected = [parse_record(line, family) for line in lines]
    for fast, slow in zip(records, expected, strict=True):
        _same(fast, slow)
    if family is not Family.PERSONALIZED_RANKING:
        assert lists is None
        return
    assert lists is not None
    assert len(lists) == len(lines)
    strings = lists.strings()
    for i, slow in enumerate(expected):
        listed = strings[lists.offsets[i] : lists.offsets[i + 1]]
        assert listed == (slow.item_list if slow.error is None else [])


@settings(max_examples=400, deadline=None)
@given(data=st.data(), family=st.sampled_from(Family))
def test_every_line_reads_as_parse_record_reads_it(data: st.DataObject, family: Family) -> None:
    lines = [line for line in data.draw(st.lists(_line(family), min_size=1, max_size=8)) if line]
    _check(lines, family)


@settings(max_examples=200, deadline=None)
@given(
    users=st.lists(_ID, min_size=1, max_size=6),
    lists=st.lists(st.lists(_ID, min_size=0, max_size=5), min_size=6, max_size=6),
    spaces=st.lists(_SPACE, min_size=6, max_size=6),
)
def test_well_formed_ranking_lines(users: list[str], lists: list[list[str]], spaces: list[str]) -> None:
    # The shape itself, members in both orders: most of these take the extension's path.
    lines = []
    for i, user in enumerate(users):
        members = [
            f'"userId":{spaces[i]}{orjson.dumps(user).decode()}',
            f'"itemList":{orjson.dumps(lists[i]).decode()}',
        ]
        lines.append(("{" + spaces[i] + ",".join(members[:: 1 if i % 2 else -1]) + "}").encode())
    _check(lines, Family.PERSONALIZED_RANKING)


def test_the_shape_is_read_in_the_extension() -> None:
    # The records read there have no item_list of their own (it is in the IdLists); those read by
    # parse_record keep theirs. Both kinds in one batch land in the right lists.
    lines = [
        b'{"userId": "u1", "itemList": ["a", "b\xc3\xa9"]}',
        b'{"itemList":["c"],"userId":"u2","context":{"DEVICE":"phone"}}',  # another member
        b'{"userId":"u\\u0033","itemList":["d","e"]}',  # an escape
        b'{"userId":"u4","itemList":[]}',  # an error
        b'{ "itemList" : [ "f" ] , "userId" : "u5" }',
    ]
    records, lists = parse_records(lines, Family.PERSONALIZED_RANKING)
    assert lists is not None
    assert [record.user_id for record in records] == ["u1", "u2", "u3", "u4", "u5"]
    assert [record.item_list for record in records] == [None, ["c"], ["d", "e"], None, None]
    assert records[3].error == "INVALID_FIELD: itemList must hold 1 to 500 item ids, got 0"
    strings = lists.strings()
    assert [strings[lists.offsets[i] : lists.offsets[i + 1]] for i in range(5)] == [
        ["a", "b\u00e9"],
        ["c"],
        ["d", "e"],
        [],
        ["f"],
    ]


@pytest.mark.parametrize("family", list(Family))
def test_one_batch_of_many_lines(family: Family) -> None:
    seed = np.random.SeedSequence().entropy
    print(f"rng seed: {seed}")  # fresh lines every run, shown on failure
    rng = np.random.default_rng(seed)
    field = "itemId" if family in (Family.RELATED_ITEMS, Family.USER_SEGMENTATION) else "userId"
    lines = []
    for i in range(3000):
        record: dict[str, object] = {field: f"r{rng.integers(10**6)}"}
        if family is Family.PERSONALIZED_RANKING:
            record["itemList"] = [f"i{x}" for x in rng.integers(0, 1000, rng.integers(1, 60))]
        if i % 97 == 0:
            record["context"] = {"k": 1}
        lines.append(orjson.dumps(record))
    _check(lines, family)
