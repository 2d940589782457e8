// Every float kernel's first-tile thinning (lane_maxima, keep_at_least; contract in score_tile.hpp),
// called directly after score_tile on tiles whose rows have no threshold yet and whose items are
// only partly eligible (as under an allow mask or exclusions): lane j's maximum must be the largest
// score of an eligible item j over the blocks, whatever the other lanes of its block hold, and
// keep_at_least must clear exactly the candidate bits of scores below each row's bound; and
// kth_largest_lane must give what a sort gives.
#include <algorithm>
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

std::size_t partial_blocks = 0;  // blocks with some but not all items eligible: the case at stake

int check(const FloatKernel& kernel, std::mt19937& rng, std::size_t rows, std::size_t blocks, std::size_t dim) {
    const test_support::RandomTile tile(rng, rows, blocks, dim);
    // Each row keeps about half its items; some blocks keep all, some none.
    std::vector<std::uint32_t> eligible(rows * blocks);
    for (auto& word : eligible) {
        const unsigned kind = rng() % 8;
        word = kind == 0 ? ~0u : kind == 1 ? 0u : static_cast<std::uint32_t>(rng());
        partial_blocks += word != 0u && word != ~0u ? 1 : 0;
    }
    std::vector<float> thresholds(rows, -INFINITY), scores(rows * blocks * kBlock, 1e30f);
    std::vector<std::uint32_t> candidates(rows * blocks, 0);
    const std::size_t flag_words = (blocks + 63) / 64;
    std::vector<std::uint64_t> flagged(rows * flag_words, 0);
    TileJob job{tile.query_rows.data(), rows,   tile.panels.data,  blocks,        dim,        thresholds.data(),
                eligible.data(),        blocks, scores.data(),     candidates.data(), flagged.data(), flag_words,
                nullptr,                nullptr};
    kernel.score_tile(job);
    std::vector<float> maxima(rows * kBlock);
    kernel.lane_maxima(job, maxima.data());
    int failures = 0;
    std::vector<float> bounds(rows);
    for (std::size_t r = 0; r < rows; ++r) {
        for (std::size_t j = 0; j < kBlock; ++j) {
            float want = -INFINITY;
            for (std::size_t b = 0; b < blocks; ++b)
                if ((eligible[r * blocks + b] >> j) & 1u) want = std::fmax(want, scores[(r * blocks + b) * kBlock + j]);
            if (maxima[r * kBlock + j] != want) {
                std::fprintf(stderr, "FAIL %s rows %zu blocks %zu dim %zu: row %zu lane %zu maximum %g, expected %g\n",
                             kernel.name, rows, blocks, dim, r, j, maxima[r * kBlock + j], want);
                ++failures;
            }
        }
        bounds[r] = r % 3 == 0 ? -INFINITY : maxima[r * kBlock + rng() % kBlock];  // -inf: keep everything
    }
    const std::vector<std::uint32_t> before = candidates;
    kernel.keep_at_least(job, bounds.data());
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t b = 0; b < blocks; ++b) {
            if (eligible[r * blocks + b] == 0) continue;  // no candidate: the word is not the kernel's
            std::uint32_t want = before[r * blocks + b];
            for (std::size_t j = 0; j < kBlock; ++j)
                if (!(scores[(r * blocks + b) * kBlock + j] >= bounds[r])) want &= ~(1u << j);
            if (candidates[r * blocks + b] != want) {
                std::fprintf(stderr, "FAIL %s keep_at_least row %zu block %zu: %08x, expected %08x\n", kernel.name, r, b,
                             candidates[r * blocks + b], want);
                ++failures;
            }
        }
    return failures;
}

// kth_largest_lane against a sort: the largest value that at least k values reach, on lane values
// with ties, infinities and NaN (which reaches nothing and is never the answer).
int check_kth(const FloatKernel& kernel, std::mt19937& rng) {
    std::uniform_int_distribution<int> pick(0, 9);
    std::normal_distribution<float> normal;
    float values[kBlock];
    for (float& x : values) {
        const int kind = pick(rng);
        x = kind == 0 ? -INFINITY : kind == 1 ? NAN : kind == 2 ? INFINITY : kind < 6 ? std::round(normal(rng)) : normal(rng);
    }
    std::vector<float> ordered;
    for (float x : values)
        if (!std::isnan(x)) ordered.push_back(x);
    std::sort(ordered.begin(), ordered.end(), [](float a, float b) { return a > b; });
    int failures = 0;
    for (std::size_t k = 1; k <= kBlock; ++k) {
        const float want = k <= ordered.size() ? ordered[k - 1] : -INFINITY;
        const float got = kernel.kth_largest_lane(values, k);
        if (!(got == want)) {
            std::fprintf(stderr, "FAIL %s kth_largest_lane k %zu: %g, expected %g\n", kernel.name, k, got, want);
            ++failures;
        }
    }
    return failures;
}

}  // namespace

int main() {
    std::mt19937 rng(5);
    int failures = test_support::on_every_kernel(100, [&rng](const FloatKernel& kernel) {
        return check(kernel, rng, 1 + rng() % 12, 1 + rng() % 40, 1 + rng() % 40);
    });
    failures += test_support::on_every_kernel(300, [&rng](const FloatKernel& kernel) { return check_kth(kernel, rng); });
    if (partial_blocks == 0) {
        std::fprintf(stderr, "FAIL no partly eligible block was drawn\n");
        ++failures;
    }
    std::printf("%d failed\n", failures);
    return failures == 0 ? 0 : 1;
}
