// AMX screening kernel (compiled with -mamx-tile -mamx-int8 and the AVX-512 flags; run only
// where the CPU has them and Linux granted the tile state, see simd_level.cpp). It computes
// what the AVX512-VNNI kernel computes (ScreenJob in score_tile.hpp), on the tile unit.
//
// One TDPBUSD multiplies a rows x 64-byte tile of query bytes (16 groups of 4 dimensions per
// row) by a 16 x 64-byte tile of item bytes (16 groups x 16 items x 4 bytes) into rows x 16
// int32 sums: 12 x 16 x 64 multiply-adds in one instruction, where vpdpbusd does 64. The
// int8 panels already hold each group's 32 items as 128 contiguous bytes, so a block's two
// item tiles (items 0-15 and 16-31) load straight from them with a 128-byte row stride.
// The sums are exact int32 like vpdpbusd's (the offsets are added after, which in wrapping
// integer arithmetic gives the same bits), so both kernels flag the same items.
#include <immintrin.h>

#include <vector>

#include "kernels/score_tile.hpp"
#include "kernels/screen_test_avx512.hpp"

namespace recbatch::kernels::amx_int8 {
namespace {

constexpr std::size_t kBlock = 32;
constexpr std::size_t kChunk = 16;  // groups of 4 bytes in a 64-byte tile row

// The LDTILECFG operand: tile t has rows[t] rows of colsb[t] bytes.
struct alignas(64) TileConfig {
    std::uint8_t palette = 1;
    std::uint8_t start_row = 0;
    std::uint8_t reserved[14] = {};
    std::uint16_t colsb[16] = {};
    std::uint8_t rows[16] = {};
};

// Tiles 0 and 1: the sums for items 0-15 and 16-31. The query bytes and a block's items go
// through two slots, each a query tile and two item tiles (items 0-15 / 16-31): slot 0 is
// tiles 2, 3, 4 and slot 1 tiles 5, 6, 7, of first_groups and second_groups groups.
void configure(std::size_t rows, std::size_t first_groups, std::size_t second_groups) {
    TileConfig config;
    const auto r = static_cast<std::uint8_t>(rows);
    for (int t : {0, 1}) config.rows[t] = r, config.colsb[t] = 64;
    const std::size_t slot_groups[2] = {first_groups, second_groups};
    for (int slot = 0; slot < 2; ++slot) {
        if (slot_groups[slot] == 0) continue;
        const int query_tile = 2 + 3 * slot;
        config.rows[query_tile] = r;
        config.colsb[query_tile] = static_cast<std::uint16_t>(4 * slot_groups[slot]);
        for (int t : {query_tile + 1, query_tile + 2})
            config.rows[t] = static_cast<std::uint8_t>(slot_groups[slot]), config.colsb[t] = 64;
    }
    _tile_loadconfig(&config);
}

}  // namespace

void screen_tile(const ScreenJob& job) {
    const std::size_t rows = job.n_rows, groups = job.dim_groups, n_blocks = job.n_blocks;
    const std::size_t full = groups / kChunk, tail = groups % kChunk;
    // The query tile's rows must sit one stride apart: the driver's do; any others are copied.
    const std::size_t query_stride = groups * 4;
    const std::uint8_t* query_base = job.queries[0];
    std::vector<std::uint8_t> copied;
    for (std::size_t r = 1; r < rows; ++r) {
        if (job.queries[r] == query_base + r * query_stride) continue;
        copied.resize(rows * query_stride);
        for (std::size_t q = 0; q < rows; ++q)
            for (std::size_t i = 0; i < query_stride; ++i) copied[q * query_stride + i] = job.queries[q][i];
        query_base = copied.data();
        break;
    }
    // Chunks of 16 groups, the last one shorter. Up to two chunks (d <= 128) the query tiles
    // stay loaded for the whole call, one per slot; beyond, slot 0 takes every full chunk in
    // turn and slot 1 the short one.
    const std::size_t chunks = full + (tail > 0 ? 1 : 0);
    const bool resident = chunks <= 2;
    const std::size_t first_groups = full > 0 ? kChunk : tail;
    const std::size_t second_groups = resident ? (chunks == 2 ? groups - kChunk : 0) : tail;
    configure(rows, first_groups, second_groups);
    if (resident) {
        _tile_loadd(2, query_base, query_stride);
        if (chunks == 2) _tile_loadd(5, query_base + 4 * kChunk, query_stride);
    }
    const char* const ahead = reinterpret_cast<const char*>(job.prefetch);
    const std::size_t ahead_lines = job.prefetch_bytes / 64;
    const std::size_t lines_per_block = (ahead_lines + n_blocks - 1) / n_blocks;
    alignas(64) std::int32_t sums[kMaxRows * kBlock];  // row r: items 0-31 at 32 r
    alignas(64) std::int32_t thresholds[16];
    constexpr std::size_t kChunkBytes = kChunk * 4 * kBlock;  // a chunk of a block's items
    for (std::size_t blk = 0; blk < n_blocks; ++blk) {
        const std::size_t last_line = (blk + 1) * lines_per_block < ahead_lines ? (blk + 1) * lines_per_block : ahead_lines;
        for (std::size_t line = blk * lines_per_block; line < last_line; ++line)
            _mm_prefetch(ahead + 64 * line, _MM_HINT_T1);
        const std::int8_t* panel = job.panels + blk * groups * 4 * kBlock;
        _tile_zero(0);
        _tile_zero(1);
        if (resident) {
            _tile_loadd(3, panel, 4 * kBlock);
            _tile_loadd(4, panel + 64, 4 * kBlock);
            _tile_dpbusd(0, 2, 3);
            _tile_dpbusd(1, 2, 4);
            if (chunks == 2) {
                _tile_loadd(6, panel + kChunkBytes, 4 * kBlock);
                _tile_loadd(7, panel + kChunkBytes + 64, 4 * kBlock);
                _tile_dpbusd(0, 5, 6);
                _tile_dpbusd(1, 5, 7);
            }
        } else {
            for (std::size_t c = 0; c < full; ++c) {
                _tile_loadd(2, query_base + c * 4 * kChunk, query_stride);
                _tile_loadd(3, panel + c * kChunkBytes, 4 * kBlock);
                _tile_loadd(4, panel + c * kChunkBytes + 64, 4 * kBlock);
                _tile_dpbusd(0, 2, 3);
                _tile_dpbusd(1, 2, 4);
            }
            if (tail > 0) {
                _tile_loadd(5, query_base + full * 4 * kChunk, query_stride);
                _tile_loadd(6, panel + full * kChunkBytes, 4 * kBlock);
                _tile_loadd(7, panel + full * kChunkBytes + 64, 4 * kBlock);
                _tile_dpbusd(0, 5, 6);
                _tile_dpbusd(1, 5, 7);
            }
        }
        _tile_stored(0, sums, 4 * kBlock);
        _tile_stored(1, sums + 16, 4 * kBlock);
        block_thresholds(job, 0, rows, blk, thresholds);
        const std::size_t item = blk * kBlock;
        const __m512i off_lo = _mm512_loadu_si512(job.offset + item);
        const __m512i off_hi = _mm512_loadu_si512(job.offset + item + 16);
        std::uint32_t any = 0;
        for (std::size_t r = 0; r < rows; ++r) {
            const __m512i lo = _mm512_add_epi32(_mm512_load_si512(sums + r * kBlock), off_lo);
            const __m512i hi = _mm512_add_epi32(_mm512_load_si512(sums + r * kBlock + 16), off_hi);
            any |= static_cast<std::uint32_t>(flag_row(job, r, blk, lo, hi, thresholds[r]) != 0) << r;
        }
        job.block_rows[blk] = any;
    }
    _tile_release();
}

}  // namespace recbatch::kernels::amx_int8
