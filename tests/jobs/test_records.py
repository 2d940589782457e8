"""Input line parsing and output line formatting."""

from __future__ import annotations

import json
import re
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recbatch.jobs.records import (
    ERROR_CODES,
    MAX_ITEM_LIST,
    error_line,
    format_score_rows,
    format_scores,
    id_texts,
    items_lines,
    items_output,
    items_scores_output,
    ok_line,
    parse_record,
    users_lines,
    users_output,
)
from recbatch.model import Family

U, I, R = Family.USER_PERSONALIZATION, Family.RELATED_ITEMS, Family.PERSONALIZED_RANKING


def test_error_codes_are_stable() -> None:
    assert ERROR_CODES == (
        "INVALID_JSON",
        "INVALID_RECORD",
        "MISSING_FIELD",
        "INVALID_FIELD",
        "UNKNOWN_USER",
        "UNKNOWN_ITEM",
    )


def test_good_records() -> None:
    record = parse_record(b'{"userId": "4638", "context": {"DEVICE": "phone"}}', U)
    assert (record.error, record.user_id, record.item_id) == (None, "4638", None)
    assert record.input_json == b'{"userId": "4638", "context": {"DEVICE": "phone"}}'
    assert parse_record(b'{"itemId":"105"}', I).item_id == "105"
    assert parse_record(b'{"userId":"12"}', Family.POPULAR_ITEMS).user_id == "12"
    assert parse_record(b'{"itemId":"105"}', Family.USER_SEGMENTATION).item_id == "105"
    ranking = parse_record(b'{"userId":"891","itemList":["27","886","101"]}', R)
    assert (ranking.user_id, ranking.item_list) == ("891", ["27", "886", "101"])
    assert (
        parse_record(b'{"userId":"u","filterValues":{"GENRES":"\\"horror\\",\\"comedy\\""}}', U).error is None
    )
    assert parse_record(b'{"userId":"' + b"x" * 256 + b'"}', U).error is None
    ok = parse_record(b'{"userId":"a","itemList":[' + b",".join([b'"i"'] * MAX_ITEM_LIST) + b"]}", R)
    assert ok.error is None


BAD = [
    (U, b"not json", "INVALID_JSON: the line is not valid JSON"),
    (U, b'{"userId": "4638"', "INVALID_JSON:"),
    (U, b'{"userId": NaN}', "INVALID_JSON:"),
    (U, b"\xff\xfe", "INVALID_JSON:"),
    (U, b"[1, 2]", "INVALID_RECORD: a record must be a JSON object, got an array"),
    (U, b'"4638"', "INVALID_RECORD: a record must be a JSON object, got a string"),
    (U, b"{}", "MISSING_FIELD: userId is required"),
    (U, b'{"userId": null}', "MISSING_FIELD: userId is required"),
    (U, b'{"itemId": "1"}', "MISSING_FIELD: userId is required"),
    (I, b'{"userId": "1"}', "MISSING_FIELD: itemId is required"),
    (U, b'{"userId": 4638}', "INVALID_FIELD: userId must be a string, got a number"),
    (U, b'{"userId": ["a"]}', "INVALID_FIELD: userId must be a string, got an array"),
    (U, b'{"userId": true}', "INVALID_FIELD: userId must be a string, got a boolean"),
    (U, b'{"userId": ""}', "INVALID_FIELD: userId must be 1 to 256 characters long, got 0"),
    (
        U,
        b'{"userId": "' + b"x" * 257 + b'"}',
        "INVALID_FIELD: userId must be 1 to 256 characters long, got 257",
    ),
    (R, b'{"userId": "a"}', "MISSING_FIELD: itemList is required"),
    (
        R,
        b'{"userId": "a", "itemList": "x"}',
        "INVALID_FIELD: itemList must be an array of item ids, got a string",
    ),
    (R, b'{"userId": "a", "itemList": []}', "INVALID_FIELD: itemList must hold 1 to 500 item ids, got 0"),
    (R, b'{"userId": "a", "itemList": ["x", 2]}', "INVALID_FIELD: itemList[1] must be a string of 1 to 256"),
    (R, b'{"userId": "a", "itemList": ["x", ""]}', "INVALID_FIELD: itemList[1] must be a string"),
    (R, b'{"itemList": ["x"]}', "MISSING_FIELD: userId is required"),
    (U, b'{"userId": "a", "filterValues": "GENRES"}', "INVALID_FIELD: filterValues must be an object"),
    (
        U,
        b'{"userId": "a", "filterValues": {"GENRES": ["x"]}}',
        "INVALID_FIELD: filterValues must be an object",
    ),
]


@pytest.mark.parametrize(("family", "line", "error"), BAD)
def test_bad_records(family: Family, line: bytes, error: str) -> None:
    record = parse_record(line, family)
    assert record.error is not None and record.error.startswith(error), record.error
    assert record.error.split(":")[0] in ERROR_CODES


def test_item_list_longer_than_limit() -> None:
    line = b'{"userId":"a","itemList":[' + b",".join([b'"i"'] * (MAX_ITEM_LIST + 1)) + b"]}"
    assert parse_record(line, R).error == "INVALID_FIELD: itemList must hold 1 to 500 item ids, got 501"


@pytest.mark.parametrize(
    ("items", "error"),
    [
        (["x" * 256] * 3, None),  # each id at the limit, together past it
        (
            ["x", "y" * 257],
            "INVALID_FIELD: itemList[1] must be a string of 1 to 256 characters, got 257 characters",
        ),
        (
            ["x" * 257],
            "INVALID_FIELD: itemList[0] must be a string of 1 to 256 characters, got 257 characters",
        ),
        (["x", None], "INVALID_FIELD: itemList[1] must be a string of 1 to 256 characters, got null"),
        (["x", ["y"]], "INVALID_FIELD: itemList[1] must be a string of 1 to 256 characters, got an array"),
        (["", "x"], "INVALID_FIELD: itemList[0] must be a string of 1 to 256 characters, got 0 characters"),
    ],
)
def test_item_list_entries(items: list[object], error: str | None) -> None:
    line = b'{"userId":"a","itemList":' + json.dumps(items).encode() + b"}"
    record = parse_record(line, R)
    assert record.error == error
    if error is None:
        assert record.item_list == items


def test_output_lines_echo_the_input_exactly() -> None:
    # Big integers, key order and nested objects survive: the input text is echoed, not re-encoded.
    line = b'{"z": 123456789012345678901234567890, "userId": "u", "a": {"b": [1.50, 2e3]}}'
    record = parse_record(line, U)
    out = ok_line(record.input_json, items_scores_output(["i1", "i2"], b"[0.5,0.25]"))
    assert out.endswith(b"\n") and out.count(b"\n") == 1
    decoded = json.loads(out)  # the standard library keeps big ints exact
    assert decoded == {
        "input": {"z": 123456789012345678901234567890, "userId": "u", "a": {"b": [1.5, 2000.0]}},
        "output": {"recommendedItems": ["i1", "i2"], "scores": [0.5, 0.25]},
        "error": None,
    }
    assert list(decoded) == ["input", "output", "error"]


def test_error_lines() -> None:
    bad_json = parse_record(b'{"userId": "a\\u00e9"', U)
    line = error_line(bad_json.input_json, bad_json.error or "")
    decoded = orjson.loads(line)
    assert decoded["input"] == '{"userId": "a\\u00e9"'  # the raw line, as a string
    assert decoded["output"] is None and decoded["error"].startswith("INVALID_JSON: ")
    # Bytes that are not UTF-8 are replaced, so the line is still valid JSON.
    not_utf8 = parse_record(b'{"userId": "\xff"}', U)
    assert orjson.loads(error_line(not_utf8.input_json, "INVALID_JSON: x"))["input"] == '{"userId": "\ufffd"}'
    # An error message with quotes and non-ASCII text is escaped properly.
    decoded = orjson.loads(error_line(b'{"userId":"\\"q\\""}', "UNKNOWN_USER: userId '\"q\"' é"))
    assert decoded == {"input": {"userId": '"q"'}, "output": None, "error": "UNKNOWN_USER: userId '\"q\"' é"}


def test_output_objects() -> None:
    assert orjson.loads(items_output(["a", 'b"c'])) == {"recommendedItems": ["a", 'b"c']}
    assert orjson.loads(users_output([])) == {"usersList": []}
    assert orjson.loads(items_scores_output(["x"], b"[1.0]")) == {"recommendedItems": ["x"], "scores": [1.0]}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1, b"0.1"),
        (1e-08, b"0.0"),
        (4.9e-08, b"0.0"),
        (5.1e-08, b"0.0000001"),
        (0.0, b"0.0"),
        (1.0, b"1.0"),
        (0.99999999, b"1.0"),
        (3.4e-06, b"0.0000034"),
        (0.0009785, b"0.0009785"),
        (0.123456789, b"0.1234568"),
        (0.5, b"0.5"),
        (0.25000004, b"0.25"),
        (9.25, b"9.25"),
    ],
)
def test_score_format(value: float, text: bytes) -> None:
    assert format_scores([value]) == [text]


def _decimal_reference(value: float) -> str:
    rounded = Decimal(repr(value)).quantize(Decimal("0.0000001"), rounding=ROUND_HALF_EVEN)
    text = f"{rounded:f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=50))
def test_score_format_matches_decimal_rounding(values: list[float]) -> None:
    texts = format_scores(np.array(values))
    for value, text in zip(values, texts, strict=True):
        assert re.fullmatch(rb"[01]\.(0|\d{0,6}[1-9])", text), text
        expected = _decimal_reference(value)
        # Halfway cases may round either way (the value times 1e7 is itself rounded).
        assert abs(float(text) - float(expected)) <= 1.000001e-7, (value, text, expected)
        assert abs(float(text) - value) <= 5.000001e-8


def test_score_rows_and_rejects() -> None:
    rows = format_score_rows(np.array([0.5, 0.25, 0.125, 1.0]), [3, 0, 1])
    assert rows == [b"[0.5,0.25,0.125]", b"[]", b"[1.0]"]
    assert format_score_rows([0.1, 0.2, 0.3, 0.4], [2, 2]) == [b"[0.1,0.2]", b"[0.3,0.4]"]
    assert format_score_rows([], [0, 0]) == [b"[]", b"[]"]
    assert format_score_rows([], []) == []
    assert format_scores([]) == []
    for bad in (np.nan, np.inf, -0.5, 10.0):
        with pytest.raises(ValueError, match="scores must be finite, >= 0 and below 10"):
            format_scores([0.5, bad])
    with pytest.raises(ValueError, match="counts add up to 3 but there are 2 scores"):
        format_score_rows([0.5, 0.5], [1, 2])


@given(st.lists(st.lists(st.floats(min_value=0.0, max_value=1.0), max_size=8), max_size=20))
def test_score_rows_are_json_arrays_of_the_rounded_scores(rows: list[list[float]]) -> None:
    flat = [value for row in rows for value in row]
    texts = format_score_rows(np.array(flat, dtype=np.float64), [len(row) for row in rows])
    assert len(texts) == len(rows)
    for row, text in zip(rows, texts, strict=True):
        assert text == b"[" + b",".join(format_scores(np.array(row, dtype=np.float64))) + b"]"
        parsed = orjson.loads(text)
        assert all(abs(got - value) <= 5.000001e-8 for got, value in zip(parsed, row, strict=True))


# Scores at and around the 7th decimal's rounding steps (halfway cases included), and the ends.
_SCORES = st.one_of(
    st.floats(min_value=0.0, max_value=9.99999994),
    st.integers(0, 10**8 - 1).map(lambda units: units / 1e7),
    st.integers(0, 10**8 - 2).map(lambda units: (units + 0.5) / 1e7),
    st.sampled_from([0.0, 1.0, 9.9999999, 9.99999994, 5e-8, 1.5e-7, 2.5e-7]),
)


@settings(max_examples=150, deadline=None)
@given(
    # Short ids and long ones (written by different moves), with quotes, backslashes, control
    # characters and any Unicode: the JSON texts are orjson's.
    ids=st.lists(
        st.text(min_size=1, max_size=12) | st.text(min_size=13, max_size=40),
        min_size=1,
        max_size=30,
        unique=True,
    ),
    data=st.data(),
)
def test_batch_lines_match_the_per_record_formatters(ids: list[str], data: st.DataObject) -> None:
    n = data.draw(st.integers(0, 6))
    k = data.draw(st.integers(1, 8))
    rows = data.draw(
        st.lists(st.lists(st.integers(-1, len(ids) - 1), min_size=k, max_size=k), min_size=n, max_size=n)
    )
    values = data.draw(st.lists(st.lists(_SCORES, min_size=k, max_size=k), min_size=n, max_size=n))
    inputs = data.draw(st.lists(st.binary(max_size=60), min_size=n, max_size=n))
    indices = np.array(rows, dtype=np.int64).reshape(n, k)
    scores = np.array(values, dtype=np.float64).reshape(n, k)
    scores[indices < 0] = np.nan  # padding's scores are never read
    texts = id_texts(ids)
    with_scores = items_lines(inputs, texts, indices, scores)
    without = items_lines(inputs, texts, indices)
    users = users_lines(inputs, texts, indices)
    for i in range(n):
        kept = indices[i][indices[i] >= 0]
        row_ids = [ids[r] for r in kept]
        row_scores = format_score_rows(scores[i][indices[i] >= 0], [kept.size])[0]
        assert with_scores[i] == ok_line(inputs[i], items_scores_output(row_ids, row_scores))
        assert without[i] == ok_line(inputs[i], items_output(row_ids))
        assert users[i] == ok_line(inputs[i], users_output(row_ids))


def test_batch_lines_are_json_lines() -> None:
    # A batch as a job writes one: many rows, so the buffer grows while they are written.
    rng = np.random.default_rng(7)
    ids = [f"item-{i}" * (1 + i % 5) for i in range(500)]
    indices = rng.integers(-1, len(ids), (300, 50))
    scores = rng.dirichlet(np.ones(50), 300)
    inputs = [orjson.dumps({"userId": f"u{i}", "itemList": ids[: i % 7]}) for i in range(300)]
    lines = items_lines(inputs, id_texts(ids), indices, scores)
    for i, line in enumerate(lines):
        assert line.endswith(b"\n")
        record = orjson.loads(line)
        kept = indices[i] >= 0
        assert record["input"] == orjson.loads(inputs[i])
        assert record["error"] is None
        assert record["output"]["recommendedItems"] == [ids[r] for r in indices[i][kept]]
        assert record["output"]["scores"] == pytest.approx(scores[i][kept], abs=5e-8)


def test_batch_outputs_reject_what_the_formatters_reject() -> None:
    texts = id_texts(["a", "b"])
    for bad in (np.nan, np.inf, -0.5, 10.0, 9.99999995):
        with pytest.raises(ValueError, match="scores must be finite, >= 0 and below 10"):
            items_lines([b"{}"], texts, np.array([[0, 1]]), np.array([[0.5, bad]]))
    with pytest.raises(IndexError, match="row 2 is past the last of 2 texts"):
        items_lines([b"{}"], texts, np.array([[0, 2]]))
    with pytest.raises(ValueError, match="scores must have the shape of indices"):
        items_lines([b"{}"], texts, np.array([[0, 1]]), np.array([[0.5]]))
    with pytest.raises(ValueError, match="prefixes must hold one bytes object per row of indices"):
        items_lines([b"{}", b"{}"], texts, np.array([[0, 1]]))
    with pytest.raises(TypeError, match=r"prefixes\[0\] must be bytes, got str"):
        items_lines(["{}"], texts, np.array([[0, 1]]))  # type: ignore[list-item]


def test_ids_that_utf8_cannot_hold_are_escaped() -> None:
    texts = id_texts(["\ud800x", "ok"])
    assert items_lines([b"1"], texts, np.array([[0, 1]])) == [
        b'{"input":1,"output":{"recommendedItems":["\\ud800x","ok"]},"error":null}\n'
    ]
