// Portable list products: the reference the SIMD ones are tested against, bit for bit.
#include "kernels/list_dots.hpp"

namespace recbatch::kernels::scalar {

void list_dots(const float* query, const float* const* rows, std::size_t n, std::size_t dim, double* out) {
    for (std::size_t i = 0; i < n; ++i) {
        const float* row = rows[i];
        // Four sums, so that the additions need not wait on one another (the compiler may not
        // reorder them itself without -ffast-math).
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        std::size_t d = 0;
        for (; d + 4 <= dim; d += 4) {
            s0 += static_cast<double>(query[d]) * row[d];
            s1 += static_cast<double>(query[d + 1]) * row[d + 1];
            s2 += static_cast<double>(query[d + 2]) * row[d + 2];
            s3 += static_cast<double>(query[d + 3]) * row[d + 3];
        }
        for (; d < dim; ++d) s0 += static_cast<double>(query[d]) * row[d];
        out[i] = (s0 + s1) + (s2 + s3);
    }
}

}  // namespace recbatch::kernels::scalar
