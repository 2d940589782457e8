// How a search is cut into query chunks (cpp/src/task_shape.hpp): the chunks cover every row
// once, in whole row groups, none taller than the cap (lower for large k, whose top-k lists
// must fit kChunkTopKBytes, but at least one group); and when threads take them in order,
// as parallel_for hands them out, equal-cost groups finish in exactly ceil(groups / threads)
// group-times, the least any split into groups can take.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <queue>
#include <vector>

#include "task_shape.hpp"

namespace {

int failures = 0;

void expect(bool ok, const char* what, std::size_t n, std::size_t threads) {
    if (ok) return;
    ++failures;
    std::fprintf(stderr, "FAIL n=%zu threads=%zu: %s\n", n, threads, what);
}

// Greedy list scheduling (each chunk goes to the thread that frees up first), in group-times.
std::size_t finish_time(const std::vector<std::size_t>& starts, std::size_t group_rows, std::size_t threads) {
    std::priority_queue<std::size_t, std::vector<std::size_t>, std::greater<>> free_at;
    for (std::size_t t = 0; t < threads; ++t) free_at.push(0);
    std::size_t finish = 0;
    for (std::size_t c = 0; c + 1 < starts.size(); ++c) {
        const std::size_t groups = (starts[c + 1] - starts[c] + group_rows - 1) / group_rows;
        const std::size_t end = free_at.top() + groups;
        free_at.pop();
        free_at.push(end);
        finish = std::max(finish, end);
    }
    return finish;
}

void check(std::size_t n, std::size_t group_rows, std::size_t threads, std::size_t k = 10) {
    const std::vector<std::size_t> starts = recbatch::query_chunk_starts(n, group_rows, threads, k);
    const std::size_t cap = recbatch::max_chunk_groups(group_rows, k);
    const std::size_t groups = (n + group_rows - 1) / group_rows;
    expect(starts.front() == 0 && starts.back() == n, "chunks cover [0, n)", n, threads);
    bool whole = true, capped = true, shrinking = true;
    for (std::size_t c = 0; c + 1 < starts.size(); ++c) {
        const std::size_t rows = starts[c + 1] - starts[c];
        whole = whole && rows > 0 && starts[c] % group_rows == 0 && (rows % group_rows == 0 || starts[c + 1] == n);
        capped = capped && rows <= cap * group_rows &&
                 (rows <= group_rows || rows * k * sizeof(std::uint64_t) <= recbatch::kChunkTopKBytes);
        if (c > 0) shrinking = shrinking && rows <= starts[c] - starts[c - 1];
    }
    expect(whole, "chunks are whole row groups (the last may be short)", n, threads);
    expect(capped, "no chunk taller than its cap, nor its lists past kChunkTopKBytes beyond one group", n, threads);
    expect(cap >= 1 && cap <= recbatch::kMaxChunkGroups, "a cap of 1 to kMaxChunkGroups groups", n, threads);
    expect(shrinking, "chunk sizes never grow", n, threads);
    expect(finish_time(starts, group_rows, threads) == (groups + threads - 1) / threads,
           "equal groups finish in ceil(groups / threads) group-times", n, threads);
    if (groups < 2 * threads) expect(starts.size() == groups + 1, "few groups: one per chunk", n, threads);
    if (threads == 1) {
        const std::size_t tall = std::min(groups, cap);
        expect(starts.size() > 1 && starts[1] == std::min(n, tall * group_rows), "one thread: tallest chunks", n,
               threads);
    }
}

}  // namespace

int main() {
    for (std::size_t threads : {1, 2, 3, 4, 7, 8, 16, 31, 64})
        for (std::size_t n = 1; n <= 6000; n += n < 400 ? 1 : 37) check(n, 12, threads);
    for (std::size_t threads : {1, 2, 16}) {
        check(20000, 12, threads);
        check(1000000, 12, threads);
        check(777, 5, threads);
    }
    for (std::size_t k : {1, 100, 342, 1000, 4000, 10000, 5000000})
        for (std::size_t threads : {1, 2, 16}) {
            check(20000, 12, threads, k);
            check(777, 5, threads, k);
        }
    expect(recbatch::max_chunk_groups(12, 100) == recbatch::kMaxChunkGroups, "k = 100: the full cap", 0, 0);
    expect(recbatch::max_chunk_groups(12, 10000) == 1, "k = 10,000: one group per chunk", 0, 0);
    const std::size_t w2_chunks = recbatch::query_chunk_starts(4000, 12, 16, 100).size() - 1;
    expect(w2_chunks <= 64, "4,000 queries on 16 threads: at most 4 chunks per thread", 4000, 16);
    std::printf("%d failed\n", failures);
    return failures == 0 ? 0 : 1;
}
