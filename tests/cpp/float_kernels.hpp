// What the float-kernel tests share: the kernels this build has, and 64-byte aligned panels.
#pragma once

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "kernels/score_tile.hpp"
#include "recbatch/simd_level.hpp"

namespace test_support {

constexpr std::size_t kBlock = 32;  // items per packed block

struct AlignedFloats {  // packed panels are 64-byte aligned
    explicit AlignedFloats(std::size_t n)
        : data(static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64))) {}
    ~AlignedFloats() { std::free(data); }
    AlignedFloats(const AlignedFloats&) = delete;
    AlignedFloats& operator=(const AlignedFloats&) = delete;
    float* data;
};

struct FloatKernel {
    recbatch::SimdLevel level;
    const char* name;
    recbatch::kernels::ScoreTileFn score_tile;
    recbatch::kernels::LaneMaximaFn lane_maxima;
    recbatch::kernels::KeepAtLeastFn keep_at_least;
    recbatch::kernels::KthLargestLaneFn kth_largest_lane;
    bool runs_here() const { return recbatch::simd_level_available(level); }
};

inline std::vector<FloatKernel> float_kernels() {
    namespace k = recbatch::kernels;
    std::vector<FloatKernel> kernels = {{recbatch::SimdLevel::scalar, "scalar", k::scalar::score_tile,
                                         k::scalar::lane_maxima, k::scalar::keep_at_least, k::scalar::kth_largest_lane}};
#if defined(__x86_64__) || defined(_M_X64)
    kernels.push_back({recbatch::SimdLevel::avx2, "avx2", k::avx2::score_tile, k::avx2::lane_maxima,
                       k::avx2::keep_at_least, k::avx2::kth_largest_lane});
    kernels.push_back({recbatch::SimdLevel::avx512, "avx512", k::avx512::score_tile, k::avx512::lane_maxima,
                       k::avx512::keep_at_least, k::avx512::kth_largest_lane});
#endif
    return kernels;
}

// A tile to score: Gaussian query rows (times `spread` for the items), packed panels, and the
// scores in double. Tests may edit the panels, then call score_in_double again.
struct RandomTile {
    RandomTile(std::mt19937& rng, std::size_t rows_, std::size_t blocks_, std::size_t dim_, float spread = 1.0f)
        : rows(rows_), blocks(blocks_), dim(dim_), panels(blocks_ * dim_ * kBlock), queries(rows_ * dim_),
          query_rows(rows_) {
        std::normal_distribution<float> normal;
        for (std::size_t i = 0; i < blocks * dim * kBlock; ++i) panels.data[i] = spread * normal(rng);
        for (float& x : queries) x = normal(rng);
        for (std::size_t r = 0; r < rows; ++r) query_rows[r] = queries.data() + r * dim;
        score_in_double();
    }
    void score_in_double() {
        reference.assign(rows * blocks * kBlock, 0.0);
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t b = 0; b < blocks; ++b)
                for (std::size_t j = 0; j < kBlock; ++j)
                    for (std::size_t d = 0; d < dim; ++d)
                        reference[(r * blocks + b) * kBlock + j] +=
                            double(queries[r * dim + d]) * panels.data[(b * dim + d) * kBlock + j];
    }
    // Row r's exact score of item j of block b.
    double score(std::size_t r, std::size_t b, std::size_t j) const { return reference[(r * blocks + b) * kBlock + j]; }

    std::size_t rows, blocks, dim;
    AlignedFloats panels;
    std::vector<float> queries;  // rows x dim
    std::vector<const float*> query_rows;
    std::vector<double> reference;
};

// Runs trial(kernel) `trials` times for every float kernel this CPU runs; the failures it counts.
template <class Trial>
int on_every_kernel(int trials, Trial trial) {
    int failures = 0;
    for (const FloatKernel& kernel : float_kernels()) {
        if (!kernel.runs_here()) {
            std::printf("%s: not on this CPU, skipped\n", kernel.name);
            continue;
        }
        for (int t = 0; t < trials; ++t) failures += trial(kernel);
    }
    return failures;
}

}  // namespace test_support
