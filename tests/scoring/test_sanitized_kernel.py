"""The C++ kernel tests (tests/cpp) built with AddressSanitizer and UndefinedBehaviorSanitizer.

The same build by hand:
    cmake -S cpp -B build/asan -DRECBATCH_SANITIZE=ON -DRECBATCH_BUILD_TESTS=ON && cmake --build build/asan -j2
    ctest --test-dir build/asan --output-on-failure

The build includes benchmarks/search_share.cpp, which drives the kernel directly: where the CPU
can run it, a short run under the sanitizers checks its use of the kernel contract too; and
benchmarks/search_only.cpp, run briefly on a few paths.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import recbatch

ROOT = Path(__file__).parents[2]


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is needed to build the kernel tests (pip install {name})")
    return found


def test_kernel_under_address_and_ub_sanitizers(tmp_path: Path) -> None:
    build = tmp_path / "asan"
    configure = [
        tool("cmake"),
        "-S",
        str(ROOT / "cpp"),
        "-B",
        str(build),
        "-G",
        "Ninja",
        f"-DCMAKE_MAKE_PROGRAM={tool('ninja')}",
        "-DRECBATCH_SANITIZE=ON",
        "-DRECBATCH_BUILD_TESTS=ON",
        "-DRECBATCH_BUILD_BENCHMARKS=ON",
    ]
    subprocess.run(configure, check=True, capture_output=True, timeout=300)
    compiled = subprocess.run(
        [tool("cmake"), "--build", str(build), "-j2"],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    # -Wall -Wextra, library, tests and benchmark: a clean build (kernels/intrinsics.hpp keeps
    # GCC 12's false warnings from its own AVX-512 headers out).
    assert "warning:" not in compiled.stdout + compiled.stderr, compiled.stdout + compiled.stderr
    # test_screen_kernels exists where the compiler knows the AMX instructions.
    tests = [
        "test_search",
        "test_task_shape",
        "test_top_k_list",
        "test_panel_memory",
        "test_score_tile_lse",
        "test_score_tile_candidates",
        "test_thinning",
        "test_id_index",
        "test_id_lines",
        "test_row_texts",
        "test_list_dots",
        "test_rank_lists",
        "test_ranking_lines",
    ] + (["test_screen_kernels"] if (build / "test_screen_kernels").exists() else [])
    for test in tests:
        run = subprocess.run([str(build / test)], capture_output=True, text=True, timeout=300, check=False)
        assert run.returncode == 0, test + ": " + run.stdout + run.stderr
        assert run.stdout.strip().endswith("0 failed"), run.stdout
        assert "runtime error" not in run.stderr  # UBSan findings
    if "avx512" in recbatch.available_simd_levels() and (build / "search_share").exists():
        share = subprocess.run(
            [str(build / "search_share"), "W3", "240", "1"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert share.returncode == 0, share.stdout + share.stderr
        assert share.stdout.startswith("| W3 | 240 | 1 |")
        assert "runtime error" not in share.stderr
    # The A/B tool (benchmarks/search_only.cpp) on the paths it offers: levels, log-sum-exp,
    # exclusions.
    levels = recbatch.available_simd_levels()
    runs = ["exclude", "level=scalar"] + (["logsumexp,level=avx2"] if "avx2" in levels else [])
    runs += [f"exclude,level={level}" for level in ("avx2_int8", "avx2_vnni") if level in levels]
    for options in runs if (build / "search_only").exists() else []:
        alone = subprocess.run(
            [str(build / "search_only"), "W3", "100", "1", "2", options],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert alone.returncode == 0, alone.stdout + alone.stderr
        assert alone.stdout.startswith(f"W3, 100 queries, 2 threads, {options}: best of 1 ")
        assert "runtime error" not in alone.stderr
