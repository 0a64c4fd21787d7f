// Element-wise kernels of the ensembles' solver arithmetic, multi-versioned
// like kernels.cpp but compiled with -ffp-contract=off (CMakeLists.txt): each
// product is rounded before its sum, exactly as in rk.cpp and node.cpp, which
// are compiled for baseline x86-64 (no FMA), so an ensemble member's Euler
// updates round as its separate training's do, now in AVX registers.
#include "eulerflow/lanes.hpp"

#include "eulerflow/fastmath.hpp"
#include "eulerflow/multiversion.hpp"

namespace eulerflow {

namespace {

EF_ALWAYS_INLINE void lanes_add_scaled_impl(double* x, const double* k, const double* a, std::size_t d,
                                            std::size_t N) {
    for (std::size_t i = 0; i < d; ++i) {
        double* xi = x + i * N;
        const double* ki = k + i * N;
        for (std::size_t l = 0; l < N; ++l) xi[l] = a[l] != 0.0 ? xi[l] + a[l] * ki[l] : xi[l];
    }
}

EF_ALWAYS_INLINE void lanes_scale_impl(double* out, const double* h, double c, const double* v, std::size_t d,
                                       std::size_t N) {
    for (std::size_t i = 0; i < d; ++i)
        for (std::size_t l = 0; l < N; ++l) out[i * N + l] = h[l] * c * v[i * N + l];
}

EF_ALWAYS_INLINE void add_into_impl(double* x, const double* y, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) x[i] += y[i];
}

EF_ALWAYS_INLINE void add_times_impl(double* x, double s, const double* y, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) x[i] += s * y[i];
}

EF_ALWAYS_INLINE void lanes_mse_impl(const double* y, const double* target, std::size_t d, std::size_t N, double* L,
                                     double* grad) {
    for (std::size_t l = 0; l < N; ++l) L[l] = 0.0;
    for (std::size_t i = 0; i < d; ++i) {
        for (std::size_t l = 0; l < N; ++l) {
            const double e = y[i * N + l] - target[i * N + l];
            L[l] += e * e;
            grad[i * N + l] = 2.0 * e / double(d);
        }
    }
    for (std::size_t l = 0; l < N; ++l) L[l] /= double(d);
}

EF_ALWAYS_INLINE void lanes_half_se_impl(const double* y, const double* target, std::size_t k, std::size_t N,
                                         double* L, double* grad) {
    for (std::size_t l = 0; l < N; ++l) L[l] = 0.0;
    for (std::size_t j = 0; j < k; ++j) {
        for (std::size_t l = 0; l < N; ++l) {
            const double e = y[j * N + l] - target[j];
            L[l] += 0.5 * e * e;
            grad[j * N + l] = e;
        }
    }
}

EF_ALWAYS_INLINE void lanes_sgd_impl(double* p, const double* g, const double* lr, const unsigned char* active,
                                     std::size_t count, std::size_t N) {
    for (std::size_t j = 0; j < count; ++j) {
        double* pj = p + j * N;
        const double* gj = g + j * N;
        for (std::size_t l = 0; l < N; ++l) {
            const double pn = pj[l] - lr[l] * gj[l];
            pj[l] = active[l] ? pn : pj[l];
        }
    }
}

}  // namespace

// the kernels (multiversion.hpp)
EF_MULTIVERSION(, void, lanes_add_scaled, (double* x, const double* k, const double* a, std::size_t d, std::size_t N),
                (x, k, a, d, N), lanes_add_scaled_impl)
EF_MULTIVERSION(, void, lanes_scale,
                (double* out, const double* h, double c, const double* v, std::size_t d, std::size_t N),
                (out, h, c, v, d, N), lanes_scale_impl)
EF_MULTIVERSION(, void, add_into, (double* x, const double* y, std::size_t n), (x, y, n), add_into_impl)
EF_MULTIVERSION(, void, add_times, (double* x, double s, const double* y, std::size_t n), (x, s, y, n),
                add_times_impl)
EF_MULTIVERSION(, void, lanes_mse,
                (const double* y, const double* target, std::size_t d, std::size_t N, double* L, double* grad),
                (y, target, d, N, L, grad), lanes_mse_impl)
EF_MULTIVERSION(, void, lanes_half_se,
                (const double* y, const double* target, std::size_t k, std::size_t N, double* L, double* grad),
                (y, target, k, N, L, grad), lanes_half_se_impl)
EF_MULTIVERSION(, void, lanes_sgd,
                (double* p, const double* g, const double* lr, const unsigned char* active, std::size_t count,
                 std::size_t N),
                (p, g, lr, active, count, N), lanes_sgd_impl)

}  // namespace eulerflow
