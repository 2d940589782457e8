// The per-ISA kernel contract: score a group of up to kMaxRows queries against a tile of
// packed item blocks, flag the candidates that may enter each query's top k, and fold the
// eligible scores into a running log-sum-exp. Only the score_tile_<isa>.cpp files hold
// intrinsics; each puts its code in recbatch::kernels::<isa> with internal linkage, and
// includes nothing that could instantiate a template shared with baseline code.
#pragma once

#include <cstddef>
#include <cstdint>

namespace recbatch::kernels {

// Rows scored together: the widest micro-kernel (AVX-512, 12 rows x 32 items) keeps
// 24 accumulators in registers; narrower ISAs split the group.
constexpr std::size_t kMaxRows = 12;

struct TileJob {
    const float* const* queries;  // n_rows pointers to query rows of dim floats
    std::size_t n_rows;           // 1..kMaxRows
    const float* panels;          // n_blocks packed blocks, dim x 32 floats each
    std::size_t n_blocks;
    std::size_t dim;
    const float* thresholds;      // per row: a candidate must score at least this (ties go to the heap)
    const std::uint32_t* eligible;  // n_rows x n_blocks: bit j = item j of the block may count
    float* scores;                // n_rows x (n_blocks * 32): every score, eligible or not
    std::uint32_t* candidates;    // n_rows x n_blocks: eligible and above the threshold
    float* lse_max;               // n_rows running maxima, or nullptr when not wanted
    double* lse_sum;              // n_rows running sums of exp(score - lse_max)
};

using ScoreTileFn = void (*)(const TileJob&);

namespace scalar { void score_tile(const TileJob& job); }
namespace avx2 { void score_tile(const TileJob& job); }
namespace avx512 { void score_tile(const TileJob& job); }

}  // namespace recbatch::kernels
