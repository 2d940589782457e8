// AVX2 + FMA list products (compiled with -mavx2 -mfma; run only where the CPU has them): the
// four sums of list_dots.hpp are the four float64 lanes of one register per row.
#include "kernels/intrinsics.hpp"
#include "kernels/list_dots.hpp"

namespace recbatch::kernels::avx2 {
namespace {

// The four lanes combined as the scalar kernel combines its sums, the leftover dimensions
// (dim mod 4) first added to lane 0 one by one.
double finish(__m256d sums, const float* query, const float* row, std::size_t from, std::size_t dim) {
    alignas(32) double lane[4];
    _mm256_store_pd(lane, sums);
    for (std::size_t d = from; d < dim; ++d) lane[0] += static_cast<double>(query[d]) * row[d];
    return (lane[0] + lane[1]) + (lane[2] + lane[3]);
}

__m256d widen(const float* four) { return _mm256_cvtps_pd(_mm_loadu_ps(four)); }

}  // namespace

void list_dots(const float* query, const float* const* rows, std::size_t n, std::size_t dim, double* out) {
    const std::size_t body = dim & ~std::size_t{3};
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float *r0 = rows[i], *r1 = rows[i + 1], *r2 = rows[i + 2], *r3 = rows[i + 3];
        __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
        for (std::size_t d = 0; d < body; d += 4) {
            const __m256d q = widen(query + d);
            s0 = _mm256_fmadd_pd(q, widen(r0 + d), s0);
            s1 = _mm256_fmadd_pd(q, widen(r1 + d), s1);
            s2 = _mm256_fmadd_pd(q, widen(r2 + d), s2);
            s3 = _mm256_fmadd_pd(q, widen(r3 + d), s3);
        }
        out[i] = finish(s0, query, r0, body, dim);
        out[i + 1] = finish(s1, query, r1, body, dim);
        out[i + 2] = finish(s2, query, r2, body, dim);
        out[i + 3] = finish(s3, query, r3, body, dim);
    }
    for (; i < n; ++i) {
        __m256d s = _mm256_setzero_pd();
        for (std::size_t d = 0; d < body; d += 4) s = _mm256_fmadd_pd(widen(query + d), widen(rows[i] + d), s);
        out[i] = finish(s, query, rows[i], body, dim);
    }
}

}  // namespace recbatch::kernels::avx2
