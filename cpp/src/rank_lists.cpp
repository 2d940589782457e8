#include "recbatch/rank_lists.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/list_dots.hpp"
#include "parallel_for.hpp"
#include "prefetch.hpp"
#include "recbatch/simd_level.hpp"

namespace recbatch {

namespace {

struct Ranked {
    double score;
    std::int64_t row;
    std::int64_t position;
    std::uint64_t key;  // sorts as the score descending, NaN last (see with_key)
};

// The score as an unsigned key whose ascending order is the scores' descending order, NaN last:
// the sort then compares integers, (key, row), with no test for NaN in every comparison.
inline void with_key(Ranked& entry) {
    if (std::isnan(entry.score)) {
        entry.key = ~std::uint64_t{0};
        return;
    }
    const double score = entry.score == 0.0 ? 0.0 : entry.score;  // -0.0 ties with +0.0
    std::uint64_t bits;
    std::memcpy(&bits, &score, sizeof bits);
    // IEEE order to unsigned order: negative numbers have every bit flipped, others the sign bit.
    const std::uint64_t ascending = (bits >> 63) != 0 ? ~bits : bits | (std::uint64_t{1} << 63);
    entry.key = ~ascending;
}

inline bool ranks_before(const Ranked& a, const Ranked& b) { return a.key < b.key || (a.key == b.key && a.row < b.row); }

// The entries already seen in the current list: an open-addressing set whose slots carry the
// stamp of the list that filled them, so a new list starts empty without clearing the table.
class SeenSet {
  public:
    // Empties the set for a list of up to n entries.
    void start(std::size_t n) {
        std::size_t capacity = 16;
        while (capacity < 2 * n) capacity *= 2;
        if (capacity > slots_.size()) {
            slots_.assign(capacity, Slot{0, 0});
            stamp_ = 0;
        }
        mask_ = slots_.size() - 1;
        ++stamp_;
    }

    // Whether `entry` is new to the set (it is added).
    bool insert(std::int64_t entry) {
        // Fibonacci hashing: consecutive rows spread over the table.
        std::size_t slot = static_cast<std::size_t>((static_cast<std::uint64_t>(entry) * 0x9E3779B97F4A7C15ull) >> 32) & mask_;
        for (;; slot = (slot + 1) & mask_) {
            Slot& s = slots_[slot];
            if (s.stamp != stamp_) {
                s = Slot{entry, stamp_};
                return true;
            }
            if (s.entry == entry) return false;
        }
    }

  private:
    struct Slot {
        std::int64_t entry;
        std::uint64_t stamp;
    };
    std::vector<Slot> slots_;
    std::size_t mask_ = 0;
    std::uint64_t stamp_ = 0;
};

// One thread's buffers, reused from list to list.
struct Scratch {
    SeenSet seen;
    std::vector<Ranked> known;
    std::vector<std::int64_t> outside;
    std::vector<const float*> rows;  // the known entries' item rows
    std::vector<double> products;
};

// The widest list products this CPU runs (every kernel gives the same bits, list_dots.hpp).
kernels::ListDotsFn select_list_dots() {
#ifdef RECBATCH_X86_64
    if (simd_level_available(SimdLevel::avx2)) return kernels::avx2::list_dots;
#endif
    return kernels::scalar::list_dots;
}

// How many item rows ahead of the one being scored are fetched. The rows are scattered over the
// catalogue, so each is a miss to memory (a page walk too, in a large catalogue) that takes
// longer than a few inner products: the fetches must start well before.
constexpr std::size_t kAhead = 16;

void fetch_row(const ListScores& source, std::int64_t row) {
    const char* bytes = reinterpret_cast<const char*>(source.items + static_cast<std::size_t>(row) * source.dim);
    const std::size_t n_bytes = source.dim * sizeof(float);
    for (std::size_t byte = 0; byte < n_bytes; byte += 64) prefetch(bytes + byte);
    prefetch(bytes + n_bytes - 1);  // a row need not start on a line
}

void rank_one(const ListScores& source, kernels::ListDotsFn list_dots, const CandidateLists& lists, std::size_t list,
              std::size_t width, Scratch& scratch, std::int64_t* order, double* scores, double* logsumexp) {
    const std::int64_t begin = lists.offsets[list], end = lists.offsets[list + 1];
    const std::int64_t* entries = lists.entries + begin;
    const auto n = static_cast<std::size_t>(end - begin);
    const bool products = source.queries != nullptr;
    // The first rows start on their way now; sorting out the repeats below covers their trip.
    if (products)
        for (std::size_t p = 0; p < n && p < kAhead; ++p)
            if (entries[p] >= 0) fetch_row(source, entries[p]);

    auto& known = scratch.known;
    auto& outside = scratch.outside;
    known.clear();
    outside.clear();
    scratch.seen.start(n);
    for (std::size_t p = 0; p < n; ++p) {
        if (!scratch.seen.insert(entries[p])) continue;  // a repeat: the first occurrence counts
        if (entries[p] >= 0)
            known.push_back({0.0, entries[p], static_cast<std::int64_t>(p), 0});
        else
            outside.push_back(static_cast<std::int64_t>(p));
    }

    if (products) {
        const float* query = source.queries + list * source.dim;
        auto& rows = scratch.rows;
        auto& product = scratch.products;
        rows.resize(known.size());
        product.resize(known.size());
        for (std::size_t i = 0; i < known.size(); ++i)
            rows[i] = source.items + static_cast<std::size_t>(known[i].row) * source.dim;
        // Four rows per call: the kernel's unit, and the rows kAhead further on fetched first.
        for (std::size_t i = 0; i < known.size(); i += 4) {
            const std::size_t count = std::min<std::size_t>(4, known.size() - i);
            for (std::size_t a = i + kAhead; a < i + kAhead + 4 && a < known.size(); ++a) fetch_row(source, known[a].row);
            list_dots(query, rows.data() + i, count, source.dim, product.data() + i);
        }
        for (std::size_t i = 0; i < known.size(); ++i) {
            known[i].score = product[i];
            with_key(known[i]);
        }
    } else {
        for (auto& entry : known) {
            entry.score = source.item_values[entry.row];
            with_key(entry);
        }
    }
    std::sort(known.begin(), known.end(), ranks_before);

    std::int64_t* order_row = order + list * width;
    double* score_row = scores + list * width;
    std::size_t j = 0;
    for (const Ranked& entry : known) {
        order_row[j] = entry.position;
        score_row[j++] = entry.score;
    }
    for (const std::int64_t position : outside) {
        order_row[j] = position;
        score_row[j++] = -std::numeric_limits<double>::infinity();
    }
    for (; j < width; ++j) {
        order_row[j] = -1;
        score_row[j] = -std::numeric_limits<double>::infinity();
    }

    // Sorted, so the largest score is the first (NaN, sorted last, still makes the sum NaN).
    const double peak = known.empty() ? -std::numeric_limits<double>::infinity() : known.front().score;
    if (std::isinf(peak)) {  // no entries, or every score +-inf: the sum is exp(peak) or +inf
        logsumexp[list] = peak;
        return;
    }
    double total = 0;
    for (const Ranked& entry : known) total += std::exp(entry.score - peak);
    logsumexp[list] = peak + std::log(total);
}

}  // namespace

void rank_lists(const ListScores& source, const CandidateLists& lists, std::size_t width, std::int64_t* order,
                double* scores, double* logsumexp, std::size_t threads) {
    // Lists are short: hand them out in chunks so threads do not fight over the counter.
    constexpr std::size_t kListsPerTask = 64;
    const std::size_t n_tasks = (lists.n_lists + kListsPerTask - 1) / kListsPerTask;
    if (threads < 1) threads = 1;
    std::vector<Scratch> scratch(std::min(threads, std::max<std::size_t>(n_tasks, 1)));
    const kernels::ListDotsFn list_dots = select_list_dots();
    parallel_for(n_tasks, scratch.size(), [&](std::size_t thread, std::size_t task) {
        const std::size_t stop = std::min(lists.n_lists, (task + 1) * kListsPerTask);
        for (std::size_t list = task * kListsPerTask; list < stop; ++list)
            rank_one(source, list_dots, lists, list, width, scratch[thread], order, scores, logsumexp);
    });
}

}  // namespace recbatch
