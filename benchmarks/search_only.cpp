// The whole search alone, best of N, for A/B comparisons of two builds on a shared machine:
// build both, then run them in alternation (old, new, old, new, ...) and compare the best
// times; perf of one run shows where the time goes (kernel against driver), which the other
// processes on the machine cannot move.
//
//   cmake -S cpp -B build/cpp -DCMAKE_BUILD_TYPE=Release -DRECBATCH_BUILD_BENCHMARKS=ON
//   cmake --build build/cpp -j 2
//   build/cpp/search_only W3 [queries] [repeat] [threads] [options]
//
// Options (any of, comma-separated): level=scalar|avx2|avx2_int8|avx2_vnni|avx512|avx512_vnni|amx_int8 (default:
// the widest this CPU runs), logsumexp, exclude (100 random items per query) or exclude=N,
// bitmap_bytes=N (SearchOptions::exclusion_bitmap_bytes; 0: sorted exclusions), bitmap_rows_from=N
// (SearchOptions::exclusion_bitmap_rows_from; 0: bitmaps whatever the count), unit (items
// scaled to unit norm, as the cosine index of related items), item_queries (queries are random
// items, each excluding itself after any other exclusions: a related-items job). Gaussian queries
// and items of the workload's shape (bench_args.hpp), which m=N, d=N and k=N override; spread=S
// gives the items log-normal norms (sigma S); rescore_share=X sets
// SearchOptions::screen_rescore_share (inf: never pause screening), buffer_from=N
// SearchOptions::top_k_buffer_from. Prints the best time and
// its effective GFLOP/s (2 n m d / time).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "bench_args.hpp"
#include "recbatch/search.hpp"

namespace {

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool has_option(const std::string& options, const std::string& name) {
    return ("," + options + ",").find("," + name + ",") != std::string::npos;
}

// The value of option "name=value", or "" where it is not given.
std::string option_value(const std::string& options, const std::string& name) {
    const std::string key = name + "=";
    const std::size_t at = ("," + options).find("," + key);
    if (at == std::string::npos) return "";
    const std::size_t begin = at + key.size(), end = options.find(',', begin);
    return options.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

recbatch::SimdLevel level_option(const std::string& options) {
    const std::string level = option_value(options, "level");
    return level.empty() ? recbatch::detected_simd_level() : recbatch::parse_simd_level(level);
}

}  // namespace

int main(int argc, char** argv) {
    using namespace recbatch;
    if (argc < 2) {
        std::fprintf(stderr,
                     "usage: %s W1|W2|W3 [queries] [repeat] [threads] "
                     "[level=...,logsumexp,exclude[=N],bitmap_bytes=N,bitmap_rows_from=N,unit,item_queries,\n"
                     "m=N,d=N,k=N,spread=S,rescore_share=X,buffer_from=N]\n",
                     argv[0]);
        return 2;
    }
    const bench::Args args = bench::parse_args(argc, argv, 10);
    const std::string& shape = args.shape;
    const std::string options = argc > 5 ? argv[5] : "";
    const auto size_option = [&options](const char* name, std::size_t fallback) {
        const std::string value = option_value(options, name);
        return value.empty() ? fallback : static_cast<std::size_t>(std::stoull(value));
    };
    const std::size_t m = size_option("m", args.m), d = size_option("d", args.d), k = size_option("k", args.k);
    const std::size_t n = args.n, threads = args.threads;
    const int repeat = args.repeat;

    std::mt19937 generator(1);
    std::normal_distribution<float> normal;
    std::vector<float> items(m * d), queries(n * d);
    for (float& x : items) x = normal(generator);
    for (float& x : queries) x = normal(generator);
    if (has_option(options, "unit")) {
        for (std::size_t i = 0; i < m; ++i) {
            double norm = 0.0;
            for (std::size_t j = 0; j < d; ++j) norm += double(items[i * d + j]) * items[i * d + j];
            for (std::size_t j = 0; j < d; ++j) items[i * d + j] = static_cast<float>(items[i * d + j] / std::sqrt(norm));
        }
    }
    if (const std::string spread = option_value(options, "spread"); !spread.empty()) {
        // Log-normal norms, as a trained model's popular items are long vectors.
        std::normal_distribution<float> log_norm(0.0f, std::stof(spread));
        for (std::size_t i = 0; i < m; ++i) {
            const float scale = std::exp(log_norm(generator));
            for (std::size_t j = 0; j < d; ++j) items[i * d + j] *= scale;
        }
    }
    const bool item_queries = has_option(options, "item_queries");
    std::vector<std::int64_t> query_items(item_queries ? n : 0);
    std::uniform_int_distribution<std::int64_t> item(0, static_cast<std::int64_t>(m) - 1);
    for (std::size_t q = 0; q < query_items.size(); ++q) {
        query_items[q] = item(generator);
        std::copy_n(items.begin() + query_items[q] * static_cast<std::ptrdiff_t>(d), d, queries.begin() + q * d);
    }
    SearchOptions search_options;
    search_options.k = k;
    search_options.threads = threads;
    search_options.level = level_option(options);
    search_options.logsumexp = has_option(options, "logsumexp");
    if (const std::string bytes = option_value(options, "bitmap_bytes"); !bytes.empty())
        search_options.exclusion_bitmap_bytes = std::stoull(bytes);
    if (const std::string from = option_value(options, "bitmap_rows_from"); !from.empty())
        search_options.exclusion_bitmap_rows_from = std::stoull(from);
    if (const std::string from = option_value(options, "buffer_from"); !from.empty())
        search_options.top_k_buffer_from = std::stoull(from);
    if (const std::string share = option_value(options, "rescore_share"); !share.empty())
        search_options.screen_rescore_share = std::stod(share);
    const PackedItems packed(items.data(), m, d, simd_level_available(SimdLevel::avx2_int8));
    SearchInput input;
    input.queries = queries.data();
    input.n_queries = n;
    std::vector<std::int64_t> indptr(n + 1, 0), excluded;
    const std::string per_query = option_value(options, "exclude");
    const std::size_t n_excluded = has_option(options, "exclude") ? 100 : per_query.empty() ? 0 : std::stoull(per_query);
    if (n_excluded > 0 || item_queries) {
        for (std::size_t q = 0; q < n; ++q) {
            for (std::size_t j = 0; j < n_excluded; ++j) excluded.push_back(item(generator));
            if (item_queries) excluded.push_back(query_items[q]);
            indptr[q + 1] = static_cast<std::int64_t>(excluded.size());
        }
        input.exclude_indptr.wide = indptr.data();
        input.exclude_indices.wide = excluded.data();
    }
    std::vector<std::int64_t> indices(n * k);
    std::vector<float> scores(n * k);
    std::vector<double> logsumexp(n);
    SearchOutput output;
    output.indices = indices.data();
    output.scores = scores.data();
    output.logsumexp = logsumexp.data();

    double best = 1e300;
    for (int turn = 0; turn < repeat; ++turn) {
        const double start = now();
        search(packed, input, search_options, output);
        best = std::min(best, now() - start);
    }
    const double flops = 2.0 * static_cast<double>(n) * static_cast<double>(m) * static_cast<double>(d);
    std::printf("%s, %zu queries, %zu threads, %s: best of %d %.4f s, %.1f GFLOP/s\n", shape.c_str(), n, threads,
                options.empty() ? "defaults" : options.c_str(), repeat, best, flops / best / 1e9);
    return 0;
}
