// The search driver: splits queries into tasks for the threads, sweeps each task over
// L2-sized tiles of item blocks, and feeds the kernel's candidates into per-query heaps
// (faiss's blocked "score a tile, then hand it to a result handler" shape, with scoring
// and selection fused so no score matrix beyond one tile per thread ever exists).
#include "recbatch/search.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif
#include <thread>

#include "kernels/score_tile.hpp"
#include "parallel_for.hpp"
#include "top_k_heap.hpp"

namespace recbatch {
namespace {

using kernels::kMaxRows;
using kernels::ScoreTileFn;

ScoreTileFn select_kernel(SimdLevel level) {
    if (static_cast<int>(level) > static_cast<int>(detected_simd_level()))
        throw std::invalid_argument(std::string("SIMD level '") + simd_level_name(level) +
                                    "' is not supported by this CPU");
    switch (level) {
#ifdef RECBATCH_X86_64
        case SimdLevel::avx512: return kernels::avx512::score_tile;
        case SimdLevel::avx2: return kernels::avx2::score_tile;
#endif
        default: return kernels::scalar::score_tile;
    }
}

// A tile of about 256 KiB of packed items stays in L2 while a task's queries sweep it.
std::size_t tile_blocks_for(std::size_t dim) {
    const std::size_t block_bytes = dim * kBlockItems * sizeof(float);
    return std::max<std::size_t>(1, (256 * 1024) / block_bytes);
}

// Rows per task: enough tasks for every thread to stay busy (4 per thread), a multiple of
// the kernel's row group, and not so many that a task's queries fall out of cache.
std::size_t task_rows_for(std::size_t n_queries, std::size_t threads) {
    const std::size_t wanted = (n_queries + 4 * threads - 1) / (4 * threads);
    const std::size_t rounded = (wanted + kMaxRows - 1) / kMaxRows * kMaxRows;
    return std::clamp<std::size_t>(rounded, kMaxRows, 16 * kMaxRows);
}

// Bit j of word b: item b * 32 + j exists and is allowed.
std::vector<std::uint32_t> allowed_words(std::size_t n_items, std::size_t n_blocks, const std::uint8_t* allow) {
    std::vector<std::uint32_t> words(n_blocks, 0);
    for (std::size_t i = 0; i < n_items; ++i)
        if (allow == nullptr || allow[i]) words[i / kBlockItems] |= 1u << (i % kBlockItems);
    return words;
}

struct Scratch {
    std::vector<const float*> rows;
    std::vector<float> thresholds, scores, lse_max;
    std::vector<double> lse_sum;
    std::vector<std::uint32_t> eligible, candidates;
    std::vector<std::int64_t> cursors;
    std::vector<std::pair<float, std::int64_t>> sort_buffer;
};

}  // namespace

std::size_t default_thread_count() {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
    return std::max(1u, std::thread::hardware_concurrency());
}

bool search(const PackedItems& items, const SearchInput& input, const SearchOptions& options,
            const SearchOutput& output) {
    if (options.k == 0) throw std::invalid_argument("k must be >= 1");
    const ScoreTileFn score_tile = select_kernel(options.level);
    const std::size_t n = input.n_queries, k = options.k, dim = items.dim();
    if (n == 0) return true;
    const std::size_t threads = std::max<std::size_t>(1, options.threads);
    const std::size_t n_blocks = items.n_blocks();
    const std::size_t tile_blocks = std::min(n_blocks, tile_blocks_for(dim));
    const std::size_t task_rows = task_rows_for(n, threads);
    const std::size_t n_tasks = (n + task_rows - 1) / task_rows;
    const std::vector<std::uint32_t> allowed = allowed_words(items.n_items(), n_blocks, input.allow);
    const bool lse = options.logsumexp;
    std::atomic<bool> cancelled{false};
    std::vector<Scratch> scratch(std::min(threads, n_tasks));

    parallel_for(n_tasks, threads, [&](std::size_t thread_index, std::size_t task) {
        Scratch& s = scratch[thread_index];
        const std::size_t first = task * task_rows, rows = std::min(task_rows, n - first);
        s.rows.resize(kMaxRows);
        s.thresholds.resize(kMaxRows);
        s.scores.resize(kMaxRows * tile_blocks * kBlockItems);
        s.eligible.resize(kMaxRows * tile_blocks);
        s.candidates.resize(kMaxRows * tile_blocks);
        s.lse_max.assign(rows, -INFINITY);
        s.lse_sum.assign(rows, 0.0);
        s.cursors.resize(rows);
        std::vector<TopKHeap> heaps;
        heaps.reserve(rows);
        for (std::size_t r = 0; r < rows; ++r) {
            heaps.emplace_back(output.scores + (first + r) * k, output.indices + (first + r) * k, k);
            heaps.back().reset();
            if (input.exclude_indptr != nullptr) s.cursors[r] = input.exclude_indptr[first + r];
        }

        for (std::size_t tile = 0; tile < n_blocks; tile += tile_blocks) {
            if ((options.cancel != nullptr && options.cancel->load(std::memory_order_relaxed)) ||
                cancelled.load(std::memory_order_relaxed)) {
                cancelled.store(true);
                return;
            }
            const std::size_t blocks = std::min(tile_blocks, n_blocks - tile);
            const std::int64_t tile_end = static_cast<std::int64_t>((tile + blocks) * kBlockItems);
            for (std::size_t group = 0; group < rows; group += kMaxRows) {
                const std::size_t group_rows = std::min(kMaxRows, rows - group);
                for (std::size_t r = 0; r < group_rows; ++r) {
                    const std::size_t row = group + r;
                    s.rows[r] = input.queries + (first + row) * dim;
                    s.thresholds[r] = heaps[row].threshold();
                    std::uint32_t* eligible = s.eligible.data() + r * blocks;
                    std::copy(allowed.begin() + tile, allowed.begin() + tile + blocks, eligible);
                    if (input.exclude_indptr == nullptr) continue;
                    // Clear the bits of this row's excluded items that fall in this tile.
                    const std::int64_t row_end = input.exclude_indptr[first + row + 1];
                    std::int64_t& cursor = s.cursors[row];
                    for (; cursor < row_end && input.exclude_indices[cursor] < tile_end; ++cursor) {
                        const std::size_t offset =
                            static_cast<std::size_t>(input.exclude_indices[cursor]) - tile * kBlockItems;
                        eligible[offset / kBlockItems] &= ~(1u << (offset % kBlockItems));
                    }
                }
                kernels::TileJob job{s.rows.data(),
                                     group_rows,
                                     items.panels() + tile * items.block_floats(),
                                     blocks,
                                     dim,
                                     s.thresholds.data(),
                                     s.eligible.data(),
                                     s.scores.data(),
                                     s.candidates.data(),
                                     lse ? s.lse_max.data() + group : nullptr,
                                     lse ? s.lse_sum.data() + group : nullptr};
                score_tile(job);
                // Candidates come in ascending item order per row, so equal scores keep
                // the lower index already held: the heap's strict test does the rest.
                for (std::size_t r = 0; r < group_rows; ++r) {
                    TopKHeap& heap = heaps[group + r];
                    const float* row_scores = s.scores.data() + r * blocks * kBlockItems;
                    for (std::size_t b = 0; b < blocks; ++b) {
                        for (std::uint32_t bits = s.candidates[r * blocks + b]; bits != 0; bits &= bits - 1) {
                            const unsigned j = static_cast<unsigned>(__builtin_ctz(bits));
                            const float score = row_scores[b * kBlockItems + j];
                            if (score > heap.threshold())
                                heap.push(score, static_cast<std::int64_t>((tile + b) * kBlockItems + j));
                        }
                    }
                }
            }
        }
        for (std::size_t r = 0; r < rows; ++r) {
            heaps[r].sort_descending(s.sort_buffer);
            if (lse)
                output.logsumexp[first + r] = s.lse_sum[r] > 0.0
                                                  ? static_cast<double>(s.lse_max[r]) + std::log(s.lse_sum[r])
                                                  : -INFINITY;
        }
    });
    return !cancelled.load();
}

}  // namespace recbatch
