"""Option values as the AWS CLI takes them: shorthand, JSON and file://, typed by the service model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from recbatch.cli.shorthand import ShorthandError, UnreadableFileError, parse_option, parse_shorthand
from recbatch.server.protocol import operation_model


def member(name: str) -> Any:
    shape = operation_model("CreateBatchInferenceJob").input_shape
    assert shape is not None
    return shape.members[name]


def test_shorthand_structures_lists_and_quotes() -> None:
    assert parse_shorthand("a=1,b={c=x,d=[p,q]},e='has, comma}',f=\"x=y\"") == {
        "a": "1",
        "b": {"c": "x", "d": ["p", "q"]},
        "e": "has, comma}",
        "f": "x=y",
    }
    assert parse_shorthand("path=s3://bucket/in/a=b.jsonl") == {"path": "s3://bucket/in/a=b.jsonl"}
    assert parse_shorthand("empty={},none=[]") == {"empty": {}, "none": []}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "expected a key"),
        ("a", "expected '=' after key 'a'"),
        ("a=1,a=2", "given twice"),
        ("a={b=1", "expected ',' or '}'"),
        ("a='open", "unterminated quote"),
        ("a=[1,2", "expected ',' or ']'"),
    ],
)
def test_shorthand_errors_say_where(text: str, fragment: str) -> None:
    with pytest.raises(ShorthandError, match="character"):
        parse_shorthand(text)
    with pytest.raises(ShorthandError) as caught:
        parse_shorthand(text)
    assert fragment in str(caught.value)


def test_job_input_in_each_form(tmp_path: Path) -> None:
    expected = {
        "s3DataSource": {"path": "s3://b/in/", "kmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/k"}
    }
    shorthand = "s3DataSource={path=s3://b/in/,kmsKeyArn=arn:aws:kms:us-east-1:111122223333:key/k}"
    as_json = (
        '{"s3DataSource": {"path": "s3://b/in/", "kmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/k"}}'
    )
    file = tmp_path / "input.json"
    file.write_text(as_json)
    for text in (shorthand, as_json, f"file://{file}"):
        assert parse_option("--job-input", member("jobInput"), [text]) == expected


def test_values_are_typed_by_the_model() -> None:
    assert parse_option("--num-results", member("numResults"), ["7"]) == 7
    config = parse_option(
        "--batch-inference-job-config",
        member("batchInferenceJobConfig"),
        ["itemExplorationConfig={explorationWeight=0.3},rankingInfluence={POPULARITY=0.5}"],
    )
    # itemExplorationConfig is a map of strings (as in the model); rankingInfluence values are doubles
    assert config == {
        "itemExplorationConfig": {"explorationWeight": "0.3"},
        "rankingInfluence": {"POPULARITY": 0.5},
    }
    tags = parse_option("--tags", member("tags"), ["tagKey=a,tagValue=1", "tagKey=b,tagValue=2"])
    assert tags == [{"tagKey": "a", "tagValue": "1"}, {"tagKey": "b", "tagValue": "2"}]
    assert parse_option("--tags", member("tags"), ['[{"tagKey": "a", "tagValue": "1"}]']) == [
        {"tagKey": "a", "tagValue": "1"}
    ]
    assert parse_option("--job-name", member("jobName"), ["name"]) == "name"


@pytest.mark.parametrize(
    ("option", "values", "fragment"),
    [
        ("numResults", ["many"], "--num-results: expected a number"),
        ("jobInput", ["s3DataSource={pth=x}"], "unknown key 'pth'; valid keys are: path, kmsKeyArn"),
        ("jobInput", ["bucket=x"], "unknown key 'bucket'; valid keys are: s3DataSource"),
        ("jobInput", ['{"s3DataSource": '], "invalid JSON"),
        ("tags", ["tagKey=a,tagValue"], "expected '='"),
    ],
)
def test_bad_values_name_the_option(option: str, values: list[str], fragment: str) -> None:
    flag = "--" + {"numResults": "num-results", "jobInput": "job-input", "tags": "tags"}[option]
    with pytest.raises(ShorthandError) as caught:
        parse_option(flag, member(option), values)
    assert fragment in str(caught.value)


def test_an_unreadable_file_is_an_io_error_naming_the_option() -> None:
    with pytest.raises(UnreadableFileError) as caught:
        parse_option("--job-input", member("jobInput"), ["file:///nonexistent/recbatch.json"])
    assert str(caught.value).startswith("--job-input: cannot read /nonexistent/recbatch.json")
