"""Request validation (SPEC section 1): every rule, the service's message style, and the shapes vs botocore."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from recbatch.jobs.errors import InvalidInputException, TooManyTagsException
from recbatch.jobs.validation import (
    SCHEMAS,
    Field,
    Float,
    Int,
    ListOf,
    MapOf,
    Str,
    Struct,
    path_kind,
    recipe_family,
    validate_request,
)
from tests.jobs.control_helpers import ROLE, create_request

INFERENCE = "CreateBatchInferenceJob"
SEGMENT = "CreateBatchSegmentJob"
KMS = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def invalid(operation: str, params: Any) -> str:
    with pytest.raises(InvalidInputException) as info:
        validate_request(operation, params)
    assert info.value.response["Error"]["Code"] == "InvalidInputException"
    return info.value.message


def input_config(path: str, kms: str | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"path": path}
    if kms is not None:
        config["kmsKeyArn"] = kms
    return {"s3DataSource": config}


def output_config(path: str, kms: str | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"path": path}
    if kms is not None:
        config["kmsKeyArn"] = kms
    return {"s3DataDestination": config}


# ------------------------------------------------------------------------------------ the shapes


def _compare(ours: Field, theirs: Any, where: str) -> None:
    meta = theirs.metadata
    if theirs.type_name == "structure":
        assert isinstance(ours, Struct), where
        assert set(ours.members) == set(theirs.members), where
        assert ours.required == frozenset(theirs.required_members), where
        for name, member in theirs.members.items():
            _compare(ours.members[name], member, f"{where}.{name}")
    elif theirs.type_name == "string":
        assert isinstance(ours, Str), where
        assert (ours.min, ours.max, ours.pattern) == (
            meta.get("min"),
            meta.get("max"),
            meta.get("pattern"),
        ), where
        assert ours.enum == (tuple(theirs.enum) if theirs.enum else None), where
        assert ours.sensitive == bool(meta.get("sensitive")), where
    elif theirs.type_name == "integer":
        assert isinstance(ours, Int), where
        assert (ours.min, ours.max) == (meta.get("min"), meta.get("max")), where
    elif theirs.type_name == "double":
        assert isinstance(ours, Float), where
        assert (ours.min, ours.max) == (meta.get("min"), meta.get("max")), where
    elif theirs.type_name == "list":
        assert isinstance(ours, ListOf), where
        assert (ours.min, ours.max) == (meta.get("min"), meta.get("max")), where
        _compare(ours.member, theirs.member, f"{where}[]")
    elif theirs.type_name == "map":
        assert isinstance(ours, MapOf), where
        assert ours.max == meta.get("max"), where
        _compare(ours.key, theirs.key, f"{where}.key")
        _compare(ours.value, theirs.value, f"{where}.value")
    else:  # pragma: no cover - a shape type the personalize model does not use here
        raise AssertionError(f"{where}: unexpected type {theirs.type_name}")


@pytest.mark.parametrize("operation", sorted(op for op in SCHEMAS if op != "ImportSolutionVersion"))
def test_shapes_match_botocore_model(operation: str) -> None:
    model = botocore.session.get_session().get_service_model("personalize")
    _compare(SCHEMAS[operation], model.operation_model(operation).input_shape, operation)


# ---------------------------------------------------------------------------- valid requests


def test_a_valid_request_is_returned_with_defaults_and_left_untouched() -> None:
    request = create_request()
    stored = validate_request(INFERENCE, request)
    assert stored == {**request, "numResults": 25, "batchInferenceJobMode": "BATCH_INFERENCE"}
    assert "numResults" not in request  # the caller's dictionary is not modified
    stored["jobInput"]["s3DataSource"]["path"] = "changed"
    assert request["jobInput"]["s3DataSource"]["path"] == "s3://bucket/in/"


def test_null_members_count_as_absent() -> None:
    request = {**create_request(), "numResults": None, "filterArn": None, "tags": None}
    request["jobOutput"] = {"s3DataDestination": {"path": "s3://b/out/", "kmsKeyArn": None}}
    stored = validate_request(INFERENCE, request)
    assert stored["numResults"] == 25
    assert "filterArn" not in stored
    assert "tags" not in stored
    assert stored["jobOutput"] == {"s3DataDestination": {"path": "s3://b/out/"}}


def test_every_optional_member_accepted() -> None:
    request = create_request(
        jobName="a" * 63,
        filterArn="arn:aws:personalize:us-east-1:000000000000:filter/f",
        numResults=500,
        jobInput=input_config("s3://bucket/in/x.jsonl.gz", KMS),
        jobOutput=output_config("s3://bucket/out/", KMS),
        batchInferenceJobConfig={
            "itemExplorationConfig": {"explorationWeight": "1", "explorationItemAgeCutOff": "0.5"},
            "rankingInfluence": {"POPULARITY": 0, "FRESHNESS": 1.0},
        },
        tags=[{"tagKey": "team", "tagValue": ""}, {"tagKey": "café 東京 @:/=+-_.", "tagValue": "v 1"}],
        batchInferenceJobMode="BATCH_INFERENCE",
    )
    assert validate_request(INFERENCE, request)["numResults"] == 500


def test_segment_jobs_allow_large_numresults_up_to_the_segment_cap() -> None:
    assert validate_request(SEGMENT, create_request(numResults=5_000_000))["numResults"] == 5_000_000
    assert "less than or equal to 5000000" in invalid(SEGMENT, create_request(numResults=5_000_001))
    assert "batchInferenceJobMode" not in validate_request(SEGMENT, create_request())


def test_http_input_and_local_paths_are_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    stored = validate_request(
        INFERENCE,
        create_request(
            jobInput=input_config("https://example.com/in.jsonl"), jobOutput=output_config("out/")
        ),
    )
    assert stored["jobInput"]["s3DataSource"]["path"] == "https://example.com/in.jsonl"
    # A relative path is made absolute now; the trailing "/" (a folder, SPEC section 3) is kept.
    assert stored["jobOutput"]["s3DataDestination"]["path"] == str(tmp_path / "out") + os.sep
    stored = validate_request(
        INFERENCE,
        create_request(jobInput=input_config("data/../in.jsonl"), jobOutput=output_config("file:///x/out")),
    )
    assert stored["jobInput"]["s3DataSource"]["path"] == str(tmp_path / "in.jsonl")
    assert stored["jobOutput"]["s3DataDestination"]["path"] == "file:///x/out"


# ---------------------------------------------------------------------------- broken rules


NAME_PATTERN = "Member must satisfy regular expression pattern: ^[a-zA-Z0-9][a-zA-Z0-9\\-_]*"
ARN_RULE = "Member must satisfy regular expression pattern: arn:([a-z\\d-]+):personalize:.*:.*:.+"

CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    # jobName
    (
        "name empty",
        create_request(jobName=""),
        [
            "Value '' at 'jobName' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ],
    ),
    (
        "name too long",
        create_request(jobName="a" * 64),
        [
            f"Value '{'a' * 64}' at 'jobName' failed to satisfy constraint: Member must have length less than or equal to 63",
        ],
    ),
    (
        "name leading dash",
        create_request(jobName="-job"),
        [f"Value '-job' at 'jobName' failed to satisfy constraint: {NAME_PATTERN}"],
    ),
    (
        "name with space",
        create_request(jobName="my job"),
        [f"at 'jobName' failed to satisfy constraint: {NAME_PATTERN}"],
    ),
    (
        "name with dot",
        create_request(jobName="job.1"),
        [f"at 'jobName' failed to satisfy constraint: {NAME_PATTERN}"],
    ),
    (
        "name not a string",
        create_request(jobName=5),
        ["Value 5 at 'jobName' failed to satisfy constraint: Member must be a string"],
    ),
    (
        "name missing",
        create_request(jobName=None),
        ["Value null at 'jobName' failed to satisfy constraint: Member must not be null"],
    ),
    # ARNs
    (
        "solution version not an arn",
        create_request(solutionVersionArn="arn:aws:s3:::bucket"),
        [f"at 'solutionVersionArn' failed to satisfy constraint: {ARN_RULE}"],
    ),
    (
        "solution version too long",
        create_request(solutionVersionArn="arn:aws:personalize:us-east-1:000000000000:solution/" + "s" * 220),
        [
            "at 'solutionVersionArn' failed to satisfy constraint: Member must have length less than or equal to 256",
        ],
    ),
    (
        "solution version missing",
        create_request(solutionVersionArn=None),
        ["Value null at 'solutionVersionArn'"],
    ),
    (
        "filter not an arn",
        create_request(filterArn="my-filter"),
        [f"Value 'my-filter' at 'filterArn' failed to satisfy constraint: {ARN_RULE}"],
    ),
    # roleArn
    (
        "role account not 12 digits",
        create_request(roleArn="arn:aws:iam::123:role/x"),
        [
            "at 'roleArn' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:([a-z\\d-]+):iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+"
        ],
    ),
    (
        "role not a role",
        create_request(roleArn="arn:aws:iam::123456789012:user/x"),
        ["at 'roleArn' failed to satisfy constraint"],
    ),
    (
        "role too long",
        create_request(roleArn=ROLE + "x" * 220),
        ["at 'roleArn' failed to satisfy constraint: Member must have length less than or equal to 256"],
    ),
    ("role missing", create_request(roleArn=None), ["Value null at 'roleArn'"]),
    # paths
    (
        "input missing",
        create_request(jobInput=None),
        ["Value null at 'jobInput' failed to satisfy constraint: Member must not be null"],
    ),
    ("input without s3DataSource", create_request(jobInput={}), ["Value null at 'jobInput.s3DataSource'"]),
    (
        "input without path",
        create_request(jobInput={"s3DataSource": {}}),
        ["Value null at 'jobInput.s3DataSource.path'"],
    ),
    (
        "input ftp",
        create_request(jobInput=input_config("ftp://host/x")),
        [
            "Value 'ftp://host/x' at 'jobInput.s3DataSource.path' failed to satisfy constraint: Member must be an s3://, http(s):// or file:// URI, or a local path",
        ],
    ),
    ("input empty", create_request(jobInput=input_config("")), ["Value '' at 'jobInput.s3DataSource.path'"]),
    (
        "input s3 without bucket",
        create_request(jobInput=input_config("s3://")),
        [
            "Value 's3://' at 'jobInput.s3DataSource.path' failed to satisfy constraint: Member must satisfy regular expression pattern: (s3|http|https)://.+",
        ],
    ),
    (
        "input mistyped scheme",
        create_request(jobInput=input_config("s3:bucket/in")),
        ["at 'jobInput.s3DataSource.path' failed to satisfy constraint"],
    ),
    (
        "input too long",
        create_request(jobInput=input_config("s3://b/" + "k" * 250)),
        [
            "at 'jobInput.s3DataSource.path' failed to satisfy constraint: Member must have length less than or equal to 256",
        ],
    ),
    (
        "output http",
        create_request(jobOutput=output_config("https://example.com/out/")),
        [
            "Value 'https://example.com/out/' at 'jobOutput.s3DataDestination.path' failed to satisfy constraint: Member must be an s3:// or file:// URI, or a local path (http and https are for input only)",
        ],
    ),
    (
        "output file uri without path",
        create_request(jobOutput=output_config("file://")),
        ["at 'jobOutput.s3DataDestination.path'"],
    ),
    # KMS
    (
        "kms alias",
        create_request(
            jobOutput=output_config("s3://b/out/", "arn:aws:kms:us-east-1:123456789012:alias/mine")
        ),
        [
            "at 'jobOutput.s3DataDestination.kmsKeyArn' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:aws.*:kms:.*:[0-9]{12}:key/.*",
        ],
    ),
    (
        "kms bare id",
        create_request(jobInput=input_config("s3://b/in", "1234abcd")),
        ["at 'jobInput.s3DataSource.kmsKeyArn'"],
    ),
    (
        "kms too long",
        create_request(jobInput=input_config("s3://b/in", KMS + "x" * 2048)),
        [
            "at 'jobInput.s3DataSource.kmsKeyArn' failed to satisfy constraint: Member must have length less than or equal to 2048",
        ],
    ),
    (
        "kms on local input",
        create_request(jobInput=input_config("/data/in.jsonl", KMS)),
        [
            f"Value '{KMS}' at 'jobInput.s3DataSource.kmsKeyArn' failed to satisfy constraint: Member must be absent: a kmsKeyArn applies to s3:// paths only, and jobInput.s3DataSource.path is a local path",
        ],
    ),
    (
        "kms on file output",
        create_request(jobOutput=output_config("file:///data/out/", KMS)),
        [
            "at 'jobOutput.s3DataDestination.kmsKeyArn' failed to satisfy constraint: Member must be absent",
        ],
    ),
    (
        "kms on http input",
        create_request(jobInput=input_config("https://example.com/in", KMS)),
        ["is an http(s) URI"],
    ),
    # numResults
    (
        "numResults zero",
        create_request(numResults=0),
        [
            "Value 0 at 'numResults' failed to satisfy constraint: Member must have value greater than or equal to 1"
        ],
    ),
    (
        "numResults over the cap",
        create_request(numResults=501),
        [
            "Value 501 at 'numResults' failed to satisfy constraint: Member must have value less than or equal to 500"
        ],
    ),
    (
        "numResults a string",
        create_request(numResults="25"),
        ["Value '25' at 'numResults' failed to satisfy constraint: Member must be an integer"],
    ),
    (
        "numResults a float",
        create_request(numResults=25.0),
        ["at 'numResults' failed to satisfy constraint: Member must be an integer"],
    ),
    (
        "numResults a bool",
        create_request(numResults=True),
        ["Value true at 'numResults' failed to satisfy constraint: Member must be an integer"],
    ),
    # tags
    (
        "too many tags for the shape",
        create_request(tags=[{"tagKey": f"k{i}", "tagValue": "v"} for i in range(201)]),
        [
            "Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 200",
        ],
    ),
    (
        "tag key empty",
        create_request(tags=[{"tagKey": "", "tagValue": "v"}]),
        [
            "Value at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ],
    ),
    (
        "tag key bad character",
        create_request(tags=[{"tagKey": "ok", "tagValue": "v"}, {"tagKey": "a#b", "tagValue": "v"}]),
        [
            "Value at 'tags.2.member.tagKey' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$",
        ],
    ),
    (
        "tag value too long",
        create_request(tags=[{"tagKey": "k", "tagValue": "v" * 257}]),
        [
            "Value at 'tags.1.member.tagValue' failed to satisfy constraint: Member must have length less than or equal to 256",
        ],
    ),
    (
        "tag key too long",
        create_request(tags=[{"tagKey": "k" * 129, "tagValue": "v"}]),
        ["at 'tags.1.member.tagKey'"],
    ),
    ("tag value missing", create_request(tags=[{"tagKey": "k"}]), ["Value null at 'tags.1.member.tagValue'"]),
    (
        "tags not a list",
        create_request(tags={"k": "v"}),
        ["at 'tags' failed to satisfy constraint: Member must be a list"],
    ),
    (
        "tag key reserved",
        create_request(tags=[{"tagKey": "AWS:owner", "tagValue": "v"}]),
        ["'tags.1.member.tagKey'", "must not start with 'aws:'"],
    ),
    (
        "tag keys repeated",
        create_request(tags=[{"tagKey": "k", "tagValue": "1"}, {"tagKey": "k", "tagValue": "2"}]),
        [
            "'tags.2.member.tagKey'",
            "must be unique",
        ],
    ),
    # batchInferenceJobConfig
    (
        "exploration weight above 1",
        create_request(batchInferenceJobConfig={"itemExplorationConfig": {"explorationWeight": "1.5"}}),
        [
            "Value '1.5' at 'batchInferenceJobConfig.itemExplorationConfig.explorationWeight' failed to satisfy constraint: Member must be a number from 0 to 1",
        ],
    ),
    (
        "exploration weight not a number",
        create_request(batchInferenceJobConfig={"itemExplorationConfig": {"explorationWeight": "high"}}),
        ["explorationWeight"],
    ),
    (
        "exploration weight not a string",
        create_request(batchInferenceJobConfig={"itemExplorationConfig": {"explorationWeight": 0.3}}),
        [
            "Value 0.3 at 'batchInferenceJobConfig.itemExplorationConfig.explorationWeight' failed to satisfy constraint: Member must be a string",
        ],
    ),
    (
        "exploration age zero",
        create_request(batchInferenceJobConfig={"itemExplorationConfig": {"explorationItemAgeCutOff": "0"}}),
        [
            "at 'batchInferenceJobConfig.itemExplorationConfig.explorationItemAgeCutOff' failed to satisfy constraint: Member must be a positive number of days",
        ],
    ),
    (
        "exploration unknown key",
        create_request(batchInferenceJobConfig={"itemExplorationConfig": {"explorationRate": "0.1"}}),
        [
            "Unknown key 'explorationRate' at 'batchInferenceJobConfig.itemExplorationConfig'",
        ],
    ),
    (
        "exploration too many entries",
        create_request(batchInferenceJobConfig={"itemExplorationConfig": {f"k{i}": "1" for i in range(101)}}),
        [
            "Value at 'batchInferenceJobConfig.itemExplorationConfig' failed to satisfy constraint: Member must have length less than or equal to 100",
        ],
    ),
    (
        "ranking influence above 1",
        create_request(batchInferenceJobConfig={"rankingInfluence": {"POPULARITY": 1.5}}),
        [
            "Value 1.5 at 'batchInferenceJobConfig.rankingInfluence.POPULARITY' failed to satisfy constraint: Member must have value less than or equal to 1",
        ],
    ),
    (
        "ranking influence negative",
        create_request(batchInferenceJobConfig={"rankingInfluence": {"FRESHNESS": -0.1}}),
        ["greater than or equal to 0"],
    ),
    (
        "ranking influence unknown key",
        create_request(batchInferenceJobConfig={"rankingInfluence": {"PRICE": 0.5}}),
        [
            "Value 'PRICE' at 'batchInferenceJobConfig.rankingInfluence.key' failed to satisfy constraint: Member must satisfy enum value set: [POPULARITY, FRESHNESS]",
        ],
    ),
    (
        "ranking influence a string",
        create_request(batchInferenceJobConfig={"rankingInfluence": {"FRESHNESS": "0.5"}}),
        ["Member must be a finite number"],
    ),
    (
        "config unknown member",
        create_request(batchInferenceJobConfig={"explorationWeight": "0.1"}),
        [
            "Unknown member 'explorationWeight' in 'batchInferenceJobConfig'",
        ],
    ),
    # mode
    (
        "mode unknown",
        create_request(batchInferenceJobMode="FAST"),
        [
            "Value 'FAST' at 'batchInferenceJobMode' failed to satisfy constraint: Member must satisfy enum value set: [BATCH_INFERENCE, THEME_GENERATION]",
        ],
    ),
    (
        "theme config bad column",
        create_request(themeGenerationConfig={"fieldsForThemeGeneration": {"itemName": "1x"}}),
        [
            "at 'themeGenerationConfig.fieldsForThemeGeneration.itemName' failed to satisfy constraint",
        ],
    ),
    # the request itself
    ("unknown member", create_request(jobname="x"), ["Unknown member 'jobname' in the request"]),
]


@pytest.mark.parametrize(("request_", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_each_rule_is_reported_naming_member_and_rule(request_: dict[str, Any], expected: list[str]) -> None:
    message = invalid(INFERENCE, request_)
    assert message.split(":")[0].endswith("detected")
    for part in expected:
        assert part in message


def test_every_broken_rule_is_reported_at_once() -> None:
    message = invalid(INFERENCE, create_request(jobName="-x", numResults=0, roleArn="nope"))
    assert message.startswith("3 validation errors detected: ")
    assert message.count("; ") == 2
    assert invalid(INFERENCE, create_request(numResults=0)).startswith(
        "1 validation error detected: Value 0 at"
    )


def test_sensitive_tag_values_are_never_echoed() -> None:
    message = invalid(INFERENCE, create_request(tags=[{"tagKey": "secret#value", "tagValue": "hunter2#"}]))
    assert "secret#value" not in message
    assert "hunter2#" not in message


def test_too_many_tags_for_a_resource() -> None:
    tags = [{"tagKey": f"k{i}", "tagValue": "v"} for i in range(51)]
    with pytest.raises(TooManyTagsException) as info:
        validate_request(INFERENCE, create_request(tags=tags))
    assert info.value.response["Error"]["Code"] == "TooManyTagsException"
    assert "at most 50" in info.value.message
    validate_request(INFERENCE, create_request(tags=tags[:50]))


def test_theme_generation_is_refused() -> None:
    message = invalid(
        INFERENCE,
        create_request(
            batchInferenceJobMode="THEME_GENERATION",
            themeGenerationConfig={"fieldsForThemeGeneration": {"itemName": "title"}},
        ),
    )
    assert "THEME_GENERATION needs a generative language model" in message
    message = invalid(
        INFERENCE, create_request(themeGenerationConfig={"fieldsForThemeGeneration": {"itemName": "t"}})
    )
    assert "themeGenerationConfig is only allowed with batchInferenceJobMode THEME_GENERATION" in message


def test_segment_jobs_have_no_config_mode_or_theme() -> None:
    message = invalid(SEGMENT, create_request(batchInferenceJobMode="BATCH_INFERENCE"))
    assert "Unknown member 'batchInferenceJobMode' in the request" in message


@pytest.mark.parametrize(
    "operation", ["ListBatchInferenceJobs", "ListBatchSegmentJobs", "ListSolutionVersions"]
)
def test_list_rules(operation: str) -> None:
    assert validate_request(operation, {}) == {}
    assert validate_request(operation, {"maxResults": 1}) == {"maxResults": 1}
    assert (
        "Value 0 at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"
        in (invalid(operation, {"maxResults": 0}))
    )
    assert (
        "Value 101 at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 100"
        in (invalid(operation, {"maxResults": 101}))
    )
    assert "at 'maxResults' failed to satisfy constraint: Member must be an integer" in invalid(
        operation, {"maxResults": "5"}
    )
    assert (
        "at 'nextToken' failed to satisfy constraint: Member must have length less than or equal to 1500"
        in (invalid(operation, {"nextToken": "a" * 1501}))
    )
    assert "at 'nextToken' failed to satisfy constraint: Member must satisfy regular expression pattern" in (
        invalid(operation, {"nextToken": "é"})
    )


def test_describe_rules() -> None:
    arn = "arn:aws:personalize:us-east-1:000000000000:batch-inference-job/j"
    assert validate_request("DescribeBatchInferenceJob", {"batchInferenceJobArn": arn}) == {
        "batchInferenceJobArn": arn
    }
    assert "Value null at 'batchInferenceJobArn'" in invalid("DescribeBatchInferenceJob", {})
    assert f"at 'batchSegmentJobArn' failed to satisfy constraint: {ARN_RULE}" in (
        invalid("DescribeBatchSegmentJob", {"batchSegmentJobArn": "j"})
    )
    assert "Value null at 'solutionVersionArn'" in invalid("DescribeSolutionVersion", {})


def test_import_solution_version_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    recipe = "arn:aws:personalize:::recipe/aws-sims"
    stored = validate_request(
        "ImportSolutionVersion", {"solutionName": "s", "recipeArn": recipe, "modelPath": "m.npz"}
    )
    assert stored["modelPath"] == str(tmp_path / "m.npz")
    message = invalid("ImportSolutionVersion", {"solutionName": "bad name", "recipeArn": "x"})
    assert message.startswith("3 validation errors detected")
    assert "Value null at 'modelPath'" in message
    assert "at 'solutionName' failed to satisfy constraint" in message
    assert "Value 'x' at 'recipeArn'" in message
    assert "at 'modelPath' failed to satisfy constraint: Member must be an s3://" in invalid(
        "ImportSolutionVersion", {"solutionName": "s", "recipeArn": recipe, "modelPath": "ftp://h/m.npz"}
    )


def test_a_request_that_is_not_an_object() -> None:
    assert "must be a structure" in invalid(INFERENCE, ["not", "a", "dict"])


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("s3://b/k", "s3"),
        ("S3://b/k", "s3"),
        ("http://h/x", "http"),
        ("https://h/x", "http"),
        ("file:///tmp/x", "file"),
        ("/tmp/x", "local"),
        ("relative/dir/", "local"),
        ("C:\\data\\in.jsonl", "local"),
    ],
)
def test_path_kind(path: str, kind: str) -> None:
    assert path_kind(path) == kind


@pytest.mark.parametrize("path", ["ftp://h/x", "s3:b/k", "gs://b/k"])
def test_path_kind_refuses_other_schemes(path: str) -> None:
    with pytest.raises(ValueError, match=r"scheme|//"):
        path_kind(path)


def test_recipe_family() -> None:
    assert recipe_family("arn:aws:personalize:::recipe/aws-user-personalization-v2") == "USER_PERSONALIZATION"
    assert recipe_family("arn:aws:personalize:::recipe/aws-item-affinity") == "USER_SEGMENTATION"
    assert recipe_family("arn:aws:personalize:::recipe/aws-trending-now") is None
    assert recipe_family("aws-sims") is None
