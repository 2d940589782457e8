"""recbatch: exact top-k recommendations and Amazon Personalize-style batch inference jobs.

``import recbatch`` loads only the scoring kernel; the job layer (boto3, SQLite, smart_open)
is imported on first use of :func:`client` or :func:`save_model`, so embedding the kernel in
Spark, Ray or Dask workers costs nothing more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from recbatch.ranking import CandidateRanker, RankedLists, rank_by_value
from recbatch.scoring import (
    ItemIndex,
    TopKResult,
    available_simd_levels,
    default_threads,
    simd_level,
    top_k,
)

if TYPE_CHECKING:
    import os

    from numpy.typing import ArrayLike

    from recbatch.jobs.client import Client

__version__ = "0.1.0"

__all__ = [
    "CandidateRanker",
    "ItemIndex",
    "RankedLists",
    "TopKResult",
    "__version__",
    "available_simd_levels",
    "client",
    "default_threads",
    "rank_by_value",
    "save_model",
    "simd_level",
    "top_k",
]


def client(home: str | os.PathLike[str] | None = None, **config: Any) -> Client:
    """A client shaped like ``boto3.client("personalize")`` over a recbatch home.

    See :func:`recbatch.jobs.client.client` for the options.
    """
    from recbatch.jobs.client import client as make_client

    return make_client(home, **config)


def save_model(path: str, **arrays: ArrayLike) -> None:
    """Write a model artifact (.npz) after validating it; see :mod:`recbatch.model`."""
    from recbatch.model import save_model as save

    save(path, **arrays)
