"""pytest-benchmark: a batch's input lines to records and catalogue rows (not part of the test suite).

    .venv/bin/pytest benchmarks/bench_records.py --benchmark-enable --benchmark-columns=median,ops

A personalized-ranking batch (1,024 lines of a userId and 50 item ids, as orjson writes them, from
a 100,000-id catalogue) read and looked up two ways: line by line with ``parse_record`` (orjson,
a str per id) and ``IdIndex.rows``, as the jobs did before; and in one pass with
``parse_records`` (the lines of the common shape scanned in the extension) and
``IdIndex.rows_in`` on the ids' bytes. Also a user-personalization batch (4,096 userId lines),
parsed both ways. Each case checks its records and rows against the other's.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import orjson
import pytest

from recbatch.ids import IdIndex, IdLists
from recbatch.jobs.records import Record, parse_record, parse_records
from recbatch.model import Family

CATALOGUE = 100_000
_RNG = np.random.default_rng(0)
_INDEX = IdIndex([f"i{i}" for i in range(CATALOGUE)])
_RANKING = [
    orjson.dumps({"userId": f"u{u}", "itemList": [f"i{i}" for i in _RNG.integers(0, CATALOGUE, 50)]})
    for u in _RNG.integers(0, 200_000, 1024)
]
_USERS = [orjson.dumps({"userId": f"u{u}"}) for u in _RNG.integers(0, 200_000, 4096)]


def _line_by_line(lines: list[bytes], family: Family) -> tuple[list[Record], Any]:
    records = [parse_record(line, family) for line in lines]
    if family is not Family.PERSONALIZED_RANKING:
        return records, None
    ids = list(itertools.chain.from_iterable(record.item_list or () for record in records))
    return records, _INDEX.rows(ids)


def _in_one_pass(lines: list[bytes], family: Family) -> tuple[list[Record], Any]:
    records, lists = parse_records(lines, family)
    if lists is None:
        return records, None
    return records, _INDEX.rows_in(lists)


@pytest.mark.parametrize("read", [_line_by_line, _in_one_pass], ids=["parse_record", "parse_records"])
@pytest.mark.parametrize(
    ("lines", "family"),
    [(_RANKING, Family.PERSONALIZED_RANKING), (_USERS, Family.USER_PERSONALIZATION)],
    ids=["ranking-1024x50", "users-4096"],
)
def test_read_batch(benchmark: Any, read: Any, lines: list[bytes], family: Family) -> None:
    records, rows = benchmark.pedantic(read, args=(lines, family), rounds=30)
    expected_records, expected_rows = _line_by_line(lines, family)
    assert [r.user_id for r in records] == [r.user_id for r in expected_records]
    if rows is not None:
        np.testing.assert_array_equal(rows, expected_rows)
        assert isinstance(parse_records(lines, family)[1], IdLists)
    benchmark.extra_info["us_per_line"] = round(1e6 * benchmark.stats.stats.median / len(lines), 2)
