"""The contenders: recbatch and the tools a user would pick instead, behind one interface.

Each method is ``prepare(items, k, threads) -> search`` where ``search(queries)`` returns the
(n, k) item indices, best first. Building an index (copying the items into the tool's layout) is
done by ``prepare`` and timed apart from the searches. Every peer is optional: a method whose
package does not import is reported as skipped with the import error.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from limits import blas_limit
from numpy.typing import NDArray

F32 = NDArray[np.float32]
Search = Callable[[F32], NDArray[Any]]
Prepare = Callable[[F32, int, int], Search]

# Score blocks of the blocked NumPy / torch methods stay under this many bytes; a user
# would pick something of this order so that n x m scores never exist at once.
BLOCK_BYTES = 128 << 20


def _block_rows(n_items: int) -> int:
    return max(1, BLOCK_BYTES // (4 * n_items))


def _recbatch(items: F32, k: int, threads: int) -> Search:
    import recbatch

    index = recbatch.ItemIndex(items)

    def search(queries: F32) -> NDArray[Any]:
        return index.search(queries, k, threads=threads).indices

    return search


def _numpy(items: F32, k: int, threads: int) -> Search:
    """Blocked float32 matmul (BLAS, ``threads`` threads), argpartition, then sort of the k."""
    items_t = items.T  # a transposed view: BLAS reads it with the transpose flag, no copy
    m = items.shape[0]
    rows = _block_rows(m)

    def search(queries: F32) -> NDArray[Any]:
        out = np.empty((queries.shape[0], min(k, m)), dtype=np.int64)
        with blas_limit(threads):
            for start in range(0, queries.shape[0], rows):
                scores = queries[start : start + rows] @ items_t
                if k < m:
                    part = np.argpartition(scores, m - k, axis=1)[:, m - k :]
                else:
                    part = np.broadcast_to(np.arange(m), scores.shape).copy()
                best = np.take_along_axis(scores, part, axis=1)
                # Descending score, ties by lower index: lexsort's last key is the primary one.
                order = np.lexsort((part, -best), axis=1)
                out[start : start + rows] = np.take_along_axis(part, order, axis=1)
        return out

    return search


def _gemm_only(items: F32, k: int, threads: int) -> Search:
    """Not a top-k: the blocked float32 products of ``_numpy`` alone, no selection.

    This is the arithmetic ceiling of every two-pass (multiply, then select) peer on the
    workload's own shape. It returns an (n, 0) array.
    """
    items_t = items.T
    rows = _block_rows(items.shape[0])

    def search(queries: F32) -> NDArray[Any]:
        buf = np.empty((min(rows, queries.shape[0]), items.shape[0]), dtype=np.float32)
        with blas_limit(threads):
            for start in range(0, queries.shape[0], rows):
                block = queries[start : start + rows]
                np.matmul(block, items_t, out=buf[: block.shape[0]])
        return np.empty((queries.shape[0], 0), dtype=np.int64)

    return search


def _faiss(items: F32, k: int, threads: int) -> Search:
    import faiss

    index = faiss.IndexFlatIP(items.shape[1])
    index.add(items)

    def search(queries: F32) -> NDArray[Any]:
        # faiss's OpenMP pool, which its bundled OpenBLAS also uses for the score blocks.
        faiss.omp_set_num_threads(threads)
        _, indices = index.search(queries, k)
        return indices

    return search


def _scann(items: F32, k: int, threads: int) -> Search:
    from scann.scann_ops.py import scann_ops_pybind

    searcher = scann_ops_pybind.builder(items, k, "dot_product").score_brute_force().build()
    # search_batched_parallel runs on ScaNN's pool AND the calling thread: set_num_threads(t)
    # gives t + 1 runnable threads (seen by peers.py's thread sampler). So the pool gets one
    # thread less than asked, and one thread uses the serial entry point.
    searcher.set_num_threads(max(1, threads - 1))

    def search(queries: F32) -> NDArray[Any]:
        if threads > 1:
            indices, _ = searcher.search_batched_parallel(queries, final_num_neighbors=k)
        else:
            indices, _ = searcher.search_batched(queries, final_num_neighbors=k)
        return indices

    return search


def _implicit(items: F32, k: int, threads: int) -> Search:
    from implicit.cpu.topk import topk

    def search(queries: F32) -> NDArray[Any]:
        # implicit multiplies blocks of queries with NumPy's BLAS, then selects with its own
        # OpenMP loop; both get ``threads``. OpenBLAS's workers spin for a while after each
        # product, so during the selection up to threads + (threads - 1) threads are runnable:
        # that is how implicit runs when a user asks it for ``threads``.
        with blas_limit(threads):
            indices, _ = topk(items, queries, k, num_threads=threads)
        return indices

    return search


def _torch(items: F32, k: int, threads: int) -> Search:
    import torch

    items_t = torch.from_numpy(items).T  # shares the NumPy buffer
    rows = _block_rows(items.shape[0])
    kk = min(k, items.shape[0])

    def search(queries: F32) -> NDArray[Any]:
        torch.set_num_threads(threads)
        q = torch.from_numpy(queries)
        out = torch.empty((queries.shape[0], kk), dtype=torch.int64)
        with torch.inference_mode():
            for start in range(0, queries.shape[0], rows):
                scores = torch.mm(q[start : start + rows], items_t)
                out[start : start + rows] = torch.topk(scores, kk, dim=1, largest=True, sorted=True).indices
        return out.numpy()

    return search


@dataclass(frozen=True)
class Method:
    """A contender: how to prepare it and which package it needs."""

    name: str
    module: str  # imported to check availability and to read a version from
    prepare: Prepare
    note: str = ""

    def availability(self) -> tuple[bool, str]:
        """(importable, version or the reason it is not)."""
        try:
            mod = importlib.import_module(self.module)
        except Exception as exc:  # noqa: BLE001 - any import failure means "skip", with its reason
            return False, f"{type(exc).__name__}: {exc}"
        version = getattr(mod, "__version__", None)
        if version is None and self.module.startswith("scann"):
            version = _dist_version("scann")
        return True, str(version or _dist_version(self.module.split(".")[0]) or "?")


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("recbatch", "recbatch", _recbatch, "ItemIndex.search"),
        Method("numpy", "numpy", _numpy, "blocked matmul + argpartition + sort of k"),
        Method("faiss", "faiss", _faiss, "IndexFlatIP.search"),
        Method("scann", "scann.scann_ops.py.scann_ops_pybind", _scann, "exact brute force"),
        Method("implicit", "implicit.cpu.topk", _implicit, "implicit.cpu.topk.topk"),
        Method("torch", "torch", _torch, "blocked mm + topk"),
        Method("gemm-only", "numpy", _gemm_only, "NumPy's blocked matmul without selection (a limit)"),
    )
}


def import_faiss_with_coretype(coretype: str) -> None:
    """Import faiss with ``OPENBLAS_CORETYPE=coretype`` seen by its bundled OpenBLAS only.

    faiss-cpu 1.15.1 bundles OpenBLAS 0.3.15, which falls back to its generic Prescott (SSE3)
    kernels on CPUs newer than it knows (Sapphire Rapids here). OpenBLAS reads the variable
    once, when the library loads: NumPy's and SciPy's OpenBLAS are loaded already (peers.py
    imports them first), so setting it only around this import changes faiss's BLAS alone.
    """
    import sys

    if "faiss" in sys.modules:
        msg = "faiss is already imported: its OpenBLAS kernels can no longer be chosen"
        raise RuntimeError(msg)
    previous = os.environ.get("OPENBLAS_CORETYPE")
    os.environ["OPENBLAS_CORETYPE"] = coretype
    try:
        importlib.import_module("faiss")
    finally:
        if previous is None:
            del os.environ["OPENBLAS_CORETYPE"]
        else:
            os.environ["OPENBLAS_CORETYPE"] = previous


def openblas_overrides() -> dict[str, str]:
    """OpenBLAS variables that change which kernels every OpenBLAS in the process picks."""
    return {k: v for k, v in os.environ.items() if k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
