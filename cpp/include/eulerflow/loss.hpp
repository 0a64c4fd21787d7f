// Losses on feature-major outputs Y (k, n), defined as PyTorch defines them:
//   mse           mean over all k*n elements of (y - t)^2
//   half_se       mean over the n samples of ||y - t||^2 / 2   (seed 001)
//   cross_entropy mean over samples of logsumexp(z) - z[label], or, for
//                 probability targets, sum_j t_j (logsumexp(z) - z_j)
// Each returns the loss and, when g is not null, writes dL/dY into g.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "eulerflow/fastmath.hpp"

namespace eulerflow {

enum class LossKind { Mse = 0, HalfSe = 1, CrossEntropy = 2 };

inline LossKind loss_kind_from_int(int k) {
    if (k < 0 || k > 2) throw std::invalid_argument("unknown loss code " + std::to_string(k));
    return LossKind(k);
}

struct LossWork {
    std::vector<double> zmax, zsum;
    void reserve(std::size_t n) {
        if (zmax.size() < n) {
            zmax.resize(n);
            zsum.resize(n);
        }
    }
};

// targets: either t (k, n) feature-major or labels (n,) class indices.
template <class T>
struct Targets {
    const T* t = nullptr;
    const std::int64_t* labels = nullptr;
};

template <class T>
double squared_error(const T* y, const T* t, std::size_t count, double scale, T* g) {
    double acc = 0.0;
    for (std::size_t i = 0; i < count; ++i) {
        const double e = double(y[i]) - double(t[i]);
        acc += e * e;
        if (g) g[i] = T(2.0 * scale * e);
    }
    return acc * scale;
}

// Returns the mean cross entropy; counts correct argmax predictions in *correct.
template <class T>
double cross_entropy(const T* z, const Targets<T>& tg, std::size_t k, std::size_t n, T* g,
                     LossWork& w, std::size_t* correct) {
    w.reserve(n);
    double* zmax = w.zmax.data();
    double* zsum = w.zsum.data();
    for (std::size_t i = 0; i < n; ++i) zmax[i] = double(z[i]);
    for (std::size_t j = 1; j < k; ++j) {
        const T* zj = z + j * n;
        for (std::size_t i = 0; i < n; ++i) zmax[i] = double(zj[i]) > zmax[i] ? double(zj[i]) : zmax[i];
    }
    for (std::size_t i = 0; i < n; ++i) zsum[i] = 0.0;
    for (std::size_t j = 0; j < k; ++j) {
        const T* zj = z + j * n;
        for (std::size_t i = 0; i < n; ++i) zsum[i] += fastmath::exp(double(zj[i]) - zmax[i]);
    }
    const double inv_n = 1.0 / double(n);
    double total = 0.0;
    std::size_t hits = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double lse = zmax[i] + std::log(zsum[i]);
        // argmax of the prediction (first maximum, like numpy.argmax)
        std::size_t best = 0;
        for (std::size_t j = 1; j < k; ++j) {
            if (double(z[j * n + i]) > double(z[best * n + i])) best = j;
        }
        if (tg.labels) {
            const std::size_t c = std::size_t(tg.labels[i]);
            total += lse - double(z[c * n + i]);
            hits += (best == c);
        } else {
            double tsum = 0.0, tz = 0.0;
            std::size_t tbest = 0;
            for (std::size_t j = 0; j < k; ++j) {
                const double tj = double(tg.t[j * n + i]);
                tsum += tj;
                tz += tj * double(z[j * n + i]);
                if (tj > double(tg.t[tbest * n + i])) tbest = j;
            }
            total += lse * tsum - tz;
            zsum[i] = tsum;  // reused below as the target mass
            hits += (best == tbest);
            zmax[i] = lse;
            continue;
        }
        zmax[i] = lse;
        zsum[i] = 1.0;
    }
    if (correct) *correct = hits;
    if (g) {
        // dL/dz_j = (softmax_j * mass - t_j) / n, with softmax_j = exp(z_j - lse)
        for (std::size_t j = 0; j < k; ++j) {
            const T* zj = z + j * n;
            T* gj = g + j * n;
            for (std::size_t i = 0; i < n; ++i) {
                gj[i] = T(fastmath::exp(double(zj[i]) - zmax[i]) * zsum[i] * inv_n);
            }
            if (tg.labels) {
                for (std::size_t i = 0; i < n; ++i) {
                    if (std::size_t(tg.labels[i]) == j) gj[i] -= T(inv_n);
                }
            } else {
                const T* tj = tg.t + j * n;
                for (std::size_t i = 0; i < n; ++i) gj[i] = T(double(gj[i]) - double(tj[i]) * inv_n);
            }
        }
    }
    return total * inv_n;
}

template <class T>
double loss_and_grad(LossKind kind, const T* y, const Targets<T>& tg, std::size_t k, std::size_t n,
                     T* g, LossWork& w, std::size_t* correct) {
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

}  // namespace eulerflow
