"""The boto3-shaped client: shapes, errors, validation before storing, listing, paginators, end to end."""

from __future__ import annotations

import json
import multiprocessing
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.parsers
import botocore.session
import numpy as np
import pytest
from botocore.exceptions import ClientError, OperationNotPageableError, ParamValidationError

from recbatch.jobs import errors
from recbatch.jobs.client import Client, client
from recbatch.jobs.config import DEFAULT_ACCOUNT, DEFAULT_REGION, JobsConfig
from recbatch.jobs.store import STATUS_PENDING
from tests.jobs.control_helpers import FakeRunner, create_request, import_model
from tests.jobs.helpers import RECIPE, model_arrays, read_output, write_lines, write_model

REGION, ACCOUNT = "us-east-1", "000000000000"
EXTRAS = {"recordsRead", "recordsWritten", "recordsFailed", "modelPath", "ResponseMetadata"}
ERROR_CODES = [
    "InvalidInputException",
    "ResourceAlreadyExistsException",
    "ResourceNotFoundException",
    "ResourceInUseException",
    "LimitExceededException",
    "TooManyTagsException",
    "InvalidNextTokenException",
]


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Client]:
    with client(tmp_path / "home", region=REGION, account=ACCOUNT, start_worker=False) as cl:
        yield cl


@pytest.fixture
def sv(c: Client) -> str:
    """A solution version without a model file (no job runs in these tests)."""
    return c.store.insert_solution_version(
        region=REGION, account=ACCOUNT, solution_name="sol", recipe_arn=RECIPE["user"], model_path="/m.npz"
    ).arn


def through_botocore(operation: str, response: dict[str, Any]) -> dict[str, Any]:
    """What boto3 would return if ``response`` came over the wire (AWS JSON 1.1, epoch-second timestamps)."""
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    raw = json.dumps(body, default=lambda d: round(d.timestamp(), 3)).encode()
    shape = (
        botocore.session.get_session()
        .get_service_model("personalize")
        .operation_model(operation)
        .output_shape
    )
    assert shape is not None
    parsed: dict[str, Any] = botocore.parsers.create_parser("json").parse(
        {"body": raw, "headers": {}, "status_code": 200}, shape
    )
    parsed.pop("ResponseMetadata")
    return parsed


def same(ours: Any, theirs: Any, path: str = "") -> None:
    """``theirs`` (botocore's view) equals ``ours`` without our documented extra members."""
    if isinstance(ours, dict):
        assert isinstance(theirs, dict), path
        assert set(ours) - set(theirs) <= EXTRAS, (
            f"{path}: members botocore does not know: {set(ours) - set(theirs)}"
        )
        assert set(theirs) <= set(ours), path
        for key in theirs:
            same(ours[key], theirs[key], f"{path}.{key}")
    elif isinstance(ours, list):
        assert len(ours) == len(theirs), path
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            same(a, b, f"{path}[{i}]")
    elif isinstance(ours, datetime):
        assert ours.tzinfo is not None, path
        assert abs(ours - theirs) < timedelta(milliseconds=1), path
    else:
        assert ours == theirs, path


def check_metadata(response: dict[str, Any], status: int = 200) -> None:
    meta = response["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == status
    assert meta["RetryAttempts"] == 0
    assert meta["HTTPHeaders"]["x-amzn-requestid"] == meta["RequestId"]


# ------------------------------------------------------------------------------------ responses


def test_create_and_describe_have_personalize_shapes(c: Client, sv: str) -> None:
    created = c.create_batch_inference_job(**create_request(solutionVersionArn=sv, numResults=12))
    check_metadata(created)
    arn = created["batchInferenceJobArn"]
    assert arn == f"arn:aws:personalize:{REGION}:{ACCOUNT}:batch-inference-job/job-1"
    same(created, through_botocore("CreateBatchInferenceJob", created))

    described = c.describe_batch_inference_job(batchInferenceJobArn=arn)
    check_metadata(described)
    job = described["batchInferenceJob"]
    same(described, through_botocore("DescribeBatchInferenceJob", described))
    assert job["status"] == STATUS_PENDING
    assert job["numResults"] == 12
    assert job["jobName"] == "job-1"
    assert job["roleArn"] == create_request()["roleArn"]
    assert job["jobInput"] == create_request()["jobInput"]
    assert job["batchInferenceJobMode"] == "BATCH_INFERENCE"
    assert (job["recordsRead"], job["recordsWritten"], job["recordsFailed"]) == (0, 0, 0)
    assert "failureReason" not in job
    assert "tags" not in job
    assert job["creationDateTime"].tzinfo is not None
    assert job["creationDateTime"] == job["lastUpdatedDateTime"]
    assert job["creationDateTime"].microsecond % 1000 == 0  # millisecond precision


def test_numresults_defaults_to_25_and_config_is_echoed(c: Client, sv: str) -> None:
    config = {"itemExplorationConfig": {"explorationWeight": "0.5", "explorationItemAgeCutOff": "7"}}
    arn = c.create_batch_inference_job(
        **create_request(solutionVersionArn=sv, batchInferenceJobConfig=config)
    )["batchInferenceJobArn"]
    job = c.describe_batch_inference_job(batchInferenceJobArn=arn)["batchInferenceJob"]
    assert job["numResults"] == 25
    assert job["batchInferenceJobConfig"] == config


def test_segment_jobs(c: Client) -> None:
    seg_sv = c.store.insert_solution_version(
        region=REGION,
        account=ACCOUNT,
        solution_name="seg",
        recipe_arn=RECIPE["affinity"],
        model_path="/m.npz",
    ).arn
    created = c.create_batch_segment_job(**create_request(solutionVersionArn=seg_sv, numResults=1000))
    arn = created["batchSegmentJobArn"]
    assert arn == f"arn:aws:personalize:{REGION}:{ACCOUNT}:batch-segment-job/job-1"
    described = c.describe_batch_segment_job(batchSegmentJobArn=arn)
    same(described, through_botocore("DescribeBatchSegmentJob", described))
    assert described["batchSegmentJob"]["numResults"] == 1000
    assert "batchInferenceJobMode" not in described["batchSegmentJob"]
    listed = c.list_batch_segment_jobs()
    same(listed, through_botocore("ListBatchSegmentJobs", listed))
    assert [j["batchSegmentJobArn"] for j in listed["batchSegmentJobs"]] == [arn]
    assert c.list_batch_inference_jobs()["batchInferenceJobs"] == []


def test_recipe_and_job_kind_must_match(c: Client, sv: str) -> None:
    seg_sv = c.store.insert_solution_version(
        region=REGION,
        account=ACCOUNT,
        solution_name="seg",
        recipe_arn=RECIPE["affinity"],
        model_path="/m.npz",
    ).arn
    with pytest.raises(c.exceptions.InvalidInputException, match="cannot use a USER_SEGMENTATION recipe"):
        c.create_batch_inference_job(**create_request(solutionVersionArn=seg_sv))
    with pytest.raises(c.exceptions.InvalidInputException, match="needs a USER_SEGMENTATION recipe"):
        c.create_batch_segment_job(**create_request(solutionVersionArn=sv))
    assert c.store.count_jobs() == 0


# --------------------------------------------------------------------------------------- errors


def test_error_classes_are_botocore_client_errors(c: Client) -> None:
    for code in ERROR_CODES:
        cls: Any = getattr(c.exceptions, code)
        assert issubclass(cls, ClientError)
        assert c.exceptions.from_code(code) is cls
        error: Any = errors.ERROR_CLASSES[code]("something is wrong", "ListBatchInferenceJobs")
        assert error.response["Error"] == {"Message": "something is wrong", "Code": code}
        assert error.response["message"] == "something is wrong"
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert (
            str(error)
            == f"An error occurred ({code}) when calling the ListBatchInferenceJobs operation: something is wrong"
        )
    assert c.exceptions.from_code("Throttling") is ClientError
    assert c.exceptions.ClientError is ClientError


def test_errors_match_what_boto3_raises() -> None:
    """Our error's response has the same structure as the one boto3 builds from a 400 reply."""
    real = boto3.client(
        "personalize", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b"
    ).exceptions.InvalidInputException
    ours = errors.InvalidInputException("bad", "CreateBatchInferenceJob")
    assert ours.response.keys() == {"Error", "ResponseMetadata", "message"}
    assert set(ours.response["ResponseMetadata"]) == {
        "RequestId",
        "HTTPStatusCode",
        "HTTPHeaders",
        "RetryAttempts",
    }
    assert real.__name__ == type(ours).__name__
    assert real.__mro__[1] is ClientError is type(ours).__mro__[2]


def test_invalid_input_names_the_operation_and_stores_nothing(c: Client, sv: str) -> None:
    with pytest.raises(c.exceptions.InvalidInputException) as info:
        c.create_batch_inference_job(**create_request(solutionVersionArn=sv, jobName="bad name"))
    error: Any = info.value
    assert error.operation_name == "CreateBatchInferenceJob"
    assert error.response["Error"]["Code"] == "InvalidInputException"
    assert error.response["Error"]["Message"].startswith(
        "1 validation error detected: Value 'bad name' at 'jobName'"
    )
    check_metadata(error.response, 400)
    assert c.store.count_jobs() == 0


def test_client_side_parameter_validation_is_botocores(c: Client, sv: str) -> None:
    with pytest.raises(ParamValidationError, match='Missing required parameter in input: "roleArn"'):
        c.create_batch_inference_job(**create_request(solutionVersionArn=sv, roleArn=None))
    with pytest.raises(ParamValidationError, match='Unknown parameter in input: "jobname"'):
        c.create_batch_inference_job(**create_request(solutionVersionArn=sv, jobname="x"))
    with pytest.raises(ParamValidationError, match="valid min value: 1"):
        c.list_batch_inference_jobs(maxResults=0)
    with pytest.raises(TypeError, match="only accepts keyword arguments"):
        c.list_batch_inference_jobs("x")
    # Maximums and patterns are the service's to check, as with boto3.
    with pytest.raises(c.exceptions.InvalidInputException, match="less than or equal to 100"):
        c.list_batch_inference_jobs(maxResults=101)
    assert c.store.count_jobs() == 0


def test_without_client_side_validation_the_service_reports_it(tmp_path: Path) -> None:
    with client(tmp_path, start_worker=False, parameter_validation=False) as cl:
        with pytest.raises(cl.exceptions.InvalidInputException) as info:
            cl.create_batch_inference_job(**create_request(roleArn=None))
        assert (
            "Value null at 'roleArn' failed to satisfy constraint: Member must not be null"
            in info.value.message
        )


def test_resources_that_do_not_exist(c: Client, sv: str) -> None:
    missing_sv = sv[:-1] + ("0" if sv[-1] != "0" else "1")
    with pytest.raises(c.exceptions.ResourceNotFoundException, match="Could not find solution version"):
        c.create_batch_inference_job(**create_request(solutionVersionArn=missing_sv))
    with pytest.raises(c.exceptions.ResourceNotFoundException, match="recbatch does not support filters"):
        c.create_batch_inference_job(
            **create_request(
                solutionVersionArn=sv, filterArn=f"arn:aws:personalize:{REGION}:{ACCOUNT}:filter/f"
            )
        )
    arn = f"arn:aws:personalize:{REGION}:{ACCOUNT}:batch-inference-job/nope"
    with pytest.raises(c.exceptions.ResourceNotFoundException, match="Could not find batch inference job"):
        c.describe_batch_inference_job(batchInferenceJobArn=arn)
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.describe_solution_version(solutionVersionArn=missing_sv)
    with pytest.raises(c.exceptions.ResourceNotFoundException, match="Could not find solution"):
        c.list_solution_versions(solutionArn=f"arn:aws:personalize:{REGION}:{ACCOUNT}:solution/none")
    assert c.store.count_jobs() == 0


def test_an_inference_arn_is_not_a_segment_job(c: Client, sv: str) -> None:
    arn = c.create_batch_inference_job(**create_request(solutionVersionArn=sv))["batchInferenceJobArn"]
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.describe_batch_segment_job(batchSegmentJobArn=arn)


def test_duplicate_names_are_refused(c: Client, sv: str) -> None:
    c.create_batch_inference_job(**create_request(solutionVersionArn=sv))
    with pytest.raises(c.exceptions.ResourceAlreadyExistsException, match="already exists"):
        c.create_batch_inference_job(**create_request(solutionVersionArn=sv, numResults=3))
    assert c.store.count_jobs() == 1


def test_a_solution_version_that_is_not_active_is_in_use(c: Client, sv: str) -> None:
    c.store.set_solution_version_status(sv, "CREATE IN_PROGRESS")
    with pytest.raises(c.exceptions.ResourceInUseException, match="needs an ACTIVE solution version"):
        c.create_batch_inference_job(**create_request(solutionVersionArn=sv))


def test_limit_on_queued_jobs(tmp_path: Path) -> None:
    with client(tmp_path, start_worker=False, max_queued_jobs=2) as cl:
        sv = cl.store.insert_solution_version(
            region=cl.config.region,
            account=cl.config.account,
            solution_name="s",
            recipe_arn=RECIPE["user"],
            model_path="/m.npz",
        ).arn
        cl.create_batch_inference_job(**create_request(solutionVersionArn=sv, jobName="a"))
        cl.create_batch_inference_job(**create_request(solutionVersionArn=sv, jobName="b"))
        with pytest.raises(cl.exceptions.LimitExceededException, match="the limit is 2"):
            cl.create_batch_inference_job(**create_request(solutionVersionArn=sv, jobName="c"))


def test_too_many_tags(c: Client, sv: str) -> None:
    tags = [{"tagKey": f"k{i}", "tagValue": "v"} for i in range(51)]
    with pytest.raises(c.exceptions.TooManyTagsException):
        c.create_batch_inference_job(**create_request(solutionVersionArn=sv, tags=tags))
    assert c.store.count_jobs() == 0


# -------------------------------------------------------------------------------------- listing


def make_jobs(c: Client, sv: str, n: int, prefix: str = "j") -> list[str]:
    return [
        c.create_batch_inference_job(**create_request(solutionVersionArn=sv, jobName=f"{prefix}{i}"))[
            "batchInferenceJobArn"
        ]
        for i in range(n)
    ]


def test_list_pages_newest_first_without_a_token_on_the_last_page(c: Client, sv: str) -> None:
    arns = make_jobs(c, sv, 7)
    pages: list[list[str]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"maxResults": 3}
        if token:
            kwargs["nextToken"] = token
        page = c.list_batch_inference_jobs(**kwargs)
        same(page, through_botocore("ListBatchInferenceJobs", page))
        pages.append([j["batchInferenceJobArn"] for j in page["batchInferenceJobs"]])
        token = page.get("nextToken")
        if token is None:
            break
    assert pages == [arns[6:3:-1], arns[3:0:-1], arns[0:1]]
    everything = c.list_batch_inference_jobs()
    assert "nextToken" not in everything
    assert [j["batchInferenceJobArn"] for j in everything["batchInferenceJobs"]] == arns[::-1]
    summary = everything["batchInferenceJobs"][0]
    assert set(summary) == {
        "batchInferenceJobArn",
        "jobName",
        "status",
        "creationDateTime",
        "lastUpdatedDateTime",
        "solutionVersionArn",
        "batchInferenceJobMode",
        "recordsRead",
        "recordsWritten",
        "recordsFailed",
    }
    exactly = c.list_batch_inference_jobs(maxResults=7)
    assert len(exactly["batchInferenceJobs"]) == 7
    assert "nextToken" not in exactly


def test_list_filters_by_solution_version(c: Client, sv: str) -> None:
    other = c.store.insert_solution_version(
        region=REGION, account=ACCOUNT, solution_name="other", recipe_arn=RECIPE["user"], model_path="/m.npz"
    ).arn
    mine = make_jobs(c, sv, 3, "a")
    theirs = make_jobs(c, other, 2, "b")
    listed = c.list_batch_inference_jobs(solutionVersionArn=other)["batchInferenceJobs"]
    assert [j["batchInferenceJobArn"] for j in listed] == theirs[::-1]
    first = c.list_batch_inference_jobs(solutionVersionArn=sv, maxResults=2)
    rest = c.list_batch_inference_jobs(solutionVersionArn=sv, maxResults=2, nextToken=first["nextToken"])
    assert [
        j["batchInferenceJobArn"] for j in first["batchInferenceJobs"] + rest["batchInferenceJobs"]
    ] == mine[::-1]
    # A token is bound to its listing.
    with pytest.raises(c.exceptions.InvalidNextTokenException, match="different listing"):
        c.list_batch_inference_jobs(solutionVersionArn=other, nextToken=first["nextToken"])
    with pytest.raises(c.exceptions.InvalidNextTokenException, match="different listing"):
        c.list_batch_segment_jobs(solutionVersionArn=sv, nextToken=first["nextToken"])


@pytest.mark.parametrize(
    "token", ["garbage", "eyJiIjoxfQ", "eyJiIjoxfQ.AAAAAAAAAAAAAAAAAAAAAA", "a.b.c", "=.="]
)
def test_tokens_we_did_not_issue_are_refused(c: Client, sv: str, token: str) -> None:
    make_jobs(c, sv, 1)
    with pytest.raises(c.exceptions.InvalidNextTokenException, match="not a token this service issued"):
        c.list_batch_inference_jobs(nextToken=token)


def test_a_token_from_another_home_is_refused(c: Client, sv: str, tmp_path: Path) -> None:
    make_jobs(c, sv, 3)
    token = c.list_batch_inference_jobs(maxResults=1)["nextToken"]
    other = client(tmp_path / "other", region=REGION, account=ACCOUNT, start_worker=False)
    with other, pytest.raises(other.exceptions.InvalidNextTokenException):
        other.list_batch_inference_jobs(nextToken=token)


def test_paginators_behave_like_boto3s(c: Client, sv: str) -> None:
    arns = make_jobs(c, sv, 5)
    paginator = c.get_paginator("list_batch_inference_jobs")
    pages = list(paginator.paginate(PaginationConfig={"PageSize": 2}))
    assert [len(p["batchInferenceJobs"]) for p in pages] == [2, 2, 1]
    assert all("ResponseMetadata" in p for p in pages)
    first = paginator.paginate(PaginationConfig={"PageSize": 2, "MaxItems": 3}).build_full_result()
    assert [j["batchInferenceJobArn"] for j in first["batchInferenceJobs"]] == arns[:1:-1]
    rest = paginator.paginate(
        PaginationConfig={"PageSize": 2, "StartingToken": first["NextToken"]}
    ).build_full_result()
    assert [j["batchInferenceJobArn"] for j in rest["batchInferenceJobs"]] == arns[1::-1]
    assert "NextToken" not in rest
    names = list(paginator.paginate(solutionVersionArn=sv).search("batchInferenceJobs[].jobName"))
    assert names == [f"j{i}" for i in range(4, -1, -1)]
    assert c.can_paginate("list_solution_versions")
    assert c.get_paginator("list_batch_segment_jobs").paginate().build_full_result() == {
        "batchSegmentJobs": []
    }
    assert not c.can_paginate("describe_batch_inference_job")
    with pytest.raises(OperationNotPageableError):
        c.get_paginator("describe_batch_inference_job")


def test_a_home_is_divided_by_region_and_account(tmp_path: Path) -> None:
    with (
        client(tmp_path, region="us-east-1", start_worker=False) as east,
        client(tmp_path, region="eu-west-1", account="123456789012", start_worker=False) as west,
    ):
        sv = east.store.insert_solution_version(
            region="us-east-1",
            account=DEFAULT_ACCOUNT,
            solution_name="s",
            recipe_arn=RECIPE["user"],
            model_path="/m",
        ).arn
        arn = east.create_batch_inference_job(**create_request(solutionVersionArn=sv))["batchInferenceJobArn"]
        assert west.list_batch_inference_jobs()["batchInferenceJobs"] == []
        with pytest.raises(west.exceptions.ResourceNotFoundException):
            west.describe_batch_inference_job(batchInferenceJobArn=arn)
        with pytest.raises(west.exceptions.ResourceNotFoundException):
            west.create_batch_inference_job(**create_request(solutionVersionArn=sv))
        assert west.list_solution_versions()["solutionVersions"] == []


# ----------------------------------------------------------------------------- solution versions


def test_import_describe_and_list_solution_versions(c: Client, tmp_path: Path) -> None:
    first = import_model(c, tmp_path / "m", "user")
    second = import_model(c, tmp_path / "m", "ranking")
    assert first.startswith(f"arn:aws:personalize:{REGION}:{ACCOUNT}:solution/sol/")
    version = first.rsplit("/", 1)[1]
    assert len(version) == 8
    int(version, 16)
    described = c.describe_solution_version(solutionVersionArn=first)
    check_metadata(described)
    same(described, through_botocore("DescribeSolutionVersion", described))
    info = described["solutionVersion"]
    assert info["status"] == "ACTIVE"
    assert info["recipeArn"] == RECIPE["user"]
    assert info["solutionArn"] == f"arn:aws:personalize:{REGION}:{ACCOUNT}:solution/sol"
    assert info["modelPath"] == str(tmp_path / "m" / "sol-user.npz")
    listed = c.list_solution_versions()
    same(listed, through_botocore("ListSolutionVersions", listed))
    assert [v["solutionVersionArn"] for v in listed["solutionVersions"]] == [second, first]
    assert [
        v["solutionVersionArn"]
        for v in c.list_solution_versions(solutionArn=info["solutionArn"], maxResults=1)["solutionVersions"]
    ] == [second]
    pages = list(c.get_paginator("list_solution_versions").paginate(PaginationConfig={"PageSize": 1}))
    assert len(pages) == 2


def test_import_refuses_bad_artifacts_and_recipes(c: Client, tmp_path: Path) -> None:
    arrays = model_arrays()
    arrays["item_factors"] = arrays["item_factors"][:, :3]  # dims no longer match user_factors
    bad = str(tmp_path / "bad.npz")
    np.savez(bad, **arrays)  # type: ignore[arg-type]  # written directly: save_model would refuse it
    with pytest.raises(c.exceptions.InvalidInputException, match="item_factors"):
        c.import_solution_version(solutionName="s", recipeArn=RECIPE["user"], modelPath=bad)
    with pytest.raises(c.exceptions.InvalidInputException, match="Invalid model artifact"):
        c.import_solution_version(
            solutionName="s", recipeArn=RECIPE["user"], modelPath=str(tmp_path / "none.npz")
        )
    good = write_model(tmp_path, model_arrays(), name="good.npz")
    with pytest.raises(c.exceptions.ResourceNotFoundException, match="Could not find recipe"):
        c.import_solution_version(
            solutionName="s", recipeArn="arn:aws:personalize:::recipe/aws-trending-now", modelPath=good
        )
    with pytest.raises(c.exceptions.InvalidInputException, match="Value null at 'modelPath'"):
        c.import_solution_version(solutionName="s", recipeArn=RECIPE["user"])
    assert c.list_solution_versions()["solutionVersions"] == []


# ------------------------------------------------------------------------------ configuration


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "RECBATCH_HOME", "RECBATCH_ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    return monkeypatch


def test_configuration_defaults_and_precedence(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("HOME", str(tmp_path / "user"))
    config = JobsConfig.resolve()
    assert (config.home, config.region, config.account) == (
        tmp_path / "user" / ".recbatch",
        DEFAULT_REGION,
        DEFAULT_ACCOUNT,
    )
    assert (DEFAULT_REGION, DEFAULT_ACCOUNT) == ("us-east-1", "000000000000")
    config_file = tmp_path / "aws-config"
    config_file.write_text("[default]\nregion = ap-south-1\n")
    clean_env.setenv("AWS_CONFIG_FILE", str(config_file))
    assert JobsConfig.resolve().region == "ap-south-1"
    clean_env.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    assert JobsConfig.resolve().region == "eu-central-1"
    clean_env.setenv("AWS_REGION", "eu-west-3")
    assert JobsConfig.resolve().region == "eu-west-3"
    assert JobsConfig.resolve(region="us-west-2").region == "us-west-2"
    clean_env.setenv("RECBATCH_ACCOUNT_ID", "111122223333")
    clean_env.setenv("RECBATCH_HOME", str(tmp_path / "env-home"))
    config = JobsConfig.resolve()
    assert (config.home, config.account) == (tmp_path / "env-home", "111122223333")
    assert JobsConfig.resolve(tmp_path / "arg", account="444455556666").home == tmp_path / "arg"
    with pytest.raises(ValueError, match="12 digits"):
        JobsConfig.resolve(account="12345")
    with pytest.raises(ValueError, match="invalid region"):
        JobsConfig.resolve(region="Not A Region")
    with pytest.raises(ValueError, match="shorter than stale_after"):
        JobsConfig.resolve(stale_after=1, heartbeat_interval=2)
    # 0 threads would let a worker start and then fail every job at scoring time.
    with pytest.raises(ValueError, match="threads must be >= 1"):
        JobsConfig.resolve(threads=0)
    assert JobsConfig.resolve(threads=3).threads == 3


def test_arns_use_the_configured_region_and_account(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("AWS_REGION", "eu-west-1")
    clean_env.setenv("RECBATCH_ACCOUNT_ID", "123456789012")
    with client(tmp_path, start_worker=False) as cl:
        assert cl.meta.region_name == "eu-west-1"
        sv = import_model(cl, tmp_path / "m")
        assert sv.startswith("arn:aws:personalize:eu-west-1:123456789012:solution/sol/")
        arn = cl.create_batch_inference_job(**create_request(solutionVersionArn=sv))["batchInferenceJobArn"]
        assert arn == "arn:aws:personalize:eu-west-1:123456789012:batch-inference-job/job-1"


# --------------------------------------------------------------------------- two processes, one name


def _create_same_name(home: str, sv: str, barrier: Any, results: Any) -> None:
    with client(home, region=REGION, account=ACCOUNT, start_worker=False) as cl:
        barrier.wait()
        try:
            cl.create_batch_inference_job(**create_request(solutionVersionArn=sv, jobName="contested"))
            results.put("created")
        except cl.exceptions.ResourceAlreadyExistsException:
            results.put("exists")


def test_two_processes_creating_the_same_name_exactly_one_wins(c: Client, sv: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    processes = [
        ctx.Process(target=_create_same_name, args=(str(c.config.home), sv, barrier, results))
        for _ in range(4)
    ]
    for p in processes:
        p.start()
    for p in processes:
        p.join(120)
        assert p.exitcode == 0
    outcomes = sorted(results.get(timeout=10) for _ in processes)
    assert outcomes == ["created", "exists", "exists", "exists"]
    assert c.store.count_jobs() == 1


# ------------------------------------------------------------------------------- end to end


def test_jobs_run_in_the_background_with_the_real_runner(tmp_path: Path) -> None:
    write_lines(
        tmp_path / "in" / "users.jsonl", [{"userId": "u1"}, {"userId": "u2"}, "not json", {"user": 1}]
    )
    write_lines(tmp_path / "items" / "items.jsonl", [{"itemId": "i1"}, {"itemId": "i2"}])
    with client(tmp_path / "home", region=REGION, account=ACCOUNT) as cl:
        sv = import_model(cl, tmp_path / "m", "user")
        arn = cl.create_batch_inference_job(
            **create_request(
                solutionVersionArn=sv,
                numResults=4,
                jobInput={"s3DataSource": {"path": str(tmp_path / "in") + "/"}},
                jobOutput={"s3DataDestination": {"path": str(tmp_path / "out") + "/"}},
            )
        )["batchInferenceJobArn"]
        job = cl.wait_for_job(arn, timeout=120)
        assert job["status"] == "ACTIVE", job.get("failureReason")
        assert (job["recordsRead"], job["recordsWritten"], job["recordsFailed"]) == (4, 4, 2)
        assert job["lastUpdatedDateTime"] > job["creationDateTime"]
        assert job["numResults"] == 4
        lines = read_output(tmp_path / "out" / "users.jsonl.out")
        assert [len(line["output"]["recommendedItems"]) for line in lines[:2]] == [4, 4]
        assert [line["error"] is not None for line in lines] == [False, False, True, True]
        summary = cl.list_batch_inference_jobs()["batchInferenceJobs"][0]
        assert (summary["status"], summary["recordsWritten"]) == ("ACTIVE", 4)

        seg_sv = import_model(cl, tmp_path / "m", "affinity", name="seg")
        seg = cl.create_batch_segment_job(
            **create_request(
                solutionVersionArn=seg_sv,
                numResults=3,
                jobInput={"s3DataSource": {"path": str(tmp_path / "items" / "items.jsonl")}},
                jobOutput={"s3DataDestination": {"path": str(tmp_path / "segments") + "/"}},
            )
        )["batchSegmentJobArn"]
        done = cl.wait_for_job(seg, timeout=120)
        assert done["status"] == "ACTIVE", done.get("failureReason")
        users = [
            line["output"]["usersList"] for line in read_output(tmp_path / "segments" / "items.jsonl.out")
        ]
        assert [len(u) for u in users] == [3, 3]

        failing = cl.create_batch_inference_job(
            **create_request(
                solutionVersionArn=sv,
                jobName="missing-input",
                jobInput={"s3DataSource": {"path": str(tmp_path / "nothing-here.jsonl")}},
                jobOutput={"s3DataDestination": {"path": str(tmp_path / "out2") + "/"}},
            )
        )["batchInferenceJobArn"]
        failed = cl.wait_for_job(failing, timeout=120)
        assert failed["status"] == "CREATE FAILED"
        assert "nothing-here.jsonl" in failed["failureReason"]
        assert not (tmp_path / "out2" / "nothing-here.jsonl.out").exists()


def test_a_job_on_s3_with_kms(s3_env: Any, s3_bucket: str, kms_key_arn: str, tmp_path: Path) -> None:
    s3 = s3_env.client("s3")
    local_model = write_model(tmp_path, model_arrays())
    s3.upload_file(local_model, s3_bucket, "models/model.npz")
    s3.put_object(Bucket=s3_bucket, Key="in/users.jsonl", Body=b'{"userId": "u3"}\n{"userId": "u4"}\n')
    with client(tmp_path / "home") as cl:
        sv = cl.import_solution_version(
            solutionName="s3sol", recipeArn=RECIPE["user"], modelPath=f"s3://{s3_bucket}/models/model.npz"
        )["solutionVersionArn"]
        arn = cl.create_batch_inference_job(
            **create_request(
                solutionVersionArn=sv,
                jobInput={"s3DataSource": {"path": f"s3://{s3_bucket}/in/"}},
                jobOutput={"s3DataDestination": {"path": f"s3://{s3_bucket}/out/", "kmsKeyArn": kms_key_arn}},
            )
        )["batchInferenceJobArn"]
        job = cl.wait_for_job(arn, timeout=120)
        assert job["status"] == "ACTIVE", job.get("failureReason")
    head = s3.head_object(Bucket=s3_bucket, Key="out/users.jsonl.out")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == kms_key_arn
    body = s3.get_object(Bucket=s3_bucket, Key="out/users.jsonl.out")["Body"].read().decode()
    assert [json.loads(line)["input"]["userId"] for line in body.splitlines()] == ["u3", "u4"]


def test_wait_for_job_times_out_when_nothing_runs_it(c: Client, sv: str) -> None:
    arn = c.create_batch_inference_job(**create_request(solutionVersionArn=sv))["batchInferenceJobArn"]
    with pytest.raises(TimeoutError, match="still CREATE PENDING"):
        c.wait_for_job(arn, timeout=0.2)


def test_close_interrupts_the_running_job_and_requeues_it(tmp_path: Path) -> None:
    started = threading.Event()

    def run(job: Any, solution: Any, report: Any, should_stop: Any) -> Any:
        started.set()
        while not should_stop():
            threading.Event().wait(0.01)
        raise FakeRunner.JobInterrupted("stopped")

    cl = client(tmp_path, runner=FakeRunner(run))  # type: ignore[arg-type]
    sv = cl.store.insert_solution_version(
        region=cl.config.region,
        account=cl.config.account,
        solution_name="s",
        recipe_arn=RECIPE["user"],
        model_path="/m",
    ).arn
    arn = cl.create_batch_inference_job(**create_request(solutionVersionArn=sv))["batchInferenceJobArn"]
    assert started.wait(60)
    cl.close()
    with client(tmp_path, start_worker=False) as again:
        job = again.describe_batch_inference_job(batchInferenceJobArn=arn)["batchInferenceJob"]
        assert job["status"] == "CREATE PENDING"
