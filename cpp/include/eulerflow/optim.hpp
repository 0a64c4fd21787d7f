// Optimizers with torch.optim's update rules, step for step (single-tensor,
// non-amsgrad). The state buffers are flat arrays owned by the caller, laid out
// parameter after parameter, so they can be saved and restored exactly.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "eulerflow/fastmath.hpp"

namespace eulerflow {

enum class OptimKind { Sgd = 0, Adam = 1, Nadam = 2 };

struct OptimConfig {
    OptimKind kind = OptimKind::Sgd;
    double lr = 1e-2;
    double momentum = 0.0, dampening = 0.0, weight_decay = 0.0;
    bool nesterov = false;
    double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, momentum_decay = 4e-3;
};

// Scalars of the optimizer's state: steps taken so far and Nadam's product of mu.
struct OptimScalars {
    std::int64_t step = 0;
    double mu_product = 1.0;
};

template <class T>
struct ParamRef {
    T* p;
    T* g;
    std::size_t size;
    bool is_weight;    // a Dense weight matrix (fit's global l1/l2 apply), not a bias
    double l1 = 0.0;   // the parameter's own penalty l1 sum|p| + l2 sum p^2
    double l2 = 0.0;   // (Keras bias_regularizer)
};

// The scalars of one step, from optim_advance: the step's number and Nadam's
// coefficients of the gradient and of the first moment.
struct OptimStep {
    std::int64_t step = 0;
    double nadam_g = 0.0, nadam_m = 0.0;
};

namespace detail {

// Nadam (Dozat 2016) with torch's momentum schedule mu_t = b1 (1 - 0.5 * 0.96^(t psi)).
// Written as optim_step_lanes_impl writes it: mu has the same uses here, so
// the compiler rounds (or fuses) it the same way in both.
EF_ALWAYS_INLINE OptimStep optim_advance_impl(const OptimConfig& c, OptimScalars& s) {
    OptimStep st;
    st.step = ++s.step;
    if (c.kind == OptimKind::Nadam) {
        const double b1 = c.beta1;
        const double mu = b1 * (1.0 - 0.5 * std::pow(0.96, double(st.step) * c.momentum_decay));
        const double mu_next = b1 * (1.0 - 0.5 * std::pow(0.96, double(st.step + 1) * c.momentum_decay));
        s.mu_product *= mu;
        const double mu_product_next = s.mu_product * mu_next;
        st.nadam_g = -c.lr * (1.0 - mu) / (1.0 - s.mu_product);
        st.nadam_m = -c.lr * mu_next / (1.0 - mu_product_next);
    }
    return st;
}

// Adam's and Nadam's common part for one value: the (decayed) gradient d, and the
// first and second moments m, v updated with it. Returns d.
template <class T>
EF_ALWAYS_INLINE T adam_moments(T g, T p, T& m, T& v, bool decay, T wdt, T omb1, T b2t, T omb2) {
    const T d = decay ? g + wdt * p : g;
    m += omb1 * (d - m);
    v = b2t * v + omb2 * d * d;
    return d;
}

// The update of one parameter array of n values (its momentum or first and
// second moments in buf1/buf2; buf2 unused by SGD) at the step s that
// optim_advance gave. Each value is updated on its own, so any split of an array
// into pieces that start at multiples of the vector length gives the same bits.
template <class T>
EF_ALWAYS_INLINE void optim_update_impl(const OptimConfig& c, const OptimStep& s, T* p, const T* g,
                                        T* buf1, T* buf2, std::size_t n) {
    const std::int64_t step = s.step;
    const double wd = c.weight_decay;
    if (c.kind == OptimKind::Sgd) {
        const T lr = T(c.lr), mom = T(c.momentum), damp1 = T(1.0 - c.dampening), wdt = T(wd);
        // the options in locals and the new momentum in a register: a store to p or
        // buf could otherwise alias them, and every value would wait for its reload
        const bool momentum = c.momentum != 0.0, nesterov = c.nesterov, decay = wd != 0.0;
        T* buf = buf1;
        for (std::size_t i = 0; i < n; ++i) {
            T d = decay ? g[i] + wdt * p[i] : g[i];
            if (momentum) {
                const T b = step == 1 ? d : mom * buf[i] + damp1 * d;
                buf[i] = b;
                d = nesterov ? d + mom * b : b;
            }
            p[i] -= lr * d;
        }
        return;
    }
    const double b1 = c.beta1, b2 = c.beta2;
    const double bc2 = 1.0 - std::pow(b2, double(step));
    if (c.kind == OptimKind::Adam) {
        const T step_size = T(c.lr / (1.0 - std::pow(b1, double(step))));
        const T bc2_sqrt = T(std::sqrt(bc2));
        const T eps = T(c.eps), omb1 = T(1.0 - b1), b2t = T(b2), omb2 = T(1.0 - b2), wdt = T(wd);
        T* m = buf1;
        T* v = buf2;
        for (std::size_t i = 0; i < n; ++i) {
            adam_moments(g[i], p[i], m[i], v[i], wd != 0.0, wdt, omb1, b2t, omb2);
            const T denom = std::sqrt(v[i]) / bc2_sqrt + eps;
            p[i] -= step_size * (m[i] / denom);
        }
        return;
    }
    // Nadam
    const T coef_g = T(s.nadam_g), coef_m = T(s.nadam_m);
    const T eps = T(c.eps), omb1 = T(1.0 - b1), b2t = T(b2), omb2 = T(1.0 - b2), wdt = T(wd);
    const T bc2t = T(bc2);
    T* m = buf1;
    T* v = buf2;
    for (std::size_t i = 0; i < n; ++i) {
        const T d = adam_moments(g[i], p[i], m[i], v[i], wd != 0.0, wdt, omb1, b2t, omb2);
        const T denom = std::sqrt(v[i] / bc2t) + eps;
        p[i] += coef_g * (d / denom);
        p[i] += coef_m * (m[i] / denom);
    }
}

// The same update for an ensemble held in lanes: p, g, buf1, buf2 are
// (count, N) with member l in lane l, each member with its own learning rate
// lr[l]; members whose active[l] is 0 are left untouched. Every member's
// arithmetic is optim_update_impl's, expression for expression, so it ends
// bit-identical to its separate training.
template <class T>
EF_ALWAYS_INLINE void optim_step_lanes_impl(const OptimConfig& c, OptimScalars& s, const double* lr,
                                            const unsigned char* active, std::size_t N, T* p,
                                            const T* g, std::size_t count, T* buf1, T* buf2,
                                            T* coef_a, T* coef_b) {
    const std::int64_t step = ++s.step;
    const double wd = c.weight_decay;
    if (c.kind == OptimKind::Sgd) {
        const T mom = T(c.momentum), damp1 = T(1.0 - c.dampening), wdt = T(wd);
        for (std::size_t l = 0; l < N; ++l) coef_a[l] = T(lr[l]);
        // one loop per combination of the options, each branch-free inside
        auto run = [&](auto use_wd, auto use_mom, auto first, auto nesterov) {
            for (std::size_t j = 0; j < count; ++j) {
                T* pj = p + j * N;
                const T* gj = g + j * N;
                T* buf = buf1 + j * N;
                for (std::size_t l = 0; l < N; ++l) {  // frozen members keep their values (a blend)
                    T d = use_wd ? gj[l] + wdt * pj[l] : gj[l];
                    if (use_mom) {
                        const T b = first ? d : mom * buf[l] + damp1 * d;
                        buf[l] = active[l] ? b : buf[l];
                        d = nesterov ? d + mom * b : b;
                    }
                    const T pn = pj[l] - coef_a[l] * d;
                    pj[l] = active[l] ? pn : pj[l];
                }
            }
        };
        using Y = std::true_type;
        using F = std::false_type;
        const bool w = wd != 0.0;
        if (c.momentum == 0.0) {
            w ? run(Y{}, F{}, F{}, F{}) : run(F{}, F{}, F{}, F{});
        } else if (step == 1) {
            c.nesterov ? (w ? run(Y{}, Y{}, Y{}, Y{}) : run(F{}, Y{}, Y{}, Y{}))
                       : (w ? run(Y{}, Y{}, Y{}, F{}) : run(F{}, Y{}, Y{}, F{}));
        } else {
            c.nesterov ? (w ? run(Y{}, Y{}, F{}, Y{}) : run(F{}, Y{}, F{}, Y{}))
                       : (w ? run(Y{}, Y{}, F{}, F{}) : run(F{}, Y{}, F{}, F{}));
        }
        return;
    }
    const double b1 = c.beta1, b2 = c.beta2;
    const double bc2 = 1.0 - std::pow(b2, double(step));
    if (c.kind == OptimKind::Adam) {
        const double bc1 = 1.0 - std::pow(b1, double(step));
        for (std::size_t l = 0; l < N; ++l) coef_a[l] = T(lr[l] / bc1);
        const T bc2_sqrt = T(std::sqrt(bc2));
        const T eps = T(c.eps), omb1 = T(1.0 - b1), b2t = T(b2), omb2 = T(1.0 - b2), wdt = T(wd);
        for (std::size_t j = 0; j < count; ++j) {
            T* pj = p + j * N;
            const T* gj = g + j * N;
            T* m = buf1 + j * N;
            T* v = buf2 + j * N;
            for (std::size_t l = 0; l < N; ++l) {
                const T d = wd != 0.0 ? gj[l] + wdt * pj[l] : gj[l];
                const T mn = m[l] + omb1 * (d - m[l]);
                const T vn = b2t * v[l] + omb2 * d * d;
                const T denom = std::sqrt(vn) / bc2_sqrt + eps;
                const T pn = pj[l] - coef_a[l] * (mn / denom);
                m[l] = active[l] ? mn : m[l];
                v[l] = active[l] ? vn : v[l];
                pj[l] = active[l] ? pn : pj[l];
            }
        }
        return;
    }
    const double mu = b1 * (1.0 - 0.5 * std::pow(0.96, double(step) * c.momentum_decay));
    const double mu_next = b1 * (1.0 - 0.5 * std::pow(0.96, double(step + 1) * c.momentum_decay));
    s.mu_product *= mu;
    const double mu_product_next = s.mu_product * mu_next;
    for (std::size_t l = 0; l < N; ++l) {
        coef_a[l] = T(-lr[l] * (1.0 - mu) / (1.0 - s.mu_product));
        coef_b[l] = T(-lr[l] * mu_next / (1.0 - mu_product_next));
    }
    const T eps = T(c.eps), omb1 = T(1.0 - b1), b2t = T(b2), omb2 = T(1.0 - b2), wdt = T(wd);
    const T bc2t = T(bc2);
    for (std::size_t j = 0; j < count; ++j) {
        T* pj = p + j * N;
        const T* gj = g + j * N;
        T* m = buf1 + j * N;
        T* v = buf2 + j * N;
        for (std::size_t l = 0; l < N; ++l) {
            const T d = wd != 0.0 ? gj[l] + wdt * pj[l] : gj[l];
            const T mn = m[l] + omb1 * (d - m[l]);
            const T vn = b2t * v[l] + omb2 * d * d;
            const T denom = std::sqrt(vn / bc2t) + eps;
            T pn = pj[l] + coef_a[l] * (d / denom);
            pn += coef_b[l] * (mn / denom);
            m[l] = active[l] ? mn : m[l];
            v[l] = active[l] ? vn : v[l];
            pj[l] = active[l] ? pn : pj[l];
        }
    }
}

}  // namespace detail

// Dispatched kernels (defined in kernels.cpp, compiled for several ISAs).
// optim_advance advances the optimizer's scalars by one step (the step count,
// Nadam's product of mu) and gives the step's coefficients. It is a kernel
// although scalar: compiled for each variant, it rounds (or fuses) as the
// ensembles' optim_step_lanes does, so a member stays bit-identical to its
// separate training.
OptimStep optim_advance(const OptimConfig& c, OptimScalars& s);
void optim_update(const OptimConfig& c, const OptimStep& s, double* p, const double* g, double* buf1,
                  double* buf2, std::size_t n);
void optim_update(const OptimConfig& c, const OptimStep& s, float* p, const float* g, float* buf1,
                  float* buf2, std::size_t n);

// One update of every parameter (optim.cpp): optim_advance, then
// optim_update of each parameter with its state at buf1/buf2 + the sizes of
// the parameters before it (buf2 unused by SGD). Large parameter sets are
// split across the thread pool, by pieces of independent values: the same
// bits whatever the thread count.
void optim_step(const OptimConfig& c, OptimScalars& s, const std::vector<ParamRef<double>>& params,
                double* buf1, double* buf2);
void optim_step(const OptimConfig& c, OptimScalars& s, const std::vector<ParamRef<float>>& params,
                float* buf1, float* buf2);
// coef_a, coef_b: scratch of N values each.
void optim_step_lanes(const OptimConfig& c, OptimScalars& s, const double* lr, const unsigned char* active,
                      std::size_t N, double* p, const double* g, std::size_t count, double* buf1,
                      double* buf2, double* coef_a, double* coef_b);

}  // namespace eulerflow
