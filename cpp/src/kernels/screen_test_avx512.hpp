// The screening pass's per-block test (see ScreenJob), shared by its AVX512-VNNI and AMX
// kernels, both compiled with the AVX-512 flags. Internal linkage on purpose: each kernel file
// keeps its own copy, built with its own flags, so the linker can never hand one file's
// instructions to the other's callers.
#pragma once

#include "kernels/intrinsics.hpp"
#include "kernels/score_tile.hpp"

namespace recbatch::kernels {
namespace {

// The integer thresholds of rows [row0, row0 + rows) for block blk, each rounded towards a
// smaller threshold (out of range: INT_MIN, every item flagged), into out[0, 16).
inline void block_thresholds(const ScreenJob& job, std::size_t row0, std::size_t rows, std::size_t blk,
                             std::int32_t* out) {
    constexpr int kUp = _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC, kDown = _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC;
    const __mmask16 lanes = static_cast<__mmask16>((1u << rows) - 1u);
    const __m512 a = _mm512_maskz_loadu_ps(lanes, job.a + row0), b = _mm512_maskz_loadu_ps(lanes, job.b + row0);
    const __m512 t = _mm512_maskz_loadu_ps(lanes, job.t + row0);
    const __m512 slack = _mm512_fmadd_round_ps(a, _mm512_set1_ps(job.norm[blk]),
                                               _mm512_mul_round_ps(b, _mm512_set1_ps(job.residual[blk]), kUp), kUp);
    const __m512 lower = _mm512_div_round_ps(_mm512_sub_round_ps(t, slack, kDown), _mm512_set1_ps(job.scale[blk]), kDown);
    _mm512_storeu_si512(out, _mm512_cvt_roundps_epi32(lower, kDown));
}

// Flags row `row`'s items of block blk whose exact dot products (lo: items 0-15, hi: 16-31)
// reach thr and that are eligible; stores the candidate word where it is not zero and returns
// it. Most blocks hold no candidate: two compares and one mask test, no load, no store.
inline std::uint32_t flag_row(const ScreenJob& job, std::size_t row, std::size_t blk, __m512i lo, __m512i hi,
                              std::int32_t thr) {
    const __m512i threshold = _mm512_set1_epi32(thr);
    const __mmask16 keep_lo = _mm512_cmpge_epi32_mask(lo, threshold), keep_hi = _mm512_cmpge_epi32_mask(hi, threshold);
    if (_kortestz_mask16_u8(keep_lo, keep_hi)) return 0;
    const std::uint32_t flagged = _cvtmask32_u32(_mm512_kunpackw(keep_hi, keep_lo)) & job.eligible[row * job.eligible_stride + blk];
    if (flagged != 0) job.candidates[row * job.n_blocks + blk] = flagged;
    return flagged;
}

}  // namespace
}  // namespace recbatch::kernels
