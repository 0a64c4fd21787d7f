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

// The same for any callable f(chunk); f is used by reference.
template <class F>
void parallel_for(std::size_t chunks, F& f) {
    parallel_for(chunks, [](void* ctx, std::size_t c) { (*static_cast<F*>(ctx))(c); }, &f);
}

}  // namespace eulerflow
