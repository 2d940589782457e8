// Every float kernel's score_tile, called directly, on its candidate contract without the
// log-sum-exp: row r's candidates in block b are exactly its eligible items scoring at least
// thresholds[r], the block's flag is set exactly when it has one, every candidate's score is
// stored, and a block without one keeps its stale candidate word. Items with NaN or infinite values put NaN and +-inf
// scores beside finite ones in the same block (a NaN score never reaches a threshold), so
// that a test of both halves of a block at once must not let one half hide the other.
// Thresholds include -inf (every eligible item) and +inf; the eligibility words are per row or
// shared by all rows (stride 0).
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

constexpr std::uint32_t kStaleWord = 0xdeadbeefu;
constexpr float kStaleScore = 1e30f;

std::size_t nonfinite_candidates = 0;  // candidates in blocks that also hold NaN scores

int check(const FloatKernel& kernel, std::mt19937& rng, std::size_t rows, std::size_t blocks, std::size_t dim) {
    std::normal_distribution<float> normal;
    test_support::RandomTile tile(rng, rows, blocks, dim);
    // About one item in six gets a NaN or an infinity in one dimension. The double scores then
    // come out NaN and +-inf as in float32 (finite sums of Gaussian products stay far from
    // float32's range).
    for (std::size_t item = 0; item < blocks * kBlock; ++item) {
        const unsigned kind = rng() % 18;
        if (kind > 2) continue;
        const float value = kind == 0 ? NAN : kind == 1 ? INFINITY : -INFINITY;
        const std::size_t b = item / kBlock, j = item % kBlock, d = rng() % dim;
        tile.panels.data[(b * dim + d) * kBlock + j] = value;
    }
    tile.score_in_double();
    // One row of eligibility words per row, or (a third of the tiles) one shared by every row.
    const std::size_t stride = rng() % 3 == 0 ? 0 : blocks;
    std::vector<std::uint32_t> eligible(stride == 0 ? blocks : rows * blocks);
    for (auto& word : eligible) word = rng() % 4 == 0 ? static_cast<std::uint32_t>(rng()) : ~0u;
    std::vector<float> thresholds(rows);
    for (float& t : thresholds) {
        const unsigned kind = rng() % 8;
        t = kind == 0 ? -INFINITY : kind == 1 ? INFINITY : static_cast<float>(normal(rng) * std::sqrt(double(dim)));
    }
    std::vector<float> scores(rows * blocks * kBlock, kStaleScore);
    std::vector<std::uint32_t> candidates(rows * blocks, kStaleWord);
    const std::size_t flag_words = (blocks + 63) / 64;
    std::vector<std::uint64_t> flagged(rows * flag_words, 0);
    TileJob job{tile.query_rows.data(), rows,      tile.panels.data, blocks,    dim,
                thresholds.data(), eligible.data(), stride,        scores.data(), candidates.data(),
                flagged.data(),    flag_words,      nullptr,       nullptr};
    kernel.score_tile(job);
    int failures = 0;
    for (std::size_t r = 0; r < rows; ++r) {
        for (std::size_t b = 0; b < blocks; ++b) {
            std::uint32_t want = 0, unsure = 0;
            bool has_nan = false;
            for (std::size_t j = 0; j < kBlock; ++j) {
                const double s = tile.score(r, b, j);
                has_nan = has_nan || std::isnan(s);
                if (std::isfinite(s) && std::fabs(s - thresholds[r]) < 1e-3) unsure |= 1u << j;  // rounding
                if (s >= thresholds[r]) want |= 1u << j;
            }
            want &= eligible[r * stride + b];
            const bool flag = flagged[r * flag_words + b / 64] >> (b % 64) & 1u;
            const std::uint32_t got = flag ? candidates[r * blocks + b] : 0u;
            bool ok = ((got ^ want) & ~unsure) == 0 && (!flag || got != 0);
            if (!flag) ok = ok && candidates[r * blocks + b] == kStaleWord;  // untouched
            if (flag && has_nan) ++nonfinite_candidates;
            for (std::size_t j = 0; j < kBlock; ++j) {
                if (((got >> j) & 1u) == 0) continue;
                const double s = tile.score(r, b, j);
                const float stored = scores[(r * blocks + b) * kBlock + j];
                const bool same = std::isnan(s) ? std::isnan(stored)
                                                : std::fabs(stored - s) <= 1e-4 * std::max(1.0, std::fabs(s)) ||
                                                      double(stored) == s;
                ok = ok && same;
            }
            if (!ok) {
                std::fprintf(stderr,
                             "FAIL %s rows %zu blocks %zu dim %zu row %zu block %zu: flag %d candidates %08x, expected "
                             "%08x (threshold %g)\n",
                             kernel.name, rows, blocks, dim, r, b, int(flag), got, want, double(thresholds[r]));
                ++failures;
            }
        }
    }
    return failures;
}

}  // namespace

int main() {
    std::mt19937 rng(5);
    int failures = test_support::on_every_kernel(150, [&rng](const FloatKernel& kernel) {
        return check(kernel, rng, 1 + rng() % 12, 1 + rng() % 70, 1 + rng() % 40);
    });
    if (nonfinite_candidates == 0) {
        std::fprintf(stderr, "FAIL no flagged block held a NaN score\n");
        ++failures;
    }
    std::printf("flagged blocks holding NaN scores: %zu\n", nonfinite_candidates);
    std::printf("%d failed\n", failures);
    return failures == 0 ? 0 : 1;
}
