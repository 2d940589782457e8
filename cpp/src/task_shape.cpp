#include "task_shape.hpp"

#include <algorithm>
#include <cstdint>

#include "recbatch/packed_items.hpp"

namespace recbatch {

std::size_t tile_blocks_for(std::size_t dim) {
    const std::size_t block_bytes = dim * kBlockItems * sizeof(float);
    return std::max<std::size_t>(1, (256 * 1024) / block_bytes);
}

std::size_t max_chunk_groups(std::size_t group_rows, std::size_t k) {
    const std::size_t group_bytes =
        std::max<std::size_t>(1, group_rows) * std::max<std::size_t>(1, k) * sizeof(std::uint64_t);
    return std::clamp<std::size_t>(kChunkTopKBytes / group_bytes, 1, kMaxChunkGroups);
}

std::vector<std::size_t> query_chunk_starts(std::size_t n_queries, std::size_t group_rows, std::size_t threads,
                                            std::size_t k) {
    const std::size_t tallest = max_chunk_groups(group_rows, k);
    threads = std::max<std::size_t>(1, threads);
    const std::size_t groups = (n_queries + group_rows - 1) / group_rows;
    std::vector<std::size_t> starts;
    for (std::size_t group = 0; group < groups;) {
        starts.push_back(group * group_rows);
        const std::size_t left = groups - group;
        group += groups < 2 * threads ? 1 : std::min(tallest, (left + threads - 1) / threads);
    }
    starts.push_back(n_queries);
    return starts;
}

std::size_t catalogue_ranges_for(std::size_t query_chunks, std::size_t threads, std::size_t n, std::size_t k,
                                 std::size_t n_blocks, std::size_t tile_blocks, std::size_t dim) {
    if (threads == 1 || query_chunks >= 2 * threads) return 1;
    std::size_t ranges = (2 * threads + query_chunks - 1) / query_chunks;
    ranges = std::min(ranges, n_blocks / (2 * tile_blocks));
    ranges = std::min(ranges, (n * n_blocks * kBlockItems * dim) >> 20);
    // Per entry of a range's list: its key; in the merge, where a task gathers a row's keys of
    // every range, that key again; and the merge's selection of 2k keys, at most one more per
    // entry with two ranges or more.
    const std::size_t entry_bytes = 3 * sizeof(std::uint64_t);
    ranges = std::min(ranges, (std::size_t{32} << 20) / std::max<std::size_t>(1, n * k * entry_bytes));
    return std::max<std::size_t>(1, ranges);
}

}  // namespace recbatch
