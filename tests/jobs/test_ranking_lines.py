"""Personalized ranking from the lines (Scorer.score_lines): the lines of the common shape with a
known user are ranked and written in the extension, the rest through parse_record; the output
lines are exactly those of the records' path, whatever the batch mixes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recbatch import save_model
from recbatch.jobs.recipes import Scorer
from recbatch.jobs.records import parse_records
from recbatch.model import Family, load_model

USERS = ["u1", "u2", "\u00e9t\u00e9", "x" * 256]
ITEMS = ["a", "b", "c", "\u20ac", "i" * 20, 'quote"d', "d"]
_STRANGERS = ["nobody", "\U0001f600"]
_NEW_ITEMS = ["new", "n\u00e9w", "back\\slash"]
_SPACE = st.sampled_from(["", "", " ", "\t", "  "])


def _scorer(tmp_path: Path, *, popularity: bool, seed: int) -> Scorer:
    rng = np.random.default_rng(seed)
    arrays: dict[str, object] = {
        "user_ids": USERS,
        "item_ids": ITEMS,
        "user_factors": rng.standard_normal((len(USERS), 8)).astype(np.float32),
        # Items 0 and 1 the same vector: tied scores, ranked by row.
        "item_factors": np.concatenate([np.ones((2, 8)), rng.standard_normal((len(ITEMS) - 2, 8))]).astype(
            np.float32
        ),
    }
    if popularity:
        arrays["item_popularity"] = rng.integers(0, 3, len(ITEMS)).astype(np.float64)
    path = tmp_path / f"model-{popularity}-{seed}.npz"
    save_model(str(path), **arrays)  # type: ignore[arg-type]
    return Scorer(load_model(str(path)), Family.PERSONALIZED_RANKING, 25)


@st.composite
def _line(draw: st.DrawFn) -> bytes:
    user = draw(st.sampled_from(USERS + _STRANGERS))
    items = draw(st.lists(st.sampled_from(ITEMS + _NEW_ITEMS), min_size=0, max_size=8))
    escape = draw(st.integers(0, 5)) == 0  # non-ASCII escaped: the JSON parser's path

    def token(value: object) -> str:
        return json.dumps(value, ensure_ascii=escape)

    space = draw(_SPACE)
    members = [
        f'"userId":{space}{token(user)}',
        '"itemList":' + space + "[" + ",".join(space + token(item) for item in items) + "]",
    ]
    if draw(st.booleans()):
        members.reverse()
    if draw(st.integers(0, 7)) == 0:
        members.append('"context":{"DEVICE":"phone"}')  # another member: the parser's path
    line = "{" + space + ",".join(members) + space + "}"
    if draw(st.integers(0, 15)) == 0:
        line = line[: draw(st.integers(1, len(line) - 1))]  # cut short: an error line
    return line.encode()


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(_line(), min_size=1, max_size=12), popularity=st.booleans(), seed=st.integers(0, 3))
def test_lines_rank_as_records_do(
    tmp_path_factory: object, lines: list[bytes], popularity: bool, seed: int
) -> None:
    tmp_path = tmp_path_factory.mktemp("model")  # type: ignore[attr-defined]
    scorer = _scorer(tmp_path, popularity=popularity, seed=seed)
    expected = scorer.score(*parse_records(lines, Family.PERSONALIZED_RANKING))
    got = scorer.score_lines(lines)
    assert got.lines == expected.lines
    assert got.failed == expected.failed


def test_lines_of_the_shape_are_done_in_one_call(tmp_path: Path) -> None:
    scorer = _scorer(tmp_path, popularity=False, seed=0)
    lines = [
        b'{"userId": "u1", "itemList": ["a", "new", "b", "a", "new"]}',
        b'{"userId":"nobody","itemList":["a"]}',  # unknown user, no popularity: an error
        b'{"itemList":["\xe2\x82\xac","c"],"userId":"u2"}',
    ]
    steps = scorer.steps_for_lines(lines)
    call = next(steps)
    ranked = call()
    done = ranked.lines()
    assert [line is not None for line in done] == [True, False, True]
    assert ranked.done.tolist() == [True, False, True] and ranked.text == done[0] + done[2]
    assert ranked.ends.tolist() == [len(done[0]), len(done[0]) + len(done[2])]
    first = orjson.loads(done[0])
    assert first["input"] == orjson.loads(lines[0]) and first["error"] is None
    # a and b tie (the same vector): by row; the unknown item after them, once, with 0.
    assert first["output"]["recommendedItems"] == ["a", "b", "new"]
    assert first["output"]["scores"][0] == first["output"]["scores"][1] == 0.5
    assert first["output"]["scores"][2] == 0.0
    try:
        steps.send(ranked)
    except StopIteration as end:
        scored = end.value
    assert scored.failed == 1
    assert orjson.loads(scored.lines[1])["error"].startswith(
        "UNKNOWN_USER: userId 'nobody' is not in the model"
    )
    assert scored.lines[0] == done[0] and scored.lines[2] == done[2]


@pytest.mark.parametrize("threads", [1, 3])
def test_a_batch_of_many_lines(tmp_path: Path, threads: int) -> None:
    # Lines enough for several of the extension's tasks, the parser's lines between them.
    seed = np.random.SeedSequence().entropy
    print(f"rng seed: {seed}")  # fresh lines every run, shown on failure
    rng = np.random.default_rng(seed)
    scorer = _scorer(tmp_path, popularity=bool(rng.integers(0, 2)), seed=int(rng.integers(0, 4)))
    scorer.threads = threads
    lines = []
    for i in range(700):
        user = (USERS + _STRANGERS)[int(rng.integers(0, len(USERS) + len(_STRANGERS)))]
        items = [
            (ITEMS + _NEW_ITEMS)[j] for j in rng.integers(0, len(ITEMS) + len(_NEW_ITEMS), rng.integers(1, 9))
        ]
        record = {"userId": user, "itemList": items}
        lines.append(json.dumps(record, ensure_ascii=i % 11 == 0).encode())
    expected = scorer.score(*parse_records(lines, Family.PERSONALIZED_RANKING))
    got = scorer.score_lines(lines)
    assert got.lines == expected.lines
    assert got.failed == expected.failed


def test_users_the_model_lacks_are_ranked_by_popularity_in_the_call(tmp_path: Path) -> None:
    scorer = _scorer(tmp_path, popularity=True, seed=1)
    popularity = scorer.model.item_popularity
    assert popularity is not None
    popularity[:] = [4.0, 0.0, 1.0, 3.0, 0.0, 0.0, 0.0]  # a, b, c, euro, ...
    lines = [
        '{"userId": "nobody", "itemList": ["b", "c", "new", "a", "\u20ac"]}'.encode(),
        b'{"userId": "nobody", "itemList": ["b", "d"]}',  # all 0: equal shares
    ]
    done = scorer.steps_for_lines(lines).send(None)().lines()
    first, second = (orjson.loads(line) for line in done)
    assert first["output"] == {
        "recommendedItems": ["a", "\u20ac", "c", "b", "new"],
        "scores": [0.5, 0.375, 0.125, 0.0, 0.0],
    }
    assert second["output"] == {"recommendedItems": ["b", "d"], "scores": [0.5, 0.5]}
    expected = scorer.score(*parse_records(lines, Family.PERSONALIZED_RANKING))
    assert done == expected.lines
