"""Shared builders and a float64 NumPy reference for the data-plane tests (model, records, recipes, runner)."""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from recbatch.model import save_model, synthetic_model

RECIPE = {
    "user": "arn:aws:personalize:::recipe/aws-user-personalization",
    "user2": "arn:aws:personalize:::recipe/aws-user-personalization-v2",
    "popular": "arn:aws:personalize:::recipe/aws-popularity-count",
    "sims": "arn:aws:personalize:::recipe/aws-sims",
    "similar": "arn:aws:personalize:::recipe/aws-similar-items",
    "ranking": "arn:aws:personalize:::recipe/aws-personalized-ranking",
    "ranking2": "arn:aws:personalize:::recipe/aws-personalized-ranking-v2",
    "affinity": "arn:aws:personalize:::recipe/aws-item-affinity",
}

# Two ids whose reference scores differ by less than this may come out in either order.
NEAR_TIE = 1e-5


def model_arrays(
    n_users: int = 60, n_items: int = 300, dim: int = 16, seed: int = 0, *, popularity: bool = True
) -> dict[str, NDArray[Any]]:
    arrays = synthetic_model(n_users, n_items, dim, seed)
    if not popularity:
        del arrays["item_popularity"]
    return arrays


def write_model(directory: Path, arrays: dict[str, NDArray[Any]], name: str = "model.npz") -> str:
    path = directory / name
    save_model(str(path), **arrays)
    return str(path)


def write_lines(path: Path, lines: Iterable[bytes | str | dict[str, Any]]) -> Path:
    """A JSON-lines file (gzip-compressed when the name ends in .gz); dicts are serialized."""
    data = b"".join(
        (orjson.dumps(line) if isinstance(line, dict) else line.encode() if isinstance(line, str) else line)
        + b"\n"
        for line in lines
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def read_output(path: Path) -> list[dict[str, Any]]:
    """The output lines of a .out file, each checked to be exactly input/output/error."""
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"", "an output file ends with a newline"
    records = [orjson.loads(line) for line in lines[:-1]]
    for record in records:
        assert list(record) == ["input", "output", "error"]
        assert (record["output"] is None) != (record["error"] is None)
    return records


def job(input_path: str, output_path: str, num_results: int | None = None, **extra: Any) -> dict[str, Any]:
    """A stored CreateBatchInferenceJob request."""
    request: dict[str, Any] = {
        "jobName": "test-job",
        "solutionVersionArn": "arn:aws:personalize:us-east-1:000000000000:solution/s/1",
        "jobInput": {"s3DataSource": {"path": input_path}},
        "jobOutput": {"s3DataDestination": {"path": output_path}},
        "roleArn": "arn:aws:iam::000000000000:role/test",
        **extra,
    }
    if num_results is not None:
        request["numResults"] = num_results
    return request


def solution(model_path: str, recipe: str) -> dict[str, str]:
    return {
        "solutionVersionArn": "arn:aws:personalize:us-east-1:000000000000:solution/s/1",
        "recipeArn": RECIPE.get(recipe, recipe),
        "modelPath": model_path,
    }


# --------------------------------------------------------------------------------------------
# float64 reference


def _rows(ids: NDArray[Any]) -> dict[str, int]:
    return {str(x): i for i, x in enumerate(ids.tolist())}


def _top(scores: NDArray[np.float64], k: int, eligible: NDArray[np.bool_] | None = None) -> NDArray[np.int64]:
    masked = scores if eligible is None else np.where(eligible, scores, -np.inf)
    order = np.lexsort((np.arange(scores.size), -masked))
    n_eligible = scores.size if eligible is None else int(eligible.sum())
    return order[: min(k, n_eligible)].astype(np.int64)


def item_scores(arrays: dict[str, NDArray[Any]], user_id: str) -> NDArray[np.float64]:
    user = _rows(arrays["user_ids"])[user_id]
    u = arrays["user_factors"][user].astype(np.float64)
    return np.asarray(arrays["item_factors"].astype(np.float64) @ u)


def popularity_top(arrays: dict[str, NDArray[Any]], k: int) -> list[str]:
    popularity = arrays["item_popularity"].astype(np.float64)
    return [str(arrays["item_ids"][i]) for i in _top(popularity, k)]


def popularity_share(arrays: dict[str, NDArray[Any]], ids: Sequence[str]) -> list[float]:
    popularity = arrays["item_popularity"].astype(np.float64)
    rows = _rows(arrays["item_ids"])
    return [float(popularity[rows[i]] / popularity.sum()) for i in ids]


def user_personalization(
    arrays: dict[str, NDArray[Any]], user_id: str, k: int
) -> tuple[list[str], list[float]]:
    """Top k items by u.v and their softmax over the whole catalogue, in float64."""
    scores = item_scores(arrays, user_id)
    top = _top(scores, k)
    peak = scores.max()
    log_total = peak + np.log(np.exp(scores - peak).sum())
    return [str(arrays["item_ids"][i]) for i in top], np.exp(scores[top] - log_total).tolist()


def cosine_scores(arrays: dict[str, NDArray[Any]], item_id: str) -> NDArray[np.float64]:
    vectors = arrays["item_factors"].astype(np.float64)
    norms = np.linalg.norm(vectors, axis=1)
    unit = vectors / np.where(norms > 0, norms, 1.0)[:, None]
    return np.asarray(unit @ unit[_rows(arrays["item_ids"])[item_id]])


def related_items(arrays: dict[str, NDArray[Any]], item_id: str, k: int) -> list[str]:
    scores = cosine_scores(arrays, item_id)
    eligible = np.ones(scores.size, dtype=bool)
    eligible[_rows(arrays["item_ids"])[item_id]] = False
    return [str(arrays["item_ids"][i]) for i in _top(scores, k, eligible)]


def user_affinity(arrays: dict[str, NDArray[Any]], item_id: str) -> NDArray[np.float64]:
    v = arrays["item_factors"][_rows(arrays["item_ids"])[item_id]].astype(np.float64)
    return np.asarray(arrays["user_factors"].astype(np.float64) @ v)


def segment(arrays: dict[str, NDArray[Any]], item_id: str, k: int) -> list[str]:
    return [str(arrays["user_ids"][i]) for i in _top(user_affinity(arrays, item_id), k)]


def ranking(
    arrays: dict[str, NDArray[Any]], user_id: str, item_list: Sequence[str]
) -> tuple[list[str], list[float]]:
    """The deduplicated itemList by u.v (ties: lower catalogue row), softmax over its known items; unknown last, 0."""
    rows = _rows(arrays["item_ids"])
    unique = list(dict.fromkeys(item_list))
    known = [i for i in unique if i in rows]
    unknown = [i for i in unique if i not in rows]
    if user_id in _rows(arrays["user_ids"]):
        all_scores = item_scores(arrays, user_id)
        scores = np.array([all_scores[rows[i]] for i in known])
        weights = np.exp(scores - scores.max()) if known else scores
    else:  # cold user: popularity
        scores = np.array([float(arrays["item_popularity"][rows[i]]) for i in known])
        weights = scores if scores.sum() > 0 else np.ones(len(known))
    order = sorted(range(len(known)), key=lambda j: (-scores[j], rows[known[j]]))
    probabilities = weights / weights.sum() if known else weights
    return [known[j] for j in order] + unknown, [float(probabilities[j]) for j in order] + [0.0] * len(
        unknown
    )


def assert_same_ranking(got: Sequence[str], expected: Sequence[str], exact: dict[str, float]) -> None:
    """Same ids in the same order, except ids whose exact scores are within NEAR_TIE may swap."""
    assert len(got) == len(expected), (got, expected)
    assert len(set(got)) == len(got), f"duplicate ids in {got}"
    for position, (g, e) in enumerate(zip(got, expected, strict=True)):
        if g != e:
            assert abs(exact[g] - exact[e]) <= NEAR_TIE * (1 + abs(exact[e])), (
                f"position {position}: got {g} ({exact[g]}), expected {e} ({exact[e]})"
            )


def assert_scores_close(got: Sequence[float], expected: Sequence[float]) -> None:
    """Written scores (rounded to 7 decimals) against float64 ones: 1e-6 relative, plus the rounding."""
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert abs(g - e) <= 1e-6 * abs(e) + 5.000001e-8, (g, e)
