// Dense layers as the network runs them: small layers through the kernels of
// dense.hpp on the calling thread, wide ones through the blocked kernels of
// gemm.hpp, split across the thread pool. Both paths round alike (see
// gemm.hpp), so the bits depend neither on the path nor on the thread count.
#include <algorithm>
#include <vector>

#include "eulerflow/dense.hpp"
#include "eulerflow/gemm.hpp"
#include "eulerflow/threadpool.hpp"

namespace eulerflow {

namespace {

// Layers of at least this many weights, on batches of at least two vectors,
// take the blocked kernels; below it (the small-net workloads, widths <= 16)
// the register-resident kernels of dense.hpp are faster.
constexpr std::size_t kBlockedWeights = 1024;
// Work (multiply-adds) from which a product is split across threads: about
// 100 us on one core, far above the cost of waking the workers.
constexpr std::size_t kThreadedWork = std::size_t(1) << 20;

template <class T>
bool blocked(std::size_t n_in, std::size_t n_out, std::size_t n) {
    return n_in * n_out >= kBlockedWeights && n >= 2 * detail::lanes<T>();
}

// The packing buffer of the blocked products, one per thread, allocated on
// the thread's first wide layer and reused by every later call.
template <class T>
T* pack_buffer() {
    thread_local std::vector<T> buf;
    if (buf.size() < detail::GemmBlocks<T>::pack_size) buf.assign(detail::GemmBlocks<T>::pack_size, T(0));
    return buf.data();
}

std::size_t chunks_for(std::size_t work) {
    const std::size_t t = get_num_threads();
    return t > 1 && work >= kThreadedWork ? 2 * t : 1;  // two per thread balance uneven chunks
}

// C (M, n) = init + A B as in matmul_blocked_impl, over the pool: by blocks of
// rows when there are enough of them, else by blocks of columns.
template <class T>
void matmul_parallel(const T* A, std::size_t a_rs, std::size_t a_cs, const T* init, std::size_t M,
                     std::size_t K, const T* B, T* C, std::size_t n) {
    using G = detail::GemmBlocks<T, 4>;  // the widest tile: chunks of columns fill whole tiles of either
    const std::size_t chunks = chunks_for(M * K * n);
    if (chunks == 1) {
        matmul_blocked(A, a_rs, a_cs, init, M, K, B, n, C, n, n, pack_buffer<T>());
        return;
    }
    const bool by_rows = M >= chunks * 4 * G::MR;
    const std::size_t extent = by_rows ? M : n, unit = by_rows ? G::MR : G::NR;
    const std::size_t step = (extent + chunks * unit - 1) / (chunks * unit) * unit;
    auto task = [&](std::size_t c) {
        const std::size_t lo = std::min(extent, c * step), hi = std::min(extent, lo + step);
        if (lo == hi) return;
        if (by_rows) {
            matmul_blocked(A + lo * a_rs, a_rs, a_cs, init ? init + lo : nullptr, hi - lo, K, B, n,
                           C + lo * n, n, n, pack_buffer<T>());
        } else {
            matmul_blocked(A, a_rs, a_cs, init, M, K, B + lo, n, C + lo, n, hi - lo, pack_buffer<T>());
        }
    };
    parallel_for(chunks, task);
}

}  // namespace

template <class T>
void dense_blocked_forward(const T* W, const T* b, std::size_t n_in, std::size_t n_out, const T* X,
                           T* Y, std::size_t n) {
    matmul_parallel(W, n_in, std::size_t(1), b, n_out, n_in, X, Y, n);
}

template <class T>
void dense_blocked_backward(const T* W, std::size_t n_in, std::size_t n_out, const T* X, const T* gY,
                            std::size_t n, T* gW, T* gb, T* gX) {
    if (n < 2 * detail::lanes<T>()) {  // too short for the vector sums: as dense_backward does
        dense_backward(W, n_in, n_out, X, gY, n, gW, gb, static_cast<T*>(nullptr));
    } else {  // gW and gb by blocks of output rows
        const std::size_t chunks = chunks_for(n_in * n_out * n);
        const std::size_t unit = 6;  // whole tiles of 2 or 3 rows
        const std::size_t step = (n_out + chunks * unit - 1) / (chunks * unit) * unit;
        auto task = [&](std::size_t c) {
            const std::size_t lo = std::min(n_out, c * step), hi = std::min(n_out, lo + step);
            if (lo < hi) {
                grad_weights_blocked(gY + lo * n, X, hi - lo, n_in, n, gW + lo * n_in, gb ? gb + lo : nullptr);
            }
        };
        parallel_for(chunks, task);
    }
    // gX = W^T gY
    if (gX) matmul_parallel(W, std::size_t(1), n_in, static_cast<const T*>(nullptr), n_in, n_out, gY, gX, n);
}

// A narrow layer's samples are split across the pool for a large batch: from
// kThreadedElements outputs, as the activations.
std::size_t min_split_samples(std::size_t width) {
    return (kThreadedElements + width - 1) / std::max<std::size_t>(width, 1);
}

template <class T>
void dense_layer_forward(const T* W, const T* b, std::size_t n_in, std::size_t n_out, const T* X,
                         T* Y, std::size_t n) {
    if (blocked<T>(n_in, n_out, n)) return dense_blocked_forward(W, b, n_in, n_out, X, Y, n);
    // every sample's output computed alone (dense_forward_rows_impl): the same bits on any split
    parallel_range(n, min_split_samples(n_out), [&](std::size_t lo, std::size_t count) {
        dense_forward_rows(W, b, n_in, n_out, X + lo, n, Y + lo, count);
    });
}

template <class T>
void dense_layer_backward(const T* W, std::size_t n_in, std::size_t n_out, const T* X, const T* gY,
                          std::size_t n, T* gW, T* gb, T* gX) {
    if (blocked<T>(n_in, n_out, n)) return dense_blocked_backward(W, n_in, n_out, X, gY, n, gW, gb, gX);
    if (gX && get_num_threads() > 1 && n >= min_split_samples(n_in)) {
        // the sums over the samples (gW, gb) on this thread, in their order; gX by samples
        dense_backward(W, n_in, n_out, X, gY, n, gW, gb, static_cast<T*>(nullptr));
        parallel_range(n, 0, [&](std::size_t lo, std::size_t count) {
            dense_input_grad_rows(W, n_in, n_out, gY + lo, n, gX + lo, count);
        });
        return;
    }
    dense_backward(W, n_in, n_out, X, gY, n, gW, gb, gX);
}

#define EF_INSTANTIATE(T)                                                                       \
    template void dense_blocked_forward<T>(const T*, const T*, std::size_t, std::size_t, const T*,  \
                                           T*, std::size_t);                                        \
    template void dense_blocked_backward<T>(const T*, std::size_t, std::size_t, const T*, const T*, \
                                            std::size_t, T*, T*, T*);                               \
    template void dense_layer_forward<T>(const T*, const T*, std::size_t, std::size_t, const T*,    \
                                         T*, std::size_t);                                          \
    template void dense_layer_backward<T>(const T*, std::size_t, std::size_t, const T*, const T*,   \
                                          std::size_t, T*, T*, T*);
EF_INSTANTIATE(double)
EF_INSTANTIATE(float)
#undef EF_INSTANTIATE

}  // namespace eulerflow
