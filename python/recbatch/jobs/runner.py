"""Run one batch job end to end: model, checks, input files, scoring, output objects.

The worker calls :func:`run_batch_inference_job` or :func:`run_batch_segment_job` with the job as
stored and its solution version. Order of work (SPEC sections 3, 4 and 7):

1. load and validate the model (a bad model fails the job before any I/O);
2. check the input KMS key (kms:DescribeKey; the output key is checked when _CHECK is written);
3. write ``_CHECK`` to the output prefix, so an unwritable destination fails at once;
4. list the input files; for each one, stream its lines in batches (memory stays bounded),
   score each batch with one kernel call (on a worker thread, while the next batch is parsed and
   prepared and the previous one formatted and written; personalized ranking's call reads, ranks
   and writes the batch's lines itself), write one output line per record in input order to
   ``<output prefix>/<input name>.out``, and commit that object when the input file is done.

Each output object appears whole or not at all: a failure or a stop aborts the object being
written. Objects of input files already finished stay (each is complete); a rerun rewrites them.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import zlib
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

from recbatch.jobs import io as jobio
from recbatch.jobs.recipes import ScoredBatch, Scorer, ScoringSteps, SearchCall, records_per_batch
from recbatch.model import Family, Model, ModelError, load_model, recipe_family, recipe_name

__all__ = [
    "DEFAULT_NUM_RESULTS",
    "JobFailed",
    "JobInterrupted",
    "JobProgress",
    "remove_partial_output",
    "run_batch_inference_job",
    "run_batch_segment_job",
]

#: numResults when the job does not set it (Personalize's default).
DEFAULT_NUM_RESULTS = 25

# What reading a (possibly compressed) input can raise besides JobIOError.
_READ_ERRORS = (jobio.JobIOError, OSError, EOFError, zlib.error)


@dataclasses.dataclass
class JobProgress:
    """Counts so far: records read (non-blank lines), output lines written, error lines among them."""

    records_read: int = 0
    records_written: int = 0
    records_failed: int = 0


class JobFailed(Exception):
    """The job cannot complete; ``str(e)`` is the failureReason shown to the user."""


class JobInterrupted(Exception):
    """should_stop() became true: the open output was aborted; the job can be rerun from the start."""


ProgressCallback = Callable[[JobProgress], None]
StopCheck = Callable[[], bool]


def run_batch_inference_job(
    job: Mapping[str, Any],
    solution: Mapping[str, Any],
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    threads: int | None = None,
) -> JobProgress:
    """Run a batch inference job (CreateBatchInferenceJob's members as stored).

    ``solution`` holds ``solutionVersionArn``, ``recipeArn`` and ``modelPath``.
    Returns the final counts; raises JobFailed (with the failureReason) or JobInterrupted.
    """
    return _Run(
        job, solution, segment=False, progress=progress, should_stop=should_stop, threads=threads
    ).run()


def run_batch_segment_job(
    job: Mapping[str, Any],
    solution: Mapping[str, Any],
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    threads: int | None = None,
) -> JobProgress:
    """Run a batch segment job (CreateBatchSegmentJob's members as stored); as run_batch_inference_job."""
    return _Run(
        job, solution, segment=True, progress=progress, should_stop=should_stop, threads=threads
    ).run()


def remove_partial_output(job: Mapping[str, Any]) -> int:
    """Delete the temporary output files a killed run of ``job`` left behind (local outputs only).

    The worker calls it when it finds a job whose worker died, before the job runs again or is failed.
    Returns how many files were removed.
    """
    output_prefix = _member(job, "jobOutput", "s3DataDestination", "path")
    arn = _job_arn(job)
    if not output_prefix or arn is None:
        return 0
    return jobio.remove_partial_outputs(output_prefix, jobio.partial_output_tag(arn))


def _job_arn(job: Mapping[str, Any]) -> str | None:
    arn = job.get("batchInferenceJobArn") or job.get("batchSegmentJobArn")
    return str(arn) if arn else None


def _member(job: Mapping[str, Any], outer: str, inner: str, name: str) -> Any:
    try:
        return job[outer][inner].get(name)
    except (KeyError, TypeError, AttributeError):
        return None


class _Run:
    def __init__(
        self,
        job: Mapping[str, Any],
        solution: Mapping[str, Any],
        *,
        segment: bool,
        progress: ProgressCallback | None,
        should_stop: StopCheck | None,
        threads: int | None,
    ) -> None:
        self.job = job
        self.solution = solution
        self.segment = segment
        self.progress_callback = progress
        self.should_stop = should_stop
        self.threads = threads
        self.state = JobProgress()
        self.input_path: str | None = _member(job, "jobInput", "s3DataSource", "path")
        self.input_key: str | None = _member(job, "jobInput", "s3DataSource", "kmsKeyArn")
        self.output_prefix: str | None = _member(job, "jobOutput", "s3DataDestination", "path")
        self.output_key: str | None = _member(job, "jobOutput", "s3DataDestination", "kmsKeyArn")
        arn = _job_arn(job)
        self.output_tag = jobio.partial_output_tag(arn) if arn is not None else None
        num_results = job.get("numResults")
        self.num_results = DEFAULT_NUM_RESULTS if num_results is None else int(num_results)

    def run(self) -> JobProgress:
        if not self.input_path or not self.output_prefix:
            msg = "The job has no jobInput.s3DataSource.path or jobOutput.s3DataDestination.path"
            raise JobFailed(msg)
        family = self._family()
        scorer = self._scorer(family)
        self._check_keys()
        try:
            jobio.write_check_object(self.output_prefix, kms_key_arn=self.output_key)
        except (jobio.JobIOError, OSError) as exc:
            msg = f"Cannot write to the output path {self.output_prefix}: {exc}"
            raise JobFailed(msg) from exc
        try:
            inputs = jobio.list_input_files(self.input_path, output_path=self.output_prefix)
        except (jobio.JobIOError, OSError) as exc:
            msg = f"Cannot read the input path {self.input_path}: {exc}"
            raise JobFailed(msg) from exc
        for input_file in inputs:
            self._stop_if_asked()
            self._run_file(input_file, family, scorer)
        return dataclasses.replace(self.state)

    def _family(self) -> Family:
        recipe_arn = str(self.solution.get("recipeArn", ""))
        try:
            family = recipe_family(recipe_arn)
        except ModelError as exc:
            raise JobFailed(f"The solution version's recipe cannot be run: {exc}") from exc
        if self.segment and family is not Family.USER_SEGMENTATION:
            msg = (
                f"Batch segment jobs need a user segmentation recipe (aws-item-affinity); "
                f"the solution version uses {recipe_name(recipe_arn)}"
            )
            raise JobFailed(msg)
        if not self.segment and family is Family.USER_SEGMENTATION:
            msg = (
                f"Recipe {recipe_name(recipe_arn)} makes user segments: run it as a batch segment job, "
                f"not a batch inference job"
            )
            raise JobFailed(msg)
        return family

    def _scorer(self, family: Family) -> Scorer:
        version = self.solution.get("solutionVersionArn", "")
        path = str(self.solution.get("modelPath", ""))
        try:
            model: Model = load_model(
                path, recipe_arn=str(self.solution.get("recipeArn", "")), threads=self.threads
            )
            return Scorer(model, family, self.num_results, threads=self.threads)
        except ModelError as exc:
            msg = f"The model of solution version {version} cannot be used: {exc}"
            raise JobFailed(msg) from exc
        except ValueError as exc:  # numResults out of range
            raise JobFailed(str(exc)) from exc

    def _check_keys(self) -> None:
        # The output key is checked by write_check_object, before it writes anything.
        if self.input_key:
            try:
                jobio.check_kms_key(self.input_key)
            except jobio.JobIOError as exc:
                msg = f"The input kmsKeyArn cannot be used: {exc}"
                raise JobFailed(msg) from exc

    def _stop_if_asked(self) -> None:
        if self.should_stop is not None and self.should_stop():
            msg = "the job was asked to stop"
            raise JobInterrupted(msg)

    def _run_file(self, input_file: jobio.InputFile, family: Family, scorer: Scorer) -> None:
        assert self.output_prefix is not None
        batch_size = records_per_batch(family, self.num_results, self.threads)
        uri = jobio.output_uri(self.output_prefix, input_file.name)
        # Each batch's search runs on a worker thread (the kernel releases the GIL) while this
        # thread parses and prepares the next batch and formats and writes the previous one, so
        # the kernel goes from one batch to the next without waiting for Python. One worker:
        # searches run one at a time, output stays in input order, at most three batches are held.
        searches = _SearchThread()
        try:
            # The context manager commits on success and aborts on any exception (stop included).
            with jobio.OutputObject(uri, kms_key_arn=self.output_key, tag=self.output_tag) as out:
                previous: _Batch | None = None
                for lines in jobio.read_records(input_file.uri, batch_size, kms_key_arn=self.input_key):
                    batch = _Batch(len(lines), scorer.steps_for_lines(lines), searches)
                    if previous is not None:
                        self._write_batch(previous.finish(), previous.records, out)
                    previous = batch
                if previous is not None:
                    self._write_batch(previous.finish(), previous.records, out)
        except _READ_ERRORS as exc:
            msg = f"Cannot process input file {input_file.uri} (output {uri}): {exc}"
            raise JobFailed(msg) from exc
        finally:
            # On failure or stop, a search under way finishes (its result is dropped).
            searches.close()

    def _write_batch(self, scored: ScoredBatch, records: int, out: jobio.OutputObject) -> None:
        out.write(scored.text())
        self.state.records_read += records
        self.state.records_written += len(scored)
        self.state.records_failed += scored.failed
        if self.progress_callback is not None:
            self.progress_callback(dataclasses.replace(self.state))
        self._stop_if_asked()


class _SearchThread:
    """Runs a job's searches one after another on a thread of their own.

    A daemon thread, unlike a ThreadPoolExecutor's, so that a process told to exit does not first
    wait for the search under way (jobs run on daemon threads for the same reason).
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[SearchCall, Future[Any]] | None] = queue.SimpleQueue()
        self._submitted: list[Future[Any]] = []
        self._thread = threading.Thread(target=self._serve, name="recbatch-search", daemon=True)
        self._thread.start()

    def submit(self, call: SearchCall) -> Future[Any]:
        future: Future[Any] = Future()
        self._submitted = [f for f in self._submitted if not f.done()]
        self._submitted.append(future)
        self._queue.put((call, future))
        return future

    def close(self) -> None:
        """Drop the searches not started, wait for the one under way, end the thread."""
        for future in self._submitted:
            future.cancel()
        self._queue.put(None)
        self._thread.join()

    def _serve(self) -> None:
        while (work := self._queue.get()) is not None:
            call, future = work
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:  # noqa: BLE001 - whatever it is, future.result() raises it in the job's thread
                future.set_exception(exc)


class _Batch:
    """A batch whose Python work before the search is done and whose search is submitted."""

    def __init__(self, records: int, steps: ScoringSteps, searches: _SearchThread) -> None:
        self.records = records
        self.steps = steps
        self.search: Future[Any] | None = None
        self.scored: ScoredBatch | None = None
        try:
            self.search = searches.submit(next(steps))
        except StopIteration as done:  # nothing to search (errors only, popularity, cold users)
            self.scored = done.value

    def finish(self) -> ScoredBatch:
        """Wait for the search, then do the Python work after it (on this thread)."""
        if self.scored is not None:
            return self.scored
        assert self.search is not None
        result = self.search.result()  # outside the try: only the steps' own end is caught below
        try:
            self.steps.send(result)
        except StopIteration as done:
            scored: ScoredBatch = done.value
            return scored
        msg = "a batch's scoring steps yielded more than one search"
        raise RuntimeError(msg)
