"""``recbatch serve`` options: keys from the environment or a credentials file, loopback-only without keys,
start-up errors, the body limit, and a clean exit on SIGINT."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore import UNSIGNED
from botocore.exceptions import ClientError

from tests.server.helpers import REGION, ServerProcess, clean_env, key_env, raw_call


def _serve(home: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A ``recbatch serve`` that is expected to refuse to start."""
    return subprocess.run(
        [sys.executable, "-m", "recbatch", "serve", "--home", str(home), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_keys_it_serves_loopback_unauthenticated(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "home", env=clean_env())
    try:
        assert "no access keys configured" in server.output
        assert server.url.startswith("http://127.0.0.1:")
        unsigned = server.client(signature_version=UNSIGNED)
        assert unsigned.list_batch_inference_jobs()["batchInferenceJobs"] == []
        signed_by_anyone = server.client(key_id="ANYKEY", secret="anything")
        assert signed_by_anyone.list_solution_versions()["solutionVersions"] == []
    finally:
        assert server.terminate() == 0


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_without_keys_a_non_loopback_host_is_refused(tmp_path: Path, host: str) -> None:
    result = _serve(tmp_path / "home", "--host", host, "--port", "0", env=clean_env())
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "refusing to listen" in result.stderr and "RECBATCH_ACCESS_KEY_ID" in result.stderr
    assert not (tmp_path / "home").exists(), "nothing is created when the server refuses to start"


def test_keys_from_a_credentials_file(tmp_path: Path) -> None:
    credentials = tmp_path / "keys.ini"
    credentials.write_text(
        "[team-a]\naws_access_key_id = AKIDTEAMA\naws_secret_access_key = secret-a\n\n"
        "[team-b]\naws_access_key_id = AKIDTEAMB\naws_secret_access_key = secret-b\n"
    )
    credentials.chmod(0o644)
    env = clean_env(**key_env("AKIDENV", "secret-env"))
    server = ServerProcess(tmp_path / "home", "--credentials-file", str(credentials), env=env)
    try:
        assert "3 access key(s)" in server.output
        assert "readable by other users" in server.output
        for key_id, secret in (
            ("AKIDTEAMA", "secret-a"),
            ("AKIDTEAMB", "secret-b"),
            ("AKIDENV", "secret-env"),
        ):
            client = server.client(key_id=key_id, secret=secret)
            assert client.list_batch_inference_jobs()["ResponseMetadata"]["HTTPStatusCode"] == 200
        with pytest.raises(ClientError) as caught:
            server.client(key_id="AKIDTEAMA", secret="secret-b").list_batch_inference_jobs()
        assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    finally:
        assert server.terminate() == 0


def test_credentials_file_from_the_environment(tmp_path: Path) -> None:
    credentials = tmp_path / "keys.ini"
    credentials.write_text("[only]\naws_access_key_id = AKIDFILE\naws_secret_access_key = from-file\n")
    credentials.chmod(0o600)
    server = ServerProcess(tmp_path / "home", env=clean_env(RECBATCH_CREDENTIALS_FILE=str(credentials)))
    try:
        assert "readable by other users" not in server.output
        assert (
            server.client(key_id="AKIDFILE", secret="from-file").list_solution_versions()["solutionVersions"]
            == []
        )
    finally:
        assert server.terminate() == 0


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        ({"RECBATCH_ACCESS_KEY_ID": "AKIDHALF"}, "RECBATCH_SECRET_ACCESS_KEY is not set"),
        ({"RECBATCH_CREDENTIALS_FILE": "/nonexistent/keys.ini"}, "cannot read credentials file"),
        ({"file": "[a]\naws_access_key_id = X\n"}, "needs aws_access_key_id and aws_secret_access_key"),
        ({"file": "not an ini file\n"}, "is not an INI file"),
        ({"file": "# empty\n"}, "holds no key pair"),
    ],
)
def test_unusable_credentials_stop_the_start_with_one_line(
    tmp_path: Path, setup: dict[str, str], fragment: str
) -> None:
    env = clean_env()
    if "file" in setup:
        path = tmp_path / "keys.ini"
        path.write_text(setup["file"])
        env["RECBATCH_CREDENTIALS_FILE"] = str(path)
    else:
        env.update(setup)
    result = _serve(tmp_path / "home", "--port", "0", env=env)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve(tmp_path / "home", "--port", str(port), env=clean_env(**key_env()))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert result.stderr.count("\n") == 1


def test_max_body_bytes_option(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "home", "--max-body-bytes", "2048")
    try:
        body = json.dumps({"nextToken": "x" * 3000}).encode()
        status, _, answer = raw_call(server.url, body)
        assert (status, answer["__type"]) == (413, "RequestEntityTooLargeException")
        assert "2048 bytes" in answer["message"]
        status, _, answer = raw_call(server.url, json.dumps({"maxResults": 5}).encode())
        assert status == 200, answer
    finally:
        assert server.terminate() == 0


def test_sigint_stops_cleanly_and_region_comes_from_the_option(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "home")
    try:
        assert f"region {REGION}" in server.output
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(60) == 0
        server.kill()
        assert server.output.rstrip().endswith("recbatch serve: stopped")
    finally:
        server.kill()


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_request_timeout_must_be_positive(tmp_path: Path, value: str) -> None:
    result = _serve(tmp_path / "home", "--port", "0", "--request-timeout", value, env=clean_env())
    assert result.returncode == 2
    assert "--request-timeout must be a positive number of seconds" in result.stderr


def test_sigterm_does_not_wait_for_a_request_still_being_sent(tmp_path: Path) -> None:
    # A client stalled half-way through its body has not started anything: the server closes it
    # at once instead of waiting out the graceful period (10 s) and cancelling it with a traceback.
    server = ServerProcess(tmp_path / "home")
    try:
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        stalled = socket.create_connection((host, int(port)))
        stalled.sendall(
            f"POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100\r\n"
            "X-Amz-Target: AmazonPersonalize.ListBatchInferenceJobs\r\n\r\n{".encode()
        )
        time.sleep(0.5)
        started = time.monotonic()
        assert server.terminate() == 0
        assert time.monotonic() - started < 5
        assert "Traceback" not in server.output and "CancelledError" not in server.output
        stalled.close()
    finally:
        server.kill()
