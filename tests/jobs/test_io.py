"""recbatch.jobs.io against real files, a real HTTP server, and the real S3 (SeaweedFS) + KMS (moto) servers."""

from __future__ import annotations

import bz2
import functools
import gc
import gzip
import hashlib
import http.server
import itertools
import lzma
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recbatch.jobs import io as jobio
from recbatch.jobs.io import InputFile, JobIOError, OutputObject

# --------------------------------------------------------------------------------------------------
# helpers


def _touch(root: Path, *names: str, data: bytes = b"{}\n") -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _names(files: list[InputFile]) -> list[str]:
    return [f.name for f in files]


def _all_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _put(s3: Any, bucket: str, *keys: str, data: bytes = b"{}\n") -> None:
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=data)


def _keys(s3: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def _pending_uploads(s3: Any, bucket: str) -> list[str]:
    return [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


# Every awkward shape at once: BOM, CRLF and LF endings, a blank line, an inner "\r", no final newline.
LINES_RAW = b'\xef\xbb\xbf{"userId": "1"}\r\n{"userId": "2"}\n\r\n\n{"userId": "a\\rb"}\r\n{"userId": "3"}'
LINES = [b'{"userId": "1"}', b'{"userId": "2"}', b"", b"", b'{"userId": "a\\rb"}', b'{"userId": "3"}']


# --------------------------------------------------------------------------------------------------
# paths


def test_is_local_path() -> None:
    assert jobio.is_local_path("data/in.jsonl")
    assert jobio.is_local_path("/abs/in/")
    assert jobio.is_local_path("file:///abs/in.jsonl")
    assert not jobio.is_local_path("s3://bucket/in.jsonl")
    assert not jobio.is_local_path("https://example.com/in.jsonl")


def test_output_uri_joins_with_one_slash() -> None:
    assert jobio.output_uri("s3://b/out/", "in.jsonl") == "s3://b/out/in.jsonl.out"
    assert jobio.output_uri("s3://b/out", "sub/in.jsonl") == "s3://b/out/sub/in.jsonl.out"
    assert jobio.output_uri("s3://b", "in.jsonl") == "s3://b/in.jsonl.out"
    assert jobio.output_uri("/tmp/out", "x") == "/tmp/out/x.out"
    assert jobio.output_uri("file:///", "x") == "file:///x.out"


# --------------------------------------------------------------------------------------------------
# listing local input


@pytest.fixture
def local_tree(tmp_path: Path) -> Path:
    _touch(
        tmp_path,
        "in.jsonl",
        "in_test/x.jsonl",
        "in/a.jsonl",
        "in/deep/b.jsonl.gz",
        "other.jsonl",
        "xin.jsonl",
    )
    return tmp_path


def test_local_file_is_one_file(local_tree: Path) -> None:
    path = str(local_tree / "in.jsonl")
    assert jobio.list_input_files(path) == [InputFile(uri=path, name="in.jsonl")]


def test_local_prefix_matches_like_s3(local_tree: Path) -> None:
    files = jobio.list_input_files(str(local_tree / "in"))
    assert _names(files) == ["in.jsonl", "in/a.jsonl", "in/deep/b.jsonl.gz", "in_test/x.jsonl"]
    assert [Path(f.uri) for f in files] == [local_tree / f.name for f in files]


def test_local_trailing_slash_is_a_folder(local_tree: Path) -> None:
    files = jobio.list_input_files(f"{local_tree}/in/")
    assert _names(files) == ["a.jsonl", "deep/b.jsonl.gz"]
    assert Path(files[1].uri) == local_tree / "in" / "deep" / "b.jsonl.gz"


def test_local_relative_prefix(local_tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(local_tree)
    files = jobio.list_input_files("in_")
    assert files == [InputFile(uri="in_test/x.jsonl", name="in_test/x.jsonl")]


def test_file_uri_lists_and_reads(local_tree: Path) -> None:
    (local_tree / "in.jsonl").write_bytes(b"a\nb\n")
    files = jobio.list_input_files(f"file://{local_tree}/in.")
    assert _names(files) == ["in.jsonl"]
    assert list(jobio.read_lines(f"file://{local_tree}/in.jsonl")) == [b"a", b"b"]
    assert list(jobio.read_lines(files[0].uri)) == [b"a", b"b"]


def test_local_listing_skips_the_output_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _touch(
        tmp_path,
        "data/a.jsonl",
        "data/out/a.jsonl.out",
        "data/out/_CHECK",
        "data/out/.a.jsonl.out.1.recbatch-tmp",
    )
    _touch(tmp_path, "data/outer.jsonl")
    files = jobio.list_input_files(f"{tmp_path}/data/", output_path=f"{tmp_path}/data/out")
    assert _names(files) == ["a.jsonl", "outer.jsonl"]
    # Also when the output path is spelled differently (relative, trailing slash).
    monkeypatch.chdir(tmp_path)
    files = jobio.list_input_files("data/", output_path="./data/out/")
    assert _names(files) == ["a.jsonl", "outer.jsonl"]


def test_local_listing_never_returns_partial_output(tmp_path: Path) -> None:
    _touch(tmp_path, "in/a.jsonl", "in/.a.jsonl.out.0123.recbatch-tmp")
    assert _names(jobio.list_input_files(f"{tmp_path}/in/")) == ["a.jsonl"]


def test_local_nothing_matches(tmp_path: Path) -> None:
    _touch(tmp_path, "in.jsonl")
    with pytest.raises(JobIOError, match=r"no input files found at .*nothing"):
        jobio.list_input_files(f"{tmp_path}/nothing")
    with pytest.raises(JobIOError, match=r"cannot list .*missing-dir/in: no such file or directory"):
        jobio.list_input_files(f"{tmp_path}/missing-dir/in")


def test_local_everything_under_output_says_so(tmp_path: Path) -> None:
    _touch(tmp_path, "out/a.jsonl.out")
    with pytest.raises(JobIOError, match=r"1 under the output path .* skipped"):
        jobio.list_input_files(f"{tmp_path}/out/", output_path=f"{tmp_path}/out")


def test_unsupported_scheme() -> None:
    with pytest.raises(JobIOError, match="unsupported scheme ftp://"):
        jobio.list_input_files("ftp://host/in.jsonl")


# --------------------------------------------------------------------------------------------------
# reading local input


_COMPRESSORS: list[tuple[str, Callable[[bytes], bytes]]] = [
    ("", bytes),
    (".gz", gzip.compress),
    (".bz2", bz2.compress),
    (".xz", lzma.compress),
]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 1 << 20])
@pytest.mark.parametrize(("suffix", "compress"), _COMPRESSORS, ids=["plain", "gz", "bz2", "xz"])
def test_read_lines_bom_crlf_blank_and_compression(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    chunk: int,
    suffix: str,
    compress: Callable[[bytes], bytes],
) -> None:
    # Tiny chunks split the BOM, a CRLF pair and every line across reads.
    monkeypatch.setattr(jobio, "READ_CHUNK_BYTES", chunk)
    path = tmp_path / f"in.jsonl{suffix}"
    path.write_bytes(compress(LINES_RAW))
    assert list(jobio.read_lines(str(path))) == LINES


@settings(max_examples=100, deadline=None)
@given(
    lines=st.lists(
        st.sampled_from([b"", b" ", b"\t", b"a", b" b ", b"cc\r", b'{"userId": "u"}']), max_size=40
    ),
    chunk=st.integers(1, 12),
    batch_size=st.integers(1, 7),
    max_bytes=st.one_of(st.none(), st.integers(1, 40)),
)
def test_read_records_batches_the_stripped_lines(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[bytes],
    chunk: int,
    batch_size: int,
    max_bytes: int | None,
) -> None:
    # Lines split across reads; blank lines dropped, the others stripped, batched in order: a
    # batch ends at batch_size records or with the record that brings it to max_bytes bytes.
    path = tmp_path_factory.mktemp("records") / "in.jsonl"
    path.write_bytes(b"\n".join(lines))
    records = [line.strip() for line in lines if line.strip()]
    budget = jobio.BATCH_BYTES if max_bytes is None else max_bytes
    expected: list[list[bytes]] = [[]]
    for record in records:
        if len(expected[-1]) == batch_size or sum(map(len, expected[-1])) >= budget:
            expected.append([])
        expected[-1].append(record)
    expected = [batch for batch in expected if batch]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jobio, "READ_CHUNK_BYTES", chunk)
        assert list(jobio.read_records(str(path), batch_size, max_bytes=max_bytes)) == expected
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        jobio.read_records(str(path), 0)
    with pytest.raises(ValueError, match="max_bytes must be >= 1, got 0"):
        jobio.read_records(str(path), 1, max_bytes=0)


def test_read_records_bounds_a_batch_by_bytes(tmp_path: Path) -> None:
    # Long lines end a batch early, short ones fill it: memory follows bytes, not counts.
    path = tmp_path / "in.jsonl"
    lines = [b"x" * 1000] * 5 + [b"y"] * 10
    path.write_bytes(b"\n".join(lines))
    batches = list(jobio.read_records(str(path), 8, max_bytes=2500))
    assert [len(batch) for batch in batches] == [3, 8, 4]  # 3,000 bytes; 2 long and 6 short; the rest
    assert [record for batch in batches for record in batch] == lines


def test_read_lines_final_newline_and_empty_file(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x\r\ny\r\n")
    (tmp_path / "bom-only").write_bytes(b"\xef\xbb\xbf")
    (tmp_path / "empty").write_bytes(b"")
    assert list(jobio.read_lines(str(tmp_path / "a"))) == [b"x", b"y"]
    assert list(jobio.read_lines(str(tmp_path / "bom-only"))) == []
    assert list(jobio.read_lines(str(tmp_path / "empty"))) == []


def test_read_lines_bom_only_at_start(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\xef\xbb\xbfa\n\xef\xbb\xbfb\n")
    assert list(jobio.read_lines(str(path))) == [b"a", b"\xef\xbb\xbfb"]


def test_read_lines_is_lazy_and_streams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobio, "READ_CHUNK_BYTES", 64)
    path = tmp_path / "big.jsonl.gz"
    with gzip.open(path, "wb") as f:
        for i in range(20_000):
            f.write(b'{"userId": "%d"}\n' % i)
    lines = jobio.read_lines(str(path))
    assert next(lines) == b'{"userId": "0"}'
    assert sum(1 for _ in lines) == 19_999


def test_read_lines_missing_file(tmp_path: Path) -> None:
    lines = jobio.read_lines(str(tmp_path / "missing.jsonl"))
    with pytest.raises(JobIOError, match=r"cannot read .*missing.jsonl: no such file or directory$"):
        next(lines)


def test_read_lines_corrupt_and_truncated_gzip(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl.gz").write_bytes(b"this is not gzip\n")
    (tmp_path / "cut.jsonl.gz").write_bytes(gzip.compress(b'{"userId": "1"}\n' * 1000)[:-20])
    with pytest.raises(JobIOError, match=r"cannot read .*bad.jsonl.gz: .*gzip"):
        list(jobio.read_lines(str(tmp_path / "bad.jsonl.gz")))
    with pytest.raises(JobIOError, match=r"cannot read .*cut.jsonl.gz: .*truncated"):
        list(jobio.read_lines(str(tmp_path / "cut.jsonl.gz")))


def test_read_lines_rejects_an_endless_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobio, "MAX_LINE_BYTES", 1000)
    monkeypatch.setattr(jobio, "READ_CHUNK_BYTES", 256)
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"ok\n" + b"x" * 5000)
    lines = jobio.read_lines(str(path))
    assert next(lines) == b"ok"
    with pytest.raises(JobIOError, match="a line is longer than"):
        next(lines)


@pytest.mark.parametrize(("length", "refused"), [(1000, False), (1001, True), (1100, True)])
def test_read_lines_limit_is_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, length: int, refused: bool
) -> None:
    # A long line that ends within a later chunk counts too, not only an unfinished tail.
    monkeypatch.setattr(jobio, "MAX_LINE_BYTES", 1000)
    monkeypatch.setattr(jobio, "READ_CHUNK_BYTES", 256)
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"x" * length + b"\nok\n")
    if refused:
        with pytest.raises(JobIOError, match="a line is longer than"):
            list(jobio.read_lines(str(path)))
    else:
        assert list(jobio.read_lines(str(path))) == [b"x" * length, b"ok"]


def test_read_lines_key_on_local_path_is_rejected_at_once(tmp_path: Path) -> None:
    with pytest.raises(JobIOError, match="kmsKeyArn applies to s3:// paths only"):
        jobio.read_lines(str(tmp_path / "in.jsonl"), kms_key_arn="arn:aws:kms:us-east-1:1:key/x")


def test_read_bytes_does_not_decompress(tmp_path: Path) -> None:
    data = gzip.compress(b"payload")
    (tmp_path / "model.gz").write_bytes(data)
    assert jobio.read_bytes(str(tmp_path / "model.gz")) == data
    with pytest.raises(JobIOError, match="no such file"):
        jobio.read_bytes(str(tmp_path / "missing.npz"))


# --------------------------------------------------------------------------------------------------
# http(s) input


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on loopback serving ``tmp_path``."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_http_input(http_root: tuple[str, Path]) -> None:
    url, root = http_root
    (root / "in.jsonl.gz").write_bytes(gzip.compress(LINES_RAW))
    files = jobio.list_input_files(f"{url}/in.jsonl.gz")
    assert files == [InputFile(uri=f"{url}/in.jsonl.gz", name="in.jsonl.gz")]
    assert list(jobio.read_lines(files[0].uri)) == LINES
    with pytest.raises(JobIOError, match=r"cannot read http://.*/missing.jsonl: .*404"):
        list(jobio.read_lines(f"{url}/missing.jsonl"))


def test_an_input_name_that_climbs_out_of_a_local_output_path_is_refused(
    http_root: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An http URL's last segment is percent-decoded ("..%2F" is "../"), and an S3 key may hold
    # ".." segments (some servers store "in/../../x" as it is): their outputs would land outside
    # a local output path. An S3 output path takes such names as plain keys.
    url = f"{http_root[0]}/x/..%2F..%2Fescaped"
    with pytest.raises(JobIOError, match=r"'\.\./\.\./escaped'\): its output would be written outside"):
        jobio.list_input_files(url, output_path=str(tmp_path / "out"))
    assert jobio.list_input_files(url, output_path="s3://bucket/out/")[0].name == "../../escaped"
    climbing = InputFile(uri="s3://bucket/in/../../x.jsonl", name="../../x.jsonl")
    monkeypatch.setattr(jobio, "_list_s3", lambda path, output_path: ([climbing], 0))
    with pytest.raises(
        JobIOError, match=r"the input s3://bucket/in/\.\./\.\./x\.jsonl has '\.\.' in its name"
    ):
        jobio.list_input_files("s3://bucket/in/", output_path=f"file://{tmp_path}/out/")
    assert jobio.list_input_files("s3://bucket/in/", output_path="s3://bucket/out/") == [climbing]


def test_a_stalled_http_input_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    # A server that accepts and never answers held the job for ever (no timeout by default).
    monkeypatch.setattr(jobio, "HTTP_TIMEOUT_SECONDS", 0.5)
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/in.jsonl"
        started = time.monotonic()
        with pytest.raises(JobIOError, match=r"cannot read http://127\.0\.0\.1:\d+/in\.jsonl"):
            list(jobio.read_lines(url))
        assert time.monotonic() - started < 10
    finally:
        listener.close()


def test_messages_for_a_missing_zstd_module_and_spent_upload_retries() -> None:
    assert "backports.zstd" in jobio._explain(ImportError("no zstd", name="backports"))
    spent = OSError(
        "<bound method ClientCreator._create_api_method.<locals>._api_call of "
        "<botocore.client.S3 object at 0x7f0>> failed after 6 attempts"
    )
    assert jobio._explain(spent) == (
        "S3 refused a multipart upload call 6 times (was the upload aborted, or is S3 unreachable?)"
    )


def test_http_is_not_an_output(http_root: tuple[str, Path]) -> None:
    with pytest.raises(JobIOError, match="output must be an s3:// URI or a local path"):
        OutputObject(f"{http_root[0]}/out.jsonl")


# --------------------------------------------------------------------------------------------------
# local output


def test_local_output_is_invisible_until_commit(tmp_path: Path) -> None:
    target = tmp_path / "out" / "sub" / "in.jsonl.out"
    with OutputObject(str(target)) as out:
        out.write(b"line 1\n")
        out.write(b"line 2\n")
        assert not target.exists()
        assert len(list(target.parent.iterdir())) == 1  # only the temporary file
    assert target.read_bytes() == b"line 1\nline 2\n"
    assert _all_files(tmp_path) == ["out/sub/in.jsonl.out"]


def test_local_output_started_on_disk_as_it_goes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every few bytes the kernel is asked to write the output back (flushed first): the file
    # still holds every byte, in order, once committed, and nothing is visible before.
    monkeypatch.setattr(jobio, "WRITEBACK_BYTES", 10)
    advised: list[tuple[int, int]] = []
    advise = os.posix_fadvise if hasattr(os, "posix_fadvise") else None

    def record(fd: int, offset: int, length: int, advice: int) -> None:
        advised.append((offset, length))
        if advise is not None:
            advise(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", record, raising=False)
    target = tmp_path / "in.jsonl.out"
    chunks = [b"%d" % i * (i % 7) + b"\n" for i in range(200)]
    with OutputObject(str(target)) as out:
        for chunk in chunks:
            out.write(chunk)
        assert not target.exists()
    assert target.read_bytes() == b"".join(chunks)
    # Consecutive ranges from the start, each at least WRITEBACK_BYTES long.
    assert advised and advised[0][0] == 0
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(advised))
    assert all(n >= 10 for _, n in advised)


def test_local_output_abort_keeps_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "in.jsonl.out"
    target.write_bytes(b"previous run\n")
    with pytest.raises(RuntimeError, match="scoring failed"), OutputObject(str(target)) as out:
        out.write(b"half of the new ")
        raise RuntimeError("scoring failed")
    assert target.read_bytes() == b"previous run\n"
    assert _all_files(tmp_path) == ["in.jsonl.out"]
    with pytest.raises(ValueError, match="already aborted"):
        out.write(b"more")


def test_local_output_commit_replaces_and_explicit_abort(tmp_path: Path) -> None:
    target = tmp_path / "x.out"
    target.write_bytes(b"old")
    out = OutputObject(f"file://{target}")
    out.write(b"new")
    out.commit()
    assert target.read_bytes() == b"new"
    other = OutputObject(str(tmp_path / "y.out"))
    other.write(b"data")
    other.abort()
    other.abort()  # idempotent
    assert _all_files(tmp_path) == ["x.out"]


def test_partial_outputs_of_a_killed_run_are_found_by_tag(tmp_path: Path) -> None:
    # A run killed mid-write leaves its temporary files (OutputObject never committed nor aborted);
    # remove_partial_outputs deletes those of its job only, in subfolders too, and nothing else.
    tag = jobio.partial_output_tag("arn:aws:personalize:us-east-1:000000000000:batch-inference-job/a")
    assert tag == jobio.partial_output_tag("arn:aws:personalize:us-east-1:000000000000:batch-inference-job/a")
    assert tag != jobio.partial_output_tag("arn:aws:personalize:us-east-1:000000000000:batch-inference-job/b")
    killed = [
        OutputObject(str(tmp_path / "out" / name), tag=tag) for name in ("a.jsonl.out", "sub/[b].jsonl.out")
    ]
    for out in killed:
        out.write(b"half a line")
        out._sink.file.close()  # type: ignore[attr-defined]  # as the killed process's exit would
    other = OutputObject(str(tmp_path / "out" / "a.jsonl.out"), tag="0123456789ab")
    other.write(b"another job's")
    untagged = OutputObject(str(tmp_path / "out" / "c.jsonl.out"))
    untagged.write(b"no tag")
    _touch(tmp_path, "out/a.jsonl.out", f"out/{tag}-0a.recbatch-tmp", f"out/.x.{tag}-0a.recbatch-tmpx")
    before = _all_files(tmp_path)
    assert len(before) == 7
    assert jobio.remove_partial_outputs(str(tmp_path / "out"), tag) == 2
    assert _all_files(tmp_path) == [
        name
        for name in before
        if not (name.endswith(".recbatch-tmp") and f".{tag}-" in name and "/." in name)
    ]
    assert len(_all_files(tmp_path)) == 5
    assert jobio.remove_partial_outputs(str(tmp_path / "out") + "/", tag) == 0
    assert jobio.remove_partial_outputs(str(tmp_path / "missing"), tag) == 0
    assert jobio.remove_partial_outputs("s3://bucket/out/", tag) == 0
    other.commit()
    untagged.abort()
    assert (tmp_path / "out" / "a.jsonl.out").read_bytes() == b"another job's"


def test_local_output_mode_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        OutputObject(str(tmp_path / "x.out")).commit()
    finally:
        os.umask(old)
    assert (tmp_path / "x.out").stat().st_mode & 0o777 == 0o644


def test_local_output_rejects_a_kms_key(tmp_path: Path) -> None:
    with pytest.raises(JobIOError, match="kmsKeyArn applies to s3:// paths only"):
        OutputObject(str(tmp_path / "x.out"), kms_key_arn="arn:aws:kms:us-east-1:1:key/x")
    with pytest.raises(JobIOError, match="kmsKeyArn applies to s3:// paths only"):
        jobio.write_check_object(str(tmp_path), kms_key_arn="arn:aws:kms:us-east-1:1:key/x")
    assert _all_files(tmp_path) == []


def test_local_check_object_and_unwritable_destination(tmp_path: Path) -> None:
    jobio.write_check_object(str(tmp_path / "new" / "out"))
    assert (tmp_path / "new" / "out" / "_CHECK").read_bytes() == b""
    (tmp_path / "a-file").write_bytes(b"")
    # A path through a regular file cannot be a folder, whoever runs the test (root included).
    with pytest.raises(JobIOError, match=r"cannot write .*a-file/out/_CHECK: "):
        jobio.write_check_object(str(tmp_path / "a-file" / "out"))


# --------------------------------------------------------------------------------------------------
# S3: listing and reading


def test_s3_file_vs_prefix(s3_env: Any, s3_bucket: str) -> None:
    s3 = s3_env.client("s3")
    _put(
        s3,
        s3_bucket,
        "data/in.jsonl",
        "data/in.jsonl.bak",
        "data/in_test/x.jsonl",
        "data/in/a.jsonl",
        "data/in/",  # a folder marker
        "data/in/out/a.jsonl.out",
        "data/in/out/_CHECK",
        "data/other.jsonl",
        "elsewhere/in.jsonl",
    )
    base = f"s3://{s3_bucket}/data"
    # An object with exactly that key is one file, although it is also a prefix of in.jsonl.bak.
    assert jobio.list_input_files(f"{base}/in.jsonl") == [InputFile(uri=f"{base}/in.jsonl", name="in.jsonl")]
    # A prefix: S3 semantics; names relative to the prefix's folder; the output prefix skipped.
    files = jobio.list_input_files(f"{base}/in", output_path=f"{base}/in/out/")
    assert _names(files) == ["in.jsonl", "in.jsonl.bak", "in/a.jsonl", "in_test/x.jsonl"]
    assert [f.uri for f in files] == [f"{base}/{f.name}" for f in files]
    # A folder; the output prefix written without its trailing slash is the same prefix.
    files = jobio.list_input_files(f"{base}/in/", output_path=f"{base}/in/out")
    assert files == [InputFile(uri=f"{base}/in/a.jsonl", name="a.jsonl")]
    # Without an output path, nothing is skipped (but folder markers).
    assert _names(jobio.list_input_files(f"{base}/in/")) == ["a.jsonl", "out/_CHECK", "out/a.jsonl.out"]
    # The whole bucket.
    assert len(jobio.list_input_files(f"s3://{s3_bucket}")) == 8


def test_s3_output_in_another_bucket_skips_nothing(s3_env: Any, s3_bucket: str) -> None:
    _put(s3_env.client("s3"), s3_bucket, "in/out/a.jsonl")
    files = jobio.list_input_files(f"s3://{s3_bucket}/in/", output_path="s3://another-bucket/in/out/")
    assert _names(files) == ["out/a.jsonl"]


def test_s3_listing_errors(s3_env: Any, s3_bucket: str) -> None:
    _put(s3_env.client("s3"), s3_bucket, "out/a.jsonl.out")
    with pytest.raises(JobIOError, match=f"no input files found at s3://{s3_bucket}/in/$"):
        jobio.list_input_files(f"s3://{s3_bucket}/in/")
    with pytest.raises(JobIOError, match=r"\(1 under the output path .* skipped\)"):
        jobio.list_input_files(f"s3://{s3_bucket}/out", output_path=f"s3://{s3_bucket}/out/")
    with pytest.raises(JobIOError, match=r"cannot list s3://recbatch-no-such-bucket/in/: .*does not exist"):
        jobio.list_input_files("s3://recbatch-no-such-bucket/in/")


def test_s3_rejected_credentials(s3_env: Any, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _put(s3_env.client("s3"), s3_bucket, "in.jsonl")
    assert len(jobio.list_input_files(f"s3://{s3_bucket}/in")) == 1
    # A changed environment must reach a new client, not the one cached for the old credentials.
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(JobIOError, match="credentials were rejected"):
        jobio.list_input_files(f"s3://{s3_bucket}/in")


def test_s3_unreachable_endpoint(s3_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(JobIOError, match=r"cannot connect to http://127.0.0.1:9"):
        jobio.list_input_files("s3://bucket/in/")


def test_s3_read_lines_gzip_bom_crlf(s3_env: Any, s3_bucket: str, kms_key_arn: str) -> None:
    s3 = s3_env.client("s3")
    s3.put_object(Bucket=s3_bucket, Key="in/a.jsonl.gz", Body=gzip.compress(LINES_RAW))
    # An SSE-KMS input: S3 decrypts it; the reader needs nothing but the key being an S3 input's.
    s3.put_object(
        Bucket=s3_bucket,
        Key="in/b.jsonl",
        Body=LINES_RAW,
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=kms_key_arn,
    )
    files = jobio.list_input_files(f"s3://{s3_bucket}/in/")
    assert _names(files) == ["a.jsonl.gz", "b.jsonl"]
    assert list(jobio.read_lines(files[0].uri)) == LINES
    assert list(jobio.read_lines(files[1].uri, kms_key_arn=kms_key_arn)) == LINES


def test_s3_keys_are_not_parsed_as_uris(s3_env: Any, s3_bucket: str) -> None:
    key = "in/user:secret@odd key?versionId=1#x.jsonl"
    s3_env.client("s3").put_object(Bucket=s3_bucket, Key=key, Body=b"a\n")
    (file,) = jobio.list_input_files(f"s3://{s3_bucket}/in/")
    assert file.name == "user:secret@odd key?versionId=1#x.jsonl"
    assert list(jobio.read_lines(file.uri)) == [b"a"]


def test_s3_read_errors(s3_env: Any, s3_bucket: str) -> None:
    with pytest.raises(JobIOError, match=f"cannot read s3://{s3_bucket}/missing.jsonl: no such object"):
        list(jobio.read_lines(f"s3://{s3_bucket}/missing.jsonl"))
    with pytest.raises(JobIOError, match=r"cannot read s3://recbatch-no-such-bucket/x: .*does not exist"):
        jobio.read_bytes("s3://recbatch-no-such-bucket/x")


def test_s3_read_bytes(s3_env: Any, s3_bucket: str) -> None:
    data = os.urandom(300_000)
    s3_env.client("s3").put_object(Bucket=s3_bucket, Key="models/m.npz", Body=data)
    assert jobio.read_bytes(f"s3://{s3_bucket}/models/m.npz") == data


# --------------------------------------------------------------------------------------------------
# S3: output, commit/abort, SSE-KMS


def _assert_kms(s3: Any, bucket: str, key: str, kms_key_arn: str) -> dict[str, Any]:
    head: dict[str, Any] = s3.head_object(Bucket=bucket, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == kms_key_arn
    return head


def test_s3_small_output_with_kms(s3_env: Any, s3_bucket: str, kms_key_arn: str) -> None:
    s3 = s3_env.client("s3")
    with OutputObject(f"s3://{s3_bucket}/out/in.jsonl.out", kms_key_arn=kms_key_arn) as out:
        out.write(b'{"a": 1}\n')
        out.write(b'{"a": 2}\n')
        assert _keys(s3, s3_bucket) == []
    head = _assert_kms(s3, s3_bucket, "out/in.jsonl.out", kms_key_arn)
    assert "-" not in head["ETag"]  # one put_object
    assert s3.get_object(Bucket=s3_bucket, Key="out/in.jsonl.out")["Body"].read() == b'{"a": 1}\n{"a": 2}\n'


def test_s3_empty_output_with_kms(s3_env: Any, s3_bucket: str, kms_key_arn: str) -> None:
    OutputObject(f"s3://{s3_bucket}/out/empty.out", kms_key_arn=kms_key_arn).commit()
    assert _assert_kms(s3_env.client("s3"), s3_bucket, "out/empty.out", kms_key_arn)["ContentLength"] == 0


def test_s3_multipart_output_with_kms(
    s3_env: Any, s3_bucket: str, kms_key_arn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobio, "S3_PART_BYTES", 5 << 20)  # S3's smallest part size
    s3 = s3_env.client("s3")
    block = os.urandom(1 << 20)
    digest = hashlib.sha256()
    with OutputObject(f"s3://{s3_bucket}/out/big.out", kms_key_arn=kms_key_arn) as out:
        for i in range(13):  # 6.5 MiB in uneven writes: two parts, the second short
            piece = block[: (1 << 19) + i]
            out.write(piece)
            digest.update(piece)
        assert _keys(s3, s3_bucket) == []
        assert _pending_uploads(s3, s3_bucket) == ["out/big.out"]
    head = _assert_kms(s3, s3_bucket, "out/big.out", kms_key_arn)
    assert head["ETag"].strip('"').endswith("-2")  # a completed two-part upload
    body = s3.get_object(Bucket=s3_bucket, Key="out/big.out")["Body"].read()
    assert hashlib.sha256(body).digest() == digest.digest()
    assert _pending_uploads(s3, s3_bucket) == []


def test_s3_output_without_key_is_not_kms_encrypted(s3_env: Any, s3_bucket: str) -> None:
    OutputObject(f"s3://{s3_bucket}/plain.out").commit()
    head = s3_env.client("s3").head_object(Bucket=s3_bucket, Key="plain.out")
    assert head.get("ServerSideEncryption") != "aws:kms"
    assert "SSEKMSKeyId" not in head


def test_s3_abort_leaves_nothing(s3_env: Any, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobio, "S3_PART_BYTES", 5 << 20)
    s3 = s3_env.client("s3")
    with pytest.raises(RuntimeError, match="interrupted"), OutputObject(f"s3://{s3_bucket}/small.out") as out:
        out.write(b"partial\n")
        raise RuntimeError("interrupted")
    with pytest.raises(RuntimeError, match="interrupted"), OutputObject(f"s3://{s3_bucket}/big.out") as out:
        out.write(os.urandom(6 << 20))
        assert _pending_uploads(s3, s3_bucket) == ["big.out"]
        raise RuntimeError("interrupted")
    assert _keys(s3, s3_bucket) == []
    assert _pending_uploads(s3, s3_bucket) == []


def test_s3_failed_abort_never_completes_later(
    s3_env: Any, s3_bucket: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # smart_open's writer completes its upload when garbage collected; ours must not, even when the
    # abort itself failed (say, the network was down at that moment).
    monkeypatch.setattr(jobio, "S3_PART_BYTES", 5 << 20)

    def broken_terminate(self: Any) -> None:
        raise ConnectionError("network down")

    monkeypatch.setattr(jobio._MultipartUpload, "terminate", broken_terminate)
    out = OutputObject(f"s3://{s3_bucket}/big.out")
    out.write(os.urandom(6 << 20))
    out.abort()
    assert "could not clean up the partial output" in caplog.text
    del out
    gc.collect()
    s3 = s3_env.client("s3")
    assert _keys(s3, s3_bucket) == []
    assert _pending_uploads(s3, s3_bucket) == ["big.out"]  # left for the bucket's lifecycle rules


def test_s3_check_object_with_kms(s3_env: Any, s3_bucket: str, kms_key_arn: str) -> None:
    jobio.write_check_object(f"s3://{s3_bucket}/out/", kms_key_arn=kms_key_arn)
    _assert_kms(s3_env.client("s3"), s3_bucket, "out/_CHECK", kms_key_arn)


def test_s3_output_to_missing_bucket(s3_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobio, "S3_PART_BYTES", 5 << 20)
    with pytest.raises(
        JobIOError, match=r"cannot write s3://recbatch-no-such-bucket/out/_CHECK: .*does not exist"
    ):
        jobio.write_check_object("s3://recbatch-no-such-bucket/out")
    out = OutputObject("s3://recbatch-no-such-bucket/out/big.out")
    with pytest.raises(
        JobIOError, match=r"cannot write s3://recbatch-no-such-bucket/out/big.out: .*does not exist"
    ):
        out.write(os.urandom(6 << 20))  # starts the multipart upload
    out.abort()


def test_s3_output_with_unknown_key_fails_and_leaves_nothing(
    s3_env: Any, s3_bucket: str, kms_key_arn: str
) -> None:
    unknown = kms_key_arn.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    with pytest.raises(JobIOError, match=f"cannot use KMS key {unknown}: the KMS key does not exist"):
        jobio.write_check_object(f"s3://{s3_bucket}/out/", kms_key_arn=unknown)
    # Written directly, the server refuses it (SeaweedFS with HTTP 500, AWS with KMS.NotFoundException).
    with pytest.raises(JobIOError, match=f"cannot write s3://{s3_bucket}/out/x.out with KMS key {unknown}: "):
        OutputObject(f"s3://{s3_bucket}/out/x.out", kms_key_arn=unknown).commit()
    assert _keys(s3_env.client("s3"), s3_bucket) == []


def test_s3_check_object_with_disabled_key(s3_env: Any, s3_bucket: str, kms_key_arn: str) -> None:
    s3_env.client("kms").disable_key(KeyId=kms_key_arn.rsplit("/", 1)[1])
    with pytest.raises(JobIOError, match="the key is Disabled"):
        jobio.write_check_object(f"s3://{s3_bucket}/out/", kms_key_arn=kms_key_arn)
    assert _keys(s3_env.client("s3"), s3_bucket) == []


# --------------------------------------------------------------------------------------------------
# KMS


def test_check_kms_key_good(s3_env: Any, kms_key_arn: str) -> None:
    jobio.check_kms_key(kms_key_arn)


def test_check_kms_key_unknown(s3_env: Any, kms_key_arn: str) -> None:
    unknown = kms_key_arn.rsplit("/", 1)[0] + "/11111111-1111-1111-1111-111111111111"
    with pytest.raises(JobIOError, match=f"^cannot use KMS key {unknown}: the KMS key does not exist"):
        jobio.check_kms_key(unknown)


def test_check_kms_key_disabled_and_pending_deletion(s3_env: Any, kms_key_arn: str) -> None:
    kms = s3_env.client("kms")
    key_id = kms_key_arn.rsplit("/", 1)[1]
    kms.disable_key(KeyId=key_id)
    with pytest.raises(JobIOError, match="the key is Disabled; S3 can only encrypt with an Enabled key"):
        jobio.check_kms_key(kms_key_arn)
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    with pytest.raises(JobIOError, match="the key is PendingDeletion"):
        jobio.check_kms_key(kms_key_arn)


def test_check_kms_key_asymmetric(s3_env: Any) -> None:
    metadata = s3_env.client("kms").create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    with pytest.raises(JobIOError, match="RSA_2048 key for SIGN_VERIFY; S3 server-side encryption needs"):
        jobio.check_kms_key(metadata["Arn"])


def test_check_kms_key_uses_the_region_of_the_arn(s3_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    metadata = s3_env.client("kms").create_key()["KeyMetadata"]  # in us-east-1
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    jobio.check_kms_key(metadata["Arn"])
    with pytest.raises(JobIOError, match="does not exist"):
        jobio.check_kms_key(metadata["Arn"].replace("us-east-1", "eu-west-1"))


def test_check_kms_key_not_an_arn(s3_env: Any) -> None:
    with pytest.raises(JobIOError, match=r"^cannot use KMS key not-a-key: "):
        jobio.check_kms_key("not-a-key")
