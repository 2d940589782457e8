"""``recbatch serve``: the AWS JSON 1.1 endpoint and the job workers, in one process.

HTTP is served by uvicorn (h11, one asyncio loop) with :class:`~recbatch.server.app.AsgiApp`; requests run
on a bounded thread pool against one job client; the job worker runs in its own thread(s).

Shutdown on SIGTERM or SIGINT (Ctrl-C): uvicorn stops accepting connections and lets requests in flight
finish (at most ``GRACEFUL_SECONDS``); then the worker is told to stop, so a running job stops at its next
safe point, its partial output is discarded and the job is requeued as ``CREATE PENDING``; the process exits 0.
The next ``recbatch serve`` (or any worker) on the same home picks the queue up, oldest job first.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import FrameType
from typing import Any

import uvicorn

from recbatch.server.app import DEFAULT_MAX_BODY_BYTES, DEFAULT_REQUEST_TIMEOUT, AsgiApp, Service
from recbatch.server.credentials import credentials_file_is_private, load_credentials
from recbatch.server.protocol import SIGNING_NAME
from recbatch.server.read_deadline import protocol_with_read_deadline
from recbatch.server.sigv4 import SigV4Verifier

log = logging.getLogger("recbatch.server")

#: Seconds that requests in flight get to finish after SIGTERM.
GRACEFUL_SECONDS = 10
#: Seconds that a running job gets to reach a safe point after SIGTERM; past them the process exits anyway
#: and the next worker on the home requeues the job (it sees that this process is gone).
JOB_STOP_SECONDS = 120
#: Concurrent connections beyond which uvicorn answers 503 (which boto3 retries).
MAX_CONNECTIONS = 256


class ServeError(Exception):
    """The server cannot start as configured; ``exit_code`` 2 for configuration mistakes."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    home: str | None = None
    region: str | None = None
    account: str | None = None
    credentials_file: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    request_threads: int = 8
    workers: int = 1
    threads: int | None = None
    max_queued_jobs: int = 1000
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    log_level: str = "info"


def is_loopback(host: str) -> bool:
    """True when every address ``host`` names is a loopback address (127.0.0.0/8, ::1)."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addresses)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (port 0: a free one)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as e:
        raise ServeError(f"cannot resolve --host {host!r}: {e}", 2) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.setblocking(False)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _say(message: str) -> None:
    print(f"recbatch serve: {message}", file=sys.stderr, flush=True)


class _Workers:
    """``count`` job workers on the client's home, each a thread running one job at a time."""

    def __init__(self, client: Any, count: int) -> None:
        from recbatch.jobs.worker import Worker

        self.workers = [Worker(client.store, client.config) for _ in range(count)]
        self.threads = [
            threading.Thread(target=w.run_forever, name=f"recbatch-worker-{i}", daemon=True)
            for i, w in enumerate(self.workers)
        ]
        # A job created through this server wakes the workers at once instead of at their next poll.
        client.service.on_job_created = self.wake

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def wake(self) -> None:
        for worker in self.workers:
            worker.wake()

    def stop(self) -> None:
        """Ask every worker to stop: a running job is interrupted at its next safe point and requeued."""
        for worker in self.workers:
            worker.stop()

    def join(self, timeout: float) -> bool:
        """Wait for the workers to stop; False if some did not within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self.threads)


def run_server(options: ServeOptions) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code."""
    from recbatch.jobs.client import OPERATIONS
    from recbatch.jobs.client import client as job_client

    credentials = load_credentials(credentials_file=options.credentials_file)
    if not credentials and not is_loopback(options.host):
        raise ServeError(
            f"refusing to listen on {options.host!r} without access keys: set RECBATCH_ACCESS_KEY_ID and "
            "RECBATCH_SECRET_ACCESS_KEY (or --credentials-file), or listen on a loopback address such as 127.0.0.1",
            2,
        )
    if options.credentials_file and not credentials_file_is_private(options.credentials_file):
        _say(f"warning: {options.credentials_file} is readable by other users (chmod 600 it)")
    for name, value, least in (
        ("--max-body-bytes", options.max_body_bytes, 1024),
        ("--request-threads", options.request_threads, 1),
        ("--workers", options.workers, 0),
        ("--max-queued-jobs", options.max_queued_jobs, 1),
    ):
        if value < least:
            raise ServeError(f"{name} must be at least {least}", 2)
    if not options.request_timeout > 0:
        raise ServeError("--request-timeout must be a positive number of seconds", 2)

    sock = bind(options.host, options.port)
    try:
        client = job_client(
            options.home,
            region=options.region,
            account=options.account,
            start_worker=False,
            threads=options.threads,
            max_queued_jobs=options.max_queued_jobs,
        )
    except BaseException:
        sock.close()
        raise
    region = client.config.region
    verifier = SigV4Verifier(credentials, service=SIGNING_NAME, region=region) if credentials else None
    service = Service(client.service.call, OPERATIONS, verifier)
    executor = ThreadPoolExecutor(max_workers=options.request_threads, thread_name_prefix="recbatch-request")
    config = uvicorn.Config(
        AsgiApp(service, executor, max_body_bytes=options.max_body_bytes),
        http=protocol_with_read_deadline(options.request_timeout),
        loop="asyncio",
        ws="none",
        lifespan="off",
        log_config=None,
        log_level=options.log_level,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        limit_concurrency=MAX_CONNECTIONS,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
    )
    server = uvicorn.Server(config)
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Before and after uvicorn's own handlers are installed (startup, job shutdown). uvicorn also re-raises
        # the signal that stopped it once it is done, which lands here while `stopping` is set: ignore that one.
        if stopping.is_set() and signum == signal.SIGINT:
            _say("second interrupt: exiting now; the next worker on this home requeues the running job")
            os._exit(1)
        server.should_exit = True

    # Workers first recover jobs left running by a dead process (say, a server killed with SIGKILL).
    workers = _Workers(client, options.workers)
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        workers.start()
        _say(
            f"listening on {_url(sock)} (home {client.config.home}, region {region}, account {client.config.account})"
        )
        if verifier is None:
            _say(
                "no access keys configured: requests are not authenticated, so only loopback addresses are served"
            )
        else:
            _say(f"SigV4 authentication on, {len(credentials)} access key(s)")
        _say(f"{options.workers} job worker(s); operations: {', '.join(sorted(service.operations))}")
        server.run(sockets=[sock])
    finally:
        stopping.set()
        workers.stop()
        _say("stopping: a running job stops at its next safe point and is requeued")
        executor.shutdown(wait=True)
        if not workers.join(JOB_STOP_SECONDS):
            _say(f"a job did not stop within {JOB_STOP_SECONDS} s; the next worker on this home requeues it")
        client.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    _say("stopped")
    return 0
