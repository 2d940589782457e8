"""The worker: claiming, outcomes, progress, interruption, crash recovery (with real processes)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from recbatch.jobs.client import Service
from recbatch.jobs.config import JobsConfig
from recbatch.jobs.store import (
    STATUS_ACTIVE,
    STATUS_FAILED,
    STATUS_IN_PROGRESS,
    STATUS_PENDING,
    JobRow,
    WorkerIdentity,
)
from recbatch.jobs.worker import Worker, host_id, process_alive, process_token
from tests.jobs.control_helpers import FakeRunner, create_request, progress
from tests.jobs.helpers import RECIPE, model_arrays, read_output, write_lines, write_model

REPO = Path(__file__).resolve().parents[2]


def wait_until(condition: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    """Poll until ``condition()``; the limit only turns a hang into a failure."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Home:
    """A home with a service, one solution version (not validated: the runner is a stand-in) and helpers."""

    def __init__(self, path: Path, **options: Any) -> None:
        self.path = path
        self.config = JobsConfig.resolve(path, region="us-east-1", account="000000000000", **options)
        self.service = Service(self.config)
        self.store = self.service.store
        self.sv = self.store.insert_solution_version(
            region="us-east-1",
            account="000000000000",
            solution_name="s",
            recipe_arn=RECIPE["user"],
            model_path="/m.npz",
        ).arn

    def create(self, name: str = "job-1", **overrides: Any) -> str:
        request = create_request(jobName=name, solutionVersionArn=self.sv, **overrides)
        return str(self.service.call("CreateBatchInferenceJob", request)["batchInferenceJobArn"])

    def job(self, arn: str) -> JobRow:
        row = self.store.get_job(arn)
        assert row is not None
        return row

    def worker(self, runner: Any, **kw: Any) -> Worker:
        return Worker(self.store, self.config, runner=runner, **kw)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Home]:
    h = Home(tmp_path / "home")
    yield h
    h.service.close()


def test_a_job_runs_to_active_with_its_request_and_solution(home: Home) -> None:
    arn = home.create(numResults=10)
    created = home.job(arn)
    runner = FakeRunner()
    worker = home.worker(runner)
    assert worker.run_pending_once() == arn
    assert worker.run_pending_once() is None
    (call,) = runner.calls
    assert call["kind"] == "inference"
    assert call["job"] == {**created.request, "batchInferenceJobArn": arn}
    assert call["job"]["numResults"] == 10
    assert call["solution"] == {
        "solutionVersionArn": home.sv,
        "recipeArn": RECIPE["user"],
        "modelPath": "/m.npz",
    }
    done = home.job(arn)
    assert done.status == STATUS_ACTIVE
    assert (done.records_read, done.records_written, done.records_failed) == (3, 3, 1)
    assert done.failure_reason is None
    assert done.worker_id == worker.worker_id
    assert done.updated_ms >= created.updated_ms + 2  # two transitions, each moves it


def test_jobs_run_oldest_first(home: Home) -> None:
    arns = [home.create(f"j{i}") for i in range(3)]
    runner = FakeRunner()
    worker = home.worker(runner)
    while worker.run_pending_once():
        pass
    assert [c["job"]["batchInferenceJobArn"] for c in runner.calls] == arns


def test_job_failed_becomes_create_failed_with_its_reason(home: Home) -> None:
    def fail(*_: Any) -> Any:
        raise FakeRunner.JobFailed("Could not read s3://bucket/in/: NoSuchBucket")

    arn = home.create()
    home.worker(FakeRunner(fail)).run_pending_once()
    row = home.job(arn)
    assert (row.status, row.failure_reason) == (STATUS_FAILED, "Could not read s3://bucket/in/: NoSuchBucket")


def test_an_unexpected_exception_is_an_internal_error(home: Home) -> None:
    def crash(*_: Any) -> Any:
        raise KeyError("numResults")

    arn = home.create()
    home.worker(FakeRunner(crash)).run_pending_once()
    row = home.job(arn)
    assert row.status == STATUS_FAILED
    assert row.failure_reason == "Internal error: KeyError: 'numResults'"


def test_a_stopping_worker_requeues_the_job_at_a_safe_point(home: Home) -> None:
    seen: list[bool] = []

    def run(job: Any, solution: Any, report: Any, should_stop: Callable[[], bool]) -> Any:
        report(progress(7, 7, 0))
        seen.append(should_stop())
        worker.stop()  # as a signal handler would
        seen.append(should_stop())
        raise FakeRunner.JobInterrupted("stopped")

    arn = home.create()
    worker = home.worker(FakeRunner(run))
    assert worker.run_pending_once() == arn
    assert seen == [False, True]
    row = home.job(arn)
    assert (row.status, row.worker_id, row.records_read, row.recoveries) == (STATUS_PENDING, None, 0, 0)
    # The next worker runs it from the start.
    home.worker(FakeRunner()).run_pending_once()
    assert home.job(arn).status == STATUS_ACTIVE


def test_run_forever_stops_on_its_event_and_requeues_the_running_job(home: Home) -> None:
    started = threading.Event()

    def run(job: Any, solution: Any, report: Any, should_stop: Callable[[], bool]) -> Any:
        if job["jobName"] == "slow":
            started.set()
            wait_until(should_stop, "should_stop")
            raise FakeRunner.JobInterrupted("stopped")
        return progress(1, 1, 0)

    quick = home.create("quick")
    slow = home.create("slow")
    stop = threading.Event()
    worker = home.worker(FakeRunner(run))
    thread = threading.Thread(target=worker.run_forever, args=(stop,))
    thread.start()
    started.wait(60)
    assert home.job(quick).status == STATUS_ACTIVE
    assert home.job(slow).status == STATUS_IN_PROGRESS
    stop.set()
    thread.join(60)
    assert not thread.is_alive()
    assert home.job(slow).status == STATUS_PENDING


def test_progress_writes_are_throttled(tmp_path: Path) -> None:
    def run(job: Any, solution: Any, report: Any, should_stop: Any) -> Any:
        report(progress(1, 1, 0))
        report(progress(5, 4, 1))  # within the interval: not written
        row = h.store.get_job(job["batchInferenceJobArn"])
        assert row is not None
        snapshots.append((row.records_read, row.records_written, row.records_failed))
        return progress(9, 9, 2)

    snapshots: list[tuple[int, int, int]] = []
    h = Home(tmp_path / "slow", progress_interval=3600)
    arn = h.create()
    h.worker(FakeRunner(run)).run_pending_once()
    assert snapshots == [(1, 1, 0)]
    row = h.job(arn)
    assert (row.records_read, row.records_written, row.records_failed) == (9, 9, 2)  # the final counts always
    h.service.close()

    snapshots.clear()
    h = Home(tmp_path / "fast", progress_interval=0)
    h.create()
    h.worker(FakeRunner(run)).run_pending_once()
    assert snapshots == [(5, 4, 1)]
    h.service.close()


def test_the_heartbeat_is_refreshed_while_a_job_runs(tmp_path: Path) -> None:
    h = Home(tmp_path / "home", stale_after=10, heartbeat_interval=0.05)

    def run(job: Any, solution: Any, report: Any, should_stop: Any) -> Any:
        first = h.job(job["batchInferenceJobArn"]).heartbeat_ms
        assert first is not None
        wait_until(
            lambda: (h.job(job["batchInferenceJobArn"]).heartbeat_ms or 0) > first, "a newer heartbeat"
        )
        return progress(0, 0, 0)

    arn = h.create()
    h.worker(FakeRunner(run)).run_pending_once()
    row = h.job(arn)
    assert row.status == STATUS_ACTIVE
    assert row.heartbeat_ms is None
    h.service.close()


def test_a_worker_whose_job_was_taken_over_stops_and_changes_nothing(home: Home) -> None:
    def run(job: Any, solution: Any, report: Any, should_stop: Callable[[], bool]) -> Any:
        # Another worker presumed this one dead and requeued the job.
        home.store.recover_jobs(is_dead=lambda row: "presumed dead", max_recoveries=3)
        assert not should_stop()
        report(progress(1, 1, 0))  # the refused progress write reveals the loss
        assert should_stop()
        raise FakeRunner.JobInterrupted("stopped")

    arn = home.create()
    home.worker(FakeRunner(run)).run_pending_once()
    row = home.job(arn)
    assert (row.status, row.recoveries, row.records_read) == (STATUS_PENDING, 1, 0)


def test_a_missing_solution_version_fails_the_job(home: Home) -> None:
    arn = home.create()
    conn = sqlite3.connect(home.store.path)
    conn.execute("DELETE FROM solution_versions")
    conn.commit()
    conn.close()
    home.worker(FakeRunner()).run_pending_once()
    row = home.job(arn)
    assert row.status == STATUS_FAILED
    assert row.failure_reason == f"The solution version {home.sv} no longer exists"


def _claim_as(home: Home, identity: WorkerIdentity) -> JobRow:
    row = home.store.claim_job(identity)
    assert row is not None
    return row


def test_recovery_requeues_jobs_of_dead_or_silent_workers_only(home: Home) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    dead_pid = int(gone.stdout)
    here = host_id()
    dead = home.create("dead")
    _claim_as(home, WorkerIdentity("dead-worker", here, dead_pid, None))
    silent = home.create("silent")
    _claim_as(home, WorkerIdentity("remote-worker", "another-host", 4242, None))
    conn = sqlite3.connect(home.store.path)
    conn.execute("UPDATE jobs SET heartbeat_ms = heartbeat_ms - 3600000 WHERE name = 'silent'")
    conn.commit()
    conn.close()
    remote = home.create("remote")
    _claim_as(home, WorkerIdentity("remote-worker-2", "another-host", 4243, None))  # fresh heartbeat
    live = home.create("live")
    _claim_as(home, WorkerIdentity("live-worker", here, os.getpid(), process_token(os.getpid())))

    changed = home.worker(FakeRunner()).recover()
    assert sorted(row.name for row, _ in changed) == ["dead", "silent"]
    assert home.job(dead).status == STATUS_PENDING
    assert home.job(silent).status == STATUS_PENDING
    assert home.job(remote).status == STATUS_IN_PROGRESS
    assert home.job(live).status == STATUS_IN_PROGRESS


def test_a_job_that_keeps_killing_its_worker_is_failed(tmp_path: Path) -> None:
    h = Home(tmp_path / "home", max_recoveries=2)
    arn = h.create()
    for attempt in range(2):
        _claim_as(h, WorkerIdentity(f"w{attempt}", "another-host", 1, None))
        conn = sqlite3.connect(h.store.path)
        conn.execute("UPDATE jobs SET heartbeat_ms = 0")
        conn.commit()
        conn.close()
        h.worker(FakeRunner()).recover()
    row = h.job(arn)
    assert row.status == STATUS_FAILED
    assert row.failure_reason is not None
    assert row.failure_reason.startswith(
        "The worker running this job stopped unexpectedly 2 times (last: no heartbeat"
    )
    h.service.close()


def test_process_identity_helpers() -> None:
    me = os.getpid()
    assert process_alive(me, process_token(me))
    assert process_alive(me, None)
    if process_token(me) is not None:  # Linux: a reused pid is told apart by its start time
        assert not process_alive(me, "0")
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    assert not process_alive(int(gone.stdout), None)
    assert host_id() == host_id()


# ------------------------------------------------------------------------------ real processes

BLOCKING_WORKER = textwrap.dedent(
    """
    import pathlib, sys, time
    from recbatch.jobs import io as jobio, runner as r
    from recbatch.jobs.config import JobsConfig
    from recbatch.jobs.store import Store
    from recbatch.jobs.worker import Worker

    home, marker = sys.argv[1], sys.argv[2]

    class Blocking:
        JobFailed = r.JobFailed
        JobInterrupted = r.JobInterrupted

        def run_batch_inference_job(self, job, solution, *, progress, should_stop, threads):
            progress(r.JobProgress(5, 4, 1))
            # Half-way through its output, as the real runner would be.
            prefix = job["jobOutput"]["s3DataDestination"]["path"]
            tag = jobio.partial_output_tag(job["batchInferenceJobArn"])
            out = jobio.OutputObject(jobio.output_uri(prefix, "users.jsonl"), tag=tag)
            out.write(b'{"partial": true}\\n')
            pathlib.Path(marker).write_text(job["batchInferenceJobArn"])
            time.sleep(3600)  # killed here

        run_batch_segment_job = run_batch_inference_job
        remove_partial_output = staticmethod(r.remove_partial_output)

    Worker(Store(home), JobsConfig.resolve(home), runner=Blocking()).run_pending_once()
    """
)


def test_a_killed_worker_process_job_is_finished_by_the_next_worker(tmp_path: Path) -> None:
    """SIGKILL a worker mid-job; the next worker requeues the job at start-up and runs it to ACTIVE."""
    home_dir = tmp_path / "home"
    config = JobsConfig.resolve(home_dir, region="us-east-1", account="000000000000")
    service = Service(config)
    model = write_model(tmp_path, model_arrays())
    sv = service.call(
        "ImportSolutionVersion", {"solutionName": "s", "recipeArn": RECIPE["user"], "modelPath": model}
    )["solutionVersionArn"]
    write_lines(tmp_path / "in" / "users.jsonl", [{"userId": f"u{i}"} for i in range(20)])
    arn = service.call(
        "CreateBatchInferenceJob",
        create_request(
            solutionVersionArn=sv,
            numResults=5,
            jobInput={"s3DataSource": {"path": str(tmp_path / "in") + "/"}},
            jobOutput={"s3DataDestination": {"path": str(tmp_path / "out") + "/"}},
        ),
    )["batchInferenceJobArn"]

    marker = tmp_path / "running"
    child = subprocess.Popen([sys.executable, "-c", BLOCKING_WORKER, str(home_dir), str(marker)], cwd=REPO)
    try:
        wait_until(lambda: marker.exists() or child.poll() is not None, "the child worker to start the job")
        assert child.poll() is None, "the child worker exited early"
        running = service.store.get_job(arn)
        assert running is not None
        assert (running.status, running.worker_pid, running.records_read) == (
            STATUS_IN_PROGRESS,
            child.pid,
            5,
        )
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    # The killed run left its temporary output beside the final name (a dot file, never an input).
    [partial] = [p.name for p in (tmp_path / "out").iterdir() if p.name.endswith(".recbatch-tmp")]
    assert partial.startswith(".users.jsonl.out.")
    (tmp_path / "out" / ".users.jsonl.out.0123456789ab-00.recbatch-tmp").write_bytes(b"another job's")

    # The next worker (real runner, default) starts: it sees the dead process and requeues, then runs it.
    worker = Worker(service.store, config)
    assert worker.run_pending_once() == arn
    # The dead run's temporary file is gone; another job's is not touched.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        ".users.jsonl.out.0123456789ab-00.recbatch-tmp",
        "_CHECK",
        "users.jsonl.out",
    ]
    done = service.store.get_job(arn)
    assert done is not None
    assert (done.status, done.failure_reason, done.recoveries) == (STATUS_ACTIVE, None, 1)
    assert (done.records_read, done.records_written, done.records_failed) == (20, 20, 0)
    lines = read_output(tmp_path / "out" / "users.jsonl.out")
    assert [line["input"] for line in lines] == [{"userId": f"u{i}"} for i in range(20)]
    assert all(len(line["output"]["recommendedItems"]) == 5 for line in lines)
    service.close()


DRAINING_WORKER = textwrap.dedent(
    """
    import os, sys, time
    from recbatch.jobs import runner as r
    from recbatch.jobs.config import JobsConfig
    from recbatch.jobs.store import Store
    from recbatch.jobs.worker import Worker

    home, log, go = sys.argv[1], sys.argv[2], sys.argv[3]

    class Logging:
        JobFailed = r.JobFailed
        JobInterrupted = r.JobInterrupted

        def run_batch_inference_job(self, job, solution, *, progress, should_stop, threads):
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            os.write(fd, (job["batchInferenceJobArn"] + " " + str(os.getpid()) + "\\n").encode())
            os.close(fd)
            time.sleep(0.05)
            return r.JobProgress(1, 1, 0)

        run_batch_segment_job = run_batch_inference_job

    while not os.path.exists(go):
        time.sleep(0.01)
    worker = Worker(Store(home), JobsConfig.resolve(home), runner=Logging())
    while worker.run_pending_once():
        pass
    """
)


def test_several_worker_processes_never_run_a_job_twice(home: Home, tmp_path: Path) -> None:
    arns = [home.create(f"j{i}") for i in range(12)]
    log, go = tmp_path / "runs.log", tmp_path / "go"
    children = [
        subprocess.Popen([sys.executable, "-c", DRAINING_WORKER, str(home.path), str(log), str(go)], cwd=REPO)
        for _ in range(3)
    ]
    go.touch()
    for child in children:
        assert child.wait(120) == 0
    runs = [line.split()[0] for line in log.read_text().splitlines()]
    assert sorted(runs) == sorted(arns)  # every job exactly once
    assert all(home.job(arn).status == STATUS_ACTIVE for arn in arns)
