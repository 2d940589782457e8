// The item catalogue, packed once into the layout the kernels read: blocks of 32 items,
// each stored dimension-major (dim x 32 floats), so a micro-kernel loads 32 items' values
// of one dimension with contiguous vector loads while it broadcasts the query's value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

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

private:
    struct AlignedFree {
        void operator()(float* p) const;
    };
    std::size_t n_items_;
    std::size_t dim_;
    std::size_t n_blocks_;
    std::unique_ptr<float[], AlignedFree> panels_;
};

}  // namespace recbatch
