"""Job input and output: local paths, ``file://``, ``http(s)://`` (input only) and ``s3://``.

The only module of recbatch that imports smart_open, and the only one that talks to S3 and KMS. Every
failure leaves here as :class:`JobIOError`, whose message says what went wrong in words a user can act
on: it becomes the job's failureReason.

* Input: a path is a file or a prefix, with S3's prefix semantics on every storage (``dir/in`` matches
  ``dir/in.jsonl`` and ``dir/in_test/x``; a path ending in ``/`` is a folder). Lines are streamed in
  chunks, decompressed by extension, with a UTF-8 BOM and CRLF endings tolerated.
* Output: nothing is visible before :meth:`OutputObject.commit`. A local file is written beside its final
  name and renamed; an S3 object smaller than :data:`S3_PART_BYTES` is one ``put_object``, a larger one a
  multipart upload completed on commit and aborted otherwise. With a KMS key, both calls carry
  ``ServerSideEncryption="aws:kms"`` and ``SSEKMSKeyId``.
* Endpoints, credentials and region come from the standard AWS settings (``AWS_ENDPOINT_URL_S3``,
  ``AWS_ENDPOINT_URL_KMS``, profiles...): there is no option of ours.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import hashlib
import itertools
import logging
import os
import re
import secrets
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol, cast

import boto3
import botocore.exceptions
import smart_open.compression
import smart_open.http
import smart_open.s3

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "CHECK_OBJECT_NAME",
    "InputFile",
    "JobIOError",
    "OutputObject",
    "check_kms_key",
    "is_local_path",
    "list_input_files",
    "output_uri",
    "read_bytes",
    "read_lines",
    "read_records",
    "write_check_object",
]

log = logging.getLogger(__name__)

#: Name of the object written under the output prefix before any scoring.
CHECK_OBJECT_NAME = "_CHECK"
#: Bytes read from an input per step; lines are split out of these chunks.
READ_CHUNK_BYTES = 1 << 20
#: A longer line fails the job: the input is not JSON Lines, and keeping it would not bound memory.
MAX_LINE_BYTES = 16 << 20
#: A batch of :func:`read_records` ends once its records hold this many bytes, whatever their
#: count: a job holds a few batches and their outputs at once, and counts alone would let long
#: lines (up to MAX_LINE_BYTES each) take gigabytes.
BATCH_BYTES = 32 << 20
#: Local output: after each this many bytes, the kernel is asked to start writing them to disk
#: (see _LocalSink.write).
WRITEBACK_BYTES = 32 << 20
#: http(s) input: seconds to connect, and seconds without a byte, after which the read fails (a server
#: that stalls would otherwise hold the job for ever; S3 has botocore's own timeouts).
HTTP_TIMEOUT_SECONDS = 60.0
#: S3 output below this size is one put_object; from it on, a multipart upload with parts of this size
#: (16 MiB parts allow objects up to 160 GiB within S3's 10,000 parts).
S3_PART_BYTES = 16 << 20

_OUTPUT_SUFFIX = ".out"
# Local output is written to ".<name>.<tag>-<random><suffix>" beside its final name (the tag names
# the job, see partial_output_tag); never an input.
_TEMP_SUFFIX = ".recbatch-tmp"
_BOM = b"\xef\xbb\xbf"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class JobIOError(Exception):
    """Input or output failed; ``str(error)`` is a message for the user (the job's failureReason)."""


@dataclass(frozen=True)
class InputFile:
    """One input file: ``uri`` to pass to :func:`read_lines`, ``name`` for its output object.

    ``name`` is the path relative to the folder of the input prefix (``in_test/x.jsonl`` for the prefix
    ``s3://b/in`` and the object ``s3://b/in_test/x.jsonl``), the base name for a single file; always with
    ``/`` separators.
    """

    uri: str
    name: str


# --------------------------------------------------------------------------------------------------
# Paths


def _scheme(path: str) -> str:
    """The lower-case URI scheme of ``path``, ``""`` for a plain path."""
    match = _SCHEME.match(path)
    return match.group(1).lower() if match else ""


def is_local_path(path: str) -> bool:
    """Whether ``path`` is a plain path or a ``file://`` URI."""
    return _scheme(path) in ("", "file")


def _local_path(path: str) -> str:
    """The file system path of a plain path or ``file://`` URI (as smart_open reads it: no unquoting)."""
    if _scheme(path) == "file":
        path = path[len("file://") :]
        if path.startswith("localhost/"):
            path = path[len("localhost") :]
    return os.path.expanduser(path)  # noqa: PTH111 - Path() would drop a trailing "/", meaning "folder" here


def _split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``; the key is kept raw (no URI decoding)."""
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise JobIOError(f"{uri} names no bucket: expected s3://bucket/key")
    return bucket, key


def _join(prefix: str, name: str) -> str:
    return prefix + name if prefix.endswith("/") else f"{prefix}/{name}"


def output_uri(output_prefix: str, name: str) -> str:
    """The output object for the input file called ``name``: ``<output_prefix>/<name>.out``."""
    return _join(output_prefix, name + _OUTPUT_SUFFIX)


def partial_output_tag(job_arn: str) -> str:
    """The tag in the names of a job's temporary local output files: the same in every run of the job,
    so that a run can find what a killed one left behind (see :func:`remove_partial_outputs`)."""
    return hashlib.sha256(job_arn.encode()).hexdigest()[:12]


def remove_partial_outputs(output_prefix: str, tag: str) -> int:
    """Delete the temporary output files that runs of the job tagged ``tag`` left under a local prefix.

    A run that ends, however it ends, removes its own; these are the files of a run whose process was
    killed. Returns how many were removed; other files, and prefixes that are not local, are left alone
    (S3 shows nothing of an upload that was not completed).
    """
    if not is_local_path(output_prefix):
        return 0
    folder = Path(_local_path(output_prefix))
    if not folder.is_dir():
        return 0
    pattern = re.compile(rf"\..+\.{re.escape(tag)}-[0-9a-f]+{re.escape(_TEMP_SUFFIX)}")
    removed = 0
    for root, _, names in os.walk(folder):
        for name in names:
            if pattern.fullmatch(name):
                Path(root, name).unlink(missing_ok=True)
                removed += 1
    return removed


# --------------------------------------------------------------------------------------------------
# Clients and errors


_Service = Literal["s3", "kms"]


def _client(service: _Service, region: str | None = None) -> Any:
    """A boto3 client configured by the current AWS environment, reused while that environment holds."""
    environment = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))
    return _cached_client(service, region, environment)


@functools.lru_cache(maxsize=16)
def _cached_client(service: _Service, region: str | None, environment: tuple[tuple[str, str], ...]) -> Any:
    # ``environment`` is only part of the cache key: a changed AWS_* variable gives a new client. Each
    # client gets its own Session because boto3's default session is not thread-safe; clients are.
    del environment
    return boto3.session.Session().client(service, region_name=region)


_CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
    }
)
_ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "403", "Forbidden", "AllAccessDisabled"}
)
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_KMS_MESSAGES = {
    "NotFoundException": "the KMS key does not exist (check its ARN, region and account)",
    "DisabledException": "the KMS key is disabled",
    "KMSInvalidStateException": "the KMS key is not in a usable state (disabled or pending deletion?)",
    "KeyUnavailableException": "the KMS key is unavailable",
    "InvalidKeyUsageException": "the KMS key cannot be used for encryption",
    "InvalidArnException": "this is not a valid KMS key ARN",
}


def _find(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """``exc`` or the first exception of type ``kind`` it was raised from (smart_open wraps boto's)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return current
        todo += [getattr(current, "backend_error", None), current.__cause__, current.__context__]
    return None


def _explain_client_error(error: botocore.exceptions.ClientError, bucket: str | None) -> str:
    details: Mapping[str, Any] = error.response.get("Error", {})
    code = str(details.get("Code", ""))
    message = str(details.get("Message") or "").strip()
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code == "NoSuchBucket":
        return f"the S3 bucket {details.get('BucketName') or bucket!r} does not exist"
    if code in _NOT_FOUND_CODES:
        return "no such object"
    if code in _CREDENTIAL_CODES:
        return (
            f"the AWS credentials were rejected ({code}): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or the profile in use"
        )
    if code in _ACCESS_DENIED_CODES:
        return f"access denied: the AWS credentials in use are not allowed to do this ({message or code})"
    kms_code = code.removeprefix("KMS.")
    if kms_code in _KMS_MESSAGES:
        return f"{_KMS_MESSAGES[kms_code]} ({code})"
    if isinstance(status, int) and status >= 500:
        return f"the server failed with HTTP {status} ({code}: {message}) after retries"
    return f"{code}: {message}" if message else code or str(error)


def _explain(exc: BaseException, bucket: str | None = None) -> str:
    """One line saying what ``exc`` means for the user."""
    client_error = _find(exc, botocore.exceptions.ClientError)
    if isinstance(client_error, botocore.exceptions.ClientError):
        return _explain_client_error(client_error, bucket)
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
    if isinstance(exc, botocore.exceptions.NoRegionError):
        return "no AWS region configured: set AWS_DEFAULT_REGION"
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return f"cannot connect to {exc.kwargs.get('endpoint_url', 'the endpoint')}"
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return str(exc)
    if isinstance(exc, ImportError):
        if exc.name in ("backports", "backports.zstd", "compression", "compression.zstd"):
            return "zstandard (.zst) input needs Python 3.14 or the backports.zstd package"
        return f"this compression needs the Python package that provides {exc.name!r}"
    if isinstance(exc, EOFError):
        return "the compressed data ends early (is the file truncated?)"
    if isinstance(exc, FileNotFoundError):
        return "no such file or directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, OSError):
        retried = _GAVE_UP.search(str(exc))
        if retried:
            # smart_open's retry of a multipart upload call keeps none of the errors it saw.
            return (
                f"S3 refused a multipart upload call {retried.group(1)} times "
                "(was the upload aborted, or is S3 unreachable?)"
            )
        return exc.strerror or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


# smart_open.s3's message once its retries of a call are spent: "<bound method ..._api_call of
# <botocore.client.S3 ...>> failed after 6 attempts" (the repr of the call, not its operation).
_GAVE_UP = re.compile(r"^(?:functools\.partial\()?<bound method .*> failed after (\d+) attempts$", re.DOTALL)


def _error(action: str, exc: BaseException, bucket: str | None = None) -> JobIOError:
    return JobIOError(f"{action}: {_explain(exc, bucket)}")


def _reject_key_off_s3(uri: str, kms_key_arn: str | None, action: str) -> None:
    if kms_key_arn and _scheme(uri) != "s3":
        raise JobIOError(
            f"{action}: a kmsKeyArn applies to s3:// paths only (a local or http(s) path has no server to "
            "encrypt it)"
        )


# --------------------------------------------------------------------------------------------------
# Listing input


def list_input_files(path: str, *, output_path: str | None = None) -> list[InputFile]:
    """The input files at ``path``, sorted by name.

    ``path`` is one file (an existing file or object with exactly that name, not ending in ``/``) or a
    prefix: every file or object whose path starts with it, minus those under ``output_path``. An
    ``http(s)://`` URL is always one file.

    Raises:
        JobIOError: nothing matches, or the location cannot be listed.
    """
    scheme = _scheme(path)
    if scheme in ("http", "https"):
        name = urllib.parse.unquote(urllib.parse.urlsplit(path).path.rstrip("/").rsplit("/", 1)[-1])
        _check_output_name(path, name, output_path)
        return [InputFile(uri=path, name=name or "input")]
    if scheme in ("", "file"):
        files, skipped = _list_local(path, output_path)
    elif scheme == "s3":
        files, skipped = _list_s3(path, output_path)
    else:
        raise JobIOError(
            f"cannot read {path}: unsupported scheme {scheme}://; use s3://, http(s):// or a path"
        )
    if not files:
        detail = f" ({skipped} under the output path {output_path} skipped)" if skipped else ""
        raise JobIOError(f"no input files found at {path}{detail}")
    for file in files:
        _check_output_name(file.uri, file.name, output_path)
    return sorted(files, key=lambda f: f.name)


def _check_output_name(uri: str, name: str, output_path: str | None) -> None:
    """JobIOError where the output for ``name`` would land outside a local output prefix."""
    if output_path is not None and is_local_path(output_path) and ".." in name.split("/"):
        raise JobIOError(
            f"the input {uri} has '..' in its name ({name!r}): its output would be written outside "
            f"the output path {output_path}"
        )


def _list_local(path: str, output_path: str | None) -> tuple[list[InputFile], int]:
    local = _local_path(path)
    target = Path(local)
    is_folder = local.endswith(("/", os.sep))
    if not is_folder and target.is_file():
        return [InputFile(uri=local, name=target.name)], 0
    folder, base = (target, "") if is_folder else (target.parent, target.name)
    excluded = None
    if output_path is not None and is_local_path(output_path):
        excluded = Path(_local_path(output_path)).resolve()
    files: list[InputFile] = []
    skipped = 0

    def add(file: Path) -> None:
        nonlocal skipped
        if file.name.endswith(_TEMP_SUFFIX):
            return
        if excluded is not None and _is_within(file.resolve(), excluded):
            skipped += 1
            return
        files.append(InputFile(uri=str(file), name=file.relative_to(folder).as_posix()))

    def fail(error: OSError) -> None:
        raise error

    try:
        for entry in folder.iterdir():
            if not entry.name.startswith(base):
                continue
            if entry.is_dir():
                for root, _, names in os.walk(entry, onerror=fail):
                    for name in names:
                        add(Path(root, name))
            elif entry.is_file():
                add(entry)
    except OSError as e:
        raise _error(f"cannot list {path}", e) from e
    return files, skipped


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _list_s3(path: str, output_path: str | None) -> tuple[list[InputFile], int]:
    bucket, key = _split_s3(path)
    action = f"cannot list {path}"
    try:
        client = _client("s3")
        if key and not key.endswith("/") and _s3_object_exists(client, bucket, key):
            return [InputFile(uri=path, name=key.rsplit("/", 1)[-1])], 0
        excluded = None
        if output_path is not None and _scheme(output_path) == "s3":
            out_bucket, out_key = _split_s3(output_path)
            if out_bucket == bucket:
                excluded = out_key if out_key.endswith("/") or not out_key else out_key + "/"
        folder = key[: key.rfind("/") + 1]
        files: list[InputFile] = []
        skipped = 0
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            for item in page.get("Contents", []):
                object_key: str = item["Key"]
                if object_key.endswith("/"):  # a "folder" marker, as the S3 console creates
                    continue
                if excluded is not None and object_key.startswith(excluded):
                    skipped += 1
                    continue
                files.append(InputFile(uri=f"s3://{bucket}/{object_key}", name=object_key[len(folder) :]))
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        raise _error(action, e, bucket) from e
    return files, skipped


def _s3_object_exists(client: Any, bucket: str, key: str) -> bool:
    """Whether ``key`` is an object; ``False`` on 404 and also 403, which S3 answers for a missing key
    without s3:ListBucket (the listing that follows reports the real problem)."""
    try:
        client.head_object(Bucket=bucket, Key=key)
    except botocore.exceptions.ClientError as e:
        if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (403, 404):
            return False
        raise
    return True


# --------------------------------------------------------------------------------------------------
# Reading


@contextlib.contextmanager
def _open_input(uri: str, *, decompress: bool) -> Iterator[IO[bytes]]:
    """Open ``uri`` for binary reading.

    Objects are opened by bucket and raw key (not through smart_open's URI parser, which would read
    ``user:secret@`` or ``?versionId=`` out of a key); decompression is chosen by extension.
    """
    scheme = _scheme(uri)
    with contextlib.ExitStack() as stack:
        try:
            raw: IO[bytes]
            if scheme in ("", "file"):
                name = _local_path(uri)
                raw = stack.enter_context(open(name, "rb"))
            elif scheme == "s3":
                bucket, name = _split_s3(uri)
                reader = smart_open.s3.open(bucket, name, "rb", client=_client("s3"))
                raw = stack.enter_context(cast("IO[bytes]", reader))
            elif scheme in ("http", "https"):
                name = urllib.parse.urlsplit(uri).path
                reader = smart_open.http.open(uri, "rb", timeout=HTTP_TIMEOUT_SECONDS)
                raw = stack.enter_context(cast("IO[bytes]", reader))
            else:
                raise JobIOError(f"cannot read {uri}: unsupported scheme {scheme}://")
            stream = raw
            if decompress:
                stream = stack.enter_context(
                    smart_open.compression.compression_wrapper(raw, "rb", filename=name)
                )
        except JobIOError:
            raise
        except Exception as e:  # the I/O boundary: whatever a transport raises becomes a user message
            raise _error(f"cannot read {uri}", e, _split_s3(uri)[0] if scheme == "s3" else None) from e
        yield stream


def read_bytes(uri: str) -> bytes:
    """The whole content of ``uri``, as stored (no decompression): for small objects such as a model."""
    with _open_input(uri, decompress=False) as stream:
        try:
            data = stream.read()
        except Exception as e:  # see _open_input
            raise _error(f"cannot read {uri}", e) from e
    return data


def read_lines(uri: str, *, kms_key_arn: str | None = None) -> Iterator[bytes]:
    """Stream the lines of ``uri`` without their line ending.

    Decompresses by extension (``.gz``, ``.bz2``, ``.xz``, ``.zst``...); drops a UTF-8 BOM from the first
    line and the ``\\r`` of CRLF endings; keeps blank lines (the caller skips them). S3 decrypts SSE-KMS
    objects itself, so ``kms_key_arn`` only has to be an S3 input's (check it with :func:`check_kms_key`).
    Memory stays bounded: one chunk of :data:`READ_CHUNK_BYTES` plus one line.

    Raises:
        JobIOError: opening or reading fails (on the first ``next``), a line is longer than
            :data:`MAX_LINE_BYTES`, or a kmsKeyArn is given for a path that is not on S3 (at once).
    """
    _reject_key_off_s3(uri, kms_key_arn, f"cannot read {uri}")
    return _iter_lines(uri)


def read_records(
    uri: str, batch_size: int, *, kms_key_arn: str | None = None, max_bytes: int | None = None
) -> Iterator[list[bytes]]:
    """The records of ``uri`` in batches, in order: its lines as :func:`read_lines` reads them,
    without the blank ones, stripped of surrounding whitespace.

    A batch holds ``batch_size`` records, or fewer when they reach ``max_bytes`` bytes (default
    :data:`BATCH_BYTES`) first: it ends with the record that reaches it. The last batch holds
    what is left. A chunk's lines are stripped and batched together, with no Python step per
    line. Raises as :func:`read_lines`.
    """
    if batch_size < 1:
        msg = f"batch_size must be >= 1, got {batch_size}"
        raise ValueError(msg)
    budget = BATCH_BYTES if max_bytes is None else max_bytes
    if budget < 1:
        msg = f"max_bytes must be >= 1, got {budget}"
        raise ValueError(msg)
    _reject_key_off_s3(uri, kms_key_arn, f"cannot read {uri}")
    return _iter_records(uri, batch_size, budget)


def _iter_records(uri: str, batch_size: int, max_bytes: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    held = 0  # the bytes of batch's records
    for lines in _iter_line_chunks(uri):
        records = [record for line in lines if (record := line.strip())]
        batch.extend(records)
        held += sum(map(len, records))
        start = 0
        while len(batch) - start >= batch_size or (held >= max_bytes and start < len(batch)):
            end = start + batch_size
            if held >= max_bytes:  # where the bytes reach the budget, if before batch_size records
                reach = bisect.bisect_left(list(itertools.accumulate(map(len, batch[start:end]))), max_bytes)
                end = min(end, start + reach + 1)
            taken = batch[start:end]
            held -= sum(map(len, taken))
            yield taken
            start = end
        del batch[:start]
    if batch:
        yield batch


def _iter_lines(uri: str) -> Iterator[bytes]:
    for lines in _iter_line_chunks(uri):
        yield from lines


def _iter_line_chunks(uri: str) -> Iterator[list[bytes]]:
    """The lines of each chunk read (the last one's own)."""
    with _open_input(uri, decompress=True) as stream:
        pending = b""
        first = True
        while True:
            try:
                chunk = stream.read(READ_CHUNK_BYTES)
            except Exception as e:  # see _open_input
                raise _error(f"cannot read {uri}", e) from e
            if not chunk:
                break
            buffer = pending + chunk
            if b"\r" in buffer:
                # CRLF endings; a CR split from its LF by a chunk boundary is still in ``pending``.
                buffer = buffer.replace(b"\r\n", b"\n")
            lines = buffer.split(b"\n")
            pending = lines.pop()
            # Only the line carried over from earlier chunks can be longer than one chunk.
            if len(pending) > MAX_LINE_BYTES or (lines and len(lines[0]) > MAX_LINE_BYTES):
                raise JobIOError(
                    f"cannot read {uri}: a line is longer than {MAX_LINE_BYTES >> 20} MiB "
                    "(input must be JSON Lines, one record per line)"
                )
            if first and lines:
                lines[0] = lines[0].removeprefix(_BOM)
                first = False
            yield lines
        if first:
            pending = pending.removeprefix(_BOM)
        if pending:
            yield [pending.removesuffix(b"\r")]


# --------------------------------------------------------------------------------------------------
# Writing


class _Sink(Protocol):
    def write(self, data: bytes) -> None: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...


class _LocalSink:
    """A temporary file beside the final one, renamed over it on commit (atomic on one file system)."""

    def __init__(self, path: str, tag: str | None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            unique = secrets.token_hex(6) if tag is None else f"{tag}-{secrets.token_hex(6)}"
            self.temp_path = self.path.with_name(f".{self.path.name}.{unique}{_TEMP_SUFFIX}")
            try:
                # 0o666 minus the umask, as a plain open() would give the final file.
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
                fd = os.open(self.temp_path, flags, 0o666)
            except FileExistsError:
                continue
            break
        self.file = os.fdopen(fd, "wb", buffering=1 << 20)
        self._written = 0  # bytes written, and those the kernel was asked to write back
        self._written_back = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self._written += len(data)
        if self._written - self._written_back >= WRITEBACK_BYTES and hasattr(os, "posix_fadvise"):
            # Start writing the output to disk now, in the background, rather than all at once in
            # commit's fsync, where the job waits on it (a 614 MB ranking output: fsync 0.16-0.18 s
            # before, 0.01 s after). On Linux, DONTNEED starts the writeback of the range's dirty
            # pages (and drops its clean ones, which nothing reads again).
            self.file.flush()
            os.posix_fadvise(
                self.file.fileno(),
                self._written_back,
                self._written - self._written_back,
                os.POSIX_FADV_DONTNEED,
            )
            self._written_back = self._written

    def commit(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        self.temp_path.replace(self.path)

    def abort(self) -> None:
        self.file.close()
        self.temp_path.unlink(missing_ok=True)


class _MultipartUpload(smart_open.s3.MultipartWriter):
    """smart_open's multipart writer, minus completing an upload from the garbage collector.

    io.IOBase's finalizer calls ``close()``, and ``MultipartWriter.close()`` *completes* the upload: an
    upload whose abort failed (network down) would appear, partial, whenever the writer is collected.
    Here an upload is completed by :meth:`OutputObject.commit` only; one left behind stays invisible
    (S3 lifecycle rules can expire it).
    """

    def __del__(self) -> None:
        """Do nothing: see the class docstring."""


class _S3Sink:
    """Buffer up to one part; then a multipart upload (completed on commit), else one put_object."""

    def __init__(self, uri: str, kms_key_arn: str | None) -> None:
        self.bucket, self.key = _split_s3(uri)
        if not self.key or self.key.endswith("/"):
            raise JobIOError(f"cannot write {uri}: the URI names no object")
        self.client = _client("s3")
        self.encryption = (
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn} if kms_key_arn else {}
        )
        self.buffer = bytearray()
        self.upload: _MultipartUpload | None = None

    def write(self, data: bytes) -> None:
        if self.upload is not None:
            self.upload.write(data)
            return
        self.buffer += data
        if len(self.buffer) >= S3_PART_BYTES:
            self.upload = _MultipartUpload(
                self.bucket,
                self.key,
                part_size=S3_PART_BYTES,
                client=self.client,
                # smart_open itself falls back to put_object for an empty upload: encrypt that too.
                client_kwargs={
                    "S3.Client.create_multipart_upload": self.encryption,
                    "S3.Client.put_object": self.encryption,
                },
            )
            self.upload.write(self.buffer)
            self.buffer = bytearray()

    def commit(self) -> None:
        if self.upload is not None:
            self.upload.close()
        else:
            self.client.put_object(
                Bucket=self.bucket, Key=self.key, Body=bytes(self.buffer), **self.encryption
            )

    def abort(self) -> None:
        self.buffer = bytearray()
        if self.upload is not None:
            self.upload.terminate()


class OutputObject:
    """One output file or object; nothing of it is visible until :meth:`commit`.

    Use it as a context manager: leaving the block normally commits, an exception aborts::

        with OutputObject("s3://bucket/out/in.jsonl.out", kms_key_arn=key) as out:
            out.write(b'{"input": ...}\\n')

    ``tag`` (:func:`partial_output_tag` of the job) goes into the name of a local output's temporary
    file, so that :func:`remove_partial_outputs` can find it if the process is killed before the end.

    Raises:
        JobIOError: the destination is not writable (from the constructor for local paths, from
            ``write`` or ``commit`` for S3), or a kmsKeyArn is given for a path that is not on S3.
    """

    def __init__(self, uri: str, *, kms_key_arn: str | None = None, tag: str | None = None) -> None:
        self.uri = uri
        self._action = f"cannot write {uri}" + (f" with KMS key {kms_key_arn}" if kms_key_arn else "")
        self._state = "open"
        _reject_key_off_s3(uri, kms_key_arn, f"cannot write {uri}")
        scheme = _scheme(uri)
        self._bucket = _split_s3(uri)[0] if scheme == "s3" else None
        self._sink: _Sink
        try:
            if scheme in ("", "file"):
                self._sink = _LocalSink(_local_path(uri), tag)
            elif scheme == "s3":
                self._sink = _S3Sink(uri, kms_key_arn)
            else:
                raise JobIOError(f"cannot write {uri}: output must be an s3:// URI or a local path")
        except JobIOError:
            raise
        except Exception as e:  # the I/O boundary, as in _open_input
            raise _error(self._action, e, self._bucket) from e

    def _ensure_open(self) -> None:
        if self._state != "open":
            raise ValueError(f"OutputObject({self.uri!r}) is already {self._state}")

    def write(self, data: bytes) -> None:
        """Append ``data``."""
        self._ensure_open()
        try:
            self._sink.write(data)
        except Exception as e:  # see _open_input
            raise _error(self._action, e, self._bucket) from e

    def commit(self) -> None:
        """Make the object visible, whole. On failure it is aborted and JobIOError raised."""
        self._ensure_open()
        try:
            self._sink.commit()
        except Exception as e:  # see _open_input
            self.abort()
            raise _error(self._action, e, self._bucket) from e
        self._state = "committed"

    def abort(self) -> None:
        """Discard everything written; nothing becomes visible. Never raises (a failure is logged)."""
        if self._state != "open":
            return
        self._state = "aborted"
        try:
            self._sink.abort()
        except Exception as e:  # noqa: BLE001 - cleanup must not hide the error that led here
            log.warning("could not clean up the partial output %s: %s", self.uri, _explain(e, self._bucket))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._state != "open":
            return
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_check_object(output_prefix: str, *, kms_key_arn: str | None = None) -> None:
    """Write the empty ``<output_prefix>/_CHECK``, so an unusable destination fails a job before scoring.

    With a KMS key the key is checked first (:func:`check_kms_key`): S3 servers differ in what they do
    with a disabled key, the check does not.
    """
    uri = _join(output_prefix, CHECK_OBJECT_NAME)
    _reject_key_off_s3(uri, kms_key_arn, f"cannot write {uri}")
    if kms_key_arn:
        check_kms_key(kms_key_arn)
    OutputObject(uri, kms_key_arn=kms_key_arn).commit()


# --------------------------------------------------------------------------------------------------
# KMS


def check_kms_key(kms_key_arn: str) -> None:
    """Check with kms:DescribeKey that ``kms_key_arn`` exists, is enabled and can encrypt S3 objects.

    The KMS client uses the key's own region (from the ARN), so a key in another region is found.

    Raises:
        JobIOError: the key is missing, not enabled, not a symmetric encryption key, or KMS cannot be
            reached or refuses the call.
    """
    action = f"cannot use KMS key {kms_key_arn}"
    parts = kms_key_arn.split(":")
    region = parts[3] if len(parts) > 5 and parts[0] == "arn" and parts[3] else None
    try:
        metadata: Mapping[str, Any] = _client("kms", region).describe_key(KeyId=kms_key_arn)["KeyMetadata"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
        raise _error(action, e) from e
    state = metadata.get("KeyState", "Enabled" if metadata.get("Enabled", True) else "Disabled")
    if state != "Enabled":
        raise JobIOError(f"{action}: the key is {state}; S3 can only encrypt with an Enabled key")
    spec = metadata.get("KeySpec", "SYMMETRIC_DEFAULT")
    usage = metadata.get("KeyUsage", "ENCRYPT_DECRYPT")
    if spec != "SYMMETRIC_DEFAULT" or usage != "ENCRYPT_DECRYPT":
        raise JobIOError(
            f"{action}: it is a {spec} key for {usage}; S3 server-side encryption needs a symmetric "
            "encryption key (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT)"
        )
