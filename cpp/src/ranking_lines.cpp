#include "recbatch/ranking_lines.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "parallel_for.hpp"
#include "recbatch/id_lines.hpp"
#include "recbatch/rank_lists.hpp"
#include "recbatch/row_texts.hpp"

namespace recbatch {

namespace {

// Lines per task: every step of a line is done by one thread, so a batch of 1,024 lines keeps
// 16 threads busy, and a task's lists, scores and text stay in its core's cache.
constexpr std::size_t kLinesPerTask = 64;

// Some of a task's lists ranked by one source: `lists` are positions among the task's lists,
// whose CSR layout is (offsets, entries); out, in rows of `width`, as rank_lists writes them.
struct RankedSome {
    std::vector<std::int64_t> order;
    std::vector<double> scores, logsumexp;
};

RankedSome rank_some(const ListScores& source, const std::vector<std::size_t>& lists,
                     const std::vector<std::int64_t>& offsets, const std::vector<std::int64_t>& entries,
                     std::size_t width) {
    std::vector<std::int64_t> some_offsets(lists.size() + 1, 0), some_entries;
    for (std::size_t r = 0; r < lists.size(); ++r) {
        some_entries.insert(some_entries.end(), entries.begin() + offsets[lists[r]], entries.begin() + offsets[lists[r] + 1]);
        some_offsets[r + 1] = static_cast<std::int64_t>(some_entries.size());
    }
    RankedSome ranked;
    ranked.order.resize(lists.size() * width);
    ranked.scores.resize(lists.size() * width);
    ranked.logsumexp.resize(lists.size());
    rank_lists(source, CandidateLists{some_offsets.data(), some_entries.data(), lists.size()}, width, ranked.order.data(),
               ranked.scores.data(), ranked.logsumexp.data(), 1);
    return ranked;
}

// One task's output: which of its lines are done, and their output lines one after another.
struct TaskLines {
    std::vector<std::uint8_t> done;
    std::string text;
    std::vector<std::size_t> ends;  // per line done: where its output line ends in `text`
};

// rank_ranking_lines for buffer's lines, ending at line_ends[0, lines) (counted from the
// buffer's start), on the calling thread.
void rank_part(const RankingModel& model, std::string_view buffer, const std::int64_t* line_ends, std::size_t lines,
               TaskLines& out) {
    const IdLineShape shape{"userId", "itemList", model.max_id_chars, model.max_list};
    const IdLineScan scan = scan_id_lines(buffer, line_ends, lines, shape);

    // The lines ranked here: read by the scan, and their user known to the model (warm) or
    // ranked by popularity where the model has it (cold).
    std::vector<std::string_view> keys(lines);
    for (std::size_t i = 0; i < lines; ++i) {
        keys[i] = buffer.substr(static_cast<std::size_t>(scan.id_start[i]), static_cast<std::size_t>(scan.id_length[i]));
    }
    std::vector<std::int64_t> user_rows(lines);
    model.users->find_many(keys.data(), lines, user_rows.data());
    out.done.assign(lines, 0);
    std::vector<std::size_t> kept, warm, cold;  // warm and cold: positions in kept
    kept.reserve(lines);
    for (std::size_t i = 0; i < lines; ++i) {
        if (scan.accepted[i] != 0 && (user_rows[i] >= 0 || model.popularity != nullptr)) {
            out.done[i] = 1;
            (user_rows[i] >= 0 ? warm : cold).push_back(kept.size());
            kept.push_back(i);
        }
    }
    const std::size_t n = kept.size();

    // Their lists in CSR layout, each entry an item row. An id outside the catalogue gets
    // -1 - (its place among the task's distinct outside ids), so that the ranker keeps it once
    // per list, in place.
    std::vector<std::int64_t> offsets(n + 1, 0);
    std::vector<std::string_view> item_keys, item_texts;
    std::size_t width = 0;
    for (std::size_t r = 0; r < n; ++r) {
        const std::size_t i = kept[r];
        for (std::int64_t e = scan.list_offsets[i]; e < scan.list_offsets[i + 1]; ++e) {
            const auto start = static_cast<std::size_t>(scan.entry_start[e]);
            const auto length = static_cast<std::size_t>(scan.entry_length[e]);
            item_keys.push_back(buffer.substr(start, length));
            // The id with its quotes: the scan accepted it with no escape and no control
            // character, so these bytes are its JSON text, the catalogue's text for it where it
            // is an item (json_strings escapes nothing else). Copied from the task's own lines,
            // which are in cache, where the catalogue's texts are scattered over memory.
            item_texts.push_back(buffer.substr(start - 1, length + 2));
        }
        offsets[r + 1] = static_cast<std::int64_t>(item_keys.size());
        width = std::max(width, static_cast<std::size_t>(offsets[r + 1] - offsets[r]));
    }
    std::vector<std::int64_t> entries(item_keys.size());
    model.items->find_many(item_keys.data(), item_keys.size(), entries.data());
    std::unordered_map<std::string_view, std::int64_t> outside_codes;
    for (std::size_t e = 0; e < entries.size(); ++e) {
        if (entries[e] >= 0) continue;
        const auto found = outside_codes.emplace(item_keys[e], static_cast<std::int64_t>(outside_codes.size()));
        entries[e] = -1 - found.first->second;
    }

    // Warm lists by the inner products with their user's vector, cold ones by popularity.
    std::vector<float> queries(warm.size() * model.dim);
    for (std::size_t w = 0; w < warm.size(); ++w) {
        std::memcpy(queries.data() + w * model.dim,
                    model.user_factors + static_cast<std::size_t>(user_rows[kept[warm[w]]]) * model.dim,
                    model.dim * sizeof(float));
    }
    ListScores by_user, by_popularity;
    by_user.queries = queries.data();
    by_user.items = model.item_factors;
    by_user.dim = model.dim;
    by_user.n_items = by_popularity.n_items = model.items->size();
    by_popularity.item_values = model.popularity;
    const RankedSome warm_ranked = rank_some(by_user, warm, offsets, entries, width);
    const RankedSome cold_ranked = rank_some(by_popularity, cold, offsets, entries, width);

    // Each ranked entry's text (its place among the task's entries) and its share. Warm:
    // exp(score - logsumexp) for catalogue items. Cold: each catalogue item's share of the list's
    // popularity, summed in rank order (uniform where it is all 0). 0 for the others and for
    // padding.
    constexpr double kNone = -std::numeric_limits<double>::infinity();
    std::vector<std::int64_t> text_rows(n * width, -1);
    std::vector<double> shares(n * width, 0.0);
    const auto fill = [&](const std::vector<std::size_t>& lists, const RankedSome& ranked, bool by_popularity_share) {
        for (std::size_t s = 0; s < lists.size(); ++s) {
            const std::size_t r = lists[s];
            const std::int64_t* order = ranked.order.data() + s * width;
            const double* scores = ranked.scores.data() + s * width;
            double total = 0;
            std::size_t known = 0;
            for (std::size_t j = 0; j < width; ++j) {
                if (scores[j] > kNone) {
                    total += scores[j];
                    ++known;
                }
            }
            for (std::size_t j = 0; j < width && order[j] >= 0; ++j) {
                text_rows[r * width + j] = offsets[r] + order[j];
                if (!(scores[j] > kNone)) continue;  // outside the catalogue (or NaN): 0
                if (!by_popularity_share) {
                    shares[r * width + j] = std::exp(scores[j] - ranked.logsumexp[s]);
                } else {
                    shares[r * width + j] = total > 0 ? scores[j] / total : 1.0 / static_cast<double>(known);
                }
            }
        }
    };
    fill(warm, warm_ranked, false);
    fill(cold, cold_ranked, true);

    const RowTexts texts(item_texts);
    std::vector<std::string_view> inputs(n);
    for (std::size_t r = 0; r < n; ++r) {
        const std::size_t i = kept[r];
        const auto begin = static_cast<std::size_t>(i == 0 ? 0 : line_ends[i - 1]);
        inputs[r] = buffer.substr(begin, static_cast<std::size_t>(line_ends[i]) - begin);
    }
    const RowFormat format{"{\"input\":", ",\"output\":{\"recommendedItems\":", ",\"scores\":",
                           "},\"error\":null}\n"};
    out.ends.assign(n, 0);
    format_rows(texts, nullptr, text_rows.data(), shares.data(), n, width, format, inputs.data(), out.text,
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
    std::vector<TaskLines> parts(tasks);
    parallel_for(tasks, std::max<std::size_t>(threads, 1), [&](std::size_t, std::size_t task) {
        const std::size_t first = task * kLinesPerTask, count = std::min(kLinesPerTask, lines - first);
        const std::int64_t start = first == 0 ? 0 : line_ends[first - 1];
        std::vector<std::int64_t> ends(line_ends + first, line_ends + first + count);
        for (std::int64_t& end : ends) end -= start;
        rank_part(model, buffer.substr(static_cast<std::size_t>(start), static_cast<std::size_t>(ends.back())),
                  ends.data(), count, parts[task]);
    });
    out.done.clear();
    out.lines.clear();
    out.storage.clear();
    out.storage.reserve(tasks);
    for (TaskLines& part : parts) {
        out.done.insert(out.done.end(), part.done.begin(), part.done.end());
        out.storage.push_back(std::move(part.text));
    }
    // Views taken once every text has its place (moving a short string moves its bytes).
    for (std::size_t task = 0; task < tasks; ++task) {
        const std::string_view text = out.storage[task];
        std::size_t start = 0;
        for (const std::size_t end : parts[task].ends) {
            out.lines.push_back(text.substr(start, end - start));
            start = end;
        }
    }
}

}  // namespace recbatch
