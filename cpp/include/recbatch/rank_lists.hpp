// Ranking given candidate lists, one per query: what personalized ranking does with a record's
// itemList. Each list is short (Personalize takes up to 500 items), so the work is gathering
// rows and ordering them, not a top-k scan; done per list in Python it cost a job tens of
// microseconds per record, several times the arithmetic.
#pragma once

#include <cstddef>
#include <cstdint>

namespace recbatch {

// Lists in CSR layout: list i is entries[offsets[i], offsets[i + 1]). An entry >= 0 is a
// catalogue row; an entry < 0 stands for something outside the catalogue, and equal negative
// values within a list are the same thing (a repeat).
struct CandidateLists {
    const std::int64_t* offsets = nullptr;  // n_lists + 1, from 0, not decreasing
    const std::int64_t* entries = nullptr;  // each < n_items
    std::size_t n_lists = 0;
};

// Where a catalogue entry's score comes from: the inner product of list i's query (row i of
// `queries`) with the item's row, summed in float64 over exact float32 products; or, when
// `queries` is null, the item's given value.
struct ListScores {
    const float* queries = nullptr;       // n_lists x dim
    const float* items = nullptr;         // n_items x dim
    std::size_t dim = 0;
    const double* item_values = nullptr;  // n_items, when queries is null
    std::size_t n_items = 0;
};

// Every list ranked, into rows of `width` (at least the longest list's length):
//   order[i * width + j]  position within list i of its j-th entry once ranked, -1 past the end;
//   scores[i * width + j] that entry's score, -inf for an entry outside the catalogue and padding;
//   logsumexp[i]          log(sum(exp(score))) over the list's ranked catalogue entries (-inf: none).
// A repeated entry is kept once, at its first position. Catalogue entries come first, by score
// descending, ties (and NaN scores, placed after all others) by the lower row; then the entries
// outside the catalogue, in list order. Lists are ranked on up to `threads` threads.
void rank_lists(const ListScores& source, const CandidateLists& lists, std::size_t width, std::int64_t* order,
                double* scores, double* logsumexp, std::size_t threads);

}  // namespace recbatch
