"""``recbatch demo``: a whole batch inference job on the embedded default, in a few seconds.

It writes a small random model and a JSON-lines input file into ``--dir``, imports the model as a solution
version, runs a batch inference job on it (local files, the SQLite home; no AWS account), and prints where the
output is and its first lines.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from recbatch.cli import wait
from recbatch.cli.common import CliError, add_global_options, close_client, make_client

RECIPE_ARN = "arn:aws:personalize:::recipe/aws-user-personalization"
DEMO_ROLE_ARN = "arn:aws:iam::000000000000:role/RecbatchDemo"


def add_command(commands: Any) -> None:
    parser = commands.add_parser(
        "demo",
        help="build a small model and input, run a batch inference job locally, show the output",
        description=(
            "Write a small synthetic model and a JSON-lines input into --dir, import the model as a solution "
            "version, run a batch inference job on the local home, and print where the output is and its first "
            "lines. Needs no AWS account."
        ),
    )
    add_global_options(parser)
    parser.add_argument(
        "--dir",
        default="recbatch-demo",
        help="where the model, input and output go (default ./recbatch-demo)",
    )
    parser.add_argument("--users", type=int, default=1000, help="users in the model (default 1000)")
    parser.add_argument("--items", type=int, default=5000, help="items in the model (default 5000)")
    parser.add_argument("--records", type=int, default=200, help="input records (default 200)")
    parser.add_argument("--num-results", type=int, default=10, help="recommendations per user (default 10)")
    parser.add_argument("--show", type=int, default=3, help="output lines to print (default 3)")
    parser.set_defaults(handler=_run, command_parser=parser)


def _write_input(path: Path, n_users: int, n_records: int) -> None:
    # Known users, and one that the model has never seen: Personalize answers it with popular items.
    lines = [json.dumps({"userId": f"u{(i * 7919) % n_users}"}) for i in range(max(n_records - 1, 0))]
    lines.append(json.dumps({"userId": "new-user-without-history"}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from recbatch.model import save_model, synthetic_model

    for name in ("users", "items", "records", "num_results"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    root = Path(args.dir).expanduser().absolute()
    (root / "input").mkdir(parents=True, exist_ok=True)
    (root / "output").mkdir(parents=True, exist_ok=True)

    model_path = root / "model.npz"
    save_model(str(model_path), **synthetic_model(args.users, args.items, 32, seed=0))
    input_path = root / "input" / "users.jsonl"
    _write_input(input_path, args.users, args.records)
    print(f"model:  {model_path} ({args.users} users, {args.items} items, 32 factors)")
    print(f"input:  {input_path} ({args.records} records)")

    client = make_client(args)
    try:
        version = client.import_solution_version(
            solutionName="demo", recipeArn=RECIPE_ARN, modelPath=str(model_path)
        )["solutionVersionArn"]
        print(f"solution version: {version}")
        job_name = f"demo-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        started = time.monotonic()
        arn = client.create_batch_inference_job(
            jobName=job_name,
            solutionVersionArn=version,
            numResults=args.num_results,
            jobInput={"s3DataSource": {"path": str(input_path)}},
            jobOutput={"s3DataDestination": {"path": str(root / "output") + "/"}},
            roleArn=DEMO_ROLE_ARN,
        )["batchInferenceJobArn"]
        print(f"job:    {arn}")
        with contextlib.nullcontext() if args.endpoint_url else wait.run_locally(client, arn):
            job = wait.follow(
                client.describe_batch_inference_job,
                arn,
                "batchInferenceJobArn",
                "batchInferenceJob",
                total=lambda: args.records,
            )
    finally:
        close_client(client)
    if job.get("status") != "ACTIVE":
        raise CliError(f"the demo job ended {job.get('status')}: {job.get('failureReason')}")
    output = root / "output" / (input_path.name + ".out")
    print(f"status: ACTIVE after {time.monotonic() - started:.1f}s")
    print(f"output: {output}")
    print(f"first {args.show} lines:")
    with output.open(encoding="utf-8") as f:
        for _, line in zip(range(args.show), f, strict=False):
            sys.stdout.write("  " + line)
    home = f" --home {args.home}" if args.home else ""
    print(f"next:   recbatch{home} describe-batch-inference-job --batch-inference-job-arn {arn}")
    return 0
