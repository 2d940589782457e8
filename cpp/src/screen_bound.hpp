// The int8 screening pass's bound: how a query is quantised, and the integer threshold
// below which an item provably cannot reach the query's current k-th best score (the proof
// is in screen_bound.cpp). Used by the search driver; the kernels only evaluate it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

namespace recbatch::screen {

// A row's bound constants (see screen_bound.cpp); ok = false where the bound cannot be trusted.
struct RowBound {
    float scale = 0.0f, a = std::numeric_limits<float>::infinity(), b = std::numeric_limits<float>::infinity();
    bool ok = false;
};

// The largest query level of each screening kernel: vpdpbusd takes any unsigned byte (q8 in
// [-127, 127], stored as q8 + 128); avx2_int8's int16 sums of vpmaddubsw pairs stay exact only
// with 6-bit queries (q8 in [-31, 31], stored as q8 + 32; see kernels/screen_tile_avx2.cpp).
constexpr int kVnniQueryLevels = 127;
constexpr int kMaddubsQueryLevels = 31;

// Quantises one query row to q8 in [-levels, levels] into `bytes` (groups * 4: q8 + levels + 1,
// padding levels + 1) and returns its bound constants. norm is |q|; max_item_norm bounds every
// item's norm.
RowBound quantise_query(const float* q, std::size_t dim, std::size_t groups, double norm, double max_item_norm,
                        int levels, std::uint8_t* bytes);

// The screening threshold t for a row whose current k-th best score is `threshold`
// (-inf, which flags every item, where the bound cannot be trusted).
float screen_threshold(const RowBound& row, float threshold, std::size_t dim);

}  // namespace recbatch::screen
