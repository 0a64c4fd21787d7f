// Dense layer y = W x + b on a batch held feature-major: X is (n_in, n) with
// row k holding feature k of every sample. Small layers of big batches then
// run as long contiguous loops over the batch, which vectorize; the public
// row-major (n, features) layout is converted once at the network boundary.
#pragma once

#include <cstddef>

#include "eulerflow/fastmath.hpp"

namespace eulerflow {

// Pairwise sum of C partial sums, in a fixed order.
template <std::size_t C, class T>
EF_ALWAYS_INLINE T reduce_impl(T* s) {
    for (std::size_t w = C / 2; w > 0; w /= 2) {
        for (std::size_t j = 0; j < w; ++j) s[j] += s[j + w];
    }
    return s[0];
}

// Sum of a[i] * b[i] with C partial sums in a fixed order: vectorizable
// without reassociation flags, and the same bits on every run.
namespace detail {

template <class T>
EF_ALWAYS_INLINE T dot_impl(const T* a, const T* b, std::size_t n) {
    constexpr std::size_t C = 32;
    T acc[C] = {};
    std::size_t i = 0;
    for (; i + C <= n; i += C) {
        for (std::size_t j = 0; j < C; ++j) acc[j] += a[i + j] * b[i + j];
    }
    if (i < n) {  // the tail as one more zero-padded chunk
        T ta[C] = {}, tb[C] = {};
        for (std::size_t j = 0; i + j < n; ++j) {
            ta[j] = a[i + j];
            tb[j] = b[i + j];
        }
        for (std::size_t j = 0; j < C; ++j) acc[j] += ta[j] * tb[j];
    }
    return reduce_impl<C>(acc);
}

template <class T>
EF_ALWAYS_INLINE T sum_impl(const T* a, std::size_t n) {
    constexpr std::size_t C = 32;
    T acc[C] = {};
    std::size_t i = 0;
    for (; i + C <= n; i += C) {
        for (std::size_t j = 0; j < C; ++j) acc[j] += a[i + j];
    }
    if (i < n) {
        T ta[C] = {};
        for (std::size_t j = 0; i + j < n; ++j) ta[j] = a[i + j];
        for (std::size_t j = 0; j < C; ++j) acc[j] += ta[j];
    }
    return reduce_impl<C>(acc);
}

// Y (n_out, n) = W (n_out, n_in) X (n_in, n) + b.  b may be null.
// Each output row is built in register-sized chunks of the batch: the chunk
// accumulates over all inputs before it is stored once.
template <class T>
EF_ALWAYS_INLINE void dense_forward_impl(const T* W, const T* b, std::size_t n_in,
                                         std::size_t n_out, const T* X, T* Y, std::size_t n) {
    constexpr std::size_t C = 32;
    for (std::size_t o = 0; o < n_out; ++o) {
        T* y = Y + o * n;
        const T bo = b ? b[o] : T(0);
        const T* w = W + o * n_in;
        std::size_t i = 0;
        for (; i + C <= n; i += C) {
            T acc[C];
            for (std::size_t j = 0; j < C; ++j) acc[j] = bo;
            for (std::size_t k = 0; k < n_in; ++k) {
                const T wk = w[k];
                const T* x = X + k * n + i;
                for (std::size_t j = 0; j < C; ++j) acc[j] += wk * x[j];
            }
            for (std::size_t j = 0; j < C; ++j) y[i + j] = acc[j];
        }
        for (; i < n; ++i) {
            T acc = bo;
            for (std::size_t k = 0; k < n_in; ++k) acc += w[k] * X[k * n + i];
            y[i] = acc;
        }
    }
}

// Four dot products sharing the left operand: out[r] = a . b_r.
template <class T>
EF_ALWAYS_INLINE void dot4_impl(const T* a, const T* b0, const T* b1, const T* b2, const T* b3,
                                std::size_t n, T* out) {
    constexpr std::size_t C = 16;
    T s0[C] = {}, s1[C] = {}, s2[C] = {}, s3[C] = {};
    std::size_t i = 0;
    for (; i + C <= n; i += C) {
        for (std::size_t j = 0; j < C; ++j) {
            s0[j] += a[i + j] * b0[i + j];
            s1[j] += a[i + j] * b1[i + j];
            s2[j] += a[i + j] * b2[i + j];
            s3[j] += a[i + j] * b3[i + j];
        }
    }
    if (i < n) {  // the tail as one more zero-padded chunk
        T ta[C] = {}, t0[C] = {}, t1[C] = {}, t2[C] = {}, t3[C] = {};
        for (std::size_t j = 0; i + j < n; ++j) {
            ta[j] = a[i + j];
            t0[j] = b0[i + j];
            t1[j] = b1[i + j];
            t2[j] = b2[i + j];
            t3[j] = b3[i + j];
        }
        for (std::size_t j = 0; j < C; ++j) {
            s0[j] += ta[j] * t0[j];
            s1[j] += ta[j] * t1[j];
            s2[j] += ta[j] * t2[j];
            s3[j] += ta[j] * t3[j];
        }
    }
    out[0] = reduce_impl<C>(s0);
    out[1] = reduce_impl<C>(s1);
    out[2] = reduce_impl<C>(s2);
    out[3] = reduce_impl<C>(s3);
}

// Given gY = dL/dY (n_out, n): gW += gY X^T, gb += gY 1, and, when gX is not
// null, gX = W^T gY (n_in, n). Parameter gradients accumulate so a layer used
// twice in one network (tied weights) receives the sum of both uses.
template <class T>
EF_ALWAYS_INLINE void dense_backward_impl(const T* W, std::size_t n_in, std::size_t n_out,
                                          const T* X, const T* gY, std::size_t n, T* gW, T* gb,
                                          T* gX) {
    if (n_in >= 4 || n_out < 4) {
        // four inputs at a time share one output-gradient row
        for (std::size_t o = 0; o < n_out; ++o) {
            const T* gy = gY + o * n;
            T* gw = gW + o * n_in;
            std::size_t k = 0;
            for (; k + 4 <= n_in; k += 4) {
                T d[4];
                dot4_impl(gy, X + k * n, X + (k + 1) * n, X + (k + 2) * n, X + (k + 3) * n, n, d);
                for (int r = 0; r < 4; ++r) gw[k + r] += d[r];
            }
            for (; k < n_in; ++k) gw[k] += dot_impl(gy, X + k * n, n);
        }
    } else {
        // narrow input (e.g. 2 features): four output rows at a time share one input row
        for (std::size_t k = 0; k < n_in; ++k) {
            const T* x = X + k * n;
            std::size_t o = 0;
            for (; o + 4 <= n_out; o += 4) {
                T d[4];
                dot4_impl(x, gY + o * n, gY + (o + 1) * n, gY + (o + 2) * n, gY + (o + 3) * n, n, d);
                for (int r = 0; r < 4; ++r) gW[(o + r) * n_in + k] += d[r];
            }
            for (; o < n_out; ++o) gW[o * n_in + k] += dot_impl(x, gY + o * n, n);
        }
    }
    if (gb) {
        for (std::size_t o = 0; o < n_out; ++o) gb[o] += sum_impl(gY + o * n, n);
    }
    if (!gX) return;
    constexpr std::size_t C = 32;
    for (std::size_t k = 0; k < n_in; ++k) {
        T* gx = gX + k * n;
        std::size_t i = 0;
        for (; i + C <= n; i += C) {
            T acc[C] = {};
            for (std::size_t o = 0; o < n_out; ++o) {
                const T wok = W[o * n_in + k];
                const T* gy = gY + o * n + i;
                for (std::size_t j = 0; j < C; ++j) acc[j] += wok * gy[j];
            }
            for (std::size_t j = 0; j < C; ++j) gx[i + j] = acc[j];
        }
        for (; i < n; ++i) {
            T acc = T(0);
            for (std::size_t o = 0; o < n_out; ++o) acc += W[o * n_in + k] * gY[o * n + i];
            gx[i] = acc;
        }
    }
}

}  // namespace detail

// Dispatched kernels (defined in kernels.cpp, compiled for several ISAs).
void dense_forward(const double* W, const double* b, std::size_t n_in, std::size_t n_out,
                   const double* X, double* Y, std::size_t n);
void dense_forward(const float* W, const float* b, std::size_t n_in, std::size_t n_out,
                   const float* X, float* Y, std::size_t n);
void dense_backward(const double* W, std::size_t n_in, std::size_t n_out, const double* X,
                    const double* gY, std::size_t n, double* gW, double* gb, double* gX);
void dense_backward(const float* W, std::size_t n_in, std::size_t n_out, const float* X,
                    const float* gY, std::size_t n, float* gW, float* gb, float* gX);

}  // namespace eulerflow
