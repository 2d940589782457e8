// Packing the catalogue into 32-item, dimension-major blocks in order of decreasing norm
// (see packed_items.hpp).
#include "recbatch/packed_items.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <numeric>
#include <stdexcept>

namespace recbatch {

void PackedItems::AlignedFree::operator()(float* p) const { std::free(p); }

PackedItems::PackedItems(const float* items, std::size_t n_items, std::size_t dim)
    : n_items_(n_items), dim_(dim), n_blocks_((n_items + kBlockItems - 1) / kBlockItems) {
    if (n_items == 0 || dim == 0) throw std::invalid_argument("items must have at least one row and one column");
    if (n_items > std::numeric_limits<std::uint32_t>::max())
        throw std::invalid_argument("items: at most 2^32 - 1 rows are supported");
    std::vector<double> norms(n_items);
    for (std::size_t i = 0; i < n_items; ++i) {
        double sum = 0.0;
        for (std::size_t d = 0; d < dim; ++d) sum += double(items[i * dim + d]) * items[i * dim + d];
        norms[i] = std::sqrt(sum);
    }
    item_at_.resize(n_items);
    std::iota(item_at_.begin(), item_at_.end(), std::int64_t{0});
    std::stable_sort(item_at_.begin(), item_at_.end(),
                     [&](std::int64_t a, std::int64_t b) { return norms[a] > norms[b]; });
    position_of_.resize(n_items);
    for (std::size_t p = 0; p < n_items; ++p) position_of_[static_cast<std::size_t>(item_at_[p])] = static_cast<std::uint32_t>(p);
    block_norm_bound_.resize(n_blocks_);
    for (std::size_t b = 0; b < n_blocks_; ++b)  // the first item of a block is its longest
        block_norm_bound_[b] = norms[static_cast<std::size_t>(item_at_[b * kBlockItems])] * (1.0 + 1e-12);

    const std::size_t floats = n_blocks_ * dim * kBlockItems;
    // 64-byte alignment: every block column is one AVX-512 load (or two AVX2 loads) apart.
    const std::size_t bytes = ((floats * sizeof(float) + 63) / 64) * 64;
    float* data = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (data == nullptr) throw std::bad_alloc();
    panels_.reset(data);
    // Padding items score 0; the search masks them out, so their value never matters.
    std::memset(data, 0, bytes);
    for (std::size_t p = 0; p < n_items; ++p) {
        float* block = data + (p / kBlockItems) * dim * kBlockItems;
        const std::size_t lane = p % kBlockItems;
        const float* row = items + static_cast<std::size_t>(item_at_[p]) * dim;
        for (std::size_t d = 0; d < dim; ++d) block[d * kBlockItems + lane] = row[d];
    }
}

}  // namespace recbatch
