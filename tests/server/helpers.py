"""Running ``recbatch serve`` as a real subprocess, and talking to it as boto3, the AWS CLI or raw HTTP do."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from recbatch.server.remote import boto3_client

REGION = "us-east-1"
KEY_ID = "AKIDRECBATCHTEST"
SECRET = "recbatch-server-test-secret"
ROLE_ARN = "arn:aws:iam::000000000000:role/RecbatchTest"
USER_RECIPE = "arn:aws:personalize:::recipe/aws-user-personalization"
START_TIMEOUT_S = 60.0
WAIT_TIMEOUT_S = 120.0

T = TypeVar("T")


def clean_env(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """``base`` (default: this process' environment) without the developer's AWS and recbatch settings."""
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if not k.startswith("RECBATCH_")}
    if base is None:
        env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
        env.update(
            AWS_CONFIG_FILE="/nonexistent/recbatch-test-aws-config",
            AWS_SHARED_CREDENTIALS_FILE="/nonexistent/recbatch-test-aws-credentials",
            AWS_EC2_METADATA_DISABLED="true",
        )
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    env.update(extra)
    return env


def key_env(key_id: str = KEY_ID, secret: str = SECRET) -> dict[str, str]:
    return {"RECBATCH_ACCESS_KEY_ID": key_id, "RECBATCH_SECRET_ACCESS_KEY": secret}


def wait_for(check: Callable[[], T | None], what: str, timeout: float = WAIT_TIMEOUT_S) -> T:
    """Poll ``check`` until it returns something other than None (a bounded wait, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class ServerProcess:
    """``python -m recbatch serve --port 0`` on a home; its stderr is collected line by line."""

    def __init__(self, home: Path, *args: str, env: Mapping[str, str] | None = None) -> None:
        argv = [
            sys.executable,
            "-m",
            "recbatch",
            "serve",
            "--port",
            "0",
            "--region",
            REGION,
            "--home",
            str(home),
        ]
        self.process = subprocess.Popen(
            [*argv, *args],
            env=dict(env) if env is not None else clean_env(**key_env()),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        # The last line of the start-up report: every earlier one has been read by then.
        self.wait_for_line("operations:", START_TIMEOUT_S)
        line = self.wait_for_line("listening on http://", START_TIMEOUT_S)
        self.url = line.split("listening on ", 1)[1].split()[0]

    def _read(self) -> None:
        assert self.process.stderr is not None
        with self.process.stderr:
            for line in self.process.stderr:
                with self._changed:
                    self.lines.append(line.rstrip("\n"))
                    self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for_line(self, fragment: str, timeout: float = WAIT_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if fragment in line:
                        return line
                if self.process.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(
                        f"server exited ({self.process.returncode}) without {fragment!r}:\n{self.output}"
                    )
                if time.monotonic() > deadline:
                    raise AssertionError(f"server printed no {fragment!r}:\n{self.output}")
                self._changed.wait(0.1)

    def terminate(self, timeout: float = WAIT_TIMEOUT_S) -> int:
        """SIGTERM, then the exit code."""
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self._reader.join(10)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(10)

    def client(self, key_id: str = KEY_ID, secret: str = SECRET, region: str = REGION, **config: Any) -> Any:
        """The real boto3 personalize client pointed at this server (``config``: botocore Config options)."""
        return boto3.client(
            "personalize",
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=Config(**config) if config else None,
        )

    def recbatch_client(self, key_id: str = KEY_ID, secret: str = SECRET) -> Any:
        """boto3 with recbatch's model extras (import_solution_version, progress members)."""
        return boto3_client(
            self.url, region_name=REGION, aws_access_key_id=key_id, aws_secret_access_key=secret
        )


def raw_call(
    url: str,
    body: bytes,
    *,
    target: str | None = "AmazonPersonalize.ListBatchInferenceJobs",
    sign: bool = True,
    key_id: str = KEY_ID,
    secret: str = SECRET,
    method: str = "POST",
    path: str = "/",
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """One HTTP request, signed by botocore's SigV4 signer unless ``sign`` is False: (status, headers, JSON)."""
    sent = {"Content-Type": "application/x-amz-json-1.1", **(headers or {})}
    if target is not None:
        sent["X-Amz-Target"] = target
    if sign:
        request = AWSRequest(method=method, url=url.rstrip("/") + path, data=body, headers=sent)
        SigV4Auth(Credentials(key_id, secret), "personalize", REGION).add_auth(request)
        sent = {k: str(v) for k, v in request.headers.items()}
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(data or b"{}")
    finally:
        connection.close()


def create_request(
    name: str, version_arn: str, input_path: str, output_path: str, **extra: Any
) -> dict[str, Any]:
    return {
        "jobName": name,
        "solutionVersionArn": version_arn,
        "jobInput": {"s3DataSource": {"path": input_path}},
        "jobOutput": {"s3DataDestination": {"path": output_path}},
        "roleArn": ROLE_ARN,
        **extra,
    }


def wait_job(client: Any, arn: str, timeout: float = WAIT_TIMEOUT_S) -> dict[str, Any]:
    """Describe until the job ends (ACTIVE or CREATE FAILED)."""

    def ended() -> dict[str, Any] | None:
        job: dict[str, Any] = client.describe_batch_inference_job(batchInferenceJobArn=arn)[
            "batchInferenceJob"
        ]
        return job if job["status"] in ("ACTIVE", "CREATE FAILED") else None

    return wait_for(ended, f"job {arn} to end", timeout)


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m recbatch ARGS`` with captured output."""
    return subprocess.run(
        [sys.executable, "-m", "recbatch", *args],
        env=dict(env) if env is not None else clean_env(),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
