// A personalized-ranking batch from its input lines to its output lines, in one call that needs
// no Python: the lines of the common shape ({"userId": ..., "itemList": [...]}, see
// id_lines.hpp) whose user the model knows are read, looked up, ranked (rank_lists.hpp) and
// written (row_texts.hpp). The job's own Python thread then only reads and writes the files; it
// spent about 8 us per record on these steps, more than the ranking itself.
//
// A user the model lacks is ranked by the items' popularity where the model has it. Every other
// line (another shape, an unknown user and no popularity) is left to the caller, which gives it
// the meaning the JSON parser and the model's fallbacks give it; so are the errors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "recbatch/id_index.hpp"

namespace recbatch {

struct RankingModel {
    const IdIndex* users = nullptr;
    const IdIndex* items = nullptr;
    const float* user_factors = nullptr;  // users->size() x dim
    const float* item_factors = nullptr;  // items->size() x dim
    std::size_t dim = 0;
    const double* popularity = nullptr;    // items->size() values, finite and >= 0; or none
    std::size_t max_id_chars = 0;          // the longest id, in code points
    std::size_t max_list = 0;              // the longest itemList
};

struct RankedLines {
    std::vector<std::uint8_t> done;       // per input line: 1 when its output line is in `lines`
    std::vector<std::string_view> lines;  // the output lines of the lines done, in input order
    std::vector<std::string> storage;     // the bytes `lines` views (each task's, as it wrote them:
                                          // not copied again into one string)
    RankedLines() = default;
    RankedLines(const RankedLines&) = delete;  // the views would point into the other's storage
    RankedLines& operator=(const RankedLines&) = delete;
    RankedLines(RankedLines&&) = default;
    RankedLines& operator=(RankedLines&&) = default;
};

// Line i is buffer[line_ends[i - 1], line_ends[i]) (line 0 starts at 0), without its newline.
// A line done is written as the job's other ranking lines are: {"input": <the line>, "output":
// {"recommendedItems": [...], "scores": [...]}, "error": null}, the list's catalogue items by
// score descending (ties by row), each with its softmax share over them, then the items outside
// the catalogue in list order with 0; a repeated item counts once. For a user the model lacks,
// the score is the item's popularity and the share its part of the list's total, summed in rank
// order (1 / the catalogue items where the total is 0). Each item is written as its line spells
// it, in quotes: the scan takes ids with no escape and no control character, so that is the
// item's JSON text. Ranked on up to `threads` threads.
void rank_ranking_lines(const RankingModel& model, std::string_view buffer, const std::int64_t* line_ends,
                        std::size_t lines, std::size_t threads, RankedLines& out);

}  // namespace recbatch
