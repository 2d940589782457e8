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
// Register blocking: 2 query rows x the whole 32-item block (4 ymm int32 accumulators per row).
// The block's int8 data stays in L1 between chunks. Thresholds, flags and the block loop are
// shared with avx2_vnni (screen_avx2_common.hpp).
#include "kernels/screen_avx2_common.hpp"

namespace recbatch::kernels::avx2_int8 {
namespace {

constexpr std::size_t kBlock = 32;
constexpr int kOffsetShift = 2;  // bytes q8 + 32 where the index's offsets assume q8 + 128

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

// kChunkRows query rows x the whole block: the chunk screen_tile_with runs.
struct Maddubs {
    static constexpr int kChunkRows = 2;
    template <int R>
    static std::uint32_t chunk(const ScreenJob& job, std::size_t row0, std::size_t blk, const std::int32_t* below);
};

template <int R>
std::uint32_t Maddubs::chunk(const ScreenJob& job, std::size_t row0, std::size_t blk, const std::int32_t* below) {
    const std::uint8_t* q[R];
    for (int r = 0; r < R; ++r) q[r] = job.queries[row0 + r];
    const std::size_t groups = job.dim_groups;
    const std::int8_t* const panel = job.panels + blk * groups * 4 * kBlock;
    __m256i acc[R][4];
    start_at_offsets<R>(job, blk, kOffsetShift, acc);
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
    return flag_rows<R>(job, row0, blk, acc, below);
}

}  // namespace

void screen_tile(const ScreenJob& job) { screen_tile_with<Maddubs>(job); }

}  // namespace recbatch::kernels::avx2_int8
