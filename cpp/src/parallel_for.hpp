// A minimal fork-join loop over tasks with std::thread: the caller works too, tasks are
// handed out through an atomic counter (so uneven tasks balance), and the first exception
// thrown by any worker is rethrown on the caller after every thread has joined.
// Threads are created per call: each call scores thousands of queries, so the spawn cost
// (tens of microseconds) is noise, and no pool outlives a call (no global state).
#pragma once

#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace recbatch {

template <typename Fn>  // Fn(std::size_t thread_index, std::size_t task_index)
void parallel_for(std::size_t n_tasks, std::size_t n_threads, Fn&& fn) {
    if (n_threads > n_tasks) n_threads = n_tasks;
    if (n_threads == 0) return;
    std::atomic<std::size_t> next{0};
    std::atomic<bool> failed{false};
    std::exception_ptr error;
    std::mutex error_mutex;
    auto work = [&](std::size_t thread_index) {
        try {
            for (std::size_t task; !failed.load(std::memory_order_relaxed) &&
                                   (task = next.fetch_add(1, std::memory_order_relaxed)) < n_tasks;)
                fn(thread_index, task);
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
            failed.store(true);
        }
    };
    std::vector<std::thread> threads;
    threads.reserve(n_threads - 1);
    try {
        for (std::size_t t = 1; t < n_threads; ++t) threads.emplace_back(work, t);
    } catch (...) {
        failed.store(true);  // could not start every thread: stop the ones that did
        for (auto& thread : threads) thread.join();
        throw;
    }
    work(0);
    for (auto& thread : threads) thread.join();
    if (error) std::rethrow_exception(error);
}

}  // namespace recbatch
