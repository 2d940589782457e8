"""pytest-benchmark: id -> row lookups, ``IdIndex.rows`` against a dict (not part of the test suite).

    .venv/bin/pytest benchmarks/bench_ids.py --benchmark-enable --benchmark-columns=median,ops

A 100,000-id catalogue and 51,200 keys (a personalized-ranking batch: 1,024 records x 50 items),
a tenth of them unknown. The keys are fresh strings from ``orjson.loads`` in every round, as a
job has them (a str caches its hash after the first dict lookup; a re-used key list would flatter
the dict). Each case checks its rows against the other's.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest
from numpy.typing import NDArray

from recbatch.ids import IdIndex

CATALOGUE = 100_000
KEYS = 51_200

_IDS = [f"item-{i}" for i in np.random.default_rng(0).permutation(CATALOGUE)]
_RAW = orjson.dumps([f"item-{i}" for i in np.random.default_rng(1).integers(0, CATALOGUE * 11 // 10, KEYS)])
_INDEX = IdIndex(_IDS)
_DICT = {id_: row for row, id_ in enumerate(_IDS)}


def _dict_rows(keys: list[str]) -> NDArray[np.int64]:
    return np.fromiter(map(_DICT.get, keys, itertools.repeat(-1)), dtype=np.int64, count=len(keys))


def _index_rows(keys: list[str]) -> NDArray[np.int64]:
    return _INDEX.rows(keys)


@pytest.mark.parametrize("lookup", [_dict_rows, _index_rows], ids=["dict", "IdIndex"])
def test_rows(benchmark: Any, lookup: Callable[[list[str]], NDArray[np.int64]]) -> None:
    rows = benchmark.pedantic(lookup, setup=lambda: ((orjson.loads(_RAW),), {}), rounds=30)
    np.testing.assert_array_equal(rows, _dict_rows(orjson.loads(_RAW)))
    benchmark.extra_info["ns_per_key"] = round(1e9 * benchmark.stats.stats.median / KEYS)
