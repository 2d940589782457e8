// Kernel tests without Python: every SIMD level this CPU has against a double-precision
// reference, on exact (small-integer) inputs where the answer, ties included, is fully
// defined, and on Gaussian inputs with rounding tolerance. Built by cpp/CMakeLists.txt with
// RECBATCH_BUILD_TESTS=ON, and meant to run under -DRECBATCH_SANITIZE=ON (ASan + UBSan).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <vector>

#include "recbatch/packed_items.hpp"
#include "recbatch/search.hpp"
#include "recbatch/simd_level.hpp"

namespace {

int failures = 0;

void expect(bool ok, const char* what, recbatch::SimdLevel level, std::size_t row) {
    if (ok) return;
    ++failures;
    std::fprintf(stderr, "FAIL [%s] row %zu: %s\n", recbatch::simd_level_name(level), row, what);
}

struct Case {
    std::size_t n, m, dim, k, threads;
    bool integers, exclude, allow, lse;
    float scale = 1.0f;   // queries and items are multiplied by this
    bool spread = false;  // item norms spread log-normally (most blocks prunable)
    // How exclusions are applied: SearchOptions' rule, or either way forced: sorted per row and
    // cleared tile by tile (no bitmap budget), or per-row bitmaps whatever the count.
    enum class Exclusions { by_rule, sorted, bitmaps } exclusions = Exclusions::by_rule;
    std::size_t per_row = 0;  // at most this many exclusions per row; 0: up to m / 2, row 0 all
    // SearchOptions::top_k_buffer_from and top_k_buffer_bytes where not 0 (buffered top-k lists
    // for small k, with many selections; or a budget that cuts the spare below k).
    std::size_t buffer_from = 0, buffer_bytes = 0;
    // SearchOptions::screen_rescore_share where not negative (0: screening pauses at every
    // chance, and resumes only after a tile where no row has a candidate).
    double rescore_share = -1.0;
};

void run_case(const Case& c, recbatch::SimdLevel level, std::mt19937& rng) {
    std::vector<float> queries(c.n * c.dim), items(c.m * c.dim);
    std::normal_distribution<float> gauss;
    std::uniform_int_distribution<int> small(-2, 2);
    for (auto& x : queries) x = c.integers ? static_cast<float>(small(rng)) : gauss(rng);
    for (auto& x : items) x = c.integers ? static_cast<float>(small(rng)) : gauss(rng);
    std::lognormal_distribution<float> spread(0.0f, 1.5f);
    for (std::size_t i = 0; i < c.m && c.spread; ++i) {
        const float f = spread(rng);
        for (std::size_t d = 0; d < c.dim; ++d) items[i * c.dim + d] *= f;
    }
    for (auto& x : queries) x *= c.scale;
    for (auto& x : items) x *= c.scale;

    std::vector<std::uint8_t> allow(c.m, 1);
    if (c.allow)
        for (auto& a : allow) a = static_cast<std::uint8_t>(rng() % 3 != 0);
    std::vector<std::int64_t> indptr(c.n + 1, 0), excluded;
    for (std::size_t q = 0; q < c.n; ++q) {
        if (c.exclude) {
            const std::size_t count = c.per_row > 0 ? rng() % (c.per_row + 1)
                                      : q == 0      ? c.m  // row 0: everything
                                                    : rng() % (c.m / 2 + 1);
            std::vector<std::int64_t> row(c.m);
            std::iota(row.begin(), row.end(), 0);
            std::shuffle(row.begin(), row.end(), rng);
            row.resize(count);
            std::sort(row.begin(), row.end());
            excluded.insert(excluded.end(), row.begin(), row.end());
        }
        indptr[q + 1] = static_cast<std::int64_t>(excluded.size());
    }

    recbatch::PackedItems packed(items.data(), c.m, c.dim);
    recbatch::SearchInput input;
    input.queries = queries.data();
    input.n_queries = c.n;
    // Exclusion indices as int64 or, for odd query counts, int32 (scipy's width), read in place.
    const std::vector<std::int32_t> excluded32(excluded.begin(), excluded.end());
    if (c.exclude) {
        input.exclude_indptr.wide = indptr.data();
        if (c.n % 2 == 0)
            input.exclude_indices.wide = excluded.data();
        else
            input.exclude_indices.narrow = excluded32.data();
    }
    if (c.allow) input.allow = allow.data();
    recbatch::SearchOptions options;
    options.k = c.k;
    options.threads = c.threads;
    options.logsumexp = c.lse;
    options.level = level;
    if (c.exclusions == Case::Exclusions::sorted) options.exclusion_bitmap_bytes = 0;
    if (c.exclusions == Case::Exclusions::bitmaps) options.exclusion_bitmap_rows_from = 0;
    if (c.buffer_from > 0) options.top_k_buffer_from = c.buffer_from;
    if (c.buffer_bytes > 0) options.top_k_buffer_bytes = c.buffer_bytes;
    if (c.rescore_share >= 0.0) options.screen_rescore_share = c.rescore_share;
    recbatch::ScreenStats stats;
    options.stats = &stats;
    std::vector<std::int64_t> out_indices(c.n * c.k);
    std::vector<float> out_scores(c.n * c.k);
    std::vector<double> out_lse(c.n);
    recbatch::SearchOutput output{out_indices.data(), out_scores.data(), out_lse.data()};
    expect(recbatch::search(packed, input, options, output), "search reported cancellation", level, 0);
    using recbatch::SimdLevel;
    const bool screened = level == SimdLevel::avx2_int8 || level == SimdLevel::avx2_vnni ||
                          level == SimdLevel::avx512_vnni || level == SimdLevel::amx_int8;
    if (screened) {
        // The int8 screening pass (vpmaddubsw, vpdpbusd or AMX tiles) must not change a single
        // bit of its float level's results.
        // A case made to pause screening must pause it (then the comparison below covers it).
        if (c.rescore_share >= 0.0)
            expect(stats.paused_tiles.load() > 0 && stats.rescored_blocks.load() + stats.rescored_items.load() > 0,
                   "screening neither paused nor ran", level, 0);
        recbatch::SearchOptions plain_options = options;
        plain_options.stats = nullptr;
        plain_options.level =
            level == SimdLevel::avx2_int8 || level == SimdLevel::avx2_vnni ? SimdLevel::avx2 : SimdLevel::avx512;
        std::vector<std::int64_t> plain_indices(c.n * c.k);
        std::vector<float> plain_scores(c.n * c.k);
        std::vector<double> plain_lse(c.n);
        recbatch::SearchOutput plain{plain_indices.data(), plain_scores.data(), plain_lse.data()};
        recbatch::search(packed, input, plain_options, plain);
        for (std::size_t q = 0; q < c.n; ++q)
            for (std::size_t j = 0; j < c.k; ++j) {
                const std::size_t at = q * c.k + j;
                const bool same_score = plain_scores[at] == out_scores[at] ||
                                        (std::isnan(plain_scores[at]) && std::isnan(out_scores[at]));
                expect(plain_indices[at] == out_indices[at] && same_score, "screened != its float level", level, q);
            }
    }

    for (std::size_t q = 0; q < c.n; ++q) {
        std::vector<char> eligible(c.m);
        for (std::size_t i = 0; i < c.m; ++i) eligible[i] = allow[i] != 0;
        for (auto j = indptr[q]; j < indptr[q + 1]; ++j) eligible[static_cast<std::size_t>(excluded[j])] = 0;
        std::vector<double> exact(c.m), bound(c.m);
        std::vector<std::size_t> order;
        double top = -INFINITY;
        for (std::size_t i = 0; i < c.m; ++i) {
            double s = 0, a = 0;
            for (std::size_t d = 0; d < c.dim; ++d) {
                s += double(queries[q * c.dim + d]) * items[i * c.dim + d];
                a += std::fabs(double(queries[q * c.dim + d]) * items[i * c.dim + d]);
            }
            exact[i] = s;
            bound[i] = (c.dim + 2) * 1.2e-7 * a + 1e-30;
            if (eligible[i]) {
                order.push_back(i);
                top = std::max(top, s);
            }
        }
        std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return exact[a] > exact[b]; });
        const std::size_t kk = std::min(c.k, order.size());
        const std::int64_t* got = out_indices.data() + q * c.k;
        const float* got_scores = out_scores.data() + q * c.k;
        for (std::size_t j = kk; j < c.k; ++j)
            expect(got[j] == -1 && std::isinf(got_scores[j]) && got_scores[j] < 0, "padding", level, q);
        for (std::size_t j = 0; j < kk; ++j) {
            const auto i = got[j];
            if (i < 0 || static_cast<std::size_t>(i) >= c.m || !eligible[static_cast<std::size_t>(i)]) {
                expect(false, "ineligible or invalid index", level, q);
                continue;
            }
            expect(std::fabs(got_scores[j] - exact[i]) <= bound[i], "score off", level, q);
            if (c.integers) expect(static_cast<std::size_t>(i) == order[j], "exact order", level, q);
            else expect(exact[i] >= exact[order[kk - 1]] - 2 * bound[i], "item below the k-th", level, q);
            if (j > 0) expect(got_scores[j - 1] >= got_scores[j], "sorted", level, q);
        }
        if (c.lse) {
            double sum = 0;
            for (auto i : order) sum += std::exp(exact[i] - top);
            const double want = order.empty() ? -INFINITY : top + std::log(sum);
            expect(order.empty() ? std::isinf(out_lse[q]) : std::fabs(out_lse[q] - want) <= 1e-5 * std::max(1.0, std::fabs(want)),
                   "logsumexp", level, q);
        }
    }
}

}  // namespace

// The index packed on several threads (tasks of 16,384 items and 512 blocks; the sort by norm in
// up to four runs, merged) must equal the one packed on one: every float and int8 byte, offset,
// scale and bound, and the position maps. A quarter of the items are one vector repeated, so the
// sort's ties (kept in item order) span every run.
void check_parallel_packing(std::mt19937& rng) {
    const std::size_t m = 70000, dim = 19;
    std::vector<float> items(m * dim);
    std::lognormal_distribution<float> spread(0.0f, 1.0f);
    std::normal_distribution<float> normal;
    for (std::size_t i = 0; i < m; ++i) {
        const float scale = spread(rng);
        for (std::size_t d = 0; d < dim; ++d) items[i * dim + d] = i % 4 == 0 && i > 0 ? items[d] : normal(rng) * scale;
    }
    const recbatch::PackedItems one(items.data(), m, dim, true, 1);
    for (std::size_t threads : {2, 3, 8}) {
        const recbatch::PackedItems other(items.data(), m, dim, true, threads);
        bool same = std::equal(one.panels(), one.panels() + one.n_blocks() * one.block_floats(), other.panels()) &&
                    std::equal(one.int8_panels(), one.int8_panels() + one.n_blocks() * one.int8_block_bytes(),
                               other.int8_panels()) &&
                    std::equal(one.int8_offset(), one.int8_offset() + one.n_blocks() * recbatch::kBlockItems,
                               other.int8_offset());
        for (std::size_t b = 0; b < one.n_blocks(); ++b)
            same = same && one.int8_scale()[b] == other.int8_scale()[b] && one.norm_up()[b] == other.norm_up()[b] &&
                   one.residual_up()[b] == other.residual_up()[b] && one.block_norm_bound(b) == other.block_norm_bound(b);
        for (std::size_t p = 0; p < m; ++p) same = same && one.item_at(p) == other.item_at(p);
        if (!same) {
            std::fprintf(stderr, "FAIL packing on %zu threads differs from one thread\n", threads);
            ++failures;
        }
    }
}

int main() {
    std::mt19937 rng(12345);
    check_parallel_packing(rng);
    const Case cases[] = {
        {29, 517, 17, 10, 2, false, false, false, true}, {13, 40, 1, 41, 1, false, false, false, false},
        {50, 300, 5, 40, 3, true, false, false, false},  {40, 700, 16, 25, 2, false, true, false, true},
        {30, 900, 12, 20, 2, false, true, true, true},   {7, 5000, 300, 3, 3, false, false, true, true},
        {100, 64, 64, 64, 2, true, true, true, true},    {1, 1, 3, 5, 1, false, false, false, true},
        // For the int8 screening pass: tiny k, k = m, odd dims, spread and extreme norms.
        {40, 3000, 33, 1, 2, false, false, false, false},  {30, 2000, 7, 2000, 1, false, true, true, false},
        {25, 4000, 300, 5, 2, false, true, false, false},  {50, 3000, 10, 30, 3, true, true, true, false},
        {40, 5000, 24, 10, 2, false, false, false, false, 1.0f, true},
        // Exclusions sorted per row and cleared tile by tile (no bitmap budget), and as bitmaps;
        // a few per row (at most 3, as related items' one), which the rule sorts, both ways.
        {9, 33000, 3, 10, 2, false, true, true, true, 1.0f, false, Case::Exclusions::sorted},
        {40, 700, 16, 25, 2, false, true, false, true, 1.0f, false, Case::Exclusions::sorted},
        {30, 2000, 33, 5, 3, false, true, true, false, 1.0f, false, Case::Exclusions::sorted},
        {9, 33000, 3, 10, 2, false, true, true, true},
        {40, 3000, 16, 25, 2, false, true, false, true, 1.0f, false, Case::Exclusions::by_rule, 3},
        {40, 3000, 16, 25, 2, false, true, true, false, 1.0f, false, Case::Exclusions::bitmaps, 3},
        {30, 3000, 33, 5, 3, false, true, false, false, 1.0f, false, Case::Exclusions::by_rule, 1},
        // The AMX screening kernel's tile shapes: two chunks of 16 dimension groups (one
        // partial, then both full) kept loaded, and three full chunks cycled through.
        {30, 3000, 100, 10, 2, false, true, false, false},  {20, 2000, 128, 25, 1, false, false, true, false},
        {20, 2000, 192, 5, 2, true, false, false, false},
        {20, 2000, 16, 10, 1, false, false, false, false, 1e-20f},
        {20, 2000, 16, 10, 1, false, false, false, false, 3e17f},
        // Buffered top-k lists: from k = 1 on (a selection every k pushes), with exclusions, the
        // log-sum-exp, ties (integers) and catalogue ranges; and k = 2,000 with a spare of 300
        // (a 141,600-byte budget over 3 workers of 12-row tasks), past 512, where they start anyway.
        {29, 517, 17, 10, 2, false, false, false, true, 1.0f, false, Case::Exclusions::by_rule, 0, 1},
        {50, 300, 5, 40, 3, true, false, false, false, 1.0f, false, Case::Exclusions::by_rule, 0, 1},
        {40, 3000, 33, 1, 2, false, true, true, false, 1.0f, false, Case::Exclusions::by_rule, 0, 1},
        {50, 3000, 10, 30, 3, true, true, true, false, 1.0f, false, Case::Exclusions::by_rule, 0, 1},
        {40, 5000, 24, 10, 2, false, false, false, false, 1.0f, true, Case::Exclusions::by_rule, 0, 1},
        {3, 40000, 32, 10, 8, false, true, true, true, 1.0f, false, Case::Exclusions::by_rule, 0, 1},
        {31, 9000, 12, 2000, 3, true, true, false, false, 1.0f, false, Case::Exclusions::by_rule, 0, 0, 141600},
        // Screening paused where a tile flags too much for rescoring (large k against m), then
        // resumed: at every chance (share 0), as norms fall along the scan (spread), with sorted
        // exclusions and an allow mask, and with ties (integers).
        {30, 20000, 16, 600, 2, false, false, false, false, 1.0f, false, Case::Exclusions::by_rule, 0, 0, 0, 0.0},
        {30, 20000, 16, 600, 2, false, false, false, false, 1.0f, true, Case::Exclusions::by_rule, 0, 0, 0, 0.02},
        {20, 9000, 12, 300, 3, false, true, true, false, 1.0f, false, Case::Exclusions::sorted, 0, 0, 0, 0.1},
        {50, 6000, 5, 500, 2, true, false, false, false, 1.0f, false, Case::Exclusions::by_rule, 0, 0, 0, 0.0},
        // A few queries on eight threads: the catalogue is split into ranges and merged.
        {3, 40000, 32, 10, 8, false, true, true, true},
        {2, 40000, 32, 700, 8, true, false, false, false},
        {5, 40000, 32, 25, 8, false, false, false, false, 1.0f, true},
    };
    for (auto level : recbatch::available_simd_levels())
        for (const auto& c : cases) run_case(c, level, rng);
    std::printf("%d failed\n", failures);
    return failures == 0 ? 0 : 1;
}
