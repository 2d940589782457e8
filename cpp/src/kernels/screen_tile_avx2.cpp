// AVX2 int8 screening kernel (compiled with -mavx2 -mfma; run only where the CPU has them), for
// the CPUs without AVX512-VNNI: AMD Zen 2 and 3, Intel client cores. See ScreenJob in
// score_tile.hpp for what it computes.
//
// AVX2 has no vpdpbusd. vpmaddubsw multiplies unsigned by signed bytes and adds adjacent pairs
// into int16, saturating; vpmaddwd against ones then adds those pairs into the int32 sum of 4
// products. That is exact only where no int16 sum saturates: 2 x 255 x 127 = 64,770 would. This
// level's query bytes are 6-bit (q8 + 32 <= 63), so one pair sum is at most 2 x 63 x 128 = 16,128
// and two dimension groups' pair sums can be added in int16 (32,256 <= 32,767) before one vpmaddwd
// widens them; the accumulators start at offset_j / 4 = -32 sum v8_j. Five instructions per 8
// items x 8 dimensions, three of them on the multiply ports, against one FMA per 8 items x 1
// dimension, reading a quarter of the float kernel's bytes. (7-bit queries, one group per
// vpmaddwd, flag 26-30% fewer candidates but took 10-14% longer: NOTES entry 42.)
//
// Register blocking: kChunkRows query rows x the whole 32-item block (4 ymm int32 accumulators
// per row). The block's int8 data stays in L1 between chunks.
#include <climits>

#include "kernels/intrinsics.hpp"
#include "kernels/score_tile.hpp"

namespace recbatch::kernels::avx2_int8 {
namespace {

constexpr std::size_t kBlock = 32;
constexpr int kChunkRows = 2;
constexpr int kOffsetShift = 2;  // bytes q8 + 32 where the index's offsets assume q8 + 128

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
// |D| <= dim x 31 x 127 is far from INT_MIN.
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

// acc += the int32 sums of 4 products of the unsigned bytes of q and the signed bytes of *item.
// Inline asm for GCC, which otherwise issues every row's vpmaddubsw first and then runs out of
// the 16 registers for their products, spilling accumulators to the stack each step.
inline void multiply_add(__m256i& acc, __m256i q, const __m256i* item, __m256i ones) {
#if defined(__GNUC__)
    __m256i product;
    __asm__("vpmaddubsw %[item], %[q], %[p]\n\t"
            "vpmaddwd %[ones], %[p], %[p]\n\t"
            "vpaddd %[p], %[acc], %[acc]"
            : [acc] "+x"(acc), [p] "=&x"(product)
            : [q] "x"(q), [item] "m"(*item), [ones] "x"(ones));
#else
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(q, _mm256_load_si256(item)), ones));
#endif
}

// The same for two dimension groups at once: their int16 pair sums are added before widening,
// which 6-bit queries make exact (see the top of this file).
inline void multiply_add2(__m256i& acc, __m256i q0, __m256i q1, const __m256i* item0, const __m256i* item1,
                          __m256i ones) {
#if defined(__GNUC__)
    __m256i p0, p1;
    __asm__("vpmaddubsw %[i0], %[q0], %[p0]\n\t"
            "vpmaddubsw %[i1], %[q1], %[p1]\n\t"
            "vpaddw %[p1], %[p0], %[p0]\n\t"
            "vpmaddwd %[ones], %[p0], %[p0]\n\t"
            "vpaddd %[p0], %[acc], %[acc]"
            : [acc] "+x"(acc), [p0] "=&x"(p0), [p1] "=&x"(p1)
            : [q0] "x"(q0), [q1] "x"(q1), [i0] "m"(*item0), [i1] "m"(*item1), [ones] "x"(ones));
#else
    const __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(q0, _mm256_load_si256(item0)),
                                           _mm256_maddubs_epi16(q1, _mm256_load_si256(item1)));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, ones));
#endif
}

inline __m256i query_bytes(const std::uint8_t* q, std::size_t g) {
    std::int32_t word;
    __builtin_memcpy(&word, q + 4 * g, 4);
    return _mm256_set1_epi32(word);
}

template <int R>
std::uint32_t screen_chunk(const ScreenJob& job, std::size_t row0, std::size_t blk, const std::int32_t* below) {
    const std::uint8_t* q[R];
    for (int r = 0; r < R; ++r) q[r] = job.queries[row0 + r];
    const std::size_t groups = job.dim_groups;
    const std::int8_t* const panel = job.panels + blk * groups * 4 * kBlock;
    __m256i acc[R][4];
    for (int v = 0; v < 4; ++v) {
        const __m256i offset =
            _mm256_srai_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(job.offset + blk * kBlock + 8 * v)), kOffsetShift);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) acc[r][v] = offset;
    }
    const __m256i ones = _mm256_set1_epi16(1);
    std::size_t g = 0;
    for (; g + 2 <= groups; g += 2) {
        const __m256i* items = reinterpret_cast<const __m256i*>(panel + g * 4 * kBlock);
        __m256i q0[R], q1[R];
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) q0[r] = query_bytes(q[r], g), q1[r] = query_bytes(q[r], g + 1);
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v)
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) multiply_add2(acc[r][v], q0[r], q1[r], items + v, items + 4 + v, ones);
    }
    if (g < groups) {
        const __m256i* items = reinterpret_cast<const __m256i*>(panel + g * 4 * kBlock);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            const __m256i qv = query_bytes(q[r], g);
#pragma GCC unroll 4
            for (int v = 0; v < 4; ++v) multiply_add(acc[r][v], qv, items + v, ones);
        }
    }
    std::uint32_t rows = 0;
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
        rows |= static_cast<std::uint32_t>(flag_row(job, row0 + r, blk, acc[r], below[row0 + r]) != 0) << (row0 + r);
    return rows;
}

// The rows from row0 on, up to R of them (the last chunk of a group may be short).
template <int R>
std::uint32_t screen_rows(const ScreenJob& job, std::size_t row0, std::size_t blk, const std::int32_t* below) {
    if constexpr (R > 1)
        if (job.n_rows - row0 < R) return screen_rows<R - 1>(job, row0, blk, below);
    return screen_chunk<R>(job, row0, blk, below);
}

}  // namespace

void screen_tile(const ScreenJob& job) {
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
        for (std::size_t row0 = 0; row0 < job.n_rows; row0 += kChunkRows) found |= screen_rows<kChunkRows>(job, row0, blk, below);
        job.block_rows[blk] = found;
    }
}

}  // namespace recbatch::kernels::avx2_int8
