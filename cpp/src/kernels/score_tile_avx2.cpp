// AVX2 + FMA kernel (compiled with -mavx2 -mfma; run only where the CPU has them).
//
// Register blocking: 6 query rows x 16 items = 12 ymm accumulators, plus two item vectors
// and one broadcast, within the 16 ymm registers; a 32-item block is done in two halves
// and a 12-row group in two sub-groups.
#include <math.h>

#include "kernels/epilogue.hpp"
#include "kernels/intrinsics.hpp"
#include "kernels/score_tile.hpp"
#include "kernels/fused_logsumexp.hpp"
#include "kernels/rescore_items.hpp"
#include "kernels/thinning.hpp"

namespace recbatch::kernels::avx2 {
namespace {

constexpr std::size_t kBlock = 32;
constexpr std::size_t kSubRows = 6;

// Lanes of an 8-bit eligibility mask as a vector mask.
__m256 lane_mask(std::uint32_t bits) {
    const __m256i lanes = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i set = _mm256_and_si256(_mm256_set1_epi32(static_cast<int>(bits & 0xffu)), lanes);
    return _mm256_castsi256_ps(_mm256_cmpeq_epi32(set, lanes));
}

// 2^t for every lane, t = s log2(e) - shift, as in the AVX-512 kernel but without vscalef:
// t is clamped to [-126, 128] (a term below 2^-126 of the running maximum's is negligible;
// 128 gives +inf, so an overflow shows in the sum), 2^floor(t) is built in the exponent
// bits, and 2^f, f = t - floor(t), comes from the same degree-5 polynomial.
inline __m256 exp2_of_scaled(__m256 scores, __m256 shift) {
    __m256 t = _mm256_fmsub_ps(scores, _mm256_set1_ps(1.44269504088896341f), shift);
    t = _mm256_min_ps(_mm256_max_ps(t, _mm256_set1_ps(-126.0f)), _mm256_set1_ps(128.0f));
    const __m256 whole = _mm256_floor_ps(t);
    const __m256 f = _mm256_sub_ps(t, whole);
    __m256 p = _mm256_set1_ps(1.8775767e-3f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(8.9893406e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.5826318e-2f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.4015361e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.9315308e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.9999994e-1f));
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(whole), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

// E == Epilogue::lse: also add 2^(s log2(e) - lse_shift[row]) of every eligible score to
// lse_partial's 8 lanes of the row (see score_tile).
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
    // The prefetch stretch (see TileJob), a few lines per block, issued by the first sub-group.
    const char* const ahead = reinterpret_cast<const char*>(job.prefetch);
    const std::size_t ahead_lines = row0 == 0 ? job.prefetch_floats / 16 : 0;
    const std::size_t lines_per_block = (ahead_lines + n_blocks - 1) / n_blocks;
    for (std::size_t b = 0; b < n_blocks; ++b) {
        const float* panel = panels + b * dim * kBlock;
        const std::size_t last_line = (b + 1) * lines_per_block < ahead_lines ? (b + 1) * lines_per_block : ahead_lines;
        for (std::size_t line = b * lines_per_block; line < last_line; ++line) _mm_prefetch(ahead + 64 * line, _MM_HINT_T1);
        std::uint32_t above[R] = {};
        for (int half = 0; half < 2; ++half) {
            const float* column = panel + 16 * half;
            __m256 acc[R][2];
#pragma GCC unroll 6
            for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
            for (std::size_t d = 0; d < dim; ++d) {
                const __m256 lo = _mm256_load_ps(column + d * kBlock);
                const __m256 hi = _mm256_load_ps(column + d * kBlock + 8);
#pragma GCC unroll 6
                for (int r = 0; r < R; ++r) {
                    const __m256 qv = _mm256_broadcast_ss(q[r] + d);
                    acc[r][0] = _mm256_fmadd_ps(qv, lo, acc[r][0]);
                    acc[r][1] = _mm256_fmadd_ps(qv, hi, acc[r][1]);
                }
            }
#pragma GCC unroll 6
            for (int r = 0; r < R; ++r) {
                const std::size_t row = row0 + r;
                float* out = scores + row * row_floats + b * kBlock + 16 * half;
                const __m256 threshold = _mm256_set1_ps(thresholds[row]);
                const __m256 lo = _mm256_cmp_ps(acc[r][0], threshold, _CMP_GE_OQ);
                const __m256 hi = _mm256_cmp_ps(acc[r][1], threshold, _CMP_GE_OQ);
                if constexpr (E == Epilogue::store_all) {
                    _mm256_storeu_ps(out, acc[r][0]);
                    _mm256_storeu_ps(out + 8, acc[r][1]);
                }
                // Once the top k has filled, most half-blocks hold no candidate: one test of
                // both compares' sign bits, and none of the stores.
                const __m256 any = _mm256_or_ps(lo, hi);
                if (!_mm256_testz_ps(any, any)) {  // only candidates' scores are read back
                    const auto bits = static_cast<std::uint32_t>(_mm256_movemask_ps(lo)) |
                                      (static_cast<std::uint32_t>(_mm256_movemask_ps(hi)) << 8);
                    above[r] |= bits << (16 * half);
                    _mm256_storeu_ps(out, acc[r][0]);
                    _mm256_storeu_ps(out + 8, acc[r][1]);
                }
                if constexpr (Lse) {
                    const std::uint32_t mask = eligible[row * eligible_stride + b] >> (16 * half);
                    const __m256 shift = _mm256_set1_ps(lse_shift[row]);
                    __m256 sum = _mm256_load_ps(lse_partial + 8 * row);
                    sum = _mm256_add_ps(sum, _mm256_and_ps(exp2_of_scaled(acc[r][0], shift), lane_mask(mask)));
                    sum = _mm256_add_ps(sum, _mm256_and_ps(exp2_of_scaled(acc[r][1], shift), lane_mask(mask >> 8)));
                    _mm256_store_ps(lse_partial + 8 * row, sum);
                }
            }
        }
        for (int r = 0; r < R; ++r) {
            const std::size_t row = row0 + r;
            if (above[r] == 0) continue;
            const std::uint32_t found = above[r] & eligible[row * eligible_stride + b];
            if (found == 0) continue;
            candidates[row * n_blocks + b] = found;
            flagged[row * flag_words + b / 64] |= std::uint64_t{1} << (b % 64);
        }
    }
}

template <Epilogue E>
void score_group(const TileJob& job, std::size_t row0, std::size_t rows, const float* lse_shift, float* lse_partial) {
    switch (rows) {
        case 6: score_rows<6, E>(job, row0, lse_shift, lse_partial); break;
        case 5: score_rows<5, E>(job, row0, lse_shift, lse_partial); break;
        case 4: score_rows<4, E>(job, row0, lse_shift, lse_partial); break;
        case 3: score_rows<3, E>(job, row0, lse_shift, lse_partial); break;
        case 2: score_rows<2, E>(job, row0, lse_shift, lse_partial); break;
        default: score_rows<1, E>(job, row0, lse_shift, lse_partial); break;
    }
}

template <Epilogue E>
void score_all_rows(const TileJob& job, const float* lse_shift, float* lse_partial) {
    for (std::size_t row0 = 0; row0 < job.n_rows; row0 += kSubRows) {
        const std::size_t rows = job.n_rows - row0 < kSubRows ? job.n_rows - row0 : kSubRows;
        score_group<E>(job, row0, rows, lse_shift, lse_partial);
    }
}

float horizontal_max(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

float horizontal_sum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

// exp for x <= 0: range reduction by ln 2, degree-6 polynomial, exponent bits for 2^n;
// relative error about 2e-7. Inputs below -87 are clamped (negligible next to exp(0) = 1).
__m256 exp_nonpositive(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(exponent));
}

void update_logsumexp(const TileJob& job, std::size_t row) {
    const float* scores = job.scores + row * job.n_blocks * kBlock;
    const std::uint32_t* eligible = job.eligible + row * job.eligible_stride;
    const __m256 minus_inf = _mm256_set1_ps(-INFINITY);
    __m256 vmax = minus_inf;
    for (std::size_t b = 0; b < job.n_blocks; ++b)
        for (int part = 0; part < 4; ++part) {
            const __m256 v = _mm256_loadu_ps(scores + b * kBlock + 8 * part);
            vmax = _mm256_max_ps(vmax, _mm256_blendv_ps(minus_inf, v, lane_mask(eligible[b] >> (8 * part))));
        }
    const float tile_max = horizontal_max(vmax);
    if (tile_max == -INFINITY) return;  // nothing eligible in this tile
    if (tile_max > job.lse_max[row]) {
        job.lse_sum[row] *= exp(static_cast<double>(job.lse_max[row]) - static_cast<double>(tile_max));
        job.lse_max[row] = tile_max;
    }
    const __m256 shift = _mm256_set1_ps(job.lse_max[row]);
    __m256 sum = _mm256_setzero_ps();
    for (std::size_t b = 0; b < job.n_blocks; ++b)
        for (int part = 0; part < 4; ++part) {
            const std::uint32_t bits = (eligible[b] >> (8 * part)) & 0xffu;
            if (bits == 0) continue;
            const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(scores + b * kBlock + 8 * part), shift));
            sum = _mm256_add_ps(sum, _mm256_and_ps(e, lane_mask(bits)));
        }
    job.lse_sum[row] += static_cast<double>(horizontal_sum(sum));
}

// This file's pieces of the one-pass log-sum-exp (fused_logsumexp.hpp).
struct Isa {
    static constexpr std::size_t kLanes = 8;
    template <bool Lse>
    static void score(const TileJob& job, const float* shift, float* partial) {
        // Only the two-pass log-sum-exp rereads every score; the fused one keeps them in registers.
        if constexpr (Lse) score_all_rows<Epilogue::lse>(job, shift, partial);
        else if (job.lse_max != nullptr) score_all_rows<Epilogue::store_all>(job, shift, partial);
        else score_all_rows<Epilogue::candidates>(job, shift, partial);
    }
    static double lane_sum(const float* lanes) { return static_cast<double>(horizontal_sum(_mm256_load_ps(lanes))); }
    static void two_pass(const TileJob& job, std::size_t row) { update_logsumexp(job, row); }
};

// A block's 32 lanes as four vectors, for the thinning skeletons (thinning.hpp).
struct Lanes {
    __m256 v[4];
    static Lanes lowest() {
        Lanes lanes;
        for (auto& x : lanes.v) x = _mm256_set1_ps(-INFINITY);
        return lanes;
    }
    void take_max(const float* block, std::uint32_t lanes) {
        for (int i = 0; i < 4; ++i)
            v[i] = _mm256_blendv_ps(v[i], _mm256_max_ps(v[i], _mm256_loadu_ps(block + 8 * i)),
                                    lane_mask(lanes >> (8 * i)));
    }
    void store(float* out) const {
        for (int i = 0; i < 4; ++i) _mm256_storeu_ps(out + 8 * i, v[i]);
    }
    static std::uint32_t at_least(const float* block, float bound) {
        const __m256 b = _mm256_set1_ps(bound);
        std::uint32_t keep = 0;
        for (int i = 0; i < 4; ++i) {
            const __m256 at_least = _mm256_cmp_ps(_mm256_loadu_ps(block + 8 * i), b, _CMP_GE_OQ);
            keep |= static_cast<std::uint32_t>(_mm256_movemask_ps(at_least)) << (8 * i);
        }
        return keep;
    }
};

}  // namespace

void score_tile(const TileJob& job) { score_tile_with<Isa>(job); }

void lane_maxima(const TileJob& job, float* out) { lane_maxima_with<Lanes>(job, out); }

void keep_at_least(const TileJob& job, const float* bounds) { keep_at_least_with<Lanes>(job, bounds); }

namespace {

// Rescores `pairs` (query, block) pairs at once, 4 ymm accumulators per pair (32 items), in
// score_tile's arithmetic: the block's column d times the query's value d, accumulated from zero.
template <int Pairs>
void score_block_pairs(const float* const* queries, const float* const* panels, const float* thresholds,
                       std::size_t dim, float* out, std::uint32_t* above) {
    __m256 acc[Pairs][4];
    for (auto& pair : acc)
        for (auto& v : pair) v = _mm256_setzero_ps();
    for (std::size_t d = 0; d < dim; ++d) {
#pragma GCC unroll 2
        for (int p = 0; p < Pairs; ++p) {
            const __m256 qv = _mm256_broadcast_ss(queries[p] + d);
#pragma GCC unroll 4
            for (int v = 0; v < 4; ++v)
                acc[p][v] = _mm256_fmadd_ps(qv, _mm256_load_ps(panels[p] + d * kBlock + 8 * v), acc[p][v]);
        }
    }
    for (int p = 0; p < Pairs; ++p) {
        const __m256 t = _mm256_set1_ps(thresholds[p]);
        std::uint32_t bits = 0;
        for (int v = 0; v < 4; ++v) {
            _mm256_storeu_ps(out + p * kBlock + 8 * v, acc[p][v]);
            bits |= static_cast<std::uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(acc[p][v], t, _CMP_GE_OQ))) << (8 * v);
        }
        above[p] = bits;
    }
}

}  // namespace

// Two pairs at a time: 8 accumulators, so the FMA chains overlap, within the 16 registers.
void score_blocks(std::size_t n, const float* const* queries, const float* const* panels, const float* thresholds,
                  std::size_t dim, float* out, std::uint32_t* above) {
    std::size_t i = 0;
    for (; i + 2 <= n; i += 2)
        score_block_pairs<2>(queries + i, panels + i, thresholds + i, dim, out + i * kBlock, above + i);
    if (i < n) score_block_pairs<1>(queries + i, panels + i, thresholds + i, dim, out + i * kBlock, above + i);
}

void score_items(std::size_t n, const float* const* queries, const float* const* columns, std::size_t dim,
                 float* out) {
    score_items_with_fma(n, queries, columns, dim, out);
}

// Eight candidates per vector, four vectors: each lane counts the values that reach it (a
// compare is -1 where true, so subtracting it counts), then the largest candidate reached by at
// least k is the answer.
float kth_largest_lane(const float* values, std::size_t k) {
    __m256 candidate[4];
    __m256i reach[4];
    for (int v = 0; v < 4; ++v) {
        candidate[v] = _mm256_loadu_ps(values + 8 * v);
        reach[v] = _mm256_setzero_si256();
    }
    for (std::size_t j = 0; j < kBlock; ++j) {
        const __m256 value = _mm256_set1_ps(values[j]);
        for (int v = 0; v < 4; ++v)
            reach[v] = _mm256_sub_epi32(reach[v], _mm256_castps_si256(_mm256_cmp_ps(value, candidate[v], _CMP_GE_OQ)));
    }
    const __m256i below = _mm256_set1_epi32(static_cast<int>(k) - 1);
    __m256 kth = _mm256_set1_ps(-INFINITY);
    for (int v = 0; v < 4; ++v) {
        const __m256 enough = _mm256_castsi256_ps(_mm256_cmpgt_epi32(reach[v], below));
        kth = _mm256_max_ps(kth, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), candidate[v], enough));
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, kth);
    float best = -INFINITY;
    for (float x : lanes) best = x > best ? x : best;
    return best;
}

}  // namespace recbatch::kernels::avx2
