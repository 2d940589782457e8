from __future__ import annotations

import numpy as np
import pytest

import recbatch

LEVELS = recbatch.available_simd_levels()


@pytest.fixture(params=LEVELS)
def level(request: pytest.FixtureRequest) -> str:
    """Every SIMD path this CPU can run (each is compared with the float64 reference)."""
    return str(request.param)


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    # Fresh inputs every run; the seed is printed on failure through the test id + this value.
    seed = np.random.SeedSequence().entropy
    print(f"rng seed: {seed}")
    return np.random.default_rng(seed)
