"""Benchmark workloads shared by ``peers.py`` and ``bench_kernel.py``.

Two kinds of arrays:

* Gaussian workloads (W1, W2, W3): seeded standard-normal float32 queries and items. Their
  norms are nearly equal, which is the hard case for any pruning by norm.
* REAL: the factors of a recommender trained on a synthetic interaction log, built here:
  Zipf-distributed item popularity and user activity, taste clusters, and implicit-feedback
  ALS (Hu, Koren & Volinsky's confidence-weighted loss) solved by a few conjugate-gradient
  steps per half-iteration, all in NumPy/SciPy. Popular items end up with long vectors, as in
  trained models, so norm-based bounds have something to work with.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

F32 = NDArray[np.float32]


@dataclass(frozen=True)
class Workload:
    """A benchmark shape: n queries scored against m items of dimension d, k kept per query."""

    name: str
    n: int
    m: int
    d: int
    k: int

    def scaled(self, scale: float) -> Workload:
        """The same workload with the number of queries multiplied by ``scale`` (at least 1)."""
        return Workload(self.name, max(1, round(self.n * scale)), self.m, self.d, self.k)

    @property
    def flops(self) -> float:
        """Multiply-adds counted as two flops: 2 * n * m * d."""
        return 2.0 * self.n * self.m * self.d


WORKLOADS: dict[str, Workload] = {
    "W1": Workload("W1", 100_000, 100_000, 64, 25),
    "W2": Workload("W2", 20_000, 1_000_000, 128, 100),
    "W3": Workload("W3", 200_000, 20_000, 32, 10),
    # The synthetic trained model: users are the queries, items the catalogue.
    "REAL": Workload("REAL", 100_000, 100_000, 64, 25),
}


def gaussian_arrays(workload: Workload, seed: int = 0) -> tuple[F32, F32]:
    """Seeded standard-normal (queries, items) in float32, C-contiguous.

    Items are drawn first from their own stream, so scaling the number of queries never
    changes the items, and the first queries of a scaled run are those of the full run.
    """
    items = np.random.default_rng([seed, 1]).standard_normal((workload.m, workload.d), dtype=np.float32)
    queries = np.random.default_rng([seed, 2]).standard_normal((workload.n, workload.d), dtype=np.float32)
    return queries, items


def seen_items(n: int, m: int, per_query: int, seed: int = 5) -> sp.csr_matrix:
    """About ``per_query`` random already-seen items per query, as the exclusion matrix.

    Drawn with replacement, then de-duplicated, so rows hold slightly fewer on average.
    """
    rng = np.random.default_rng(seed)
    cols = rng.integers(0, m, (n, per_query))
    rows = np.repeat(np.arange(n), per_query)
    matrix = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols.ravel())), shape=(n, m))
    matrix.sum_duplicates()
    return matrix


# --------------------------------------------------------------------------------------
# The synthetic trained model (REAL)


@dataclass(frozen=True)
class RealModelConfig:
    """Knobs of the synthetic interaction log and of the ALS factorisation."""

    n_users: int = 100_000
    n_items: int = 100_000
    dim: int = 64
    mean_activity: float = 30.0  # interactions per user, on average, before de-duplication
    item_zipf: float = 1.0  # popularity of the item of rank r is proportional to (r + 1) ** -item_zipf
    user_zipf: float = 0.8  # activity of the user of rank r is proportional to (r + 1) ** -user_zipf
    n_clusters: int = 64  # taste clusters: each user prefers one, each item belongs to one
    in_cluster: float = 0.6  # share of a user's interactions drawn from their own cluster
    alpha: float = 5.0  # confidence c = 1 + alpha * count
    regularization: float = 1.0
    iterations: int = 6
    cg_steps: int = 3
    seed: int = 0

    def scaled(self, scale: float) -> RealModelConfig:
        """Users and items both multiplied by ``scale``; everything else kept."""
        return RealModelConfig(
            **{
                **self.__dict__,
                "n_users": max(10, round(self.n_users * scale)),
                "n_items": max(10, round(self.n_items * scale)),
            }
        )

    def key(self) -> str:
        """A short digest naming this configuration (for the cache file)."""
        text = repr(sorted(self.__dict__.items())) + "|v1"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RealModel:
    """User and item factors plus what was learnt about them while building."""

    users: F32
    items: F32
    interactions: sp.csr_matrix  # (n_users, n_items) interaction counts
    seconds: float  # time spent building (0 when loaded from the cache)


def _zipf_weights(n: int, exponent: float) -> NDArray[np.float64]:
    weights = (np.arange(n, dtype=np.float64) + 1.0) ** -exponent
    return weights / weights.sum()


def interaction_log(cfg: RealModelConfig) -> sp.csr_matrix:
    """A seeded (n_users, n_items) matrix of interaction counts.

    Item popularity and user activity follow Zipf laws over a random permutation of the ids
    (so neither catalogue order nor user order says anything about popularity). Each user has
    a taste cluster; a share ``in_cluster`` of their interactions is drawn from the items of
    that cluster (by popularity), the rest from the whole catalogue (by popularity).
    """
    rng = np.random.default_rng([cfg.seed, 10])
    item_pop = _zipf_weights(cfg.n_items, cfg.item_zipf)[rng.permutation(cfg.n_items)]
    activity = _zipf_weights(cfg.n_users, cfg.user_zipf)[rng.permutation(cfg.n_users)]
    per_user = np.maximum(3, np.rint(activity * cfg.mean_activity * cfg.n_users)).astype(np.int64)
    per_user = np.minimum(per_user, max(3, cfg.n_items // 10))
    users = np.repeat(np.arange(cfg.n_users, dtype=np.int64), per_user)

    item_cluster = rng.integers(0, cfg.n_clusters, cfg.n_items)
    user_cluster = rng.integers(0, cfg.n_clusters, cfg.n_users)
    draws = rng.random(users.size)
    own = rng.random(users.size) < cfg.in_cluster
    items = np.searchsorted(np.cumsum(item_pop), draws * item_pop.sum()).clip(0, cfg.n_items - 1)
    cluster_of_draw = user_cluster[users]
    for c in range(cfg.n_clusters):
        members = np.flatnonzero(item_cluster == c)
        where = np.flatnonzero(own & (cluster_of_draw == c))
        if members.size == 0 or where.size == 0:
            continue
        cdf = np.cumsum(item_pop[members])
        pick = np.searchsorted(cdf, draws[where] * cdf[-1]).clip(0, members.size - 1)
        items[where] = members[pick]
    counts = sp.csr_matrix(
        (np.ones(users.size, dtype=np.float32), (users, items)), shape=(cfg.n_users, cfg.n_items)
    )
    counts.sum_duplicates()
    return counts


def _rowwise_dot(a: F32, rows_a: NDArray[np.int64], b: F32, rows_b: NDArray[np.int64]) -> F32:
    """``sum(a[rows_a] * b[rows_b], axis=1)`` in chunks, so the gathers stay small."""
    out = np.empty(rows_a.size, dtype=np.float32)
    step = 1 << 18
    for start in range(0, rows_a.size, step):
        stop = start + step
        out[start:stop] = np.einsum("ij,ij->i", a[rows_a[start:stop]], b[rows_b[start:stop]])
    return out


def _als_half(confidence: sp.csr_matrix, fixed: F32, solve: F32, reg: float, steps: int) -> F32:
    """One ALS half-iteration: update ``solve``'s rows with ``fixed`` held, by conjugate gradient.

    For each row u: (F^T F + reg I + F^T (C_u - I) F) x_u = F^T C_u p_u, where C_u holds the
    confidences of u's interactions and p_u is 1 on them. The matrix-vector products for all
    rows are done at once: the (C_u - I) part is a sparse matrix whose values are
    (c - 1) * (f_i . x_u), times F.
    """
    rows = np.repeat(np.arange(confidence.shape[0], dtype=np.int64), np.diff(confidence.indptr))
    cols = confidence.indices.astype(np.int64)
    extra = confidence.data - 1.0  # c - 1
    gram = (fixed.T @ fixed + reg * np.eye(fixed.shape[1], dtype=np.float32)).astype(np.float32)

    def apply(x: F32) -> F32:
        weights = extra * _rowwise_dot(fixed, cols, x, rows)
        scaled = sp.csr_matrix((weights, confidence.indices, confidence.indptr), shape=confidence.shape)
        return np.asarray(x @ gram + scaled @ fixed, dtype=np.float32)

    x = solve.copy()
    rhs = np.asarray(confidence @ fixed, dtype=np.float32)
    r = rhs - apply(x)
    p = r.copy()
    rs = np.einsum("ij,ij->i", r, r)
    for _ in range(steps):
        ap = apply(p)
        denom = np.einsum("ij,ij->i", p, ap)
        step = np.divide(rs, denom, out=np.zeros_like(rs), where=denom > 0)
        x += step[:, None] * p
        r -= step[:, None] * ap
        rs_new = np.einsum("ij,ij->i", r, r)
        beta = np.divide(rs_new, rs, out=np.zeros_like(rs), where=rs > 0)
        p = r + beta[:, None] * p
        rs = rs_new
    return x


def build_real_model(cfg: RealModelConfig, *, log: bool = False) -> RealModel:
    """Generate the interaction log and factorise it with implicit-feedback ALS."""
    start = time.perf_counter()
    counts = interaction_log(cfg)
    confidence = counts.copy()
    confidence.data = (1.0 + cfg.alpha * confidence.data).astype(np.float32)
    confidence_t = confidence.T.tocsr()
    rng = np.random.default_rng([cfg.seed, 11])
    users = (rng.standard_normal((cfg.n_users, cfg.dim)) * 0.01).astype(np.float32)
    items = (rng.standard_normal((cfg.n_items, cfg.dim)) * 0.01).astype(np.float32)
    for it in range(cfg.iterations):
        users = _als_half(confidence, items, users, cfg.regularization, cfg.cg_steps)
        items = _als_half(confidence_t, users, items, cfg.regularization, cfg.cg_steps)
        if log:
            print(
                f"  ALS iteration {it + 1}/{cfg.iterations} ({time.perf_counter() - start:.1f} s)", flush=True
            )
    return RealModel(
        np.ascontiguousarray(users), np.ascontiguousarray(items), counts, time.perf_counter() - start
    )


def default_cache_dir() -> Path:
    """Where built models are kept between runs (``$RECBATCH_BENCH_CACHE`` overrides)."""
    env = os.environ.get("RECBATCH_BENCH_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "recbatch-bench"


def real_model(cfg: RealModelConfig, *, cache_dir: Path | None = None, log: bool = False) -> RealModel:
    """The model for ``cfg``, from the cache when it was built before (building takes a minute)."""
    directory = default_cache_dir() if cache_dir is None else cache_dir
    path = directory / f"real-{cfg.key()}.npz"
    if path.exists():
        with np.load(path) as data:
            counts = sp.csr_matrix(
                (data["data"], data["indices"], data["indptr"]), shape=(cfg.n_users, cfg.n_items)
            )
            return RealModel(data["users"], data["items"], counts, 0.0)
    model = build_real_model(cfg, log=log)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        users=model.users,
        items=model.items,
        data=model.interactions.data,
        indices=model.interactions.indices,
        indptr=model.interactions.indptr,
    )
    tmp.replace(path)
    return model


def norm_spread(vectors: F32) -> dict[str, float]:
    """Quantiles of the row norms and the max/median ratio."""
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
    q = np.quantile(norms, [0.0, 0.01, 0.5, 0.99, 1.0])
    return {
        "min": float(q[0]),
        "p1": float(q[1]),
        "median": float(q[2]),
        "p99": float(q[3]),
        "max": float(q[4]),
        "max/median": float(q[4] / q[2]) if q[2] > 0 else float("inf"),
    }


def prunable_share(queries: F32, items: F32, kth_scores: NDArray[np.float64]) -> float:
    """Mean share of items that ``|q| * |v| < k-th best score`` proves out of each query's top k.

    This is the per-item Cauchy-Schwarz bound, the best any norm-only pruning can do (a
    block bound over items sorted by norm prunes less).
    """
    qn = np.linalg.norm(queries.astype(np.float64), axis=1)
    vn = np.sort(np.linalg.norm(items.astype(np.float64), axis=1))
    # For each query, the items with vn < kth / qn are prunable.
    limits = np.divide(kth_scores, qn, out=np.full_like(qn, np.inf), where=qn > 0)
    pruned = np.searchsorted(vn, limits, side="left")
    return float(np.mean(pruned / vn.size))
