// Element-wise helpers of the ensembles (cpp/src/lanes_kernels.cpp): arrays of
// d rows of N lanes; a, h per lane. No fused multiply-adds (see there).
#pragma once

#include <cstddef>

namespace eulerflow {

// x[i, l] += a[l] * k[i, l] where a[l] != 0 (rk_step's `if (a == 0.0) continue`)
void lanes_add_scaled(double* x, const double* k, const double* a, std::size_t d, std::size_t N);
// out[i, l] = h[l] * c * v[i, l], evaluated left to right
void lanes_scale(double* out, const double* h, double c, const double* v, std::size_t d, std::size_t N);
// x += y, and x += s * y, over n values
void add_into(double* x, const double* y, std::size_t n);
void add_times(double* x, double s, const double* y, std::size_t n);
// per lane: L = mean over the d rows of (y - target)^2 and grad = 2 (y - target) / d,
// as NeuralOde::window_gradient's loss
void lanes_mse(const double* y, const double* target, std::size_t d, std::size_t N, double* L, double* grad);
// per lane: L = sum_j (y_j - target_j)^2 / 2 and grad = y - target, one target for
// every lane (net.learn's loss of one fact)
void lanes_half_se(const double* y, const double* target, std::size_t k, std::size_t N, double* L,
                   double* grad);
// p -= lr[l] * g per lane, where active[l]
void lanes_sgd(double* p, const double* g, const double* lr, const unsigned char* active, std::size_t count,
               std::size_t N);

}  // namespace eulerflow
