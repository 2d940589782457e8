// Rescoring screened candidates one item at a time (score_items in score_tile.hpp), shared by
// the float kernel files: fma over the dimensions in order, from zero, is one lane of every
// kernel's accumulators, so it needs no intrinsics, only the file's FMA instruction. Internal
// linkage: each file compiles its own copy with its own flags.
#pragma once

#include <cstddef>

namespace recbatch::kernels {
namespace {

inline void score_items_with_fma(std::size_t n, const float* const* queries, const float* const* columns,
                                 std::size_t dim, float* out) {
    constexpr std::size_t kStride = 32;  // an item's next dimension, one block row further
    // Eight independent chains, so the FMA latency hides behind the other seven.
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float* q[8];
        const float* c[8];
        float acc[8];
        for (int u = 0; u < 8; ++u) q[u] = queries[i + u], c[u] = columns[i + u], acc[u] = 0.0f;
        for (std::size_t d = 0; d < dim; ++d) {
#pragma GCC unroll 8
            for (int u = 0; u < 8; ++u) acc[u] = __builtin_fmaf(q[u][d], c[u][d * kStride], acc[u]);
        }
        for (int u = 0; u < 8; ++u) out[i + u] = acc[u];
    }
    for (; i < n; ++i) {
        float acc = 0.0f;
        for (std::size_t d = 0; d < dim; ++d) acc = __builtin_fmaf(queries[i][d], columns[i][d * kStride], acc);
        out[i] = acc;
    }
}

}  // namespace
}  // namespace recbatch::kernels
