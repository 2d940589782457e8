// The two int8 screening kernels, called directly, against an exact integer reference: for
// random tiles of every shape the AMX kernel handles differently (dimension groups 1-80: one
// chunk, two equal chunks, chunks of 16 with a short last one), 1-12 rows, query rows given in
// any order in memory (the AMX kernel copies rows that are not one stride apart), each
// kernel's block rows must be exactly the rows with an eligible item reaching the threshold,
// their candidate words exactly those items, and every other candidate word untouched.
// Thresholds are drawn around the true sums so that both flagged and unflagged items occur.
// Skips (and passes) where the CPU has no AMX.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <utility>
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

int check(std::mt19937& rng, std::size_t rows, std::size_t groups, std::size_t blocks) {
    using namespace recbatch::kernels;
    std::uniform_int_distribution<int> byte(0, 255);
    Aligned panels(blocks * groups * 128);
    for (std::size_t i = 0; i < blocks * groups * 128; ++i) panels.data[i] = static_cast<std::int8_t>(byte(rng) - 128);
    // Rows stored in reverse order with a gap: never one stride apart.
    std::vector<std::uint8_t> store(rows * (groups * 4 + 8));
    for (auto& x : store) x = static_cast<std::uint8_t>(byte(rng));
    std::vector<const std::uint8_t*> queries(rows);
    for (std::size_t r = 0; r < rows; ++r) queries[r] = store.data() + (rows - 1 - r) * (groups * 4 + 8);
    std::vector<std::int32_t> offset(blocks * 32);
    for (std::size_t j = 0; j < offset.size(); ++j) {
        std::int32_t sum = 0;
        for (std::size_t g = 0; g < groups * 4; ++g) sum += panels.data[(j / 32) * groups * 128 + (g / 4) * 128 + (j % 32) * 4 + g % 4];
        offset[j] = -128 * sum;
    }
    // With a = b = 0 and scale 1 the threshold is floor(t): draw t around each row's typical sum.
    std::vector<float> scale(blocks, 1.0f), norm(blocks, 1.0f), residual(blocks, 1.0f), a(16, 0.0f), b(16, 0.0f), t(16);
    std::normal_distribution<float> spread(0.0f, 1.0f);
    for (auto& x : t) x = spread(rng) * 3000.0f * static_cast<float>(groups);
    // One row of eligibility words per row, or (a third of the tiles) one shared by every row.
    const std::size_t stride = rng() % 3 == 0 ? 0 : blocks;
    std::vector<std::uint32_t> eligible(stride == 0 ? blocks : rows * blocks);
    for (auto& x : eligible) x = static_cast<std::uint32_t>(rng()) | static_cast<std::uint32_t>(rng());
    // The reference: D = sum of (query byte) x (item byte) + offset, exact in 64 bits; item j of
    // block b is flagged when D >= floor(t) and it is eligible.
    std::vector<std::uint32_t> want(rows * blocks, 0), want_rows(blocks, 0);
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t blk = 0; blk < blocks; ++blk)
            for (std::size_t j = 0; j < 32; ++j) {
                std::int64_t sum = offset[blk * 32 + j];
                for (std::size_t g = 0; g < groups * 4; ++g)
                    sum += std::int64_t{queries[r][g]} * panels.data[blk * groups * 128 + (g / 4) * 128 + j * 4 + g % 4];
                if (sum >= static_cast<std::int64_t>(std::floor(t[r])) && ((eligible[r * stride + blk] >> j) & 1u) != 0)
                    want[r * blocks + blk] |= 1u << j;
            }
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t blk = 0; blk < blocks; ++blk)
            if (want[r * blocks + blk] != 0) want_rows[blk] |= 1u << r;
    for (std::uint32_t word : want) flagged_bits += static_cast<std::uint64_t>(__builtin_popcount(word));
    tested_bits += 32 * want.size();
    int failures = 0;
    for (const auto& [name, screen_tile] : {std::pair{"avx512_vnni", avx512_vnni::screen_tile},
                                            std::pair{"amx_int8", amx_int8::screen_tile}}) {
        std::vector<std::uint32_t> candidates(rows * blocks, kStale), block_rows(blocks, 0);
        ScreenJob job{queries.data(), rows,         panels.data,     blocks,   groups,
                      offset.data(),  scale.data(), norm.data(),     residual.data(), a.data(),
                      b.data(),       t.data(),     eligible.data(), stride,         candidates.data(),
                      block_rows.data()};
        screen_tile(job);
        bool ok = block_rows == want_rows;
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t blk = 0; blk < blocks; ++blk) {
                const std::uint32_t got = candidates[r * blocks + blk], expected = want[r * blocks + blk];
                ok = ok && (expected != 0 ? got == expected : got == kStale);
            }
        if (!ok) {
            std::fprintf(stderr, "FAIL %s rows %zu groups %zu blocks %zu\n", name, rows, groups, blocks);
            ++failures;
        }
    }
    return failures;
}

}  // namespace

int main() {
    if (recbatch::detected_simd_level() < recbatch::SimdLevel::amx_int8) {
        std::printf("no AMX here: skipped\n0 failed\n");
        return 0;
    }
    std::mt19937 rng(7);
    int failures = 0;
    for (std::size_t groups = 1; groups <= 80; ++groups)
        for (std::size_t rows : {1, 5, 12}) failures += check(rng, rows, groups, 1 + rng() % 40);
    if (flagged_bits == 0 || flagged_bits * 10 > tested_bits * 9) {
        std::fprintf(stderr, "FAIL thresholds flag %llu of %llu items: not a mix\n",
                     static_cast<unsigned long long>(flagged_bits), static_cast<unsigned long long>(tested_bits));
        ++failures;
    }
    std::printf("flagged %llu of %llu\n", static_cast<unsigned long long>(flagged_bits),
                static_cast<unsigned long long>(tested_bits));
    std::printf("%d failed\n", failures);
    return failures == 0 ? 0 : 1;
}
