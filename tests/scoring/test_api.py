"""The public scoring API: input checking, conversion, SIMD selection and threads."""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest
import scipy.sparse as sp

import recbatch
from tests.scoring.reference import check_top_k, eligibility, reference


@pytest.fixture
def data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return rng.standard_normal((6, 5)).astype(np.float32), rng.standard_normal((20, 5)).astype(np.float32)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"k": 0}, ValueError, "k must be >= 1"),
        ({"k": 2.5}, TypeError, "k must be an integer"),
        ({"k": True}, TypeError, "k must be an integer"),
        ({"threads": 0}, ValueError, "threads"),
        ({"simd": "sse9"}, ValueError, "simd="),
        ({"simd": 3}, TypeError, "simd must be a str"),
        ({"k": 2**63}, ValueError, "k must be >= 1 and below 2**62"),
        (
            {"allow": np.ones(19, dtype=bool)},
            ValueError,
            "allow as a boolean mask must have length n_items = 20",
        ),
        ({"allow": np.array([0, 20])}, ValueError, "allow indices must lie in [0, 20)"),
        (
            {"exclude": sp.csr_matrix((6, 21))},
            ValueError,
            "exclude must have shape (n_queries, n_items) = (6, 20)",
        ),
        ({"exclude": (np.array([0, 1]), np.array([1]))}, ValueError, "n_queries + 1 = 7"),
        ({"exclude": (np.zeros(7, dtype=int), np.array([3]))}, ValueError, "end at len(indices)"),
        ({"exclude": (np.array([0, 1, 1, 1, 1, 1, 1]), np.array([20]))}, ValueError, "entry 0 is 20"),
        ({"exclude": [1, 2]}, TypeError, "exclude must be"),
    ],
)
def test_bad_arguments_name_the_rule(
    data: tuple[np.ndarray, np.ndarray], kwargs: dict[str, object], error: type[Exception], words: str
) -> None:
    queries, items = data
    options = {"k": 3, **kwargs}
    with pytest.raises(error) as info:
        recbatch.top_k(queries, items, **options)  # type: ignore[arg-type]
    assert words in str(info.value)


@pytest.mark.parametrize("threads", [0, -2, 1.5, True])
def test_index_threads_must_be_a_positive_integer(
    data: tuple[np.ndarray, np.ndarray], threads: object
) -> None:
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        recbatch.ItemIndex(data[1], threads=threads)  # type: ignore[arg-type]


def test_bad_arrays_name_the_argument(data: tuple[np.ndarray, np.ndarray]) -> None:
    queries, items = data
    with pytest.raises(ValueError, match="queries must be a 2-D array"):
        recbatch.top_k(queries[0], items, 3)
    with pytest.raises(ValueError, match="items must be a 2-D array"):
        recbatch.ItemIndex(items[None])
    with pytest.raises(ValueError, match="queries have dim 4 but the items have dim 5"):
        recbatch.top_k(queries[:, :4], items, 3)
    with pytest.raises(TypeError, match="items must hold real numbers"):
        recbatch.ItemIndex(np.array([["a"]]))
    with pytest.raises(ValueError, match="items must have at least one row"):
        recbatch.ItemIndex(np.zeros((0, 4), dtype=np.float32))
    bad = queries.copy()
    bad[4, 2] = np.nan
    with pytest.raises(ValueError, match="queries must be finite: row 4"):
        recbatch.top_k(bad, items, 3)
    huge = items.astype(np.float64)
    huge[7, 0] = 1e300
    with pytest.raises(ValueError, match=r"items must be finite: row 7 .*beyond float32's range"):
        recbatch.ItemIndex(huge)


def test_other_dtypes_and_layouts_are_converted(data: tuple[np.ndarray, np.ndarray]) -> None:
    queries, items = data
    want = recbatch.top_k(queries, items, 4)
    as_f64 = recbatch.top_k(queries.astype(np.float64), items.astype(np.float64), 4)
    fortran = recbatch.top_k(np.asfortranarray(queries), np.asfortranarray(items), 4)
    strided = recbatch.top_k(np.repeat(queries, 2, axis=0)[::2], items, 4)
    for other in (as_f64, fortran, strided):
        np.testing.assert_array_equal(other.indices, want.indices)
        np.testing.assert_array_equal(other.scores, want.scores)
    assert want.logsumexp is None


def test_empty_query_batch(data: tuple[np.ndarray, np.ndarray]) -> None:
    _, items = data
    result = recbatch.top_k(np.zeros((0, 5), dtype=np.float32), items, 3, logsumexp=True)
    assert result.indices.shape == (0, 3) and result.scores.shape == (0, 3)
    assert result.logsumexp is not None and result.logsumexp.shape == (0,)


def test_index_properties(data: tuple[np.ndarray, np.ndarray]) -> None:
    index = recbatch.ItemIndex(data[1])
    assert (index.n_items, index.dim) == (20, 5)


def test_simd_env_can_only_lower_the_level(monkeypatch: pytest.MonkeyPatch) -> None:
    levels = recbatch.available_simd_levels()
    assert levels[0] == "scalar"
    monkeypatch.delenv("RECBATCH_SIMD", raising=False)
    detected = recbatch.simd_level()
    assert detected == levels[-1]
    monkeypatch.setenv("RECBATCH_SIMD", "scalar")
    assert recbatch.simd_level() == "scalar"
    for higher in {"scalar", "avx2", "avx2_int8", "avx2_vnni", "avx512", "avx512_vnni", "amx_int8"} - set(
        levels
    ):
        monkeypatch.setenv("RECBATCH_SIMD", higher)
        assert recbatch.simd_level() == detected
    monkeypatch.setenv("RECBATCH_SIMD", "bogus")
    with pytest.raises(ValueError, match="RECBATCH_SIMD='bogus' is not a SIMD level"):
        recbatch.simd_level()


def test_default_threads_follow_affinity() -> None:
    assert recbatch.default_threads() == len(os.sched_getaffinity(0))


def test_concurrent_searches_on_one_index(rng: np.random.Generator) -> None:
    items = rng.standard_normal((5000, 32)).astype(np.float32)
    index = recbatch.ItemIndex(items)
    batches = [rng.standard_normal((200, 32)).astype(np.float32) for _ in range(6)]
    results: dict[int, recbatch.TopKResult] = {}

    def work(i: int) -> None:
        results[i] = index.search(batches[i], 15, threads=2)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for i, batch in enumerate(batches):
        check_top_k(results[i], reference(batch, items, eligibility(200, 5000, None, None)), 15)


def test_gil_is_released_while_searching(rng: np.random.Generator) -> None:
    items = rng.standard_normal((200_000, 64)).astype(np.float32)
    queries = rng.standard_normal((3000, 64)).astype(np.float32)
    index = recbatch.ItemIndex(items)
    ticks_during_search = 0
    done = threading.Event()

    def search() -> None:
        index.search(queries, 10, threads=1)
        done.set()

    worker = threading.Thread(target=search)
    worker.start()
    # If the search held the GIL, this loop could not run until it had finished.
    while not done.is_set():
        ticks_during_search += 1
        done.wait(0.001)
    worker.join()
    assert ticks_during_search > 5


def test_ctrl_c_interrupts_a_long_search() -> None:
    script = """
import signal, sys, threading, os, time
import numpy as np, recbatch
items = np.random.default_rng(0).standard_normal((400_000, 128)).astype(np.float32)
queries = np.random.default_rng(1).standard_normal((50_000, 128)).astype(np.float32)
index = recbatch.ItemIndex(items)
# A shell starts background jobs with SIGINT ignored, and Python keeps that: restore Ctrl-C.
signal.signal(signal.SIGINT, signal.default_int_handler)
threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
start = time.monotonic()
try:
    index.search(queries, 10, threads=1)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(0)
print("finished", flush=True)
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.stdout.strip() == "interrupted", proc.stderr
    assert proc.returncode == 0


def test_importing_recbatch_loads_only_the_kernel() -> None:
    # Spark/Ray/Dask workers embed the kernel: the job layer's dependencies load on first use.
    probe = "import sys, recbatch; print(sorted(m for m in ('boto3', 'smart_open', 'sqlite3') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert callable(recbatch.client) and callable(recbatch.save_model)


def test_finite_check_names_the_first_bad_row_and_accepts_overflowing_sums() -> None:
    items = np.ones((50, 3), dtype=np.float32)
    items[30] = [np.inf, -np.inf, 0]  # row sum is NaN
    items[40, 1] = np.nan
    with pytest.raises(ValueError, match="items must be finite: row 30"):
        recbatch.ItemIndex(items)
    big = np.full((4, 3), 3e38, dtype=np.float32)  # finite values whose row sum overflows
    assert recbatch.ItemIndex(big).n_items == 4


def test_scores_that_could_overflow_float32_are_refused_naming_the_row(rng: np.random.Generator) -> None:
    # Finite inputs whose inner products pass float32's largest value would score inf, or NaN
    # (inf - inf), and lose items: |q| x max |item| is checked first, and the first row that
    # could overflow is named. Rows up to the limit search normally.
    items = rng.standard_normal((300, 4)).astype(np.float32)
    items[17] *= np.float32(1e19)
    big = np.float32(3.4e38) / np.float32(np.linalg.norm(items[17].astype(np.float64)))
    queries = rng.standard_normal((9, 4)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    queries[5] *= big * np.float32(1.01)
    with pytest.raises(ValueError, match=r"queries row 5: its inner products with the items may reach 3\.4"):
        recbatch.top_k(queries, items, 3)
    queries[5] *= np.float32(0.9 / 1.01)  # 90% of the limit: searched, finite and exact
    result = recbatch.top_k(queries, items, 300, logsumexp=True)
    assert np.isfinite(result.scores).all() and np.isfinite(result.logsumexp).all()  # type: ignore[arg-type]
    check_top_k(result, reference(queries, items, eligibility(9, 300, None, None)), 300)


def test_empty_allow_list_allows_nothing(data: tuple[np.ndarray, np.ndarray]) -> None:
    queries, items = data
    result = recbatch.top_k(queries, items, 3, allow=[], logsumexp=True)
    assert (result.indices == -1).all() and np.isneginf(result.scores).all()
    assert np.isneginf(result.logsumexp).all()  # type: ignore[arg-type]


def test_more_threads_than_useful_are_accepted(data: tuple[np.ndarray, np.ndarray]) -> None:
    queries, items = data
    want = recbatch.top_k(queries, items, 4, threads=1)
    many = recbatch.top_k(queries, items, 4, threads=2**63)
    np.testing.assert_array_equal(many.indices, want.indices)


def test_an_index_pickles_by_value(rng: np.random.Generator) -> None:
    # As Spark broadcasts and Ray or Dask tasks ship it: the copy holds the same float32 items,
    # bit for bit (signed zeros and subnormals too), and answers every search the same way.
    items = rng.standard_normal((1000, 19)).astype(np.float32)
    items[3, :4] = [-0.0, 1e-45, -1e-40, 1e20]
    index = recbatch.ItemIndex(items, threads=2)
    queries = rng.standard_normal((40, 19)).astype(np.float32)
    for copied in (pickle.loads(pickle.dumps(index)), copy.deepcopy(index)):
        assert (copied.n_items, copied.dim) == (1000, 19)
        unpacked = copied._index.items()
        assert unpacked.tobytes() == items.tobytes()
        for kwargs in ({"k": 7}, {"k": 50, "logsumexp": True, "allow": np.arange(0, 1000, 3)}):
            a, b = index.search(queries, **kwargs), copied.search(queries, **kwargs)  # type: ignore[arg-type]
            np.testing.assert_array_equal(a.indices, b.indices)
            np.testing.assert_array_equal(a.scores, b.scores)
            if a.logsumexp is not None:
                np.testing.assert_array_equal(a.logsumexp, b.logsumexp)  # type: ignore[arg-type]


def test_extension_checks_exclusions_itself(rng: np.random.Generator) -> None:
    # The compiled module is usable without the Python layer's checks: it must refuse, not
    # read out of bounds, whatever the width of the index arrays.
    from recbatch import _core

    index = _core.ItemIndex(rng.standard_normal((40, 4)).astype(np.float32))
    queries = rng.standard_normal((2, 4)).astype(np.float32)
    for dtype in (np.int32, np.int64):
        indptr = np.array([0, 1, 2], dtype=dtype)
        ok = index.search(queries, 3, indptr, np.array([5, 39], dtype=dtype), None, 1, False, "scalar")
        assert 5 not in ok[0][0] and 39 not in ok[0][1]
        for bad in ([5, 40], [-1, 3]):
            with pytest.raises(ValueError, match="exclude index out of range"):
                index.search(queries, 3, indptr, np.array(bad, dtype=dtype), None, 1, False, "scalar")
        with pytest.raises(ValueError, match="must not decrease"):
            index.search(
                queries,
                3,
                np.array([0, 2, 1], dtype=dtype),
                np.array([1], dtype=dtype),
                None,
                1,
                False,
                "scalar",
            )
    with pytest.raises(TypeError, match="int64 or int32"):
        index.search(
            queries, 3, np.array([0, 1, 2], dtype=np.int16), np.array([1, 2]), None, 1, False, "scalar"
        )
