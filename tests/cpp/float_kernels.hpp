// What the float-kernel tests share: the kernels this build has, and 64-byte aligned panels.
#pragma once

#include <cstddef>
#include <cstdlib>
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
    bool runs_here() const { return static_cast<int>(level) <= static_cast<int>(recbatch::detected_simd_level()); }
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

}  // namespace test_support
