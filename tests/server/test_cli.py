"""The ``recbatch`` command line, run as a subprocess: output, exit codes, the local home and ``--endpoint-url``."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

import pytest

from recbatch.cli.api import OPERATIONS
from tests.server.helpers import (
    KEY_ID,
    REGION,
    ROLE_ARN,
    SECRET,
    USER_RECIPE,
    ServerProcess,
    clean_env,
    run_cli,
)

COMMANDS = [
    "create-batch-inference-job",
    "describe-batch-inference-job",
    "list-batch-inference-jobs",
    "create-batch-segment-job",
    "describe-batch-segment-job",
    "list-batch-segment-jobs",
    "import-solution-version",
    "describe-solution-version",
    "list-solution-versions",
    "serve",
    "demo",
]


def _ok(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _one_line_error(result: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def imported(home: Path, model_path: str) -> str:
    out = _ok(
        run_cli(
            "--home",
            str(home),
            "import-solution-version",
            "--solution-name",
            "cli",
            "--recipe-arn",
            USER_RECIPE,
            "--model-path",
            model_path,
        )
    )
    arn: str = out["solutionVersionArn"]
    return arn


def test_help_everywhere() -> None:
    main = run_cli("--help")
    assert main.returncode == 0
    for command in COMMANDS:
        assert command in main.stdout
        result = run_cli(command, "--help")
        assert result.returncode == 0, (command, result.stderr)
        assert "--home" in result.stdout and "--endpoint-url" in result.stdout
    create = run_cli("create-batch-inference-job", "--help").stdout
    for option in (
        "--job-name",
        "--solution-version-arn",
        "--num-results",
        "--job-input",
        "--job-output",
        "--role-arn",
        "--filter-arn",
        "--batch-inference-job-config",
        "--tags",
        "--cli-input-json",
        "--wait",
    ):
        assert option in create
    assert {c.replace("-", "") for c in COMMANDS[:9]} == {op.lower() for op in OPERATIONS}


def test_local_flow_import_create_wait_describe_list(
    home: Path, imported: str, input_path: str, tmp_path: Path
) -> None:
    described = _ok(
        run_cli("--home", str(home), "describe-solution-version", "--solution-version-arn", imported)
    )
    assert described["solutionVersion"]["status"] == "ACTIVE"
    assert described["solutionVersion"]["recipeArn"] == USER_RECIPE

    output = tmp_path / "out"
    created = run_cli(
        "create-batch-inference-job",
        "--home",
        str(home),  # global options work after the command name too
        "--job-name",
        "cli-job",
        "--solution-version-arn",
        imported,
        "--num-results",
        "4",
        "--job-input",
        f"s3DataSource={{path={input_path}}}",
        "--job-output",
        json.dumps({"s3DataDestination": {"path": str(output) + "/"}}),
        "--role-arn",
        ROLE_ARN,
        "--batch-inference-job-config",
        "itemExplorationConfig={explorationWeight=0.5}",
        "--tags",
        "tagKey=team,tagValue=recs",
        "tagKey=env,tagValue=test",
        "--wait",
    )
    job = _ok(created)["batchInferenceJob"]
    assert created.stderr == ""  # the progress bar stays quiet when stderr is not a terminal
    assert job["status"] == "ACTIVE"
    assert job["numResults"] == 4
    assert job["batchInferenceJobConfig"] == {"itemExplorationConfig": {"explorationWeight": "0.5"}}
    assert job["creationDateTime"].endswith("+00:00")  # ISO 8601, as the AWS CLI prints timestamps
    assert len((output / "users.jsonl.out").read_text().splitlines()) == 10

    again = _ok(
        run_cli(
            "--home",
            str(home),
            "describe-batch-inference-job",
            "--batch-inference-job-arn",
            job["batchInferenceJobArn"],
        )
    )
    assert again["batchInferenceJob"]["recordsWritten"] == 10

    listed = _ok(run_cli("--home", str(home), "list-batch-inference-jobs"))
    assert [j["jobName"] for j in listed["batchInferenceJobs"]] == ["cli-job"]
    versions = _ok(run_cli("--home", str(home), "list-solution-versions"))
    assert [v["solutionVersionArn"] for v in versions["solutionVersions"]] == [imported]


def test_cli_input_json_and_pagination(home: Path, imported: str, input_path: str, tmp_path: Path) -> None:
    request = {
        "jobName": "from-file",
        "solutionVersionArn": imported,
        "jobInput": {"s3DataSource": {"path": input_path}},
        "jobOutput": {"s3DataDestination": {"path": str(tmp_path / "out") + "/"}},
        "roleArn": ROLE_ARN,
    }
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    for i in range(3):
        # options beside --cli-input-json win over its members
        _ok(
            run_cli(
                "--home",
                str(home),
                "create-batch-inference-job",
                "--cli-input-json",
                f"file://{path}",
                "--job-name",
                f"from-file-{i}",
            )
        )
    first = _ok(
        run_cli("--home", str(home), "list-batch-inference-jobs", "--max-items", "2", "--page-size", "1")
    )
    assert [j["jobName"] for j in first["batchInferenceJobs"]] == ["from-file-2", "from-file-1"]
    rest = _ok(
        run_cli("--home", str(home), "list-batch-inference-jobs", "--starting-token", first["NextToken"])
    )
    assert [j["jobName"] for j in rest["batchInferenceJobs"]] == ["from-file-0"]
    assert "NextToken" not in rest
    one = _ok(run_cli("--home", str(home), "list-batch-inference-jobs", "--max-results", "1"))
    assert len(one["batchInferenceJobs"]) == 1 and "nextToken" in one

    skeleton = _ok(run_cli("create-batch-inference-job", "--generate-cli-skeleton"))
    assert set(request) <= set(skeleton)
    assert set(_ok(run_cli("create-batch-inference-job", "--generate-cli-skeleton", "input"))) == set(
        skeleton
    )


def test_profile_sets_the_local_homes_region_as_aws_profile_does(tmp_path: Path, model_path: str) -> None:
    config = tmp_path / "aws-config"
    config.write_text("[profile eu]\nregion = eu-west-1\n")
    env = clean_env(AWS_CONFIG_FILE=str(config))
    command = ("import-solution-version", "--solution-name", "p", "--recipe-arn", USER_RECIPE)
    for how, extra_env in ((("--profile", "eu"), {}), ((), {"AWS_PROFILE": "eu"})):
        home = tmp_path / f"home{len(how)}"
        out = _ok(
            run_cli("--home", str(home), *how, *command, "--model-path", model_path, env={**env, **extra_env})
        )
        assert out["solutionVersionArn"].startswith("arn:aws:personalize:eu-west-1:")
    _one_line_error(
        run_cli("--home", str(tmp_path / "h"), "--profile", "nowhere", "list-solution-versions", env=env),
        1,
        "nowhere",
    )


def test_a_failed_job_with_wait_exits_1_with_the_reason(home: Path, imported: str, tmp_path: Path) -> None:
    result = run_cli(
        "--home",
        str(home),
        "create-batch-inference-job",
        "--job-name",
        "doomed",
        "--solution-version-arn",
        imported,
        "--job-input",
        f"s3DataSource={{path={tmp_path / 'no-such-input.jsonl'}}}",
        "--job-output",
        f"s3DataDestination={{path={tmp_path / 'out'}/}}",
        "--role-arn",
        ROLE_ARN,
        "--wait",
    )
    _one_line_error(result, 1, "CREATE FAILED")
    assert "no-such-input.jsonl" in result.stderr
    assert json.loads(result.stdout)["batchInferenceJob"]["failureReason"]


def test_errors_are_one_line_with_exit_codes(home: Path, imported: str) -> None:
    missing_arn = imported.replace(":solution/", ":batch-inference-job/").rsplit("/", 1)[0]
    _one_line_error(
        run_cli(
            "--home", str(home), "describe-batch-inference-job", "--batch-inference-job-arn", missing_arn
        ),
        1,
        "(ResourceNotFoundException) when calling DescribeBatchInferenceJob",
    )
    debug = run_cli(
        "--home",
        str(home),
        "--debug",
        "describe-batch-inference-job",
        "--batch-inference-job-arn",
        missing_arn,
    )
    assert debug.returncode == 1 and "Traceback" in debug.stderr

    usage = [
        (("create-batch-inference-job", "--solution-version-arn", imported), "required: --job-name"),
        (("create-batch-inference-job", "--job-input", "s3DataSource={path=x"), "expected ',' or '}'"),
        (
            ("create-batch-inference-job", "--job-input", "s3DataSource={pth=x}"),
            "valid keys are: path, kmsKeyArn",
        ),
        (("create-batch-inference-job", "--num-results", "ten"), "--num-results: expected a number"),
        (("list-batch-inference-jobs", "--page-size", "0"), "--page-size must be between 1 and 100"),
        (("describe-batch-inference-job",), "required: --batch-inference-job-arn"),
        (("serve", "--port", "99999"), "--port must be between 0 and 65535"),
        (("no-such-command",), "invalid choice"),
    ]
    for args, fragment in usage:
        result = run_cli("--home", str(home), *args)
        assert result.returncode == 2, (args, result.stderr)
        assert fragment in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
        # A command's usage errors show that command's usage.
        if args[0] != "no-such-command":
            assert result.stderr.startswith(f"usage: recbatch {args[0]} "), result.stderr
    # A file:// value that cannot be read is an I/O error (1), naming the option.
    for args in (
        ("create-batch-inference-job", "--cli-input-json", "file:///nonexistent.json"),
        ("create-batch-inference-job", "--job-input", "file:///nonexistent.json"),
    ):
        _one_line_error(run_cli("--home", str(home), *args), 1, f"{args[1]}: cannot read /nonexistent.json")
    _one_line_error(
        run_cli(
            "--home",
            str(home),
            "create-batch-inference-job",
            "--job-name",
            "bad name!",
            "--solution-version-arn",
            imported,
            "--job-input",
            "s3DataSource={path=/in}",
            "--job-output",
            "s3DataDestination={path=/out/}",
            "--role-arn",
            ROLE_ARN,
        ),
        1,
        "(InvalidInputException)",
    )


def test_endpoint_url_drives_a_server(tmp_path: Path, model_path: str, input_path: str) -> None:
    server = ServerProcess(tmp_path / "server-home")
    env = clean_env(AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_DEFAULT_REGION=REGION)
    try:
        remote = ("--endpoint-url", server.url)
        version = _ok(
            run_cli(
                *remote,
                "import-solution-version",
                "--solution-name",
                "remote",
                "--recipe-arn",
                USER_RECIPE,
                "--model-path",
                model_path,
                env=env,
            )
        )
        arn = version["solutionVersionArn"]
        created = run_cli(
            *remote,
            "create-batch-inference-job",
            "--job-name",
            "remote-job",
            "--solution-version-arn",
            arn,
            "--job-input",
            f"s3DataSource={{path={input_path}}}",
            "--job-output",
            f"s3DataDestination={{path={tmp_path / 'out'}/}}",
            "--role-arn",
            ROLE_ARN,
            "--wait",
            env=env,
        )
        job = _ok(created)["batchInferenceJob"]
        assert job["status"] == "ACTIVE" and job["recordsWritten"] == 10
        listed = _ok(run_cli(*remote, "list-batch-inference-jobs", env=env))
        assert [j["jobName"] for j in listed["batchInferenceJobs"]] == ["remote-job"]
        assert "remote-job" in server.output or "CreateBatchInferenceJob 200" in server.output
        assert not (tmp_path / "home").exists()  # nothing local was touched

        bad = clean_env(AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY="wrong", AWS_DEFAULT_REGION=REGION)
        _one_line_error(
            run_cli(*remote, "list-batch-inference-jobs", env=bad), 1, "(InvalidSignatureException)"
        )
    finally:
        assert server.terminate() == 0


def test_demo_in_a_fresh_directory(tmp_path: Path) -> None:
    result = run_cli(
        "demo", "--dir", "demo", env=clean_env(RECBATCH_HOME=str(tmp_path / "home")), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    output = tmp_path / "demo" / "output" / "users.jsonl.out"
    assert f"output: {output}" in result.stdout
    lines = output.read_text().splitlines()
    assert len(lines) == 200
    assert lines[0] in result.stdout  # the first lines are shown
    last = json.loads(lines[-1])
    assert last["input"] == {"userId": "new-user-without-history"} and last["error"] is None
    assert len(last["output"]["recommendedItems"]) == 10  # a cold user gets popular items
    jobs = _ok(run_cli("list-batch-inference-jobs", env=clean_env(RECBATCH_HOME=str(tmp_path / "home"))))
    assert jobs["batchInferenceJobs"][0]["status"] == "ACTIVE"


def test_progress_bar_on_a_terminal(home: Path, imported: str, input_path: str, tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    # A terminal of 120 columns (a new pty has none, and a bar of width 0 draws nothing).
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "recbatch",
                "--home",
                str(home),
                "create-batch-inference-job",
                "--job-name",
                "on-a-tty",
                "--solution-version-arn",
                imported,
                "--job-input",
                f"s3DataSource={{path={input_path}}}",
                "--job-output",
                f"s3DataDestination={{path={tmp_path / 'out'}/}}",
                "--role-arn",
                ROLE_ARN,
                "--wait",
            ],
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
        )
        os.close(follower)
        stdout, _ = process.communicate(timeout=300)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(leader)
    assert process.returncode == 0
    assert json.loads(stdout)["batchInferenceJob"]["status"] == "ACTIVE"
    text = drawn.decode(errors="replace")
    assert "records" in text and "active" in text  # the bar: status, records done, rate
