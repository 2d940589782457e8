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

#include <initializer_list>
#include <vector>

#include "kernels/intrinsics.hpp"
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

// Tile t has rows[t] rows of colsb[t] bytes; unlisted tiles stay unconfigured.
struct TileShape {
    int tile;
    std::size_t rows, bytes;
};
void configure(std::initializer_list<TileShape> shapes) {
    TileConfig config;
    for (const TileShape& shape : shapes) {
        config.rows[shape.tile] = static_cast<std::uint8_t>(shape.rows);
        config.colsb[shape.tile] = static_cast<std::uint16_t>(shape.bytes);
    }
    _tile_loadconfig(&config);
}

// The per-block test on sums stored row by row (row r: items 0-31 at 32 r), R rows unrolled.
template <int R>
void flag_rows(const ScreenJob& job, std::size_t blk, const std::int32_t* sums) {
    alignas(64) std::int32_t thresholds[16];
    block_thresholds(job, 0, R, blk, thresholds);
    const __m512i off_lo = _mm512_loadu_si512(job.offset + blk * kBlock);
    const __m512i off_hi = _mm512_loadu_si512(job.offset + blk * kBlock + 16);
    std::uint32_t any = 0;
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
        const __m512i lo = _mm512_add_epi32(_mm512_load_si512(sums + r * kBlock), off_lo);
        const __m512i hi = _mm512_add_epi32(_mm512_load_si512(sums + r * kBlock + 16), off_hi);
        any |= flag_row(job, static_cast<std::size_t>(r), blk, lo, hi, thresholds[r]) != 0 ? 1u << r : 0u;
    }
    job.block_rows[blk] = any;
}

void flag_block(const ScreenJob& job, std::size_t blk, const std::int32_t* sums) {
    switch (job.n_rows) {
        case 12: return flag_rows<12>(job, blk, sums);
        case 11: return flag_rows<11>(job, blk, sums);
        case 10: return flag_rows<10>(job, blk, sums);
        case 9: return flag_rows<9>(job, blk, sums);
        case 8: return flag_rows<8>(job, blk, sums);
        case 7: return flag_rows<7>(job, blk, sums);
        case 6: return flag_rows<6>(job, blk, sums);
        case 5: return flag_rows<5>(job, blk, sums);
        case 4: return flag_rows<4>(job, blk, sums);
        case 3: return flag_rows<3>(job, blk, sums);
        case 2: return flag_rows<2>(job, blk, sums);
        default: return flag_rows<1>(job, blk, sums);
    }
}

void prefetch_share(const ScreenJob& job, std::size_t blk) {
    const char* const ahead = reinterpret_cast<const char*>(job.prefetch);
    const std::size_t ahead_lines = job.prefetch_bytes / 64;
    const std::size_t per_block = (ahead_lines + job.n_blocks - 1) / job.n_blocks;
    const std::size_t last = (blk + 1) * per_block < ahead_lines ? (blk + 1) * per_block : ahead_lines;
    for (std::size_t line = blk * per_block; line < last; ++line) _mm_prefetch(ahead + 64 * line, _MM_HINT_T1);
}

// One block's products into a pair of sum tiles (items 0-15 and 16-31): query tiles 2 and
// (for a second chunk) 5, item tiles 3 and 4 reloaded per chunk; and the pair's store. The
// tile intrinsics paste their tile numbers into the instruction text, so they take literals:
// each pair gets its own copy of the two functions.
#define RECBATCH_SUM_TILE_PAIR(PAIR, LO, HI)                                                   \
    void multiply_##PAIR(const std::int8_t* panel, std::size_t chunk_bytes, bool two_chunks) { \
        _tile_zero(LO);                                                                        \
        _tile_zero(HI);                                                                        \
        _tile_loadd(3, panel, 4 * kBlock);                                                     \
        _tile_loadd(4, panel + 64, 4 * kBlock);                                                \
        _tile_dpbusd(LO, 2, 3);                                                                \
        _tile_dpbusd(HI, 2, 4);                                                                \
        if (two_chunks) {                                                                      \
            _tile_loadd(3, panel + chunk_bytes, 4 * kBlock);                                   \
            _tile_loadd(4, panel + chunk_bytes + 64, 4 * kBlock);                              \
            _tile_dpbusd(LO, 5, 3);                                                            \
            _tile_dpbusd(HI, 5, 4);                                                            \
        }                                                                                      \
    }                                                                                          \
    void store_##PAIR(std::int32_t* sums) {                                                    \
        _tile_stored(LO, sums, 4 * kBlock);                                                    \
        _tile_stored(HI, sums + 16, 4 * kBlock);                                               \
    }
RECBATCH_SUM_TILE_PAIR(even, 0, 1)
RECBATCH_SUM_TILE_PAIR(odd, 6, 7)
#undef RECBATCH_SUM_TILE_PAIR

// Up to 32 groups, split into one or two equal chunks: the query tiles stay loaded for the
// whole call, and the sums alternate between tiles 0, 1 and 6, 7, so that block b + 1's
// products run while block b's sums are stored and tested (a TDPBUSD's result comes tens of
// cycles after it issues; one set of sum tiles would wait for it every block).
void screen_resident(const ScreenJob& job, const std::uint8_t* queries, std::size_t stride) {
    const std::size_t rows = job.n_rows, groups = job.dim_groups;
    const bool two_chunks = groups > kChunk;
    const std::size_t chunk = two_chunks ? groups / 2 : groups, chunk_bytes = chunk * 4 * kBlock;
    configure({{0, rows, 64}, {1, rows, 64}, {6, rows, 64}, {7, rows, 64}, {2, rows, 4 * chunk},
               {5, two_chunks ? rows : 0, two_chunks ? 4 * chunk : 0}, {3, chunk, 64}, {4, chunk, 64}});
    _tile_loadd(2, queries, stride);
    if (two_chunks) _tile_loadd(5, queries + 4 * chunk, stride);
    alignas(64) std::int32_t sums[kMaxRows * kBlock];
    const std::size_t block_bytes = groups * 4 * kBlock;
    multiply_even(job.panels, chunk_bytes, two_chunks);
    for (std::size_t blk = 0; blk < job.n_blocks; ++blk) {
        prefetch_share(job, blk);
        const bool next = blk + 1 < job.n_blocks;
        const std::int8_t* next_panel = job.panels + (blk + 1) * block_bytes;
        if (blk % 2 == 0) {
            if (next) multiply_odd(next_panel, chunk_bytes, two_chunks);
            store_even(sums);
        } else {
            if (next) multiply_even(next_panel, chunk_bytes, two_chunks);
            store_odd(sums);
        }
        flag_block(job, blk, sums);
    }
}

// Any dimension: chunks of 16 groups through tiles 2, 3, 4 and the short last one through
// 5, 6, 7, every block, into sum tiles 0 and 1.
void screen_streamed(const ScreenJob& job, const std::uint8_t* queries, std::size_t stride) {
    const std::size_t rows = job.n_rows, groups = job.dim_groups;
    const std::size_t full = groups / kChunk, tail = groups % kChunk, chunk_bytes = kChunk * 4 * kBlock;
    configure({{0, rows, 64}, {1, rows, 64}, {2, rows, 64}, {3, kChunk, 64}, {4, kChunk, 64},
               {5, tail > 0 ? rows : 0, 4 * tail}, {6, tail, tail > 0 ? 64u : 0u}, {7, tail, tail > 0 ? 64u : 0u}});
    alignas(64) std::int32_t sums[kMaxRows * kBlock];
    for (std::size_t blk = 0; blk < job.n_blocks; ++blk) {
        prefetch_share(job, blk);
        const std::int8_t* panel = job.panels + blk * groups * 4 * kBlock;
        _tile_zero(0);
        _tile_zero(1);
        for (std::size_t c = 0; c < full; ++c) {
            _tile_loadd(2, queries + c * 4 * kChunk, stride);
            _tile_loadd(3, panel + c * chunk_bytes, 4 * kBlock);
            _tile_loadd(4, panel + c * chunk_bytes + 64, 4 * kBlock);
            _tile_dpbusd(0, 2, 3);
            _tile_dpbusd(1, 2, 4);
        }
        if (tail > 0) {
            _tile_loadd(5, queries + full * 4 * kChunk, stride);
            _tile_loadd(6, panel + full * chunk_bytes, 4 * kBlock);
            _tile_loadd(7, panel + full * chunk_bytes + 64, 4 * kBlock);
            _tile_dpbusd(0, 5, 6);
            _tile_dpbusd(1, 5, 7);
        }
        store_even(sums);
        flag_block(job, blk, sums);
    }
}

}  // namespace

void screen_tile(const ScreenJob& job) {
    const std::size_t rows = job.n_rows, groups = job.dim_groups;
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
    // Two equal chunks need an even number of groups: their item tiles share one shape.
    if (groups <= kChunk || (groups <= 2 * kChunk && groups % 2 == 0))
        screen_resident(job, query_base, query_stride);
    else
        screen_streamed(job, query_base, query_stride);
    _tile_release();
}

}  // namespace recbatch::kernels::amx_int8
