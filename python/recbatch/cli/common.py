"""What every ``recbatch`` command shares: global options, the client they drive, JSON output."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_global_options(parser: argparse.ArgumentParser, *, top_level: bool = False) -> None:
    """Options valid before or after the command name, as with the AWS CLI.

    The top-level parser sets the defaults; on a command's parser the default is SUPPRESS, so a value given
    before the command name is not overwritten by the command parser's default.
    """

    def default(value: Any) -> Any:
        return value if top_level else argparse.SUPPRESS

    group = parser.add_argument_group("global options")
    group.add_argument(
        "--home",
        default=default(None),
        help="the local recbatch home (default: $RECBATCH_HOME, else ~/.recbatch)",
    )
    group.add_argument(
        "--endpoint-url",
        default=default(None),
        help="drive a 'recbatch serve' endpoint (e.g. http://127.0.0.1:8080) through boto3 instead of the local home; "
        "credentials come from the usual AWS settings (AWS_ACCESS_KEY_ID, --profile, ...)",
    )
    group.add_argument(
        "--region",
        default=default(None),
        help="the region of ARNs (local) or to sign requests for (endpoint); default: the usual AWS settings",
    )
    group.add_argument(
        "--profile",
        default=default(None),
        help="the AWS profile to use, as AWS_PROFILE: its credentials sign requests (endpoint) or reach S3 "
        "(local), and its region is the default one",
    )
    group.add_argument(
        "--output",
        default=default("json"),
        choices=["json"],
        help="output format (json only, as the AWS CLI's default)",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="log details and show tracebacks of errors",
    )


def make_client(args: argparse.Namespace) -> Any:
    """The client a command drives: the local job client (without a background worker: commands return at
    once, and ``--wait`` runs its own job), or boto3 against ``--endpoint-url``."""
    if args.endpoint_url:
        from recbatch.server.remote import boto3_client

        return boto3_client(args.endpoint_url, profile_name=args.profile, region_name=args.region)
    from recbatch.jobs.client import client

    if args.profile:
        # As the AWS CLI: the profile serves the whole command (the home's default region, and the
        # credentials a job run by --wait reads and writes S3 with).
        os.environ["AWS_PROFILE"] = args.profile
    return client(args.home, region=args.region, start_worker=False)


def close_client(client: Any) -> None:
    close = getattr(client, "close", None)
    if callable(close):
        close()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def print_json(value: Mapping[str, Any]) -> None:
    """Print a response as the AWS CLI does: indented JSON, timestamps in ISO 8601, no ResponseMetadata."""
    sys.stdout.write(json.dumps(_plain(value), indent=4, ensure_ascii=False) + "\n")
    sys.stdout.flush()
