#include "recbatch/ranking_lines.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <unordered_map>

#include "parallel_for.hpp"
#include "recbatch/id_lines.hpp"
#include "recbatch/rank_lists.hpp"

namespace recbatch {

namespace {

// Lines per task: every step of a line is done by one thread, so a batch of 1,024 lines keeps
// 16 threads busy, and a task's lists, scores and text stay in its core's cache.
constexpr std::size_t kLinesPerTask = 64;

// rank_ranking_lines for buffer's lines, ending at line_ends[0, lines) (counted from the
// buffer's start), on the calling thread.
void rank_part(const RankingModel& model, std::string_view buffer, const std::int64_t* line_ends, std::size_t lines,
               RankedLines& out) {
    const IdLineShape shape{"userId", "itemList", model.max_id_chars, model.max_list};
    const IdLineScan scan = scan_id_lines(buffer, line_ends, lines, shape);

    // The lines ranked here: read by the scan, their user known to the model.
    std::vector<std::string_view> keys(lines);
    for (std::size_t i = 0; i < lines; ++i) {
        keys[i] = buffer.substr(static_cast<std::size_t>(scan.id_start[i]), static_cast<std::size_t>(scan.id_length[i]));
    }
    std::vector<std::int64_t> user_rows(lines);
    model.users->find_many(keys.data(), lines, user_rows.data());
    out.done.assign(lines, 0);
    std::vector<std::size_t> kept;
    kept.reserve(lines);
    for (std::size_t i = 0; i < lines; ++i) {
        if (scan.accepted[i] != 0 && user_rows[i] >= 0) {
            out.done[i] = 1;
            kept.push_back(i);
        }
    }
    const std::size_t n = kept.size();

    // Their lists in CSR layout, each entry an item row. An id outside the catalogue gets
    // -1 - (its place among the batch's distinct outside ids), so that the ranker keeps it once
    // per list, in place, and its text can be written from its own bytes: the scan accepted it
    // with no escape and no control character, so quoting it is its JSON text.
    std::vector<std::int64_t> offsets(n + 1, 0);
    std::vector<std::string_view> item_keys;
    std::size_t width = 0;
    for (std::size_t r = 0; r < n; ++r) {
        const std::size_t i = kept[r];
        for (std::int64_t e = scan.list_offsets[i]; e < scan.list_offsets[i + 1]; ++e) {
            item_keys.push_back(buffer.substr(static_cast<std::size_t>(scan.entry_start[e]),
                                              static_cast<std::size_t>(scan.entry_length[e])));
        }
        offsets[r + 1] = static_cast<std::int64_t>(item_keys.size());
        width = std::max(width, static_cast<std::size_t>(offsets[r + 1] - offsets[r]));
    }
    std::vector<std::int64_t> entries(item_keys.size());
    model.items->find_many(item_keys.data(), item_keys.size(), entries.data());
    std::unordered_map<std::string_view, std::int64_t> outside_codes;
    std::vector<std::string> outside_texts;
    for (std::size_t e = 0; e < entries.size(); ++e) {
        if (entries[e] >= 0) continue;
        const auto found = outside_codes.emplace(item_keys[e], static_cast<std::int64_t>(outside_texts.size()));
        if (found.second) outside_texts.push_back("\"" + std::string(item_keys[e]) + "\"");
        entries[e] = -1 - found.first->second;
    }

    std::vector<float> queries(n * model.dim);
    for (std::size_t r = 0; r < n; ++r) {
        std::memcpy(queries.data() + r * model.dim,
                    model.user_factors + static_cast<std::size_t>(user_rows[kept[r]]) * model.dim,
                    model.dim * sizeof(float));
    }
    std::vector<std::int64_t> order(n * width);
    std::vector<double> scores(n * width), logsumexp(n);
    ListScores source;
    source.queries = queries.data();
    source.items = model.item_factors;
    source.dim = model.dim;
    source.n_items = model.items->size();
    rank_lists(source, CandidateLists{offsets.data(), entries.data(), n}, width, order.data(), scores.data(),
               logsumexp.data(), 1);

    // Each ranked entry's text row (an outside id's past the catalogue's, in `extra`) and its
    // share: exp(score - logsumexp) for catalogue items, 0 for the others and for padding.
    const auto catalogue = static_cast<std::int64_t>(model.item_texts->size());
    std::vector<std::int64_t> text_rows(n * width);
    for (std::size_t r = 0; r < n; ++r) {
        for (std::size_t j = 0; j < width; ++j) {
            const std::size_t at = r * width + j;
            if (order[at] < 0) {
                text_rows[at] = -1;
                scores[at] = 0.0;
                continue;
            }
            const std::int64_t entry = entries[static_cast<std::size_t>(offsets[r] + order[at])];
            text_rows[at] = entry >= 0 ? entry : catalogue - 1 - entry;
            const bool known = scores[at] > -std::numeric_limits<double>::infinity();
            scores[at] = known ? std::exp(scores[at] - logsumexp[r]) : 0.0;
        }
    }
    std::vector<std::string_view> outside_views(outside_texts.begin(), outside_texts.end());
    const RowTexts extra(outside_views);
    std::vector<std::string_view> inputs(n);
    for (std::size_t r = 0; r < n; ++r) {
        const std::size_t i = kept[r];
        const auto begin = static_cast<std::size_t>(i == 0 ? 0 : line_ends[i - 1]);
        inputs[r] = buffer.substr(begin, static_cast<std::size_t>(line_ends[i]) - begin);
    }
    const RowFormat format{"{\"input\":", ",\"output\":{\"recommendedItems\":", ",\"scores\":",
                           "},\"error\":null}\n"};
    out.ends.assign(n, 0);
    format_rows(*model.item_texts, &extra, text_rows.data(), scores.data(), n, width, format, inputs.data(), out.text,
                out.ends.data());
}

}  // namespace

void rank_ranking_lines(const RankingModel& model, std::string_view buffer, const std::int64_t* line_ends,
                        std::size_t lines, std::size_t threads, RankedLines& out) {
    for (std::size_t i = 0; i < lines; ++i) {
        if (line_ends[i] < (i == 0 ? 0 : line_ends[i - 1]) || line_ends[i] > static_cast<std::int64_t>(buffer.size())) {
            throw std::invalid_argument("line_ends must be non-decreasing and within the buffer");
        }
    }
    // Each task ranks its own lines from where they start: its ends counted from there.
    const std::size_t tasks = (lines + kLinesPerTask - 1) / kLinesPerTask;
    std::vector<RankedLines> parts(tasks);
    parallel_for(tasks, std::max<std::size_t>(threads, 1), [&](std::size_t, std::size_t task) {
        const std::size_t first = task * kLinesPerTask, count = std::min(kLinesPerTask, lines - first);
        const std::int64_t start = first == 0 ? 0 : line_ends[first - 1];
        std::vector<std::int64_t> ends(line_ends + first, line_ends + first + count);
        for (std::int64_t& end : ends) end -= start;
        rank_part(model, buffer.substr(static_cast<std::size_t>(start), static_cast<std::size_t>(ends.back())),
                  ends.data(), count, parts[task]);
    });
    out.done.clear();
    out.text.clear();
    out.ends.clear();
    for (const RankedLines& part : parts) {
        const std::size_t shift = out.text.size();
        out.done.insert(out.done.end(), part.done.begin(), part.done.end());
        out.text += part.text;
        for (const std::size_t end : part.ends) out.ends.push_back(shift + end);
    }
}

}  // namespace recbatch
