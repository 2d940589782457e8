"""``--wait``: follow a job to its end with a progress bar on stderr."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from tqdm import tqdm

#: Statuses after which a job never changes again.
FINAL_STATUSES = frozenset({"ACTIVE", "CREATE FAILED"})
#: Seconds between two describes.
POLL_SECONDS = 0.5


def _int(job: Mapping[str, Any], name: str) -> int | None:
    value = job.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def count_records(input_path: str, output_path: str | None = None) -> int | None:
    """The records (non-blank lines) of a job's input when it is on this machine, else None.

    Jobs do not know their input's size before reading it, so the bar's total (and so its time left) comes
    from counting the lines here; S3 and http(s) inputs are not read twice for that.
    """
    from recbatch.jobs import io as jobio

    if not jobio.is_local_path(input_path):
        return None
    try:
        files = jobio.list_input_files(input_path, output_path=output_path)
        return sum(1 for f in files for line in jobio.read_lines(f.uri) if line.strip())
    except jobio.JobIOError:
        return None


def follow(
    describe: Callable[..., Mapping[str, Any]],
    arn: str,
    arn_member: str,
    job_member: str,
    *,
    total: Callable[[], int | None] | None = None,
    poll_seconds: float = POLL_SECONDS,
) -> dict[str, Any]:
    """Describe the job until its status is final; returns its last description.

    The bar on stderr shows the status, the records done (output lines written), the rate, and, once
    ``total()`` (run in a background thread) has counted the input, the percentage and the time left. It is
    drawn only when stderr is a terminal, so logs and pipes get nothing.
    """
    enabled = sys.stderr.isatty()
    counted: list[int | None] = []
    if enabled and total is not None:
        threading.Thread(target=lambda: counted.append(total()), name="recbatch-count", daemon=True).start()
    with tqdm(
        total=None, desc="waiting", unit=" records", file=sys.stderr, disable=not enabled, dynamic_ncols=True
    ) as bar:
        while True:
            job = dict(describe(**{arn_member: arn})[job_member])
            status = str(job.get("status", ""))
            bar.set_description_str(status.lower(), refresh=False)
            if counted and counted[0] is not None and bar.total is None:
                bar.total = counted[0]
            done = _int(job, "recordsWritten")
            if done is not None and done != bar.n:
                bar.update(done - bar.n)
            failed = _int(job, "recordsFailed")
            if failed:
                bar.set_postfix_str(f"{failed} failed", refresh=False)
            bar.refresh()
            if status in FINAL_STATUSES:
                return job
            time.sleep(poll_seconds)


@contextmanager
def run_locally(client: Any, arn: str) -> Iterator[None]:
    """Run the job ``arn`` of a local client in a worker thread of this process while the body follows it.

    Only that job is claimed (other queued jobs stay for their workers); if another worker on the home (a
    ``recbatch serve``) has claimed it already, the thread ends at once and the body simply follows it. On
    leaving early (Ctrl-C), the worker stops the job at a safe point and it is requeued, nothing half-written.
    """
    from recbatch.jobs.worker import Worker

    worker = Worker(client.store, client.config)
    thread = threading.Thread(
        target=worker.run_pending_once, args=(arn,), name="recbatch-foreground-job", daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        worker.stop()
        thread.join()
