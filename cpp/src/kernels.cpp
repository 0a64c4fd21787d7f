// The hot kernels, each compiled for several instruction sets (baseline
// x86-64, AVX2+FMA, AVX-512) and dispatched at run time (multiversion.hpp).
// This is not -march=native: the wheel runs on any x86-64. Each variant
// inlines its template body (and fastmath), so it is vectorized for its own
// ISA; nothing outside the variants is compiled for a specific ISA, so no
// instruction the CPU lacks can leak.
#include "eulerflow/activations.hpp"
#include "eulerflow/dense.hpp"
#include "eulerflow/gemm.hpp"
#include "eulerflow/loss.hpp"
#include "eulerflow/optim.hpp"

#include "eulerflow/multiversion.hpp"

namespace eulerflow {

// One line per kernel: EF_MULTIVERSION (multiversion.hpp) compiles its body for
// each instruction set and defines the public entry that dispatches.
#define EF_DEFINE_KERNELS(T)                                                                        \
    EF_MULTIVERSION(, void, activation_forward, (const ActParams& a, const T* x, T* y, std::size_t n), \
                    (a, x, y, n), detail::activation_forward_impl)                                  \
    EF_MULTIVERSION(, void, activation_backward,                                                    \
                    (const ActParams& a, const T* x, const T* y, const T* gy, T* gx, std::size_t n),  \
                    (a, x, y, gy, gx, n), detail::activation_backward_impl)                         \
    EF_MULTIVERSION(, void, activation_forward_deriv,                                               \
                    (const ActParams& a, const T* x, T* y, T* d, std::size_t n), (a, x, y, d, n),   \
                    detail::activation_forward_deriv_impl)                                          \
    EF_MULTIVERSION(, void, multiply, (const T* a, const T* b, T* out, std::size_t n), (a, b, out, n), \
                    detail::multiply_impl)                                                          \
    EF_MULTIVERSION(, void, dense_forward,                                                          \
                    (const T* W, const T* b, std::size_t n_in, std::size_t n_out, const T* X, T* Y,  \
                     std::size_t n),                                                                \
                    (W, b, n_in, n_out, X, Y, n), detail::dense_forward_impl)                       \
    EF_MULTIVERSION(, void, dense_forward_rows,                                                     \
                    (const T* W, const T* b, std::size_t n_in, std::size_t n_out, const T* X,        \
                     std::size_t ld, T* Y, std::size_t n),                                          \
                    (W, b, n_in, n_out, X, ld, Y, n), detail::dense_forward_rows_impl)              \
    EF_MULTIVERSION(, void, dense_input_grad_rows,                                                  \
                    (const T* W, std::size_t n_in, std::size_t n_out, const T* gY, std::size_t ld,   \
                     T* gX, std::size_t n),                                                         \
                    (W, n_in, n_out, gY, ld, gX, n), detail::dense_input_grad_rows_impl)            \
    EF_MULTIVERSION(, void, dense_backward,                                                         \
                    (const T* W, std::size_t n_in, std::size_t n_out, const T* X, const T* gY,       \
                     std::size_t n, T* gW, T* gb, T* gX),                                           \
                    (W, n_in, n_out, X, gY, n, gW, gb, gX), detail::dense_backward_impl)            \
    EF_MULTIVERSION(, void, matmul_blocked,                                                         \
                    (const T* A, std::size_t a_rs, std::size_t a_cs, const T* init, std::size_t M,   \
                     std::size_t K, const T* B, std::size_t ldb, T* C, std::size_t ldc,              \
                     std::size_t ncols, T* pack),                                                   \
                    (A, a_rs, a_cs, init, M, K, B, ldb, C, ldc, ncols, pack),                        \
                    detail::matmul_blocked_impl)                                                    \
    EF_MULTIVERSION(, void, grad_weights_blocked,                                                   \
                    (const T* gY, const T* X, std::size_t n_out, std::size_t n_in, std::size_t n,    \
                     T* gW, T* gb),                                                                 \
                    (gY, X, n_out, n_in, n, gW, gb), detail::grad_weights_blocked_impl)             \
    EF_MULTIVERSION(, double, loss_and_grad,                                                        \
                    (LossKind kind, const T* y, const Targets<T>& tg, std::size_t k, std::size_t n,  \
                     T* g, LossWork& w, std::size_t* correct),                                      \
                    (kind, y, tg, k, n, g, w, correct), detail::loss_and_grad_impl)                 \
    EF_MULTIVERSION(, void, optim_update,                                                           \
                    (const OptimConfig& c, const OptimStep& s, T* p, const T* g, T* buf1, T* buf2,   \
                     std::size_t n),                                                                \
                    (c, s, p, g, buf1, buf2, n), detail::optim_update_impl)

EF_DEFINE_KERNELS(double)
EF_DEFINE_KERNELS(float)

#undef EF_DEFINE_KERNELS

EF_MULTIVERSION(, OptimStep, optim_advance, (const OptimConfig& c, OptimScalars& s), (c, s),
                detail::optim_advance_impl)

// ensembles, one member per lane (float64 only)
EF_MULTIVERSION(, void, dense_forward_lanes,
                (const double* W, const double* b, std::size_t n_in, std::size_t n_out, const double* X,
                 double* Y, std::size_t N),
                (W, b, n_in, n_out, X, Y, N), detail::dense_forward_lanes_impl)
EF_MULTIVERSION(, void, dense_backward_lanes,
                (const double* W, std::size_t n_in, std::size_t n_out, const double* X, const double* gY,
                 std::size_t N, double* gW, double* gb, double* gX),
                (W, n_in, n_out, X, gY, N, gW, gb, gX), detail::dense_backward_lanes_impl)
EF_MULTIVERSION(, void, optim_step_lanes,
                (const OptimConfig& c, OptimScalars& s, const double* lr, const unsigned char* active,
                 std::size_t N, double* p, const double* g, std::size_t count, double* buf1, double* buf2,
                 double* coef_a, double* coef_b),
                (c, s, lr, active, N, p, g, count, buf1, buf2, coef_a, coef_b), detail::optim_step_lanes_impl)

}  // namespace eulerflow
