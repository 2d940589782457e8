"""Option values as the AWS CLI takes them: JSON, ``file://`` and its shorthand syntax, typed by the model.

The shorthand is the AWS CLI's ``key=value,key2={nested=value}`` form::

    s3DataSource={path=s3://bucket/in/,kmsKeyArn=arn:aws:kms:us-east-1:111122223333:key/k}
    itemExplorationConfig={explorationWeight=0.3},rankingInfluence={POPULARITY=0.5}
    tagKey=team,tagValue=recs

Values run to the next ``,``, ``}`` or ``]`` of their level; quote them ('...' or "...") to include those.
``[a,b]`` is a list. The parsed strings are then converted by the botocore shape of the option (integers,
numbers, booleans), and keys that the shape does not have are refused, naming the keys it has.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape


class ShorthandError(ValueError):
    """An option value that cannot be read; the message names the option and the problem."""


class UnreadableFileError(OSError):
    """The file that an option's ``file://PATH`` names cannot be read (an I/O error, not a usage one)."""


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, message: str) -> ShorthandError:
        return ShorthandError(f"{message} at character {self.pos + 1} of {self.text!r}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_spaces(self) -> None:
        while self.peek().isspace():
            self.pos += 1

    def pairs(self, closing: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self.skip_spaces()
        if self.peek() == closing and closing:
            return out
        while True:
            self.skip_spaces()
            start = self.pos
            while self.peek() and self.peek() not in "=,{}[]":
                self.pos += 1
            key = self.text[start : self.pos].strip()
            if not key:
                raise self.error("expected a key")
            if self.peek() != "=":
                raise self.error(f"expected '=' after key {key!r}")
            self.pos += 1
            if key in out:
                raise self.error(f"key {key!r} given twice")
            out[key] = self.value()
            self.skip_spaces()
            if self.peek() == ",":
                self.pos += 1
                continue
            if self.peek() == closing:
                return out
            raise self.error("expected ',' or the end" if not closing else f"expected ',' or '{closing}'")

    def items(self) -> list[Any]:
        out: list[Any] = []
        self.skip_spaces()
        if self.peek() == "]":
            return out
        while True:
            out.append(self.value())
            self.skip_spaces()
            if self.peek() == ",":
                self.pos += 1
                continue
            if self.peek() == "]":
                return out
            raise self.error("expected ',' or ']'")

    def value(self) -> Any:
        self.skip_spaces()
        char = self.peek()
        if char == "{":
            self.pos += 1
            result: Any = self.pairs("}")
            self.pos += 1
            return result
        if char == "[":
            self.pos += 1
            result = self.items()
            self.pos += 1
            return result
        if char in ("'", '"'):
            end = self.text.find(char, self.pos + 1)
            if end < 0:
                raise self.error("unterminated quote")
            result = self.text[self.pos + 1 : end]
            self.pos = end + 1
            return result
        start = self.pos
        while self.peek() and self.peek() not in ",}]":
            self.pos += 1
        return self.text[start : self.pos].strip()


def parse_shorthand(text: str) -> dict[str, Any]:
    """``key=value,...`` into a dictionary of strings, lists and dictionaries (untyped)."""
    parser = _Parser(text)
    result = parser.pairs("")
    if parser.pos != len(text):
        raise parser.error("unexpected text")
    return result


def read_value(text: str) -> str:
    """The text of an option: itself, or the contents of the file that ``file://PATH`` names."""
    if text.startswith("file://"):
        path = Path(text[len("file://") :]).expanduser()
        try:
            return path.read_text(encoding="utf-8")
        except OSError as e:
            raise UnreadableFileError(f"cannot read {path}: {e.strerror or e}") from None
    return text


def _coerce(shape: Shape, value: Any, where: str) -> Any:
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            raise ShorthandError(f"{where}: expected a structure {{{', '.join(shape.members)}}}")
        unknown = sorted(set(value) - set(shape.members))
        if unknown:
            raise ShorthandError(
                f"{where}: unknown key {unknown[0]!r}; valid keys are: {', '.join(shape.members)}"
            )
        return {k: _coerce(shape.members[k], v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(shape, MapShape):
        if not isinstance(value, dict):
            raise ShorthandError(f"{where}: expected a map {{key=value,...}}")
        return {k: _coerce(shape.value, v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(shape, ListShape):
        items = value if isinstance(value, list) else [value]
        return [_coerce(shape.member, v, f"{where}[{i}]") for i, v in enumerate(items)]
    if not isinstance(value, str):
        return value  # from JSON: already typed, the job layer validates it
    try:
        if shape.type_name in ("integer", "long"):
            return int(value)
        if shape.type_name in ("double", "float"):
            return float(value)
    except ValueError:
        raise ShorthandError(f"{where}: expected a number, got {value!r}") from None
    if shape.type_name == "boolean":
        if value.lower() not in ("true", "false"):
            raise ShorthandError(f"{where}: expected true or false, got {value!r}")
        return value.lower() == "true"
    return value


def parse_option(option: str, shape: Shape, values: list[str]) -> Any:
    """The value of ``--option`` for a member of type ``shape``; ``values`` are its command-line words.

    Raises ShorthandError (a usage error) or UnreadableFileError, both naming the option.
    """
    try:
        return _parse_option(option, shape, values)
    except UnreadableFileError as e:
        raise UnreadableFileError(f"{option}: {e}") from None


def _parse_option(option: str, shape: Shape, values: list[str]) -> Any:
    if isinstance(shape, ListShape):
        if len(values) == 1:
            text = read_value(values[0]).strip()
            if text.startswith("["):
                return _coerce(shape, _json(option, text), option)
        items: list[Any] = []
        for word in values:
            text = read_value(word).strip()
            if isinstance(shape.member, (StructureShape, MapShape)):
                items.append(_json(option, text) if text.startswith("{") else _shorthand(option, text))
            else:
                items.extend(v.strip() for v in text.split(",")) if "," in text else items.append(text)
        return _coerce(shape, items, option)
    text = read_value(" ".join(values))
    if isinstance(shape, (StructureShape, MapShape)):
        stripped = text.strip()
        parsed = _json(option, stripped) if stripped.startswith("{") else _shorthand(option, stripped)
        return _coerce(shape, parsed, option)
    return _coerce(shape, text.strip() if shape.type_name != "string" else text, option)


def _json(option: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ShorthandError(f"{option}: invalid JSON: {e}") from None


def _shorthand(option: str, text: str) -> dict[str, Any]:
    try:
        return parse_shorthand(text)
    except ShorthandError as e:
        raise ShorthandError(f"{option}: {e}") from None
