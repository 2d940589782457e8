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

#include "recbatch/simd_level.hpp"

namespace recbatch {

constexpr std::size_t kBlockItems = 32;

class PackedItems {
public:
    // items: row-major (n_items x dim) float32. The data is copied; the caller keeps ownership.
    // with_int8: also build the int8 copy for the screening pass (by default only where the
    // CPU can run it). threads: workers for the norms, the sort by norm, the packing and the int8
    // copy; the result is the same whatever the count.
    PackedItems(const float* items, std::size_t n_items, std::size_t dim,
                bool with_int8 = simd_level_available(SimdLevel::avx2_int8), std::size_t threads = 1);

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
    // Writes the catalogue back in the caller's order: n_items() x dim() floats, the values
    // it was built from, bit for bit (what a copy of the index is rebuilt from).
    void unpack(float* out) const;

    // The int8 copy read by the screening pass (kernels/score_tile.hpp, ScreenJob). Block b
    // shares one scale s_b = (max |v_i| over its 32 items) / 127 in float32, and each item
    // is v8 = round(v / s_b) in [-127, 127]; block b holds the same 32 items as float block
    // b, as dim_groups() groups of 4 dims (zero padded): group g is 128 bytes, two halves of
    // 16 items x 4 bytes, the lane layout of vpdpbusd.
    //   int8_offset (per position, n_blocks * 32 entries): -128 * sum_i v8_i, the
    //     unsigned-query correction (see screen_bound.cpp); 0 for padding positions.
    //   int8_scale, norm_up, residual_up (per block): s_b, and upper bounds (rounded up to
    //     float32) on |v| and on |v - s_b v8| over the block's items.
    bool has_int8() const { return int8_panels_ != nullptr; }
    std::size_t dim_groups() const { return (dim_ + 3) / 4; }
    std::size_t int8_block_bytes() const { return dim_groups() * 4 * kBlockItems; }
    const std::int8_t* int8_panels() const { return int8_panels_.get(); }
    const std::int32_t* int8_offset() const { return int8_offset_.data(); }
    const float* int8_scale() const { return int8_scale_.data(); }
    const float* norm_up() const { return norm_up_.data(); }
    const float* residual_up() const { return residual_up_.data(); }

private:
    struct AlignedFree {
        void operator()(void* p) const;
    };
    void quantise(std::size_t threads);
    void quantise_block(std::size_t block);
    std::size_t n_items_;
    std::size_t dim_;
    std::size_t n_blocks_;
    std::unique_ptr<float[], AlignedFree> panels_;
    std::vector<std::int64_t> item_at_;
    std::vector<std::uint32_t> position_of_;
    std::vector<double> block_norm_bound_;
    std::unique_ptr<std::int8_t[], AlignedFree> int8_panels_;
    std::vector<std::int32_t> int8_offset_;
    std::vector<float> int8_scale_, norm_up_, residual_up_;
};

}  // namespace recbatch
