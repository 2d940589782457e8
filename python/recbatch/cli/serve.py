"""``recbatch serve``: run the AWS JSON 1.1 endpoint and the job workers."""

from __future__ import annotations

import argparse
from typing import Any

from recbatch.cli.common import CliError, add_global_options
from recbatch.server.app import DEFAULT_MAX_BODY_BYTES, DEFAULT_REQUEST_TIMEOUT


def add_command(commands: Any) -> None:
    parser = commands.add_parser(
        "serve",
        help="serve the Amazon Personalize API (AWS JSON 1.1, SigV4) for boto3 and the AWS CLI, and run the jobs",
        description=(
            "Serve the batch job API of Amazon Personalize on HTTP, so that boto3.client('personalize', "
            "endpoint_url=...) and 'aws personalize ... --endpoint-url' work unchanged, and run the queued jobs. "
            "Requests are authenticated with AWS Signature Version 4 against RECBATCH_ACCESS_KEY_ID / "
            "RECBATCH_SECRET_ACCESS_KEY and the key pairs of --credentials-file; without any key the server "
            "serves loopback addresses only. SIGTERM or Ctrl-C stops it cleanly: running jobs are requeued."
        ),
    )
    add_global_options(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8080, help="port to listen on; 0 picks a free one (default 8080)"
    )
    parser.add_argument(
        "--credentials-file",
        metavar="PATH",
        help="accepted key pairs, in the AWS credentials file format: one [section] per pair with aws_access_key_id "
        "and aws_secret_access_key (default: $RECBATCH_CREDENTIALS_FILE)",
    )
    parser.add_argument("--account", help="the 12-digit account id of ARNs (default: $RECBATCH_ACCOUNT_ID)")
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help=f"largest request body accepted; larger ones get HTTP 413 (default {DEFAULT_MAX_BODY_BYTES})",
    )
    parser.add_argument("--request-threads", type=int, default=8, help="requests handled at once (default 8)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="jobs run at once in this process (default 1); 0 runs none here (another process on the home does)",
    )
    parser.add_argument(
        "--max-queued-jobs",
        type=int,
        default=1000,
        help="pending plus running jobs beyond which a create is LimitExceededException (default 1000)",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=DEFAULT_REQUEST_TIMEOUT,
        metavar="SECONDS",
        help="a connection that has not sent a whole request within this time of opening (or of its previous "
        f"response) is closed, so idle or stalled clients cannot hold the connection slots (default {DEFAULT_REQUEST_TIMEOUT:g})",
    )
    parser.add_argument(
        "--threads", type=int, help="scoring threads per job (default: the CPUs this process may use)"
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"], help="server log level"
    )
    parser.set_defaults(handler=_run, command_parser=parser)


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import logging

    from recbatch.server.credentials import CredentialsError
    from recbatch.server.serve import ServeError, ServeOptions, run_server

    if args.endpoint_url:
        parser.error("serve takes no --endpoint-url: it is the endpoint")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    level = logging.DEBUG if args.debug else getattr(logging, args.log_level.upper())
    logging.getLogger("recbatch").setLevel(level)
    logging.getLogger("uvicorn").setLevel(level)
    options = ServeOptions(
        host=args.host,
        port=args.port,
        home=args.home,
        region=args.region,
        account=args.account,
        credentials_file=args.credentials_file,
        max_body_bytes=args.max_body_bytes,
        request_threads=args.request_threads,
        workers=args.workers,
        max_queued_jobs=args.max_queued_jobs,
        request_timeout=args.request_timeout,
        threads=args.threads,
        log_level=args.log_level,
    )
    try:
        return run_server(options)
    except (ServeError, CredentialsError) as e:
        raise CliError(str(e), getattr(e, "exit_code", 2)) from None
