// The int8 screening kernels, called directly, against an exact reference: for random tiles of
// every shape the kernels handle differently (dimension groups 1-80: the AMX kernel's one chunk,
// two equal chunks, chunks of 16 with a short last one; 1-12 rows: the row chunks of the vpdpbusd
// and vpmaddubsw loops), query rows given in any order in memory (the AMX kernel copies rows that
// are not one stride apart), each kernel's block rows must be exactly the rows with an eligible
// item reaching the threshold, their candidate words exactly those items, and every other
// candidate word untouched. The avx2_int8 kernel gets 6-bit query bytes (its contract) and starts
// from a quarter of the offset. Half of the tiles have a = b = 0 and scale 1 (threshold floor(t), exact);
// the other half random bound constants, where a kernel's threshold may sit one below the exact
// floor((t - a N - b R) / s) (directed or double rounding must only ever lower it), never above.
// Thresholds are drawn around the true sums so that both flagged and unflagged items occur.
// Each kernel runs where the CPU has it.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "kernels/score_tile.hpp"
#include "recbatch/simd_level.hpp"

namespace {

struct Aligned {  // 64-byte aligned bytes, as the int8 panels are
    explicit Aligned(std::size_t n) : data(static_cast<std::int8_t*>(std::aligned_alloc(64, (n + 63) / 64 * 64))) {}
    ~Aligned() { std::free(data); }
    std::int8_t* data;
};

constexpr std::uint32_t kStale = 0xdeadbeefu;  // candidate words a kernel must leave alone
std::uint64_t flagged_bits = 0, tested_bits = 0;  // both kinds must occur, or the test proves little

struct Kernel {
    const char* name;
    recbatch::kernels::ScreenTileFn screen_tile;
    int max_query_byte;  // 255 (any byte) or 63 (avx2_int8's 6-bit queries)
    int offset_shift;    // the kernel starts from offset >> offset_shift
};

int check(std::mt19937& rng, const Kernel& kernel, std::size_t rows, std::size_t groups, std::size_t blocks,
          bool exact_threshold) {
    using namespace recbatch::kernels;
    std::uniform_int_distribution<int> byte(0, 255), query_byte(0, kernel.max_query_byte);
    Aligned panels(blocks * groups * 128);
    for (std::size_t i = 0; i < blocks * groups * 128; ++i) panels.data[i] = static_cast<std::int8_t>(byte(rng) - 128);
    // Rows stored in reverse order with a gap: never one stride apart.
    std::vector<std::uint8_t> store(rows * (groups * 4 + 8));
    for (auto& x : store) x = static_cast<std::uint8_t>(query_byte(rng));
    std::vector<const std::uint8_t*> queries(rows);
    for (std::size_t r = 0; r < rows; ++r) queries[r] = store.data() + (rows - 1 - r) * (groups * 4 + 8);
    std::vector<std::int32_t> offset(blocks * 32);
    for (std::size_t j = 0; j < offset.size(); ++j) {
        std::int32_t sum = 0;
        for (std::size_t g = 0; g < groups * 4; ++g) sum += panels.data[(j / 32) * groups * 128 + (g / 4) * 128 + (j % 32) * 4 + g % 4];
        offset[j] = -128 * sum;
    }
    std::vector<float> scale(blocks, 1.0f), norm(blocks, 1.0f), residual(blocks, 1.0f), a(16, 0.0f), b(16, 0.0f), t(16);
    std::normal_distribution<float> spread(0.0f, 1.0f);
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    const float typical = 12.0f * static_cast<float>(kernel.max_query_byte) * static_cast<float>(groups);
    for (auto& x : t) x = spread(rng) * typical;
    if (!exact_threshold) {
        for (std::size_t blk = 0; blk < blocks; ++blk) {
            scale[blk] = 0.5f + 1.5f * uniform(rng);
            norm[blk] = 50.0f * uniform(rng);
            residual[blk] = 50.0f * uniform(rng);
        }
        for (auto& x : a) x = 10.0f * uniform(rng);
        for (auto& x : b) x = 10.0f * uniform(rng);
    }
    // One row of eligibility words per row, or (a third of the tiles) one shared by every row.
    const std::size_t stride = rng() % 3 == 0 ? 0 : blocks;
    std::vector<std::uint32_t> eligible(stride == 0 ? blocks : rows * blocks);
    for (auto& x : eligible) x = static_cast<std::uint32_t>(rng()) | static_cast<std::uint32_t>(rng());
    // The reference: D = sum of (query byte) x (item byte) + (offset >> shift), exact in 64 bits;
    // X = (t - a N - b R) / s in long double (whose 64-bit significand holds the float products
    // exactly, and rounds the rest far below the one step of slack allowed). Item j of block b
    // must be flagged when D >= floor(X) and it is eligible, may be when D >= floor(X) - 1.
    std::vector<std::uint32_t> must(rows * blocks, 0), may(rows * blocks, 0), want_rows(blocks, 0), may_rows(blocks, 0);
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t blk = 0; blk < blocks; ++blk) {
            const long double x = (static_cast<long double>(t[r]) - static_cast<long double>(a[r]) * norm[blk] -
                                   static_cast<long double>(b[r]) * residual[blk]) /
                                  scale[blk];
            const auto floor_x = static_cast<std::int64_t>(std::floor(x));
            const std::int64_t lowest = exact_threshold ? floor_x : floor_x - 1;
            for (std::size_t j = 0; j < 32; ++j) {
                std::int64_t sum = offset[blk * 32 + j] >> kernel.offset_shift;
                for (std::size_t g = 0; g < groups * 4; ++g)
                    sum += std::int64_t{queries[r][g]} * panels.data[blk * groups * 128 + (g / 4) * 128 + j * 4 + g % 4];
                if (((eligible[r * stride + blk] >> j) & 1u) == 0) continue;
                if (sum >= floor_x) must[r * blocks + blk] |= 1u << j;
                if (sum >= lowest) may[r * blocks + blk] |= 1u << j;
            }
            if (must[r * blocks + blk] != 0) want_rows[blk] |= 1u << r;
            if (may[r * blocks + blk] != 0) may_rows[blk] |= 1u << r;
        }
    for (std::uint32_t word : must) flagged_bits += static_cast<std::uint64_t>(__builtin_popcount(word));
    tested_bits += 32 * must.size();
    std::vector<std::uint32_t> candidates(rows * blocks, kStale), block_rows(blocks, 0);
    ScreenJob job{queries.data(), rows,         panels.data,     blocks,          groups,
                  offset.data(),  scale.data(), norm.data(),     residual.data(), a.data(),
                  b.data(),       t.data(),     eligible.data(), stride,          candidates.data(),
                  block_rows.data()};
    kernel.screen_tile(job);
    bool ok = true;
    for (std::size_t blk = 0; blk < blocks; ++blk)
        ok = ok && (block_rows[blk] & want_rows[blk]) == want_rows[blk] && (block_rows[blk] & ~may_rows[blk]) == 0;
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t blk = 0; blk < blocks; ++blk) {
            const std::size_t at = r * blocks + blk;
            const bool row_flagged = ((block_rows[blk] >> r) & 1u) != 0;
            const std::uint32_t got = candidates[at];
            ok = ok && (row_flagged ? (got & must[at]) == must[at] && (got & ~may[at]) == 0 && got != 0 : got == kStale);
        }
    if (!ok) {
        std::fprintf(stderr, "FAIL %s rows %zu groups %zu blocks %zu %s threshold\n", kernel.name, rows, groups, blocks,
                     exact_threshold ? "exact" : "random");
        return 1;
    }
    return 0;
}

}  // namespace

int main() {
    using namespace recbatch;
    std::vector<Kernel> kernels;
    if (simd_level_available(SimdLevel::avx2_int8)) kernels.push_back({"avx2_int8", kernels::avx2_int8::screen_tile, 63, 2});
#ifdef RECBATCH_HAVE_AVXVNNI
    if (simd_level_available(SimdLevel::avx2_vnni)) kernels.push_back({"avx2_vnni", kernels::avx2_vnni::screen_tile, 255, 0});
#endif
    if (simd_level_available(SimdLevel::avx512_vnni))
        kernels.push_back({"avx512_vnni", kernels::avx512_vnni::screen_tile, 255, 0});
#ifdef RECBATCH_HAVE_AMX
    if (simd_level_available(SimdLevel::amx_int8)) kernels.push_back({"amx_int8", kernels::amx_int8::screen_tile, 255, 0});
#endif
    std::mt19937 rng(7);
    int failures = 0;
    for (const Kernel& kernel : kernels) {
        flagged_bits = tested_bits = 0;
        for (std::size_t groups = 1; groups <= 80; ++groups)
            for (std::size_t rows : {1, 2, 3, 5, 12})
                failures += check(rng, kernel, rows, groups, 1 + rng() % 40, (groups + rows) % 2 == 0);
        if (flagged_bits * 10 < tested_bits || flagged_bits * 10 > tested_bits * 9) {
            std::fprintf(stderr, "FAIL %s: thresholds flag %llu of %llu items, not a mix\n", kernel.name,
                         static_cast<unsigned long long>(flagged_bits), static_cast<unsigned long long>(tested_bits));
            ++failures;
        }
        std::printf("%s: flagged %llu of %llu\n", kernel.name, static_cast<unsigned long long>(flagged_bits),
                    static_cast<unsigned long long>(tested_bits));
    }
    std::printf("%d failed\n", failures);
    return failures == 0 ? 0 : 1;
}
