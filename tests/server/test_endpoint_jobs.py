"""Jobs run by ``recbatch serve``: output checked against the float64 reference, on local files and on S3 with
KMS, and a SIGTERM in the middle of a job followed by a restart that finishes it."""

from __future__ import annotations

import http.server
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from numpy.typing import NDArray

from recbatch.jobs.client import client as local_client
from tests.conftest import AwsEndpoints
from tests.jobs.helpers import (
    assert_same_ranking,
    item_scores,
    read_output,
    user_personalization,
)
from tests.server.helpers import (
    USER_RECIPE,
    ServerProcess,
    clean_env,
    create_request,
    key_env,
    wait_for,
    wait_job,
)


def _check_against_reference(records: list[dict[str, Any]], arrays: dict[str, NDArray[Any]], k: int) -> None:
    for record in records:
        user = record["input"]["userId"]
        expected, expected_scores = user_personalization(arrays, user, k)
        exact = {str(i): float(s) for i, s in zip(arrays["item_ids"], item_scores(arrays, user), strict=True)}
        assert record["error"] is None
        assert_same_ranking(record["output"]["recommendedItems"], expected, exact)
        for got, want in zip(record["output"]["scores"], expected_scores, strict=True):
            assert abs(got - want) <= 1e-6 * want + 5.000001e-8


def test_local_job_output_matches_the_float64_reference(
    server: ServerProcess, version_arn: str, input_path: str, workdir: Path, arrays: dict[str, NDArray[Any]]
) -> None:
    client = server.client()
    arn = client.create_batch_inference_job(
        **create_request(
            "reference-job", version_arn, input_path, str(workdir / "out-ref") + "/", numResults=5
        )
    )["batchInferenceJobArn"]
    assert wait_job(client, arn)["status"] == "ACTIVE"
    records = read_output(workdir / "out-ref" / "users.jsonl.out")
    assert [r["input"]["userId"] for r in records] == [f"u{i}" for i in range(10)]
    _check_against_reference(records, arrays, 5)


def test_job_on_s3_with_kms_through_the_server(
    s3_env: AwsEndpoints,
    s3_bucket: str,
    kms_key_arn: str,
    tmp_path: Path,
    model_path: str,
    arrays: dict[str, NDArray[Any]],
) -> None:
    s3 = s3_env.client("s3")
    users = [f"u{i}" for i in range(0, 40, 3)]
    s3.put_object(
        Bucket=s3_bucket,
        Key="in/users.jsonl",
        Body=b"".join(orjson.dumps({"userId": u}) + b"\n" for u in users),
    )
    # The server gets the S3 and KMS endpoints through the standard AWS environment set by s3_env.
    server = ServerProcess(tmp_path / "home", env=clean_env(dict(os.environ), **key_env()))
    try:
        version = server.recbatch_client().import_solution_version(
            solutionName="on-s3", recipeArn=USER_RECIPE, modelPath=model_path
        )["solutionVersionArn"]
        client = server.client()
        output = f"s3://{s3_bucket}/out/"
        arn = client.create_batch_inference_job(
            **create_request(
                "s3-kms-job",
                version,
                f"s3://{s3_bucket}/in/",
                output,
                numResults=4,
                jobOutput={"s3DataDestination": {"path": output, "kmsKeyArn": kms_key_arn}},
            )
        )["batchInferenceJobArn"]
        job = wait_job(client, arn)
        assert job["status"] == "ACTIVE", job.get("failureReason")
        assert job["jobOutput"]["s3DataDestination"]["kmsKeyArn"] == kms_key_arn

        head = s3.head_object(Bucket=s3_bucket, Key="out/users.jsonl.out")
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] == kms_key_arn
        body = s3.get_object(Bucket=s3_bucket, Key="out/users.jsonl.out")["Body"].read()
        records = [orjson.loads(line) for line in body.splitlines()]
        assert [r["input"]["userId"] for r in records] == users
        _check_against_reference(records, arrays, 4)

        # A key that cannot be used fails the job with a reason, and writes no output.
        s3_env.client("kms").disable_key(KeyId=kms_key_arn.rsplit("/", 1)[1])
        bad = f"s3://{s3_bucket}/out-disabled/"
        arn = client.create_batch_inference_job(
            **create_request(
                "s3-disabled-key",
                version,
                f"s3://{s3_bucket}/in/",
                bad,
                jobOutput={"s3DataDestination": {"path": bad, "kmsKeyArn": kms_key_arn}},
            )
        )["batchInferenceJobArn"]
        job = wait_job(client, arn)
        assert job["status"] == "CREATE FAILED"
        assert "kms" in job["failureReason"].lower()
        listed = s3.list_objects_v2(Bucket=s3_bucket, Prefix="out-disabled/")
        assert [o["Key"] for o in listed.get("Contents", [])] in ([], ["out-disabled/_CHECK"])
        assert not any(o["Key"].endswith(".out") for o in listed.get("Contents", []))
    finally:
        assert server.terminate() == 0


class _GatedInput:
    """An HTTP server of one JSON-lines file. The first GET sends the first ``head`` bytes and then waits for
    :meth:`release` before the rest; later GETs send everything at once."""

    def __init__(self, data: bytes, head: int) -> None:
        self.gate = threading.Event()
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                self._headers()

            def do_GET(self) -> None:
                outer.requests += 1
                first = outer.requests == 1
                self._headers()
                self.wfile.write(data[:head] if first else data)
                self.wfile.flush()
                if first:
                    outer.gate.wait(120)
                    self.wfile.write(data[head:])

            def _headers(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Accept-Ranges", "none")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/users.jsonl"

    def release(self) -> None:
        self.gate.set()

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gated_input() -> Iterator[tuple[_GatedInput, list[str]]]:
    users = [f"u{i % 40}" for i in range(160_000)]
    data = b"".join(orjson.dumps({"userId": u}) + b"\n" for u in users)
    # The job reads its input in 1 MiB chunks: about 2.6 MiB get through before the gate, so whole batches
    # are scored and reported before the job blocks on the input.
    source = _GatedInput(data, head=len(data) - 100_000)
    try:
        yield source, users
    finally:
        source.close()


def test_sigterm_requeues_the_running_job_and_a_restart_finishes_it(
    tmp_path: Path, model_path: str, gated_input: tuple[_GatedInput, list[str]]
) -> None:
    source, users = gated_input
    home = tmp_path / "home"
    output_dir = tmp_path / "out"
    server = ServerProcess(home)
    try:
        client = server.recbatch_client()
        version = client.import_solution_version(
            solutionName="restart", recipeArn=USER_RECIPE, modelPath=model_path
        )["solutionVersionArn"]
        arn = client.create_batch_inference_job(
            **create_request("survives-restart", version, source.url, str(output_dir) + "/", numResults=3)
        )["batchInferenceJobArn"]

        def running_with_progress() -> dict[str, Any] | None:
            job: dict[str, Any] = client.describe_batch_inference_job(batchInferenceJobArn=arn)[
                "batchInferenceJob"
            ]
            return job if job["status"] == "CREATE IN_PROGRESS" and job["recordsRead"] >= 4096 else None

        wait_for(running_with_progress, "the job to be running with a batch scored")
        server.process.send_signal(signal.SIGTERM)
        # Once the server says it is stopping, its worker has been told to stop: let the input flow again,
        # so the job reaches its next safe point (the next batch).
        server.wait_for_line("stopping:")
        source.release()
        assert server.process.wait(120) == 0
        server.kill()
        assert "stopped" in server.output
        assert "Traceback" not in server.output
    finally:
        server.kill()

    with local_client(home, start_worker=False) as local:
        job = local.describe_batch_inference_job(batchInferenceJobArn=arn)["batchInferenceJob"]
    assert job["status"] == "CREATE PENDING"  # requeued, not failed
    assert not any(p.name.endswith(".out") for p in output_dir.glob("*")), "nothing partial is visible"

    restarted = ServerProcess(home)
    try:
        client = restarted.client()
        job = wait_job(client, arn)
        assert job["status"] == "ACTIVE", job.get("failureReason")
    finally:
        assert restarted.terminate() == 0
    records = read_output(output_dir / "users.jsonl.out")
    assert [r["input"]["userId"] for r in records] == users
    assert all(r["error"] is None and len(r["output"]["recommendedItems"]) == 3 for r in records)
    assert source.requests == 2
