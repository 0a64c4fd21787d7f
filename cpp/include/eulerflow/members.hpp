// Independent members (whole trainings) spread over a few threads in one call:
// the pool of fit_members (networks) and of the mean-field ensembles. Each
// member runs whole on one thread, so its result is the same whatever the
// thread count or which thread took it.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace eulerflow {

// Runs task(i) for every i in [0, count) on n_threads threads, the calling one
// included (at most one per member). Indices are handed out in increasing
// order from a shared counter: put the longest members first for balance. An
// exception thrown by a task is rethrown (the first one) after every thread
// has finished; the other members still run.
template <class Task>
void for_each_member(std::size_t count, std::size_t n_threads, Task&& task) {
    std::atomic<std::size_t> next{0};
    std::exception_ptr error;
    std::mutex error_lock;
    auto work = [&]() {
        for (std::size_t i = next++; i < count; i = next++) {
            try {
                task(i);
            } catch (...) {
                std::lock_guard<std::mutex> hold(error_lock);
                if (!error) error = std::current_exception();
            }
        }
    };
    const std::size_t n = std::max<std::size_t>(1, std::min(n_threads, count));
    std::vector<std::thread> pool;
    for (std::size_t k = 1; k < n; ++k) pool.emplace_back(work);
    work();
    for (auto& th : pool) th.join();
    if (error) std::rethrow_exception(error);
}

}  // namespace eulerflow
