#include "eulerflow/threadpool.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
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

    // A Team: the pool's workers 1 .. size - 1 run team_member until end_team.
    // Returns the team's size, 1 when no worker can be had.
    std::size_t begin_team(std::size_t want) {
        want = std::min(threads_.load(), want);
        bool expected = false;
        if (want <= 1 || serial_only || forked() || !busy_.compare_exchange_strong(expected, true)) return 1;
        start_workers(want - 1);
        if (team_slots_.size() < want) team_slots_ = std::vector<Slot>(want);
        team_size_ = want;
        team_stop_.store(false);
        {
            std::lock_guard<std::mutex> hold(lock_);
            // chunk c is worker c + 1's whole stay in the team: each worker takes one
            task_ = [](void* self, std::size_t c) { static_cast<Pool*>(self)->team_member(c + 1); };
            ctx_ = this;
            chunks_ = want - 1;
            next_.store(0);
            helpers_ = want - 1;
            pending_ = want - 1;
            ++generation_;
        }
        wake_.notify_all();
        return want;
    }

    // One call of the team: thread r of the team first takes the chunks of
    // its share [r C / T, (r + 1) C / T) in order (from one call to the next a
    // thread finds its particles in its own cache), then takes what is left
    // of the others' (a thread the OS keeps off its core delays the call by
    // no more than the chunk it holds). The caller is thread 0 and returns
    // when all chunks are done.
    void team_run(std::size_t chunks, ChunkTask task, void* ctx) {
        team_task_ = task;
        team_ctx_ = ctx;
        team_chunks_.store(chunks, std::memory_order_relaxed);
        team_done_.store(0, std::memory_order_relaxed);
        const std::uint32_t epoch = ++team_epoch_;
        for (std::size_t r = 0; r < team_size_; ++r)
            team_slots_[r].next.store(std::uint64_t(epoch) << 32 | share_start(r), std::memory_order_relaxed);
        team_call_.store(epoch);  // publishes the call (and orders the stores above)
        if (team_sleepers_.load() > 0) {
            std::lock_guard<std::mutex> hold(team_lock_);
            team_wake_.notify_all();
        }
        take_chunks(epoch, 0);
        spin_until([&] { return team_done_.load(std::memory_order_acquire) == chunks; });
    }

    void end_team() {
        team_stop_.store(true);
        {
            std::lock_guard<std::mutex> hold(team_lock_);
            team_wake_.notify_all();
        }
        {
            std::unique_lock<std::mutex> hold(lock_);
            done_.wait(hold, [this] { return pending_ == 0; });
        }
        busy_.store(false);
    }

private:
    static std::uint32_t epoch_of(std::uint64_t work) { return std::uint32_t(work >> 32); }

    // Waits for done(): spinning first (a team's next call comes within
    // microseconds), then giving the core away between looks.
    template <class Pred>
    static void spin_until(Pred done) {
        for (unsigned k = 0; !done(); ++k) {
            if (k < (1u << 14)) {
                pause();
            } else {
                std::this_thread::yield();
            }
        }
    }

    static void pause() {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }

    // The first chunk of thread r's share of the call.
    std::uint32_t share_start(std::size_t r) const {
        return std::uint32_t(r * team_chunks_.load(std::memory_order_relaxed) / team_size_);
    }

    // Thread `me` claims and runs chunks of call `epoch`, its own share first,
    // until none is left. A claim names its call, so a thread late for one call
    // never takes a chunk of the next with the old task.
    void take_chunks(std::uint32_t epoch, std::size_t me) {
        std::size_t done = 0;
        for (std::size_t k = 0; k < team_size_; ++k) {
            const std::size_t r = (me + k) % team_size_;
            const std::uint32_t end = share_start(r + 1);
            std::atomic<std::uint64_t>& next = team_slots_[r].next;
            std::uint64_t claim = next.load(std::memory_order_acquire);
            while (epoch_of(claim) == epoch && std::uint32_t(claim) < end) {
                if (next.compare_exchange_weak(claim, claim + 1, std::memory_order_acq_rel)) {
                    team_task_(team_ctx_, std::uint32_t(claim));
                    ++done;
                    claim = next.load(std::memory_order_acquire);
                }
            }
        }
        if (done) team_done_.fetch_add(done, std::memory_order_release);
    }

    // Worker `me` of the team: waits for each call, spinning for a while (the
    // next one usually comes within microseconds), then asleep (a busy core
    // wakes a sleeper sooner than it lets a spinner back on), and helps with it.
    void team_member(std::size_t me) {
        std::uint32_t seen = team_call_.load(std::memory_order_acquire);
        for (;;) {
            auto called = [&] { return team_call_.load() != seen || team_stop_.load(); };
            unsigned k = 0;
            while (k < kTeamSpins && !called()) {
                pause();
                ++k;
            }
            if (k == kTeamSpins) {
                std::unique_lock<std::mutex> hold(team_lock_);
                team_sleepers_.fetch_add(1);
                team_wake_.wait(hold, called);
                team_sleepers_.fetch_sub(1);
            }
            if (team_stop_.load()) return;
            seen = team_call_.load(std::memory_order_acquire);
            take_chunks(seen, me);
        }
    }

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
    // the running Team: its size, its call's task, context and chunk count,
    // the chunks done, each thread's next chunk (tagged with the call's
    // number, high half), the number of the last call
    struct alignas(64) Slot {
        std::atomic<std::uint64_t> next{0};
    };
    static constexpr unsigned kTeamSpins = 1u << 12;
    std::size_t team_size_ = 1;
    ChunkTask team_task_ = nullptr;
    void* team_ctx_ = nullptr;
    std::atomic<std::size_t> team_chunks_{0};  // atomic: a thread late for a call may read it
    alignas(64) std::atomic<std::size_t> team_done_{0};
    alignas(64) std::atomic<std::uint32_t> team_call_{0};
    std::uint32_t team_epoch_ = 0;
    std::vector<Slot> team_slots_;
    std::atomic<bool> team_stop_{false};
    std::atomic<int> team_sleepers_{0};
    std::mutex team_lock_;
    std::condition_variable team_wake_;
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

Team::Team(std::size_t want) : size_(pool().begin_team(want)) {}

Team::~Team() {
    if (size_ > 1) pool().end_team();
}

void Team::run(std::size_t chunks, ChunkTask task, void* ctx) {
    if (size_ == 1) {
        for (std::size_t c = 0; c < chunks; ++c) task(ctx, c);
        return;
    }
    pool().team_run(chunks, task, ctx);
}

}  // namespace eulerflow
