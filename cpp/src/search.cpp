// The search driver: splits queries into tasks for the threads, sweeps each task over
// L2-sized tiles of item blocks, and feeds the kernel's candidates into per-query top-k lists
// (faiss's blocked "score a tile, then hand it to a result handler" shape, with scoring
// and selection fused so no score matrix beyond one tile per thread ever exists).
#include "recbatch/search.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif
#include <thread>

#include "kernels/score_tile.hpp"
#include "kernels/split_keys.hpp"
#include "parallel_for.hpp"
#include "screen_bound.hpp"
#include "task_shape.hpp"
#include "top_k_list.hpp"

namespace recbatch {
namespace {

using kernels::kMaxRows;
using kernels::ScoreTileFn;

struct Kernels {
    ScoreTileFn score_tile;
    kernels::LaneMaximaFn lane_maxima;
    kernels::KeepAtLeastFn keep_at_least;
    kernels::KthLargestLaneFn kth_largest_lane;
    // The screening pass (null: none), the largest query level it takes (screen_bound.hpp), and
    // the rescoring of what it flags in the float kernel's own arithmetic.
    kernels::ScreenTileFn screen_tile = nullptr;
    int query_levels = 0;
    kernels::ScoreBlocksFn score_blocks = nullptr;
    kernels::ScoreItemsFn score_items = nullptr;
    kernels::SplitKeysFn split_keys = kernels::scalar::split_keys;  // buffered top-k lists' selection
};

Kernels select_kernels(SimdLevel level) {
    if (!simd_level_available(level))
        throw std::invalid_argument(std::string("SIMD level '") + simd_level_name(level) +
                                    "' is not supported by this CPU");
    Kernels k{kernels::scalar::score_tile, kernels::scalar::lane_maxima, kernels::scalar::keep_at_least,
              kernels::scalar::kth_largest_lane};
#ifdef RECBATCH_X86_64
    const Kernels avx2{kernels::avx2::score_tile,          kernels::avx2::lane_maxima,  kernels::avx2::keep_at_least,
                       kernels::avx2::kth_largest_lane,    nullptr,                     screen::kVnniQueryLevels,
                       kernels::avx2::score_blocks,        kernels::avx2::score_items};
    const Kernels avx512{kernels::avx512::score_tile,       kernels::avx512::lane_maxima, kernels::avx512::keep_at_least,
                         kernels::avx512::kth_largest_lane, nullptr,                      screen::kVnniQueryLevels,
                         kernels::avx512::score_blocks,     kernels::avx512::score_items};
    switch (level) {  // the AVX-512 levels' buffered lists split keys with AVX-512 too (below)
        case SimdLevel::scalar: break;
        case SimdLevel::avx2: k = avx2; break;
        case SimdLevel::avx2_int8:
            k = avx2;
            k.screen_tile = kernels::avx2_int8::screen_tile;
            k.query_levels = screen::kMaddubsQueryLevels;
            break;
        case SimdLevel::avx2_vnni:
            k = avx2;
#ifdef RECBATCH_HAVE_AVXVNNI
            k.screen_tile = kernels::avx2_vnni::screen_tile;
#endif
            break;
        case SimdLevel::avx512: k = avx512; break;
        case SimdLevel::avx512_vnni:
            k = avx512;
            k.screen_tile = kernels::avx512_vnni::screen_tile;
            break;
        case SimdLevel::amx_int8:
            k = avx512;
#ifdef RECBATCH_HAVE_AMX
            k.screen_tile = kernels::amx_int8::screen_tile;
#endif
            break;
    }
    if (level == SimdLevel::avx512 || level == SimdLevel::avx512_vnni || level == SimdLevel::amx_int8)
        k.split_keys = kernels::avx512::split_keys;
#endif
    return k;
}

// A screened block with at most this many candidates for a row is rescored item by item
// (score_items: one FMA chain per item) rather than as a whole block (32 chains, and all of
// the block's float bytes, most of them for items that cannot make the top k).
constexpr std::uint64_t kItemwiseAtMost = 2;

// The longest pause of screening for a row group, in tiles (see screen_rescore_share).
constexpr std::uint32_t kLongestScreenPause = 16;

// Raises a shared lower bound on a query's k-th best score (ranges of one query publish theirs).
void raise_to(std::atomic<float>& bound, float value) {
    float current = bound.load(std::memory_order_relaxed);
    while (value > current && !bound.compare_exchange_weak(current, value, std::memory_order_relaxed)) {
    }
}

// Bit j of word b: the item stored at position b * 32 + j exists and is allowed.
std::vector<std::uint32_t> allowed_words(const PackedItems& items, const std::uint8_t* allow) {
    std::vector<std::uint32_t> words(items.n_blocks(), 0);
    for (std::size_t p = 0; p < items.n_items(); ++p)
        if (allow == nullptr || allow[items.item_at(p)]) words[p / kBlockItems] |= 1u << (p % kBlockItems);
    return words;
}

// The first block of [begin, end) that no row of the group can reach: every row's top k is
// full and its k-th score is above |q| * (the block's norm bound), inflated by the worst
// float32 rounding of a dot product of this length. Blocks come in decreasing norm, so
// every later block is out of reach too. Returns end when the scan must go on.
std::size_t first_unreachable_block(const PackedItems& items, std::size_t begin, std::size_t end,
                                    const float* thresholds, const double* query_norms, std::size_t rows) {
    const double rounding = 1.0 + (static_cast<double>(items.dim()) + 2.0) * 1.2e-7;
    double limit = INFINITY;  // a block is unreachable when its norm bound is below this
    for (std::size_t r = 0; r < rows; ++r) {
        if (!(thresholds[r] > 0.0f)) return end;  // a non-positive k-th score (or an unfilled top k) proves nothing
        if (query_norms[r] > 0.0) limit = std::min(limit, thresholds[r] / (query_norms[r] * rounding));
    }
    std::size_t block = begin;
    while (block < end && !(items.block_norm_bound(block) < limit)) ++block;
    return block;
}

// Set bits of a word (the baseline ISA has no popcnt instruction).
std::uint64_t bit_count(std::uint32_t x) {
    x = x - ((x >> 1) & 0x55555555u);
    x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
    return (((x + (x >> 4)) & 0x0f0f0f0fu) * 0x01010101u) >> 24;
}

struct Scratch {
    std::vector<const float*> rows;
    std::vector<float> thresholds, scores, lse_max;
    std::vector<float> lane_maxima, bounds;  // thinning the first tile (k <= 32)
    std::vector<double> lse_sum;
    std::vector<std::uint32_t> eligible, candidates;
    std::vector<std::uint64_t> flagged;  // per row of a group: the blocks with a candidate
    std::vector<std::int64_t> cursors, excluded;  // per row: positions of its excluded items, sorted
    std::vector<std::uint32_t> row_bits;          // or per row: eligibility of every stored position
    std::vector<std::uint64_t> spare, selection;  // buffered top-k lists: per row, and shared
    std::vector<double> query_norms;
    // Screening only: quantised queries (rows x dim_groups * 4 bytes), their bound constants,
    // and per group the kernel's row pointers and a, b, t.
    std::vector<std::uint8_t> query_bytes;
    std::vector<screen::RowBound> row_bounds;
    std::vector<const std::uint8_t*> byte_rows;
    std::vector<float> screen_a, screen_b, screen_t;
    std::vector<std::uint32_t> block_rows;
    // Flagged (row, block) pairs of one group and tile, rescored together.
    std::vector<std::uint32_t> pair_row, pair_block, pair_above;
    std::vector<const float*> pair_query, pair_panel;
    std::vector<float> pair_threshold;
    // Flagged items rescored one by one: row, position in the tile, query, item column, score.
    std::vector<std::uint32_t> item_row, item_position;
    std::vector<const float*> item_query, item_column;
    std::vector<float> item_score;
};

// A row's log-sum-exp from its running maximum and the sum around it (-inf where nothing was
// eligible), never below its best score: that item's own term is e^0 of the sum, but the
// vectorised exponential's last-bit errors could leave the result a few 1e-8 short, and the
// best item's softmax share (exp(best - logsumexp)) above 1.
double logsumexp_of(float max, double sum, float best) {
    if (!(sum > 0.0)) return -INFINITY;
    return std::max(static_cast<double>(max) + std::log(sum), static_cast<double>(best));
}

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
    const Kernels kernel = select_kernels(options.level);
    const std::size_t n = input.n_queries, k = options.k, dim = items.dim();
    if (n == 0) return true;
    const std::size_t threads = std::max<std::size_t>(1, options.threads);
    const std::size_t n_blocks = items.n_blocks();
    const std::size_t tile_blocks = std::min(n_blocks, tile_blocks_for(dim));
    const std::size_t flag_words = (tile_blocks + 63) / 64;
    const std::vector<std::size_t> chunk_starts = query_chunk_starts(n, kMaxRows, threads, k);
    const std::size_t query_chunks = chunk_starts.size() - 1;
    const std::size_t ranges = catalogue_ranges_for(query_chunks, threads, n, k, n_blocks, tile_blocks, dim);
    const std::size_t n_tasks = query_chunks * ranges;
    // With several ranges: each range's top k per query (merged at the end), its log-sum-exp
    // pair, and per query the best k-th score any range has found so far. That score is a lower
    // bound on the query's final k-th, so every range may skip what cannot beat it (and prune
    // by norm against it), as a single scan would with its own list.
    // Each range's lists leave their keys there, unordered (the merge sorts them once). Left
    // uninitialised (the lists write every entry): zeroing first was a pass over fresh pages.
    const std::size_t range_entries = ranges > 1 ? ranges * n * k : 0;
    const std::unique_ptr<std::int64_t[]> range_indices(range_entries > 0 ? new std::int64_t[range_entries] : nullptr);
    std::vector<float> range_lse_max(ranges > 1 && options.logsumexp ? ranges * n : 0);
    std::vector<double> range_lse_sum(range_lse_max.size());
    std::unique_ptr<std::atomic<float>[]> kth_bound(ranges > 1 ? new std::atomic<float>[n] : nullptr);
    for (std::size_t i = 0; ranges > 1 && i < n; ++i) kth_bound[i].store(-INFINITY, std::memory_order_relaxed);
    const std::vector<std::uint32_t> allowed = allowed_words(items, input.allow);
    const bool lse = options.logsumexp;
    // The exact log-sum-exp needs every eligible item, so it turns pruning off, and
    // screening too (it would skip the exact scores of items that cannot reach the top k).
    const bool prune = !lse;
    const bool screen = kernel.screen_tile != nullptr && !lse && items.has_int8() && dim <= 100000;
    const std::size_t groups = items.dim_groups();
    std::atomic<bool> cancelled{false};
    std::vector<Scratch> scratch(std::min(threads, n_tasks));
    // Exclusions go into per-row eligibility bitmaps (task rows x m/8 bytes per worker): one bit
    // cleared per excluded item, and the kernels read each row's words in place. Writing and
    // rereading m/8 bytes per row costs W1's shape 6-9% of its search whatever the count, while
    // sorting each row's exclusions by position and clearing them tile by tile costs 2-4% for 1
    // to 30 exclusions per row and 11-16% for 100 (a sort per row and a data-dependent branch per
    // row and tile; NOTES 36, 77). So the bitmaps are for rows averaging many exclusions, within
    // a memory budget.
    std::size_t max_task_rows = 0;
    for (std::size_t c = 0; c < query_chunks; ++c)
        max_task_rows = std::max(max_task_rows, chunk_starts[c + 1] - chunk_starts[c]);
    const bool row_bitmaps =
        input.exclude_indptr.present() &&
        static_cast<std::uint64_t>(input.exclude_indptr[n] - input.exclude_indptr[0]) >=
            static_cast<std::uint64_t>(n) * options.exclusion_bitmap_rows_from &&
        scratch.size() * max_task_rows * n_blocks * sizeof(std::uint32_t) <= options.exclusion_bitmap_bytes;
    const bool sorted_exclusions = input.exclude_indptr.present() && !row_bitmaps;
    // Lists of k >= options.top_k_buffer_from are kept buffered (top_k_list.hpp) where each
    // worker's spare keys (per task row) and selection buffer (k + spare) fit the budget, with a
    // spare of k keys: each selection then moves about two keys per push. A budget that cuts
    // the spare below max(256, k / 8) would make selections too frequent: a heap then.
    std::size_t spare_size = 0;
    if (k >= options.top_k_buffer_from) {
        const std::size_t per_worker = options.top_k_buffer_bytes / sizeof(std::uint64_t) / scratch.size();
        if (per_worker > k) spare_size = std::min(k, (per_worker - k) / (max_task_rows + 1));
        if (spare_size < k && spare_size < std::max<std::size_t>(256, k / 8)) spare_size = 0;
    }

    parallel_for(n_tasks, threads, [&](std::size_t thread_index, std::size_t task) {
        Scratch& s = scratch[thread_index];
        // Range-major order: every query's first (largest-norm) range is scanned first, and
        // its k-th scores are what the later ranges prune against.
        const std::size_t range = task / query_chunks, chunk = task % query_chunks;
        const std::size_t first = chunk_starts[chunk], rows = chunk_starts[chunk + 1] - first;
        const std::size_t range_begin = n_blocks * range / ranges, range_end = n_blocks * (range + 1) / ranges;
        float* const top_scores = ranges > 1 ? nullptr : output.scores;  // unordered keys only (above)
        std::int64_t* const top_indices = ranges > 1 ? range_indices.get() + range * n * k : output.indices;
        s.rows.resize(kMaxRows);
        s.thresholds.resize(kMaxRows);
        s.lane_maxima.resize(kMaxRows * kBlockItems);
        s.bounds.resize(kMaxRows);
        s.scores.resize(kMaxRows * tile_blocks * kBlockItems);
        s.eligible.resize(kMaxRows * tile_blocks);
        s.candidates.resize(kMaxRows * tile_blocks);
        s.flagged.assign(kMaxRows * flag_words, 0);
        s.lse_max.assign(rows, -INFINITY);
        s.lse_sum.assign(rows, 0.0);
        s.cursors.assign(rows + 1, 0);
        s.excluded.clear();
        if (row_bitmaps) s.row_bits.resize(rows * n_blocks);
        if (spare_size > 0) {
            s.spare.resize(rows * spare_size);
            s.selection.resize(k + spare_size);
        }
        s.query_norms.resize(rows);
        if (screen) {
            s.query_bytes.resize(rows * groups * 4);
            s.row_bounds.resize(rows);
            s.byte_rows.resize(kMaxRows);
            s.screen_a.resize(kMaxRows);
            s.screen_b.resize(kMaxRows);
            s.screen_t.resize(kMaxRows);
            s.block_rows.resize(tile_blocks);
            for (auto* v : {&s.pair_row, &s.pair_block, &s.pair_above}) v->resize(kMaxRows * tile_blocks);
            s.pair_query.resize(kMaxRows * tile_blocks);
            s.pair_panel.resize(kMaxRows * tile_blocks);
            s.pair_threshold.resize(kMaxRows * tile_blocks);
            for (auto* v : {&s.item_row, &s.item_position}) v->resize(kMaxRows * tile_blocks * kItemwiseAtMost);
            s.item_query.resize(kMaxRows * tile_blocks * kItemwiseAtMost);
            s.item_column.resize(kMaxRows * tile_blocks * kItemwiseAtMost);
            s.item_score.resize(kMaxRows * tile_blocks * kItemwiseAtMost);
        }
        std::uint64_t task_candidates = 0, task_rescored = 0, task_items = 0, task_paused = 0;
        std::vector<TopKList> lists;
        lists.reserve(rows);
        for (std::size_t r = 0; r < rows; ++r) {
            if (spare_size > 0)
                lists.emplace_back(top_scores + (first + r) * k, top_indices + (first + r) * k, k,
                                   s.spare.data() + r * spare_size, spare_size, s.selection.data(), kernel.split_keys);
            else
                lists.emplace_back(top_scores + (first + r) * k, top_indices + (first + r) * k, k);
            lists.back().reset();
            const float* q = input.queries + (first + r) * dim;
            double norm = 0.0;
            for (std::size_t d = 0; d < dim; ++d) norm += double(q[d]) * q[d];
            s.query_norms[r] = std::sqrt(norm);
            if (screen)
                s.row_bounds[r] = screen::quantise_query(q, dim, groups, s.query_norms[r], items.block_norm_bound(0),
                                                         kernel.query_levels, s.query_bytes.data() + r * groups * 4);
            if (!input.exclude_indptr.present()) continue;
            // Exclusions name caller indices; the scan walks stored positions.
            if (row_bitmaps) {
                std::uint32_t* bits = s.row_bits.data() + r * n_blocks;
                std::copy(allowed.begin(), allowed.end(), bits);
                for (std::int64_t j = input.exclude_indptr[first + r]; j < input.exclude_indptr[first + r + 1]; ++j) {
                    const std::size_t p = items.position_of(input.exclude_indices[static_cast<std::size_t>(j)]);
                    bits[p / kBlockItems] &= ~(1u << (p % kBlockItems));
                }
                continue;
            }
            const std::size_t row_begin = s.excluded.size();
            for (std::int64_t j = input.exclude_indptr[first + r]; j < input.exclude_indptr[first + r + 1]; ++j)
                s.excluded.push_back(static_cast<std::int64_t>(items.position_of(input.exclude_indices[j])));
            std::sort(s.excluded.begin() + static_cast<std::ptrdiff_t>(row_begin), s.excluded.end());
            s.cursors[r + 1] = static_cast<std::int64_t>(s.excluded.size());
        }
        // cursors[r] walks row r's slice of `excluded`, which ends where row r + 1's begins.
        std::vector<std::int64_t> row_ends(s.cursors.begin() + 1, s.cursors.end());
        std::vector<char> group_done((rows + kMaxRows - 1) / kMaxRows, 0);
        // Per row group, while screening is paused (see screen_rescore_share): whether it is,
        // the tiles it stays paused at least, and that count as last set.
        std::vector<char> paused(group_done.size(), 0);
        std::vector<std::uint32_t> pause_left(group_done.size(), 0), pause_length(group_done.size(), 0);

        // Tiles start small and double: the kernel compares against each query's k-th best as
        // it stood when the tile began, so a first full-size tile would flag every item in it
        // while the lists are still empty. Growing tiles keep candidates near k per tile. The
        // first holds just enough blocks for k items: every one of its items is a candidate, and
        // a first tile of F items costs F pushes plus about k ln(m / F) later, least near F = k
        // (W3's shape: 93 pushes per query instead of 115 with one block more).
        //
        // For k <= 32 the first tile is a full one instead, thinned before any push: the k-th
        // largest of its 32 lane maxima is a lower bound on its k-th best score, so only the
        // items at or above it reach the list (simulated, Gaussian: W3's shape 41 candidates per
        // query instead of 128, W1's 174 instead of 304).
        const bool thin_first_tile = k <= kBlockItems;
        std::size_t next_tile_size =
            thin_first_tile ? tile_blocks : std::min(tile_blocks, (k + kBlockItems - 1) / kBlockItems);
        for (std::size_t tile = range_begin, tile_size = 0; tile < range_end; tile += tile_size) {
            tile_size = std::min(next_tile_size, range_end - tile);
            next_tile_size = std::min(tile_blocks, 2 * next_tile_size);
            if ((options.cancel != nullptr && options.cancel->load(std::memory_order_relaxed)) ||
                cancelled.load(std::memory_order_relaxed)) {
                cancelled.store(true);
                return;
            }
            const std::int64_t tile_end = static_cast<std::int64_t>((tile + tile_size) * kBlockItems);
            // Each row group brings its share of the next tile into L2 while it scores this one.
            const std::size_t next_tile_floats = std::min(next_tile_size, range_end - tile - tile_size) * items.block_floats();
            const std::size_t n_groups = (rows + kMaxRows - 1) / kMaxRows;
            for (std::size_t group = 0; group < rows; group += kMaxRows) {
                if (group_done[group / kMaxRows]) continue;
                const std::size_t group_rows = std::min(kMaxRows, rows - group);
                for (std::size_t r = 0; r < group_rows; ++r) {
                    s.thresholds[r] = lists[group + r].threshold();
                    if (ranges > 1) {
                        std::atomic<float>& bound = kth_bound[first + group + r];
                        raise_to(bound, s.thresholds[r]);
                        s.thresholds[r] = std::max(s.thresholds[r], bound.load(std::memory_order_relaxed));
                    }
                }
                std::size_t blocks = tile_size;
                if (prune) {
                    const std::size_t stop = first_unreachable_block(items, tile, tile + tile_size, s.thresholds.data(),
                                                                     s.query_norms.data() + group, group_rows);
                    if (stop < tile + tile_size) group_done[group / kMaxRows] = 1;
                    blocks = stop - tile;
                    if (blocks == 0) continue;
                }
                // The kernels read each row's eligibility in place: the words every row shares
                // (no exclusions), or the rows' bitmaps; only sorted exclusions need a copy.
                const std::uint32_t* group_eligible = allowed.data() + tile;
                std::size_t eligible_stride = 0;
                if (row_bitmaps) {
                    group_eligible = s.row_bits.data() + group * n_blocks + tile;
                    eligible_stride = n_blocks;
                } else if (sorted_exclusions) {
                    group_eligible = s.eligible.data();
                    eligible_stride = blocks;
                }
                for (std::size_t r = 0; r < group_rows; ++r) {
                    const std::size_t row = group + r;
                    s.rows[r] = input.queries + (first + row) * dim;
                    if (!sorted_exclusions) continue;
                    std::uint32_t* eligible = s.eligible.data() + r * blocks;
                    std::copy(allowed.begin() + tile, allowed.begin() + tile + blocks, eligible);
                    // Clear the bits of this row's excluded items that fall in this tile.
                    std::int64_t& cursor = s.cursors[row];
                    for (; cursor < row_ends[row] && s.excluded[cursor] < tile_end; ++cursor) {
                        const std::size_t offset = static_cast<std::size_t>(s.excluded[cursor]) - tile * kBlockItems;
                        if (offset < blocks * kBlockItems) eligible[offset / kBlockItems] &= ~(1u << (offset % kBlockItems));
                    }
                }
                // Screening pays only once the rows have a k-th best score to screen against:
                // while a list is not full, every item is a candidate and the float kernel's
                // register blocking scores them faster.
                bool screen_group = screen;
                for (std::size_t r = 0; r < group_rows && screen_group; ++r)
                    screen_group = s.thresholds[r] > -INFINITY;
                const bool pausing = screen_group && paused[group / kMaxRows];
                if (pausing) {
                    ++task_paused;
                    screen_group = false;
                }
                if (screen_group) {
                    for (std::size_t r = 0; r < group_rows; ++r) {
                        const screen::RowBound& bound = s.row_bounds[group + r];
                        s.byte_rows[r] = s.query_bytes.data() + (group + r) * groups * 4;
                        s.screen_a[r] = bound.a;
                        s.screen_b[r] = bound.b;
                        s.screen_t[r] = screen::screen_threshold(bound, s.thresholds[r], dim);
                    }
                    const std::size_t first_item = tile * kBlockItems;
                    kernels::ScreenJob sjob{s.byte_rows.data(),
                                            group_rows,
                                            items.int8_panels() + tile * items.int8_block_bytes(),
                                            blocks,
                                            groups,
                                            items.int8_offset() + first_item,
                                            items.int8_scale() + tile,
                                            items.norm_up() + tile,
                                            items.residual_up() + tile,
                                            s.screen_a.data(),
                                            s.screen_b.data(),
                                            s.screen_t.data(),
                                            group_eligible,
                                            eligible_stride,
                                            s.candidates.data(),
                                            s.block_rows.data()};
                    const std::size_t next_bytes = next_tile_floats / items.block_floats() * items.int8_block_bytes();
                    const std::size_t share = (next_bytes / n_groups + 63) / 64 * 64;
                    const std::size_t share_begin = std::min(next_bytes, group / kMaxRows * share);
                    sjob.prefetch = items.int8_panels() + (tile + tile_size) * items.int8_block_bytes() + share_begin;
                    sjob.prefetch_bytes = std::min(share, next_bytes - share_begin);
                    kernel.screen_tile(sjob);
                    // Rescore every flagged block in float32 exactly as the float kernel does,
                    // and push what the plain path would push: eligible items scoring >= T.
                    const std::uint32_t* const flags = s.candidates.data();
                    const float* const panels = items.panels() + tile * items.block_floats();
                    const std::size_t block_floats = items.block_floats();
                    std::size_t pairs = 0, singles = 0;
                    for (std::size_t b = 0; b < blocks; ++b) {
                        for (std::uint32_t rows_left = s.block_rows[b]; rows_left != 0; rows_left &= rows_left - 1) {
                            const std::size_t r = static_cast<std::size_t>(__builtin_ctz(rows_left));
                            const std::uint32_t found = flags[r * blocks + b];
                            const std::uint64_t count = bit_count(found);
                            task_candidates += count;
                            if (count <= kItemwiseAtMost) {
                                for (std::uint32_t bits = found; bits != 0; bits &= bits - 1) {
                                    const unsigned j = static_cast<unsigned>(__builtin_ctz(bits));
                                    s.item_row[singles] = static_cast<std::uint32_t>(r);
                                    s.item_position[singles] = static_cast<std::uint32_t>(b * kBlockItems + j);
                                    s.item_query[singles] = s.rows[r];
                                    s.item_column[singles] = panels + b * block_floats + j;
                                    ++singles;
                                }
                                continue;
                            }
                            s.pair_row[pairs] = static_cast<std::uint32_t>(r);
                            s.pair_block[pairs] = static_cast<std::uint32_t>(b);
                            s.pair_query[pairs] = s.rows[r];
                            s.pair_panel[pairs] = panels + b * block_floats;
                            s.pair_threshold[pairs] = s.thresholds[r];
                            ++pairs;
                        }
                    }
                    task_rescored += pairs;
                    task_items += singles;
                    // Rescoring reads 2d cache lines per flagged block and d per single item (its
                    // column), scattered; past a share of the tile, the float kernel's one
                    // streamed pass costs less. Screening then pauses for this group (below).
                    const double rescored_share = (static_cast<double>(pairs) + 0.5 * static_cast<double>(singles)) /
                                                  static_cast<double>(group_rows * blocks);
                    const std::size_t g = group / kMaxRows;
                    if (rescored_share > options.screen_rescore_share) {
                        pause_length[g] = std::min<std::uint32_t>(kLongestScreenPause, 2 * pause_length[g] + 1);
                        pause_left[g] = pause_length[g];
                        paused[g] = 1;
                    } else {
                        pause_length[g] = 0;
                    }
                    kernel.score_items(singles, s.item_query.data(), s.item_column.data(), dim, s.item_score.data());
                    for (std::size_t i = 0; i < singles; ++i) {
                        const std::size_t r = s.item_row[i];
                        if (s.item_score[i] >= s.thresholds[r])
                            lists[group + r].push(s.item_score[i], items.item_at(tile * kBlockItems + s.item_position[i]));
                    }
                    kernel.score_blocks(pairs, s.pair_query.data(), s.pair_panel.data(), s.pair_threshold.data(), dim,
                                 s.scores.data(), s.pair_above.data());
                    for (std::size_t i = 0; i < pairs; ++i) {
                        const std::size_t r = s.pair_row[i], b = s.pair_block[i];
                        TopKList& list = lists[group + r];
                        const float* pair_scores = s.scores.data() + i * kBlockItems;
                        for (std::uint32_t bits = s.pair_above[i] & group_eligible[r * eligible_stride + b]; bits != 0;
                             bits &= bits - 1) {
                            const unsigned j = static_cast<unsigned>(__builtin_ctz(bits));
                            list.push(pair_scores[j], items.item_at((tile + b) * kBlockItems + j));
                        }
                    }
                    continue;
                }
                kernels::TileJob job{s.rows.data(),
                                     group_rows,
                                     items.panels() + tile * items.block_floats(),
                                     blocks,
                                     dim,
                                     s.thresholds.data(),
                                     group_eligible,
                                     eligible_stride,
                                     s.scores.data(),
                                     s.candidates.data(),
                                     s.flagged.data(),
                                     flag_words,
                                     lse ? s.lse_max.data() + group : nullptr,
                                     lse ? s.lse_sum.data() + group : nullptr};
                const std::size_t share = (next_tile_floats / n_groups + 15) / 16 * 16;
                const std::size_t share_begin = std::min(next_tile_floats, group / kMaxRows * share);
                job.prefetch = items.panels() + (tile + tile_size) * items.block_floats() + share_begin;
                job.prefetch_floats = std::min(share, next_tile_floats - share_begin);
                kernel.score_tile(job);
                if (thin_first_tile && tile == range_begin) {
                    // Before any push: thin the first tile's candidates to those at or above the
                    // k-th largest lane maximum (see LaneMaximaFn).
                    kernel.lane_maxima(job, s.lane_maxima.data());
                    for (std::size_t r = 0; r < group_rows; ++r)
                        s.bounds[r] = kernel.kth_largest_lane(s.lane_maxima.data() + r * kBlockItems, k);
                    kernel.keep_at_least(job, s.bounds.data());
                }
                // The kernel's test is score >= threshold, so ties reach the list, which
                // orders them by the caller's item index whatever the scan order.
                std::uint64_t halves = 0;  // a paused group's would-be rescoring, in half blocks
                for (std::size_t r = 0; r < group_rows; ++r) {
                    TopKList& list = lists[group + r];
                    const float* row_scores = s.scores.data() + r * blocks * kBlockItems;
                    const std::uint32_t* row_candidates = s.candidates.data() + r * blocks;
                    std::uint64_t* row_flags = s.flagged.data() + r * flag_words;
                    for (std::size_t w = 0; w < (blocks + 63) / 64; ++w) {
                        for (std::uint64_t flags = row_flags[w]; flags != 0; flags &= flags - 1) {
                            const std::size_t b = w * 64 + static_cast<std::size_t>(__builtin_ctzll(flags));
                            if (pausing) halves += std::min<std::uint64_t>(bit_count(row_candidates[b]), 2);
                            for (std::uint32_t bits = row_candidates[b]; bits != 0; bits &= bits - 1) {
                                const unsigned j = static_cast<unsigned>(__builtin_ctz(bits));
                                list.push(row_scores[b * kBlockItems + j], items.item_at((tile + b) * kBlockItems + j));
                            }
                        }
                        row_flags[w] = 0;
                    }
                }
                // The blocks with exact candidates are a subset of those screening would flag, so
                // they bound its share from below: a pause lasts while they alone exceed the
                // limit, and at least its set length (1, 3, 7, 15 tiles as a resumed screen keeps
                // flagging too much; the k-th scores rise and the norms fall along the scan, so
                // the share falls). Results are the same either way.
                if (pausing) {
                    const std::size_t g = group / kMaxRows;
                    if (pause_left[g] > 0) --pause_left[g];
                    const double lower_share = 0.5 * static_cast<double>(halves) / static_cast<double>(group_rows * blocks);
                    if (pause_left[g] == 0 && lower_share <= options.screen_rescore_share) paused[g] = 0;
                }
            }
        }
        if (options.stats != nullptr && screen) {
            options.stats->candidates.fetch_add(task_candidates, std::memory_order_relaxed);
            options.stats->rescored_blocks.fetch_add(task_rescored, std::memory_order_relaxed);
            options.stats->rescored_items.fetch_add(task_items, std::memory_order_relaxed);
            options.stats->paused_tiles.fetch_add(task_paused, std::memory_order_relaxed);
            if (range == 0) options.stats->screened_queries.fetch_add(rows, std::memory_order_relaxed);
        }
        for (std::size_t r = 0; r < rows; ++r) {
            if (ranges > 1)
                lists[r].finish_unordered();  // the merge sorts each query's k best once
            else
                lists[r].sort_descending();
            if (!lse) continue;
            if (ranges > 1) {
                range_lse_max[range * n + first + r] = s.lse_max[r];
                range_lse_sum[range * n + first + r] = s.lse_sum[r];
            } else {
                output.logsumexp[first + r] =
                    logsumexp_of(s.lse_max[r], s.lse_sum[r], output.scores[(first + r) * k]);
            }
        }
    });
    if (cancelled.load()) return false;
    if (ranges == 1) return true;

    // Merge the ranges' lists per query: their keys (unordered) gathered, the k best selected
    // and sorted once (the order one scan gives: score, then lower index), rather than each
    // range sorting its own k and a merge of the sorted lists (two ranges sorted twice the keys
    // of one scan). And combine the log-sum-exp pairs: sum_j s_j exp(m_j - M) around the
    // largest m_j. Rows per merge task: up to 64, but at least one task per thread. A call is
    // split into ranges because it has few queries, and with a large k each row's merge is
    // long (one thread merging 41 rows of k = 100,000 would take longer than the ranges' search).
    const std::size_t merge_rows = std::clamp<std::size_t>((n + threads - 1) / threads, 1, 64);
    parallel_for((n + merge_rows - 1) / merge_rows, threads, [&](std::size_t, std::size_t task) {
        // The ranges' keys of a row and a selection's 2k (task_shape.cpp counts them in the
        // ranges' memory budget).
        std::vector<std::uint64_t> keys(ranges * k), scratch(2 * k);
        for (std::size_t row = task * merge_rows; row < std::min(n, (task + 1) * merge_rows); ++row) {
            for (std::size_t range = 0; range < ranges; ++range)
                std::memcpy(keys.data() + range * k, range_indices.get() + (range * n + row) * k,
                            k * sizeof(std::uint64_t));
            TopKList::best_of_keys(keys.data(), ranges * k, k, scratch.data(), output.scores + row * k,
                                   output.indices + row * k, kernel.split_keys);
            if (!lse) continue;
            float top = -INFINITY;
            for (std::size_t range = 0; range < ranges; ++range)
                if (range_lse_sum[range * n + row] > 0.0) top = std::max(top, range_lse_max[range * n + row]);
            double sum = 0.0;
            for (std::size_t range = 0; range < ranges; ++range)
                if (range_lse_sum[range * n + row] > 0.0)
                    sum += range_lse_sum[range * n + row] *
                           std::exp(static_cast<double>(range_lse_max[range * n + row]) - static_cast<double>(top));
            output.logsumexp[row] = logsumexp_of(top, sum, output.scores[row * k]);
        }
    });
    return true;
}

}  // namespace recbatch
