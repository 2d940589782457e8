"""Fixtures of the endpoint tests: one ``recbatch serve`` subprocess per module, a model imported through it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from numpy.typing import NDArray

from tests.jobs.helpers import model_arrays, write_lines, write_model
from tests.server.helpers import USER_RECIPE, ServerProcess


@pytest.fixture(scope="module")
def arrays() -> dict[str, NDArray[Any]]:
    return model_arrays(n_users=40, n_items=200, dim=8, seed=3)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server")


@pytest.fixture(scope="module")
def model_path(workdir: Path, arrays: dict[str, NDArray[Any]]) -> str:
    return write_model(workdir, arrays)


@pytest.fixture(scope="module")
def input_path(workdir: Path) -> str:
    lines: list[dict[str, Any] | str] = [{"userId": f"u{i}"} for i in range(10)]
    return str(write_lines(workdir / "input" / "users.jsonl", lines))


@pytest.fixture(scope="module")
def server(workdir: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(workdir / "home")
    try:
        yield process
    finally:
        process.kill()


@pytest.fixture(scope="module")
def version_arn(server: ServerProcess, model_path: str) -> str:
    """A solution version imported through the server (ImportSolutionVersion, recbatch's operation)."""
    arn: str = server.recbatch_client().import_solution_version(
        solutionName="server-tests", recipeArn=USER_RECIPE, modelPath=model_path
    )["solutionVersionArn"]
    return arn
