"""A whole batch inference job, end to end, on local files: records/s, kernel share, peak memory.

    python benchmarks/job_benchmark.py                 # 1,000,000 lines, 100,000 items, d=64, k=25
    python benchmarks/job_benchmark.py --lines 100000  # a quicker run
    python benchmarks/job_benchmark.py --recipe aws-similar-items   # itemId lines, the cosine index
    python benchmarks/job_benchmark.py --recipe aws-personalized-ranking --unknown-items 0.01
    python benchmarks/job_benchmark.py --recipe aws-item-affinity --k 1000   # a batch segment job
    python benchmarks/job_benchmark.py --recipe aws-personalized-ranking --unknown-users 0.1

The job runs through the public client (import, create, wait), exactly as a user runs one. The job's time is
its own, from its creation and last update timestamps (a wait for it ends at a poll). The
kernel's share is the time during which an ItemIndex.search call is running (the job's Python
work overlaps it, so the rest is time the kernel waits). Personalized ranking reads, ranks and
writes most of its lines in one call to the extension (ranking.rank_ranking_batch), its share
reported apart, and ranks the others with CandidateRanker.rank; peak memory is the process's peak
resident set during the job alone (reset before it starts), so building the model is not counted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import recbatch
from recbatch import ranking, scoring
from recbatch.jobs import recipes
from recbatch.model import Family, recipe_family, synthetic_model


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux: resets VmHWM to the current RSS


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=200_000, help="distinct users the lines draw from")
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--k", type=int, default=25)
    parser.add_argument("--recipe", default="aws-user-personalization")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--unknown-items",
        type=float,
        default=0.0,
        help="personalized ranking: the share of itemList entries that are not in the catalogue",
    )
    parser.add_argument(
        "--unknown-users",
        type=float,
        default=0.0,
        help="personalized ranking: the share of lines whose user is not in the model (ranked by popularity)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the work files (model, input, output, home); default: delete them",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="recbatch-job-bench-"))
    rng = np.random.default_rng(0)
    recbatch.save_model(str(work / "model.npz"), **synthetic_model(args.users, args.items, args.dim, seed=0))
    family = recipe_family(f"arn:aws:personalize:::recipe/{args.recipe}")
    if family in (Family.RELATED_ITEMS, Family.USER_SEGMENTATION):  # item in, items or users out
        lines = (f'{{"itemId": "i{i}"}}\n' for i in rng.integers(0, args.items, size=args.lines))
    elif family is Family.PERSONALIZED_RANKING:  # a user and 50 items to rank
        lines = (
            json.dumps({"userId": f"u{u}", "itemList": [f"i{i}" for i in items]}) + "\n"
            for u, items in zip(
                # Users past the model's last are unknown to it: a share of unknown_users.
                rng.integers(0, round(args.users / (1.0 - args.unknown_users)), size=args.lines),
                # Ids past the catalogue's last are unknown to the model: a share of unknown_items.
                rng.integers(0, round(args.items / (1.0 - args.unknown_items)), size=(args.lines, 50)),
                strict=True,
            )
        )
    else:
        lines = (f'{{"userId": "u{u}"}}\n' for u in rng.integers(0, args.users, size=args.lines))
    with open(work / "input.jsonl", "w") as handle:
        handle.writelines(lines)

    kernel_seconds = 0.0

    def timed(call: Callable[..., Any]) -> Callable[..., Any]:
        def run(*a: Any, **kw: Any) -> Any:
            nonlocal kernel_seconds
            start = time.perf_counter()
            try:
                return call(*a, **kw)
            finally:
                kernel_seconds += time.perf_counter() - start

        return run

    scoring.ItemIndex.search = timed(scoring.ItemIndex.search)  # type: ignore[method-assign]
    ranking.CandidateRanker.rank = timed(ranking.CandidateRanker.rank)  # type: ignore[method-assign]
    lines_seconds = 0.0
    # The job layer's call of the lines (rank_ranking_batch; rank_ranking_lines before session 13;
    # neither in older layers, for A/B runs).
    lines_call = next(
        (name for name in ("rank_ranking_batch", "rank_ranking_lines") if hasattr(recipes, name)), None
    )
    rank_lines = getattr(recipes, lines_call) if lines_call is not None else None

    def timed_lines(*a: Any, **kw: Any) -> Any:
        nonlocal lines_seconds
        start = time.perf_counter()
        try:
            return rank_lines(*a, **kw)
        finally:
            lines_seconds += time.perf_counter() - start

    if lines_call is not None:
        setattr(recipes, lines_call, timed_lines)
    options = {} if args.threads is None else {"threads": args.threads}
    with recbatch.client(work / "home", **options) as client:
        arn = client.import_solution_version(
            solutionName="bench",
            recipeArn=f"arn:aws:personalize:::recipe/{args.recipe}",
            modelPath=str(work / "model.npz"),
        )["solutionVersionArn"]
        reset_peak_rss()
        start = time.perf_counter()
        request = {
            "jobName": "bench",
            "solutionVersionArn": arn,
            "numResults": args.k,
            "jobInput": {"s3DataSource": {"path": str(work / "input.jsonl")}},
            "jobOutput": {"s3DataDestination": {"path": str(work / "out") + "/"}},
            "roleArn": "arn:aws:iam::000000000000:role/bench",
        }
        if family is Family.USER_SEGMENTATION:  # a batch segment job: each item's users
            job_arn = client.create_batch_segment_job(**request)["batchSegmentJobArn"]
        else:
            job_arn = client.create_batch_inference_job(**request)["batchInferenceJobArn"]
        job = client.wait_for_job(job_arn)
        waited = time.perf_counter() - start
    assert job["status"] == "ACTIVE", job.get("failureReason")
    # The job's own time, from its timestamps (milliseconds): the wait above ends at a poll, which
    # comes up to 0.5 s after the job ends, so it would quantise short jobs.
    total = (job["lastUpdatedDateTime"] - job["creationDateTime"]).total_seconds()
    with open(work / "out" / "input.jsonl.out") as handle:
        lines = sum(1 for _ in handle)
    assert lines == args.lines
    print(f"job: {args.lines:,} lines, {args.items:,} items, d={args.dim}, k={args.k}, {args.recipe}")
    print(f"threads: {args.threads or recbatch.default_threads()}, SIMD: {recbatch.simd_level()}")
    print(f"total {total:.2f} s  ->  {args.lines / total:,.0f} records/s (waited {waited:.2f} s)")
    print(
        f"kernel {kernel_seconds:.2f} s ({100 * kernel_seconds / total:.0f}% of the job), "
        f"no search running {total - kernel_seconds:.2f} s ({100 * (1 - kernel_seconds / total):.0f}%)"
    )
    if family is Family.PERSONALIZED_RANKING:
        print(
            f"lines read, ranked and written in the extension {lines_seconds:.2f} s ({100 * lines_seconds / total:.0f}%)"
        )
    print(f"peak resident memory during the job: {peak_rss_mib():,.0f} MiB")
    if args.keep:
        print(f"(work files in {work})")
    else:
        shutil.rmtree(work)  # a million ranking lines leave about 2 GB


if __name__ == "__main__":
    main()
