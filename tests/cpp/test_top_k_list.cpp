// TopKList (cpp/src/top_k_list.hpp) in both of its ways against a sorted reference: random
// pushes with many ties or spread over many binades, -0 beside +0, -inf and NaN (never kept), fewer pushes than k, spare
// buffers from one key to k, and lists long enough for the radix sort. The k best by (score
// desc, index asc), best first, padded with (-inf, -1); a threshold never above the true k-th
// best, finite once k entries are held. And best_of_keys: the unordered lists of disjoint item
// sets (a query's catalogue ranges) merged into the list of their union.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "expect.hpp"
#include "kernels/split_keys.hpp"
#include "recbatch/simd_level.hpp"
#include "top_k_list.hpp"

namespace {

using recbatch_test::expect;

struct Entry {
    float score;
    std::int64_t index;
};

// The k best entries with a score above -inf, as the list orders them (-0 equals +0).
std::vector<Entry> reference(std::vector<Entry> pushed, std::size_t k) {
    pushed.erase(std::remove_if(pushed.begin(), pushed.end(), [](const Entry& e) { return !(e.score > -INFINITY); }),
                 pushed.end());
    std::sort(pushed.begin(), pushed.end(), [](const Entry& a, const Entry& b) {
        return a.score != b.score ? a.score > b.score : a.index < b.index;
    });
    if (pushed.size() > k) pushed.resize(k);
    return pushed;
}

void run(std::size_t k, std::size_t n_pushes, std::size_t spare_size, std::mt19937& rng, bool continuous = false) {
    const std::string name = "k=" + std::to_string(k) + " pushes=" + std::to_string(n_pushes) +
                             " spare=" + std::to_string(spare_size) + (continuous ? " continuous" : "");
    // Few distinct scores, so that ties decide; or (continuous) Gaussian scores over many
    // binades, a tenth of them repeating an earlier one, with a few -inf and NaN, so that the
    // selection's buckets split on the score's bits and on the index's. Indices are distinct,
    // as items are in a row.
    std::uniform_int_distribution<int> level(-6, 6);
    std::vector<std::int64_t> indices(n_pushes);
    for (std::size_t i = 0; i < n_pushes; ++i) indices[i] = static_cast<std::int64_t>(i * 7919 % 1000003);
    std::shuffle(indices.begin(), indices.end(), rng);
    std::vector<Entry> pushed;
    for (std::size_t i = 0; i < n_pushes; ++i) {
        const int l = level(rng);
        float score = static_cast<float>(l) * 0.25f;
        if (l == -6) score = -INFINITY;
        if (l == 6) score = std::nanf("");
        if (l == 0 && rng() % 2 == 0) score = -0.0f;
        if (continuous && l > -6 && l < 6) {
            score = std::normal_distribution<float>()(rng) * std::exp2(static_cast<float>(l) * 3.0f);
            if (i > 0 && rng() % 10 == 0) score = pushed[rng() % i].score;
        }
        pushed.push_back({score, indices[i]});
    }
    const std::vector<Entry> expected = reference(pushed, k);

    std::vector<float> scores(k);
    std::vector<std::int64_t> out(k);
    std::vector<std::uint64_t> spare(spare_size), scratch(k + spare_size);
    recbatch::TopKList list = spare_size == 0 ? recbatch::TopKList(scores.data(), out.data(), k)
                                              : recbatch::TopKList(scores.data(), out.data(), k, spare.data(),
                                                                   spare_size, scratch.data());
    list.reset();
    std::vector<Entry> so_far;
    bool threshold_ok = true;
    for (std::size_t i = 0; i < pushed.size(); ++i) {
        list.push(pushed[i].score, pushed[i].index);
        so_far.push_back(pushed[i]);
        if (i % std::max<std::size_t>(97, pushed.size() / 40) != 0 && i + 1 != pushed.size()) continue;
        const std::vector<Entry> best = reference(so_far, k);
        const float threshold = list.threshold();
        // A lower bound on the k-th best so far; exact in heap mode; finite once k are held.
        const bool full = best.size() == k;
        threshold_ok = threshold_ok && (!full ? threshold == -INFINITY : threshold > -INFINITY) &&
                       (!full || threshold <= best.back().score) &&
                       (spare_size > 0 || !full || threshold == best.back().score);
    }
    expect(threshold_ok, name + ": thresholds");
    list.sort_descending();
    bool same = true;
    for (std::size_t i = 0; i < k; ++i) {
        const bool padded = i >= expected.size();
        const float want_score = padded ? -INFINITY : expected[i].score + 0.0f;
        const std::int64_t want_index = padded ? -1 : expected[i].index;
        same = same && scores[i] == want_score && out[i] == want_index;
    }
    expect(same, name + ": the k best, best first, padded");
}

// Items 0..n_items-1 dealt at random to `lists` ranges, each range's list built by TopKList
// (a heap, or buffered with a spare of 7 keys) and left unordered, then their keys gathered and
// merged by best_of_keys; against the reference list of all of them.
void run_merge(std::size_t k, std::size_t lists, std::size_t n_items, bool buffered, std::mt19937& rng) {
    std::uniform_int_distribution<int> level(-5, 5);
    std::vector<Entry> all;
    std::vector<std::vector<Entry>> dealt(lists);
    for (std::size_t i = 0; i < n_items; ++i) {
        const Entry e{level(rng) == 5 ? -INFINITY : static_cast<float>(level(rng)) * 0.5f, static_cast<std::int64_t>(i)};
        all.push_back(e);
        dealt[rng() % lists].push_back(e);
    }
    std::vector<std::uint64_t> keys(lists * k);
    for (std::size_t l = 0; l < lists; ++l) {
        std::vector<std::int64_t> indices(k);
        std::vector<std::uint64_t> spare(7), selection(k + 7);
        recbatch::TopKList list = buffered ? recbatch::TopKList(nullptr, indices.data(), k, spare.data(), 7, selection.data())
                                           : recbatch::TopKList(nullptr, indices.data(), k);
        list.reset();
        for (const Entry& e : dealt[l]) list.push(e.score, e.index);
        list.finish_unordered();
        std::memcpy(keys.data() + l * k, indices.data(), k * sizeof(std::uint64_t));
    }
    std::vector<float> out_scores(k, 7.0f);
    std::vector<std::int64_t> out_indices(k, 7);
    std::vector<std::uint64_t> scratch(2 * k);
    recbatch::TopKList::best_of_keys(keys.data(), keys.size(), k, scratch.data(), out_scores.data(), out_indices.data(),
                                     recbatch::kernels::scalar::split_keys);
    const std::vector<Entry> expected = reference(all, k);
    bool same = true;
    for (std::size_t i = 0; i < k; ++i) {
        const bool padded = i >= expected.size();
        same = same && out_scores[i] == (padded ? -INFINITY : expected[i].score + 0.0f) &&
               out_indices[i] == (padded ? -1 : expected[i].index);
    }
    expect(same, "merge of " + std::to_string(lists) + (buffered ? " buffered" : "") + " lists, k=" +
                     std::to_string(k) + ", " + std::to_string(n_items) + " items");
}

// One round of the selection's split, every kernel this CPU runs against the portable one:
// the same keys above the bucket (in order), the same bucket compacted to the front (in order),
// nothing written past them (the portable loop may write one key past `above`'s, its contract).
void check_split(recbatch::kernels::SplitKeysFn split, const std::string& name, std::mt19937& rng) {
    std::mt19937_64 wide(rng());
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{8}, std::size_t{9},
                          std::size_t{63}, std::size_t{1000}, std::size_t{20001}}) {
        for (unsigned shift : {0u, 5u, 40u, 53u}) {
            std::vector<std::uint64_t> keys(n);
            for (auto& key : keys) key = wide() >> (rng() % 2 == 0 ? 0 : 11);  // digits of both kinds
            const std::uint64_t bucket = n == 0 ? 0 : (keys[rng() % n] >> shift) & recbatch::kernels::kSplitDigits;
            std::vector<std::uint64_t> want_above, want_same;
            for (const std::uint64_t key : keys) {
                const std::uint64_t digit = (key >> shift) & recbatch::kernels::kSplitDigits;
                if (digit > bucket) want_above.push_back(key);
                if (digit == bucket) want_same.push_back(key);
            }
            constexpr std::uint64_t kUntouched = 0x5a5a5a5a5a5a5a5aull;
            std::vector<std::uint64_t> above(want_above.size() + 9, kUntouched), got = keys;
            const recbatch::kernels::SplitCounts counts = split(got.data(), n, shift, bucket, above.data());
            bool same = counts.above == want_above.size() && counts.same == want_same.size() &&
                        std::equal(want_above.begin(), want_above.end(), above.begin()) &&
                        std::equal(want_same.begin(), want_same.end(), got.begin());
            for (std::size_t i = want_above.size() + 1; i < above.size(); ++i) same = same && above[i] == kUntouched;
            expect(same, name + " split of " + std::to_string(n) + " keys, shift " + std::to_string(shift));
        }
    }
}

}  // namespace

int main() {
    std::mt19937 rng(2026);
    check_split(recbatch::kernels::scalar::split_keys, "scalar", rng);
    if (recbatch::simd_level_available(recbatch::SimdLevel::avx512))
        check_split(recbatch::kernels::avx512::split_keys, "avx512", rng);
    for (std::size_t k : {1, 2, 5, 64, 300, 1000, 1024, 3000})
        for (std::size_t n_pushes : {std::size_t{0}, k / 2, k, 3 * k + 1, 20 * k + 17})
            for (std::size_t spare_size : {std::size_t{0}, std::size_t{1}, std::size_t{7}, k})
                run(k, n_pushes, spare_size, rng);
    for (std::size_t k : {1, 300, 1024, 3000, 20000})
        for (std::size_t spare_size : {std::size_t{7}, k}) run(k, 6 * k + 5, spare_size, rng, true);
    for (std::size_t k : {1, 3, 50, 2000})
        for (std::size_t lists : {1, 2, 5, 32})
            for (std::size_t n_items : {std::size_t{0}, k / 2, 4 * k + 3})
                for (bool buffered : {false, true}) run_merge(k, lists, n_items, buffered, rng);
    // A list reused after reset starts empty (the search resets its lists per task).
    std::vector<float> scores(3);
    std::vector<std::int64_t> out(3);
    std::vector<std::uint64_t> spare(2), scratch(5);
    recbatch::TopKList list(scores.data(), out.data(), 3, spare.data(), 2, scratch.data());
    list.reset();
    for (int i = 0; i < 10; ++i) list.push(static_cast<float>(i), i);
    list.reset();
    list.push(1.5f, 42);
    list.sort_descending();
    expect(scores[0] == 1.5f && out[0] == 42 && out[1] == -1 && out[2] == -1 && scores[2] == -INFINITY,
           "reset empties a buffered list");
    return recbatch_test::report("test_top_k_list");
}
