"""The job worker: claims pending jobs, runs them with the data-plane runner, records the outcome.

A worker runs one job at a time. Any number of workers, in any number of processes sharing a home, may
run side by side: claiming is atomic in the store, so no job runs twice at once.

Crash safety. While a job runs, a heartbeat thread refreshes the job's heartbeat every
``heartbeat_interval`` seconds. A worker starting up (and a long-running one, every ``stale_after``
seconds) requeues each running job whose holder is presumed dead: its heartbeat is older than
``stale_after``, or it was claimed by a process on this host that no longer exists. The job then reruns
from the start; the runner never leaves partial output, so nothing half-written is ever visible. A job
whose worker has died ``max_recoveries`` times is failed instead, so that a job that kills its worker
(for example by exhausting memory) does not loop for ever.

Shutdown. :meth:`Worker.stop` (or the ``stop_event`` given to :meth:`Worker.run_forever`) makes the running
job's ``should_stop()`` true; the runner stops at a safe point by raising ``JobInterrupted``, and the job
goes back to ``CREATE PENDING`` for the next worker.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from recbatch.jobs.config import JobsConfig
from recbatch.jobs.store import (
    INFERENCE,
    STATUS_ACTIVE,
    STATUS_FAILED,
    JobRow,
    Store,
    WorkerIdentity,
    now_ms,
)

__all__ = ["RunnerAPI", "Worker", "host_id", "process_alive", "process_token"]

log = logging.getLogger(__name__)


class RunnerAPI(Protocol):
    """What the worker needs of ``recbatch.jobs.runner`` (a module or any object with these members)."""

    JobFailed: type[Exception]
    JobInterrupted: type[Exception]

    def run_batch_inference_job(
        self,
        job: Mapping[str, Any],
        solution: Mapping[str, Any],
        *,
        progress: Callable[[Any], None] | None = ...,
        should_stop: Callable[[], bool] | None = ...,
        threads: int | None = ...,
    ) -> Any: ...

    def run_batch_segment_job(
        self,
        job: Mapping[str, Any],
        solution: Mapping[str, Any],
        *,
        progress: Callable[[Any], None] | None = ...,
        should_stop: Callable[[], bool] | None = ...,
        threads: int | None = ...,
    ) -> Any: ...

    def remove_partial_output(self, job: Mapping[str, Any]) -> int: ...


# -------------------------------------------------------------------------------- process identity


@cache
def host_id() -> str:
    """This machine, as stored with a claimed job: the host name plus the boot id where Linux has one.

    The boot id makes a process id from before a reboot count as dead, even if the number is reused.
    """
    name = socket.gethostname()
    with contextlib.suppress(OSError):
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{name}/{boot}"
    return name


def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses; the fields after its last ')' do not.
    return text[text.rindex(")") + 2 :].split()


def process_token(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux), so that a reused process id is not mistaken for it."""
    fields = _proc_stat(pid)
    return fields[19] if fields is not None and len(fields) > 19 else None


def process_alive(pid: int, token: str | None) -> bool:
    """Whether process ``pid`` on this host still runs (and is the process that had ``token``)."""
    if Path("/proc/self/stat").exists():
        fields = _proc_stat(pid)
        if fields is None or fields[0] in ("Z", "X"):  # gone, or a zombie nobody reaped yet
            return False
        return token is None or len(fields) <= 19 or fields[19] == token
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


# ------------------------------------------------------------------------------------------ worker


@dataclass
class _Running:
    """The state of the one job a worker is running."""

    row: JobRow
    lost: threading.Event
    done: threading.Event
    last_progress: float = float("-inf")


def _default_runner() -> RunnerAPI:
    # Imported when first needed: the runner pulls in NumPy, the kernel and smart_open.
    module: Any = importlib.import_module("recbatch.jobs.runner")
    return module  # type: ignore[no-any-return]


class Worker:
    """Runs the jobs of one home, one at a time.

    Args:
        store: the home's store.
        config: intervals, limits and thread count (default: resolved for ``store.home``).
        runner: the data plane (default: the module ``recbatch.jobs.runner``); tests pass a stand-in.
        worker_id: stored with each claimed job (default: host, pid and a random suffix).
    """

    def __init__(
        self,
        store: Store,
        config: JobsConfig | None = None,
        *,
        runner: RunnerAPI | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.store = store
        self.config = config if config is not None else JobsConfig.resolve(store.home)
        self._runner = runner
        pid = os.getpid()
        self.identity = WorkerIdentity(
            worker_id=worker_id or f"{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:8]}",
            host=host_id(),
            pid=pid,
            pid_token=process_token(pid),
        )
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._external_stop: threading.Event | None = None
        self._recovered = False

    @property
    def worker_id(self) -> str:
        """The id stored with the jobs this worker claims."""
        return self.identity.worker_id

    @property
    def runner(self) -> RunnerAPI:
        """The data-plane runner in use."""
        if self._runner is None:
            self._runner = _default_runner()
        return self._runner

    # -- control

    def stop(self) -> None:
        """Ask the worker to stop: the running job is interrupted at a safe point and requeued."""
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        """Look for pending jobs now rather than after the poll interval."""
        self._wake.set()

    def stopping(self) -> bool:
        """Whether a stop was requested (by :meth:`stop` or ``run_forever``'s ``stop_event``)."""
        external = self._external_stop
        return self._stopping.is_set() or (external is not None and external.is_set())

    # -- recovery

    def _why_dead(self, row: JobRow) -> str | None:
        age_ms = now_ms() - (row.heartbeat_ms if row.heartbeat_ms is not None else row.updated_ms)
        if age_ms > self.config.stale_after * 1000:
            return f"no heartbeat from worker {row.worker_id} for {age_ms / 1000:.0f} s"
        same_host = row.worker_host == self.identity.host and row.worker_pid is not None
        if same_host and not process_alive(row.worker_pid or 0, row.worker_pid_token):
            return f"worker process {row.worker_pid} ({row.worker_id}) is gone"
        return None

    def recover(self) -> list[tuple[JobRow, str]]:
        """Requeue (or fail, after ``max_recoveries``) the running jobs whose worker died."""
        changed = self.store.recover_jobs(is_dead=self._why_dead, max_recoveries=self.config.max_recoveries)
        for row, status in changed:
            action = "requeued" if status != STATUS_FAILED else "failed"
            log.warning("job %s %s: its worker %s died", row.arn, action, row.worker_id)
            # The dead run's temporary output file (never visible under the output's own name).
            try:
                self.runner.remove_partial_output(self._job_members(row))
            except OSError as e:
                log.warning("job %s: could not remove the dead run's partial output: %s", row.arn, e)
        self._recovered = True
        return changed

    @staticmethod
    def _job_members(row: JobRow) -> dict[str, Any]:
        """The job as the runner takes it: its create request plus its ARN."""
        arn_member = "batchInferenceJobArn" if row.kind == INFERENCE else "batchSegmentJobArn"
        return {**row.request, arn_member: row.arn}

    # -- running

    def run_pending_once(self, arn: str | None = None) -> str | None:
        """Claim and run one pending job (the oldest, or ``arn``); return its ARN, or None if none was pending.

        The first call also recovers jobs left running by dead workers.
        """
        if not self._recovered:
            self.recover()
        if self.stopping():
            return None  # a stopping worker takes no new job
        row = self.store.claim_job(self.identity, arn)
        if row is None:
            return None
        self._run(row)
        return row.arn

    def run_forever(self, stop_event: threading.Event | None = None) -> None:
        """Run pending jobs until ``stop_event`` is set or :meth:`stop` is called."""
        self._external_stop = stop_event
        self.recover()
        last_recovery = time.monotonic()
        while not self.stopping():
            try:
                if time.monotonic() - last_recovery >= self.config.stale_after:
                    self.recover()
                    last_recovery = time.monotonic()
                ran = None if self.stopping() else self.run_pending_once()
            except Exception:
                # The store may be briefly unusable (disk full, a lock held too long): keep serving.
                log.exception("worker %s: error while looking for jobs", self.worker_id)
                ran = None
            if ran is None:
                self._wake.wait(self.config.poll_interval)
                self._wake.clear()

    def _run(self, row: JobRow) -> None:
        running = _Running(row=row, lost=threading.Event(), done=threading.Event())
        beat = threading.Thread(
            target=self._heartbeat, args=(running,), name=f"recbatch-heartbeat-{row.id}", daemon=True
        )
        beat.start()
        try:
            self._execute(running)
        finally:
            running.done.set()
            beat.join()

    def _execute(self, running: _Running) -> None:
        row, wid = running.row, self.worker_id
        solution_row = self.store.get_solution_version(row.solution_version_arn)
        if solution_row is None:
            self.store.finish_job(
                row.id,
                wid,
                status=STATUS_FAILED,
                failure_reason=f"The solution version {row.solution_version_arn} no longer exists",
            )
            return
        job = self._job_members(row)
        solution = {
            "solutionVersionArn": solution_row.arn,
            "recipeArn": solution_row.recipe_arn,
            "modelPath": solution_row.model_path,
        }
        runner = self.runner
        run = runner.run_batch_inference_job if row.kind == INFERENCE else runner.run_batch_segment_job

        def should_stop() -> bool:
            return self.stopping() or running.lost.is_set()

        def progress(p: Any) -> None:
            self._progress(running, p)

        log.info("job %s: started by %s", row.arn, wid)
        try:
            result = run(
                job, solution, progress=progress, should_stop=should_stop, threads=self.config.threads
            )
        except runner.JobInterrupted:
            requeued = self.store.requeue_job(row.id, wid)
            log.info("job %s: interrupted, %s", row.arn, "requeued" if requeued else "no longer ours")
        except runner.JobFailed as e:
            self._finish(row, status=STATUS_FAILED, reason=str(e) or type(e).__name__)
        except Exception as e:
            log.exception("job %s: internal error", row.arn)
            self._finish(row, status=STATUS_FAILED, reason=f"Internal error: {type(e).__name__}: {e}")
        else:
            self._finish(row, status=STATUS_ACTIVE, counters=_counters(result))

    def _finish(
        self,
        row: JobRow,
        *,
        status: str,
        reason: str | None = None,
        counters: tuple[int, int, int] | None = None,
    ) -> None:
        if self.store.finish_job(
            row.id, self.worker_id, status=status, failure_reason=reason, counters=counters
        ):
            log.info("job %s: %s%s", row.arn, status, f" ({reason})" if reason else "")
        else:
            # Another worker presumed us dead and requeued the job; its run is the one that counts.
            log.warning("job %s: finished as %s but no longer owned by %s", row.arn, status, self.worker_id)

    def _progress(self, running: _Running, p: Any) -> None:
        now = time.monotonic()
        if now - running.last_progress < self.config.progress_interval:
            return  # throttled: a progress write per job at most every progress_interval seconds
        running.last_progress = now
        counters = _counters(p)
        if counters is not None and not self.store.update_progress(running.row.id, self.worker_id, *counters):
            running.lost.set()

    def _heartbeat(self, running: _Running) -> None:
        while not running.done.wait(self.config.heartbeat_interval):
            try:
                if not self.store.heartbeat(running.row.id, self.worker_id):
                    running.lost.set()  # requeued by another worker: stop at the next safe point
                    return
            except Exception:
                log.exception("job %s: heartbeat failed", running.row.arn)


def _counters(p: Any) -> tuple[int, int, int] | None:
    if p is None:
        return None
    return (int(p.records_read), int(p.records_written), int(p.records_failed))
