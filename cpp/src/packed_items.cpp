// Packing the catalogue into 32-item, dimension-major blocks (see packed_items.hpp).
#include "recbatch/packed_items.hpp"

#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

namespace recbatch {

void PackedItems::AlignedFree::operator()(float* p) const { std::free(p); }

PackedItems::PackedItems(const float* items, std::size_t n_items, std::size_t dim)
    : n_items_(n_items), dim_(dim), n_blocks_((n_items + kBlockItems - 1) / kBlockItems) {
    if (n_items == 0 || dim == 0) throw std::invalid_argument("items must have at least one row and one column");
    const std::size_t floats = n_blocks_ * dim * kBlockItems;
    // 64-byte alignment: every block column is one AVX-512 load (or two AVX2 loads) apart.
    const std::size_t bytes = ((floats * sizeof(float) + 63) / 64) * 64;
    float* data = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (data == nullptr) throw std::bad_alloc();
    panels_.reset(data);
    // Padding items score 0; the search masks them out, so their value never matters.
    std::memset(data, 0, bytes);
    for (std::size_t i = 0; i < n_items; ++i) {
        float* block = data + (i / kBlockItems) * dim * kBlockItems;
        const std::size_t lane = i % kBlockItems;
        const float* row = items + i * dim;
        for (std::size_t d = 0; d < dim; ++d) block[d * kBlockItems + lane] = row[d];
    }
}

}  // namespace recbatch
