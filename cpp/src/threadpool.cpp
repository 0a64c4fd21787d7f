#include "eulerflow/threadpool.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#include <unistd.h>
#endif

namespace eulerflow {

std::size_t available_cpus() {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        const int c = CPU_COUNT(&set);
        if (c > 0) return std::size_t(c);
    }
#endif
    return std::max(1u, std::thread::hardware_concurrency());
}

namespace {

thread_local bool serial_only = false;

class Pool {
public:
    Pool() : threads_(available_cpus()) {
#if defined(__linux__)
        pid_ = getpid();
#endif
    }

    // Workers are detached and live as long as the process: joining them from
    // a static destructor at exit can hang when the interpreter is finalizing.
    ~Pool() = default;

    void set_threads(std::size_t n) {
        acquire();
        threads_.store(n);
        release();
    }
    std::size_t threads() const { return threads_.load(); }

    void run(std::size_t chunks, ChunkTask task, void* ctx) {
        const std::size_t want = std::min(threads_.load(), chunks);
        bool expected = false;
        if (want <= 1 || serial_only || forked() || !busy_.compare_exchange_strong(expected, true)) {
            for (std::size_t c = 0; c < chunks; ++c) task(ctx, c);
            return;
        }
        start_workers(want - 1);  // only when the count grows: no allocation after that
        {
            std::lock_guard<std::mutex> hold(lock_);
            task_ = task;
            ctx_ = ctx;
            chunks_ = chunks;
            next_.store(0);
            helpers_ = want - 1;
            pending_ = want - 1;
            ++generation_;
        }
        wake_.notify_all();
        work();
        {
            std::unique_lock<std::mutex> hold(lock_);
            done_.wait(hold, [this] { return pending_ == 0; });
        }
        busy_.store(false);
    }

private:
    // Takes chunks until none is left.
    void work() {
        for (std::size_t c = next_++; c < chunks_; c = next_++) task_(ctx_, c);
    }

    void worker(std::size_t index) {
        std::size_t seen = 0;
        for (;;) {
            {
                std::unique_lock<std::mutex> hold(lock_);
                wake_.wait(hold, [&] { return generation_ != seen && index < helpers_; });
                seen = generation_;
            }
            work();
            {
                std::lock_guard<std::mutex> hold(lock_);
                if (--pending_ == 0) done_.notify_one();
            }
        }
    }

    void start_workers(std::size_t n) {
        while (started_ < n) {
            std::thread([this, i = started_] { worker(i); }).detach();
            ++started_;
        }
    }

    // Waits until no call uses the pool (set_num_threads only).
    void acquire() {
        bool expected = false;
        while (!busy_.compare_exchange_weak(expected, true)) {
            expected = false;
            std::this_thread::yield();
        }
    }
    void release() { busy_.store(false); }

    // A forked child has none of its parent's workers: it runs serially.
    bool forked() const {
#if defined(__linux__)
        return getpid() != pid_;
#else
        return false;
#endif
    }

    std::atomic<std::size_t> threads_;
    std::atomic<bool> busy_{false};
    std::mutex lock_;
    std::condition_variable wake_, done_;
    std::size_t generation_ = 0, helpers_ = 0, pending_ = 0, started_ = 0;
    ChunkTask task_ = nullptr;
    void* ctx_ = nullptr;
    std::size_t chunks_ = 0;
    std::atomic<std::size_t> next_{0};
#if defined(__linux__)
    pid_t pid_ = 0;
#endif
};

// Never destroyed (see ~Pool): the detached workers may still wait on it at exit.
Pool& pool() {
    static Pool* p = new Pool();
    return *p;
}

}  // namespace

SerialScope::SerialScope() : saved_(serial_only) { serial_only = true; }

SerialScope::~SerialScope() { serial_only = saved_; }

void set_num_threads(std::size_t n) { pool().set_threads(std::max<std::size_t>(1, n)); }

std::size_t get_num_threads() { return pool().threads(); }

void parallel_for(std::size_t chunks, ChunkTask task, void* ctx) { pool().run(chunks, task, ctx); }

}  // namespace eulerflow
