# Type stub for the compiled extension (cpp/bindings/module.cpp).
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__version__: str

def detected_simd_level() -> str: ...
def available_simd_levels() -> list[str]: ...
def default_thread_count() -> int: ...
def first_invalid_id(values: list[object], max_length: int) -> int: ...
def scan_id_lines(
    buffer: bytes,
    line_ends: NDArray[np.int64],
    id_field: str,
    list_field: str,
    max_id_chars: int,
    max_list: int,
) -> tuple[list[str | None], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]: ...
def rank_lists(
    queries: NDArray[np.float32] | None,
    items: NDArray[np.float32] | None,
    item_values: NDArray[np.float64] | None,
    offsets: NDArray[np.int64],
    entries: NDArray[np.int64],
    threads: int,
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]: ...
def rank_ranking_lines(
    users: IdIndex,
    items: IdIndex,
    user_factors: NDArray[np.float32],
    item_factors: NDArray[np.float32],
    popularity: NDArray[np.float64] | None,
    buffer: bytes,
    line_ends: NDArray[np.int64],
    max_id_chars: int,
    max_list: int,
    threads: int,
) -> tuple[bytes, NDArray[np.uint8], NDArray[np.int64]]: ...

class ItemIndex:
    def __init__(self, items: NDArray[np.float32], threads: int = 1) -> None: ...
    @property
    def n_items(self) -> int: ...
    @property
    def dim(self) -> int: ...
    @property
    def max_norm(self) -> float: ...
    def items(self) -> NDArray[np.float32]: ...
    def search(
        self,
        queries: NDArray[np.float32],
        k: int,
        exclude_indptr: NDArray[np.int64] | NDArray[np.int32] | None,
        exclude_indices: NDArray[np.int64] | NDArray[np.int32] | None,
        allow: NDArray[np.uint8] | None,
        threads: int,
        logsumexp: bool,
        simd: str,
        stats: dict[str, int] | None = None,
    ) -> tuple[NDArray[np.int64], NDArray[np.float32], NDArray[np.float64] | None]: ...

class IdIndex:
    def __init__(self, ids: Sequence[str]) -> None: ...
    def __len__(self) -> int: ...
    def rows(self, keys: Sequence[str]) -> NDArray[np.int64]: ...
    def rows_in(
        self, buffer: bytes, starts: NDArray[np.int64], lengths: NDArray[np.int64]
    ) -> NDArray[np.int64]: ...

class RowTexts:
    def __init__(self, texts: Sequence[bytes]) -> None: ...
    @staticmethod
    def json_strings(ids: Sequence[str]) -> RowTexts: ...
    def __len__(self) -> int: ...
    def format_rows(
        self,
        indices: NDArray[np.int64],
        scores: NDArray[np.float64] | None,
        lead: bytes,
        prefixes: Sequence[bytes] | None,
        head: bytes,
        middle: bytes,
        tail: bytes,
        extra: RowTexts | None,
    ) -> list[bytes]: ...
