// Packing the catalogue into 32-item, dimension-major blocks in order of decreasing norm
// (see packed_items.hpp).
#include "recbatch/packed_items.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <numeric>
#include <stdexcept>

#include "panel_memory.hpp"
#include "parallel_for.hpp"

namespace recbatch {

void PackedItems::AlignedFree::operator()(void* p) const { std::free(p); }

namespace {

// The float32 nearest to x, moved up one step where it is below x: an upper bound.
float round_up(double x) {
    float f = static_cast<float>(x);
    if (static_cast<double>(f) < x) f = std::nextafter(f, INFINITY);
    return f;
}

}  // namespace

namespace {

// Work split for the build: spans of items or blocks big enough that a task's overhead is noise.
constexpr std::size_t kItemsPerTask = 16384, kBlocksPerTask = 512;

// order by decreasing norm, ties in their original order: exactly std::stable_sort's result,
// on threads. Runs (a power of two of them) are sorted in parallel, then merged pairwise;
// std::merge takes the left run's element first on ties, so every merge is stable too.
void sort_by_norm(std::vector<std::int64_t>& order, const std::vector<double>& norms, std::size_t threads) {
    const auto longer = [&](std::int64_t a, std::int64_t b) { return norms[a] > norms[b]; };
    const std::size_t n = order.size();
    std::size_t runs = 1;
    while (runs < threads && n / (2 * runs) >= kItemsPerTask) runs *= 2;
    std::vector<std::size_t> bounds(runs + 1);
    for (std::size_t r = 0; r <= runs; ++r) bounds[r] = n * r / runs;
    const auto at = [&](std::vector<std::int64_t>& v, std::size_t i) { return v.begin() + static_cast<std::ptrdiff_t>(i); };
    parallel_for(runs, threads, [&](std::size_t, std::size_t r) {
        std::stable_sort(at(order, bounds[r]), at(order, bounds[r + 1]), longer);
    });
    if (runs == 1) return;
    std::vector<std::int64_t> buffer(n);
    std::vector<std::int64_t>*from = &order, *to = &buffer;
    for (std::size_t width = 1; width < runs; width *= 2) {
        parallel_for(runs / (2 * width), threads, [&](std::size_t, std::size_t pair) {
            const std::size_t lo = bounds[2 * width * pair], mid = bounds[2 * width * pair + width],
                              hi = bounds[2 * width * (pair + 1)];
            std::merge(at(*from, lo), at(*from, mid), at(*from, mid), at(*from, hi), at(*to, lo), longer);
        });
        std::swap(from, to);
    }
    if (from != &order) order.swap(buffer);
}

}  // namespace

PackedItems::PackedItems(const float* items, std::size_t n_items, std::size_t dim, bool with_int8, std::size_t threads)
    : n_items_(n_items), dim_(dim), n_blocks_((n_items + kBlockItems - 1) / kBlockItems) {
    if (n_items == 0 || dim == 0) throw std::invalid_argument("items must have at least one row and one column");
    if (n_items > std::numeric_limits<std::uint32_t>::max())
        throw std::invalid_argument("items: at most 2^32 - 1 rows are supported");
    threads = std::max<std::size_t>(1, threads);
    std::vector<double> norms(n_items);
    parallel_for((n_items + kItemsPerTask - 1) / kItemsPerTask, threads, [&](std::size_t, std::size_t task) {
        for (std::size_t i = task * kItemsPerTask; i < std::min(n_items, (task + 1) * kItemsPerTask); ++i) {
            double sum = 0.0;
            for (std::size_t d = 0; d < dim; ++d) sum += double(items[i * dim + d]) * items[i * dim + d];
            norms[i] = std::sqrt(sum);
        }
    });
    item_at_.resize(n_items);
    std::iota(item_at_.begin(), item_at_.end(), std::int64_t{0});
    sort_by_norm(item_at_, norms, threads);
    position_of_.resize(n_items);
    for (std::size_t p = 0; p < n_items; ++p) position_of_[static_cast<std::size_t>(item_at_[p])] = static_cast<std::uint32_t>(p);
    block_norm_bound_.resize(n_blocks_);
    for (std::size_t b = 0; b < n_blocks_; ++b)  // the first item of a block is its longest
        block_norm_bound_[b] = norms[static_cast<std::size_t>(item_at_[b * kBlockItems])] * (1.0 + 1e-12);

    const std::size_t floats = n_blocks_ * dim * kBlockItems;
    // 64-byte alignment: every block column is one AVX-512 load (or two AVX2 loads) apart.
    const std::size_t bytes = ((floats * sizeof(float) + 63) / 64) * 64;
    float* data = static_cast<float*>(allocate_panel_memory(bytes));
    panels_.reset(data);
    // Padding items score 0; the search masks them out, so their value never matters. Each
    // task clears and fills its own blocks, so the pages are first touched in parallel too.
    parallel_for((n_blocks_ + kBlocksPerTask - 1) / kBlocksPerTask, threads, [&](std::size_t, std::size_t task) {
        const std::size_t first = task * kBlocksPerTask, last = std::min(n_blocks_, first + kBlocksPerTask);
        float* const begin = data + first * dim * kBlockItems;
        float* const end = last == n_blocks_ ? data + bytes / sizeof(float) : data + last * dim * kBlockItems;
        std::fill(begin, end, 0.0f);
        for (std::size_t p = first * kBlockItems; p < std::min(n_items, last * kBlockItems); ++p) {
            float* block = data + (p / kBlockItems) * dim * kBlockItems;
            const std::size_t lane = p % kBlockItems;
            const float* row = items + static_cast<std::size_t>(item_at_[p]) * dim;
            for (std::size_t d = 0; d < dim; ++d) block[d * kBlockItems + lane] = row[d];
        }
    });
    if (with_int8) quantise(threads);
}

void PackedItems::unpack(float* out) const {
    for (std::size_t p = 0; p < n_items_; ++p) {
        const float* block = panels_.get() + (p / kBlockItems) * dim_ * kBlockItems;
        float* row = out + static_cast<std::size_t>(item_at_[p]) * dim_;
        for (std::size_t d = 0; d < dim_; ++d) row[d] = block[d * kBlockItems + p % kBlockItems];
    }
}

void PackedItems::quantise(std::size_t threads) {
    const std::size_t positions = n_blocks_ * kBlockItems;
    const std::size_t bytes = ((n_blocks_ * int8_block_bytes() + 63) / 64) * 64;
    auto* data = static_cast<std::int8_t*>(allocate_panel_memory(bytes));
    int8_panels_.reset(data);
    int8_offset_.assign(positions, 0);
    int8_scale_.assign(n_blocks_, 0.0f);
    norm_up_.assign(n_blocks_, 0.0f);
    residual_up_.assign(n_blocks_, 0.0f);
    parallel_for((n_blocks_ + kBlocksPerTask - 1) / kBlocksPerTask, threads, [&](std::size_t, std::size_t task) {
        const std::size_t first = task * kBlocksPerTask, last = std::min(n_blocks_, first + kBlocksPerTask);
        std::int8_t* const end = last == n_blocks_ ? data + bytes : data + last * int8_block_bytes();
        std::fill(data + first * int8_block_bytes(), end, std::int8_t{0});
        for (std::size_t b = first; b < last; ++b) quantise_block(b);
    });
}

void PackedItems::quantise_block(std::size_t b) {
    // Sums of d squares in double carry a relative error below d * 2^-53; this covers it.
    const double inflate = 1.0 + 1e-9;
    // Reads the float panels (sequential, 32 items side by side) rather than the caller's
    // rows in norm order (random access); padding lanes are 0 and stay 0.
    const float* panel = panels_.get() + b * block_floats();
    float max_abs = 0.0f;
    for (std::size_t i = 0; i < block_floats(); ++i) max_abs = std::max(max_abs, std::fabs(panel[i]));
    const float scale = max_abs / 127.0f;
    // Finite even for a subnormal scale, so no 0 * inf (NaN) can arise.
    const float inverse = scale > 0.0f ? std::min(1.0f / scale, FLT_MAX) : 0.0f;
    std::int8_t* block = int8_panels_.get() + b * int8_block_bytes();
    double norm[kBlockItems] = {}, residual[kBlockItems] = {};
    std::int32_t sum[kBlockItems] = {};
    for (std::size_t d = 0; d < dim_; ++d) {
        const float* column = panel + d * kBlockItems;
        float levels[kBlockItems];
        // Any rounding to the int8 grid works (the bound uses the residual actually left).
        // Clamp, then round to nearest with the 1.5 * 2^23 trick: branch-free, so it
        // vectorises on the baseline ISA.
        for (std::size_t j = 0; j < kBlockItems; ++j) {
            const float x = std::min(std::max(column[j] * inverse, -127.0f), 127.0f);
            levels[j] = (x + 12582912.0f) - 12582912.0f;
        }
        for (std::size_t j = 0; j < kBlockItems; ++j) {
            const double v = column[j], r = v - static_cast<double>(scale) * levels[j];
            norm[j] += v * v;
            residual[j] += r * r;
            const auto v8 = static_cast<std::int8_t>(levels[j]);
            sum[j] += v8;
            block[(d / 4) * 128 + (j / 16) * 64 + (j % 16) * 4 + d % 4] = v8;
        }
    }
    double max_norm = 0.0, max_residual = 0.0;
    for (std::size_t j = 0; j < kBlockItems; ++j) {
        int8_offset_[b * kBlockItems + j] = -128 * sum[j];
        max_norm = std::max(max_norm, std::sqrt(norm[j]));
        max_residual = std::max(max_residual, std::sqrt(residual[j]));
    }
    int8_scale_[b] = scale;
    norm_up_[b] = round_up(max_norm * inflate);
    residual_up_[b] = round_up(max_residual * inflate);
}

}  // namespace recbatch
