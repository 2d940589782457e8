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
    const std::uint32_t* eligible;  // row r, block b: eligible[r * eligible_stride + b], bit j = item j
                                    // of the block may count
    std::size_t eligible_stride;    // n_blocks for one word per row and block; 0 when the rows share
                                    // one row of words (no per-query exclusions): nothing to copy
    float* scores;                // n_rows x (n_blocks * 32): at least every candidate's score
                                  // (kernels may write others too; AVX2 stores half-blocks)
    std::uint32_t* candidates;    // n_rows x n_blocks: eligible and above the threshold, written only
                                  // for the blocks that have one (the others hold stale words)
    // n_rows x flag_words bitmaps: the kernel sets bit b of row r when block b has a candidate,
    // so that the caller visits those words alone (the caller clears the bits it has read).
    std::uint64_t* flagged;
    std::size_t flag_words;       // >= ceil(n_blocks / 64)
    float* lse_max;               // n_rows running maxima, or nullptr when not wanted
    double* lse_sum;              // n_rows running sums of exp(score - lse_max)
    // A stretch of the next tile to bring into L2 while this one is scored (a hint: kernels
    // may ignore it). The first row group to reach a tile would otherwise wait on memory.
    const float* prefetch = nullptr;
    std::size_t prefetch_floats = 0;
};

using ScoreTileFn = void (*)(const TileJob& job);

// Thinning an empty heap's first tile, where every eligible item is a candidate (its rows'
// thresholds are -inf). lane_maxima writes, for each such row r, out[r * 32 + j] = the largest
// score of a candidate in lane j over the tile's blocks (-inf where there is none; other rows
// get -inf throughout). Lane j's maximum is one item, a different one for
// each j, so the k-th largest of the 32 is a lower bound on the row's k-th best score (k <= 32).
// keep_at_least then clears row r's candidate bits of scores below bounds[r] (-inf: none).
using LaneMaximaFn = void (*)(const TileJob& job, float* out);
using KeepAtLeastFn = void (*)(const TileJob& job, const float* bounds);
// The k-th largest of 32 lane values (1 <= k <= 32): the largest value that at least k of them
// reach (-inf when none does; NaN lanes reach nothing and are never the answer).
using KthLargestLaneFn = float (*)(const float* values, std::size_t k);

namespace scalar {
void score_tile(const TileJob& job);
void lane_maxima(const TileJob& job, float* out);
void keep_at_least(const TileJob& job, const float* bounds);
float kth_largest_lane(const float* values, std::size_t k);
}  // namespace scalar
namespace avx2 {
void score_tile(const TileJob& job);
void lane_maxima(const TileJob& job, float* out);
void keep_at_least(const TileJob& job, const float* bounds);
float kth_largest_lane(const float* values, std::size_t k);
// Rescoring screened candidates, as avx512's score_blocks and score_items below (same contract,
// and the same bits: every kernel's score is one FMA chain over the dimensions from zero).
void score_blocks(std::size_t n, const float* const* queries, const float* const* panels, const float* thresholds,
                  std::size_t dim, float* out, std::uint32_t* above);
void score_items(std::size_t n, const float* const* queries, const float* const* columns, std::size_t dim,
                 float* out);
}  // namespace avx2
namespace avx512 {
void score_tile(const TileJob& job);
void lane_maxima(const TileJob& job, float* out);
void keep_at_least(const TileJob& job, const float* bounds);
float kth_largest_lane(const float* values, std::size_t k);
// One query row against one block: the 32 scores score_tile writes for it, bit for bit
// (the same instructions in the same order), for rescoring screened candidates. Returns
// score_tile's candidate bits for them: score >= threshold (before eligibility).
std::uint32_t score_block(const float* query, const float* panel, std::size_t dim, float threshold, float* out);
// score_block for n (query, block) pairs, four at a time so that their FMA chains overlap:
// pair i's 32 scores go to out + 32 i, its candidate bits to above[i].
void score_blocks(std::size_t n, const float* const* queries, const float* const* panels, const float* thresholds,
                  std::size_t dim, float* out, std::uint32_t* above);
// One item's score for n (query, item) pairs, bit for bit score_tile's: pair i's item is lane
// j of a block, columns[i] = panel + j (so its value at dimension d is columns[i][32 d]).
// For blocks where screening leaves one or two candidates, cheaper than score_blocks.
void score_items(std::size_t n, const float* const* queries, const float* const* columns, std::size_t dim,
                 float* out);
}  // namespace avx512

// The int8 screening pass (PackedItems' int8 copy; bound and proof in screen_bound.cpp). Per row
// r and block b it computes, with directed rounding so that the result is a lower bound,
//     thr = floor((t_r - a_r norm_b - b_r residual_b) / scale_b)    (as int32)
// and flags item j of the block when D = q8_r . v8_j >= thr, D exact in int32 (vpdpbusd
// on the unsigned query bytes q8 + 128, its accumulator started at offset_j =
// -128 sum v8_j), and j is eligible. Anything that does not fit (overflow, NaN, scale 0)
// turns thr into INT_MIN: every item of the block is flagged.
// avx2_int8 (vpmaddubsw, whose int16 sums must not saturate) reads 6-bit queries instead:
// bytes q8 + 32 with q8 in [-31, 31], its accumulator started at offset_j / 4 = -32 sum v8_j.
struct ScreenJob {
    const std::uint8_t* const* queries;  // n_rows pointers to dim_groups * 4 bytes: q8 + 128 (avx2_int8: q8 + 32)
    std::size_t n_rows;                  // 1..kMaxRows
    const std::int8_t* panels;           // n_blocks int8 blocks, dim_groups * 128 bytes each
    std::size_t n_blocks;
    std::size_t dim_groups;
    const std::int32_t* offset;  // per item of the tile (n_blocks * 32)
    const float* scale;          // per block of the tile
    const float* norm;
    const float* residual;
    const float* a;  // per row
    const float* b;
    const float* t;
    const std::uint32_t* eligible;  // as in TileJob: row r, block b at eligible[r * eligible_stride + b]
    std::size_t eligible_stride;
    std::uint32_t* candidates;      // n_rows x n_blocks: written only where block_rows has the row's bit
    std::uint32_t* block_rows;      // n_blocks: bit r = row r has a candidate in the block
    // A stretch of the next tile's int8 panels to bring into L2 meanwhile (a hint, as in TileJob).
    const void* prefetch = nullptr;
    std::size_t prefetch_bytes = 0;
};

using ScreenTileFn = void (*)(const ScreenJob&);
using ScoreBlocksFn = void (*)(std::size_t, const float* const*, const float* const*, const float*, std::size_t, float*,
                               std::uint32_t*);
using ScoreItemsFn = void (*)(std::size_t, const float* const*, const float* const*, std::size_t, float*);

namespace avx2_int8 { void screen_tile(const ScreenJob& job); }
// The same pass with AVX-VNNI's vpdpbusd on ymm: 8-bit queries, as avx512_vnni's.
namespace avx2_vnni { void screen_tile(const ScreenJob& job); }
namespace avx512_vnni { void screen_tile(const ScreenJob& job); }
// The same pass on the AMX tile unit: the same int32 dot products, so the same flags.
namespace amx_int8 { void screen_tile(const ScreenJob& job); }

}  // namespace recbatch::kernels
