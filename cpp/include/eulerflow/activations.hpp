// Element-wise activations: forward and derivative side by side.
// Definitions follow PyTorch (relu'(0) = 0, leaky_relu slope 0.01, elu alpha 1,
// softplus beta 1 threshold 20).
#pragma once

#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>

#include "eulerflow/fastmath.hpp"

namespace eulerflow {

enum class ActKind { Identity = 0, Relu, LeakyRelu, Elu, Tanh, Atan, Sigmoid, Softplus };

struct ActParams {
    ActKind kind = ActKind::Identity;
    double p1 = 0.0;  // leaky_relu: slope; elu: alpha; softplus: beta
    double p2 = 0.0;  // softplus: threshold
};

// y = act(x) over n contiguous values.
namespace detail {

template <class T>
EF_ALWAYS_INLINE void activation_forward_impl(const ActParams& a, const T* x, T* y, std::size_t n) {
    namespace fm = fastmath;
    switch (a.kind) {
        case ActKind::Identity:
            for (std::size_t i = 0; i < n; ++i) y[i] = x[i];
            break;
        case ActKind::Relu:
            for (std::size_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
            break;
        case ActKind::LeakyRelu: {
            const T s = T(a.p1);
            for (std::size_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : s * x[i];
            break;
        }
        case ActKind::Elu: {
            const double alpha = a.p1;
            for (std::size_t i = 0; i < n; ++i) {
                const double v = double(x[i]);
                y[i] = T(v > 0.0 ? v : alpha * fm::expm1(v));
            }
            break;
        }
        case ActKind::Tanh:
            for (std::size_t i = 0; i < n; ++i) y[i] = T(fm::tanh(double(x[i])));
            break;
        case ActKind::Atan:
            for (std::size_t i = 0; i < n; ++i) y[i] = T(fm::atan(double(x[i])));
            break;
        case ActKind::Sigmoid:
            for (std::size_t i = 0; i < n; ++i) y[i] = T(fm::sigmoid(double(x[i])));
            break;
        case ActKind::Softplus: {
            const double beta = a.p1, threshold = a.p2;
            for (std::size_t i = 0; i < n; ++i) {
                const double bx = beta * double(x[i]);
                y[i] = T(bx > threshold ? double(x[i]) : std::log1p(std::exp(bx)) / beta);
            }
            break;
        }
    }
}

// gx = gy * act'(x), given the forward input x and output y.
template <class T>
EF_ALWAYS_INLINE void activation_backward_impl(const ActParams& a, const T* x, const T* y, const T* gy, T* gx,
                         std::size_t n) {
    switch (a.kind) {
        case ActKind::Identity:
            for (std::size_t i = 0; i < n; ++i) gx[i] = gy[i];
            break;
        case ActKind::Relu:
            for (std::size_t i = 0; i < n; ++i) gx[i] = x[i] > T(0) ? gy[i] : T(0);
            break;
        case ActKind::LeakyRelu: {
            const T s = T(a.p1);
            for (std::size_t i = 0; i < n; ++i) gx[i] = x[i] > T(0) ? gy[i] : s * gy[i];
            break;
        }
        case ActKind::Elu: {
            const T alpha = T(a.p1);  // d/dx alpha (e^x - 1) = y + alpha
            for (std::size_t i = 0; i < n; ++i) gx[i] = x[i] > T(0) ? gy[i] : gy[i] * (y[i] + alpha);
            break;
        }
        case ActKind::Tanh:
            for (std::size_t i = 0; i < n; ++i) gx[i] = gy[i] * (T(1) - y[i] * y[i]);
            break;
        case ActKind::Atan:
            for (std::size_t i = 0; i < n; ++i) gx[i] = gy[i] / (T(1) + x[i] * x[i]);
            break;
        case ActKind::Sigmoid:
            for (std::size_t i = 0; i < n; ++i) gx[i] = gy[i] * (y[i] * (T(1) - y[i]));
            break;
        case ActKind::Softplus: {
            const double beta = a.p1, threshold = a.p2;
            for (std::size_t i = 0; i < n; ++i) {
                const double bx = beta * double(x[i]);
                gx[i] = bx > threshold ? gy[i] : T(double(gy[i]) * fastmath::sigmoid(bx));
            }
            break;
        }
    }
}


// y = act(x) and dydx = act'(x) in one pass (training keeps the derivative
// for the backward pass instead of recomputing it).
template <class T>
EF_ALWAYS_INLINE void activation_forward_deriv_impl(const ActParams& a, const T* x, T* y, T* d,
                                                    std::size_t n) {
    namespace fm = fastmath;
    switch (a.kind) {
        case ActKind::Atan:
            for (std::size_t i = 0; i < n; ++i) {
                double di;
                y[i] = T(fm::atan_with_derivative(double(x[i]), &di));
                d[i] = T(di);
            }
            return;
        case ActKind::Softplus: {
            const double beta = a.p1, threshold = a.p2;
            for (std::size_t i = 0; i < n; ++i) {
                const double bx = beta * double(x[i]);
                const double e = fm::exp(bx);
                y[i] = T(bx > threshold ? double(x[i]) : std::log1p(e) / beta);
                d[i] = T(bx > threshold ? 1.0 : e / (1.0 + e));
            }
            return;
        }
        default:
            break;
    }
    activation_forward_impl(a, x, y, n);
    switch (a.kind) {
        case ActKind::Identity:
            for (std::size_t i = 0; i < n; ++i) d[i] = T(1);
            break;
        case ActKind::Relu:
            for (std::size_t i = 0; i < n; ++i) d[i] = x[i] > T(0) ? T(1) : T(0);
            break;
        case ActKind::LeakyRelu: {
            const T s = T(a.p1);
            for (std::size_t i = 0; i < n; ++i) d[i] = x[i] > T(0) ? T(1) : s;
            break;
        }
        case ActKind::Elu: {
            const T alpha = T(a.p1);
            for (std::size_t i = 0; i < n; ++i) d[i] = x[i] > T(0) ? T(1) : y[i] + alpha;
            break;
        }
        case ActKind::Tanh:
            for (std::size_t i = 0; i < n; ++i) d[i] = T(1) - y[i] * y[i];
            break;
        case ActKind::Sigmoid:
            for (std::size_t i = 0; i < n; ++i) d[i] = y[i] * (T(1) - y[i]);
            break;
        default:
            break;
    }
}

template <class T>
EF_ALWAYS_INLINE void multiply_impl(const T* a, const T* b, T* out, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}

}  // namespace detail

inline ActKind activation_kind_from_int(int k) {
    if (k < 0 || k > int(ActKind::Softplus)) {
        throw std::invalid_argument("unknown activation code " + std::to_string(k));
    }
    return ActKind(k);
}

// Dispatched kernels (defined in kernels.cpp, compiled for several ISAs).
void activation_forward(const ActParams& a, const double* x, double* y, std::size_t n);
void activation_forward(const ActParams& a, const float* x, float* y, std::size_t n);
void activation_backward(const ActParams& a, const double* x, const double* y, const double* gy,
                         double* gx, std::size_t n);
void activation_backward(const ActParams& a, const float* x, const float* y, const float* gy,
                         float* gx, std::size_t n);
void activation_forward_deriv(const ActParams& a, const double* x, double* y, double* d,
                              std::size_t n);
void activation_forward_deriv(const ActParams& a, const float* x, float* y, float* d,
                              std::size_t n);
// out = a * b element-wise (the backward pass through a kept derivative)
void multiply(const double* a, const double* b, double* out, std::size_t n);
void multiply(const float* a, const float* b, float* out, std::size_t n);

}  // namespace eulerflow
