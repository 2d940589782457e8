"""The job runner end to end: real local files (and the real S3 + KMS servers), every recipe against
the float64 reference, prefixes, gzip, bad lines, cold start, failures, stopping, bounded streaming."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from numpy.typing import NDArray

from recbatch.jobs import io as jobio
from recbatch.jobs import runner
from recbatch.jobs.runner import (
    JobFailed,
    JobInterrupted,
    JobProgress,
    run_batch_inference_job,
    run_batch_segment_job,
)
from recbatch.model import load_model, save_model
from recbatch.scoring import ItemIndex
from tests.conftest import AwsEndpoints
from tests.jobs import helpers as ref
from tests.jobs.helpers import job, model_arrays, read_output, solution, write_lines, write_model


@pytest.fixture
def arrays() -> dict[str, NDArray[Any]]:
    return model_arrays(n_users=50, n_items=300, dim=12, seed=21)


@pytest.fixture
def model_path(tmp_path: Path, arrays: dict[str, NDArray[Any]]) -> str:
    return write_model(tmp_path, arrays)


def _outputs(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_user_personalization_job(tmp_path: Path, arrays: dict[str, NDArray[Any]], model_path: str) -> None:
    users = [f"u{u}" for u in range(50)]
    write_lines(tmp_path / "in" / "users.jsonl", [{"userId": u} for u in users])
    out = tmp_path / "out"
    seen: list[JobProgress] = []
    result = run_batch_inference_job(
        job(str(tmp_path / "in" / "users.jsonl"), str(out), num_results=10),
        solution(model_path, "user"),
        progress=seen.append,
    )
    assert result == JobProgress(records_read=50, records_written=50, records_failed=0)
    assert seen[-1] == result
    assert _outputs(out) == ["_CHECK", "users.jsonl.out"]
    lines = read_output(out / "users.jsonl.out")
    assert [line["input"] for line in lines] == [{"userId": u} for u in users]  # input order
    for user, line in zip(users, lines, strict=True):
        expected_ids, _ = ref.user_personalization(arrays, user, 10)
        exact = dict(zip(arrays["item_ids"].tolist(), ref.item_scores(arrays, user).tolist(), strict=True))
        got = line["output"]["recommendedItems"]
        ref.assert_same_ranking(got, expected_ids, exact)
        all_ids, all_probabilities = ref.user_personalization(arrays, user, 300)
        probability = dict(zip(all_ids, all_probabilities, strict=True))
        ref.assert_scores_close(line["output"]["scores"], [probability[i] for i in got])


def test_every_recipe_against_the_reference(
    tmp_path: Path, arrays: dict[str, NDArray[Any]], model_path: str
) -> None:
    """One job per recipe ARN through the runner; each output line checked against float64 NumPy."""
    rng = np.random.default_rng(3)
    users = [f"u{u}" for u in rng.choice(50, 20, replace=False)]
    items = [f"i{i}" for i in rng.choice(300, 20, replace=False)]
    item_lists = [[f"i{i}" for i in rng.choice(300, int(rng.integers(1, 40)), replace=False)] for _ in users]
    cases: dict[str, tuple[list[dict[str, Any]], Any]] = {
        "user2": ([{"userId": u} for u in users], lambda r: None),
        "popular": ([{"userId": u} for u in users], lambda r: None),
        "similar": ([{"itemId": i} for i in items], lambda r: None),
        "sims": ([{"itemId": i} for i in items], lambda r: None),
        "ranking2": (
            [{"userId": u, "itemList": lst} for u, lst in zip(users, item_lists, strict=True)],
            lambda r: None,
        ),
        "affinity": ([{"itemId": i} for i in items], lambda r: None),
    }
    for recipe, (requests, _) in cases.items():
        folder = tmp_path / recipe
        write_lines(folder / "input.json", requests)
        run = run_batch_segment_job if recipe == "affinity" else run_batch_inference_job
        result = run(
            job(str(folder / "input.json"), str(folder / "out"), num_results=7), solution(model_path, recipe)
        )
        assert result.records_written == len(requests) and result.records_failed == 0
        lines = read_output(folder / "out" / "input.json.out")
        assert [line["input"] for line in lines] == requests
        for request, line in zip(requests, lines, strict=True):
            output = line["output"]
            if recipe == "user2":
                exact = dict(
                    zip(
                        arrays["item_ids"].tolist(),
                        ref.item_scores(arrays, request["userId"]).tolist(),
                        strict=True,
                    )
                )
                expected, _ = ref.user_personalization(arrays, request["userId"], 7)
                ref.assert_same_ranking(output["recommendedItems"], expected, exact)
                assert len(output["scores"]) == 7
            elif recipe == "popular":
                assert output == {"recommendedItems": ref.popularity_top(arrays, 7)}
            elif recipe in ("similar", "sims"):
                exact = dict(
                    zip(
                        arrays["item_ids"].tolist(),
                        ref.cosine_scores(arrays, request["itemId"]).tolist(),
                        strict=True,
                    )
                )
                assert list(output) == ["recommendedItems"]
                ref.assert_same_ranking(
                    output["recommendedItems"], ref.related_items(arrays, request["itemId"], 7), exact
                )
            elif recipe == "ranking2":
                expected, scores = ref.ranking(arrays, request["userId"], request["itemList"])
                exact = dict(
                    zip(
                        arrays["item_ids"].tolist(),
                        ref.item_scores(arrays, request["userId"]).tolist(),
                        strict=True,
                    )
                )
                ref.assert_same_ranking(output["recommendedItems"], expected, exact)
                probability = dict(zip(expected, scores, strict=True))
                ref.assert_scores_close(
                    output["scores"], [probability[i] for i in output["recommendedItems"]]
                )
            else:
                exact = dict(
                    zip(
                        arrays["user_ids"].tolist(),
                        ref.user_affinity(arrays, request["itemId"]).tolist(),
                        strict=True,
                    )
                )
                assert list(output) == ["usersList"]
                ref.assert_same_ranking(output["usersList"], ref.segment(arrays, request["itemId"], 7), exact)


def test_default_num_results_is_25(tmp_path: Path, model_path: str) -> None:
    write_lines(tmp_path / "in.jsonl", [{"userId": "u1"}])
    run_batch_inference_job(
        job(str(tmp_path / "in.jsonl"), str(tmp_path / "out")), solution(model_path, "user")
    )
    (line,) = read_output(tmp_path / "out" / "in.jsonl.out")
    assert len(line["output"]["recommendedItems"]) == len(line["output"]["scores"]) == 25


def test_gzip_input_crlf_bom_and_blank_lines(tmp_path: Path, model_path: str) -> None:
    raw = b'\xef\xbb\xbf{"userId": "u1"}\r\n\r\n   \n{"userId": "u2"}\r\n\n'
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "part.jsonl.gz").write_bytes(gzip.compress(raw))
    result = run_batch_inference_job(
        job(str(tmp_path / "in" / "part.jsonl.gz"), str(tmp_path / "out"), num_results=3),
        solution(model_path, "user"),
    )
    assert result == JobProgress(records_read=2, records_written=2, records_failed=0)
    # The output is plain JSON lines, named after the input file.
    lines = read_output(tmp_path / "out" / "part.jsonl.gz.out")
    assert [line["input"] for line in lines] == [{"userId": "u1"}, {"userId": "u2"}]


def test_prefix_with_several_files(tmp_path: Path, model_path: str) -> None:
    write_lines(tmp_path / "in" / "a.jsonl", [{"userId": "u1"}, {"userId": "u2"}])
    write_lines(tmp_path / "in" / "b.jsonl.gz", [{"userId": "u3"}])
    write_lines(tmp_path / "in" / "nested" / "c.jsonl", [{"userId": "u4"}] * 3)
    write_lines(tmp_path / "in_test" / "d.jsonl", [{"userId": "u5"}])  # not in the folder "in/"
    out = tmp_path / "in" / "out"  # an output prefix inside the input prefix is never read as input
    write_lines(out / "stale.jsonl", [{"userId": "u6"}])
    result = run_batch_inference_job(
        job(str(tmp_path / "in") + "/", str(out), num_results=2), solution(model_path, "user")
    )
    assert result == JobProgress(records_read=6, records_written=6, records_failed=0)
    # One .out per input file, under the input's path relative to the prefix.
    assert _outputs(out) == ["_CHECK", "a.jsonl.out", "b.jsonl.gz.out", "nested/c.jsonl.out", "stale.jsonl"]
    assert [line["input"]["userId"] for line in read_output(out / "a.jsonl.out")] == ["u1", "u2"]
    assert [line["input"]["userId"] for line in read_output(out / "b.jsonl.gz.out")] == ["u3"]
    assert [line["input"]["userId"] for line in read_output(out / "nested" / "c.jsonl.out")] == ["u4"] * 3


def test_prefix_matches_like_s3(tmp_path: Path, model_path: str) -> None:
    write_lines(tmp_path / "in" / "x.jsonl", [{"userId": "u1"}])
    write_lines(tmp_path / "in_test" / "y.jsonl", [{"userId": "u2"}])
    out = tmp_path / "out"
    result = run_batch_inference_job(
        job(str(tmp_path / "in"), str(out), num_results=1), solution(model_path, "user")
    )
    assert result.records_read == 2
    assert _outputs(out) == ["_CHECK", "in/x.jsonl.out", "in_test/y.jsonl.out"]


def test_bad_lines_among_good_ones(tmp_path: Path, model_path: str) -> None:
    lines: list[bytes | str | dict[str, Any]] = [
        {"userId": "u1"},
        "this is not json",
        "[1, 2, 3]",
        {"itemId": "i1"},
        {"userId": 12},
        {"userId": "x" * 300},
        "",
        {"userId": "u2", "filterValues": {"GENRE": '"drama"'}},
        b'{"userId": "\xff"}',
        {"userId": "u3"},
    ]
    write_lines(tmp_path / "in.jsonl", lines)
    result = run_batch_inference_job(
        job(str(tmp_path / "in.jsonl"), str(tmp_path / "out"), num_results=4),
        solution(write_model(tmp_path, model_arrays(10, 30, 4, popularity=False), "nopop.npz"), "user"),
    )
    assert result == JobProgress(records_read=9, records_written=9, records_failed=6)
    out = read_output(tmp_path / "out" / "in.jsonl.out")
    codes = [line["error"].split(":")[0] if line["error"] else None for line in out]
    assert codes == [
        None,
        "INVALID_JSON",
        "INVALID_RECORD",
        "MISSING_FIELD",
        "INVALID_FIELD",
        "INVALID_FIELD",
        None,
        "INVALID_JSON",
        None,
    ]
    assert out[1]["input"] == "this is not json" and out[1]["output"] is None
    assert out[2]["input"] == [1, 2, 3]
    assert out[6]["input"] == {"userId": "u2", "filterValues": {"GENRE": '"drama"'}}
    assert len(out[8]["output"]["recommendedItems"]) == 4


def test_cold_start(tmp_path: Path, arrays: dict[str, NDArray[Any]], model_path: str) -> None:
    write_lines(tmp_path / "users.jsonl", [{"userId": "u1"}, {"userId": "brand-new"}])
    write_lines(tmp_path / "items.jsonl", [{"itemId": "i1"}, {"itemId": "brand-new"}])
    run_batch_inference_job(
        job(str(tmp_path / "users.jsonl"), str(tmp_path / "out1"), num_results=5),
        solution(model_path, "user"),
    )
    warm, cold = read_output(tmp_path / "out1" / "users.jsonl.out")
    popular = ref.popularity_top(arrays, 5)
    assert cold["output"]["recommendedItems"] == popular and warm["output"]["recommendedItems"] != popular
    ref.assert_scores_close(cold["output"]["scores"], ref.popularity_share(arrays, popular))
    run_batch_inference_job(
        job(str(tmp_path / "items.jsonl"), str(tmp_path / "out2"), num_results=5),
        solution(model_path, "sims"),
    )
    _, cold = read_output(tmp_path / "out2" / "items.jsonl.out")
    assert cold["output"] == {"recommendedItems": popular}


def test_model_failures_fail_the_job_before_any_output(tmp_path: Path, model_path: str) -> None:
    write_lines(tmp_path / "in.jsonl", [{"userId": "u1"}])
    out = tmp_path / "out"
    items_only = str(tmp_path / "items.npz")
    save_model(items_only, item_ids=["a"], item_factors=[[1.0]])
    cases = [
        (solution(str(tmp_path / "missing.npz"), "user"), "cannot be used: the model file .* does not exist"),
        (solution(items_only, "user"), "user_ids is missing: recipe 'aws-user-personalization' needs it"),
        (
            solution(model_path, "arn:aws:personalize:::recipe/aws-trending-now"),
            "'aws-trending-now' is not supported",
        ),
        (solution(model_path, "affinity"), "run it as a batch segment job"),
    ]
    for solution_version, reason in cases:
        with pytest.raises(JobFailed, match=reason):
            run_batch_inference_job(job(str(tmp_path / "in.jsonl"), str(out)), solution_version)
    with pytest.raises(JobFailed, match="Batch segment jobs need a user segmentation recipe"):
        run_batch_segment_job(job(str(tmp_path / "in.jsonl"), str(out)), solution(model_path, "user"))
    assert not out.exists()


def test_io_failures(tmp_path: Path, model_path: str) -> None:
    write_lines(tmp_path / "in.jsonl", [{"userId": "u1"}])
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(JobFailed, match="Cannot write to the output path"):
        run_batch_inference_job(
            job(str(tmp_path / "in.jsonl"), str(tmp_path / "a-file" / "out")), solution(model_path, "user")
        )
    with pytest.raises(JobFailed, match=r"Cannot read the input path .*no input files found"):
        run_batch_inference_job(
            job(str(tmp_path / "nothing-here"), str(tmp_path / "out")), solution(model_path, "user")
        )
    # A truncated gzip input fails the job with its name, and leaves no output object.
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "in.jsonl.gz").write_bytes(gzip.compress(b'{"userId": "u1"}\n' * 1000)[:-30])
    with pytest.raises(JobFailed, match=r"Cannot process input file .*in\.jsonl\.gz"):
        run_batch_inference_job(
            job(str(tmp_path / "cut" / "in.jsonl.gz"), str(tmp_path / "out3")), solution(model_path, "user")
        )
    assert _outputs(tmp_path / "out3") == ["_CHECK"]
    # A kmsKeyArn on a local output path (the control plane refuses it; the runner fails it too).
    request = job(str(tmp_path / "in.jsonl"), str(tmp_path / "out4"))
    request["jobOutput"]["s3DataDestination"]["kmsKeyArn"] = "arn:aws:kms:us-east-1:000000000000:key/x"
    with pytest.raises(JobFailed, match="a kmsKeyArn applies to s3:// paths only"):
        run_batch_inference_job(request, solution(model_path, "user"))
    assert not (tmp_path / "out4").exists()


def test_should_stop_aborts_without_visible_output(
    tmp_path: Path, model_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "records_per_batch", lambda family, num_results, threads: 10)
    write_lines(tmp_path / "in.jsonl", [{"userId": f"u{i % 50}"} for i in range(100)])
    seen: list[JobProgress] = []
    with pytest.raises(JobInterrupted):
        run_batch_inference_job(
            job(str(tmp_path / "in.jsonl"), str(tmp_path / "out")),
            solution(model_path, "user"),
            progress=seen.append,
            should_stop=lambda: len(seen) >= 3,
        )
    assert [p.records_written for p in seen] == [10, 20, 30]
    # Nothing partial: no .out, no temporary file left behind.
    assert _outputs(tmp_path / "out") == ["_CHECK"]


def test_search_failure_mid_file_leaves_no_output_and_no_thread(
    tmp_path: Path, model_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Searches run on a worker thread: a failure reaches the caller, nothing partial stays."""
    monkeypatch.setattr(runner, "records_per_batch", lambda family, num_results, threads: 10)
    write_lines(tmp_path / "in.jsonl", [{"userId": f"u{i % 50}"} for i in range(100)])
    real_search = ItemIndex.search
    search_threads: set[str] = set()
    calls = 0

    def failing_search(self: ItemIndex, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        search_threads.add(threading.current_thread().name)
        # A daemon thread: a process told to exit does not wait for a search under way.
        assert threading.current_thread().daemon
        calls += 1
        if calls == 3:
            raise RuntimeError("search broke")
        return real_search(self, *args, **kwargs)

    monkeypatch.setattr(ItemIndex, "search", failing_search)
    with pytest.raises(RuntimeError, match="search broke"):
        run_batch_inference_job(
            job(str(tmp_path / "in.jsonl"), str(tmp_path / "out")), solution(model_path, "user")
        )
    assert _outputs(tmp_path / "out") == ["_CHECK"]
    assert search_threads and threading.current_thread().name not in search_threads
    assert not [t for t in threading.enumerate() if t.name in search_threads]


def test_streaming_keeps_memory_bounded(
    tmp_path: Path, model_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner pulls input lines only as fast as it writes output: at most two batches in flight
    (one being scored while the next is parsed)."""
    batch = 64
    total = 5_000
    monkeypatch.setattr(runner, "records_per_batch", lambda family, num_results, threads: batch)
    yielded = 0
    written = 0
    in_flight: list[int] = []

    def lines(uri: str) -> Iterator[list[bytes]]:  # the file's reads, a line each
        nonlocal yielded
        for i in range(total):
            if i % 7 == 0:
                yield [b"   "]  # blank lines are skipped: no record, no output line
                continue
            yielded += 1
            in_flight.append(yielded - written)
            yield [orjson.dumps({"userId": f"u{i % 50}"})]

    real_write = jobio.OutputObject.write

    def counting_write(self: jobio.OutputObject, data: bytes) -> None:
        nonlocal written
        written += data.count(b"\n")  # one output line per record
        real_write(self, data)

    monkeypatch.setattr(jobio, "_iter_line_chunks", lines)
    monkeypatch.setattr(jobio.OutputObject, "write", counting_write)
    write_lines(tmp_path / "in.jsonl", [{"userId": "u1"}])  # listed; its lines come from the generator
    result = run_batch_inference_job(
        job(str(tmp_path / "in.jsonl"), str(tmp_path / "out"), num_results=5), solution(model_path, "user")
    )
    records = total - len(range(0, total, 7))
    assert result.records_read == result.records_written == records
    # Records read but not yet written never exceed two batches, and parsing does run ahead.
    assert max(in_flight) == 2 * batch
    assert len(read_output(tmp_path / "out" / "in.jsonl.out")) == records


def test_threads_and_batches_do_not_change_results(
    tmp_path: Path, model_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_lines(tmp_path / "in.jsonl", [{"userId": f"u{i % 50}"} for i in range(120)])
    run_batch_inference_job(
        job(str(tmp_path / "in.jsonl"), str(tmp_path / "a")), solution(model_path, "user")
    )
    monkeypatch.setattr(runner, "records_per_batch", lambda family, num_results, threads: 7)
    run_batch_inference_job(
        job(str(tmp_path / "in.jsonl"), str(tmp_path / "b")), solution(model_path, "user"), threads=1
    )
    assert (tmp_path / "a" / "in.jsonl.out").read_bytes() == (tmp_path / "b" / "in.jsonl.out").read_bytes()


def test_s3_job_with_kms(s3_env: AwsEndpoints, s3_bucket: str, kms_key_arn: str, tmp_path: Path) -> None:
    """Model, input and output on the real S3 server; every object written carries SSE-KMS with the key."""
    s3 = s3_env.client("s3")
    arrays = model_arrays(20, 60, 8, seed=9)
    model_uri = f"s3://{s3_bucket}/models/m.npz"
    save_model(model_uri, **arrays)
    assert load_model(model_uri).item_id_list == arrays["item_ids"].tolist()
    s3.put_object(Bucket=s3_bucket, Key="in/a.jsonl", Body=b'{"userId": "u1"}\n{"itemId": "x"}\n')
    s3.put_object(Bucket=s3_bucket, Key="in/b.jsonl.gz", Body=gzip.compress(b'{"userId": "u2"}\n'))
    request = job(f"s3://{s3_bucket}/in/", f"s3://{s3_bucket}/out/", num_results=3)
    request["jobOutput"]["s3DataDestination"]["kmsKeyArn"] = kms_key_arn
    request["jobInput"]["s3DataSource"]["kmsKeyArn"] = kms_key_arn
    result = run_batch_inference_job(request, solution(model_uri, "user"))
    assert result == JobProgress(records_read=3, records_written=3, records_failed=1)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="out/")["Contents"])
    assert keys == ["out/_CHECK", "out/a.jsonl.out", "out/b.jsonl.gz.out"]
    for key in keys:
        head = s3.head_object(Bucket=s3_bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"].endswith(kms_key_arn.rsplit("/", 1)[1])
    body = s3.get_object(Bucket=s3_bucket, Key="out/a.jsonl.out")["Body"].read()
    first, second = (orjson.loads(line) for line in body.splitlines())
    expected, _ = ref.user_personalization(arrays, "u1", 3)
    exact = dict(zip(arrays["item_ids"].tolist(), ref.item_scores(arrays, "u1").tolist(), strict=True))
    ref.assert_same_ranking(first["output"]["recommendedItems"], expected, exact)
    assert second["error"].startswith("MISSING_FIELD: userId")


def test_s3_job_with_unknown_key_fails_without_output(
    s3_env: AwsEndpoints, s3_bucket: str, tmp_path: Path, model_path: str
) -> None:
    s3 = s3_env.client("s3")
    s3.put_object(Bucket=s3_bucket, Key="in.jsonl", Body=b'{"userId": "u1"}\n')
    missing = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    request = job(f"s3://{s3_bucket}/in.jsonl", f"s3://{s3_bucket}/out/")
    request["jobOutput"]["s3DataDestination"]["kmsKeyArn"] = missing
    with pytest.raises(JobFailed, match=r"Cannot write to the output path .*KMS key"):
        run_batch_inference_job(request, solution(model_path, "user"))
    assert "Contents" not in s3.list_objects_v2(Bucket=s3_bucket, Prefix="out/")
    request = job(f"s3://{s3_bucket}/in.jsonl", f"s3://{s3_bucket}/out/")
    request["jobInput"]["s3DataSource"]["kmsKeyArn"] = missing
    with pytest.raises(JobFailed, match="The input kmsKeyArn cannot be used"):
        run_batch_inference_job(request, solution(model_path, "user"))
    assert "Contents" not in s3.list_objects_v2(Bucket=s3_bucket, Prefix="out/")
