// rank_lists (cpp/include/recbatch/rank_lists.hpp) against a plain reference: random lists of
// every length around the repeat set's growth and the prefetch distance, with repeats, entries
// outside the catalogue, exact ties (small integer vectors), -0.0 beside +0.0, NaN scores, both
// score sources, and 1 to 3 threads, which must give the same bytes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "expect.hpp"
#include "recbatch/rank_lists.hpp"

namespace {

using recbatch_test::expect;

struct Lists {
    std::vector<std::int64_t> offsets{0};
    std::vector<std::int64_t> entries;
    std::size_t width = 0;
};

// The reference ranking of one list: first occurrences, catalogue entries by (score descending,
// NaN last, lower row), then the others in list order.
void reference(const std::vector<std::int64_t>& list, const std::vector<double>& score_of_row, std::vector<std::int64_t>& order,
               std::vector<double>& scores, double& lse) {
    std::vector<std::size_t> known, outside;
    std::set<std::int64_t> seen;
    for (std::size_t p = 0; p < list.size(); ++p) {
        if (!seen.insert(list[p]).second) continue;
        (list[p] >= 0 ? known : outside).push_back(p);
    }
    std::stable_sort(known.begin(), known.end(), [&](std::size_t a, std::size_t b) {
        const double sa = score_of_row[static_cast<std::size_t>(list[a])], sb = score_of_row[static_cast<std::size_t>(list[b])];
        if (std::isnan(sa) != std::isnan(sb)) return std::isnan(sb);
        if (!std::isnan(sa) && sa != sb) return sa > sb;
        return list[a] < list[b];
    });
    order.clear();
    scores.clear();
    long double total = 0;
    double peak = -INFINITY;
    for (std::size_t p : known) peak = std::max(peak, score_of_row[static_cast<std::size_t>(list[p])]);
    for (std::size_t p : known) {
        order.push_back(static_cast<std::int64_t>(p));
        scores.push_back(score_of_row[static_cast<std::size_t>(list[p])]);
        total += std::exp(static_cast<long double>(scores.back()) - peak);
    }
    for (std::size_t p : outside) {
        order.push_back(static_cast<std::int64_t>(p));
        scores.push_back(-INFINITY);
    }
    lse = known.empty() ? -INFINITY : peak + static_cast<double>(std::log(total));
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

void check(std::size_t n_items, std::size_t dim, std::size_t n_lists, std::size_t max_length, bool by_value,
           std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    // Small integers: every product and sum is exact in float64, so ties are real ties and the
    // reference's scores are the kernel's to the bit.
    std::vector<float> items(n_items * dim), queries(n_lists * dim);
    for (auto& x : items) x = static_cast<float>(static_cast<int>(rng() % 7) - 3);
    for (auto& x : queries) x = static_cast<float>(static_cast<int>(rng() % 7) - 3);
    std::vector<double> values(n_items);
    for (auto& v : values) {
        const auto pick = rng() % 10;
        v = pick == 0 ? -0.0 : pick == 1 ? 0.0 : pick == 2 ? std::nan("") : static_cast<double>(static_cast<int>(rng() % 9) - 4);
    }
    Lists lists;
    for (std::size_t i = 0; i < n_lists; ++i) {
        const std::size_t length = rng() % (max_length + 1);
        for (std::size_t p = 0; p < length; ++p) {
            const auto pick = rng() % 10;
            // Repeats from a few rows, a few outside codes, and anything in the catalogue.
            lists.entries.push_back(pick < 2 ? -1 - static_cast<std::int64_t>(rng() % 3)
                                    : pick < 4 ? static_cast<std::int64_t>(rng() % std::min<std::size_t>(n_items, 5))
                                               : static_cast<std::int64_t>(rng() % n_items));
        }
        lists.offsets.push_back(static_cast<std::int64_t>(lists.entries.size()));
        lists.width = std::max(lists.width, length);
    }
    recbatch::ListScores source;
    source.n_items = n_items;
    if (by_value) {
        source.item_values = values.data();
    } else {
        source.queries = queries.data();
        source.items = items.data();
        source.dim = dim;
    }
    const recbatch::CandidateLists view{lists.offsets.data(), lists.entries.data(), n_lists};
    const std::size_t width = lists.width + 2;  // wider than needed: the padding is written too
    std::vector<std::int64_t> order(n_lists * width, 7);
    std::vector<double> scores(n_lists * width, 7.0), lse(n_lists, 7.0);
    recbatch::rank_lists(source, view, width, order.data(), scores.data(), lse.data(), 1);

    const std::string where = "items=" + std::to_string(n_items) + " lists=" + std::to_string(n_lists) +
                              (by_value ? " values" : " products") + " seed=" + std::to_string(seed);
    std::vector<std::int64_t> want_order;
    std::vector<double> want_scores;
    for (std::size_t i = 0; i < n_lists; ++i) {
        const std::vector<std::int64_t> list(lists.entries.begin() + lists.offsets[i], lists.entries.begin() + lists.offsets[i + 1]);
        std::vector<double> score_of_row(n_items);
        for (std::size_t row = 0; row < n_items; ++row) {
            if (by_value) {
                score_of_row[row] = values[row];
                continue;
            }
            double s = 0;
            for (std::size_t j = 0; j < dim; ++j) s += static_cast<double>(queries[i * dim + j]) * items[row * dim + j];
            score_of_row[row] = s;
        }
        double want_lse;
        reference(list, score_of_row, want_order, want_scores, want_lse);
        bool ok = true;
        for (std::size_t j = 0; j < width; ++j) {
            const bool past = j >= want_order.size();
            ok &= order[i * width + j] == (past ? -1 : want_order[j]);
            const double want = past ? -INFINITY : want_scores[j];
            ok &= std::isnan(want) ? std::isnan(scores[i * width + j]) : scores[i * width + j] == want;
        }
        expect(ok, where + " list " + std::to_string(i) + " order and scores");
        const bool lse_ok = std::isnan(want_lse) ? std::isnan(lse[i])
                            : std::isinf(want_lse) ? lse[i] == want_lse
                                                   : std::fabs(lse[i] - want_lse) <= 1e-12 * std::max(1.0, std::fabs(want_lse));
        expect(lse_ok, where + " list " + std::to_string(i) + " logsumexp " + std::to_string(lse[i]) + " want " +
                           std::to_string(want_lse));
    }
    // Any thread count: the same bytes.
    for (std::size_t threads : {2, 3}) {
        std::vector<std::int64_t> order2(n_lists * width, 9);
        std::vector<double> scores2(n_lists * width, 9.0), lse2(n_lists, 9.0);
        recbatch::rank_lists(source, view, width, order2.data(), scores2.data(), lse2.data(), threads);
        bool same = order2 == order;
        for (std::size_t j = 0; j < scores.size(); ++j) same &= same_bits(scores[j], scores2[j]);
        for (std::size_t j = 0; j < lse.size(); ++j) same &= same_bits(lse[j], lse2[j]);
        expect(same, where + " threads=" + std::to_string(threads));
    }
}

// Float scores whose sum exceeds what float32 holds and one item far below: the softmax
// denominator is taken relative to the largest score, so it neither overflows nor loses the rest.
void check_large_scores() {
    const std::vector<float> items = {1e20f, 0.0f, -1e20f, 1.0f};  // dim 1
    const std::vector<float> query = {1e20f};
    const std::vector<std::int64_t> offsets = {0, 4}, entries = {2, 0, 3, 1};
    recbatch::ListScores source;
    source.queries = query.data();
    source.items = items.data();
    source.dim = 1;
    source.n_items = 4;
    std::int64_t order[4];
    double scores[4], lse;
    recbatch::rank_lists(source, {offsets.data(), entries.data(), 1}, 4, order, scores, &lse, 1);
    expect(order[0] == 1 && order[1] == 2 && order[2] == 3 && order[3] == 0, "large scores: order");
    expect(std::isfinite(lse) && lse == scores[0], "large scores: logsumexp is the largest score");
}

}  // namespace

int main() {
    std::uint64_t seed = 1;
    for (bool by_value : {false, true}) {
        for (std::size_t max_length : {0, 1, 2, 7, 8, 9, 16, 17, 40, 300}) check(50, 3, 40, max_length, by_value, seed++);
        check(3, 5, 200, 12, by_value, seed++);     // more repeats than distinct rows
        check(2000, 17, 30, 60, by_value, seed++);  // a dim that is not a multiple of 4
        check(1, 1, 1, 0, by_value, seed++);        // one empty list
    }
    check_large_scores();
    return recbatch_test::report("test_rank_lists");
}
