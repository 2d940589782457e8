// Exact top-k inner-product search over a packed item catalogue.
//
// For every query row, the k items with the largest inner product, sorted by score
// descending with ties broken by the lower item index; rows with fewer than k eligible
// items are padded with index -1 and score -inf. Optionally the log-sum-exp of every
// eligible score, computed in the same pass. Never materialises the n x m score matrix.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "recbatch/packed_items.hpp"
#include "recbatch/simd_level.hpp"

namespace recbatch {

// A read-only array of 64-bit or 32-bit integers: scipy's CSR matrices hold int32, and a
// search reads the caller's arrays in place rather than widening a copy of them.
struct IndexArray {
    const std::int64_t* wide = nullptr;
    const std::int32_t* narrow = nullptr;

    bool present() const { return wide != nullptr || narrow != nullptr; }
    std::int64_t operator[](std::size_t i) const { return wide != nullptr ? wide[i] : std::int64_t{narrow[i]}; }
};

struct SearchInput {
    const float* queries = nullptr;  // row-major (n_queries x dim)
    std::size_t n_queries = 0;
    // Per-query exclusions in CSR form, rows in any order, duplicates allowed (absent: none).
    IndexArray exclude_indptr;
    IndexArray exclude_indices;
    // Items that may be returned at all, one byte per item (nullptr: every item).
    const std::uint8_t* allow = nullptr;
};

// Counters of the int8 screening pass (level avx512_vnni), summed over searches.
struct ScreenStats {
    std::atomic<std::uint64_t> screened_queries{0};  // queries that went through screening
    std::atomic<std::uint64_t> candidates{0};        // (query, item) pairs flagged
    std::atomic<std::uint64_t> rescored_blocks{0};   // (query, 32-item block) pairs rescored in float32
    std::atomic<std::uint64_t> rescored_items{0};    // (query, item) pairs rescored one by one instead
    std::atomic<std::uint64_t> paused_tiles{0};      // (row group, tile) pairs scored unscreened instead
};

struct SearchOptions {
    std::size_t k = 10;
    std::size_t threads = 1;
    bool logsumexp = false;
    SimdLevel level = SimdLevel::scalar;
    // Polled between tiles; when it turns true the search stops early and returns false.
    const std::atomic<bool>* cancel = nullptr;
    // Where to add screening counters (nullptr: nowhere).
    ScreenStats* stats = nullptr;
    // Exclusions go into per-row eligibility bitmaps (m / 8 bytes for each row of a task, per
    // worker thread) where the rows average at least exclusion_bitmap_rows_from exclusions and
    // all the bitmaps together fit in exclusion_bitmap_bytes. Otherwise each row's exclusions are
    // sorted and cleared tile by tile: a sort per row and a branch per row and tile, which costs
    // more than the bitmaps' memory traffic only for many exclusions per row. Results are the
    // same either way.
    std::size_t exclusion_bitmap_bytes = std::size_t{16} << 20;
    std::size_t exclusion_bitmap_rows_from = 32;
    // Top-k lists of at least top_k_buffer_from entries append candidates to a spare buffer and
    // select the k best when it fills, instead of pushing each down a heap (a large heap's pushes
    // are chains of cache misses), where the workers' buffers fit in top_k_buffer_bytes together.
    // Results are the same either way. 16 MB, beside the bitmaps' 16 MB and catalogue ranges'
    // 32 MB (task_shape.hpp), keeps a search within its inputs, outputs and 64 MB.
    std::size_t top_k_buffer_from = 512;
    std::size_t top_k_buffer_bytes = std::size_t{16} << 20;
    // A row group whose screened tile flags more than this share of its (row, block) pairs for
    // rescoring (a single item counted as half a block) scores its next tiles on the float path
    // instead, then screens again. Results are the same either way.
    double screen_rescore_share = 0.25;
};

struct SearchOutput {
    std::int64_t* indices = nullptr;  // n_queries x k
    float* scores = nullptr;          // n_queries x k
    double* logsumexp = nullptr;      // n_queries, only read when options.logsumexp
};

// Returns false when cancelled (outputs are then incomplete). Throws std::invalid_argument
// for a level this CPU cannot run.
bool search(const PackedItems& items, const SearchInput& input, const SearchOptions& options,
            const SearchOutput& output);

// The CPUs this process may run on (its affinity mask), at least 1.
std::size_t default_thread_count();

}  // namespace recbatch
