"""Shared builders for the control-plane tests (validation, store, client, worker)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from recbatch.jobs import runner as real_runner
from recbatch.jobs.client import Client
from tests.jobs.helpers import RECIPE, model_arrays, write_model

ROLE = "arn:aws:iam::123456789012:role/PersonalizeBatch"
SV_ARN = "arn:aws:personalize:us-east-1:000000000000:solution/s/0123abcd"


def create_request(**overrides: Any) -> dict[str, Any]:
    """A valid CreateBatchInferenceJob request; keyword arguments replace members (None removes one)."""
    request: dict[str, Any] = {
        "jobName": "job-1",
        "solutionVersionArn": SV_ARN,
        "jobInput": {"s3DataSource": {"path": "s3://bucket/in/"}},
        "jobOutput": {"s3DataDestination": {"path": "s3://bucket/out/"}},
        "roleArn": ROLE,
    }
    request.update(overrides)
    return {k: v for k, v in request.items() if v is not None}


def import_model(c: Client, directory: Path, recipe: str = "user", name: str = "sol") -> str:
    """Write a small real model artifact and import it; returns the solution version ARN."""
    directory.mkdir(parents=True, exist_ok=True)
    path = write_model(directory, model_arrays(), name=f"{name}-{recipe}.npz")
    return str(
        c.import_solution_version(solutionName=name, recipeArn=RECIPE[recipe], modelPath=path)[
            "solutionVersionArn"
        ]
    )


class FakeRunner:
    """A stand-in for ``recbatch.jobs.runner``: same exceptions, scripted behaviour, records its calls.

    ``behaviour(job, solution, progress, should_stop)`` returns a JobProgress or raises; the default
    succeeds at once with counts (3, 3, 1).
    """

    JobFailed = real_runner.JobFailed
    JobInterrupted = real_runner.JobInterrupted

    def __init__(self, behaviour: Callable[..., Any] | None = None) -> None:
        self.behaviour = behaviour
        self.calls: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def _run(self, kind: str, job: Mapping[str, Any], solution: Mapping[str, Any], **kw: Any) -> Any:
        with self.lock:
            self.calls.append(
                {"kind": kind, "job": dict(job), "solution": dict(solution), "threads": kw["threads"]}
            )
        if self.behaviour is None:
            return real_runner.JobProgress(3, 3, 1)
        return self.behaviour(job, solution, kw["progress"], kw["should_stop"])

    def run_batch_inference_job(self, job: Mapping[str, Any], solution: Mapping[str, Any], **kw: Any) -> Any:
        return self._run("inference", job, solution, **kw)

    def run_batch_segment_job(self, job: Mapping[str, Any], solution: Mapping[str, Any], **kw: Any) -> Any:
        return self._run("segment", job, solution, **kw)

    def remove_partial_output(self, job: Mapping[str, Any]) -> int:
        return real_runner.remove_partial_output(job)


def progress(read: int, written: int, failed: int) -> Any:
    """A JobProgress."""
    return real_runner.JobProgress(read, written, failed)
