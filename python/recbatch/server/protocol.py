"""The AWS JSON 1.1 wire format of the ``personalize`` service: its model, request checks, response encoding.

The service model is botocore's own ``personalize`` model (the same shapes boto3 and the AWS CLI use) merged
with recbatch's additions from ``data/personalize/<version>/service-2.sdk-extras.json`` (operations that
Personalize does not have, such as ``ImportSolutionVersion``), loaded with botocore's standard extras
mechanism, so the server, the CLI and a boto3 client pointed at that folder all see one model.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from botocore.loaders import Loader
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

SERVICE_NAME = "personalize"
SIGNING_NAME = "personalize"
TARGET_PREFIX = "AmazonPersonalize"
CONTENT_TYPE = "application/x-amz-json-1.1"
#: The folder to add to botocore's data path (``AWS_DATA_PATH``) so botocore knows recbatch's extra operations.
DATA_PATH = Path(__file__).resolve().parent / "data"


class ProtocolError(Exception):
    """A request the protocol layer refuses: becomes ``{"__type": code, "message": ...}`` with ``status``.

    400 unless said otherwise, UnknownOperationException included: SPEC section 8, and what AWS's JSON
    services answer for an operation they do not have.
    """

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@functools.cache
def service_model() -> ServiceModel:
    """botocore's ``personalize`` model with recbatch's extras merged in."""
    loader = Loader(extra_search_paths=[str(DATA_PATH)])
    return ServiceModel(loader.load_service_model(SERVICE_NAME, "service-2"), service_name=SERVICE_NAME)


def operation_model(name: str) -> OperationModel:
    return service_model().operation_model(name)


def parse_target(target: str | None) -> str:
    """The operation name of an ``X-Amz-Target`` header value, or :class:`ProtocolError`."""
    if target is None or not target.strip():
        raise ProtocolError(
            "UnknownOperationException",
            f"Missing X-Amz-Target header: an AWS JSON 1.1 request names its operation as "
            f"'X-Amz-Target: {TARGET_PREFIX}.<Operation>'.",
        )
    prefix, dot, operation = target.strip().rpartition(".")
    if not dot or prefix != TARGET_PREFIX or not operation:
        raise ProtocolError(
            "UnknownOperationException",
            f"Unknown X-Amz-Target '{target}': this endpoint serves '{TARGET_PREFIX}.<Operation>'.",
        )
    return operation


def parse_body(body: bytes) -> dict[str, Any]:
    """The JSON object of a request body (empty means ``{}``), or SerializationException."""
    if not body.strip():
        return {}
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ProtocolError("SerializationException", f"The request body is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise ProtocolError(
            "SerializationException",
            f"The request body must be a JSON object, not a JSON {_json_kind(value)}.",
        )
    return value


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


_EXPECTED = {
    "string": "string",
    "integer": "integer",
    "long": "integer",
    "double": "number",
    "float": "number",
    "boolean": "boolean",
    "timestamp": "number or string",
    "blob": "base64 string",
    "structure": "object",
    "map": "object",
    "list": "array",
}


def _type_ok(type_name: str, value: Any) -> bool:
    if type_name in ("string", "blob"):
        return isinstance(value, str)
    if type_name in ("integer", "long"):
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name in ("double", "float"):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if type_name == "boolean":
        return isinstance(value, bool)
    if type_name == "timestamp":
        return isinstance(value, (int, float, str)) and not isinstance(value, bool)
    if type_name in ("structure", "map"):
        return isinstance(value, dict)
    if type_name == "list":
        return isinstance(value, list)
    return True


def conform(shape: Shape | None, value: Any, where: str = "") -> Any:
    """Check ``value`` against ``shape``'s JSON types and return it without members the shape does not have.

    A value of the wrong JSON type is a SerializationException, as the service answers it; unknown members are
    dropped, as the service ignores them (so a newer client's optional members do not break a request). Every
    other rule (required members, lengths, patterns, ranges) is the job layer's validation, which names the rule.
    A JSON ``null`` counts as absent.
    """
    if shape is None:
        return value
    if not _type_ok(shape.type_name, value):
        raise ProtocolError(
            "SerializationException",
            f"Expected a JSON {_EXPECTED.get(shape.type_name, shape.type_name)} for {where or 'the request'}, "
            f"got a JSON {_json_kind(value)}.",
        )
    if isinstance(shape, StructureShape):
        out: dict[str, Any] = {}
        for key, item in value.items():
            member = shape.members.get(key)
            if member is not None and item is not None:
                out[key] = conform(member, item, f"{where}.{key}" if where else key)
        return out
    if isinstance(shape, MapShape):
        return {
            key: conform(shape.value, item, f"{where}.{key}")
            for key, item in value.items()
            if item is not None
        }
    if isinstance(shape, ListShape):
        return [conform(shape.member, item, f"{where}[{i}]") for i, item in enumerate(value)]
    return value


def to_wire(value: Any) -> Any:
    """A response value as AWS JSON 1.1 sends it: timestamps become epoch seconds with milliseconds."""
    if isinstance(value, datetime):
        return round(value.timestamp(), 3)
    if isinstance(value, Mapping):
        return {str(k): to_wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    return value


def encode_response(result: Mapping[str, Any]) -> bytes:
    """The JSON body of a successful response (boto3's ``ResponseMetadata`` is not part of the wire shape)."""
    return orjson.dumps(to_wire({k: v for k, v in result.items() if k != "ResponseMetadata"}))


def encode_error(code: str, message: str) -> bytes:
    return orjson.dumps({"__type": code, "message": message})
