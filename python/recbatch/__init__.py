"""recbatch: exact top-k recommendations and Amazon Personalize-style batch inference jobs."""

from __future__ import annotations

from recbatch.scoring import (
    ItemIndex,
    TopKResult,
    available_simd_levels,
    default_threads,
    simd_level,
    top_k,
)

__version__ = "0.1.0"

__all__ = [
    "ItemIndex",
    "TopKResult",
    "__version__",
    "available_simd_levels",
    "default_threads",
    "simd_level",
    "top_k",
]
