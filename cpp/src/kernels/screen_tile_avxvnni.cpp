// AVX-VNNI screening kernel (compiled with -mavx2 -mfma -mavxvnni; run only where the CPU has
// them), for CPUs with AVX-VNNI but not AVX-512: Intel client cores since Alder Lake, and the
// E-core Xeons. See ScreenJob in score_tile.hpp for what it computes.
//
// The VEX-encoded vpdpbusd multiplies unsigned by signed bytes and adds each group of 4 into an
// int32 lane without saturation, so queries keep 8 bits (q8 + 128, as for avx512_vnni) and one
// instruction does 8 items x 4 dimensions, where avx2_int8 needs 2.5. Register blocking: 3 query
// rows x the whole 32-item block = 12 ymm accumulators, the items read as memory operands.
// Thresholds, flags and the block loop are avx2_int8's (screen_avx2_common.hpp).
#include "kernels/screen_avx2_common.hpp"

namespace recbatch::kernels::avx2_vnni {
namespace {

constexpr std::size_t kBlock = 32;

// acc += (unsigned bytes of q) . (signed bytes of *item), per 32-bit lane. Inline asm for GCC,
// which would copy the accumulator of _mm256_dpbusd_avx_epi32 to a fresh register every call.
inline void dot_add(__m256i& acc, __m256i q, const __m256i* item) {
#if defined(__GNUC__)
    __asm__("%{vex%} vpdpbusd %[item], %[q], %[acc]" : [acc] "+x"(acc) : [q] "x"(q), [item] "m"(*item));
#else
    acc = _mm256_dpbusd_avx_epi32(acc, q, _mm256_load_si256(item));
#endif
}

struct Vnni {
    static constexpr int kChunkRows = 3;
    template <int R>
    static std::uint32_t chunk(const ScreenJob& job, std::size_t row0, std::size_t blk, const std::int32_t* below) {
        const std::uint8_t* q[R];
        for (int r = 0; r < R; ++r) q[r] = job.queries[row0 + r];
        const std::size_t groups = job.dim_groups;
        const std::int8_t* const panel = job.panels + blk * groups * 4 * kBlock;
        __m256i acc[R][4];
        start_at_offsets<R>(job, blk, 0, acc);
        for (std::size_t g = 0; g < groups; ++g) {
            const __m256i* items = reinterpret_cast<const __m256i*>(panel + g * 4 * kBlock);
            __m256i qv[R];
#pragma GCC unroll 4
            for (int r = 0; r < R; ++r) qv[r] = query_bytes(q[r], g);
#pragma GCC unroll 4
            for (int v = 0; v < 4; ++v)
#pragma GCC unroll 4
                for (int r = 0; r < R; ++r) dot_add(acc[r][v], qv[r], items + v);
        }
        return flag_rows<R>(job, row0, blk, acc, below);
    }
};

}  // namespace

void screen_tile(const ScreenJob& job) { screen_tile_with<Vnni>(job); }

}  // namespace recbatch::kernels::avx2_vnni
