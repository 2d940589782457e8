// Every float kernel's score_tile, called directly, on its log-sum-exp contract: after a call
// each row's running (lse_max, lse_sum) must describe log(exp(M0) S0 + sum of exp(eligible
// scores)), whichever way the kernel took: the fused one-pass sums against the running maximum,
// the two-pass update of a row whose tile holds a score more than 88 above it (its sum
// overflows), a row without a maximum yet that takes one from the tile's first block, or, with
// no eligible item there, the two-pass update. Each row's result must be bit for bit the one it
// gets scored alone (a query's place in its batch decides its group). The score buffer
// starts full of stale values (1e30) that no path may read as scores, and the candidate words
// and flags must be those of a tile without the log-sum-exp.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "float_kernels.hpp"

namespace {

using recbatch::kernels::TileJob;
using test_support::FloatKernel;
using test_support::kBlock;

// Each path must be exercised: rows with a maximum (fused, overflowing) and rows without one
// (seeded from the first block, no eligible item there, no eligible item at all).
std::size_t fused_rows = 0, overflow_rows = 0, seeded_rows = 0, unseeded_rows = 0, empty_rows = 0;

int check(const FloatKernel& kernel, std::mt19937& rng, std::size_t rows, std::size_t blocks, std::size_t dim,
          bool with_unset_rows) {
    std::uniform_real_distribution<double> uniform;
    // A wide spread of scores in some tiles, so that a maximum seeded from the first block can
    // lie more than 88 below the tile's best.
    const test_support::RandomTile tile(rng, rows, blocks, dim, rng() % 2 == 0 ? 1.0f : 12.0f);
    const auto score = [&tile](std::size_t r, std::size_t p) { return tile.score(r, p / kBlock, p % kBlock); };
    std::vector<std::uint32_t> eligible(rows * blocks);
    for (auto& word : eligible) word = static_cast<std::uint32_t>(rng()) | static_cast<std::uint32_t>(rng());
    eligible[0] = ~0u;  // at least one eligible item per row below
    for (std::size_t r = 0; r < rows; ++r) eligible[r * blocks] |= 1u;
    // Rows without a maximum: a third seeded from the first block, a third with nothing eligible
    // there, a few with nothing eligible at all.
    std::vector<int> unset(rows, 0);
    for (std::size_t r = 0; with_unset_rows && r < rows; ++r) {
        unset[r] = static_cast<int>(rng() % 6);  // 0-1: has a maximum; 2-3 seeded; 4 not; 5 empty
        if (unset[r] >= 4) eligible[r * blocks] = 0;
        for (std::size_t b = 1; unset[r] == 5 && b < blocks; ++b) eligible[r * blocks + b] = 0;
        if (unset[r] == 4 && blocks == 1) unset[r] = 5;
        if (unset[r] == 4) eligible[r * blocks + 1] |= 1u;
    }
    std::vector<float> thresholds(rows), lse_max(rows);
    std::vector<double> lse_sum(rows), expected(rows);
    for (std::size_t r = 0; r < rows; ++r) {
        double top = -INFINITY;
        for (std::size_t p = 0; p < blocks * kBlock; ++p)
            if (eligible[r * blocks + p / kBlock] >> (p % kBlock) & 1u) top = std::max(top, score(r, p));
        // A third of the rows start 100-300 below their tile's best (the fused sum overflows), the
        // others within a few units of it.
        const int kind = static_cast<int>(rng() % 3);
        lse_max[r] = static_cast<float>(kind == 0 ? top - 100.0 - 200.0 * uniform(rng) : top + 6.0 * uniform(rng) - 3.0);
        lse_sum[r] = 0.5 + uniform(rng);
        if (unset[r] >= 2) lse_max[r] = -INFINITY, lse_sum[r] = 0.0;
        if (unset[r] >= 2) ++(unset[r] == 5 ? empty_rows : unset[r] == 4 ? unseeded_rows : seeded_rows);
        else ++(kind == 0 ? overflow_rows : fused_rows);
        double sum = lse_sum[r] == 0.0 ? 0.0 : lse_sum[r] * std::exp(double(lse_max[r]) - top);
        for (std::size_t p = 0; p < blocks * kBlock; ++p)
            if (eligible[r * blocks + p / kBlock] >> (p % kBlock) & 1u) sum += std::exp(score(r, p) - top);
        expected[r] = unset[r] == 5 ? -INFINITY : top + std::log(sum);
        thresholds[r] = static_cast<float>(top - 2.0 * uniform(rng));  // a few candidates per row
    }
    const std::vector<float> start_max = lse_max;
    const std::vector<double> start_sum = lse_sum;
    std::vector<float> scores(rows * blocks * kBlock, 1e30f);
    std::vector<std::uint32_t> candidates(rows * blocks, 0);
    const std::size_t flag_words = (blocks + 63) / 64;
    std::vector<std::uint64_t> flagged(rows * flag_words, 0);
    TileJob job{tile.query_rows.data(), rows,      tile.panels.data, blocks,    dim,
                thresholds.data(), eligible.data(), blocks,        scores.data(), candidates.data(),
                flagged.data(),    flag_words,      lse_max.data(), lse_sum.data()};
    kernel.score_tile(job);
    int failures = 0;
    for (std::size_t r = 0; r < rows; ++r) {
        const double got = double(lse_max[r]) + std::log(lse_sum[r]);
        // Float32 scores of a dot product of dim terms, exponentials to 2e-7: well inside 1e-4.
        const bool close = unset[r] == 5 ? lse_max[r] == -INFINITY && lse_sum[r] == 0.0
                                          : std::fabs(got - expected[r]) <= 1e-4 * std::max(1.0, std::fabs(expected[r]));
        if (!close) {
            std::fprintf(stderr, "FAIL %s rows %zu blocks %zu dim %zu row %zu: lse %.9g, expected %.9g\n", kernel.name, rows,
                         blocks, dim, r, got, expected[r]);
            ++failures;
        }
        // The same row alone, from the same start (its own buffers; scores stale again).
        float alone_max = start_max[r];
        double alone_sum = start_sum[r];
        std::vector<float> alone_scores(blocks * kBlock, 1e30f);
        std::vector<std::uint32_t> alone_candidates(blocks, 0);
        std::vector<std::uint64_t> alone_flagged(flag_words, 0);
        TileJob alone{tile.query_rows.data() + r, 1, tile.panels.data,   blocks,
                      dim,                   thresholds.data() + r, eligible.data() + r * blocks,
                      blocks,                alone_scores.data(),   alone_candidates.data(),
                      alone_flagged.data(),  flag_words,            &alone_max,
                      &alone_sum};
        kernel.score_tile(alone);
        if (alone_max != lse_max[r] || alone_sum != lse_sum[r]) {
            std::fprintf(stderr, "FAIL %s rows %zu blocks %zu dim %zu row %zu: (%.9g, %.17g) in the group, (%.9g, %.17g) alone\n",
                         kernel.name, rows, blocks, dim, r, lse_max[r], lse_sum[r], alone_max, alone_sum);
            ++failures;
        }
        for (std::size_t b = 0; b < blocks; ++b) {
            std::uint32_t want = 0, unsure = 0;
            for (std::size_t j = 0; j < kBlock; ++j) {
                const double s = tile.score(r, b, j);
                if (std::fabs(s - thresholds[r]) < 1e-3) unsure |= 1u << j;  // rounding may go either way
                if (s >= thresholds[r]) want |= 1u << j;
            }
            want &= eligible[r * blocks + b];
            const bool flag = flagged[r * flag_words + b / 64] >> (b % 64) & 1u;
            const std::uint32_t got_bits = flag ? candidates[r * blocks + b] : 0u;
            if (((got_bits ^ want) & ~unsure) != 0) {
                std::fprintf(stderr, "FAIL %s rows %zu blocks %zu dim %zu row %zu block %zu: candidates %08x, expected %08x\n",
                             kernel.name, rows, blocks, dim, r, b, got_bits, want);
                ++failures;
            }
        }
    }
    return failures;
}

}  // namespace

int main() {
    std::mt19937 rng(11);
    int trial = 0;
    int failures = test_support::on_every_kernel(120, [&](const FloatKernel& kernel) {
        return check(kernel, rng, 1 + rng() % 12, 1 + rng() % 70, 1 + rng() % 40, ++trial % 4 == 0);
    });
    if (fused_rows == 0 || overflow_rows == 0 || seeded_rows == 0 || unseeded_rows == 0 || empty_rows == 0) {
        std::fprintf(stderr, "FAIL not every path ran: fused %zu, overflow %zu, seeded %zu, unseeded %zu, empty %zu\n",
                     fused_rows, overflow_rows, seeded_rows, unseeded_rows, empty_rows);
        ++failures;
    }
    std::printf("rows: fused %zu, overflowing %zu, seeded %zu, not seeded %zu, nothing eligible %zu\n", fused_rows,
                overflow_rows, seeded_rows, unseeded_rows, empty_rows);
    std::printf("%d failed\n", failures);
    return failures == 0 ? 0 : 1;
}
