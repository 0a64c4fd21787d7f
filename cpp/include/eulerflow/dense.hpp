// Dense layer y = W x + b on a batch held feature-major: X is (n_in, n) with
// row k holding feature k of every sample. Small layers of big batches then
// run as long contiguous loops over the batch, which vectorize; the public
// row-major (n, features) layout is converted once at the network boundary.
#pragma once

#include <cstddef>

namespace eulerflow {

// Sum of a[i] * b[i] with eight partial sums in a fixed order: vectorizable
// without reassociation flags, and the same bits on every run.
template <class T>
T dot(const T* a, const T* b, std::size_t n) {
    T acc[8] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
    }
    for (; i < n; ++i) acc[0] += a[i] * b[i];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

template <class T>
T sum(const T* a, std::size_t n) {
    T acc[8] = {T(0), T(0), T(0), T(0), T(0), T(0), T(0), T(0)};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; ++j) acc[j] += a[i + j];
    }
    for (; i < n; ++i) acc[0] += a[i];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

// Y (n_out, n) = W (n_out, n_in) X (n_in, n) + b.  b may be null.
template <class T>
void dense_forward(const T* W, const T* b, std::size_t n_in, std::size_t n_out, const T* X, T* Y,
                   std::size_t n) {
    for (std::size_t o = 0; o < n_out; ++o) {
        T* y = Y + o * n;
        const T bo = b ? b[o] : T(0);
        const T* w = W + o * n_in;
        // first feature initialises the row, the rest accumulate
        if (n_in == 0) {
            for (std::size_t i = 0; i < n; ++i) y[i] = bo;
            continue;
        }
        {
            const T w0 = w[0];
            const T* x = X;
            for (std::size_t i = 0; i < n; ++i) y[i] = bo + w0 * x[i];
        }
        for (std::size_t k = 1; k < n_in; ++k) {
            const T wk = w[k];
            const T* x = X + k * n;
            for (std::size_t i = 0; i < n; ++i) y[i] += wk * x[i];
        }
    }
}

// Given gY = dL/dY (n_out, n): gW += gY X^T, gb += gY 1, and, when gX is not
// null, gX = W^T gY (n_in, n). Parameter gradients accumulate so a layer used
// twice in one network (tied weights) receives the sum of both uses.
template <class T>
void dense_backward(const T* W, std::size_t n_in, std::size_t n_out, const T* X, const T* gY,
                    std::size_t n, T* gW, T* gb, T* gX) {
    for (std::size_t o = 0; o < n_out; ++o) {
        const T* gy = gY + o * n;
        for (std::size_t k = 0; k < n_in; ++k) gW[o * n_in + k] += dot(gy, X + k * n, n);
        if (gb) gb[o] += sum(gy, n);
    }
    if (!gX) return;
    for (std::size_t k = 0; k < n_in; ++k) {
        T* gx = gX + k * n;
        {
            const T w0 = W[k];
            for (std::size_t i = 0; i < n; ++i) gx[i] = w0 * gY[i];
        }
        for (std::size_t o = 1; o < n_out; ++o) {
            const T wok = W[o * n_in + k];
            const T* gy = gY + o * n;
            for (std::size_t i = 0; i < n; ++i) gx[i] += wok * gy[i];
        }
    }
}

}  // namespace eulerflow
