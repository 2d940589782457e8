// How a search is cut into work for its threads: item tiles sized for L2, query chunks, and
// catalogue ranges when there are too few queries to keep every thread busy.
#pragma once

#include <cstddef>
#include <vector>

namespace recbatch {

// Blocks of packed items per tile: about 256 KiB, which stays in L2 while a chunk's queries
// sweep it.
std::size_t tile_blocks_for(std::size_t dim);

// The tallest query chunk, in row groups: taller chunks stream the catalogue fewer times,
// and 16 groups of queries still sit in L1/L2 beside a tile.
inline constexpr std::size_t kMaxChunkGroups = 16;

// The most bytes of top-k lists (k 8-byte keys per row) a chunk keeps: every tile pushes into
// every row's list, and lists past L2 made each push of a large k a chain of cache misses
// (k = 10,000 over 200,000 items: 10 ms per query with 192 rows' lists, 3.7 ms with 12; NOTES 78).
inline constexpr std::size_t kChunkTopKBytes = std::size_t{512} << 10;

// The tallest chunk for k results per row: kMaxChunkGroups, fewer where their lists would pass
// kChunkTopKBytes, and at least one group.
std::size_t max_chunk_groups(std::size_t group_rows, std::size_t k);

// Where each query chunk starts (rows), plus n_queries at the end: chunk c is rows
// [starts[c], starts[c + 1]). Chunks are whole groups of group_rows (the kernel's register
// block) except the last. With fewer than two groups per thread, one group per chunk (the
// catalogue ranges then split the work further). Otherwise chunks shrink as the work runs out
// ("guided" scheduling): each is ceil(groups left / threads) groups, at most max_chunk_groups,
// so the threads, taking chunks in order, finish together: with equal groups, in exactly
// ceil(groups / threads) group-times (fixed chunks of 72 rows for 4,000 queries on 16
// threads take four rounds where 3.5 would do).
std::vector<std::size_t> query_chunk_starts(std::size_t n_queries, std::size_t group_rows, std::size_t threads,
                                            std::size_t k);

// Catalogue ranges per query chunk: one, unless there are too few chunks to keep every
// thread busy (a handful of queries). Then each range of blocks is a task of its own with
// its own heaps, merged per query at the end: at least two full tiles and about a million
// multiply-adds per range (a thread's start costs tens of microseconds), and the ranges'
// partial top-k lists (n x ranges x k keys) and the merge's buffers within 32 MB.
std::size_t catalogue_ranges_for(std::size_t query_chunks, std::size_t threads, std::size_t n, std::size_t k,
                                 std::size_t n_blocks, std::size_t tile_blocks, std::size_t dim);

}  // namespace recbatch
