"""The model artifact of a solution version: one ``.npz`` file of ids and factor arrays.

Format (any trainer can write it with ``numpy.savez``)::

    item_ids         (m,)   strings, unique, 1..256 characters each
    item_factors     (m, d) floating point (stored or converted to float32), finite
    user_ids         (n,)   strings          } for recipes that score users
    user_factors     (n, d) floating point   } (same d as item_factors)
    item_popularity  (m,)   numbers >= 0     optional: cold start and aws-popularity-count

The file is always read with ``allow_pickle=False``: string ids must be stored as a NumPy
string array (``np.asarray(ids, dtype=str)``), never as Python objects.
"""

from __future__ import annotations

import enum
import io
import os
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from recbatch.ids import IdIndex
from recbatch.ranking import CandidateRanker
from recbatch.scoring import ItemIndex

__all__ = [
    "ARRAY_NAMES",
    "MAX_ID_LENGTH",
    "RECIPES",
    "Family",
    "Model",
    "ModelError",
    "load_model",
    "recipe_family",
    "recipe_name",
    "required_arrays",
    "save_model",
    "synthetic_model",
    "validate_model",
]

#: The longest user or item id, in characters (Personalize's limit).
MAX_ID_LENGTH = 256

#: Every array the artifact may hold, in documentation order.
ARRAY_NAMES = ("item_ids", "item_factors", "user_ids", "user_factors", "item_popularity")

# Scores (user . item) must stay finite in float32, with room for the rounding of a dot
# product's partial sums (as recbatch.scoring checks queries).
_SCORE_LIMIT = float(np.finfo(np.float32).max) * (1.0 - 2.0**-8)
# Rows checked for finiteness at a time, so that validation never doubles the model's memory.
_FINITE_CHECK_ROWS = 65_536


class ModelError(ValueError):
    """The artifact is missing, unreadable or invalid; the message names the array and the problem."""


class Family(str, enum.Enum):
    """The recipe families: each has its own input fields, output object and scoring."""

    USER_PERSONALIZATION = "USER_PERSONALIZATION"
    POPULAR_ITEMS = "POPULAR_ITEMS"
    RELATED_ITEMS = "RELATED_ITEMS"
    PERSONALIZED_RANKING = "PERSONALIZED_RANKING"
    USER_SEGMENTATION = "USER_SEGMENTATION"


#: Supported recipe names (the part after ``arn:aws:personalize:::recipe/``) and their family.
RECIPES: Mapping[str, Family] = {
    "aws-user-personalization": Family.USER_PERSONALIZATION,
    "aws-user-personalization-v2": Family.USER_PERSONALIZATION,
    "aws-popularity-count": Family.POPULAR_ITEMS,
    "aws-sims": Family.RELATED_ITEMS,
    "aws-similar-items": Family.RELATED_ITEMS,
    "aws-personalized-ranking": Family.PERSONALIZED_RANKING,
    "aws-personalized-ranking-v2": Family.PERSONALIZED_RANKING,
    "aws-item-affinity": Family.USER_SEGMENTATION,
}

_USERS_AND_ITEMS = ("item_ids", "item_factors", "user_ids", "user_factors")
_NEEDS: Mapping[Family, tuple[str, ...]] = {
    Family.USER_PERSONALIZATION: _USERS_AND_ITEMS,
    # Popularity needs no vectors at all; the item ids and their counts suffice.
    Family.POPULAR_ITEMS: ("item_ids", "item_popularity"),
    Family.RELATED_ITEMS: ("item_ids", "item_factors"),
    Family.PERSONALIZED_RANKING: _USERS_AND_ITEMS,
    Family.USER_SEGMENTATION: _USERS_AND_ITEMS,
}


def recipe_name(recipe_arn: str) -> str:
    """The recipe name of ``arn:<partition>:personalize:::recipe/<name>``; ModelError otherwise."""
    parts = recipe_arn.split(":", 5)
    if (
        len(parts) != 6
        or parts[0] != "arn"
        or parts[2] != "personalize"
        or not parts[5].startswith("recipe/")
    ):
        msg = f"recipeArn {recipe_arn!r} is not a recipe ARN (arn:aws:personalize:::recipe/<name>)"
        raise ModelError(msg)
    return parts[5][len("recipe/") :]


def recipe_family(recipe_arn: str) -> Family:
    """The family of a supported recipe ARN; ModelError naming the supported recipes otherwise."""
    name = recipe_name(recipe_arn)
    try:
        return RECIPES[name]
    except KeyError:
        msg = f"recipe {name!r} is not supported; supported recipes: {', '.join(sorted(RECIPES))}"
        raise ModelError(msg) from None


def required_arrays(recipe_arn: str) -> tuple[str, ...]:
    """The arrays an artifact must hold to serve ``recipe_arn``."""
    return _NEEDS[recipe_family(recipe_arn)]


# --------------------------------------------------------------------------------------------
# Validation


def _ids(name: str, value: ArrayLike) -> tuple[NDArray[np.str_], IdIndex]:
    """Validated string ids and their id -> row lookup (built here once, reused by Model)."""
    array = np.asarray(value)
    if array.dtype.kind == "O" and all(isinstance(x, str) for x in array.ravel().tolist()):
        array = array.astype(str)  # a list of Python strings that NumPy kept as objects
    if array.dtype.kind != "U":
        msg = (
            f"{name} must hold strings (a NumPy str array), got dtype {array.dtype}; "
            f"convert with np.asarray(ids).astype(str)"
        )
        raise ModelError(msg)
    if array.ndim != 1:
        msg = f"{name} must be a 1-D array, got shape {array.shape}"
        raise ModelError(msg)
    if array.shape[0] == 0:
        msg = f"{name} must hold at least one id"
        raise ModelError(msg)
    lengths = np.char.str_len(array)
    bad = np.flatnonzero((lengths == 0) | (lengths > MAX_ID_LENGTH))
    if bad.size:
        row = int(bad[0])
        msg = (
            f"{name} must hold ids of 1 to {MAX_ID_LENGTH} characters: row {row} has "
            f"{int(lengths[row])} characters"
        )
        raise ModelError(msg)
    as_list: list[str] = array.tolist()
    try:
        lookup = IdIndex(as_list)
    except ValueError:  # a repeat: find the first, by id
        seen: set[str] = set()
        for row, id_ in enumerate(as_list):
            if id_ in seen:
                msg = f"{name} must be unique: {id_!r} appears more than once (again at row {row})"
                raise ModelError(msg) from None
            seen.add(id_)
        raise
    return array, lookup


def _factors(name: str, value: ArrayLike, n_rows: int, ids_name: str) -> NDArray[np.float32]:
    array = np.asarray(value)
    if array.dtype.kind != "f":
        msg = f"{name} must hold floating point numbers (float32), got dtype {array.dtype}"
        raise ModelError(msg)
    if array.ndim != 2:
        msg = f"{name} must be a 2-D array (rows x dim), got {array.ndim} dimension(s)"
        raise ModelError(msg)
    if array.shape[0] != n_rows:
        msg = f"{name} has {array.shape[0]} rows but {ids_name} has {n_rows} ids"
        raise ModelError(msg)
    if array.shape[1] < 1:
        msg = f"{name} must have at least one column (dim >= 1)"
        raise ModelError(msg)
    with np.errstate(over="ignore"):  # values beyond float32's range become inf, reported below
        matrix = np.ascontiguousarray(array, dtype=np.float32)
    for start in range(0, n_rows, _FINITE_CHECK_ROWS):
        block = matrix[start : start + _FINITE_CHECK_ROWS]
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            row = start + int(np.flatnonzero(~finite)[0])
            msg = f"{name} must be finite: row {row} holds NaN or infinity"
            if array.dtype != np.float32:
                msg += " (after conversion to float32)"
            raise ModelError(msg)
    return matrix


def _largest_norm(matrix: NDArray[np.float32]) -> tuple[float, int]:
    """The largest row norm (in float64, where squares cannot overflow) and its row.

    A few MB of float64 at a time: a job loads its model, and its peak memory should not grow by
    a big temporary (65,536 rows at a time added 46 MiB to a ranking job's peak).
    """
    best, row = 0.0, 0
    rows = max(1, (4 << 20) // (8 * matrix.shape[1]))
    for start in range(0, matrix.shape[0], rows):
        block = matrix[start : start + rows].astype(np.float64)
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        if norms.size and float(norms.max()) > best:
            best, row = float(norms.max()), start + int(norms.argmax())
    return best, row


def _check_score_range(users: NDArray[np.float32], items: NDArray[np.float32]) -> None:
    """ModelError where a user's inner product with an item could overflow float32."""
    user_norm, user_row = _largest_norm(users)
    item_norm, item_row = _largest_norm(items)
    if user_norm * item_norm > _SCORE_LIMIT:
        msg = (
            f"user_factors row {user_row} and item_factors row {item_row}: their inner product may reach "
            f"{user_norm * item_norm:.3g} (the product of their norms), beyond float32's largest value "
            f"{float(np.finfo(np.float32).max):.3g}; scale the factors down"
        )
        raise ModelError(msg)


def _popularity(value: ArrayLike, n_items: int) -> NDArray[np.float64]:
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        msg = f"item_popularity must hold numbers, got dtype {array.dtype}"
        raise ModelError(msg)
    if array.shape != (n_items,):
        msg = f"item_popularity must have shape ({n_items},) like item_ids, got {array.shape}"
        raise ModelError(msg)
    popularity = array.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(popularity) | (popularity < 0))
    if bad.size:
        row = int(bad[0])
        msg = f"item_popularity must be finite and >= 0: row {row} is {array[row]!r}"
        raise ModelError(msg)
    return popularity


class _Checked:
    """The validated, normalised arrays plus the id maps built while checking them."""

    def __init__(self, arrays: Mapping[str, ArrayLike]) -> None:
        if "item_ids" not in arrays:
            msg = "item_ids is missing: every model needs the item ids"
            raise ModelError(msg)
        self.item_ids, self.item_lookup = _ids("item_ids", arrays["item_ids"])
        m = self.item_ids.shape[0]
        self.item_factors: NDArray[np.float32] | None = None
        if "item_factors" in arrays:
            self.item_factors = _factors("item_factors", arrays["item_factors"], m, "item_ids")
        has_user_ids, has_user_factors = "user_ids" in arrays, "user_factors" in arrays
        if has_user_ids != has_user_factors:
            present, missing = ("user_ids", "user_factors") if has_user_ids else ("user_factors", "user_ids")
            msg = f"{missing} is missing: {present} needs it"
            raise ModelError(msg)
        self.user_ids: NDArray[np.str_] | None = None
        self.user_lookup = IdIndex([])
        self.user_factors: NDArray[np.float32] | None = None
        if has_user_ids:
            self.user_ids, self.user_lookup = _ids("user_ids", arrays["user_ids"])
            self.user_factors = _factors(
                "user_factors", arrays["user_factors"], self.user_ids.shape[0], "user_ids"
            )
            if self.item_factors is None:
                msg = "item_factors is missing: user_factors needs item vectors to score against"
                raise ModelError(msg)
            if self.user_factors.shape[1] != self.item_factors.shape[1]:
                msg = (
                    f"user_factors has dim {self.user_factors.shape[1]} but item_factors has dim "
                    f"{self.item_factors.shape[1]}: they must match"
                )
                raise ModelError(msg)
            _check_score_range(self.user_factors, self.item_factors)
        self.item_popularity: NDArray[np.float64] | None = None
        if "item_popularity" in arrays:
            self.item_popularity = _popularity(arrays["item_popularity"], m)
        if self.item_factors is None and self.item_popularity is None:
            msg = "item_factors is missing: a model needs item_factors (or item_popularity alone)"
            raise ModelError(msg)

    def require(self, recipe_arn: str) -> None:
        """ModelError naming the first array ``recipe_arn`` needs that this model lacks."""
        for name in required_arrays(recipe_arn):
            if getattr(self, name) is None:
                msg = f"{name} is missing: recipe {recipe_name(recipe_arn)!r} needs it"
                raise ModelError(msg)


# --------------------------------------------------------------------------------------------
# The loaded model


class Model:
    """A validated model, ready for scoring. Build it with :func:`load_model`.

    Indexes and lookup tables are built on first use, so a job pays only for what its recipe needs.
    """

    def __init__(self, checked: _Checked, *, threads: int | None = None) -> None:
        #: Threads that pack the indexes (None: the CPUs this process may run on).
        self.threads = threads
        self.item_ids: NDArray[np.str_] = checked.item_ids
        self.item_factors: NDArray[np.float32] | None = checked.item_factors
        self.user_ids: NDArray[np.str_] | None = checked.user_ids
        self.user_factors: NDArray[np.float32] | None = checked.user_factors
        self.item_popularity: NDArray[np.float64] | None = checked.item_popularity
        #: id -> row of item_ids / user_ids, for many ids at once (built during validation).
        self.item_lookup: IdIndex = checked.item_lookup
        self.user_lookup: IdIndex = checked.user_lookup

    @property
    def n_items(self) -> int:
        return int(self.item_ids.shape[0])

    @property
    def n_users(self) -> int:
        return 0 if self.user_ids is None else int(self.user_ids.shape[0])

    @cached_property
    def item_id_list(self) -> list[str]:
        """Item ids as Python strings (row -> id), for writing output."""
        ids: list[str] = self.item_ids.tolist()
        return ids

    @cached_property
    def user_id_list(self) -> list[str]:
        """User ids as Python strings (row -> id), for writing output."""
        ids: list[str] = [] if self.user_ids is None else self.user_ids.tolist()
        return ids

    @cached_property
    def item_rows(self) -> dict[str, int]:
        """Item id -> row as a dict (built on first use; the jobs use ``item_lookup``)."""
        return {id_: row for row, id_ in enumerate(self.item_id_list)}

    @cached_property
    def user_rows(self) -> dict[str, int]:
        """User id -> row as a dict (built on first use; the jobs use ``user_lookup``)."""
        return {id_: row for row, id_ in enumerate(self.user_id_list)}

    def _need(self, value: NDArray[Any] | None, name: str) -> NDArray[Any]:
        if value is None:
            msg = f"{name} is missing from this model"
            raise ModelError(msg)
        return value

    @cached_property
    def item_index(self) -> ItemIndex:
        """Inner-product index over the item vectors (personalization)."""
        return ItemIndex(self._need(self.item_factors, "item_factors"), threads=self.threads)

    @cached_property
    def item_ranker(self) -> CandidateRanker:
        """Ranks given item lists by the inner products with user vectors (personalized ranking)."""
        return CandidateRanker(self._need(self.item_factors, "item_factors"))

    @cached_property
    def user_index(self) -> ItemIndex:
        """Inner-product index over the user vectors (segments: users with the highest affinity)."""
        return ItemIndex(self._need(self.user_factors, "user_factors"), threads=self.threads)

    @cached_property
    def unit_item_factors(self) -> NDArray[np.float32]:
        """Item vectors scaled to unit length; a zero vector stays zero (similarity 0 to all)."""
        factors = self._need(self.item_factors, "item_factors")
        norms = np.linalg.norm(factors.astype(np.float64), axis=1)
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return np.ascontiguousarray(factors * scale[:, None].astype(np.float32), dtype=np.float32)

    @cached_property
    def cosine_index(self) -> ItemIndex:
        """Index over unit item vectors: inner product = cosine similarity (related items)."""
        return ItemIndex(self.unit_item_factors, threads=self.threads)

    @cached_property
    def popularity_order(self) -> NDArray[np.int64]:
        """Item rows by popularity, most popular first; ties by the lower row."""
        popularity = self._need(self.item_popularity, "item_popularity")
        return np.argsort(-popularity, kind="stable").astype(np.int64)


# --------------------------------------------------------------------------------------------
# Reading and writing


def _read_remote(path: str) -> bytes:
    from recbatch.jobs import io as jobio  # lazy: the jobs package imports this module

    try:
        return jobio.read_bytes(path)
    except jobio.JobIOError as exc:
        msg = f"cannot read the model {path}: {exc}"
        raise ModelError(msg) from None


def _open_npz(path: str) -> Mapping[str, Any]:
    """The archive's arrays by name, read with allow_pickle=False."""
    if "://" in path:
        return _read_npz(io.BytesIO(_read_remote(path)), path)
    try:
        handle = Path(path).open("rb")  # noqa: SIM115 - closed below; ours, whatever np.load does on bad input
    except FileNotFoundError:
        msg = f"the model file {path} does not exist"
        raise ModelError(msg) from None
    except OSError as exc:
        msg = f"the model file {path} cannot be opened: {exc}"
        raise ModelError(msg) from None
    with handle:
        return _read_npz(handle, path)


def _read_npz(source: IO[bytes], path: str) -> Mapping[str, Any]:
    try:
        loaded = np.load(source, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        msg = f"the model file {path} is not an .npz archive written by numpy.savez ({exc})"
        raise ModelError(msg) from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        msg = f"the model file {path} is a single .npy array, not an .npz archive written by numpy.savez"
        raise ModelError(msg)
    arrays: dict[str, Any] = {}
    with loaded:
        for name in ARRAY_NAMES:
            if name not in loaded.files:
                continue
            try:
                arrays[name] = loaded[name]
            except ValueError as exc:
                if "allow_pickle" in str(exc):
                    msg = (
                        f"{name} is stored as Python objects (pickle), which recbatch never loads; "
                        f"save it as a NumPy str array, e.g. np.asarray(ids, dtype=str)"
                    )
                    raise ModelError(msg) from None
                msg = f"{name} cannot be read from {path}: {exc}"
                raise ModelError(msg) from None
            except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
                msg = f"{name} cannot be read from {path}: {exc}"
                raise ModelError(msg) from None
    return arrays


def load_model(path: str, *, recipe_arn: str | None = None, threads: int | None = None) -> Model:
    """Read and validate the artifact at ``path`` (local path, file://, s3:// or http(s)://).

    With ``recipe_arn``, also check that the model holds every array that recipe needs.
    ``threads`` pack its indexes when a job first needs them (None: every usable CPU).
    Raises ModelError naming the array and the problem.
    """
    checked = _Checked(_open_npz(path))
    if recipe_arn is not None:
        checked.require(recipe_arn)
    return Model(checked, threads=threads)


def validate_model(path: str, recipe_arn: str) -> None:
    """Check that ``path`` is a valid artifact for ``recipe_arn``; ModelError otherwise."""
    recipe_family(recipe_arn)  # an unsupported recipe fails before the file is read
    load_model(path, recipe_arn=recipe_arn)


def save_model(path: str, **arrays: ArrayLike) -> None:
    """Validate ``arrays`` and write them as one ``.npz`` artifact (numpy.savez) at ``path``.

    ``path`` is a local path (written beside and renamed, so a reader never sees half a file)
    or an ``s3://`` URI. Lists of strings are accepted for the id arrays; factors are stored
    as float32. Unknown array names are rejected (they are usually typos).
    """
    unknown = sorted(set(arrays) - set(ARRAY_NAMES))
    if unknown:
        msg = f"unknown array {unknown[0]!r}; a model holds some of: {', '.join(ARRAY_NAMES)}"
        raise ModelError(msg)
    checked = _Checked(arrays)
    # Any: numpy's stubs would match **payload against savez's allow_pickle flag.
    payload: dict[str, Any] = {"item_ids": checked.item_ids}
    for name in ARRAY_NAMES[1:]:
        value = getattr(checked, name)
        if value is not None:
            payload[name] = value
    if "item_popularity" in arrays:
        payload["item_popularity"] = np.asarray(arrays["item_popularity"])  # integer counts stay integers
    if "://" in path and not path.startswith("file://"):
        from recbatch.jobs import io as jobio  # lazy: the jobs package imports this module

        buffer = io.BytesIO()
        np.savez(buffer, **payload)
        with jobio.OutputObject(path) as out:
            out.write(buffer.getvalue())
        return
    local = Path(path.removeprefix("file://"))
    local.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{local.name}.", suffix=".tmp", dir=local.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **payload)
        Path(tmp).replace(local)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def synthetic_model(n_users: int, n_items: int, dim: int, seed: int = 0) -> dict[str, NDArray[Any]]:
    """Arrays of a random model (for the demo, tests and benchmarks): ``save_model(path, **arrays)``.

    Ids are ``"u<row>"`` and ``"i<row>"``. Factors are Gaussian with scores u.v of unit variance;
    popularity is a long-tailed count per item.
    """
    rng = np.random.default_rng(seed)
    scale = dim**-0.25  # so that u.v has variance 1 whatever dim is
    item_factors = (rng.standard_normal((n_items, dim)) * scale).astype(np.float32)
    user_factors = (rng.standard_normal((n_users, dim)) * scale).astype(np.float32)
    rank = rng.permutation(n_items)
    popularity = rng.poisson(10_000.0 / (1.0 + rank) ** 0.8).astype(np.int64)
    return {
        "item_ids": np.array([f"i{i}" for i in range(n_items)], dtype=str),
        "item_factors": item_factors,
        "user_ids": np.array([f"u{u}" for u in range(n_users)], dtype=str),
        "user_factors": user_factors,
        "item_popularity": popularity,
    }
