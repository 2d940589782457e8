"""Per-recipe scoring of a batch of parsed records (SPEC sections 3, 5 and 6).

A :class:`Scorer` serves one job: it turns a batch of :class:`~recbatch.jobs.records.Record` into
output lines, with at most one top-k search per batch (never one per record). All vector work
goes through the public scoring API (:class:`recbatch.ItemIndex`).

:meth:`Scorer.steps` scores a batch in three steps: the Python work before the search, the search
itself (handed to the caller, who may run it on another thread: it releases the GIL), and the
Python work after it. The job runner uses that to keep the kernel busy with one batch while this
thread prepares the next and formats the previous one; :meth:`Scorer.score` runs all three here.
The runner hands over the input lines themselves (:meth:`Scorer.steps_for_lines`): personalized
ranking then reads, ranks and writes most of them in the one call it yields.

Choices where Personalize leaves things open (documented in the README):

- cold start (user personalization): the most popular items, scored by their share of all
  popularity (``popularity_i / sum(popularity)``, the softmax of log-popularity over the catalogue);
- personalized ranking: duplicate itemList entries are kept once (first occurrence); an unknown
  user ranks the list by popularity (scores: popularity share within the list) when the model has
  item_popularity, else UNKNOWN_USER; the whole list is returned whatever numResults is;
- popular items: the same list for every user (the userId is checked, not looked up);
- related items: cosine similarity; a zero item vector has similarity 0 to every item.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator, Sequence
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from recbatch.ids import IdLists
from recbatch.jobs.records import (
    MAX_ITEM_LIST,
    UNKNOWN_ITEM,
    UNKNOWN_USER,
    Record,
    error_line,
    format_score_rows,
    id_texts,
    items_lines,
    items_output,
    items_scores_output,
    ok_line,
    parse_records,
    users_lines,
)
from recbatch.model import MAX_ID_LENGTH, Family, Model, ModelError
from recbatch.ranking import RankedLineBatch, RankedLists, rank_by_value, rank_ranking_batch
from recbatch.scoring import TopKResult, default_threads

__all__ = ["ScoredBatch", "Scorer", "ScoringSteps", "SearchCall", "records_per_batch"]

# Records per batch: large enough that the kernel sees big query blocks, small enough that a
# batch's results (records x numResults) stay a few tens of MB.
_BATCH_RECORDS = 4096
_RESULT_BUDGET = 1 << 22  # indices + scores held per batch: about 50 MB
# A ranking batch is one call to the extension, which starts its threads and hands them tasks of
# 64 lines: 256 lines per thread give each several tasks (a slow thread does not hold the batch
# up) and pay the threads' start once per thousands of lines (on 16 cores, 1,024 lines were one
# task per thread, and starting them cost about half the batch's ranking). 4,096 lines of up to
# 500 items each stay under 100 MB of input and output.
_RANKING_LINES_PER_THREAD = 256
_RANKING_BATCH_RECORDS = (1024, 4096)


def records_per_batch(family: Family, num_results: int, threads: int | None = None) -> int:
    """How many records a job scores per batch (memory stays bounded whatever the input size).

    ``threads`` (default: the CPUs this process may use) sizes personalized ranking's batches.
    """
    if family is Family.PERSONALIZED_RANKING:
        least, most = _RANKING_BATCH_RECORDS
        count = default_threads() if threads is None else threads
        return min(most, max(least, _RANKING_LINES_PER_THREAD * count))
    return max(1, min(_BATCH_RECORDS, _RESULT_BUDGET // max(1, num_results)))


class ScoredBatch:
    """The output lines of one batch, in input order, and how many of them are errors.

    Held as a list of lines, or as one bytes object and the lines' ends where the extension wrote
    the whole batch (personalized ranking): the job writes that as it is, and ``lines`` splits it
    only when asked.
    """

    __slots__ = ("_ends", "_lines", "_text", "failed")

    def __init__(self, lines: list[bytes], failed: int) -> None:
        self._lines: list[bytes] | None = lines
        self._text: bytes | None = None
        self._ends: NDArray[np.int64] | None = None
        self.failed = failed

    @classmethod
    def joined(cls, text: bytes, ends: NDArray[np.int64], failed: int = 0) -> ScoredBatch:
        """A batch whose line i is ``text[ends[i - 1]:ends[i]]`` (line 0 from 0)."""
        batch = cls([], failed)
        batch._lines, batch._text, batch._ends = None, text, ends
        return batch

    @property
    def lines(self) -> list[bytes]:
        if self._lines is None:
            assert self._text is not None and self._ends is not None
            ends = self._ends.tolist()
            self._lines = [self._text[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]
        return self._lines

    def __len__(self) -> int:
        if self._lines is not None:
            return len(self._lines)
        assert self._ends is not None
        return int(self._ends.size)

    def text(self) -> bytes:
        """The lines one after another: what the job writes."""
        return self._text if self._text is not None else b"".join(self.lines)


def _quote(value: str) -> str:
    return repr(value)


#: A batch's one heavy step, ready to run on any thread (it releases the GIL): the top-k search, or
#: for ranking the ranking of its itemLists.
SearchCall = Callable[[], Any]
#: Scoring one batch: yields its search (at most once), takes the result back, returns the batch's lines.
ScoringSteps = Generator[SearchCall, Any, "ScoredBatch"]
# A family's handler: the number of failed records, or the steps that return it.
_Handler = Callable[[list[Record], list[int], list[bytes]], "int | Generator[SearchCall, Any, int]"]


def _run_here(steps: ScoringSteps) -> ScoredBatch:
    """Run a batch's steps to the end on this thread."""
    scored: ScoredBatch
    try:
        call = next(steps)
    except StopIteration as done:
        scored = done.value
        return scored
    while True:
        result = call()  # outside the try: only the steps' own end is caught below
        try:
            call = steps.send(result)
        except StopIteration as done:
            scored = done.value
            return scored


class Scorer:
    """Scores batches of records for one job.

    Args:
        model: the loaded model (must hold the arrays the family needs).
        family: the recipe family.
        num_results: results per record (ignored by ranking, which returns the whole itemList).
        threads: kernel threads (default: the CPUs this process may use).
    """

    def __init__(self, model: Model, family: Family, num_results: int, *, threads: int | None = None) -> None:
        if num_results < 1:
            msg = f"numResults must be >= 1, got {num_results}"
            raise ValueError(msg)
        self.model = model
        self.family = family
        self.num_results = num_results
        self.threads = threads
        self._item_objects: NDArray[np.object_] = np.array(model.item_id_list, dtype=object)
        # The ids' JSON texts, for the families whose output lists search results.
        lists_items = family in (
            Family.USER_PERSONALIZATION,
            Family.RELATED_ITEMS,
            Family.PERSONALIZED_RANKING,
        )
        self._item_texts = id_texts(model.item_id_list if lists_items else [])
        self._user_texts = id_texts(model.user_id_list if family is Family.USER_SEGMENTATION else [])
        # Outputs that are the same for every record, built once.
        self._popular: bytes | None = None
        self._popular_scored: bytes | None = None
        if model.item_popularity is not None:
            top = model.popularity_order[:num_results]
            top_ids: list[str] = self._item_objects[top].tolist()
            self._popular = items_output(top_ids)
            self._popular_scored = items_scores_output(top_ids, self._popularity_share(top))
        self._check_model()

    def _check_model(self) -> None:
        model = self.model
        needs_users = self.family in (
            Family.USER_PERSONALIZATION,
            Family.PERSONALIZED_RANKING,
            Family.USER_SEGMENTATION,
        )
        if needs_users and (model.user_factors is None or model.item_factors is None):
            msg = f"user_factors is missing: {self.family.value} needs user and item vectors"
            raise ModelError(msg)
        if self.family is Family.RELATED_ITEMS and model.item_factors is None:
            msg = "item_factors is missing: RELATED_ITEMS needs item vectors"
            raise ModelError(msg)
        if self.family is Family.POPULAR_ITEMS and model.item_popularity is None:
            msg = "item_popularity is missing: POPULAR_ITEMS needs it"
            raise ModelError(msg)

    def _popularity_share(self, rows: NDArray[np.int64]) -> bytes:
        popularity = self.model.item_popularity
        assert popularity is not None
        total = float(popularity.sum())
        share = popularity[rows] / total if total > 0 else np.full(rows.size, 1.0 / popularity.size)
        return format_score_rows(share, [rows.size])[0]

    # ----------------------------------------------------------------------------------------

    def score(self, records: Sequence[Record], item_lists: IdLists | None = None) -> ScoredBatch:
        """One output line per record, in order; bad records become error lines.

        ``item_lists``: the records' itemLists as :func:`~recbatch.jobs.records.parse_records`
        gives them (personalized ranking); without it, each record's ``item_list``.
        """
        return _run_here(self.steps(records, item_lists))

    def score_lines(self, lines: Sequence[bytes]) -> ScoredBatch:
        """:meth:`score` for a batch of input lines (stripped, not blank): what a job does."""
        return _run_here(self.steps_for_lines(lines))

    def steps_for_lines(self, lines: Sequence[bytes]) -> ScoringSteps:
        """:meth:`score_lines` in steps, as :meth:`steps`.

        Personalized ranking reads, ranks and writes the lines of the common shape (their user
        known, or ranked by popularity) in one call that releases the GIL: the yielded one, so on
        the job's search thread. The other lines (rare) go through :meth:`steps` on this thread
        afterwards.
        """
        if self.family is not Family.PERSONALIZED_RANKING:
            return (yield from self.steps(*parse_records(lines, self.family)))
        model = self.model
        assert model.user_factors is not None and model.item_factors is not None
        ranked: RankedLineBatch = yield functools.partial(
            rank_ranking_batch,
            lines,
            users=model.user_lookup,
            items=model.item_lookup,
            user_factors=model.user_factors,
            item_factors=model.item_factors,
            popularity=model.item_popularity,
            max_id_chars=MAX_ID_LENGTH,
            max_list=MAX_ITEM_LIST,
            threads=self.threads,
        )
        if ranked.done.all():  # the usual batch: written as the extension wrote it
            return ScoredBatch.joined(ranked.text, ranked.ends)
        done = ranked.lines()
        rest = [position for position, line in enumerate(done) if line is None]
        failed = 0
        if rest:
            scored = _run_here(self.steps(*parse_records([lines[p] for p in rest], self.family)))
            for position, line in zip(rest, scored.lines, strict=True):
                done[position] = line
            failed = scored.failed
        return ScoredBatch(cast("list[bytes]", done), failed)  # every None replaced above

    def steps(self, records: Sequence[Record], item_lists: IdLists | None = None) -> ScoringSteps:
        """:meth:`score` in steps: yields the batch's search (if it needs one), to be sent its result."""
        lines: list[bytes] = [b""] * len(records)
        failed = 0
        todo: list[int] = []
        for position, record in enumerate(records):
            if record.error is not None:
                lines[position] = error_line(record.input_json, record.error)
                failed += 1
            else:
                todo.append(position)
        if todo:
            handler: _Handler
            if self.family is Family.PERSONALIZED_RANKING:
                if item_lists is None:
                    item_lists = IdLists.from_lists([record.item_list for record in records])
                handler = functools.partial(self._personalized_ranking, item_lists=item_lists)
            else:
                handlers: dict[Family, _Handler] = {
                    Family.USER_PERSONALIZATION: self._user_personalization,
                    Family.POPULAR_ITEMS: self._popular_items,
                    Family.RELATED_ITEMS: self._related_items,
                    Family.USER_SEGMENTATION: self._user_segmentation,
                }
                handler = handlers[self.family]
            outcome = handler([records[p] for p in todo], todo, lines)
            failed += outcome if isinstance(outcome, int) else (yield from outcome)
        return ScoredBatch(lines, failed)

    # Each handler fills lines[positions[j]] for records[j] and returns how many failed; those that
    # search yield the search first (see steps).

    def _user_personalization(
        self, records: list[Record], positions: list[int], lines: list[bytes]
    ) -> Generator[SearchCall, Any, int]:
        model = self.model
        failed = 0
        rows = model.user_lookup.rows([record.user_id or "" for record in records])
        warm: list[int] = np.flatnonzero(rows >= 0).tolist()
        for j in np.flatnonzero(rows < 0).tolist():
            record = records[j]
            if self._popular_scored is not None:
                lines[positions[j]] = ok_line(record.input_json, self._popular_scored)
            else:
                lines[positions[j]] = error_line(
                    record.input_json,
                    f"{UNKNOWN_USER}: userId {_quote(record.user_id or '')} is not in the model, "
                    f"and the model has no item_popularity for cold start",
                )
                failed += 1
        if warm:
            assert model.user_factors is not None
            k = min(self.num_results, model.n_items)
            queries = model.user_factors[rows[rows >= 0]]
            result: TopKResult = yield functools.partial(
                model.item_index.search, queries, k, threads=self.threads, logsumexp=True
            )
            assert result.logsumexp is not None
            # Softmax over the whole catalogue: exp(s - logsumexp(all scores of the user)).
            # Padding (-1, score -inf) gives 0 or NaN here and is left out of the output.
            with np.errstate(invalid="ignore"):
                probabilities = np.exp(result.scores.astype(np.float64) - result.logsumexp[:, None])
            inputs = [records[j].input_json for j in warm]
            for j, line in zip(
                warm, items_lines(inputs, self._item_texts, result.indices, probabilities), strict=True
            ):
                lines[positions[j]] = line
        return failed

    def _popular_items(self, records: list[Record], positions: list[int], lines: list[bytes]) -> int:
        popular = self._popular
        assert popular is not None
        for j, record in enumerate(records):
            lines[positions[j]] = ok_line(record.input_json, popular)
        return 0

    def _known_items(
        self,
        records: list[Record],
        positions: list[int],
        lines: list[bytes],
        *,
        fallback: bytes | None,
        unknown_reason: str,
    ) -> tuple[list[int], NDArray[np.int64], int]:
        """Records whose itemId is known (their positions in records, their rows); the rest answered."""
        failed = 0
        all_rows = self.model.item_lookup.rows([record.item_id or "" for record in records])
        known: list[int] = np.flatnonzero(all_rows >= 0).tolist()
        for j in np.flatnonzero(all_rows < 0).tolist():
            record = records[j]
            if fallback is not None:
                lines[positions[j]] = ok_line(record.input_json, fallback)
            else:
                lines[positions[j]] = error_line(
                    record.input_json,
                    f"{UNKNOWN_ITEM}: itemId {_quote(record.item_id or '')} is not in the model, {unknown_reason}",
                )
                failed += 1
        return known, all_rows[all_rows >= 0], failed

    def _related_items(
        self, records: list[Record], positions: list[int], lines: list[bytes]
    ) -> Generator[SearchCall, Any, int]:
        model = self.model
        known, rows, failed = self._known_items(
            records,
            positions,
            lines,
            fallback=self._popular,
            unknown_reason="and the model has no item_popularity for cold start",
        )
        if not known:
            return failed
        k = min(self.num_results, model.n_items - 1)
        if k < 1:  # a one-item catalogue: nothing is related to its only item
            nothing = items_output([])
            for j in known:
                lines[positions[j]] = ok_line(records[j].input_json, nothing)
        else:
            query_rows = np.asarray(rows, dtype=np.int64)
            queries = model.unit_item_factors[query_rows]
            # Each query excludes its own item: CSR with exactly one entry per row.
            exclude = (np.arange(len(known) + 1, dtype=np.int64), query_rows)
            result: TopKResult = yield functools.partial(
                model.cosine_index.search, queries, k, exclude=exclude, threads=self.threads
            )
            inputs = [records[j].input_json for j in known]
            for j, line in zip(known, items_lines(inputs, self._item_texts, result.indices), strict=True):
                lines[positions[j]] = line
        return failed

    def _user_segmentation(
        self, records: list[Record], positions: list[int], lines: list[bytes]
    ) -> Generator[SearchCall, Any, int]:
        model = self.model
        known, rows, failed = self._known_items(
            records, positions, lines, fallback=None, unknown_reason="so no user has an affinity to it"
        )
        if not known:
            return failed
        assert model.item_factors is not None
        k = min(self.num_results, model.n_users)
        queries = model.item_factors[np.asarray(rows, dtype=np.int64)]
        result: TopKResult = yield functools.partial(
            model.user_index.search, queries, k, threads=self.threads
        )
        inputs = [records[j].input_json for j in known]
        for j, line in zip(known, users_lines(inputs, self._user_texts, result.indices), strict=True):
            lines[positions[j]] = line
        return failed

    def _personalized_ranking(
        self, records: list[Record], positions: list[int], lines: list[bytes], *, item_lists: IdLists
    ) -> Generator[SearchCall, Any, int]:
        model = self.model
        popularity = model.item_popularity
        failed = 0
        user_array = model.user_lookup.rows([record.user_id or "" for record in records])
        ranked: list[int] = list(range(len(records)))  # positions in records
        if popularity is None and (cold_users := np.flatnonzero(user_array < 0)).size:
            for j in cold_users.tolist():
                record = records[j]
                lines[positions[j]] = error_line(
                    record.input_json,
                    f"{UNKNOWN_USER}: userId {_quote(record.user_id or '')} is not in the model, "
                    f"and the model has no item_popularity to rank by",
                )
            failed = int(cold_users.size)
            ranked = np.flatnonzero(user_array >= 0).tolist()
            user_array = user_array[ranked]
        if not ranked:
            return failed

        # The batch's lists themselves when every record of the batch is ranked (the usual case).
        taken = [positions[j] for j in ranked]
        in_place = len(taken) == len(item_lists) and taken[-1] == len(taken) - 1
        lists = item_lists if in_place else item_lists.take(np.asarray(taken, dtype=np.int64))
        offsets = lists.offsets
        counts = np.diff(offsets)
        cold = np.flatnonzero(user_array < 0)
        assert model.user_factors is not None
        queries = model.user_factors[np.maximum(user_array, 0)]  # a cold list is re-ranked below
        lookup, ranker, threads = model.item_lookup, model.item_ranker, self.threads

        def look_up_and_rank() -> tuple[RankedLists, NDArray[np.int64], list[bytes]]:
            # The search call, so on the search thread (both steps release the GIL): the lists in
            # CSR layout over catalogue rows, looked up where their bytes lie. An item outside
            # the catalogue gets a negative entry of its own per distinct id (-1 - its place in
            # `codes`), so the ranker keeps it once, in place.
            entries = lookup.rows_in(lists)
            outside = np.flatnonzero(entries < 0)
            codes: dict[bytes, int] = {}
            if outside.size:
                entries[outside] = [
                    -1 - codes.setdefault(item, len(codes)) for item in lists.entry_bytes(outside)
                ]
            return ranker.rank(queries, offsets, entries, threads=threads), entries, list(codes)

        result, entries, outside_ids = yield look_up_and_rank
        order = result.order
        probability = result.softmax()  # warm users: the softmax of u.v over the list's catalogue items
        if cold.size:
            assert popularity is not None
            # Cold users: each catalogue item's share of the list's popularity (uniform if all
            # are 0), in the ranker's order by popularity.
            cold_offsets = np.zeros(cold.size + 1, dtype=np.int64)
            np.cumsum(counts[cold], out=cold_offsets[1:])
            cold_entries = np.concatenate([entries[offsets[i] : offsets[i + 1]] for i in cold.tolist()])
            by_popularity = rank_by_value(popularity, cold_offsets, cold_entries)
            # A row past `width` (the longest cold list) is padding in both rankings: a list has
            # as many distinct entries whatever it is ranked by.
            width = by_popularity.order.shape[1]
            order[cold, :width] = by_popularity.order
            cold_known = by_popularity.scores > -np.inf
            popular = np.where(cold_known, by_popularity.scores, 0.0)
            # Summed in rank order, one item after another: the order rank_ranking_lines adds them
            # in, so that both ways write the same digits.
            total = np.cumsum(popular, axis=1)[:, -1:]
            n_known = cold_known.sum(axis=1, keepdims=True)
            share = np.where(
                total > 0, popular / np.where(total > 0, total, 1.0), cold_known / np.maximum(n_known, 1)
            )
            probability[cold, :width] = share

        # Each output slot's position in the lists' entries, -1 past the record's list; then its
        # text's row: the catalogue's (written once per job), and past it the batch's own texts
        # of the ids outside the catalogue.
        ranked_slots = np.where(order >= 0, offsets[:-1, None] + order, -1)
        outside_texts = None
        if outside_ids:
            outside_texts = id_texts([item.decode("utf-8", "surrogatepass") for item in outside_ids])
            entries = np.where(entries >= 0, entries, len(self._item_texts) - 1 - entries)
        text_rows = np.where(ranked_slots >= 0, entries[np.maximum(ranked_slots, 0)], -1)
        inputs = [records[j].input_json for j in ranked]
        outputs = items_lines(inputs, self._item_texts, text_rows, probability, extra=outside_texts)
        if in_place:
            lines[:] = outputs
        else:
            for j, line in zip(ranked, outputs, strict=True):
                lines[positions[j]] = line
        return failed
