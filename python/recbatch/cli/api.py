"""The API commands (``create-batch-inference-job`` ...), generated from the ``personalize`` service model.

Each input member becomes an option spelled as the AWS CLI spells it (``jobName`` -> ``--job-name``); a value
is JSON, shorthand (``s3DataSource={path=...}``) or ``file://PATH`` (see :mod:`recbatch.cli.shorthand`).
``--cli-input-json`` supplies the whole request (options given beside it win). List commands fetch every page,
as the AWS CLI does, unless told otherwise (``--max-items``, ``--page-size``, ``--starting-token``,
``--no-paginate``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from typing import Any

from botocore import xform_name
from botocore.model import ListShape, OperationModel, StructureShape
from botocore.utils import ArgumentGenerator

from recbatch.cli import wait
from recbatch.cli.common import CliError, add_global_options, close_client, make_client, print_json
from recbatch.cli.shorthand import ShorthandError, UnreadableFileError, parse_option, read_value
from recbatch.server.protocol import operation_model

#: The operations of the command line, in help order.
OPERATIONS = (
    "CreateBatchInferenceJob",
    "DescribeBatchInferenceJob",
    "ListBatchInferenceJobs",
    "CreateBatchSegmentJob",
    "DescribeBatchSegmentJob",
    "ListBatchSegmentJobs",
    "ImportSolutionVersion",
    "DescribeSolutionVersion",
    "ListSolutionVersions",
)
#: The operations whose jobs ``--wait`` can follow, with their describe operation and the job member names.
WAITABLE = {
    "CreateBatchInferenceJob": ("DescribeBatchInferenceJob", "batchInferenceJobArn", "batchInferenceJob"),
    "CreateBatchSegmentJob": ("DescribeBatchSegmentJob", "batchSegmentJobArn", "batchSegmentJob"),
}


def _summary(documentation: str) -> str:
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", documentation)).strip()
    first = re.split(r"(?<=\.)\s", text, maxsplit=1)[0]
    return first.replace("%", "%%")


def _option(member: str) -> str:
    return "--" + xform_name(member, "-")


def _list_members(op: OperationModel) -> tuple[str, str, str] | None:
    """(result key, token member, limit member) when ``op`` is a paginated list."""
    if not op.name.startswith("List"):
        return None
    shape = op.output_shape
    assert shape is not None
    keys = [name for name, member in shape.members.items() if isinstance(member, ListShape)]
    return (keys[0], "nextToken", "maxResults") if keys else None


def add_commands(commands: Any) -> None:
    for name in OPERATIONS:
        op = operation_model(name)
        parser = commands.add_parser(
            xform_name(name, "-"),
            help=_summary(op.documentation) or name,
            description=re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", op.documentation))
            .strip()
            .replace("%", "%%"),
        )
        add_global_options(parser)
        shape = op.input_shape
        assert isinstance(shape, StructureShape)
        required = set(shape.required_members)
        members = parser.add_argument_group("request members")
        for member, member_shape in shape.members.items():
            compound = member_shape.type_name in ("structure", "map", "list")
            members.add_argument(
                _option(member),
                dest=f"member:{member}",
                metavar=member_shape.type_name.upper() if not compound else "VALUE",
                nargs="+" if isinstance(member_shape, ListShape) else None,
                help=(
                    ("(required) " if member in required else "") + _summary(member_shape.documentation or "")
                )
                + (" JSON, shorthand or file://PATH." if compound else ""),
            )
        parser.add_argument(
            "--cli-input-json", metavar="JSON", help="the request as JSON, or file://PATH of a JSON file"
        )
        parser.add_argument(
            "--generate-cli-skeleton",
            nargs="?",
            const="input",
            choices=["input"],
            help="print a JSON skeleton of the request and exit ('input', the default; the AWS CLI's 'output' "
            "skeleton is not offered)",
        )
        if _list_members(op):
            paging = parser.add_argument_group("pagination (all pages by default)")
            paging.add_argument(
                "--max-items", type=int, help="stop after this many items; prints a NextToken"
            )
            paging.add_argument("--page-size", type=int, help="items per request (1..100)")
            paging.add_argument("--starting-token", help="the NextToken of an earlier truncated listing")
            paging.add_argument("--no-paginate", action="store_true", help="one request only")
        if name in WAITABLE:
            parser.add_argument(
                "--wait",
                action="store_true",
                help="run (local home) or follow (endpoint) the job until it ends, with a progress bar on stderr; "
                "exits 1 with the failureReason if it fails",
            )
        parser.set_defaults(handler=_run, operation=name, command_parser=parser)


def _request(args: argparse.Namespace, parser: argparse.ArgumentParser, op: OperationModel) -> dict[str, Any]:
    shape = op.input_shape
    assert isinstance(shape, StructureShape)
    params: dict[str, Any] = {}
    if args.cli_input_json:
        try:
            loaded = json.loads(read_value(args.cli_input_json))
        except UnreadableFileError as e:
            raise CliError(f"--cli-input-json: {e}", 1) from None
        except (ShorthandError, json.JSONDecodeError) as e:
            parser.error(f"--cli-input-json: {e}")
        if not isinstance(loaded, dict):
            parser.error("--cli-input-json: expected a JSON object")
        unknown = sorted(set(loaded) - set(shape.members))
        if unknown:
            parser.error(
                f"--cli-input-json: unknown member {unknown[0]!r}; valid: {', '.join(shape.members)}"
            )
        params.update(loaded)
    for member, member_shape in shape.members.items():
        raw = getattr(args, f"member:{member}")
        if raw is None:
            continue
        try:
            params[member] = parse_option(
                _option(member), member_shape, raw if isinstance(raw, list) else [raw]
            )
        except UnreadableFileError as e:
            raise CliError(str(e), 1) from None
        except ShorthandError as e:
            parser.error(str(e))
    missing = [_option(m) for m in shape.required_members if m not in params]
    if missing:
        parser.error(f"the following arguments are required: {', '.join(missing)}")
    return params


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    op = operation_model(args.operation)
    if args.generate_cli_skeleton:
        assert op.input_shape is not None
        print_json(ArgumentGenerator().generate_skeleton(op.input_shape))
        return 0
    params = _request(args, parser, op)
    paging = _list_members(op)
    if paging:
        _check_paging(args, parser)
    waiting = bool(getattr(args, "wait", False))
    client = make_client(args)
    try:
        method = getattr(client, xform_name(op.name))
        if paging and not args.no_paginate and "nextToken" not in params and "maxResults" not in params:
            print_json(_paginate(method, params, paging, args))
            return 0
        result = method(**params)
        if not waiting:
            print_json(result)
            if op.name in WAITABLE and not args.endpoint_url and sys.stderr.isatty():
                print(
                    "recbatch: the job is queued in the local home; a worker runs it: 'recbatch serve' on this "
                    "home, or create with --wait",
                    file=sys.stderr,
                )
            return 0
        describe, arn_member, job_member = WAITABLE[op.name]
        arn = result[arn_member]
        with contextlib.nullcontext() if args.endpoint_url else wait.run_locally(client, arn):
            paths = (
                params["jobInput"]["s3DataSource"]["path"],
                params["jobOutput"]["s3DataDestination"]["path"],
            )
            job = wait.follow(
                getattr(client, xform_name(describe)),
                arn,
                arn_member,
                job_member,
                total=lambda: wait.count_records(*paths),
            )
        print_json({job_member: job})
        if job.get("status") != "ACTIVE":
            raise CliError(
                f"job {result[arn_member]} ended {job.get('status')}: {job.get('failureReason') or ''}"
            )
        return 0
    finally:
        close_client(client)


def _check_paging(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.max_items is not None and args.max_items < 1:
        parser.error("--max-items must be at least 1")
    if args.page_size is not None and not 1 <= args.page_size <= 100:
        parser.error("--page-size must be between 1 and 100")


def _paginate(
    method: Any, params: dict[str, Any], paging: tuple[str, str, str], args: argparse.Namespace
) -> Any:
    """Every page, or up to ``--max-items`` with a ``NextToken`` to go on from, as the AWS CLI prints them.

    Each request asks for no more than the items still wanted, so a listing stops on a page boundary and the
    printed NextToken is the service's own token (resumable with ``--starting-token``)."""
    result_key, token_member, limit_member = paging
    items: list[Any] = []
    token: str | None = args.starting_token
    while True:
        request = dict(params)
        limit = args.page_size or 100
        if args.max_items is not None:
            limit = min(limit, args.max_items - len(items))
        request[limit_member] = limit
        if token:
            request[token_member] = token
        page = method(**request)
        items.extend(page.get(result_key, []))
        token = page.get(token_member)
        if not token or (args.max_items is not None and len(items) >= args.max_items):
            break
    out: dict[str, Any] = {result_key: items}
    if token:
        out["NextToken"] = token
    return out
