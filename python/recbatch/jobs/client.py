"""The Personalize batch API, in process: :func:`client` returns an object shaped like ``boto3.client("personalize")``.

Two layers:

* :class:`Service` implements the operations: a request dictionary in, a response dictionary out (without
  ``ResponseMetadata``), modelled errors raised as :mod:`recbatch.jobs.errors`. The HTTP endpoint calls it
  with :meth:`Service.call` and the operation name from ``X-Amz-Target``.
* :class:`Client` is the boto3-shaped face: keyword-only methods, botocore's own client-side parameter
  validation, ``ResponseMetadata``, ``client.exceptions``, ``get_paginator`` (botocore's paginator, so
  ``PaginationConfig`` and resume tokens behave exactly as with boto3), and a background worker thread
  that runs the jobs.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from functools import cache
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from recbatch.jobs.config import JobsConfig
from recbatch.jobs.errors import (
    ClientExceptions,
    InvalidInputException,
    InvalidNextTokenException,
    PersonalizeError,
    ResourceNotFoundException,
    response_metadata,
)
from recbatch.jobs.store import (
    INFERENCE,
    SEGMENT,
    STATUS_ACTIVE,
    STATUS_FAILED,
    JobRow,
    SolutionVersionRow,
    Store,
)
from recbatch.jobs.validation import (
    RECIPE_FAMILIES,
    RECIPE_PREFIX,
    SEGMENT_FAMILIES,
    recipe_family,
    validate_request,
)
from recbatch.jobs.worker import RunnerAPI, Worker

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["OPERATIONS", "Client", "Service", "client"]

log = logging.getLogger(__name__)

#: Operation name (as in ``X-Amz-Target: AmazonPersonalize.<name>``) -> client method name.
OPERATIONS: dict[str, str] = {
    "CreateBatchInferenceJob": "create_batch_inference_job",
    "DescribeBatchInferenceJob": "describe_batch_inference_job",
    "ListBatchInferenceJobs": "list_batch_inference_jobs",
    "CreateBatchSegmentJob": "create_batch_segment_job",
    "DescribeBatchSegmentJob": "describe_batch_segment_job",
    "ListBatchSegmentJobs": "list_batch_segment_jobs",
    "DescribeSolutionVersion": "describe_solution_version",
    "ListSolutionVersions": "list_solution_versions",
    "ImportSolutionVersion": "import_solution_version",  # ours: Personalize trains, recbatch imports
}
_PAGINATED = {"ListBatchInferenceJobs", "ListBatchSegmentJobs", "ListSolutionVersions"}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

FINAL_STATUSES = frozenset({STATUS_ACTIVE, STATUS_FAILED})


def _time(ms: int) -> datetime:
    # Exact milliseconds (no float rounding), timezone-aware as boto3 returns timestamps.
    return _EPOCH + timedelta(milliseconds=ms)


def _validate_model(model_path: str, recipe_arn: str) -> None:
    """Check a model artifact with the data plane; InvalidInputException on any problem with it."""
    from recbatch import model

    io_error: type[Exception] = model.ModelError
    try:
        from recbatch.jobs.io import JobIOError

        io_error = JobIOError
    except ImportError:  # pragma: no cover - io.py is part of every release
        pass
    try:
        model.validate_model(model_path, recipe_arn)
    except (model.ModelError, io_error) as e:
        raise InvalidInputException(f"Invalid model artifact {model_path}: {e}") from None


# ------------------------------------------------------------------------------------------- tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _Tokens:
    """Opaque nextTokens: the listing and the position, signed with the home's secret (HMAC-SHA256)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]

    def issue(self, scope: Mapping[str, Any], before_id: int) -> str:
        payload = json.dumps({**scope, "b": before_id}, separators=(",", ":"), sort_keys=True).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def read(self, token: str, scope: Mapping[str, Any]) -> int:
        """The position in ``token``; InvalidNextTokenException unless we issued it for this very listing."""
        try:
            body, mac = token.split(".")
            payload = _unb64(body)
            good = hmac.compare_digest(_unb64(mac), self._mac(payload))
            data = json.loads(payload) if good else None
        except (ValueError, binascii.Error, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("b"), int):
            raise InvalidNextTokenException("The nextToken is not a token this service issued")
        if {k: v for k, v in data.items() if k != "b"} != dict(scope):
            raise InvalidNextTokenException(
                "The nextToken was issued for a different listing (another operation or solutionVersionArn/"
                "solutionArn); pass the same parameters as the request that returned it"
            )
        return int(data["b"])


# ------------------------------------------------------------------------------------------ service


class Service:
    """The Personalize batch operations over one home's store, for one region and account.

    Args:
        config: home, region, account and limits.
        store: an open store for ``config.home`` (default: opened here, and closed by :meth:`close`).
        on_job_created: called after a job is stored (the client wakes its worker with it).
    """

    def __init__(
        self,
        config: JobsConfig,
        store: Store | None = None,
        *,
        on_job_created: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self._owns_store = store is None
        self.store = store if store is not None else Store(config.home)
        self._tokens = _Tokens(self.store.token_secret)
        self.on_job_created = on_job_created

    def close(self) -> None:
        """Close the store if this service opened it."""
        if self._owns_store:
            self.store.close()

    def call(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Run ``operation`` (e.g. ``"CreateBatchInferenceJob"``); errors name the operation as botocore's do."""
        method = OPERATIONS.get(operation)
        if method is None:
            raise InvalidInputException(f"Unknown operation {operation}", operation)
        try:
            request = validate_request(operation, params)
            result: dict[str, Any] = getattr(self, "_" + method)(request)
        except PersonalizeError as e:
            raise e.with_operation(operation) from None
        return result

    # -- helpers

    def _arn(self, kind: str, name: str) -> str:
        return f"arn:aws:personalize:{self.config.region}:{self.config.account}:{kind}/{name}"

    def _ours(self, row: JobRow | SolutionVersionRow | None) -> bool:
        # A home may hold several regions and accounts; a client sees only its own, as AWS would.
        return row is not None and (row.region, row.account) == (self.config.region, self.config.account)

    def _solution_version(self, arn: str) -> SolutionVersionRow:
        row = self.store.get_solution_version(arn)
        if row is None or not self._ours(row):
            raise ResourceNotFoundException(f"Could not find solution version {arn}")
        return row

    def _page(self, request: Mapping[str, Any], scope: dict[str, Any]) -> tuple[int | None, int]:
        scope.update(r=self.config.region, a=self.config.account)
        token = request.get("nextToken")
        before = self._tokens.read(token, scope) if token else None
        return before, int(request.get("maxResults", 100))

    def _next_token(self, rows: list[Any], limit: int, scope: dict[str, Any]) -> dict[str, str]:
        # One row more than asked was read: its presence means there is a next page.
        if len(rows) <= limit:
            return {}
        return {"nextToken": self._tokens.issue(scope, rows[limit - 1].id)}

    # -- jobs

    def _create_job(self, kind: str, request: dict[str, Any]) -> JobRow:
        solution = self._solution_version(request["solutionVersionArn"])
        family = recipe_family(solution.recipe_arn)
        wants_segments = kind == SEGMENT
        if family is None or (family in SEGMENT_FAMILIES) != wants_segments:
            recipe = solution.recipe_arn.removeprefix(RECIPE_PREFIX)
            if wants_segments:
                hint = "a batch segment job needs a USER_SEGMENTATION recipe (aws-item-affinity)"
            else:
                hint = "a batch inference job cannot use a USER_SEGMENTATION recipe; use create_batch_segment_job"
            raise InvalidInputException(
                f"Solution version {solution.arn} uses recipe {recipe} ({family}): {hint}"
            )
        if request.get("filterArn") is not None:
            raise ResourceNotFoundException(
                f"Could not find filter {request['filterArn']}: recbatch does not support filters yet"
            )
        row = self.store.insert_job(
            kind=kind,
            region=self.config.region,
            account=self.config.account,
            name=request["jobName"],
            arn=self._arn(kind, request["jobName"]),
            request=request,
            max_queued_jobs=self.config.max_queued_jobs,
        )
        if self.on_job_created is not None:
            self.on_job_created()
        return row

    def _get_job(self, kind: str, arn: str) -> JobRow:
        row = self.store.get_job(arn, kind)
        if row is None or not self._ours(row):
            raise ResourceNotFoundException(
                f"Could not find {'batch inference' if kind == INFERENCE else 'batch segment'} job {arn}"
            )
        return row

    @staticmethod
    def _progress(row: JobRow) -> dict[str, int]:
        # Extra members (ignored by botocore): progress for recbatch's own tools.
        return {
            "recordsRead": row.records_read,
            "recordsWritten": row.records_written,
            "recordsFailed": row.records_failed,
        }

    def _describe(self, row: JobRow) -> dict[str, Any]:
        req = row.request
        prefix = "batchInferenceJob" if row.kind == INFERENCE else "batchSegmentJob"
        out: dict[str, Any] = {"jobName": row.name, f"{prefix}Arn": row.arn}
        if req.get("filterArn") is not None:
            out["filterArn"] = req["filterArn"]
        if row.failure_reason is not None:
            out["failureReason"] = row.failure_reason
        out.update(
            solutionVersionArn=row.solution_version_arn,
            numResults=req["numResults"],
            jobInput=req["jobInput"],
            jobOutput=req["jobOutput"],
        )
        for member in ("batchInferenceJobConfig",):
            if req.get(member) is not None:
                out[member] = req[member]
        out["roleArn"] = req["roleArn"]
        if row.kind == INFERENCE:
            out["batchInferenceJobMode"] = req.get("batchInferenceJobMode", "BATCH_INFERENCE")
        out.update(
            status=row.status,
            creationDateTime=_time(row.created_ms),
            lastUpdatedDateTime=_time(row.updated_ms),
            **self._progress(row),
        )
        return out

    def _summary(self, row: JobRow) -> dict[str, Any]:
        prefix = "batchInferenceJob" if row.kind == INFERENCE else "batchSegmentJob"
        out: dict[str, Any] = {
            f"{prefix}Arn": row.arn,
            "jobName": row.name,
            "status": row.status,
            "creationDateTime": _time(row.created_ms),
            "lastUpdatedDateTime": _time(row.updated_ms),
        }
        if row.failure_reason is not None:
            out["failureReason"] = row.failure_reason
        out["solutionVersionArn"] = row.solution_version_arn
        if row.kind == INFERENCE:
            out["batchInferenceJobMode"] = row.request.get("batchInferenceJobMode", "BATCH_INFERENCE")
        out.update(self._progress(row))
        return out

    def _list_jobs(
        self, kind: str, request: Mapping[str, Any]
    ) -> tuple[list[dict[str, Any]], dict[str, str]]:
        scope: dict[str, Any] = {"l": kind, "f": request.get("solutionVersionArn")}
        before, limit = self._page(request, scope)
        rows = self.store.list_jobs(
            kind=kind,
            region=self.config.region,
            account=self.config.account,
            solution_version_arn=request.get("solutionVersionArn"),
            before_id=before,
            limit=limit + 1,
        )
        return [self._summary(r) for r in rows[:limit]], self._next_token(rows, limit, scope)

    def _create_batch_inference_job(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"batchInferenceJobArn": self._create_job(INFERENCE, request).arn}

    def _create_batch_segment_job(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"batchSegmentJobArn": self._create_job(SEGMENT, request).arn}

    def _describe_batch_inference_job(self, request: dict[str, Any]) -> dict[str, Any]:
        return {
            "batchInferenceJob": self._describe(self._get_job(INFERENCE, request["batchInferenceJobArn"]))
        }

    def _describe_batch_segment_job(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"batchSegmentJob": self._describe(self._get_job(SEGMENT, request["batchSegmentJobArn"]))}

    def _list_batch_inference_jobs(self, request: dict[str, Any]) -> dict[str, Any]:
        items, token = self._list_jobs(INFERENCE, request)
        return {"batchInferenceJobs": items, **token}

    def _list_batch_segment_jobs(self, request: dict[str, Any]) -> dict[str, Any]:
        items, token = self._list_jobs(SEGMENT, request)
        return {"batchSegmentJobs": items, **token}

    # -- solution versions

    def _import_solution_version(self, request: dict[str, Any]) -> dict[str, Any]:
        recipe_arn = request["recipeArn"]
        if recipe_family(recipe_arn) is None:
            known = ", ".join(RECIPE_PREFIX + name for name in RECIPE_FAMILIES)
            raise ResourceNotFoundException(
                f"Could not find recipe {recipe_arn}; recbatch implements {known}"
            )
        _validate_model(request["modelPath"], recipe_arn)
        row = self.store.insert_solution_version(
            region=self.config.region,
            account=self.config.account,
            solution_name=request["solutionName"],
            recipe_arn=recipe_arn,
            model_path=request["modelPath"],
        )
        return {"solutionVersionArn": row.arn}

    @staticmethod
    def _solution_version_description(row: SolutionVersionRow) -> dict[str, Any]:
        out: dict[str, Any] = {
            "solutionVersionArn": row.arn,
            "solutionArn": row.solution_arn,
            "performHPO": False,
            "performAutoML": False,
            "recipeArn": row.recipe_arn,
            "trainingMode": "FULL",
            "status": row.status,
            "creationDateTime": _time(row.created_ms),
            "lastUpdatedDateTime": _time(row.updated_ms),
            "trainingType": "MANUAL",
            "modelPath": row.model_path,  # extra: where the imported artifact lives
        }
        if row.failure_reason is not None:
            out["failureReason"] = row.failure_reason
        return out

    def _describe_solution_version(self, request: dict[str, Any]) -> dict[str, Any]:
        row = self._solution_version(request["solutionVersionArn"])
        return {"solutionVersion": self._solution_version_description(row)}

    def _list_solution_versions(self, request: dict[str, Any]) -> dict[str, Any]:
        solution_arn = request.get("solutionArn")
        if solution_arn is not None and not (
            solution_arn.startswith(
                f"arn:aws:personalize:{self.config.region}:{self.config.account}:solution/"
            )
            and self.store.solution_exists(solution_arn)
        ):
            raise ResourceNotFoundException(f"Could not find solution {solution_arn}")
        scope: dict[str, Any] = {"l": "solution-version", "f": solution_arn}
        before, limit = self._page(request, scope)
        rows = self.store.list_solution_versions(
            region=self.config.region,
            account=self.config.account,
            solution_arn=solution_arn,
            before_id=before,
            limit=limit + 1,
        )
        items = []
        for row in rows[:limit]:
            item = {
                "solutionVersionArn": row.arn,
                "status": row.status,
                "trainingMode": "FULL",
                "trainingType": "MANUAL",
                "creationDateTime": _time(row.created_ms),
                "lastUpdatedDateTime": _time(row.updated_ms),
            }
            if row.failure_reason is not None:
                item["failureReason"] = row.failure_reason
            items.append(item)
        return {"solutionVersions": items, **self._next_token(rows, limit, scope)}


# ------------------------------------------------------------------------------------------- client


@cache
def _service_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("personalize")


@cache
def _paginator_config(operation: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_paginator_model("personalize").get_paginator(operation)


_METHOD_TO_OPERATION = {method: op for op, method in OPERATIONS.items()}
_LIVE_CLIENTS: weakref.WeakSet[Client] = weakref.WeakSet()


@atexit.register
def _close_live_clients() -> None:
    # Interpreter exit: let running jobs reach a safe point and requeue, rather than dying mid-job.
    for c in list(_LIVE_CLIENTS):
        c.close(timeout=10.0)


class Client:
    """A boto3-shaped Personalize client over a local home; create one with :func:`client`."""

    exceptions = ClientExceptions()

    def __init__(
        self,
        config: JobsConfig,
        *,
        start_worker: bool = True,
        parameter_validation: bool = True,
        runner: RunnerAPI | None = None,
    ) -> None:
        self.config = config
        self.meta = SimpleNamespace(region_name=config.region, account_id=config.account, home=config.home)
        self._parameter_validation = parameter_validation
        self._worker: Worker | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self._service = Service(config, on_job_created=self._wake_worker)
        if start_worker:
            self._worker = Worker(self._service.store, config, runner=runner)
            self._thread = threading.Thread(
                target=self._worker.run_forever, name="recbatch-worker", daemon=True
            )
            self._thread.start()
            _LIVE_CLIENTS.add(self)

    @property
    def store(self) -> Store:
        """The home's metadata store."""
        return self._service.store

    @property
    def service(self) -> Service:
        """The operations without the boto3 wrapping (what the HTTP endpoint calls)."""
        return self._service

    def _wake_worker(self) -> None:
        if self._worker is not None:
            self._worker.wake()

    def _api(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if args:
            raise TypeError(f"{method}() only accepts keyword arguments.")
        operation = _METHOD_TO_OPERATION[method]
        if self._parameter_validation and operation != "ImportSolutionVersion":
            # What boto3 checks before sending: required members, types, minimums, unknown members.
            from botocore.validate import validate_parameters

            validate_parameters(kwargs, _service_model().operation_model(operation).input_shape)
        result = self._service.call(operation, kwargs)
        result["ResponseMetadata"] = response_metadata(200)
        return result

    # -- the operations (keyword arguments and responses as boto3's personalize client)

    def create_batch_inference_job(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Store a batch inference job as CREATE PENDING; returns ``{"batchInferenceJobArn": ...}``."""
        return self._api("create_batch_inference_job", args, kwargs)

    def describe_batch_inference_job(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """``{"batchInferenceJob": {...}}`` for ``batchInferenceJobArn``, with progress members."""
        return self._api("describe_batch_inference_job", args, kwargs)

    def list_batch_inference_jobs(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Newest first; ``solutionVersionArn``, ``maxResults`` (1..100, default 100), ``nextToken``."""
        return self._api("list_batch_inference_jobs", args, kwargs)

    def create_batch_segment_job(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Store a batch segment job as CREATE PENDING; returns ``{"batchSegmentJobArn": ...}``."""
        return self._api("create_batch_segment_job", args, kwargs)

    def describe_batch_segment_job(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """``{"batchSegmentJob": {...}}`` for ``batchSegmentJobArn``, with progress members."""
        return self._api("describe_batch_segment_job", args, kwargs)

    def list_batch_segment_jobs(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Newest first; ``solutionVersionArn``, ``maxResults`` (1..100, default 100), ``nextToken``."""
        return self._api("list_batch_segment_jobs", args, kwargs)

    def import_solution_version(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Register a model artifact (``solutionName``, ``recipeArn``, ``modelPath``) as an ACTIVE solution version."""
        return self._api("import_solution_version", args, kwargs)

    def describe_solution_version(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """``{"solutionVersion": {...}}`` for ``solutionVersionArn``."""
        return self._api("describe_solution_version", args, kwargs)

    def list_solution_versions(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Newest first; ``solutionArn``, ``maxResults``, ``nextToken``."""
        return self._api("list_solution_versions", args, kwargs)

    # -- boto3 client conveniences

    def can_paginate(self, operation_name: str) -> bool:
        """Whether :meth:`get_paginator` accepts ``operation_name`` (a method name)."""
        return _METHOD_TO_OPERATION.get(operation_name) in _PAGINATED

    def get_paginator(self, operation_name: str) -> Any:
        """botocore's paginator over one of the list methods (``PaginationConfig`` as in boto3)."""
        from botocore.exceptions import OperationNotPageableError
        from botocore.paginate import Paginator

        if not self.can_paginate(operation_name):
            raise OperationNotPageableError(operation_name=operation_name)
        operation = _METHOD_TO_OPERATION[operation_name]
        return Paginator(
            getattr(self, operation_name),
            _paginator_config(operation),
            _service_model().operation_model(operation),
        )

    def wait_for_job(
        self, arn: str, timeout: float | None = None, *, poll_interval: float = 0.5
    ) -> dict[str, Any]:
        """Poll a batch inference or segment job until ACTIVE or CREATE FAILED; return its description.

        Ours (boto3 has no waiter for these jobs). Raises TimeoutError after ``timeout`` seconds. A job
        only progresses if some worker serves the home (this client's, unless ``start_worker=False``).
        """
        if ":batch-segment-job/" in arn:
            operation, member, key = "DescribeBatchSegmentJob", "batchSegmentJobArn", "batchSegmentJob"
        else:
            operation, member, key = "DescribeBatchInferenceJob", "batchInferenceJobArn", "batchInferenceJob"
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = min(0.05, poll_interval)
        while True:
            job: dict[str, Any] = self._service.call(operation, {member: arn})[key]
            if job["status"] in FINAL_STATUSES:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {arn} is still {job['status']} after {timeout} s")
            pause = delay if deadline is None else min(delay, max(0.0, deadline - time.monotonic()))
            time.sleep(pause)
            delay = min(delay * 2, poll_interval)

    # -- lifetime

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop the worker (a running job is interrupted at a safe point and requeued) and close the store."""
        if self._closed:
            return
        self._closed = True
        _LIVE_CLIENTS.discard(self)
        if self._worker is not None and self._thread is not None:
            self._worker.stop()
            self._thread.join(timeout)
            if self._thread.is_alive():
                # Left to the next worker's recovery: the job is requeued once this process is gone.
                log.warning("recbatch worker did not stop within %s s; leaving it", timeout)
                return
        self._service.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<recbatch personalize client home={str(self.config.home)!r} region={self.config.region!r}>"


def client(
    home: str | os.PathLike[str] | None = None,
    *,
    region: str | None = None,
    account: str | None = None,
    start_worker: bool = True,
    threads: int | None = None,
    parameter_validation: bool = True,
    runner: RunnerAPI | None = None,
    **options: Any,
) -> Client:
    """A client shaped like ``boto3.client("personalize")``, over the recbatch home ``home``.

    Args:
        home: the state directory (default ``$RECBATCH_HOME``, else ``~/.recbatch``).
        region, account: what ARNs name (defaults: the AWS settings, else ``us-east-1`` and
            ``000000000000``).
        start_worker: run jobs in a background daemon thread of this process. With False, jobs wait
            for another worker sharing the home (``recbatch serve``, another client, a foreground
            :class:`~recbatch.jobs.worker.Worker`).
        threads: scoring threads per job (default: every usable core).
        parameter_validation: check requests client-side as botocore does, raising
            ``botocore.exceptions.ParamValidationError`` (botocore's ``Config(parameter_validation=...)``).
            Every rule is checked again on the service side either way.
        runner: the data-plane runner (default ``recbatch.jobs.runner``); for tests.
        **options: the remaining :class:`~recbatch.jobs.config.JobsConfig` fields (``stale_after``,
            ``heartbeat_interval``, ``poll_interval``, ``progress_interval``, ``max_queued_jobs``,
            ``max_recoveries``).
    """
    config = JobsConfig.resolve(home, region=region, account=account, threads=threads, **options)
    return Client(config, start_worker=start_worker, parameter_validation=parameter_validation, runner=runner)
