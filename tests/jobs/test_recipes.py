"""Per-recipe scoring against a float64 NumPy reference, cold start, errors, batching."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from numpy.typing import NDArray

import recbatch
from recbatch.jobs.recipes import Scorer, records_per_batch
from recbatch.jobs.records import parse_record, parse_records
from recbatch.model import Family, Model, ModelError, load_model, save_model
from tests.jobs import helpers as ref
from tests.jobs.helpers import model_arrays, write_model


def _model(tmp_path: Path, arrays: dict[str, NDArray[Any]]) -> Model:
    return load_model(write_model(tmp_path, arrays))


def _run(scorer: Scorer, lines: Sequence[dict[str, Any] | bytes]) -> list[dict[str, Any]]:
    raw = [x if isinstance(x, bytes) else orjson.dumps(x) for x in lines]
    records = [parse_record(x, scorer.family) for x in raw]
    batch = scorer.score(records)
    # The job's path: the batch read by parse_records (itemLists as spans), the same lines out.
    batched = scorer.score(*parse_records(raw, scorer.family))
    assert (batched.lines, batched.failed) == (batch.lines, batch.failed)
    # And the job's own call, from the lines (personalized ranking: most of them in one call to
    # the extension).
    by_lines = scorer.score_lines(raw)
    assert (by_lines.lines, by_lines.failed) == (batch.lines, batch.failed)
    assert len(batch.lines) == len(records)
    decoded = [orjson.loads(line) for line in batch.lines]
    assert batch.failed == sum(d["error"] is not None for d in decoded)
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in batch.lines)
    return decoded


@pytest.fixture
def arrays() -> dict[str, NDArray[Any]]:
    return model_arrays(n_users=80, n_items=400, dim=16, seed=11)


def test_user_personalization(tmp_path: Path, arrays: dict[str, NDArray[Any]]) -> None:
    scorer = Scorer(_model(tmp_path, arrays), Family.USER_PERSONALIZATION, 25)
    users = [f"u{u}" for u in range(80)]
    out = _run(scorer, [{"userId": u} for u in users])
    for user, line in zip(users, out, strict=True):
        assert line["input"] == {"userId": user} and line["error"] is None
        expected_ids, _ = ref.user_personalization(arrays, user, 25)
        exact = dict(zip(arrays["item_ids"].tolist(), ref.item_scores(arrays, user).tolist(), strict=True))
        ref.assert_same_ranking(line["output"]["recommendedItems"], expected_ids, exact)
        # Scores of the ids actually returned: exp(u.v) / sum over the whole catalogue.
        all_ids, all_probabilities = ref.user_personalization(arrays, user, 400)
        probability = dict(zip(all_ids, all_probabilities, strict=True))
        ref.assert_scores_close(
            line["output"]["scores"], [probability[i] for i in line["output"]["recommendedItems"]]
        )
        assert sum(line["output"]["scores"]) < 1.0


def test_user_personalization_cold_start(tmp_path: Path, arrays: dict[str, NDArray[Any]]) -> None:
    scorer = Scorer(_model(tmp_path, arrays), Family.USER_PERSONALIZATION, 10)
    out = _run(scorer, [{"userId": "u1"}, {"userId": "new-user"}, {"userId": "u2"}])
    assert out[0]["error"] is None and out[2]["error"] is None
    popular = ref.popularity_top(arrays, 10)
    assert out[1]["output"]["recommendedItems"] == popular
    ref.assert_scores_close(out[1]["output"]["scores"], ref.popularity_share(arrays, popular))
    # Without popularity there is nothing to fall back on.
    no_popularity = model_arrays(80, 400, 16, seed=11, popularity=False)
    scorer = Scorer(_model(tmp_path, no_popularity), Family.USER_PERSONALIZATION, 10)
    out = _run(scorer, [{"userId": "new-user"}, {"userId": "u3"}])
    assert out[0]["output"] is None
    assert out[0]["error"] == (
        "UNKNOWN_USER: userId 'new-user' is not in the model, and the model has no item_popularity for cold start"
    )
    assert out[1]["error"] is None


def test_num_results_beyond_catalogue(tmp_path: Path) -> None:
    arrays = model_arrays(5, 7, 4, seed=2)
    scorer = Scorer(_model(tmp_path, arrays), Family.USER_PERSONALIZATION, 500)
    (line,) = _run(scorer, [{"userId": "u0"}])
    assert len(line["output"]["recommendedItems"]) == 7
    # The whole catalogue: the softmax sums to 1.
    assert abs(sum(line["output"]["scores"]) - 1.0) < 1e-6


@pytest.mark.parametrize("n_items", [1, 300])
def test_a_certain_item_scores_one_not_more(
    tmp_path: Path, n_items: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A one-item catalogue, or one item 40 above the rest: its share of the softmax is 1 to
    # float precision and is written 1.0, at every SIMD level (the vectorised log-sum-exp's last
    # bits once put it at 1.0000001).
    arrays = model_arrays(n_users=50, n_items=n_items, dim=8, seed=5)
    arrays["item_factors"][n_items // 2] = [40.0] + [0.0] * 7
    arrays["user_factors"][:, 0] = 1.0
    model = _model(tmp_path, arrays)
    best = str(arrays["item_ids"][n_items // 2])
    for level in recbatch.available_simd_levels():
        monkeypatch.setenv("RECBATCH_SIMD", level)
        scorer = Scorer(model, Family.USER_PERSONALIZATION, 2)
        for line in _run(scorer, [{"userId": str(u)} for u in arrays["user_ids"]]):
            assert line["output"]["recommendedItems"][0] == best
            assert line["output"]["scores"][0] == 1.0


def test_related_items(tmp_path: Path, arrays: dict[str, NDArray[Any]]) -> None:
    scorer = Scorer(_model(tmp_path, arrays), Family.RELATED_ITEMS, 20)
    items = [f"i{i}" for i in range(0, 400, 7)]
    out = _run(scorer, [{"itemId": i} for i in items])
    for item, line in zip(items, out, strict=True):
        got = line["output"]["recommendedItems"]
        assert item not in got and list(line["output"]) == ["recommendedItems"]
        exact = dict(zip(arrays["item_ids"].tolist(), ref.cosine_scores(arrays, item).tolist(), strict=True))
        ref.assert_same_ranking(got, ref.related_items(arrays, item, 20), exact)


def test_related_items_is_cosine_not_inner_product(tmp_path: Path) -> None:
    # "far" points the same way as the query but is short; "big" is long but at an angle.
    factors = np.array([[1.0, 0.0], [0.1, 0.0], [10.0, 10.0], [0.0, 0.0]], dtype=np.float32)
    model = _model(tmp_path, {"item_ids": np.array(["q", "far", "big", "zero"]), "item_factors": factors})
    (line,) = _run(Scorer(model, Family.RELATED_ITEMS, 3), [{"itemId": "q"}])
    assert line["output"]["recommendedItems"] == ["far", "big", "zero"]


def test_related_items_unknown_and_tiny_catalogue(tmp_path: Path, arrays: dict[str, NDArray[Any]]) -> None:
    out = _run(Scorer(_model(tmp_path, arrays), Family.RELATED_ITEMS, 5), [{"itemId": "nope"}])
    assert out[0]["output"] == {"recommendedItems": ref.popularity_top(arrays, 5)}
    no_popularity = model_arrays(80, 400, 16, seed=11, popularity=False)
    out = _run(Scorer(_model(tmp_path, no_popularity), Family.RELATED_ITEMS, 5), [{"itemId": "nope"}])
    assert out[0]["error"] == (
        "UNKNOWN_ITEM: itemId 'nope' is not in the model, and the model has no item_popularity for cold start"
    )
    one = _model(tmp_path, {"item_ids": np.array(["solo"]), "item_factors": np.ones((1, 3), np.float32)})
    assert _run(Scorer(one, Family.RELATED_ITEMS, 5), [{"itemId": "solo"}])[0]["output"] == {
        "recommendedItems": []
    }


def test_popular_items(tmp_path: Path, arrays: dict[str, NDArray[Any]]) -> None:
    scorer = Scorer(_model(tmp_path, arrays), Family.POPULAR_ITEMS, 12)
    out = _run(scorer, [{"userId": "u0"}, {"userId": "somebody-new"}, {"itemId": "i1"}])
    expected = {"recommendedItems": ref.popularity_top(arrays, 12)}
    assert out[0]["output"] == out[1]["output"] == expected  # no scores
    assert out[2]["error"] == "MISSING_FIELD: userId is required"
    # A popularity-only model serves this recipe.
    path = str(tmp_path / "pop.npz")
    save_model(path, item_ids=["a", "b", "c"], item_popularity=[1, 9, 9])
    out = _run(Scorer(load_model(path), Family.POPULAR_ITEMS, 2), [{"userId": "x"}])
    assert out[0]["output"] == {"recommendedItems": ["b", "c"]}


def test_personalized_ranking(tmp_path: Path, arrays: dict[str, NDArray[Any]]) -> None:
    scorer = Scorer(_model(tmp_path, arrays), Family.PERSONALIZED_RANKING, 25)
    rng = np.random.default_rng(4)
    requests: list[dict[str, Any]] = []
    for u in range(40):
        size = int(rng.integers(1, 60))
        item_list = [f"i{i}" for i in rng.choice(400, size=size, replace=False)]
        requests.append({"userId": f"u{u}", "itemList": item_list})
    out = _run(scorer, requests)
    for request, line in zip(requests, out, strict=True):
        expected_ids, expected_scores = ref.ranking(arrays, request["userId"], request["itemList"])
        exact = dict(
            zip(arrays["item_ids"].tolist(), ref.item_scores(arrays, request["userId"]).tolist(), strict=True)
        )
        got = line["output"]["recommendedItems"]
        ref.assert_same_ranking(got, expected_ids, exact)
        assert sorted(got) == sorted(request["itemList"])  # the whole list, whatever numResults is
        probability = dict(zip(expected_ids, expected_scores, strict=True))
        ref.assert_scores_close(line["output"]["scores"], [probability[i] for i in got])
        assert abs(sum(line["output"]["scores"]) - 1.0) < 1e-5  # softmax over the list only


def test_ranking_unknown_items_duplicates_and_ties(tmp_path: Path) -> None:
    # b, c and d all score 1.0 for u: tied, in catalogue order (b, c, d); a scores 0.5.
    factors = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    arrays = {
        "item_ids": np.array(["a", "b", "c", "d"]),
        "item_factors": factors,
        "user_ids": np.array(["u"]),
        "user_factors": np.array([[0.5, 1.0]], dtype=np.float32),
    }
    scorer = Scorer(_model(tmp_path, arrays), Family.PERSONALIZED_RANKING, 1)
    request = {"userId": "u", "itemList": ["x1", "d", "a", "d", "c", "x2", "b", "x1"]}
    (line,) = _run(scorer, [request])
    output = line["output"]
    assert output["recommendedItems"] == ["b", "c", "d", "a", "x1", "x2"]
    e = np.exp([1.0, 1.0, 1.0, 0.5])
    ref.assert_scores_close(output["scores"], [*(e / e.sum()).tolist(), 0.0, 0.0])
    assert output["scores"][-2:] == [0.0, 0.0]
    # Only unknown items: list order, all 0.
    (line,) = _run(scorer, [{"userId": "u", "itemList": ["z", "y"]}])
    assert line["output"] == {"recommendedItems": ["z", "y"], "scores": [0.0, 0.0]}


def test_ranking_cold_user(tmp_path: Path, arrays: dict[str, NDArray[Any]]) -> None:
    scorer = Scorer(_model(tmp_path, arrays), Family.PERSONALIZED_RANKING, 25)
    item_list = ["i3", "unknown", "i10", "i200", "i3"]
    (line,) = _run(scorer, [{"userId": "newcomer", "itemList": item_list}])
    expected_ids, expected_scores = ref.ranking(arrays, "newcomer", item_list)
    assert line["output"]["recommendedItems"] == expected_ids
    ref.assert_scores_close(line["output"]["scores"], expected_scores)
    no_popularity = model_arrays(80, 400, 16, seed=11, popularity=False)
    scorer = Scorer(_model(tmp_path, no_popularity), Family.PERSONALIZED_RANKING, 25)
    (line,) = _run(scorer, [{"userId": "newcomer", "itemList": item_list}])
    assert line["error"].startswith("UNKNOWN_USER: userId 'newcomer' is not in the model")


def test_ranking_batch_of_warm_and_cold_users(tmp_path: Path, arrays: dict[str, NDArray[Any]]) -> None:
    # One batch: known and unknown users, unknown items and repeats, lists longer and shorter
    # than one another (a cold user's list is ranked apart, by popularity, and merged back).
    rng = np.random.default_rng(12)
    arrays = dict(arrays)
    popularity = arrays["item_popularity"].astype(np.float64).copy()
    popularity[:20] = 0.0  # i0..i19: no popularity at all
    arrays["item_popularity"] = popularity
    scorer = Scorer(_model(tmp_path, arrays), Family.PERSONALIZED_RANKING, 5)
    requests: list[dict[str, Any]] = []
    for r in range(60):
        size = int(rng.integers(1, 70))
        items = [f"i{i}" if i < 400 else f"new{i}" for i in rng.integers(0, 440, size)]
        if r % 7 == 0:
            items = [f"i{i}" for i in rng.integers(0, 20, 4)]  # cold user: every share 0 -> uniform
        user = f"u{r}" if r % 3 else f"stranger{r}"
        requests.append({"userId": user, "itemList": items})
    out = _run(scorer, requests)
    for request, line in zip(requests, out, strict=True):
        expected_ids, expected_scores = ref.ranking(arrays, request["userId"], request["itemList"])
        user_known = request["userId"].startswith("u")
        exact_scores = ref.item_scores(arrays, request["userId"]) if user_known else arrays["item_popularity"]
        exact = dict(zip(arrays["item_ids"].tolist(), np.asarray(exact_scores).tolist(), strict=True))
        exact.update({i: -np.inf for i in request["itemList"] if i.startswith("new")})
        got = line["output"]["recommendedItems"]
        ref.assert_same_ranking(got, expected_ids, exact)
        assert got[len(got) - sum(i.startswith("new") for i in dict.fromkeys(got)) :] == [
            i for i in dict.fromkeys(request["itemList"]) if i.startswith("new")
        ]
        probability = dict(zip(expected_ids, expected_scores, strict=True))
        ref.assert_scores_close(line["output"]["scores"], [probability[i] for i in got])


def test_ranking_batch_with_failures_between_ranked_records(tmp_path: Path) -> None:
    # Without item_popularity an unknown user fails; bad lines fail too. Every other line of the
    # batch is still ranked, and each output line stays in its input's place.
    arrays = model_arrays(80, 400, 16, seed=11, popularity=False)
    scorer = Scorer(_model(tmp_path, arrays), Family.PERSONALIZED_RANKING, 25)
    rng = np.random.default_rng(21)
    requests: list[dict[str, Any] | bytes] = []
    for r in range(30):
        items = [f"i{i}" for i in rng.integers(0, 400, int(rng.integers(1, 30)))]
        if r % 5 == 1:
            requests.append({"userId": f"stranger{r}", "itemList": items})
        elif r % 7 == 3:
            requests.append(b'{"userId": "u1", "itemList": [')  # not JSON
        else:
            requests.append({"userId": f"u{r}", "itemList": items})
    out = _run(scorer, requests)
    for request, line in zip(requests, out, strict=True):
        if isinstance(request, bytes):
            assert line["error"].startswith("INVALID_JSON")
        elif request["userId"].startswith("stranger"):
            assert line["input"] == request
            assert line["error"].startswith(f"UNKNOWN_USER: userId '{request['userId']}' is not in the model")
        else:
            assert line["input"] == request and line["error"] is None
            expected_ids, expected_scores = ref.ranking(arrays, request["userId"], request["itemList"])
            exact = dict(
                zip(
                    arrays["item_ids"].tolist(),
                    ref.item_scores(arrays, request["userId"]).tolist(),
                    strict=True,
                )
            )
            ref.assert_same_ranking(line["output"]["recommendedItems"], expected_ids, exact)
            probability = dict(zip(expected_ids, expected_scores, strict=True))
            ref.assert_scores_close(
                line["output"]["scores"], [probability[i] for i in line["output"]["recommendedItems"]]
            )


def test_user_segmentation(tmp_path: Path, arrays: dict[str, NDArray[Any]]) -> None:
    scorer = Scorer(_model(tmp_path, arrays), Family.USER_SEGMENTATION, 15)
    items = [f"i{i}" for i in range(0, 400, 13)]
    out = _run(scorer, [{"itemId": i} for i in items] + [{"itemId": "missing"}])
    for item, line in zip(items, out[:-1], strict=True):
        exact = dict(zip(arrays["user_ids"].tolist(), ref.user_affinity(arrays, item).tolist(), strict=True))
        ref.assert_same_ranking(line["output"]["usersList"], ref.segment(arrays, item, 15), exact)
        assert list(line["output"]) == ["usersList"]
    assert (
        out[-1]["error"]
        == "UNKNOWN_ITEM: itemId 'missing' is not in the model, so no user has an affinity to it"
    )
    # More users asked for than there are: all of them.
    (line,) = _run(Scorer(scorer.model, Family.USER_SEGMENTATION, 1000), [{"itemId": "i0"}])
    assert sorted(line["output"]["usersList"]) == sorted(arrays["user_ids"].tolist())


def test_bad_records_pass_through_in_order(tmp_path: Path, arrays: dict[str, NDArray[Any]]) -> None:
    scorer = Scorer(_model(tmp_path, arrays), Family.USER_PERSONALIZATION, 3)
    out = _run(scorer, [b"{oops", {"userId": "u1"}, b"[]", {"userId": 7}, {"userId": "u2"}])
    codes = [line["error"].split(":")[0] if line["error"] else None for line in out]
    assert codes == ["INVALID_JSON", None, "INVALID_RECORD", "INVALID_FIELD", None]
    assert out[0]["input"] == "{oops"
    assert out[1]["input"] == {"userId": "u1"} and out[4]["input"] == {"userId": "u2"}


@pytest.mark.parametrize(
    ("family", "line"),
    [
        (Family.USER_PERSONALIZATION, {"userId": "u1"}),
        (Family.RELATED_ITEMS, {"itemId": "i1"}),
        (Family.USER_SEGMENTATION, {"itemId": "i1"}),
    ],
)
def test_one_search_per_batch(
    tmp_path: Path,
    arrays: dict[str, NDArray[Any]],
    monkeypatch: pytest.MonkeyPatch,
    family: Family,
    line: dict[str, str],
) -> None:
    calls: list[int] = []
    search = recbatch.ItemIndex.search

    def counting(self: recbatch.ItemIndex, queries: Any, k: int, **kwargs: Any) -> recbatch.TopKResult:
        calls.append(len(queries))
        return search(self, queries, k, **kwargs)

    monkeypatch.setattr(recbatch.ItemIndex, "search", counting)
    scorer = Scorer(_model(tmp_path, arrays), family, 5)
    out = _run(scorer, [line] * 300 + [{"userId": "unknown", "itemId": "unknown"}])
    assert calls == [300, 300, 300]  # one search per batch, for each of _run's three ways of reading it
    assert len(out) == 301


def test_batch_sizes_bound_memory() -> None:
    assert records_per_batch(Family.USER_PERSONALIZATION, 25) == 4096
    assert records_per_batch(Family.USER_SEGMENTATION, 5_000_000) == 1
    assert 1 < records_per_batch(Family.USER_SEGMENTATION, 10_000) * 10_000 <= 1 << 22
    # Ranking: several 64-line tasks per thread, within 1,024 to 4,096 lines of up to 500 items.
    assert records_per_batch(Family.PERSONALIZED_RANKING, 25, threads=1) == 1024
    assert records_per_batch(Family.PERSONALIZED_RANKING, 25, threads=8) == 2048
    assert records_per_batch(Family.PERSONALIZED_RANKING, 25, threads=16) == 4096
    assert records_per_batch(Family.PERSONALIZED_RANKING, 25, threads=256) == 4096
    assert 1024 <= records_per_batch(Family.PERSONALIZED_RANKING, 25) <= 4096


def test_scorer_checks_the_model(tmp_path: Path) -> None:
    items_only = _model(tmp_path, {"item_ids": np.array(["a"]), "item_factors": np.ones((1, 2), np.float32)})
    with pytest.raises(ModelError, match="user_factors is missing"):
        Scorer(items_only, Family.USER_PERSONALIZATION, 5)
    with pytest.raises(ModelError, match="item_popularity is missing"):
        Scorer(items_only, Family.POPULAR_ITEMS, 5)
    with pytest.raises(ValueError, match="numResults must be >= 1"):
        Scorer(items_only, Family.RELATED_ITEMS, 0)


@pytest.mark.parametrize(
    ("family", "field", "prefix", "searches"),
    [
        (Family.USER_PERSONALIZATION, "userId", "u", 1),
        (Family.RELATED_ITEMS, "itemId", "i", 1),
        (Family.USER_SEGMENTATION, "itemId", "i", 1),
        (Family.POPULAR_ITEMS, "userId", "u", 0),
        (Family.PERSONALIZED_RANKING, "userId", "u", 1),
    ],
)
def test_steps_hand_out_at_most_one_search_per_batch(
    tmp_path: Path, arrays: dict[str, NDArray[Any]], family: Family, field: str, prefix: str, searches: int
) -> None:
    """Scorer.steps: the batch's search (if any) runs wherever the caller runs it; lines as score()."""
    scorer = Scorer(_model(tmp_path, arrays), family, 7)
    lines = [{field: f"{prefix}{j}"} for j in range(30)] + [{"other": 1}]
    if family is Family.PERSONALIZED_RANKING:
        lines = [{**line, "itemList": ["i3", "i1", "i2"]} for line in lines]
    records = [parse_record(orjson.dumps(line), family) for line in lines]
    steps = scorer.steps(records)
    handed_out = 0
    try:
        call = next(steps)
        while True:
            handed_out += 1
            call = steps.send(call())
    except StopIteration as done:
        stepped = done.value
    assert handed_out == searches
    direct = scorer.score(records)
    assert stepped.lines == direct.lines and stepped.failed == direct.failed == 1
    # A batch with nothing to search (every record bad) hands out no search.
    with pytest.raises(StopIteration):
        next(scorer.steps(records[-1:]))
