"""The machine's two limits: the float32 FMA peak and a large square sgemm through NumPy."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).with_name("fma_peak.cpp")

# ISA name -> (compiler flags, CPU flags in /proc/cpuinfo that it needs)
ISAS: dict[str, tuple[list[str], set[str]]] = {
    "avx2": (["-mavx2", "-mfma"], {"avx2", "fma"}),
    "avx512": (["-mavx512f", "-mfma", "-DFMA_AVX512"], {"avx512f"}),
}


@dataclass(frozen=True)
class Peak:
    """An FMA peak: the best of several runs, because noise only ever lowers a peak."""

    isa: str
    threads: int
    gflops: float | None  # best wall-clock rate of the threads together
    per_cpu: float | None = None  # flops per CPU-second of one thread, times threads
    note: str = ""


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux), empty where /proc/cpuinfo is missing."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def fma_peaks(threads: int, repeat: int = 5, seconds: float = 0.3) -> list[Peak]:
    """Compile ``fma_peak.cpp`` per ISA the CPU has and run it on ``threads`` threads."""
    compiler = shutil.which("g++") or shutil.which("c++")
    flags = cpu_flags()
    peaks: list[Peak] = []
    with tempfile.TemporaryDirectory(prefix="recbatch-fma-") as tmp:
        for isa, (cflags, needs) in ISAS.items():
            if compiler is None:
                peaks.append(Peak(isa, threads, None, "no C++ compiler (g++) on PATH"))
                continue
            if not needs <= flags:
                peaks.append(Peak(isa, threads, None, f"CPU lacks {', '.join(sorted(needs - flags))}"))
                continue
            exe = Path(tmp) / f"fma_{isa}"
            build = subprocess.run(
                [compiler, "-O2", "-std=c++17", "-pthread", *cflags, str(SOURCE), "-o", str(exe)],
                capture_output=True,
                text=True,
                check=False,
            )
            if build.returncode != 0:
                peaks.append(Peak(isa, threads, None, f"compile failed: {build.stderr.strip()[:200]}"))
                continue

            def run(iterations: int, exe: Path = exe) -> tuple[float, float, float]:
                out = subprocess.run(
                    [str(exe), str(threads), str(iterations)], capture_output=True, text=True, check=True
                ).stdout.split()
                seconds, gflops, cpu = float(out[0]), float(out[1]), float(out[2])
                per_cpu = gflops * seconds / cpu * threads if cpu > 0 else 0.0
                return seconds, gflops, per_cpu

            secs, _, _ = run(10_000_000)
            iterations = max(1_000_000, int(10_000_000 * seconds / max(secs, 1e-6)))
            runs = [run(iterations) for _ in range(repeat)]
            peaks.append(Peak(isa, threads, max(r[1] for r in runs), max(r[2] for r in runs)))
    return peaks


def blas_limit(threads: int) -> AbstractContextManager[object]:
    """Limit every BLAS in the process to ``threads`` (a no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


def sgemm_gflops(threads: int, size: int = 4096, repeat: int = 3) -> tuple[float, float]:
    """A ``size``-cubed float32 product through NumPy's BLAS: (best wall GFLOP/s, per CPU-s x T)."""
    rng = np.random.default_rng(7)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty((size, size), dtype=np.float32)
    best_wall = best_cpu = 0.0
    flops = 2.0 * size**3
    with blas_limit(threads):
        np.matmul(a, b, out=out)  # warm-up: thread start, page faults
        for _ in range(repeat):
            cpu0 = time.process_time()
            start = time.perf_counter()
            np.matmul(a, b, out=out)
            wall = time.perf_counter() - start
            cpu = time.process_time() - cpu0
            best_wall = max(best_wall, flops / wall / 1e9)
            if cpu > 0:
                best_cpu = max(best_cpu, flops / cpu / 1e9 * threads)
    return best_wall, best_cpu
