"""The ``recbatch`` command line.

Subcommands named and spelled as the AWS CLI's ``aws personalize`` ones (``create-batch-inference-job
--job-name ... --job-input s3DataSource={path=...}``), working on the local home by default or on a
``recbatch serve`` endpoint with ``--endpoint-url``; plus ``recbatch serve`` and ``recbatch demo``.

Exit codes: 0 success; 1 an error (a service error, a failed job, a file that cannot be read); 2 a usage
error (unknown option, a value that cannot be parsed, a required option missing); 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError

from recbatch import __version__
from recbatch.cli import api, demo, serve
from recbatch.cli.common import CliError, add_global_options

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recbatch",
        description=(
            "Amazon Personalize-compatible batch inference on your own machines. The job commands take the "
            "AWS CLI's options ('aws personalize <command>') and work on the local home (--home, $RECBATCH_HOME, "
            "~/.recbatch), or on a 'recbatch serve' endpoint with --endpoint-url."
        ),
        epilog="Run 'recbatch <command> --help' for a command's options. Start with 'recbatch demo'.",
    )
    add_global_options(parser, top_level=True)
    parser.add_argument("--version", action="version", version=f"recbatch {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="<command>", dest="command")
    commands.required = True
    api.add_commands(commands)
    serve.add_command(commands)
    demo.add_command(commands)
    return parser


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script passes it to ``sys.exit``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        # Usage errors found by a command show that command's usage, not the top level's.
        code: int = args.handler(args, args.command_parser)
        return code
    except KeyboardInterrupt:
        print("recbatch: interrupted", file=sys.stderr)
        return 130
    except CliError as e:
        if args.debug:
            traceback.print_exc()
        print(f"recbatch: error: {_one_line(str(e))}", file=sys.stderr)
        return e.exit_code
    except ClientError as e:
        if args.debug:
            traceback.print_exc()
        error = e.response.get("Error", {})
        print(
            f"recbatch: error: ({error.get('Code', 'Unknown')}) when calling {e.operation_name}: "
            f"{_one_line(error.get('Message', str(e)))}",
            file=sys.stderr,
        )
        return 1
    except (BotoCoreError, OSError, ValueError) as e:
        if args.debug:
            traceback.print_exc()
        print(f"recbatch: error: {_one_line(str(e))}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - the promise: one line, no traceback, unless --debug
        if args.debug:
            traceback.print_exc()
        print(
            f"recbatch: error: {type(e).__name__}: {_one_line(str(e))} (run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
