"""The Python work of a batch job per record, by stage, without the kernel's time.

    python benchmarks/job_stages.py                         # similar items, 200,000 records
    python benchmarks/job_stages.py --recipe aws-user-personalization
    python benchmarks/job_stages.py --recipe aws-personalized-ranking --records 20000

Reads a local JSON-lines file and scores it in batches as a job does (Scorer.steps_for_lines),
timing each stage with the process's CPU time: reading, the recipe's work before the search
(parsing included), after it, and writing. The model's index is built first, untimed. The
searches run between the timed stages and are reported apart (wall time, all threads), so on many
cores (where the kernel is fast) the stages' figures are what bounds a job. Personalized ranking
reads, ranks and writes its lines in that one call, so its stages are nearly empty and its
"kernel" is the whole call. Medians are not taken, so alternate runs when comparing two versions.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

import recbatch
from recbatch.jobs import io as jobio
from recbatch.jobs.recipes import Scorer, records_per_batch
from recbatch.model import Family, load_model, recipe_family, synthetic_model


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipe", default="aws-similar-items")
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--k", type=int, default=25)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="recbatch-job-stages-"))
    recipe_arn = f"arn:aws:personalize:::recipe/{args.recipe}"
    recbatch.save_model(str(work / "model.npz"), **synthetic_model(args.users, args.items, args.dim, seed=0))
    family = recipe_family(recipe_arn)
    if family is Family.POPULAR_ITEMS:
        parser.error("--recipe: popular items has no per-batch work to time (one list for every user)")
    rng = np.random.default_rng(0)
    if family is Family.PERSONALIZED_RANKING:  # a user and 50 items to rank (its ranking timed apart)
        users, lists = (
            rng.integers(0, args.users, args.records),
            rng.integers(0, args.items, (args.records, 50)),
        )
        lines = (
            json.dumps({"userId": f"u{u}", "itemList": [f"i{i}" for i in items]}) + "\n"
            for u, items in zip(users, lists, strict=True)
        )
    else:
        by_item = family is not Family.USER_PERSONALIZATION
        field, prefix, count = ("itemId", "i", args.items) if by_item else ("userId", "u", args.users)
        lines = (f'{{"{field}": "{prefix}{i}"}}\n' for i in rng.integers(0, count, args.records))
    with open(work / "input.jsonl", "w") as handle:
        handle.writelines(lines)
    model = load_model(str(work / "model.npz"), recipe_arn=recipe_arn)
    scorer = Scorer(model, family, args.k)

    clock = time.process_time
    size = records_per_batch(family, args.k)
    start = clock()
    batches = list(jobio.read_records(str(work / "input.jsonl"), size))
    read = clock() - start
    scorer.score_lines(batches[0][:1])  # builds what the model builds on first use, untimed
    before = after = kernel = 0.0
    scored = []
    for lines in batches:
        start = clock()
        steps = scorer.steps_for_lines(lines)
        search = next(steps)
        before += clock() - start
        start = time.perf_counter()
        result = search()  # the kernel: apart from the stages
        kernel += time.perf_counter() - start
        start = clock()
        try:
            steps.send(result)
        except StopIteration as done:
            scored.append(done.value)
        after += clock() - start
    start = clock()
    with jobio.OutputObject(str(work / "output.jsonl")) as out:
        for batch in scored:
            out.write(b"".join(batch.lines))
    write = clock() - start

    def per_record(seconds: float) -> str:
        return f"{1e6 * seconds / args.records:.2f} us"

    print(f"{args.recipe}: {args.records:,} records, {args.items:,} items, k={args.k}; per record:")
    print(
        f"read {per_record(read)}, before the search (parsing included) {per_record(before)}, "
        f"after it {per_record(after)}, write {per_record(write)}; "
        f"all {per_record(read + before + after + write)}"
    )
    print(f"the kernel apart (wall time, {recbatch.default_threads()} threads): {per_record(kernel)}")


if __name__ == "__main__":
    main()
