"""Refused requests: authentication, malformed bodies, unknown operations, size limit. Nothing changes on refusal."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from botocore import UNSIGNED
from botocore.exceptions import ClientError

from tests.server.helpers import KEY_ID, REGION, ServerProcess, create_request, raw_call


def _all_job_names(server: ServerProcess) -> list[str]:
    pages = server.client().get_paginator("list_batch_inference_jobs").paginate().build_full_result()
    return sorted(j["jobName"] for j in pages["batchInferenceJobs"])


@pytest.fixture
def request_body(version_arn: str, input_path: str, workdir: Path) -> dict[str, Any]:
    return create_request("refused-job", version_arn, input_path, str(workdir / "out-refused") + "/")


def _refused(call: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    assert response["ResponseMetadata"]["RequestId"], "every response carries x-amzn-RequestId"
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


def test_bad_signatures_are_refused_with_the_aws_errors(
    server: ServerProcess, request_body: dict[str, Any]
) -> None:
    before = _all_job_names(server)
    one_try = {"retries": {"total_max_attempts": 1}}

    wrong_secret = server.client(secret="not-the-secret", **one_try)
    code, status, message = _refused(lambda: wrong_secret.create_batch_inference_job(**request_body))
    assert (code, status) == ("InvalidSignatureException", 403)
    assert "signature we calculated does not match" in message

    unknown_key = server.client(key_id="AKIDUNKNOWN", **one_try)
    code, status, _ = _refused(lambda: unknown_key.create_batch_inference_job(**request_body))
    assert (code, status) == ("UnrecognizedClientException", 403)

    unsigned = server.client(signature_version=UNSIGNED, **one_try)
    code, status, _ = _refused(lambda: unsigned.create_batch_inference_job(**request_body))
    assert (code, status) == ("MissingAuthenticationTokenException", 403)

    wrong_region = server.client(region="eu-west-1", **one_try)
    code, _, message = _refused(lambda: wrong_region.create_batch_inference_job(**request_body))
    assert code == "InvalidSignatureException" and "'eu-west-1'" in message

    # A request signed 20 minutes ago (botocore asked for the time then): the signature has expired.
    client = server.client(**one_try)
    past = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=20)
    with mock.patch("botocore.auth.get_current_datetime", return_value=past):
        code, status, message = _refused(lambda: client.create_batch_inference_job(**request_body))
    assert (code, status) == ("InvalidSignatureException", 403)
    assert message.startswith(f"Signature expired: {past:%Y%m%dT%H%M%SZ} is now earlier than")

    status, headers, body = raw_call(
        server.url,
        json.dumps(request_body).encode(),
        target="AmazonPersonalize.CreateBatchInferenceJob",
        sign=False,
        headers={
            "Authorization": f"AWS4-HMAC-SHA256 Credential={KEY_ID}/20260101/{REGION}/personalize/aws4_request"
        },
    )
    assert (status, body["__type"]) == (403, "IncompleteSignatureException")
    assert "requires 'SignedHeaders'" in body["message"] and "'Signature'" in body["message"]
    assert headers["x-amzn-requestid"]

    assert _all_job_names(server) == before


def test_malformed_requests_get_clear_errors_and_change_nothing(
    server: ServerProcess, version_arn: str
) -> None:
    before = _all_job_names(server)
    create = "AmazonPersonalize.CreateBatchInferenceJob"
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({"body": b"{not json", "target": create}, 400, "SerializationException", "not valid JSON"),
        ({"body": b"[1, 2]", "target": create}, 400, "SerializationException", "must be a JSON object"),
        (
            {"body": json.dumps({"jobName": "typed", "numResults": "ten"}).encode(), "target": create},
            400,
            "SerializationException",
            "numResults",
        ),
        (
            {"body": json.dumps({"jobInput": {"s3DataSource": "s3://b/in"}}).encode(), "target": create},
            400,
            "SerializationException",
            "jobInput.s3DataSource",
        ),
        (
            {"body": b"{}", "target": "AmazonPersonalize.CreateSolution"},
            400,
            "UnknownOperationException",
            "CreateSolution",
        ),
        (
            {"body": b"{}", "target": "AmazonS3.ListBuckets"},
            400,
            "UnknownOperationException",
            "AmazonPersonalize",
        ),
        ({"body": b"{}", "target": None}, 400, "UnknownOperationException", "Missing X-Amz-Target"),
        ({"body": b"{}", "path": "/other"}, 400, "UnknownOperationException", "/other"),
        ({"body": b"", "method": "GET", "sign": False}, 400, "UnknownOperationException", "POST /"),
    ]
    for kwargs, status, code, fragment in cases:
        got_status, headers, body = raw_call(server.url, **kwargs)
        assert (got_status, body["__type"]) == (status, code), (kwargs, body)
        assert fragment in body["message"], (kwargs, body)
        assert headers["content-type"] == "application/x-amz-json-1.1"
        assert headers["x-amzn-requestid"]
    # The same members, well typed, are accepted: the refusals above were about the form alone.
    status, _, body = raw_call(
        server.url,
        json.dumps({"solutionVersionArn": version_arn, "maxResults": 1, "unknownMember": True}).encode(),
        target="AmazonPersonalize.ListBatchInferenceJobs",
    )
    assert status == 200, body  # unknown members are ignored, as AWS's JSON services do
    assert _all_job_names(server) == before


def test_body_over_the_limit_is_413_and_changes_nothing(
    server: ServerProcess, request_body: dict[str, Any]
) -> None:
    before = _all_job_names(server)
    big = dict(request_body, jobName="too-big", padding="x" * (1024 * 1024))
    for sign in (True, False):
        status, headers, body = raw_call(
            server.url,
            json.dumps(big).encode(),
            target="AmazonPersonalize.CreateBatchInferenceJob",
            sign=sign,
        )
        assert (status, body["__type"]) == (413, "RequestEntityTooLargeException")
        assert "1048576 bytes" in body["message"]
        assert headers["x-amzn-requestid"]
    assert _all_job_names(server) == before
    # just under the limit is read and parsed (and refused for its content, not its size)
    status, _, body = raw_call(
        server.url,
        json.dumps(dict(request_body, jobName="bad name!", padding="x" * (1000 * 1000))).encode(),
        target="AmazonPersonalize.CreateBatchInferenceJob",
    )
    assert (status, body["__type"]) == (400, "InvalidInputException")


def test_concurrent_requests(server: ServerProcess, version_arn: str) -> None:
    client = server.client()

    def describe(_: int) -> str:
        return str(
            client.describe_solution_version(solutionVersionArn=version_arn)["solutionVersion"]["status"]
        )

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(describe, range(40))) == {"ACTIVE"}


def test_no_traceback_or_internal_detail_leaks(server: ServerProcess) -> None:
    status, _, body = raw_call(server.url, b"\xff\xfe", target="AmazonPersonalize.ListBatchInferenceJobs")
    assert (status, body["__type"]) == (400, "SerializationException")
    assert "Traceback" not in server.output


def test_connections_that_do_not_send_a_whole_request_are_closed(tmp_path: Path) -> None:
    # Held for ever, 256 of them would take every connection slot (uvicorn has no deadline for a
    # new or stalled connection): a bare connect, headers cut half-way, a body cut half-way, and
    # a keep-alive connection that starts a second request and stalls. All closed by the server
    # after --request-timeout; a slow but whole request within it is answered.
    server = ServerProcess(tmp_path / "home", "--request-timeout", "1.5")
    try:
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        head = f"POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-amz-json-1.1\r\n"
        target = "X-Amz-Target: AmazonPersonalize.ListBatchInferenceJobs\r\n"
        stalled = {
            "bare connect": b"",
            "half the headers": head.encode(),
            "half the body": (head + target + "Content-Length: 40\r\n\r\n{").encode(),
        }
        sockets = {}
        for name, data in stalled.items():
            sockets[name] = socket.create_connection((host, int(port)))
            sockets[name].sendall(data)
        kept = socket.create_connection((host, int(port)))
        kept.sendall((head + target + "Content-Length: 2\r\n\r\n{}").encode())
        kept.settimeout(10)
        assert kept.recv(65536).startswith(b"HTTP/1.1 ")  # unsigned, refused: a whole response
        kept.sendall(head.encode())  # a second request, stalled
        sockets["a second request, stalled"] = kept
        slow = socket.create_connection((host, int(port)))
        for piece in (head, target, "Content-Length: 2\r\n\r\n", "{}"):
            slow.sendall(piece.encode())
            time.sleep(0.3)
        slow.settimeout(10)
        assert slow.recv(65536).startswith(b"HTTP/1.1 ")
        started = time.monotonic()
        for name, sock in sockets.items():
            sock.settimeout(10)
            try:
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
            except ConnectionResetError:
                pass
            assert time.monotonic() - started < 8, f"{name}: not closed"
            sock.close()
        slow.close()
        assert server.terminate() == 0
    finally:
        server.kill()
