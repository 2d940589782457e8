"""The real boto3 client and the real AWS CLI against a ``recbatch serve`` subprocess: shapes, lists, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from recbatch.jobs.store import Store
from recbatch.server.protocol import DATA_PATH
from tests.server.helpers import (
    KEY_ID,
    REGION,
    ROLE_ARN,
    SECRET,
    USER_RECIPE,
    ServerProcess,
    clean_env,
    create_request,
    wait_for,
    wait_job,
)


def _model_members(shape_name: str) -> set[str]:
    model = botocore.session.get_session().get_service_model("personalize")
    return set(model.shape_for(shape_name).members)


def test_create_describe_list_with_boto3(
    server: ServerProcess, version_arn: str, input_path: str, workdir: Path
) -> None:
    client = server.client()
    output = str(workdir / "out-api") + "/"
    arn = client.create_batch_inference_job(
        **create_request("api-job", version_arn, input_path, output, numResults=7)
    )["batchInferenceJobArn"]
    assert arn == f"arn:aws:personalize:{REGION}:000000000000:batch-inference-job/api-job"

    described = client.describe_batch_inference_job(batchInferenceJobArn=arn)
    assert described["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert described["ResponseMetadata"]["RequestId"]  # from x-amzn-RequestId
    job = described["batchInferenceJob"]
    assert job["jobName"] == "api-job"
    assert job["numResults"] == 7
    assert job["jobInput"] == {"s3DataSource": {"path": input_path}}
    assert job["jobOutput"] == {"s3DataDestination": {"path": output}}
    assert job["roleArn"] == ROLE_ARN
    assert job["status"] in ("CREATE PENDING", "CREATE IN_PROGRESS", "ACTIVE")
    assert isinstance(job["creationDateTime"], datetime) and job["creationDateTime"].tzinfo is not None
    # botocore keeps only modelled members: the progress extras are dropped, every member is a modelled one
    assert set(job) <= _model_members("BatchInferenceJob")

    job = wait_job(client, arn)
    assert job["status"] == "ACTIVE", job.get("failureReason")
    assert job["lastUpdatedDateTime"] >= job["creationDateTime"]
    lines = (workdir / "out-api" / "users.jsonl.out").read_text().splitlines()
    assert len(lines) == 10

    listed = client.list_batch_inference_jobs(solutionVersionArn=version_arn)["batchInferenceJobs"]
    summary = next(s for s in listed if s["batchInferenceJobArn"] == arn)
    assert summary["status"] == "ACTIVE"
    assert summary["jobName"] == "api-job"
    assert set(summary) <= _model_members("BatchInferenceJobSummary")


def test_progress_members_with_recbatch_model_extras(
    server: ServerProcess, version_arn: str, input_path: str, workdir: Path
) -> None:
    client = server.recbatch_client()
    arn = client.create_batch_inference_job(
        **create_request("progress-job", version_arn, input_path, str(workdir / "out-progress") + "/")
    )["batchInferenceJobArn"]
    job = wait_job(client, arn)
    assert job["status"] == "ACTIVE"
    assert (job["recordsRead"], job["recordsWritten"], job["recordsFailed"]) == (10, 10, 0)


def test_list_pagination_through_the_boto3_paginator(
    server: ServerProcess, model_path: str, input_path: str, workdir: Path
) -> None:
    # A solution version of its own, so the listing holds exactly the jobs made here.
    version = server.recbatch_client().import_solution_version(
        solutionName="paging", recipeArn=USER_RECIPE, modelPath=model_path
    )["solutionVersionArn"]
    client = server.client()
    names = [f"page-job-{i}" for i in range(7)]
    for name in names:
        client.create_batch_inference_job(
            **create_request(name, version, input_path, str(workdir / name) + "/")
        )

    paginator = client.get_paginator("list_batch_inference_jobs")
    pages = list(paginator.paginate(solutionVersionArn=version, PaginationConfig={"PageSize": 3}))
    assert [len(p["batchInferenceJobs"]) for p in pages] == [3, 3, 1]
    assert "nextToken" in pages[0] and "nextToken" not in pages[-1]
    listed = [s["jobName"] for p in pages for s in p["batchInferenceJobs"]]
    assert listed == names[::-1]  # newest first

    first = paginator.paginate(solutionVersionArn=version, PaginationConfig={"MaxItems": 4, "PageSize": 2})
    head = first.build_full_result()
    assert [s["jobName"] for s in head["batchInferenceJobs"]] == names[::-1][:4]
    rest = paginator.paginate(
        solutionVersionArn=version, PaginationConfig={"StartingToken": head["NextToken"]}
    ).build_full_result()
    assert [s["jobName"] for s in rest["batchInferenceJobs"]] == names[::-1][4:]

    versions = client.get_paginator("list_solution_versions").paginate().build_full_result()
    assert version in [v["solutionVersionArn"] for v in versions["solutionVersions"]]
    described = client.describe_solution_version(solutionVersionArn=version)["solutionVersion"]
    assert (described["status"], described["recipeArn"]) == ("ACTIVE", USER_RECIPE)
    assert set(described) <= _model_members("SolutionVersion")


def _raises(client: Any, error: str, call: str, **kwargs: Any) -> str:
    exception = getattr(client.exceptions, error)
    with pytest.raises(exception) as caught:
        getattr(client, call)(**kwargs)
    assert caught.value.response["Error"]["Code"] == error
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(caught.value.response["Error"]["Message"])


def test_every_modelled_error_is_raised_by_boto3_as_its_class(
    server: ServerProcess, version_arn: str, model_path: str, input_path: str, workdir: Path
) -> None:
    client = server.client()
    out = str(workdir / "out-errors") + "/"
    message = _raises(
        client,
        "InvalidInputException",
        "create_batch_inference_job",
        **create_request("bad name!", version_arn, input_path, out),
    )
    assert "jobName" in message
    message = _raises(
        client,
        "InvalidInputException",
        "create_batch_inference_job",
        **create_request("theme", version_arn, input_path, out, batchInferenceJobMode="THEME_GENERATION"),
    )
    assert "THEME_GENERATION" in message

    client.create_batch_inference_job(**create_request("taken", version_arn, input_path, out))
    _raises(
        client,
        "ResourceAlreadyExistsException",
        "create_batch_inference_job",
        **create_request("taken", version_arn, input_path, out),
    )
    unknown_version = version_arn.rsplit("/", 1)[0] + "/doesnotexist"
    _raises(
        client,
        "ResourceNotFoundException",
        "create_batch_inference_job",
        **create_request("orphan", unknown_version, input_path, out),
    )
    _raises(
        client,
        "ResourceNotFoundException",
        "describe_batch_segment_job",
        batchSegmentJobArn=f"arn:aws:personalize:{REGION}:000000000000:batch-segment-job/none",
    )

    # A solution version that is not ACTIVE: set so in the home's store, as a failed import would leave it.
    pending = server.recbatch_client().import_solution_version(
        solutionName="not-active", recipeArn=USER_RECIPE, modelPath=model_path
    )["solutionVersionArn"]
    with Store(workdir / "home") as store:
        assert store.set_solution_version_status(pending, "CREATE FAILED", "test")
    _raises(
        client,
        "ResourceInUseException",
        "create_batch_inference_job",
        **create_request("on-failed-version", pending, input_path, out),
    )

    tags = [{"tagKey": f"k{i}", "tagValue": "v"} for i in range(51)]  # over the quota of 50 per resource
    _raises(
        client,
        "TooManyTagsException",
        "create_batch_inference_job",
        **create_request("tagged", version_arn, input_path, out, tags=tags),
    )
    _raises(
        client, "InvalidNextTokenException", "list_batch_inference_jobs", nextToken="not-a-token-we-issued"
    )


def test_limit_exceeded_with_a_queue_limit(workdir: Path, model_path: str, input_path: str) -> None:
    # No worker in this server: jobs stay queued, so the second create crosses --max-queued-jobs 1.
    server = ServerProcess(workdir / "home-limit", "--workers", "0", "--max-queued-jobs", "1")
    try:
        version = server.recbatch_client().import_solution_version(
            solutionName="limit", recipeArn=USER_RECIPE, modelPath=model_path
        )["solutionVersionArn"]
        # botocore retries LimitExceededException as throttling: one attempt keeps the test short.
        client = server.client(retries={"total_max_attempts": 1})
        out = str(workdir / "out-limit") + "/"
        client.create_batch_inference_job(**create_request("queued", version, input_path, out))
        _raises(
            client,
            "LimitExceededException",
            "create_batch_inference_job",
            **create_request("one-too-many", version, input_path, out),
        )
        assert "0 job worker(s)" in server.output
    finally:
        assert server.terminate() == 0


def test_aws_endpoint_url_personalize_environment(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_PERSONALIZE", server.url)
    client = boto3.client(
        "personalize", region_name=REGION, aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET
    )
    assert client.meta.endpoint_url == server.url
    assert client.list_batch_inference_jobs(maxResults=1)["ResponseMetadata"]["HTTPStatusCode"] == 200


def _aws(*args: str, data_path: bool = False) -> subprocess.CompletedProcess[str]:
    env = clean_env(
        AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_DEFAULT_REGION=REGION, AWS_PAGER=""
    )
    if data_path:
        env["AWS_DATA_PATH"] = str(DATA_PATH)
    aws = str(Path(sys.executable).parent / "aws")
    return subprocess.run(
        [aws, "personalize", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_aws_cli_unchanged(
    server: ServerProcess, version_arn: str, input_path: str, workdir: Path
) -> None:
    output = str(workdir / "out-cli") + "/"
    created = _aws(
        "create-batch-inference-job",
        "--endpoint-url",
        server.url,
        "--job-name",
        "from-aws-cli",
        "--solution-version-arn",
        version_arn,
        "--num-results",
        "3",
        "--job-input",
        f"s3DataSource={{path={input_path}}}",
        "--job-output",
        json.dumps({"s3DataDestination": {"path": output}}),
        "--role-arn",
        ROLE_ARN,
    )
    assert created.returncode == 0, created.stderr
    arn = json.loads(created.stdout)["batchInferenceJobArn"]
    assert arn.endswith("batch-inference-job/from-aws-cli")

    described = _aws(
        "describe-batch-inference-job", "--endpoint-url", server.url, "--batch-inference-job-arn", arn
    )
    assert described.returncode == 0, described.stderr
    assert json.loads(described.stdout)["batchInferenceJob"]["numResults"] == 3

    listed = _aws(
        "list-batch-inference-jobs", "--endpoint-url", server.url, "--solution-version-arn", version_arn
    )
    assert listed.returncode == 0, listed.stderr
    assert "from-aws-cli" in [j["jobName"] for j in json.loads(listed.stdout)["batchInferenceJobs"]]

    missing = _aws(
        "describe-batch-inference-job",
        "--endpoint-url",
        server.url,
        "--batch-inference-job-arn",
        arn.replace("from-aws-cli", "nope"),
    )
    assert missing.returncode != 0
    assert "(ResourceNotFoundException)" in missing.stderr

    wrong = subprocess.run(
        [
            str(Path(sys.executable).parent / "aws"),
            "personalize",
            "list-batch-inference-jobs",
            "--endpoint-url",
            server.url,
        ],
        env=clean_env(AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY="wrong", AWS_DEFAULT_REGION=REGION),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert wrong.returncode != 0
    assert "(InvalidSignatureException)" in wrong.stderr


def test_the_aws_cli_imports_with_recbatch_data_path(server: ServerProcess, model_path: str) -> None:
    imported = _aws(
        "import-solution-version",
        "--endpoint-url",
        server.url,
        "--solution-name",
        "via-aws-cli",
        "--recipe-arn",
        USER_RECIPE,
        "--model-path",
        model_path,
        data_path=True,
    )
    assert imported.returncode == 0, imported.stderr
    arn = json.loads(imported.stdout)["solutionVersionArn"]
    assert ":solution/via-aws-cli/" in arn
    described = _aws("describe-solution-version", "--endpoint-url", server.url, "--solution-version-arn", arn)
    assert json.loads(described.stdout)["solutionVersion"]["status"] == "ACTIVE"


def test_batch_segment_jobs_through_boto3(server: ServerProcess, model_path: str, workdir: Path) -> None:
    version = server.recbatch_client().import_solution_version(
        solutionName="segments",
        recipeArn="arn:aws:personalize:::recipe/aws-item-affinity",
        modelPath=model_path,
    )["solutionVersionArn"]
    items = workdir / "segments" / "items.jsonl"
    items.parent.mkdir(parents=True, exist_ok=True)
    items.write_text("".join(json.dumps({"itemId": f"i{i}"}) + "\n" for i in range(5)))
    client = server.client()
    output = str(workdir / "out-segments") + "/"
    arn = client.create_batch_segment_job(
        jobName="segment-job",
        solutionVersionArn=version,
        numResults=3,
        jobInput={"s3DataSource": {"path": str(items)}},
        jobOutput={"s3DataDestination": {"path": output}},
        roleArn=ROLE_ARN,
    )["batchSegmentJobArn"]
    assert arn.endswith(":batch-segment-job/segment-job")

    def ended() -> dict[str, Any] | None:
        job: dict[str, Any] = client.describe_batch_segment_job(batchSegmentJobArn=arn)["batchSegmentJob"]
        return job if job["status"] in ("ACTIVE", "CREATE FAILED") else None

    job = wait_for(ended, "the segment job to end")
    assert job["status"] == "ACTIVE", job.get("failureReason")
    assert set(job) <= _model_members("BatchSegmentJob")
    lines = [
        json.loads(line) for line in (workdir / "out-segments" / "items.jsonl.out").read_text().splitlines()
    ]
    assert [line["input"]["itemId"] for line in lines] == [f"i{i}" for i in range(5)]
    assert all(len(line["output"]["usersList"]) == 3 for line in lines)
    listed = client.list_batch_segment_jobs(solutionVersionArn=version)["batchSegmentJobs"]
    assert [j["batchSegmentJobArn"] for j in listed] == [arn]
