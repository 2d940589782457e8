// AVX512-VNNI screening kernel (compiled with the AVX-512 flags plus -mavx512vnni; run only
// where the CPU has them). See ScreenJob in score_tile.hpp for what it computes.
//
// Register blocking as in the float kernel: 12 query rows x 32 items = 24 zmm int32
// accumulators. Per group of 4 dimensions the kernel loads the block's two 64-byte vectors
// (16 items x 4 signed bytes each) once and broadcasts each row's 4 unsigned query bytes,
// so one vpdpbusd does the work of 4 float FMAs, on a quarter of the item bytes.
#include <immintrin.h>

#include "kernels/score_tile.hpp"

namespace recbatch::kernels::avx512_vnni {
namespace {

constexpr std::size_t kBlock = 32;

template <int R>
void screen_rows(const ScreenJob& job) {
    const std::uint8_t* q[R];
    for (int r = 0; r < R; ++r) q[r] = job.queries[r];
    const std::size_t groups = job.dim_groups, n_blocks = job.n_blocks;
    const std::size_t block_bytes = groups * 4 * kBlock;
    const std::int8_t* const panels = job.panels;
    const std::uint32_t* const eligible = job.eligible;
    std::uint32_t* const candidates = job.candidates;
    // Local copies: the candidate stores could alias `job` as far as the compiler knows.
    const float *const a = job.a, *const b = job.b, *const t = job.t;
    const std::int32_t* const offset = job.offset;
    const float *const scale = job.scale, *const norm = job.norm, *const residual = job.residual;
    for (std::size_t blk = 0; blk < n_blocks; ++blk) {
        const std::int8_t* panel = panels + blk * block_bytes;
        const std::size_t item = blk * kBlock;
        const __m512i off_lo = _mm512_loadu_si512(offset + item);
        const __m512i off_hi = _mm512_loadu_si512(offset + item + 16);
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
                acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], qv, lo);
                acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], qv, hi);
            }
        }
        const __m512 scale_lo = _mm512_loadu_ps(scale + item), scale_hi = _mm512_loadu_ps(scale + item + 16);
        const __m512 norm_lo = _mm512_loadu_ps(norm + item), norm_hi = _mm512_loadu_ps(norm + item + 16);
        const __m512 res_lo = _mm512_loadu_ps(residual + item), res_hi = _mm512_loadu_ps(residual + item + 16);
#pragma GCC unroll 12
        for (int r = 0; r < R; ++r) {
            const __m512 ar = _mm512_set1_ps(a[r]), br = _mm512_set1_ps(b[r]), tr = _mm512_set1_ps(t[r]);
            const __m512 bound_lo = _mm512_fmadd_ps(ar, norm_lo, _mm512_mul_ps(br, res_lo));
            const __m512 bound_hi = _mm512_fmadd_ps(ar, norm_hi, _mm512_mul_ps(br, res_hi));
            const __m512 x_lo = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[r][0]), scale_lo, bound_lo);
            const __m512 x_hi = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[r][1]), scale_hi, bound_hi);
            // Not-less-than, unordered true: a NaN (inf - inf) stays a candidate.
            const std::uint32_t keep =
                static_cast<std::uint32_t>(_mm512_cmp_ps_mask(x_lo, tr, _CMP_NLT_UQ)) |
                (static_cast<std::uint32_t>(_mm512_cmp_ps_mask(x_hi, tr, _CMP_NLT_UQ)) << 16);
            candidates[r * n_blocks + blk] = keep & eligible[r * n_blocks + blk];
        }
    }
}

}  // namespace

void screen_tile(const ScreenJob& job) {
    switch (job.n_rows) {
        case 12: screen_rows<12>(job); break;
        case 11: screen_rows<11>(job); break;
        case 10: screen_rows<10>(job); break;
        case 9: screen_rows<9>(job); break;
        case 8: screen_rows<8>(job); break;
        case 7: screen_rows<7>(job); break;
        case 6: screen_rows<6>(job); break;
        case 5: screen_rows<5>(job); break;
        case 4: screen_rows<4>(job); break;
        case 3: screen_rows<3>(job); break;
        case 2: screen_rows<2>(job); break;
        default: screen_rows<1>(job); break;
    }
}

}  // namespace recbatch::kernels::avx512_vnni
