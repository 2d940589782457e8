"""Request validation: every rule of the Personalize shapes, plus recbatch's own (SPEC section 1).

botocore checks only required members, types and minimums on the client side; the service checks patterns,
maximum lengths, enums and numeric maximums. recbatch is the service here, and a request may also come
over HTTP from a client that checked nothing, so every rule is checked here, and every broken rule is
reported at once in the service's words::

    1 validation error detected: Value 'a b' at 'jobName' failed to satisfy constraint:
    Member must satisfy regular expression pattern: ^[a-zA-Z0-9][a-zA-Z0-9\\-_]*

The shapes below copy botocore's ``personalize`` model (a test compares them member by member).
Nothing here touches the store: a request that fails validation leaves no trace.
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from recbatch.jobs.errors import InvalidInputException, TooManyTagsException
from recbatch.model import RECIPES

__all__ = [
    "MAX_NUM_RESULTS_INFERENCE",
    "MAX_NUM_RESULTS_SEGMENT",
    "MAX_TAGS_PER_RESOURCE",
    "RECIPE_FAMILIES",
    "SCHEMAS",
    "SEGMENT_FAMILIES",
    "Field",
    "Float",
    "Int",
    "ListOf",
    "MapOf",
    "Str",
    "Struct",
    "path_kind",
    "recipe_family",
    "validate_request",
]

#: recbatch's cap on numResults for batch inference jobs (ours; SPEC section 1).
MAX_NUM_RESULTS_INFERENCE = 500
#: Personalize's documented maximum of users per segment.
MAX_NUM_RESULTS_SEGMENT = 5_000_000
DEFAULT_NUM_RESULTS = 25
#: Personalize's quota of tags per resource; the shape itself allows lists of 200.
MAX_TAGS_PER_RESOURCE = 50

RECIPE_PREFIX = "arn:aws:personalize:::recipe/"
#: Recipe name -> Personalize recipe family: the recipes recbatch implements (one table, in recbatch.model).
RECIPE_FAMILIES: dict[str, str] = {name: family.value for name, family in RECIPES.items()}
#: Families served by batch segment jobs; every other family is served by batch inference jobs.
SEGMENT_FAMILIES = frozenset({"USER_SEGMENTATION"})

ARN_PATTERN = r"arn:([a-z\d-]+):personalize:.*:.*:.+"
ROLE_ARN_PATTERN = r"arn:([a-z\d-]+):iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+"
S3_PATTERN = r"(s3|http|https)://.+"
KMS_PATTERN = r"arn:aws.*:kms:.*:[0-9]{12}:key/.*"
NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9\-_]*"
TAG_PATTERN = r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$"
COLUMN_PATTERN = r"[A-Za-z_][A-Za-z\d_]*"
NEXT_TOKEN_PATTERN = r"\p{ASCII}{0,1500}"

_TAG_EXTRA_CHARS = frozenset("_.:/=+-@")


def _tag_chars_ok(value: str) -> bool:
    # Python's re has no \p{..}; this is the Java class [\p{L}\p{Z}\p{N}_.:/=+\-@] by Unicode category.
    return all(c in _TAG_EXTRA_CHARS or unicodedata.category(c)[0] in "LZN" for c in value)


def _compile(pattern: str) -> Callable[[str], bool]:
    if pattern == TAG_PATTERN:
        return _tag_chars_ok
    if pattern == NEXT_TOKEN_PATTERN:
        return lambda s: len(s) <= 1500 and s.isascii()
    # The service matches the whole value (Java's String.matches); '.' never matches a line break.
    rx = re.compile(pattern)
    return lambda s: rx.fullmatch(s) is not None


# ----------------------------------------------------------------------------------------------- shapes


def _quote(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + type(value).__name__ + "'"


def _constraint(value: Any, path: str, rule: str, *, sensitive: bool = False) -> str:
    shown = "Value" if sensitive else f"Value {_quote(value)}"
    return f"{shown} at '{path}' failed to satisfy constraint: Member {rule}"


class Field:
    """One shape; :meth:`check` appends messages for every rule ``value`` breaks."""

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Str(Field):
    """A string shape (``min``/``max`` are lengths)."""

    min: int | None = None
    max: int | None = None
    pattern: str | None = None
    enum: tuple[str, ...] | None = None
    sensitive: bool = False

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        if not isinstance(value, str):
            errors.append(_constraint(value, path, "must be a string", sensitive=self.sensitive))
            return
        s = self.sensitive
        if self.min is not None and len(value) < self.min:
            errors.append(
                _constraint(value, path, f"must have length greater than or equal to {self.min}", sensitive=s)
            )
        if self.max is not None and len(value) > self.max:
            errors.append(
                _constraint(value, path, f"must have length less than or equal to {self.max}", sensitive=s)
            )
        if self.pattern is not None and not _compile(self.pattern)(value):
            errors.append(
                _constraint(
                    value, path, f"must satisfy regular expression pattern: {self.pattern}", sensitive=s
                )
            )
        if self.enum is not None and value not in self.enum:
            errors.append(
                _constraint(
                    value, path, f"must satisfy enum value set: [{', '.join(self.enum)}]", sensitive=s
                )
            )


@dataclass(frozen=True)
class Int(Field):
    """An integer shape (bool is not an integer, and neither is 25.0)."""

    min: int | None = None
    max: int | None = None

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(_constraint(value, path, "must be an integer"))
            return
        if self.min is not None and value < self.min:
            errors.append(_constraint(value, path, f"must have value greater than or equal to {self.min}"))
        if self.max is not None and value > self.max:
            errors.append(_constraint(value, path, f"must have value less than or equal to {self.max}"))


@dataclass(frozen=True)
class Float(Field):
    """A double shape; integers are accepted (JSON does not tell 1 from 1.0)."""

    min: float | None = None
    max: float | None = None

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            errors.append(_constraint(value, path, "must be a finite number"))
            return
        if self.min is not None and value < self.min:
            errors.append(_constraint(value, path, f"must have value greater than or equal to {self.min:g}"))
        if self.max is not None and value > self.max:
            errors.append(_constraint(value, path, f"must have value less than or equal to {self.max:g}"))


@dataclass(frozen=True)
class Struct(Field):
    """A structure; members not in the shape are refused (a silently ignored option is worse)."""

    members: Mapping[str, Field]
    required: frozenset[str] = frozenset()

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        if not isinstance(value, Mapping):
            errors.append(_constraint(value, path, "must be a structure"))
            return
        for name in self.members:
            if name in self.required and value.get(name) is None:
                errors.append(
                    f"Value null at '{_join(path, name)}' failed to satisfy constraint: Member must not be null"
                )
        for name, member_value in value.items():
            shape = self.members.get(name)
            if shape is None:
                where = f"'{path}'" if path else "the request"
                errors.append(f"Unknown member '{name}' in {where}: not part of the request shape")
            elif member_value is not None:
                shape.check(member_value, _join(path, name), errors)


@dataclass(frozen=True)
class ListOf(Field):
    """A list; element paths are written as the service writes them: ``tags.1.member.tagKey``."""

    member: Field
    min: int | None = None
    max: int | None = None

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        if not isinstance(value, (list, tuple)):
            errors.append(_constraint(value, path, "must be a list"))
            return
        if self.min is not None and len(value) < self.min:
            errors.append(
                f"Value at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {self.min}"
            )
        if self.max is not None and len(value) > self.max:
            errors.append(
                f"Value at '{path}' failed to satisfy constraint: Member must have length less than or equal to {self.max}"
            )
        for i, item in enumerate(value, start=1):
            self.member.check(item, f"{path}.{i}.member", errors)


@dataclass(frozen=True)
class MapOf(Field):
    """A map of string keys; a value's path is ``map.<key>``."""

    key: Str
    value: Field
    max: int | None = None

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        if not isinstance(value, Mapping):
            errors.append(_constraint(value, path, "must be a map"))
            return
        if self.max is not None and len(value) > self.max:
            errors.append(
                f"Value at '{path}' failed to satisfy constraint: Member must have length less than or equal to {self.max}"
            )
        for k, v in value.items():
            self.key.check(k, f"{path}.key", errors)
            if v is None:
                errors.append(
                    f"Value null at '{path}.{k}' failed to satisfy constraint: Member must not be null"
                )
            else:
                self.value.check(v, f"{path}.{k}", errors)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _struct(required: tuple[str, ...] = (), **members: Field) -> Struct:
    return Struct(members=members, required=frozenset(required))


ARN = Str(max=256, pattern=ARN_PATTERN)
NAME = Str(min=1, max=63, pattern=NAME_PATTERN)
S3_CONFIG = _struct(
    ("path",), path=Str(max=256, pattern=S3_PATTERN), kmsKeyArn=Str(max=2048, pattern=KMS_PATTERN)
)
TAGS = ListOf(
    _struct(
        ("tagKey", "tagValue"),
        tagKey=Str(min=1, max=128, pattern=TAG_PATTERN, sensitive=True),
        tagValue=Str(min=0, max=256, pattern=TAG_PATTERN, sensitive=True),
    ),
    min=0,
    max=200,
)
BATCH_INFERENCE_JOB_CONFIG = _struct(
    itemExplorationConfig=MapOf(Str(max=256), Str(max=1000), max=100),
    rankingInfluence=MapOf(Str(enum=("POPULARITY", "FRESHNESS")), Float(min=0, max=1)),
)
THEME_GENERATION_CONFIG = _struct(
    ("fieldsForThemeGeneration",),
    fieldsForThemeGeneration=_struct(("itemName",), itemName=Str(max=150, pattern=COLUMN_PATTERN)),
)
NEXT_TOKEN = Str(max=1500, pattern=NEXT_TOKEN_PATTERN)
MAX_RESULTS = Int(min=1, max=100)

_CREATE_COMMON: dict[str, Field] = {
    "jobName": NAME,
    "solutionVersionArn": ARN,
    "filterArn": ARN,
    # The model has no bounds on NumBatchResults; the caps are ours and set per operation below.
    "numResults": Int(),
}

#: Operation name -> request shape.
SCHEMAS: dict[str, Struct] = {
    "CreateBatchInferenceJob": _struct(
        ("jobName", "solutionVersionArn", "jobInput", "jobOutput", "roleArn"),
        **_CREATE_COMMON,
        jobInput=_struct(("s3DataSource",), s3DataSource=S3_CONFIG),
        jobOutput=_struct(("s3DataDestination",), s3DataDestination=S3_CONFIG),
        roleArn=Str(max=256, pattern=ROLE_ARN_PATTERN),
        batchInferenceJobConfig=BATCH_INFERENCE_JOB_CONFIG,
        tags=TAGS,
        batchInferenceJobMode=Str(enum=("BATCH_INFERENCE", "THEME_GENERATION")),
        themeGenerationConfig=THEME_GENERATION_CONFIG,
    ),
    "CreateBatchSegmentJob": _struct(
        ("jobName", "solutionVersionArn", "jobInput", "jobOutput", "roleArn"),
        **_CREATE_COMMON,
        jobInput=_struct(("s3DataSource",), s3DataSource=S3_CONFIG),
        jobOutput=_struct(("s3DataDestination",), s3DataDestination=S3_CONFIG),
        roleArn=Str(max=256, pattern=ROLE_ARN_PATTERN),
        tags=TAGS,
    ),
    "DescribeBatchInferenceJob": _struct(("batchInferenceJobArn",), batchInferenceJobArn=ARN),
    "DescribeBatchSegmentJob": _struct(("batchSegmentJobArn",), batchSegmentJobArn=ARN),
    "ListBatchInferenceJobs": _struct(solutionVersionArn=ARN, nextToken=NEXT_TOKEN, maxResults=MAX_RESULTS),
    "ListBatchSegmentJobs": _struct(solutionVersionArn=ARN, nextToken=NEXT_TOKEN, maxResults=MAX_RESULTS),
    "DescribeSolutionVersion": _struct(("solutionVersionArn",), solutionVersionArn=ARN),
    "ListSolutionVersions": _struct(solutionArn=ARN, nextToken=NEXT_TOKEN, maxResults=MAX_RESULTS),
    # Ours (not in Personalize): register a trained model as an ACTIVE solution version.
    "ImportSolutionVersion": _struct(
        ("solutionName", "recipeArn", "modelPath"),
        solutionName=NAME,
        recipeArn=ARN,
        modelPath=Str(max=1024),
    ),
}


def _fail(errors: list[str]) -> InvalidInputException:
    n = len(errors)
    head = f"{n} validation error{'s' if n != 1 else ''} detected: "
    return InvalidInputException(head + "; ".join(errors))


# ------------------------------------------------------------------------------------------------ paths

_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]+):")


def path_kind(path: str) -> str:
    """``"s3"``, ``"http"`` (http or https), ``"file"`` (a ``file://`` URI) or ``"local"`` (a plain path).

    Raises ValueError for any other URI scheme. A prefix such as ``s3:`` without ``//`` is refused too,
    so that a mistyped URI is never taken for a relative local path.
    """
    m = _SCHEME_RE.match(path)
    if m is None:  # a plain path (also Windows' "C:\\...", whose one-letter drive is not a scheme)
        return "local"
    scheme = m.group(1).lower()
    if not path[m.end() :].startswith("//"):
        raise ValueError(f"'{m.group(1)}:' is not followed by '//'")
    if scheme == "s3":
        return "s3"
    if scheme in ("http", "https"):
        return "http"
    if scheme == "file":
        return "file"
    raise ValueError(f"unsupported URI scheme '{m.group(1)}'")


_PATH_RULE = "must be an s3://, http(s):// or file:// URI, or a local path"
_OUT_PATH_RULE = "must be an s3:// or file:// URI, or a local path (http and https are for input only)"
_S3_MATCH = _compile(S3_PATTERN)


def _location_kind(value: str, where: str, *, output: bool, errors: list[str]) -> str | None:
    """SPEC's path rules: S3 as the shape says, plus file:// URIs and local paths; http(s) input only."""
    rule = _OUT_PATH_RULE if output else _PATH_RULE
    try:
        kind = path_kind(value) if value else None
    except ValueError:
        kind = None
    if kind is None or (output and kind == "http") or (kind == "file" and len(value) <= len("file://")):
        errors.append(_constraint(value, where, rule))
        return None
    if kind in ("s3", "http") and not _S3_MATCH(value):
        errors.append(_constraint(value, where, f"must satisfy regular expression pattern: {S3_PATTERN}"))
        return None
    return kind


def _check_data_config(config: Mapping[str, Any], path: str, *, output: bool, errors: list[str]) -> None:
    kind = _location_kind(config["path"], f"{path}.path", output=output, errors=errors)
    if kind is not None and kind != "s3" and config.get("kmsKeyArn") is not None:
        what = "a local path" if kind in ("local", "file") else "an http(s) URI"
        errors.append(
            _constraint(
                config["kmsKeyArn"],
                f"{path}.kmsKeyArn",
                f"must be absent: a kmsKeyArn applies to s3:// paths only, and {path}.path is {what}",
            )
        )


def _normalized_path(value: str) -> str:
    # A relative local path is resolved against the caller's working directory now, because the worker
    # that reads it may run elsewhere (the server process, another working directory).
    if path_kind(value) != "local":
        return value
    absolute = os.path.abspath(value)  # noqa: PTH100 - normalises '..' without resolving symlinks
    # A trailing separator means "this folder" (S3 prefix semantics, SPEC section 3): keep it.
    if value.endswith(("/", os.sep)) and not absolute.endswith(("/", os.sep)):
        absolute += os.sep
    return absolute


# -------------------------------------------------------------------------------------------- the rules


def _relaxed_shape(operation: str) -> Struct:
    # The model's shape with the S3 pattern left to _location_kind, which also allows local paths.
    schema = SCHEMAS[operation]
    if "jobInput" not in schema.members:
        return schema
    relaxed = _struct(("path",), path=Str(max=256), kmsKeyArn=Str(max=2048, pattern=KMS_PATTERN))
    members = dict(schema.members)
    members["jobInput"] = _struct(("s3DataSource",), s3DataSource=relaxed)
    members["jobOutput"] = _struct(("s3DataDestination",), s3DataDestination=relaxed)
    return Struct(members=members, required=schema.required)


def _check_exploration(config: Mapping[str, Any], errors: list[str]) -> None:
    where = "batchInferenceJobConfig.itemExplorationConfig"
    for key, raw in config.items():
        if not isinstance(raw, str):
            continue  # already reported by the shape
        try:
            number = float(raw)
        except ValueError:
            number = math.nan
        if key == "explorationWeight":
            if not 0.0 <= number <= 1.0:
                errors.append(_constraint(raw, f"{where}.{key}", "must be a number from 0 to 1"))
        elif key == "explorationItemAgeCutOff":
            if not (math.isfinite(number) and number > 0):
                errors.append(_constraint(raw, f"{where}.{key}", "must be a positive number of days"))
        else:
            errors.append(
                f"Unknown key '{key}' at '{where}': the keys are explorationWeight and explorationItemAgeCutOff"
            )


def _check_tags(tags: list[Mapping[str, Any]]) -> None:
    keys = [t["tagKey"] for t in tags]
    errors: list[str] = []
    for i, key in enumerate(keys, start=1):
        if key.lower().startswith("aws:"):
            errors.append(
                f"Value at 'tags.{i}.member.tagKey' failed to satisfy constraint: Member must not start with 'aws:' (reserved)"
            )
        if key in keys[: i - 1]:
            errors.append(
                f"Value at 'tags.{i}.member.tagKey' failed to satisfy constraint: Member must be unique among the tags"
            )
    if errors:
        raise _fail(errors)
    if len(tags) > MAX_TAGS_PER_RESOURCE:
        raise TooManyTagsException(
            f"{len(tags)} tags given; a resource can have at most {MAX_TAGS_PER_RESOURCE} tags"
        )


def validate_request(operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``params`` against ``operation``'s rules; return the request as stored.

    The result is a copy with defaults filled in (numResults 25, batchInferenceJobMode BATCH_INFERENCE)
    and relative local paths made absolute. Raises InvalidInputException naming every broken rule, or
    TooManyTagsException. Checks that need the store (solution version, filter, names, tokens) are the
    caller's.
    """
    if operation not in SCHEMAS:
        raise InvalidInputException(f"Unknown operation {operation}")
    if not isinstance(params, Mapping):
        raise _fail([_constraint(params, "", "must be a structure")])
    errors: list[str] = []
    _relaxed_shape(operation).check(params, "", errors)
    is_create = operation.startswith("Create")
    if is_create:
        for member, sub in (("jobInput", "s3DataSource"), ("jobOutput", "s3DataDestination")):
            config = _member(_member(params, member), sub)
            if config is not None and isinstance(config.get("path"), str):
                _check_data_config(config, f"{member}.{sub}", output=member == "jobOutput", errors=errors)
        num = params.get("numResults")
        if isinstance(num, int) and not isinstance(num, bool):
            cap = (
                MAX_NUM_RESULTS_INFERENCE
                if operation == "CreateBatchInferenceJob"
                else MAX_NUM_RESULTS_SEGMENT
            )
            Int(min=1, max=cap).check(num, "numResults", errors)
    if operation == "ImportSolutionVersion" and isinstance(params.get("modelPath"), str):
        _location_kind(params["modelPath"], "modelPath", output=False, errors=errors)
    if operation == "CreateBatchInferenceJob":
        exploration = _member(_member(params, "batchInferenceJobConfig"), "itemExplorationConfig")
        if exploration is not None:
            _check_exploration(exploration, errors)
    if errors:
        raise _fail(_dedupe(errors))

    request: dict[str, Any] = _deep_copy(params)
    if operation == "CreateBatchInferenceJob":
        mode = request.setdefault("batchInferenceJobMode", "BATCH_INFERENCE")
        if mode == "THEME_GENERATION":
            raise InvalidInputException(
                "batchInferenceJobMode THEME_GENERATION needs a generative language model, which recbatch "
                "does not have; use BATCH_INFERENCE"
            )
        if request.get("themeGenerationConfig") is not None:
            raise InvalidInputException(
                "themeGenerationConfig is only allowed with batchInferenceJobMode THEME_GENERATION"
            )
    if is_create:
        request.setdefault("numResults", DEFAULT_NUM_RESULTS)
        for member, sub in (("jobInput", "s3DataSource"), ("jobOutput", "s3DataDestination")):
            config = request[member][sub]
            config["path"] = _normalized_path(config["path"])
        if request.get("tags"):
            _check_tags(request["tags"])
    if operation == "ImportSolutionVersion":
        request["modelPath"] = _normalized_path(request["modelPath"])
    return request


def _member(value: Any, name: str) -> Mapping[str, Any] | None:
    inner = value.get(name) if isinstance(value, Mapping) else None
    return inner if isinstance(inner, Mapping) else None


def _dedupe(errors: list[str]) -> list[str]:
    return list(dict.fromkeys(errors))


def _deep_copy(value: Any) -> Any:
    # A member sent as JSON null is the same as one left out (as the service treats it).
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_deep_copy(v) for v in value]
    return value


def recipe_family(recipe_arn: str) -> str | None:
    """The family of a recipe recbatch implements, or None."""
    if not recipe_arn.startswith(RECIPE_PREFIX):
        return None
    return RECIPE_FAMILIES.get(recipe_arn[len(RECIPE_PREFIX) :])
