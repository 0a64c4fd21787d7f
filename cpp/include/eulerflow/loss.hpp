// Losses on feature-major outputs Y (k, n), defined as PyTorch defines them:
//   mse           mean over all k*n elements of (y - t)^2
//   half_se       mean over the n samples of ||y - t||^2 / 2   (seed 001)
//   cross_entropy mean over samples of logsumexp(z) - z[label], or, for
//                 probability targets, sum_j t_j (logsumexp(z) - z_j)
// Each returns the loss and, when g is not null, writes dL/dY into g.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "eulerflow/fastmath.hpp"

namespace eulerflow {

enum class LossKind { Mse = 0, HalfSe = 1, CrossEntropy = 2 };

inline LossKind loss_kind_from_int(int k) {
    if (k < 0 || k > 2) throw std::invalid_argument("unknown loss code " + std::to_string(k));
    return LossKind(k);
}

// Per-sample scratch for cross entropy; sized by the caller before the loop.
struct LossWork {
    std::vector<double> zmax, zsum, best_val, best_t;
    std::vector<std::int64_t> best, best_tj;
    void reserve(std::size_t n) {
        if (zmax.size() < n) {
            zmax.resize(n);
            zsum.resize(n);
            best_val.resize(n);
            best_t.resize(n);
            best.resize(n);
            best_tj.resize(n);
        }
    }
};

// targets: either t (k, n) feature-major or labels (n,) class indices.
template <class T>
struct Targets {
    const T* t = nullptr;
    const std::int64_t* labels = nullptr;
};

namespace detail {

// A loop that both sums and stores must not exist in a multi-versioned kernel:
// GCC vectorizes it behind a runtime aliasing check, the vector version sums
// products rounded apart while the scalar fallback fuses them (FMA), so the
// bits would depend on where the buffers happen to lie. Sums run in loops of
// their own, which have a single code path.
template <class T>
EF_ALWAYS_INLINE double squared_error(const T* y, const T* t, std::size_t count, double scale, T* g) {
    double acc = 0.0;
    for (std::size_t i = 0; i < count; ++i) {
        const double e = double(y[i]) - double(t[i]);
        acc += e * e;
    }
    if (g) {
        for (std::size_t i = 0; i < count; ++i) g[i] = T(2.0 * scale * (double(y[i]) - double(t[i])));
    }
    return acc * scale;
}

// Mean cross entropy; counts correct argmax predictions (first maximum, as
// numpy.argmax) in *correct. Every pass runs along a contiguous row of n
// samples so that it vectorizes; exp is evaluated once per element.
template <class T>
EF_ALWAYS_INLINE double cross_entropy(const T* z, const Targets<T>& tg, std::size_t k, std::size_t n, T* g,
                     LossWork& w, std::size_t* correct) {
    double* zmax = w.zmax.data();
    double* zsum = w.zsum.data();
    double* bval = w.best_val.data();
    std::int64_t* best = w.best.data();
    for (std::size_t i = 0; i < n; ++i) {
        zmax[i] = double(z[i]);
        best[i] = 0;
    }
    for (std::size_t j = 1; j < k; ++j) {
        const T* zj = z + j * n;
        for (std::size_t i = 0; i < n; ++i) {
            const bool up = double(zj[i]) > zmax[i];
            best[i] = up ? std::int64_t(j) : best[i];
            zmax[i] = up ? double(zj[i]) : zmax[i];
        }
    }
    // softmax numerators e_j = exp(z_j - max) go into g (or nowhere)
    for (std::size_t i = 0; i < n; ++i) zsum[i] = 0.0;
    for (std::size_t j = 0; j < k; ++j) {
        const T* zj = z + j * n;
        T* gj = g ? g + j * n : nullptr;
        for (std::size_t i = 0; i < n; ++i) {
            const double e = fastmath::exp(double(zj[i]) - zmax[i]);
            zsum[i] += e;
            if (gj) gj[i] = T(e);
        }
    }
    const double inv_n = 1.0 / double(n);
    double total = 0.0;
    std::size_t hits = 0;
    // zmax becomes logsumexp (a vectorized pass), then the loss is gathered
    for (std::size_t i = 0; i < n; ++i) zmax[i] += fastmath::log(zsum[i]);
    if (tg.labels) {
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t c = std::size_t(tg.labels[i]);
            total += zmax[i] - double(z[c * n + i]);
            hits += std::size_t(best[i] == std::int64_t(c));
        }
        if (g) {  // the gradient's scale only: a loss alone (landscapes) skips the divisions
            for (std::size_t i = 0; i < n; ++i) zsum[i] = inv_n / zsum[i];
        }
    } else {
        double* tsum = bval;
        double* tz = w.best_t.data();
        std::int64_t* tbest = w.best_tj.data();
        for (std::size_t i = 0; i < n; ++i) {
            tsum[i] = 0.0;
            tz[i] = 0.0;
            tbest[i] = 0;
        }
        for (std::size_t j = 0; j < k; ++j) {
            const T* tj = tg.t + j * n;
            const T* zj = z + j * n;
            for (std::size_t i = 0; i < n; ++i) {
                tsum[i] += double(tj[i]);
                tz[i] += double(tj[i]) * double(zj[i]);
                tbest[i] = double(tj[i]) > double(tg.t[std::size_t(tbest[i]) * n + i]) ? std::int64_t(j) : tbest[i];
            }
        }
        for (std::size_t i = 0; i < n; ++i) {
            total += zmax[i] * tsum[i] - tz[i];
            hits += std::size_t(best[i] == tbest[i]);
        }
        if (g) {
            for (std::size_t i = 0; i < n; ++i) zsum[i] = tsum[i] * inv_n / zsum[i];
        }
    }
    if (correct) *correct = hits;
    if (g) {
        // dL/dz_j = (softmax_j * mass - t_j) / n
        for (std::size_t j = 0; j < k; ++j) {
            T* gj = g + j * n;
            for (std::size_t i = 0; i < n; ++i) gj[i] = T(double(gj[i]) * zsum[i]);
            if (tg.labels) {
                const std::int64_t jj = std::int64_t(j);
                const T step = T(inv_n);
                for (std::size_t i = 0; i < n; ++i) gj[i] -= tg.labels[i] == jj ? step : T(0);
            } else {
                const T* tj = tg.t + j * n;
                for (std::size_t i = 0; i < n; ++i) gj[i] = T(double(gj[i]) - double(tj[i]) * inv_n);
            }
        }
    }
    return total * inv_n;
}

template <class T>
EF_ALWAYS_INLINE double loss_and_grad_impl(LossKind kind, const T* y, const Targets<T>& tg, std::size_t k,
                          std::size_t n, T* g, LossWork& w, std::size_t* correct) {
    switch (kind) {
        case LossKind::Mse:
            return squared_error(y, tg.t, k * n, 1.0 / double(k * n), g);
        case LossKind::HalfSe:
            return squared_error(y, tg.t, k * n, 0.5 / double(n), g);
        case LossKind::CrossEntropy:
            return cross_entropy(y, tg, k, n, g, w, correct);
    }
    return 0.0;
}

}  // namespace detail

// Dispatched kernels (defined in kernels.cpp, compiled for several ISAs).
// w must have been reserved for n samples.
double loss_and_grad(LossKind kind, const double* y, const Targets<double>& tg, std::size_t k,
                     std::size_t n, double* g, LossWork& w, std::size_t* correct);
double loss_and_grad(LossKind kind, const float* y, const Targets<float>& tg, std::size_t k,
                     std::size_t n, float* g, LossWork& w, std::size_t* correct);

}  // namespace eulerflow
