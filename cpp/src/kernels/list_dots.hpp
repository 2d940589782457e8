// The inner products of ranking's candidate lists (rank_lists.cpp): one query against a few of
// the catalogue's rows, gathered from anywhere in it. Each product is summed in float64 over the
// exact float32 products, in four running sums (sum k takes the dimensions d with d mod 4 = k,
// the leftover dimensions go to sum 0), combined as (s0 + s1) + (s2 + s3). Every ISA keeps that
// order, so every CPU ranks a list the same way, to the bit; a fused multiply-add changes
// nothing, since the product it fuses is exact in float64.
#pragma once

#include <cstddef>

namespace recbatch::kernels {

// out[i] = the query's inner product with rows[i] (dim floats each), for i < n.
using ListDotsFn = void (*)(const float* query, const float* const* rows, std::size_t n, std::size_t dim,
                            double* out);

namespace scalar {
void list_dots(const float* query, const float* const* rows, std::size_t n, std::size_t dim, double* out);
}
// Four rows at a time, each with its four sums in one register, so that the four rows' chains
// of additions overlap.
namespace avx2 {
void list_dots(const float* query, const float* const* rows, std::size_t n, std::size_t dim, double* out);
}

}  // namespace recbatch::kernels
