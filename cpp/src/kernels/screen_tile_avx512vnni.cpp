// AVX512-VNNI screening kernel (compiled with the AVX-512 flags plus -mavx512vnni; run only
// where the CPU has them). See ScreenJob in score_tile.hpp for what it computes.
//
// Register blocking as in the float kernel: 12 query rows x 32 items = 24 zmm int32
// accumulators. Per group of 4 dimensions the kernel loads the block's two 64-byte vectors
// (16 items x 4 signed bytes each) once and broadcasts each row's 4 unsigned query bytes,
// so one vpdpbusd does the work of 4 float FMAs, on a quarter of the item bytes.

#include "kernels/intrinsics.hpp"
#include "kernels/score_tile.hpp"
#include "kernels/screen_test_avx512.hpp"

namespace recbatch::kernels::avx512_vnni {
namespace {

constexpr std::size_t kBlock = 32;

// Rows go through in chunks of at most 12 (24 accumulators, as in the float kernel); the
// block's int8 data stays in L1 between chunks. GCC spilled such a chunk to the stack every step
// while it copied each _mm512_dpbusd_epi32 accumulator (chunks of 6 were needed then): dpbusd
// below avoids the copy.
constexpr int kChunk = 12;

// acc += (unsigned bytes of u) . (signed bytes of s), per 32-bit lane. Written as inline asm
// because GCC copies the accumulator of _mm512_dpbusd_epi32 to a fresh register every call.
inline __m512i dpbusd(__m512i acc, __m512i u, __m512i s) {
#if defined(__GNUC__)
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
    return acc;
#else
    return _mm512_dpbusd_epi32(acc, u, s);
#endif
}

template <int R>
void screen_chunk(const ScreenJob& job, std::size_t row0, std::size_t blk) {
    const std::uint8_t* q[R];
    for (int r = 0; r < R; ++r) q[r] = job.queries[row0 + r];
    const std::size_t groups = job.dim_groups;
    const std::int8_t* const panel = job.panels + blk * groups * 4 * kBlock;
    const std::size_t item = blk * kBlock;
    const __m512i off_lo = _mm512_loadu_si512(job.offset + item);
    const __m512i off_hi = _mm512_loadu_si512(job.offset + item + 16);
    __m512i acc[R][2];
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
        acc[r][0] = off_lo;
        acc[r][1] = off_hi;
    }
    for (std::size_t g = 0; g < groups; ++g) {
        const __m512i lo = _mm512_load_si512(panel + g * 128);
        const __m512i hi = _mm512_load_si512(panel + g * 128 + 64);
#pragma GCC unroll 12
        for (int r = 0; r < R; ++r) {
            std::int32_t word;
            __builtin_memcpy(&word, q[r] + 4 * g, 4);
            const __m512i qv = _mm512_set1_epi32(word);
            acc[r][0] = dpbusd(acc[r][0], qv, lo);
            acc[r][1] = dpbusd(acc[r][1], qv, hi);
        }
    }
    alignas(64) std::int32_t thresholds[16];
    block_thresholds(job, row0, R, blk, thresholds);
    std::uint32_t any = 0;
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r)
        any |= static_cast<std::uint32_t>(flag_row(job, row0 + r, blk, acc[r][0], acc[r][1], thresholds[r]) != 0)
               << (row0 + r);
    job.block_rows[blk] |= any;
}

template <int R>
void screen_rows(const ScreenJob& job, std::size_t row0, std::size_t blk) {
    if constexpr (R > kChunk) {
        screen_chunk<kChunk>(job, row0, blk);
        screen_rows<R - kChunk>(job, row0 + kChunk, blk);
    } else {
        screen_chunk<R>(job, row0, blk);
    }
}

template <int R>
void screen_blocks(const ScreenJob& job) {
    // The prefetch stretch (see ScreenJob), spread evenly over the blocks.
    const char* const ahead = reinterpret_cast<const char*>(job.prefetch);
    const std::size_t ahead_lines = job.prefetch_bytes / 64;
    const std::size_t lines_per_block = (ahead_lines + job.n_blocks - 1) / job.n_blocks;
    for (std::size_t blk = 0; blk < job.n_blocks; ++blk) {
        const std::size_t last_line =
            (blk + 1) * lines_per_block < ahead_lines ? (blk + 1) * lines_per_block : ahead_lines;
        for (std::size_t line = blk * lines_per_block; line < last_line; ++line)
            _mm_prefetch(ahead + 64 * line, _MM_HINT_T1);
        job.block_rows[blk] = 0;
        screen_rows<R>(job, 0, blk);
    }
}

}  // namespace

void screen_tile(const ScreenJob& job) {
    switch (job.n_rows) {
        case 12: screen_blocks<12>(job); break;
        case 11: screen_blocks<11>(job); break;
        case 10: screen_blocks<10>(job); break;
        case 9: screen_blocks<9>(job); break;
        case 8: screen_blocks<8>(job); break;
        case 7: screen_blocks<7>(job); break;
        case 6: screen_blocks<6>(job); break;
        case 5: screen_blocks<5>(job); break;
        case 4: screen_blocks<4>(job); break;
        case 3: screen_blocks<3>(job); break;
        case 2: screen_blocks<2>(job); break;
        default: screen_blocks<1>(job); break;
    }
}

}  // namespace recbatch::kernels::avx512_vnni
