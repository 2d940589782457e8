"""The model artifact: save, load, validation messages, recipe needs, derived tables."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import recbatch
import recbatch.model
from recbatch.model import (
    Family,
    ModelError,
    load_model,
    recipe_family,
    required_arrays,
    save_model,
    synthetic_model,
    validate_model,
)
from tests.jobs.helpers import RECIPE, model_arrays


def _raw_npz(path: Path, **arrays: Any) -> str:
    """Write with numpy.savez directly, bypassing save_model's checks (as a foreign trainer would)."""
    with path.open("wb") as handle:
        np.savez(handle, **arrays)
    return str(path)


def test_round_trip(tmp_path: Path) -> None:
    arrays = model_arrays(20, 50, 8, seed=3)
    path = tmp_path / "m.npz"
    save_model(str(path), **arrays)
    model = load_model(str(path))
    assert model.n_items == 50 and model.n_users == 20
    assert model.item_id_list == [f"i{i}" for i in range(50)]
    assert model.user_rows["u7"] == 7 and model.item_rows["i49"] == 49
    np.testing.assert_array_equal(model.item_factors, arrays["item_factors"])
    np.testing.assert_array_equal(model.user_factors, arrays["user_factors"])
    np.testing.assert_array_equal(model.item_popularity, arrays["item_popularity"].astype(np.float64))
    # Only the artifact itself: the temporary file was renamed into place.
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]
    # It is a plain numpy.savez archive that loads without pickle.
    with np.load(path, allow_pickle=False) as raw:
        assert sorted(raw.files) == sorted(arrays)
        assert raw["item_ids"].dtype.kind == "U"
        assert raw["item_popularity"].dtype.kind == "i"


def test_indexes_pack_on_the_job_threads_and_match(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A job's thread count reaches the indexes it builds; the indexes are the same either way.
    path = tmp_path / "m.npz"
    save_model(str(path), **model_arrays(30, 40_000, 8, seed=5))
    asked: list[int | None] = []

    def recording_index(items: Any, *, threads: int | None = None) -> recbatch.ItemIndex:
        asked.append(threads)
        return recbatch.ItemIndex(items, threads=threads)

    monkeypatch.setattr(recbatch.model, "ItemIndex", recording_index)
    default, two = load_model(str(path)), load_model(str(path), threads=2)
    users = default.user_factors
    assert users is not None
    for name in ("item_index", "cosine_index"):
        want = getattr(default, name).search(users, 20, threads=1)
        got = getattr(two, name).search(users, 20, threads=1)
        np.testing.assert_array_equal(got.indices, want.indices)
        np.testing.assert_array_equal(got.scores, want.scores)
    assert asked == [None, 2, None, 2]


def test_save_accepts_lists_and_float64(tmp_path: Path) -> None:
    path = str(tmp_path / "m.npz")
    save_model(path, item_ids=["a", "b"], item_factors=[[1.0, 2.0], [3.0, 4.5]])
    model = load_model(path)
    assert model.item_factors is not None
    assert model.item_factors.dtype == np.float32
    assert model.item_id_list == ["a", "b"]
    assert model.user_ids is None and model.n_users == 0


def test_load_foreign_archive_with_float64_and_compression(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    np.savez_compressed(
        path,
        item_ids=np.array(["x", "y", "z"]),
        item_factors=np.eye(3),
        extra_metadata=np.array([1, 2]),  # unknown arrays in a file are ignored
    )
    model = load_model(str(path))
    assert model.item_factors is not None and model.item_factors.dtype == np.float32
    assert model.item_rows == {"x": 0, "y": 1, "z": 2}


def _bad(**changes: Any) -> dict[str, Any]:
    arrays: dict[str, Any] = model_arrays(4, 6, 3, seed=1)
    for name, value in changes.items():
        if value is None:
            del arrays[name]
        else:
            arrays[name] = value
    return arrays


FACTORS = np.ones((6, 3), dtype=np.float32)
NAN_ROW = FACTORS.copy()
NAN_ROW[4, 1] = np.nan

BAD = [
    ("no item ids", _bad(item_ids=None), "item_ids is missing"),
    ("int ids", _bad(item_ids=np.arange(6)), "item_ids must hold strings"),
    ("2-D ids", _bad(item_ids=np.array([["a", "b", "c"], ["d", "e", "f"]])), "item_ids must be a 1-D array"),
    ("duplicate ids", _bad(item_ids=np.array(["a", "b", "c", "b", "e", "f"])), "'b' appears more than once"),
    ("empty id", _bad(item_ids=np.array(["a", "", "c", "d", "e", "f"])), "row 1 has 0 characters"),
    ("long id", _bad(user_ids=np.array(["u", "v", "w", "x" * 257])), "user_ids must hold ids of 1 to 256"),
    (
        "int factors",
        _bad(item_factors=np.ones((6, 3), dtype=np.int32)),
        "item_factors must hold floating point",
    ),
    ("1-D factors", _bad(item_factors=np.ones(6, dtype=np.float32)), "item_factors must be a 2-D array"),
    (
        "row count",
        _bad(item_factors=np.ones((5, 3), dtype=np.float32)),
        "item_factors has 5 rows but item_ids has 6",
    ),
    ("zero dim", _bad(item_factors=np.ones((6, 0), dtype=np.float32)), "at least one column"),
    ("nan", _bad(item_factors=NAN_ROW), "item_factors must be finite: row 4"),
    ("overflow", _bad(user_factors=np.full((4, 3), 1e300)), "user_factors must be finite: row 0"),
    (
        "scores beyond float32",
        _bad(
            user_factors=np.array([[1, 0, 0], [0, 0, 0], [0, 0, 3e19], [0, 0, 0]], dtype=np.float32),
            item_factors=FACTORS * np.float32(1e19),
        ),
        "user_factors row 2 and item_factors row 0: their inner product may reach 5.2e+38",
    ),
    (
        "dim mismatch",
        _bad(user_factors=np.ones((4, 2), dtype=np.float32)),
        "user_factors has dim 2 but item_factors has dim 3",
    ),
    ("user ids alone", _bad(user_factors=None), "user_factors is missing: user_ids needs it"),
    ("user factors alone", _bad(user_ids=None), "user_ids is missing: user_factors needs it"),
    (
        "negative popularity",
        _bad(item_popularity=np.array([1, 2, -3, 4, 5, 6])),
        "item_popularity must be finite and >= 0: row 2",
    ),
    ("inf popularity", _bad(item_popularity=np.array([1, np.inf, 3, 4, 5, 6])), "row 1"),
    ("popularity shape", _bad(item_popularity=np.ones(5)), "item_popularity must have shape (6,)"),
    ("popularity strings", _bad(item_popularity=np.array(["1"] * 6)), "item_popularity must hold numbers"),
    (
        "no vectors",
        _bad(item_factors=None, user_ids=None, user_factors=None, item_popularity=None),
        "item_factors is missing",
    ),
]


@pytest.mark.parametrize(("arrays", "message"), [(a, m) for _, a, m in BAD], ids=[name for name, _, _ in BAD])
def test_invalid_artifacts(tmp_path: Path, arrays: dict[str, Any], message: str) -> None:
    # The same message whether the arrays come to save_model or in a file written by anyone.
    with pytest.raises(ModelError, match=None) as saved:
        save_model(str(tmp_path / "saved.npz"), **arrays)
    assert message in str(saved.value)
    assert not (tmp_path / "saved.npz").exists()
    path = _raw_npz(tmp_path / "raw.npz", **arrays)
    with pytest.raises(ModelError) as loaded:
        load_model(path)
    assert message in str(loaded.value)


def test_save_rejects_unknown_array_names(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown array 'item_factor'"):
        save_model(str(tmp_path / "m.npz"), item_ids=["a"], item_factor=[[1.0]])


def test_pickled_ids_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    np.savez(path, item_ids=np.array(["a", "b"], dtype=object), item_factors=np.ones((2, 2), np.float32))
    with pytest.raises(ModelError, match="item_ids is stored as Python objects"):
        load_model(str(path))


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_model(str(tmp_path / "missing.npz"))
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ModelError, match=r"not an \.npz archive"):
        load_model(str(tmp_path / "text.npz"))
    np.save(tmp_path / "single.npy", np.ones(3))
    with pytest.raises(ModelError, match=r"single \.npy array"):
        load_model(str(tmp_path / "single.npy"))
    # A truncated archive (a copy that stopped half way).
    good = tmp_path / "good.npz"
    save_model(str(good), **model_arrays(3, 5, 2))
    (tmp_path / "cut.npz").write_bytes(good.read_bytes()[:200])
    with pytest.raises(ModelError):
        load_model(str(tmp_path / "cut.npz"))
    assert zipfile.is_zipfile(good)


def test_recipes() -> None:
    assert recipe_family(RECIPE["user"]) is Family.USER_PERSONALIZATION
    assert recipe_family(RECIPE["user2"]) is Family.USER_PERSONALIZATION
    assert recipe_family(RECIPE["sims"]) is recipe_family(RECIPE["similar"]) is Family.RELATED_ITEMS
    assert recipe_family(RECIPE["ranking2"]) is Family.PERSONALIZED_RANKING
    assert recipe_family(RECIPE["popular"]) is Family.POPULAR_ITEMS
    assert recipe_family(RECIPE["affinity"]) is Family.USER_SEGMENTATION
    assert recipe_family("arn:aws-cn:personalize:::recipe/aws-sims") is Family.RELATED_ITEMS
    assert required_arrays(RECIPE["popular"]) == ("item_ids", "item_popularity")
    with pytest.raises(ModelError, match="'aws-trending-now' is not supported; supported recipes: aws-item"):
        recipe_family("arn:aws:personalize:::recipe/aws-trending-now")
    with pytest.raises(ModelError, match="is not a recipe ARN"):
        recipe_family("aws-sims")


def test_validate_model_checks_recipe_needs(tmp_path: Path) -> None:
    items_only = str(tmp_path / "items.npz")
    save_model(items_only, item_ids=["a", "b"], item_factors=np.eye(2, dtype=np.float32))
    validate_model(items_only, RECIPE["sims"])
    for recipe in ("user", "ranking", "affinity"):
        with pytest.raises(ModelError, match="user_ids is missing: recipe 'aws-"):
            validate_model(items_only, RECIPE[recipe])
    with pytest.raises(
        ModelError, match="item_popularity is missing: recipe 'aws-popularity-count' needs it"
    ):
        validate_model(items_only, RECIPE["popular"])
    popularity_only = str(tmp_path / "popularity.npz")
    save_model(popularity_only, item_ids=["a", "b"], item_popularity=[3, 5])
    validate_model(popularity_only, RECIPE["popular"])
    with pytest.raises(ModelError, match="item_factors is missing: recipe 'aws-sims' needs it"):
        validate_model(popularity_only, RECIPE["sims"])
    with pytest.raises(ModelError, match="not supported"):
        validate_model(items_only, "arn:aws:personalize:::recipe/aws-nope")


def test_derived_tables(tmp_path: Path) -> None:
    path = str(tmp_path / "m.npz")
    factors = np.array([[3.0, 4.0], [0.0, 0.0], [0.0, -2.0]], dtype=np.float32)
    save_model(path, item_ids=["a", "b", "c"], item_factors=factors, item_popularity=[5, 7, 5])
    model = load_model(path)
    np.testing.assert_allclose(model.unit_item_factors, [[0.6, 0.8], [0.0, 0.0], [0.0, -1.0]], rtol=1e-6)
    # Most popular first; the tie between a and c goes to the lower row.
    assert model.popularity_order.tolist() == [1, 0, 2]
    assert model.cosine_index.n_items == 3 and model.item_index.dim == 2


def test_synthetic_model_is_valid_and_reproducible(tmp_path: Path) -> None:
    arrays = synthetic_model(30, 40, 8, seed=5)
    assert arrays["user_factors"].shape == (30, 8) and arrays["item_factors"].shape == (40, 8)
    assert arrays["item_factors"].dtype == np.float32
    again = synthetic_model(30, 40, 8, seed=5)
    for name, value in arrays.items():
        np.testing.assert_array_equal(value, again[name])
    assert not np.array_equal(synthetic_model(30, 40, 8, seed=6)["item_factors"], arrays["item_factors"])
    path = str(tmp_path / "m.npz")
    save_model(path, **arrays)
    for recipe in RECIPE.values():
        validate_model(path, recipe)
    # u.v is spread out (about unit variance), so softmax scores are not all alike.
    scores = arrays["user_factors"].astype(np.float64) @ arrays["item_factors"].T.astype(np.float64)
    assert 0.5 < scores.std() < 2.0


def test_file_uris(tmp_path: Path) -> None:
    arrays = model_arrays(3, 5, 2)
    uri = f"file://{tmp_path}/nested/m.npz"
    save_model(uri, **arrays)  # parent folders are created
    assert (tmp_path / "nested" / "m.npz").is_file()
    model = load_model(uri)  # read through the I/O layer
    assert model.user_id_list == ["u0", "u1", "u2"]
    with pytest.raises(ModelError, match="cannot read the model file://"):
        load_model(f"file://{tmp_path}/missing.npz")
