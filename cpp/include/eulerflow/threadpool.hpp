// A small persistent thread pool for the kernels of wide layers. Workers are
// started once and sleep between calls; a call splits its work into a fixed
// number of chunks that the caller and the workers take in turn. Callers
// split only independent outputs, so the results do not depend on which
// thread ran which chunk nor on the thread count.
//
// One call at a time uses the pool: a call that finds it busy (another
// network in another thread, or a kernel nested inside a pool task) runs its
// chunks serially on its own thread, which never deadlocks and never runs
// more threads than were asked for.
#pragma once

#include <algorithm>
#include <cstddef>

namespace eulerflow {

// Threads a native call may use (1 = serial). Default: the CPUs available
// to the process (its affinity mask).
void set_num_threads(std::size_t n);
std::size_t get_num_threads();

// The CPUs this process may run on.
std::size_t available_cpus();

// Runs task(ctx, chunk) for chunk in [0, chunks) on up to get_num_threads()
// threads (the caller included) and returns when all are done. No allocation.
using ChunkTask = void (*)(void* ctx, std::size_t chunk);
void parallel_for(std::size_t chunks, ChunkTask task, void* ctx);

// While alive, parallel_for calls made on this thread run serially: for
// code that already runs on several threads of its own (ensemble members),
// where the pool would add threads beyond the ones asked for.
class SerialScope {
public:
    SerialScope();
    ~SerialScope();
    SerialScope(const SerialScope&) = delete;
    SerialScope& operator=(const SerialScope&) = delete;

private:
    bool saved_;
};

// A team of threads kept at hand through a whole native loop whose steps are
// too short for parallel_for (a mean-field step at m = 10,000 takes tens of
// microseconds, about what waking a sleeping worker costs): between the calls
// of run() the pool's workers spin for a while before they sleep. Its size is
// fixed when it is made: up to `want` threads, 1 (the caller alone) when the
// pool is in use, in a SerialScope, after fork or set to one thread. While it
// lives, parallel_for calls from other threads run serially.
class Team {
public:
    explicit Team(std::size_t want);
    ~Team();
    Team(const Team&) = delete;
    Team& operator=(const Team&) = delete;

    std::size_t size() const { return size_; }

    // task(ctx, chunk) for every chunk in [0, chunks), each taken by whichever
    // thread of the team is free (the caller too: a worker the OS keeps off
    // its core delays no more than the chunk it holds); returns when all are
    // done. Chunks must write apart and must not throw. No allocation; no
    // system call unless a worker sleeps.
    void run(std::size_t chunks, ChunkTask task, void* ctx);
    template <class F>
    void run(std::size_t chunks, F& f) {
        run(chunks, [](void* ctx, std::size_t c) { (*static_cast<F*>(ctx))(c); }, &f);
    }

private:
    std::size_t size_ = 1;
};

// The same for any callable f(chunk); f is used by reference.
template <class F>
void parallel_for(std::size_t chunks, F& f) {
    parallel_for(chunks, [](void* ctx, std::size_t c) { (*static_cast<F*>(ctx))(c); }, &f);
}

// Runs f(a, begin, count) over every value of `arrays` arrays, array a
// holding size(a) values: in one call per array on this thread for fewer than
// min_total values in all, else in pieces across the pool. A piece starts at a
// multiple of 64 values of its array, so an element-wise loop takes the same
// (vector or tail) path for every value as one call on the whole array: the
// same bits whatever the thread count.
template <class Size, class F>
void parallel_pieces(std::size_t arrays, Size size, std::size_t min_total, F f) {
    std::size_t total = 0;
    for (std::size_t a = 0; a < arrays; ++a) total += size(a);
    const std::size_t threads = get_num_threads();
    if (threads <= 1 || total < min_total) {
        for (std::size_t a = 0; a < arrays; ++a) f(a, std::size_t(0), size(a));
        return;
    }
    const std::size_t chunks = 2 * threads;
    const std::size_t step = (total + chunks - 1) / chunks;
    // chunk c covers the values [c step, (c + 1) step) of the arrays laid end
    // to end, each bound moved up to a multiple of 64 within its array
    auto task = [&](std::size_t c) {
        std::size_t start = 0;
        for (std::size_t a = 0; a < arrays; ++a) {
            const std::size_t n = size(a);
            auto bound = [&](std::size_t g) {
                const std::size_t local = g > start ? g - start : 0;
                return std::min(n, (local + 63) / 64 * 64);
            };
            const std::size_t lo = bound(c * step), hi = bound((c + 1) * step);
            if (lo < hi) f(a, lo, hi - lo);
            start += n;
        }
    };
    parallel_for(chunks, task);
}

// Values from which an element-wise pass (activations, a narrow layer's
// samples, an optimizer's update) is split across the pool: about 100 us of
// tanh on one core, far above the cost of waking the workers.
constexpr std::size_t kThreadedElements = std::size_t(1) << 17;

// Runs f(begin, count) over [0, n): in one call on this thread for n below
// min_n, else in pieces across the pool, each starting at a multiple of 64
// (parallel_pieces on one array): for loops whose every element is computed
// alone, the same bits whatever the thread count.
template <class F>
void parallel_range(std::size_t n, std::size_t min_n, F f) {
    parallel_pieces(
        1, [n](std::size_t) { return n; }, min_n,
        [&f](std::size_t, std::size_t begin, std::size_t count) { f(begin, count); });
}

}  // namespace eulerflow
