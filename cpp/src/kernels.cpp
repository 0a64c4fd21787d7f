// The hot kernels, each compiled for several instruction sets (baseline
// x86-64, AVX2+FMA, AVX-512) with the CPU picking the best at load time.
// This is function multi-versioning, not -march=native: the wheel runs on
// any x86-64. Each kernel inlines its template body (and fastmath), so every
// clone is vectorized for its own ISA; nothing outside these functions is
// compiled for a specific ISA, so no instruction the CPU lacks can leak.
#include "eulerflow/activations.hpp"
#include "eulerflow/dense.hpp"
#include "eulerflow/gemm.hpp"
#include "eulerflow/loss.hpp"
#include "eulerflow/optim.hpp"

#include "eulerflow/multiversion.hpp"

namespace eulerflow {

#define EF_DEFINE_KERNELS(T)                                                                      \
    EF_KERNEL void activation_forward(const ActParams& a, const T* x, T* y, std::size_t n) {      \
        detail::activation_forward_impl(a, x, y, n);                                              \
    }                                                                                             \
    EF_KERNEL void activation_backward(const ActParams& a, const T* x, const T* y, const T* gy,   \
                                       T* gx, std::size_t n) {                                    \
        detail::activation_backward_impl(a, x, y, gy, gx, n);                                     \
    }                                                                                             \
    EF_KERNEL void activation_forward_deriv(const ActParams& a, const T* x, T* y, T* d,          \
                                            std::size_t n) {                                      \
        detail::activation_forward_deriv_impl(a, x, y, d, n);                                     \
    }                                                                                             \
    EF_KERNEL void multiply(const T* a, const T* b, T* out, std::size_t n) {                      \
        detail::multiply_impl(a, b, out, n);                                                      \
    }                                                                                             \
    EF_KERNEL void dense_forward(const T* W, const T* b, std::size_t n_in, std::size_t n_out,     \
                                 const T* X, T* Y, std::size_t n) {                               \
        detail::dense_forward_impl(W, b, n_in, n_out, X, Y, n);                                   \
    }                                                                                             \
    EF_KERNEL void dense_backward(const T* W, std::size_t n_in, std::size_t n_out, const T* X,    \
                                  const T* gY, std::size_t n, T* gW, T* gb, T* gX) {              \
        detail::dense_backward_impl(W, n_in, n_out, X, gY, n, gW, gb, gX);                        \
    }                                                                                             \
    EF_KERNEL void matmul_blocked(const T* A, std::size_t a_rs, std::size_t a_cs, const T* init,  \
                                  std::size_t M, std::size_t K, const T* B, std::size_t ldb, T* C,\
                                  std::size_t ldc, std::size_t ncols, T* pack) {                  \
        detail::matmul_blocked_impl(A, a_rs, a_cs, init, M, K, B, ldb, C, ldc, ncols, pack);      \
    }                                                                                             \
    EF_KERNEL void grad_weights_blocked(const T* gY, const T* X, std::size_t n_out,               \
                                        std::size_t n_in, std::size_t n, T* gW, T* gb) {          \
        detail::grad_weights_blocked_impl(gY, X, n_out, n_in, n, gW, gb);                         \
    }                                                                                             \
    EF_KERNEL double loss_and_grad(LossKind kind, const T* y, const Targets<T>& tg,               \
                                   std::size_t k, std::size_t n, T* g, LossWork& w,               \
                                   std::size_t* correct) {                                        \
        return detail::loss_and_grad_impl(kind, y, tg, k, n, g, w, correct);                      \
    }                                                                                             \
    EF_KERNEL void optim_step(const OptimConfig& c, OptimScalars& s,                              \
                              const std::vector<ParamRef<T>>& params, T* buf1, T* buf2) {         \
        detail::optim_step_impl(c, s, params, buf1, buf2);                                        \
    }

EF_DEFINE_KERNELS(double)
EF_DEFINE_KERNELS(float)

#undef EF_DEFINE_KERNELS

// ensembles, one member per lane (float64 only)
EF_KERNEL void dense_forward_lanes(const double* W, const double* b, std::size_t n_in, std::size_t n_out,
                                   const double* X, double* Y, std::size_t N) {
    detail::dense_forward_lanes_impl(W, b, n_in, n_out, X, Y, N);
}
EF_KERNEL void dense_backward_lanes(const double* W, std::size_t n_in, std::size_t n_out, const double* X,
                                    const double* gY, std::size_t N, double* gW, double* gb, double* gX) {
    detail::dense_backward_lanes_impl(W, n_in, n_out, X, gY, N, gW, gb, gX);
}
EF_KERNEL void optim_step_lanes(const OptimConfig& c, OptimScalars& s, const double* lr,
                                const unsigned char* active, std::size_t N, double* p, const double* g,
                                std::size_t count, double* buf1, double* buf2, double* coef_a,
                                double* coef_b) {
    detail::optim_step_lanes_impl(c, s, lr, active, N, p, g, count, buf1, buf2, coef_a, coef_b);
}

}  // namespace eulerflow
