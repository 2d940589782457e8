// How close the float32 search comes to the kernel and to the machine, measured in a way a
// shared machine cannot fool: in one process, in turns, (1) the whole search on the avx512
// float path, (2) the bare micro-kernel over one L2-resident tile whose thresholds admit no
// candidate (the same flops: what the search would take with free selection and memory),
// and (3) a register-only FMA loop (the peak). Other processes only ever slow a run down, so
// the best of `repeat` turns of each is what the code does on a quiet core; their ratios are
// the shares. (The medians, which efficiency.py reports, move by 10-40% here between minutes.)
//
//   cmake -S cpp -B build/cpp -DCMAKE_BUILD_TYPE=Release -DRECBATCH_BUILD_BENCHMARKS=ON
//   cmake --build build/cpp -j 2
//   build/cpp/search_share W3 [queries] [repeat] [threads]
//
// Prints a markdown row: workload, queries, threads, FMA peak, bare kernel and search GFLOP/s
// (with their shares of the peak), and search / bare kernel.
// Gaussian queries and items of the workload's m, d, k (W1: 100,000 items, d 64, k 25; W2:
// 1,000,000, 128, 100; W3: 20,000, 32, 10). Needs an AVX-512 CPU.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_args.hpp"
#include "kernels/intrinsics.hpp"  // <immintrin.h> without GCC 12's false warnings
#include "kernels/score_tile.hpp"
#include "recbatch/search.hpp"

namespace {

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Twelve independent FMA chains: latency 4 x two ports, the most one core can issue.
float fma_spin(long iterations) {
    __m512 acc[12];
    for (int j = 0; j < 12; ++j) acc[j] = _mm512_set1_ps(0.001f * static_cast<float>(j));
    const __m512 mul = _mm512_set1_ps(0.9999999f), inc = _mm512_set1_ps(1e-7f);
    for (long i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
        for (int j = 0; j < 12; ++j) acc[j] = _mm512_fmadd_ps(acc[j], mul, inc);
    }
    __m512 sum = acc[0];
    for (int j = 1; j < 12; ++j) sum = _mm512_add_ps(sum, acc[j]);
    return _mm512_reduce_add_ps(sum);
}

template <class Work>
double timed_on_threads(std::size_t threads, Work work) {
    const double start = now();
    std::vector<std::thread> pool;
    for (std::size_t t = 0; t < threads; ++t) pool.emplace_back(work, t);
    for (auto& thread : pool) thread.join();
    return now() - start;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace recbatch;
    if (argc < 2 || !simd_level_available(SimdLevel::avx512)) {
        std::fprintf(stderr, "usage: %s W1|W2|W3 [queries] [repeat] [threads]  (needs AVX-512)\n", argv[0]);
        return 2;
    }
    const bench::Args args = bench::parse_args(argc, argv, 15);
    const std::string& shape = args.shape;
    const std::size_t m = args.m, d = args.d, k = args.k, n = args.n, threads = args.threads;
    const int repeat = args.repeat;

    std::mt19937 generator(1);
    std::normal_distribution<float> normal;
    std::vector<float> items(m * d), queries(n * d);
    for (float& x : items) x = normal(generator);
    for (float& x : queries) x = normal(generator);
    const PackedItems packed(items.data(), m, d, false);
    std::vector<std::int64_t> indices(n * k);
    std::vector<float> scores(n * k);
    SearchInput input;
    input.queries = queries.data();
    input.n_queries = n;
    SearchOptions options;
    options.k = k;
    options.threads = threads;
    options.level = SimdLevel::avx512;
    SearchOutput output;
    output.indices = indices.data();
    output.scores = scores.data();

    // The bare kernel: each thread sweeps its own 256 KiB tile with 12 query rows, as often
    // as it takes to do its share of the search's flops.
    const std::size_t tile = std::max<std::size_t>(1, 256 * 1024 / (d * kBlockItems * sizeof(float)));
    const double flops = 2.0 * static_cast<double>(n) * static_cast<double>(m) * static_cast<double>(d);
    const auto calls = static_cast<std::size_t>(flops / (2.0 * 12 * tile * kBlockItems * d * threads));
    const long spins = static_cast<long>(flops / (2.0 * 12 * 16 * threads));
    const auto bare_kernel = [&](std::size_t t) {
        const float* rows[12];
        for (std::size_t r = 0; r < 12; ++r) rows[r] = queries.data() + r * d;
        std::vector<float> thresholds(12, INFINITY), tile_scores(12 * tile * kBlockItems);
        std::vector<std::uint32_t> eligible(12 * tile, ~0u), candidates(12 * tile);
        std::vector<std::uint64_t> flagged(12 * ((tile + 63) / 64));
        kernels::TileJob job{};
        job.queries = rows;
        job.n_rows = 12;
        job.panels = packed.panels() + (t * tile % packed.n_blocks()) * packed.block_floats();
        job.n_blocks = std::min(tile, packed.n_blocks() - t * tile % packed.n_blocks());
        job.dim = d;
        job.thresholds = thresholds.data();
        job.eligible = eligible.data();
        job.eligible_stride = tile;
        job.scores = tile_scores.data();
        job.candidates = candidates.data();
        job.flagged = flagged.data();
        job.flag_words = (tile + 63) / 64;
        for (std::size_t c = 0; c < calls; ++c) kernels::avx512::score_tile(job);
    };
    volatile float sink = 0.0f;
    double best_search = INFINITY, best_kernel = INFINITY, best_peak = INFINITY;
    for (int turn = 0; turn < repeat; ++turn) {
        const double start = now();
        search(packed, input, options, output);
        best_search = std::min(best_search, now() - start);
        best_kernel = std::min(best_kernel, timed_on_threads(threads, bare_kernel));
        best_peak = std::min(best_peak, timed_on_threads(threads, [&](std::size_t) { sink = sink + fma_spin(spins); }));
    }
    const double peak = flops / best_peak / 1e9, kernel = flops / best_kernel / 1e9, whole = flops / best_search / 1e9;
    std::printf("| %s | %zu | %zu | %.0f | %.0f (%.0f%%) | %.0f (%.0f%%) | %.2f |\n", shape.c_str(), n, threads, peak, kernel,
                100 * kernel / peak, whole, 100 * whole / peak, whole / kernel);
    return 0;
}
