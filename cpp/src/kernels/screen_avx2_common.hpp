// The parts of the AVX2-width screening kernels (avx2_int8: vpmaddubsw; avx2_vnni: AVX-VNNI's
// vpdpbusd on ymm) that do not depend on how the integer sums are made: the per-block thresholds,
// the flag test, and the loop over blocks and row chunks. Each kernel file includes it and
// supplies its chunk (Kernel::chunk<R>, Kernel::kChunkRows). Internal linkage on purpose: each
// file keeps its own copy, built with its own flags.
#pragma once

#include <climits>

#include "kernels/intrinsics.hpp"
#include "kernels/score_tile.hpp"

namespace recbatch::kernels {
namespace {

// The rows' bound constants in double, padded to whole vectors of 4.
struct RowConstants {
    alignas(32) double a[kMaxRows], b[kMaxRows], t[kMaxRows];
};
static_assert(kMaxRows % 4 == 0, "rows are converted 4 at a time");

RowConstants row_constants(const ScreenJob& job) {
    RowConstants rows;
    for (std::size_t r = 0; r < kMaxRows; ++r) {
        const bool real = r < job.n_rows;
        rows.a[r] = real ? job.a[r] : 0.0;
        rows.b[r] = real ? job.b[r] : 0.0;
        rows.t[r] = real ? job.t[r] : 0.0;
    }
    return rows;
}

// Per row of the job, thr - 1 for block blk (AVX2's only integer compare is greater-than, and
// D >= thr is D > thr - 1), or INT_MIN where thr itself is INT_MIN: every D exceeds it, since
// |D| <= dim x 127 x 127 is far from INT_MIN.
//
// thr = floor((t - a N - b R) / s) must not exceed the real value of the right-hand side (see
// screen_bound.cpp). AVX2 has no directed rounding, so it is evaluated in double: the products
// a N and b R of floats are exact, and the fused sum, the difference, the reciprocal and the
// product add at most 4.1 units of 2^-53 of S = (|t| + a N + b R) / s. Subtracting 2^-46 S (128
// such units) before the floor covers them. NaN, an infinity, s = 0 and anything outside the
// int32 range convert to INT_MIN (vcvttpd2dq's "integer indefinite"): every item is flagged.
void block_thresholds(const RowConstants& rows, std::size_t n_rows, float norm, float residual, float scale,
                      std::int32_t* out) {
    const __m256d n = _mm256_set1_pd(norm), res = _mm256_set1_pd(residual);
    const __m256d inverse = _mm256_set1_pd(1.0 / static_cast<double>(scale));
    const __m256d margin = _mm256_set1_pd(0x1p-46), sign = _mm256_set1_pd(-0.0);
    const __m128i lowest = _mm_set1_epi32(INT_MIN), one = _mm_set1_epi32(1);
    for (std::size_t r = 0; r < n_rows; r += 4) {
        const __m256d t = _mm256_load_pd(rows.t + r);
        const __m256d slack = _mm256_fmadd_pd(_mm256_load_pd(rows.a + r), n, _mm256_mul_pd(_mm256_load_pd(rows.b + r), res));
        const __m256d x = _mm256_mul_pd(_mm256_sub_pd(t, slack), inverse);
        const __m256d size = _mm256_mul_pd(_mm256_add_pd(_mm256_andnot_pd(sign, t), slack), inverse);
        const __m128i thr = _mm256_cvttpd_epi32(_mm256_floor_pd(_mm256_fnmadd_pd(size, margin, x)));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + r),
                         _mm_sub_epi32(thr, _mm_andnot_si128(_mm_cmpeq_epi32(thr, lowest), one)));
    }
}

// Flags row `row`'s items of block blk whose exact dot products (acc: items 0-7, 8-15, 16-23,
// 24-31) exceed below = thr - 1 and that are eligible; stores the candidate word where it is not
// zero and returns it. Most blocks hold no candidate: four compares, two packs and one test.
inline std::uint32_t flag_row(const ScreenJob& job, std::size_t row, std::size_t blk, const __m256i* acc,
                              std::int32_t below) {
    const __m256i threshold = _mm256_set1_epi32(below);
    // packs works within 128-bit lanes: the bytes come out as the dwords of items 0-3, 8-11,
    // 16-19, 24-27 | 4-7, 12-15, 20-23, 28-31, which the permutation puts back in item order.
    const __m256i packed =
        _mm256_packs_epi16(_mm256_packs_epi32(_mm256_cmpgt_epi32(acc[0], threshold), _mm256_cmpgt_epi32(acc[1], threshold)),
                           _mm256_packs_epi32(_mm256_cmpgt_epi32(acc[2], threshold), _mm256_cmpgt_epi32(acc[3], threshold)));
    if (_mm256_testz_si256(packed, packed)) return 0;
    const __m256i ordered = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    const std::uint32_t flagged = static_cast<std::uint32_t>(_mm256_movemask_epi8(ordered)) &
                                  job.eligible[row * job.eligible_stride + blk];
    if (flagged != 0) job.candidates[row * job.n_blocks + blk] = flagged;
    return flagged;
}

inline __m256i query_bytes(const std::uint8_t* q, std::size_t g) {
    std::int32_t word;
    __builtin_memcpy(&word, q + 4 * g, 4);
    return _mm256_set1_epi32(word);
}

// Every row's 4 accumulators (items 0-7, ..., 24-31) of block blk start at the items' offsets
// >> shift (the kernel's query bytes are q8 + (128 >> shift)).
template <int R>
inline void start_at_offsets(const ScreenJob& job, std::size_t blk, int shift, __m256i (*acc)[4]) {
    for (int v = 0; v < 4; ++v) {
        const __m256i offset =
            _mm256_srai_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(job.offset + blk * 32 + 8 * v)), shift);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) acc[r][v] = offset;
    }
}

// flag_row for rows row0 .. row0 + R - 1; bit row0 + r of the result: row r has a candidate.
template <int R>
inline std::uint32_t flag_rows(const ScreenJob& job, std::size_t row0, std::size_t blk, const __m256i (*acc)[4],
                               const std::int32_t* below) {
    std::uint32_t rows = 0;
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
        rows |= static_cast<std::uint32_t>(flag_row(job, row0 + r, blk, acc[r], below[row0 + r]) != 0) << (row0 + r);
    return rows;
}

// The rows from row0 on, up to R of them (the last chunk of a group may be short).
template <class Kernel, int R>
std::uint32_t screen_rows(const ScreenJob& job, std::size_t row0, std::size_t blk, const std::int32_t* below) {
    if constexpr (R > 1)
        if (job.n_rows - row0 < R) return screen_rows<Kernel, R - 1>(job, row0, blk, below);
    return Kernel::template chunk<R>(job, row0, blk, below);
}

template <class Kernel>
void screen_tile_with(const ScreenJob& job) {
    const RowConstants rows = row_constants(job);
    // The prefetch stretch (see ScreenJob), spread evenly over the blocks.
    const char* const ahead = reinterpret_cast<const char*>(job.prefetch);
    const std::size_t ahead_lines = job.prefetch_bytes / 64;
    const std::size_t lines_per_block = (ahead_lines + job.n_blocks - 1) / job.n_blocks;
    alignas(16) std::int32_t below[kMaxRows];
    for (std::size_t blk = 0; blk < job.n_blocks; ++blk) {
        const std::size_t last_line =
            (blk + 1) * lines_per_block < ahead_lines ? (blk + 1) * lines_per_block : ahead_lines;
        for (std::size_t line = blk * lines_per_block; line < last_line; ++line)
            _mm_prefetch(ahead + 64 * line, _MM_HINT_T1);
        block_thresholds(rows, job.n_rows, job.norm[blk], job.residual[blk], job.scale[blk], below);
        std::uint32_t found = 0;
        for (std::size_t row0 = 0; row0 < job.n_rows; row0 += Kernel::kChunkRows)
            found |= screen_rows<Kernel, Kernel::kChunkRows>(job, row0, blk, below);
        job.block_rows[blk] = found;
    }
}

}  // namespace
}  // namespace recbatch::kernels
