"""recbatch against the tools users would pick instead, in one process, on the same arrays.

Run from the repository root (a quiet machine matters; see benchmarks/NOTES.md):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/peers.py
    .venv/bin/python benchmarks/peers.py --scale 0.05                 # a quick run
    .venv/bin/python benchmarks/peers.py --workloads W1,REAL --methods recbatch,faiss --markdown

Per workload and method it prints: build seconds (index construction, not in the search
time), search seconds (median of --repeat runs, methods interleaved so that background load
hits them alike), queries/s, effective GFLOP/s (2*n*m*d / seconds), percent of the machine's
float32 FMA peak, recall@k against a float64 NumPy reference on a sample of queries, the peak
resident memory a build + search adds (measured in a forked child), the number of threads that
did work during the search and the CPU/wall ratio (to check that each tool honours --threads),
the share of the CPUs that other processes used meanwhile, and recbatch's speed-up over each
method (method seconds / recbatch seconds).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import select
import shlex
import signal
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from limits import Peak, cpu_flags, fma_peaks, sgemm_gflops
from methods import F32, METHODS, Method, import_faiss_with_coretype, openblas_overrides
from numpy.typing import NDArray
from workloads import (
    WORKLOADS,
    RealModelConfig,
    Workload,
    gaussian_arrays,
    norm_spread,
    prunable_share,
    real_model,
)

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------
# Measuring one call: wall and CPU time, threads that worked, load from other processes


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _system_busy_ticks() -> int:
    """Busy clock ticks of all CPUs together (user+nice+system+irq+softirq+steal)."""
    with Path("/proc/stat").open() as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]


def _runnable_threads(skip: int) -> int:
    """Threads of this process that are running or waiting for a CPU (state R), but ``skip``."""
    count = 0
    for task in Path("/proc/self/task").iterdir():
        if task.name == str(skip):
            continue
        try:
            state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # the thread ended meanwhile
        count += state == "R"
    return count


class ThreadSampler:
    """Counts this process's runnable threads every ``interval`` seconds during a call.

    A thread that computes, or spins waiting for work, is runnable whether or not another
    process holds the CPU at that moment; so the count says how many threads a tool really
    uses, which the CPU/wall ratio cannot tell on a busy machine.
    """

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.counts: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        own = threading.get_native_id()
        while not self._stop.wait(self.interval):
            self.counts.append(_runnable_threads(own))

    def begin(self) -> None:
        self._thread.start()

    def end(self) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> tuple[float, int]:
        """(median, max) runnable threads over the samples; (nan, 0) when none was taken."""
        if not self.counts:
            return float("nan"), 0
        return float(statistics.median(self.counts)), max(self.counts)


@dataclass
class Timing:
    seconds: float
    cpu_ratio: float
    threads: float  # median runnable threads
    threads_max: int
    samples: int  # thread samples taken (20 ms apart)
    others: float  # share of all CPUs used by other processes during the call


def timed(search: Any, queries: F32) -> tuple[Timing, NDArray[Any]]:
    """Run one search, measuring what the table reports."""
    ncpu = os.cpu_count() or 1
    busy0 = _system_busy_ticks()
    cpu0 = _cpu_seconds()
    sampler = ThreadSampler()
    sampler.begin()
    try:
        t0 = time.perf_counter()
        result = np.asarray(search(queries))
        wall = time.perf_counter() - t0
    finally:
        sampler.end()
    cpu = _cpu_seconds() - cpu0
    busy = (_system_busy_ticks() - busy0) / CLK_TCK
    others = max(0.0, busy - cpu) / (wall * ncpu) if wall > 0 else 0.0
    median, most = sampler.summary()
    return Timing(
        wall, cpu / wall if wall > 0 else 0.0, median, most, len(sampler.counts), min(1.0, others)
    ), result


# --------------------------------------------------------------------------------------
# Peak memory of build + search, in a forked child so that each method starts from the same
# process image (the arrays already resident) and leaves nothing behind for the next.


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _child_cpu_ticks(pid: int) -> int:
    try:
        parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return -1
    return int(parts[11]) + int(parts[12])


def _wait_for_child(pid: int, read_fd: int, timeout: float, stall: float = 120.0) -> str:
    """The child's report; "timeout" after ``timeout`` s, "hung" after ``stall`` s without CPU use."""
    start = last_change = time.monotonic()
    last_ticks = -1
    while True:
        ready, _, _ = select.select([read_fd], [], [], 5.0)
        if ready:
            text = os.read(read_fd, 4096).decode()
            os.waitpid(pid, 0)
            return text
        now = time.monotonic()
        ticks = _child_cpu_ticks(pid)
        if ticks != last_ticks:
            last_ticks, last_change = ticks, now
        if now - start > timeout or now - last_change > stall:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout" if now - start > timeout else "hung"


def peak_memory_mb(method: Method, items: F32, queries: F32, k: int, threads: int, timeout: float) -> str:
    """MB of resident memory that preparing and running ``method`` adds at its peak."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into the parent's code
        code = 1
        try:
            os.close(read_fd)
            # Writing 5 resets this process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0).
            Path("/proc/self/clear_refs").write_text("5")
            base = _status_kb("VmRSS")
            method.prepare(items, k, threads)(queries)
            os.write(write_fd, str(_status_kb("VmHWM") - base).encode())
            code = 0
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, whatever it is
            os.write(write_fd, f"error: {type(exc).__name__}: {exc}".encode())
        finally:
            os._exit(code)
    os.close(write_fd)
    try:
        text = _wait_for_child(pid, read_fd, timeout)
    finally:
        os.close(read_fd)
    if text in ("timeout", "hung"):
        return text
    if not text or text.startswith("error"):
        return "n/a"
    return f"{int(text) / 1024:.0f}"


# --------------------------------------------------------------------------------------
# The float64 reference


@dataclass
class Reference:
    rows: NDArray[np.int64]  # the sampled query rows
    indices: NDArray[np.int64]  # (s, k) exact top k in float64, best first
    kth: NDArray[np.float64]  # (s,) the k-th best float64 score


def reference(queries: F32, items: F32, k: int, sample: int, seed: int) -> Reference:
    """Exact float64 top k of a seeded sample of queries, streaming over item blocks."""
    n, m = queries.shape[0], items.shape[0]
    kk = min(k, m)
    rows = np.sort(np.random.default_rng([seed, 3]).choice(n, size=min(sample, n), replace=False))
    q = queries[rows].astype(np.float64)
    best_s = np.full((rows.size, 0), -np.inf)
    best_i = np.zeros((rows.size, 0), dtype=np.int64)
    step = 1 << 16
    for start in range(0, m, step):
        block = items[start : start + step].astype(np.float64)
        s = np.concatenate([best_s, q @ block.T], axis=1)
        i = np.concatenate(
            [best_i, np.broadcast_to(np.arange(start, start + block.shape[0]), (rows.size, block.shape[0]))],
            axis=1,
        )
        if s.shape[1] > kk:
            keep = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
            s = np.take_along_axis(s, keep, axis=1)
            i = np.take_along_axis(i, keep, axis=1)
        best_s, best_i = s, i
    order = np.lexsort((best_i, -best_s), axis=1)
    best_s = np.take_along_axis(best_s, order, axis=1)
    best_i = np.take_along_axis(best_i, order, axis=1)
    return Reference(rows, best_i, best_s[:, -1])


def recall(found: NDArray[Any], ref: Reference) -> float:
    """Mean |found ∩ reference| / k over the sampled queries."""
    if found.ndim != 2 or found.shape[1] == 0:
        return float("nan")  # not a top-k method (gemm-only)
    got = np.asarray(found)[ref.rows].astype(np.int64)
    hits = [np.intersect1d(g, r).size for g, r in zip(got, ref.indices, strict=True)]
    return float(np.mean(hits) / ref.indices.shape[1])


# --------------------------------------------------------------------------------------
# Tables


def render(headers: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = [
            "| " + " | ".join(headers) + " |",
            "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|",
        ]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*headers), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in rows]
    return "\n".join(lines)


@dataclass
class Result:
    method: str
    build: float = float("nan")
    timings: list[Timing] = field(default_factory=list)
    recall: float = float("nan")
    memory: str = "-"
    skipped: str = ""

    @property
    def seconds(self) -> float:
        return statistics.median(t.seconds for t in self.timings)


def _fmt(x: float, digits: int = 1) -> str:
    return "-" if x != x else f"{x:,.{digits}f}"  # noqa: PLR0124 - NaN check


# --------------------------------------------------------------------------------------
# The run


def blas_report() -> list[str]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["threadpoolctl is not installed: BLAS libraries and thread counts unknown"]
    lines = []
    for info in threadpool_info():
        where = Path(info.get("filepath", "")).parent.parent.name or "?"
        arch = info.get("architecture")
        lines.append(
            f"{info.get('internal_api')} {info.get('version') or ''} ({info.get('prefix')}, from {where})"
            + (f" kernels={arch}" if arch else "")
            + f" threads={info.get('num_threads')}"
        )
    return lines


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def workload_arrays(wl: Workload, args: argparse.Namespace, notes: list[str]) -> tuple[F32, F32]:
    if wl.name != "REAL":
        return gaussian_arrays(wl, seed=args.seed)
    cfg = RealModelConfig(seed=args.seed).scaled(args.real_scale)
    model = real_model(cfg, log=True)
    notes.append(
        f"REAL model: {cfg.n_users:,} users x {cfg.n_items:,} items, d={cfg.dim}, "
        f"{model.interactions.nnz:,} distinct interactions (Zipf {cfg.item_zipf} items, {cfg.user_zipf} users), "
        f"implicit ALS {cfg.iterations} iterations"
        + (f", built in {model.seconds:.0f} s" if model.seconds else ", from the cache")
    )
    for what, arr in (("item", model.items), ("user", model.users)):
        s = norm_spread(arr)
        notes.append(
            f"{what} norms: min {s['min']:.3g}, p1 {s['p1']:.3g}, median {s['median']:.3g}, "
            f"p99 {s['p99']:.3g}, max {s['max']:.3g} (max/median {s['max/median']:.1f})"
        )
    n = max(1, round(cfg.n_users * args.scale))
    rows = np.sort(np.random.default_rng([args.seed, 4]).choice(cfg.n_users, size=n, replace=False))
    return np.ascontiguousarray(model.users[rows]), model.items


@dataclass
class Prepared:
    """A workload's arrays, reference and memory probes: everything before the timings."""

    wl: Workload
    queries: F32
    items: F32
    ref: Reference
    notes: list[str]
    results: dict[str, Result]


def setup_workload(wl: Workload, args: argparse.Namespace, methods: list[Method]) -> Prepared:
    """Arrays, float64 reference and the forked memory probes of one workload.

    This runs for every workload before any method is timed: a child forked from a process
    whose OpenMP pool has run (faiss, implicit, torch use GNU libgomp) can hang in its first
    parallel region, so no probe is forked after the timings start.
    """
    notes: list[str] = []
    queries, items = workload_arrays(wl, args, notes)
    wl = Workload(wl.name, queries.shape[0], items.shape[0], items.shape[1], wl.k)
    print(f"[{wl.name}] reference on {min(args.sample, wl.n)} queries ...", file=sys.stderr, flush=True)
    ref = reference(queries, items, wl.k, args.sample, args.seed)
    if wl.name == "REAL":
        share = prunable_share(queries[ref.rows], items, ref.kth)
        notes.append(
            f"items that |q|*|v| < k-th score proves out (per-item norm bound, sampled queries): {share:.1%}"
        )
    results = {m.name: Result(m.name) for m in methods}
    for m in methods:
        ok, why = m.availability()
        if not ok:
            results[m.name].skipped = why
        elif args.memory:
            print(f"[{wl.name}] memory: {m.name} ...", file=sys.stderr, flush=True)
            results[m.name].memory = peak_memory_mb(
                m, items, queries, wl.k, args.threads, args.memory_timeout
            )
    return Prepared(wl, queries, items, ref, notes, results)


def run_workload(
    prep: Prepared, args: argparse.Namespace, methods: list[Method], peak: float | None
) -> tuple[list[str], list[str], list[list[str]]]:
    """Build each method's index, time the searches round-robin, and make the table."""
    wl, queries, items, ref, notes, results = (
        prep.wl,
        prep.queries,
        prep.items,
        prep.ref,
        prep.notes,
        prep.results,
    )
    searches: dict[str, Any] = {}
    for m in methods:
        if results[m.name].skipped:
            continue
        t0 = time.perf_counter()
        try:
            searches[m.name] = m.prepare(items, wl.k, args.threads)
        except Exception as exc:  # noqa: BLE001 - a peer that fails to build is reported, not fatal
            results[m.name].skipped = f"build failed: {type(exc).__name__}: {exc}"
            continue
        results[m.name].build = time.perf_counter() - t0

    for r in range(args.repeat):
        for name, search in searches.items():
            print(f"[{wl.name}] run {r + 1}/{args.repeat}: {name} ...", file=sys.stderr, flush=True)
            timing, out = timed(search, queries)
            results[name].timings.append(timing)
            if r == args.repeat - 1:
                results[name].recall = recall(out, ref)
            del out
    searches.clear()

    base = results.get("recbatch")
    base_s = base.seconds if base is not None and base.timings else float("nan")
    headers = [
        "method",
        "build s",
        "search s",
        "queries/s",
        "GFLOP/s",
        "% FMA peak",
        f"recall@{wl.k}",
        "peak MB",
        "threads p50/max",
        "cpu/wall",
        "others' load",
        "recbatch speed-up",
    ]
    rows: list[list[str]] = []
    for m in methods:
        res = results[m.name]
        if res.skipped:
            notes.append(f"{m.name} skipped: {res.skipped}")
            continue
        s = res.seconds
        gf = wl.flops / s / 1e9
        sampled = [t.threads for t in res.timings if t.threads == t.threads]
        threads = statistics.median(sampled) if sampled else float("nan")
        most = max(t.threads_max for t in res.timings)
        cpu_ratio = statistics.median(t.cpu_ratio for t in res.timings)
        # A median over fewer than 10 samples (a run under 0.2 s) says little: no flag from it.
        enough = sum(t.samples for t in res.timings) >= 10
        over = (enough and threads > args.threads) or cpu_ratio > args.threads * 1.15
        flag = " (!)" if over else ""
        rows.append(
            [
                m.name,
                _fmt(res.build, 2),
                _fmt(s, 3),
                _fmt(wl.n / s, 0),
                _fmt(gf, 1),
                "-" if peak is None else f"{100 * gf / peak:.0f}%",
                _fmt(res.recall, 4),
                res.memory,
                ("-" if threads != threads else f"{threads:g}/{most}") + flag,  # noqa: PLR0124 - NaN check
                f"{cpu_ratio:.2f}",
                f"{100 * statistics.median(t.others for t in res.timings):.0f}%",
                "-" if base_s != base_s else f"{s / base_s:.2f}x",  # noqa: PLR0124 - NaN check
            ]
        )
        if flag:
            notes.append(f"{m.name}: more threads/CPU than --threads {args.threads} asked for")
    title = (
        f"{wl.name}: {wl.n:,} queries x {wl.m:,} items, d={wl.d}, k={wl.k}, threads={args.threads}, "
        f"median of {args.repeat}"
    )
    return [title], notes, [headers, *rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workloads", default="W1,W2,W3", help="comma list of W1,W2,W3,REAL (default W1,W2,W3)"
    )
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma list of {','.join(METHODS)}")
    parser.add_argument("--threads", type=int, default=2, help="threads for every method (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per method; the median is shown")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the number of queries (e.g. 0.05)")
    parser.add_argument("--real-scale", type=float, default=1.0, help="multiply REAL's users and items")
    parser.add_argument(
        "--sample", type=int, default=200, help="queries checked against the float64 reference"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-memory", dest="memory", action="store_false", help="skip the forked memory probes"
    )
    parser.add_argument("--memory-timeout", type=float, default=1800.0, help="seconds per memory probe")
    parser.add_argument(
        "--no-limits", dest="limits", action="store_false", help="skip the FMA peak and sgemm"
    )
    parser.add_argument("--markdown", action="store_true", help="print README-ready markdown tables")
    parser.add_argument(
        "--faiss-coretype",
        metavar="NAME",
        help="OPENBLAS_CORETYPE for faiss's bundled OpenBLAS only (e.g. SkylakeX, Haswell); see NOTES.md",
    )
    args = parser.parse_args(argv)

    unknown = [w for w in args.workloads.split(",") if w not in WORKLOADS]
    unknown += [m for m in args.methods.split(",") if m not in METHODS]
    if unknown:
        parser.error(f"unknown workload or method: {', '.join(unknown)}")
    methods = [METHODS[m] for m in args.methods.split(",")]
    # Before anything imports faiss (the availability checks below do).
    faiss_note = ""
    if args.faiss_coretype and METHODS["faiss"] in methods:
        try:
            import_faiss_with_coretype(args.faiss_coretype)
            faiss_note = f"faiss's bundled OpenBLAS loaded with OPENBLAS_CORETYPE={args.faiss_coretype} (--faiss-coretype)"
        except ImportError as exc:
            faiss_note = f"--faiss-coretype ignored: {exc}"
    out: list[str] = []

    def emit(text: str = "") -> None:
        out.append(text)
        print(text, flush=True)

    bullet = "- " if args.markdown else "  "
    emit(("#### " if args.markdown else "") + "recbatch peers benchmark")
    emit()
    cmd = "python " + " ".join(
        shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])]
    )
    emit(f"{bullet}command: `{cmd}`" if args.markdown else f"{bullet}command: {cmd}")
    emit(f"{bullet}date: {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    emit(
        f"{bullet}CPU: {cpu_model()}, {os.cpu_count()} logical CPUs ({affinity} usable), load {os.getloadavg()[0]:.2f}"
    )
    for m in methods:
        ok, why = m.availability()
        emit(f"{bullet}{m.name}: {why if ok else 'skipped (' + why + ')'}" + (f"; {m.note}" if ok else ""))
    if METHODS["recbatch"] in methods and METHODS["recbatch"].availability()[0]:
        import recbatch

        emit(
            f"{bullet}recbatch SIMD path: {recbatch.simd_level()} (available: {', '.join(recbatch.available_simd_levels())})"
        )
    prescott = False
    for line in blas_report():
        emit(f"{bullet}BLAS/OpenMP: {line}")
        prescott |= "kernels=Prescott" in line
    if faiss_note:
        emit(f"{bullet}{faiss_note}")
    elif prescott and METHODS["faiss"] in methods and "avx2" in cpu_flags():
        emit(
            f"{bullet}NOTE: an OpenBLAS here (faiss's bundled 0.3.15) does not know this CPU and runs its generic "
            "Prescott kernels; `--faiss-coretype SkylakeX` (AVX-512 CPUs) or `Haswell` (AVX2) measures faiss with "
            "fast ones, leaving NumPy's BLAS alone"
        )
    overrides = openblas_overrides()
    if overrides:
        warn = ", ".join(f"{k}={v}" for k, v in overrides.items())
        emit(
            f"{bullet}WARNING: {warn} is set: it overrides the kernels every OpenBLAS here picks and slows "
            "NumPy's sgemm; run `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/peers.py`"
        )
    emit()

    peak: float | None = None
    if args.limits:
        print("measuring the machine's limits ...", file=sys.stderr, flush=True)
        peaks: list[Peak] = fma_peaks(args.threads)
        rows = []
        for p in peaks:
            rows.append(
                [
                    f"FMA peak, {p.isa}",
                    _fmt(p.gflops if p.gflops is not None else float("nan")),
                    _fmt(p.per_cpu if p.per_cpu is not None else float("nan")),
                    p.note or "register-only FMA loop, one per thread, best of 5",
                ]
            )
        measured = [p.per_cpu for p in peaks if p.per_cpu]
        peak = max(measured) if measured else None
        gemm, gemm_cpu = sgemm_gflops(args.threads)
        rows.append(
            [
                "sgemm 4096^3, NumPy",
                _fmt(gemm),
                _fmt(gemm_cpu),
                "best of 3" + (f"; {100 * gemm_cpu / peak:.0f}% of the FMA peak" if peak else ""),
            ]
        )
        emit(
            f"Machine limits at {args.threads} threads, GFLOP/s. 'per CPU-s x T' is the rate per CPU-second "
            "of one thread times the threads: what the threads reach when no other process takes the "
            "CPUs. The '% FMA peak' columns below use the widest ISA's: "
            + ("-" if peak is None else f"{peak:.1f}")
        )
        emit()
        emit(render(["limit", "GFLOP/s (wall)", "per CPU-s x T", "how"], rows, args.markdown))
        emit()

    prepared = [
        setup_workload(
            WORKLOADS[name].scaled(args.scale) if name != "REAL" else WORKLOADS[name], args, methods
        )
        for name in args.workloads.split(",")
    ]
    for prep in prepared:
        titles, notes, table = run_workload(prep, args, methods, peak)
        emit(("**" + titles[0] + "**") if args.markdown else titles[0])
        emit()
        emit(render(table[0], table[1:], args.markdown))
        emit()
        for note in notes:
            emit(f"{bullet}{note}")
        if notes:
            emit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
