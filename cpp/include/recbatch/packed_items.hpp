// The item catalogue, packed once into the layout the kernels read: blocks of 32 items,
// each stored dimension-major (dim x 32 floats), so a micro-kernel loads 32 items' values
// of one dimension with contiguous vector loads while it broadcasts the query's value.
//
// Items are stored in order of decreasing norm. Trained recommenders have widely spread
// item norms (popular items are long vectors), and by Cauchy-Schwarz no item can score
// above |q| * |v|: once a query's k-th best score exceeds that bound for a block, no later
// (shorter) block can enter its top k, and the search stops scanning for it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace recbatch {

constexpr std::size_t kBlockItems = 32;

class PackedItems {
public:
    // items: row-major (n_items x dim) float32. The data is copied; the caller keeps ownership.
    PackedItems(const float* items, std::size_t n_items, std::size_t dim);

    std::size_t n_items() const { return n_items_; }
    std::size_t dim() const { return dim_; }
    std::size_t n_blocks() const { return n_blocks_; }
    // Block b starts at panels() + b * block_floats().
    const float* panels() const { return panels_.get(); }
    std::size_t block_floats() const { return dim_ * kBlockItems; }
    // Stored position -> the caller's item index, and back.
    std::int64_t item_at(std::size_t position) const { return item_at_[position]; }
    std::size_t position_of(std::int64_t item) const { return position_of_[static_cast<std::size_t>(item)]; }
    // An upper bound (rounded up) on the norm of every item in block b; non-increasing in b.
    double block_norm_bound(std::size_t block) const { return block_norm_bound_[block]; }

private:
    struct AlignedFree {
        void operator()(float* p) const;
    };
    std::size_t n_items_;
    std::size_t dim_;
    std::size_t n_blocks_;
    std::unique_ptr<float[], AlignedFree> panels_;
    std::vector<std::int64_t> item_at_;
    std::vector<std::uint32_t> position_of_;
    std::vector<double> block_norm_bound_;
};

}  // namespace recbatch
