"""The AWS JSON 1.1 pieces: the merged service model, target and body parsing, type checks, wire encoding."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from recbatch.jobs.client import OPERATIONS
from recbatch.server import protocol


def test_model_has_botocore_operations_and_ours() -> None:
    model = protocol.service_model()
    assert set(OPERATIONS) <= set(model.operation_names)
    imported = model.operation_model("ImportSolutionVersion")
    assert imported.input_shape is not None
    assert imported.input_shape.required_members == ["solutionName", "recipeArn", "modelPath"]
    assert model.metadata["targetPrefix"] == protocol.TARGET_PREFIX
    assert "recordsWritten" in model.shape_for("BatchInferenceJob").members


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        (None, "Missing X-Amz-Target"),
        ("  ", "Missing X-Amz-Target"),
        ("CreateBatchInferenceJob", "AmazonPersonalize.<Operation>"),
        ("AmazonS3.CreateBatchInferenceJob", "AmazonPersonalize.<Operation>"),
        ("AmazonPersonalize.", "AmazonPersonalize.<Operation>"),
    ],
)
def test_bad_targets(target: str | None, fragment: str) -> None:
    with pytest.raises(protocol.ProtocolError) as caught:
        protocol.parse_target(target)
    assert (caught.value.code, caught.value.status) == ("UnknownOperationException", 400)
    assert fragment in caught.value.message


def test_parse_target_and_body() -> None:
    assert protocol.parse_target("AmazonPersonalize.ListBatchInferenceJobs") == "ListBatchInferenceJobs"
    assert protocol.parse_body(b"") == {}
    assert protocol.parse_body(b' {"a": 1} ') == {"a": 1}
    for body in (b"{", b"null", b'"s"', b"[]", b"\xff"):
        with pytest.raises(protocol.ProtocolError) as caught:
            protocol.parse_body(body)
        assert caught.value.code == "SerializationException"


def _input(operation: str) -> Any:
    return protocol.operation_model(operation).input_shape


def test_conform_keeps_known_members_and_drops_unknown_and_nulls() -> None:
    request = {
        "jobName": "j",
        "numResults": 5,
        "jobInput": {"s3DataSource": {"path": "s3://b/in", "extra": 1}},
        "batchInferenceJobConfig": {"rankingInfluence": {"POPULARITY": 1}},
        "filterArn": None,
        "notAMember": {"x": 1},
    }
    assert protocol.conform(_input("CreateBatchInferenceJob"), request) == {
        "jobName": "j",
        "numResults": 5,
        "jobInput": {"s3DataSource": {"path": "s3://b/in"}},
        "batchInferenceJobConfig": {"rankingInfluence": {"POPULARITY": 1}},
    }


@pytest.mark.parametrize(
    ("request_body", "where"),
    [
        ({"numResults": "5"}, "numResults"),
        ({"numResults": True}, "numResults"),
        ({"numResults": 2.5}, "numResults"),
        ({"jobName": 5}, "jobName"),
        ({"jobInput": []}, "jobInput"),
        ({"tags": {"tagKey": "a"}}, "tags"),
        ({"tags": [{"tagKey": 1}]}, "tags[0].tagKey"),
        (
            {"batchInferenceJobConfig": {"rankingInfluence": {"POPULARITY": "high"}}},
            "rankingInfluence.POPULARITY",
        ),
    ],
)
def test_conform_refuses_wrong_json_types(request_body: dict[str, Any], where: str) -> None:
    with pytest.raises(protocol.ProtocolError) as caught:
        protocol.conform(_input("CreateBatchInferenceJob"), request_body)
    assert caught.value.code == "SerializationException"
    assert where in caught.value.message


def test_responses_carry_epoch_seconds_with_milliseconds() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    body = protocol.encode_response(
        {
            "batchInferenceJob": {"creationDateTime": when, "failureReason": None, "tags": [when]},
            "ResponseMetadata": {"RequestId": "x"},
        }
    )
    assert json.loads(body) == {
        "batchInferenceJob": {"creationDateTime": 1767323045.679, "tags": [1767323045.679]}
    }
    assert json.loads(protocol.encode_error("InvalidInputException", "bad")) == {
        "__type": "InvalidInputException",
        "message": "bad",
    }
