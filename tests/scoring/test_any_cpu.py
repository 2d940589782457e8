"""One build runs on any x86-64 CPU: the installed package under an emulated older CPU.

qemu-user (Debian's `qemu-user`) emulates a Nehalem (no AVX at all: only the portable path
may be chosen, and nothing wider may execute) and a Haswell (AVX2, no AVX-512: the avx2_int8
screening pass and its avx2 rescoring, checked bit for bit against the avx2 path there); ranking's
list products take the portable kernel on the first and the AVX2 one on the second. CI
installs it and sets RECBATCH_REQUIRE_QEMU=1 so these cannot be skipped there.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

QEMU = shutil.which("qemu-x86_64")
EXACTNESS = Path(__file__).with_name("test_exactness.py")
SCREENING = Path(__file__).with_name("test_screening.py")
RANKING = Path(__file__).with_name("test_ranking.py")

pytestmark = [
    pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 only"),
    pytest.mark.skipif(
        QEMU is None and not os.environ.get("RECBATCH_REQUIRE_QEMU"),
        reason="qemu-x86_64 not installed (apt-get install qemu-user)",
    ),
]


@pytest.mark.parametrize(("cpu", "level"), [("Nehalem", "scalar"), ("Haswell", "avx2_int8")])
def test_package_runs_on_older_cpu(cpu: str, level: str) -> None:
    assert QEMU is not None, "qemu-x86_64 is required here (RECBATCH_REQUIRE_QEMU is set)"
    env = {k: v for k, v in os.environ.items() if k != "RECBATCH_SIMD"}
    probe = subprocess.run(
        [QEMU, "-cpu", cpu, sys.executable, "-c", "import recbatch; print(recbatch.simd_level())"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == level
    tests = subprocess.run(
        [
            QEMU,
            "-cpu",
            cpu,
            sys.executable,
            "-m",
            "pytest",
            str(EXACTNESS),
            str(SCREENING),
            str(RANKING),
            "-q",
            "-x",
            "-p",
            "no:cacheprovider",
            "-k",
            # Emulation runs about 50x slower: the heaviest tests (the same code paths at larger
            # sizes, all run natively) are left to the native run.
            (
                "not property and not large_catalogue and not neighbours and not threads_give"
                " and not spread_norms and not odd_dims"
            ),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert " passed" in tests.stdout
