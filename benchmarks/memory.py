"""Peak resident memory of a search against the issue's target: inputs + outputs + 64 MB.

    .venv/bin/python benchmarks/memory.py                      # the default cases (a few minutes)
    .venv/bin/python benchmarks/memory.py --quick --markdown   # smaller shapes
    .venv/bin/python benchmarks/memory.py --cases W2,W2-excl --no-oneshot

Each case runs in forked children, so that nothing another case allocated (or left in the
allocator's free lists) is counted or reused. A child makes its own Gaussian float32 inputs
(and, for the filtered cases, a scipy CSR matrix of 100 random excluded items per query, or
an array of allowed item indices), then:

  1. resets its peak RSS (writing 5 to /proc/self/clear_refs sets VmHWM to VmRSS), builds
     ``ItemIndex(items)``: "index MB" is the RSS the index keeps, "build peak MB" the most
     the build added at any moment;
  2. resets the peak again, with the inputs and the index resident, runs ``index.search``:
     "search peak MB" is VmHWM - VmRSS before the call, "outputs MB" the returned arrays'
     bytes, and "overhead MB" = search peak - outputs: the memory the search needs beyond
     its result. The target holds where the overhead is at most 64 MB.

Before each reset the child calls glibc's malloc_trim(0): heap pages freed while setting up
would otherwise stay resident and be reused by the search unseen, understating its peak.

For the unfiltered cases a second child measures the one-shot ``recbatch.top_k(queries,
items, k)`` the same way (peak over the resident inputs, items included); it packs a copy of
the items for the call, so its peak includes the index and its build.
"index est. MB" is the packed layout's size computed from packed_items.hpp (float panels,
the int8 copy where the CPU has AVX512-VNNI, the position maps), a check on the measurement.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import datetime as dt
import json
import os
import platform
import select
import shlex
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

import recbatch

MB = 1 << 20
BUDGET_MB = 64.0


@dataclass(frozen=True)
class Case:
    name: str
    n: int  # queries
    m: int  # items
    d: int
    k: int
    exclude: int = 0  # random items excluded per query (scipy CSR, int32 indices)
    allow: float = 0.0  # share of the catalogue allowed, passed as an int64 index array
    logsumexp: bool = False
    oneshot: bool = True  # also measure top_k (the filtered variants add nothing there)


DEFAULT_CASES = [
    Case("W2-1k", 1_000, 1_000_000, 128, 100),
    Case("W2-1k-allow", 1_000, 1_000_000, 128, 100, allow=0.1, oneshot=False),
    Case("W2", 20_000, 1_000_000, 128, 100),
    Case("W2-excl", 20_000, 1_000_000, 128, 100, exclude=100, oneshot=False),
    Case("W3", 200_000, 20_000, 32, 10),
    Case("W3-excl", 200_000, 20_000, 32, 10, exclude=100, oneshot=False),
    Case("W3-lse", 200_000, 20_000, 32, 10, logsumexp=True, oneshot=False),
    Case("W1", 100_000, 100_000, 64, 25),
    Case("W1-excl", 100_000, 100_000, 64, 25, exclude=100, oneshot=False),
    Case("1Mq", 1_000_000, 10_000, 64, 25),
    # Batch segment jobs' sizes: buffered top-k lists, with exclusions too (NOTES 78).
    Case("seg-10k", 400, 200_000, 64, 10_000, oneshot=False),
    Case("seg-100k-excl", 41, 200_000, 64, 100_000, exclude=100, oneshot=False),
    # A few queries of large k: split into catalogue ranges, merged by one selection (NOTES 85).
    Case("few-50k", 12, 200_000, 64, 50_000, oneshot=False),
]

QUICK_CASES = [
    Case("q-100k", 1_000, 100_000, 128, 100),
    Case("q-100k-allow", 1_000, 100_000, 128, 100, allow=0.1, oneshot=False),
    Case("q-W3", 50_000, 20_000, 32, 10),
    Case("q-W3-excl", 50_000, 20_000, 32, 10, exclude=100, oneshot=False),
    Case("q-W3-lse", 50_000, 20_000, 32, 10, logsumexp=True, oneshot=False),
    Case("q-200kq", 200_000, 10_000, 64, 25),
]


# --------------------------------------------------------------------------------------
# Reading this process's memory (Linux only)


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _release_free_memory() -> None:
    """Give glibc's free heap pages back to the kernel (malloc_trim; a no-op elsewhere).

    Without it, what setting up the inputs freed (rng.choice's permutation, the build's norm
    array) stays resident in the heap, and a search that reuses it looks smaller than it is.
    """
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def _reset_peak() -> int:
    """Set VmHWM to the current RSS (Linux >= 4.0) and return that RSS in kB."""
    _release_free_memory()
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kb("VmRSS")


def _peak_since(base_kb: int) -> int:
    return (_status_kb("VmHWM") - base_kb) * 1024


def index_bytes_estimate(m: int, d: int, with_int8: bool) -> int:
    """The packed index's heap size, after PackedItems' members (packed_items.hpp)."""
    blocks = (m + 31) // 32
    size = blocks * 32 * d * 4 + m * (8 + 4) + blocks * 8  # panels, item_at, position_of, norm bounds
    if with_int8:  # int8 panels (dims padded to 4), per-position offsets, 3 floats per block
        size += blocks * 32 * ((d + 3) // 4 * 4) + blocks * 32 * 4 + blocks * 12
    return size


# --------------------------------------------------------------------------------------
# The children


def _inputs(case: Case, seed: int) -> tuple[dict[str, Any], np.ndarray, int]:
    """Search keyword inputs (queries, exclude, allow), the items, and the inputs' bytes."""
    rng = np.random.default_rng(seed)
    items = rng.standard_normal((case.m, case.d), dtype=np.float32)
    queries = rng.standard_normal((case.n, case.d), dtype=np.float32)
    kwargs: dict[str, Any] = {"queries": queries}
    nbytes = queries.nbytes
    if case.exclude:
        # What callers pass: their interaction matrix, int32 indices, float32 values.
        nnz = case.n * case.exclude
        indptr = np.arange(0, nnz + 1, case.exclude, dtype=np.int32)
        indices = rng.integers(0, case.m, size=nnz, dtype=np.int32)
        data = np.ones(nnz, dtype=np.float32)
        csr = scipy.sparse.csr_matrix((data, indices, indptr), shape=(case.n, case.m))
        kwargs["exclude"] = csr
        nbytes += csr.data.nbytes + csr.indices.nbytes + csr.indptr.nbytes
    if case.allow:
        allow = np.sort(rng.choice(case.m, size=int(case.m * case.allow), replace=False)).astype(np.int64)
        kwargs["allow"] = allow
        nbytes += allow.nbytes
    return kwargs, items, nbytes


def _child_search(case: Case, threads: int, seed: int) -> dict[str, Any]:
    kwargs, items, input_bytes = _inputs(case, seed)
    base = _reset_peak()
    start = time.perf_counter()
    index = recbatch.ItemIndex(items)
    build_s = time.perf_counter() - start
    build_peak = _peak_since(base)
    index_rss = (_status_kb("VmRSS") - base) * 1024

    queries = kwargs.pop("queries")
    base = _reset_peak()
    start = time.perf_counter()
    result = index.search(queries, case.k, threads=threads, logsumexp=case.logsumexp, **kwargs)
    search_s = time.perf_counter() - start
    search_peak = _peak_since(base)
    outputs = result.indices.nbytes + result.scores.nbytes
    if result.logsumexp is not None:
        outputs += result.logsumexp.nbytes
    return {
        "input_bytes": input_bytes,
        "items_bytes": items.nbytes,
        "index_rss": index_rss,
        "build_peak": build_peak,
        "build_s": build_s,
        "search_peak": search_peak,
        "search_s": search_s,
        "outputs": outputs,
    }


def _child_oneshot(case: Case, threads: int, seed: int) -> dict[str, Any]:
    kwargs, items, _ = _inputs(case, seed)
    queries = kwargs.pop("queries")
    base = _reset_peak()
    result = recbatch.top_k(queries, items, case.k, threads=threads, logsumexp=case.logsumexp, **kwargs)
    outputs = result.indices.nbytes + result.scores.nbytes
    if result.logsumexp is not None:
        outputs += result.logsumexp.nbytes
    return {"oneshot_peak": _peak_since(base), "outputs": outputs}


def in_child(fn: Any, case: Case, threads: int, seed: int, timeout: float) -> dict[str, Any]:
    """Run ``fn(case, threads, seed)`` in a forked child; its dict comes back through a pipe."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into the parent's code
        code, payload = 1, '{"error": "no report"}'
        try:
            os.close(read_fd)
            payload = json.dumps(fn(case, threads, seed))
            code = 0
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, whatever it is
            payload = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        finally:
            os.write(write_fd, payload.encode())
            os._exit(code)
    os.close(write_fd)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return {"error": f"timeout after {timeout:.0f} s"}
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        return {"error": f"child died (wait status {status})"}
    report: dict[str, Any] = json.loads(b"".join(chunks))
    return report


# --------------------------------------------------------------------------------------
# The table


COLUMNS = [
    "case",
    "n",
    "m",
    "d",
    "k",
    "filters",
    "inputs MB",
    "index MB",
    "index est. MB",
    "outputs MB",
    "search peak MB",
    "overhead MB",
    "<= 64 MB",
    "build peak MB",
    "build peak / items",
    "one-shot peak MB",
    "one-shot - outputs MB",
    "search s",
]


def _mb(nbytes: float) -> str:
    return f"{nbytes / MB:.1f}"


def row_for(case: Case, search: dict[str, Any], oneshot: dict[str, Any] | None, with_int8: bool) -> list[str]:
    filters = ", ".join(
        part
        for part in (
            f"exclude {case.exclude}/q" if case.exclude else "",
            f"allow {case.allow:.0%}" if case.allow else "",
            "logsumexp" if case.logsumexp else "",
        )
        if part
    )
    head = [case.name, f"{case.n:,}", f"{case.m:,}", str(case.d), str(case.k), filters or "-"]
    if "error" in search:
        return [*head, f"error: {search['error']}"] + [""] * (len(COLUMNS) - len(head) - 1)
    overhead = search["search_peak"] - search["outputs"]
    if oneshot is None:
        oneshot_text = ["-", "-"]
    elif "error" in oneshot:
        oneshot_text = [f"error: {oneshot['error']}", ""]
    else:
        oneshot_text = [_mb(oneshot["oneshot_peak"]), _mb(oneshot["oneshot_peak"] - oneshot["outputs"])]
    return [
        *head,
        _mb(search["input_bytes"]),
        _mb(search["index_rss"]),
        _mb(index_bytes_estimate(case.m, case.d, with_int8)),
        _mb(search["outputs"]),
        _mb(search["search_peak"]),
        _mb(overhead),
        "yes" if overhead <= BUDGET_MB * MB else "NO",
        _mb(search["build_peak"]),
        f"{search['build_peak'] / search['items_bytes']:.2f}",
        *oneshot_text,
        f"{search['search_s']:.2f}",
    ]


def print_table(rows: list[list[str]], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(COLUMNS) + " |")
        print("|" + "|".join("---" if i in (0, 5) else "---:" for i in range(len(COLUMNS))) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    print("  ".join(c.rjust(w) for c, w in zip(COLUMNS, widths, strict=True)))
    for row in rows:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller shapes (well under a minute)")
    parser.add_argument("--cases", default=None, help="comma-separated case names (of the chosen set)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-oneshot", action="store_true", help="skip the one-shot top_k measurement")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per child")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    if not Path("/proc/self/clear_refs").exists():
        raise SystemExit("needs Linux's /proc/self/clear_refs to reset the peak RSS")

    cases = QUICK_CASES if args.quick else DEFAULT_CASES
    if args.cases:
        wanted = args.cases.split(",")
        unknown = sorted(set(wanted) - {c.name for c in cases})
        if unknown:
            raise SystemExit(f"unknown case(s) {unknown}; choose from {[c.name for c in cases]}")
        cases = [c for c in cases if c.name in wanted]
    with_int8 = "avx2_int8" in recbatch.available_simd_levels()  # every wider level implies it

    bullet = "- " if args.markdown else ""
    print(f"{bullet}command: `{shlex.join([Path(sys.executable).name, *sys.argv])}`")
    print(f"{bullet}date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(
        f"{bullet}CPU: {cpu_name()}, {len(os.sched_getaffinity(0))} usable CPUs; Linux {platform.release()}"
    )
    print(
        f"{bullet}recbatch {recbatch.__version__}, SIMD path {recbatch.simd_level()}, "
        f"int8 copy in the index: {with_int8}; threads={args.threads}"
    )
    print(
        f"{bullet}overhead = search peak - outputs; the target holds where it is <= {BUDGET_MB:.0f} MB. "
        "MB = 2^20 bytes.\n",
        flush=True,
    )

    rows = []
    for case in cases:
        print(f"[{case.name}] index + search ...", file=sys.stderr, flush=True)
        search = in_child(_child_search, case, args.threads, args.seed, args.timeout)
        oneshot = None
        if case.oneshot and not args.no_oneshot and "error" not in search:
            print(f"[{case.name}] one-shot top_k ...", file=sys.stderr, flush=True)
            oneshot = in_child(_child_oneshot, case, args.threads, args.seed, args.timeout)
        rows.append(row_for(case, search, oneshot, with_int8))
    print_table(rows, args.markdown)


if __name__ == "__main__":
    main()
