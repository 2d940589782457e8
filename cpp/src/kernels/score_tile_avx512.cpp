// AVX-512 kernel (compiled with -mavx512f/dq/bw/vl -mfma; run only where the CPU has them).
//
// Register blocking: 12 query rows x 32 items = 24 zmm accumulators. Per dimension the
// kernel loads the block's two 16-item vectors once and broadcasts each row's query value,
// so 14 loads feed 24 FMAs and the FMA units, not the load ports, set the pace.
#include <math.h>

#include "kernels/epilogue.hpp"
#include "kernels/intrinsics.hpp"
#include "kernels/score_tile.hpp"
#include "kernels/fused_logsumexp.hpp"
#include "kernels/rescore_items.hpp"
#include "kernels/thinning.hpp"

namespace recbatch::kernels::avx512 {
namespace {

constexpr std::size_t kBlock = 32;

// 2^t for every lane, t = s log2(e) - shift: the exponent part comes from scalef (which takes
// floor(t) itself) and 2^f, f = t - floor(t) in [0, 1), from a degree-5 polynomial fitted for
// relative error (1.5e-7 with FMA evaluation). Nine operations from score to running sum: the
// log-sum-exp rides in the micro-kernel's epilogue while the scores are still in registers.
// Lanes with t >= 128 give +inf and t < -149 give 0, so an overflow shows in the sum.
inline __m512 exp2_of_scaled(__m512 scores, __m512 shift) {
    const __m512 t = _mm512_fmsub_ps(scores, _mm512_set1_ps(1.44269504088896341f), shift);
    const __m512 f = _mm512_reduce_ps(t, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512 p = _mm512_set1_ps(1.8775767e-3f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(8.9893406e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5826318e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4015361e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9315308e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.9999994e-1f));
    return _mm512_scalef_ps(p, t);
}

// E == Epilogue::lse: also add 2^(s log2(e) - lse_shift[row]) of every eligible score to
// lse_partial's 16 lanes of the row (see score_tile).
template <int R, Epilogue E>
void score_rows(const TileJob& job, std::size_t row0, const float* lse_shift, float* lse_partial) {
    constexpr bool Lse = E == Epilogue::lse;
    const float* q[R];
    for (int r = 0; r < R; ++r) q[r] = job.queries[row0 + r];
    // Local copies: the stores below could alias `job` as far as the compiler knows, which
    // would make it reload every field after each store.
    const std::size_t dim = job.dim, n_blocks = job.n_blocks, row_floats = n_blocks * kBlock;
    const float* const panels = job.panels;
    const float* const thresholds = job.thresholds;
    const std::uint32_t* const eligible = job.eligible;
    const std::size_t eligible_stride = job.eligible_stride;
    float* const scores = job.scores;
    std::uint32_t* const candidates = job.candidates;
    std::uint64_t* const flagged = job.flagged;
    const std::size_t flag_words = job.flag_words;
    // The prefetch stretch, spread evenly over the blocks: a few lines per block.
    const char* const ahead = reinterpret_cast<const char*>(job.prefetch);
    const std::size_t ahead_lines = job.prefetch_floats / 16, lines_per_block = (ahead_lines + n_blocks - 1) / n_blocks;
    for (std::size_t b = 0; b < n_blocks; ++b) {
        const float* panel = panels + b * dim * kBlock;
        const std::size_t last_line = (b + 1) * lines_per_block < ahead_lines ? (b + 1) * lines_per_block : ahead_lines;
        for (std::size_t line = b * lines_per_block; line < last_line; ++line) _mm_prefetch(ahead + 64 * line, _MM_HINT_T1);
        __m512 acc[R][2];
#pragma GCC unroll 12
        for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
        for (std::size_t d = 0; d < dim; ++d) {
            const __m512 lo = _mm512_load_ps(panel + d * kBlock);
            const __m512 hi = _mm512_load_ps(panel + d * kBlock + 16);
#pragma GCC unroll 12
            for (int r = 0; r < R; ++r) {
                const __m512 qv = _mm512_set1_ps(q[r][d]);
                acc[r][0] = _mm512_fmadd_ps(qv, lo, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(qv, hi, acc[r][1]);
            }
        }
#pragma GCC unroll 12
        for (int r = 0; r < R; ++r) {
            const std::size_t row = row0 + r;
            float* out = scores + row * row_floats + b * kBlock;
            const __m512 threshold = _mm512_set1_ps(thresholds[row]);
            // Once the top k has filled, most blocks hold no candidate: two compares and one
            // mask test (the lanes where neither half reaches the threshold, NaN included, are
            // all of them), then none of the stores.
            const __mmask16 lo_below = _mm512_cmp_ps_mask(acc[r][0], threshold, _CMP_NGE_UQ);
            const __mmask16 below = _mm512_mask_cmp_ps_mask(lo_below, acc[r][1], threshold, _CMP_NGE_UQ);
            if constexpr (E == Epilogue::store_all) {
                _mm512_storeu_ps(out, acc[r][0]);
                _mm512_storeu_ps(out + 16, acc[r][1]);
            }
            if (!_kortestc_mask16_u8(below, below)) {
                const __mmask16 lo = _mm512_cmp_ps_mask(acc[r][0], threshold, _CMP_GE_OQ);
                const __mmask16 hi = _mm512_cmp_ps_mask(acc[r][1], threshold, _CMP_GE_OQ);
                const std::uint32_t mask = eligible[row * eligible_stride + b];
                const std::uint32_t found = (std::uint32_t{lo} | (std::uint32_t{hi} << 16)) & mask;
                if (found != 0) {
                    candidates[row * n_blocks + b] = found;
                    flagged[row * flag_words + b / 64] |= std::uint64_t{1} << (b % 64);
                    _mm512_storeu_ps(out, acc[r][0]);
                    _mm512_storeu_ps(out + 16, acc[r][1]);
                }
            }
            if constexpr (Lse) {
                const std::uint32_t mask = eligible[row * eligible_stride + b];
                const __m512 shift = _mm512_set1_ps(lse_shift[row]);
                __m512 sum = _mm512_load_ps(lse_partial + 16 * row);
                sum = _mm512_mask_add_ps(sum, static_cast<__mmask16>(mask), sum, exp2_of_scaled(acc[r][0], shift));
                sum = _mm512_mask_add_ps(sum, static_cast<__mmask16>(mask >> 16), sum,
                                         exp2_of_scaled(acc[r][1], shift));
                _mm512_store_ps(lse_partial + 16 * row, sum);
            }
        }
    }
}

// exp for x <= 0 (Cephes-style: range reduction by ln 2, degree-6 polynomial, scalef);
// relative error about 2e-7. Inputs below -87 are clamped: their share of a sum that
// already holds exp(0) = 1 is below float precision anyway.
__m512 exp_nonpositive(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    const __m512 y = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(y, n);
}

void update_logsumexp(const TileJob& job, std::size_t row) {
    const float* scores = job.scores + row * job.n_blocks * kBlock;
    const std::uint32_t* eligible = job.eligible + row * job.eligible_stride;
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (std::size_t b = 0; b < job.n_blocks; ++b) {
        vmax = _mm512_mask_max_ps(vmax, static_cast<__mmask16>(eligible[b]), vmax, _mm512_loadu_ps(scores + b * kBlock));
        vmax = _mm512_mask_max_ps(vmax, static_cast<__mmask16>(eligible[b] >> 16), vmax,
                                  _mm512_loadu_ps(scores + b * kBlock + 16));
    }
    const float tile_max = _mm512_reduce_max_ps(vmax);
    if (tile_max == -INFINITY) return;  // nothing eligible in this tile
    if (tile_max > job.lse_max[row]) {
        job.lse_sum[row] *= exp(static_cast<double>(job.lse_max[row]) - static_cast<double>(tile_max));
        job.lse_max[row] = tile_max;
    }
    const __m512 shift = _mm512_set1_ps(job.lse_max[row]);
    __m512 sum = _mm512_setzero_ps();
    for (std::size_t b = 0; b < job.n_blocks; ++b) {
        for (int half = 0; half < 2; ++half) {
            const __mmask16 mask = static_cast<__mmask16>(eligible[b] >> (16 * half));
            if (mask == 0) continue;
            const __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(scores + b * kBlock + 16 * half), shift));
            sum = _mm512_mask_add_ps(sum, mask, sum, e);
        }
    }
    job.lse_sum[row] += static_cast<double>(_mm512_reduce_add_ps(sum));
}

// A block's 32 lanes as two vectors, for the thinning skeletons (thinning.hpp).
struct Lanes {
    __m512 lo, hi;
    static Lanes lowest() { return {_mm512_set1_ps(-INFINITY), _mm512_set1_ps(-INFINITY)}; }
    void take_max(const float* block, std::uint32_t lanes) {
        lo = _mm512_mask_max_ps(lo, static_cast<__mmask16>(lanes), lo, _mm512_loadu_ps(block));
        hi = _mm512_mask_max_ps(hi, static_cast<__mmask16>(lanes >> 16), hi, _mm512_loadu_ps(block + 16));
    }
    void store(float* out) const {
        _mm512_storeu_ps(out, lo);
        _mm512_storeu_ps(out + 16, hi);
    }
    static std::uint32_t at_least(const float* block, float bound) {
        const __m512 b = _mm512_set1_ps(bound);
        return static_cast<std::uint32_t>(_mm512_cmp_ps_mask(_mm512_loadu_ps(block), b, _CMP_GE_OQ)) |
               (static_cast<std::uint32_t>(_mm512_cmp_ps_mask(_mm512_loadu_ps(block + 16), b, _CMP_GE_OQ)) << 16);
    }
};

}  // namespace

std::uint32_t score_block(const float* query, const float* panel, std::size_t dim, float threshold, float* out) {
    __m512 lo_acc = _mm512_setzero_ps(), hi_acc = _mm512_setzero_ps();
    for (std::size_t d = 0; d < dim; ++d) {
        const __m512 qv = _mm512_set1_ps(query[d]);
        lo_acc = _mm512_fmadd_ps(qv, _mm512_load_ps(panel + d * kBlock), lo_acc);
        hi_acc = _mm512_fmadd_ps(qv, _mm512_load_ps(panel + d * kBlock + 16), hi_acc);
    }
    _mm512_storeu_ps(out, lo_acc);
    _mm512_storeu_ps(out + 16, hi_acc);
    const __m512 t = _mm512_set1_ps(threshold);
    return static_cast<std::uint32_t>(_mm512_cmp_ps_mask(lo_acc, t, _CMP_GE_OQ)) |
           (static_cast<std::uint32_t>(_mm512_cmp_ps_mask(hi_acc, t, _CMP_GE_OQ)) << 16);
}

void score_blocks(std::size_t n, const float* const* queries, const float* const* panels, const float* thresholds,
                  std::size_t dim, float* out, std::uint32_t* above) {
    std::size_t i = 0;
    for (; i < n; i += 4) {
        if (i + 4 > n) {
            // The last 1-3 pairs: padded to four with copies of the last one (scratch output),
            // so that their FMA chains and block reads overlap too.
            const float* q[4];
            const float* p[4];
            float t[4];
            alignas(64) float scratch[4 * kBlock];
            std::uint32_t bits[4];
            for (std::size_t j = 0; j < 4; ++j) {
                const std::size_t from = i + j < n ? i + j : n - 1;
                q[j] = queries[from];
                p[j] = panels[from];
                t[j] = thresholds[from];
            }
            score_blocks(4, q, p, t, dim, scratch, bits);
            for (std::size_t j = 0; i + j < n; ++j) {
                for (std::size_t x = 0; x < kBlock; ++x) out[(i + j) * kBlock + x] = scratch[j * kBlock + x];
                above[i + j] = bits[j];
            }
            return;
        }
        const float *q0 = queries[i], *q1 = queries[i + 1], *q2 = queries[i + 2], *q3 = queries[i + 3];
        const float *p0 = panels[i], *p1 = panels[i + 1], *p2 = panels[i + 2], *p3 = panels[i + 3];
        __m512 a0 = _mm512_setzero_ps(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
        for (std::size_t d = 0; d < dim; ++d) {
            const std::size_t o = d * kBlock;
            a0 = _mm512_fmadd_ps(_mm512_set1_ps(q0[d]), _mm512_load_ps(p0 + o), a0);
            b0 = _mm512_fmadd_ps(_mm512_set1_ps(q0[d]), _mm512_load_ps(p0 + o + 16), b0);
            a1 = _mm512_fmadd_ps(_mm512_set1_ps(q1[d]), _mm512_load_ps(p1 + o), a1);
            b1 = _mm512_fmadd_ps(_mm512_set1_ps(q1[d]), _mm512_load_ps(p1 + o + 16), b1);
            a2 = _mm512_fmadd_ps(_mm512_set1_ps(q2[d]), _mm512_load_ps(p2 + o), a2);
            b2 = _mm512_fmadd_ps(_mm512_set1_ps(q2[d]), _mm512_load_ps(p2 + o + 16), b2);
            a3 = _mm512_fmadd_ps(_mm512_set1_ps(q3[d]), _mm512_load_ps(p3 + o), a3);
            b3 = _mm512_fmadd_ps(_mm512_set1_ps(q3[d]), _mm512_load_ps(p3 + o + 16), b3);
        }
        const __m512 acc[8] = {a0, b0, a1, b1, a2, b2, a3, b3};
        for (int j = 0; j < 4; ++j) {
            _mm512_storeu_ps(out + (i + j) * kBlock, acc[2 * j]);
            _mm512_storeu_ps(out + (i + j) * kBlock + 16, acc[2 * j + 1]);
            const __m512 t = _mm512_set1_ps(thresholds[i + j]);
            above[i + j] = static_cast<std::uint32_t>(_mm512_cmp_ps_mask(acc[2 * j], t, _CMP_GE_OQ)) |
                           (static_cast<std::uint32_t>(_mm512_cmp_ps_mask(acc[2 * j + 1], t, _CMP_GE_OQ)) << 16);
        }
    }
}

void score_items(std::size_t n, const float* const* queries, const float* const* columns, std::size_t dim,
                 float* out) {
    score_items_with_fma(n, queries, columns, dim, out);
}

template <Epilogue E>
void score_group(const TileJob& job, const float* lse_shift, float* lse_partial) {
    switch (job.n_rows) {
        case 12: score_rows<12, E>(job, 0, lse_shift, lse_partial); break;
        case 11: score_rows<11, E>(job, 0, lse_shift, lse_partial); break;
        case 10: score_rows<10, E>(job, 0, lse_shift, lse_partial); break;
        case 9: score_rows<9, E>(job, 0, lse_shift, lse_partial); break;
        case 8: score_rows<8, E>(job, 0, lse_shift, lse_partial); break;
        case 7: score_rows<7, E>(job, 0, lse_shift, lse_partial); break;
        case 6: score_rows<6, E>(job, 0, lse_shift, lse_partial); break;
        case 5: score_rows<5, E>(job, 0, lse_shift, lse_partial); break;
        case 4: score_rows<4, E>(job, 0, lse_shift, lse_partial); break;
        case 3: score_rows<3, E>(job, 0, lse_shift, lse_partial); break;
        case 2: score_rows<2, E>(job, 0, lse_shift, lse_partial); break;
        default: score_rows<1, E>(job, 0, lse_shift, lse_partial); break;
    }
}

namespace {

// This file's pieces of the one-pass log-sum-exp (fused_logsumexp.hpp).
struct Isa {
    static constexpr std::size_t kLanes = 16;
    template <bool Lse>
    static void score(const TileJob& job, const float* shift, float* partial) {
        // Only the two-pass log-sum-exp rereads every score; the fused one keeps them in registers.
        if constexpr (Lse) score_group<Epilogue::lse>(job, shift, partial);
        else if (job.lse_max != nullptr) score_group<Epilogue::store_all>(job, shift, partial);
        else score_group<Epilogue::candidates>(job, shift, partial);
    }
    static double lane_sum(const float* lanes) { return static_cast<double>(_mm512_reduce_add_ps(_mm512_load_ps(lanes))); }
    static void two_pass(const TileJob& job, std::size_t row) { update_logsumexp(job, row); }
};

}  // namespace

void score_tile(const TileJob& job) { score_tile_with<Isa>(job); }

void lane_maxima(const TileJob& job, float* out) { lane_maxima_with<Lanes>(job, out); }

void keep_at_least(const TileJob& job, const float* bounds) { keep_at_least_with<Lanes>(job, bounds); }

// Sixteen candidates at a time: each lane counts the values that reach it (one broadcast and
// two masked adds per value), then the largest candidate reached by at least k is the answer.
float kth_largest_lane(const float* values, std::size_t k) {
    const __m512 lo = _mm512_loadu_ps(values), hi = _mm512_loadu_ps(values + 16);
    __m512i reach_lo = _mm512_setzero_si512(), reach_hi = _mm512_setzero_si512();
    const __m512i one = _mm512_set1_epi32(1);
    for (std::size_t j = 0; j < kBlock; ++j) {
        const __m512 value = _mm512_set1_ps(values[j]);
        reach_lo = _mm512_mask_add_epi32(reach_lo, _mm512_cmp_ps_mask(value, lo, _CMP_GE_OQ), reach_lo, one);
        reach_hi = _mm512_mask_add_epi32(reach_hi, _mm512_cmp_ps_mask(value, hi, _CMP_GE_OQ), reach_hi, one);
    }
    const __m512i need = _mm512_set1_epi32(static_cast<int>(k));
    const __m512 lowest = _mm512_set1_ps(-INFINITY);
    const __m512 kth = _mm512_max_ps(_mm512_mask_blend_ps(_mm512_cmpge_epi32_mask(reach_lo, need), lowest, lo),
                                     _mm512_mask_blend_ps(_mm512_cmpge_epi32_mask(reach_hi, need), lowest, hi));
    return _mm512_reduce_max_ps(kth);
}

}  // namespace recbatch::kernels::avx512
