"""The code stays lint-clean and typed: ruff, mypy (strict, pyproject's settings) and stubtest for _core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff() -> None:
    result = run("ruff", "check", "python", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = run("ruff", "format", "--check", "python", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_extension_stub_matches_the_module() -> None:
    result = run(
        "mypy.stubtest", "recbatch._core", "--allowlist", str(ROOT / "tests" / "stubtest_allowlist.txt")
    )
    assert result.returncode == 0, result.stdout + result.stderr
