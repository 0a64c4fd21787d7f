// Dense layer y = W x + b on a batch held feature-major: X is (n_in, n) with
// row k holding feature k of every sample. Small layers of big batches then
// run as long contiguous loops over the batch, which vectorize; the public
// row-major (n, features) layout is converted once at the network boundary.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "eulerflow/fastmath.hpp"

namespace eulerflow {

namespace detail {

// A SIMD register's worth of T as a GCC/Clang vector type: 32 bytes, 4
// doubles or 8 floats, the AVX2 width (the AVX-512 clone uses ymm too, which
// Zen 4 runs at the same rate; 64-byte vectors made the AVX2 clone spill).
// Naming the vectors keeps the accumulators in registers, which plain arrays
// do not guarantee.
template <class T>
struct Simd;
template <>
struct Simd<double> {
    typedef double type __attribute__((vector_size(32)));
};
template <>
struct Simd<float> {
    typedef float type __attribute__((vector_size(32)));
};

template <class T>
using vec_t = typename Simd<T>::type;

template <class T>
constexpr std::size_t lanes() {
    return sizeof(vec_t<T>) / sizeof(T);
}

template <class T>
EF_ALWAYS_INLINE vec_t<T> vload(const T* p) {
    vec_t<T> v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

template <class T>
EF_ALWAYS_INLINE void vstore(T* p, const vec_t<T>& v) {
    std::memcpy(p, &v, sizeof v);
}

template <class T>
EF_ALWAYS_INLINE T hsum(const vec_t<T>& v) {
    T buf[lanes<T>()];
    std::memcpy(buf, &v, sizeof v);
    for (std::size_t w = lanes<T>() / 2; w > 0; w /= 2) {
        for (std::size_t j = 0; j < w; ++j) buf[j] += buf[j + w];
    }
    return buf[0];
}

// Lanes j of a vector whose position start + j is below `from` are zeroed:
// the last chunk of a row is read at n - L, overlapping what was summed.
template <class T>
EF_ALWAYS_INLINE vec_t<T> mask_below(const vec_t<T>& v, std::size_t start, std::size_t from) {
    T buf[lanes<T>()];
    std::memcpy(buf, &v, sizeof v);
    for (std::size_t j = 0; j < lanes<T>(); ++j) buf[j] = start + j >= from ? buf[j] : T(0);
    vec_t<T> r;
    std::memcpy(&r, buf, sizeof r);
    return r;
}

// R dot products sharing the left operand, out[r] = a . b[r], with two
// vector accumulators per product. Fixed summation order: same bits every run.
template <std::size_t R, class T>
EF_ALWAYS_INLINE void dots_impl(const T* a, const T* const* b, std::size_t n, T* out) {
    constexpr std::size_t L = lanes<T>();
    if (n < 2 * L) {
        for (std::size_t r = 0; r < R; ++r) {
            T acc = T(0);
            for (std::size_t i = 0; i < n; ++i) acc += a[i] * b[r][i];
            out[r] = acc;
        }
        return;
    }
    vec_t<T> s0[R], s1[R];
    for (std::size_t r = 0; r < R; ++r) s0[r] = s1[r] = vec_t<T>{};
    std::size_t i = 0;
    for (; i + 2 * L <= n; i += 2 * L) {
        const vec_t<T> a0 = vload(a + i), a1 = vload(a + i + L);
        for (std::size_t r = 0; r < R; ++r) {
            s0[r] += a0 * vload(b[r] + i);
            s1[r] += a1 * vload(b[r] + i + L);
        }
    }
    if (i < n) {  // the tail: the last 2L values, the part already summed masked out
        const std::size_t st = n - 2 * L;
        const vec_t<T> a0 = mask_below<T>(vload(a + st), st, i);
        const vec_t<T> a1 = mask_below<T>(vload(a + st + L), st + L, i);
        for (std::size_t r = 0; r < R; ++r) {
            s0[r] += a0 * vload(b[r] + st);
            s1[r] += a1 * vload(b[r] + st + L);
        }
    }
    for (std::size_t r = 0; r < R; ++r) out[r] = hsum<T>(s0[r] + s1[r]);
}

template <class T>
EF_ALWAYS_INLINE T dot_impl(const T* a, const T* b, std::size_t n) {
    T out;
    dots_impl<1>(a, &b, n, &out);
    return out;
}

template <class T>
EF_ALWAYS_INLINE T sum_impl(const T* a, std::size_t n) {
    T acc = T(0);
    constexpr std::size_t L = lanes<T>();
    if (n < L) {
        for (std::size_t i = 0; i < n; ++i) acc += a[i];
        return acc;
    }
    vec_t<T> s{};
    std::size_t i = 0;
    for (; i + L <= n; i += L) s += vload(a + i);
    if (i < n) s += mask_below<T>(vload(a + n - L), n - L, i);
    return hsum<T>(s);
}

// Y (n_out, n) = W (n_out, n_in) X (n_in, n) + b.  b may be null.
// Each output row is built in chunks of four vectors: the chunk accumulates
// over all inputs in registers before it is stored once. The last chunk is
// shifted back to end at n (it rewrites overlapping outputs with the same
// values); batches below one chunk take a scalar loop.
template <class T>
EF_ALWAYS_INLINE void dense_forward_impl(const T* W, const T* b, std::size_t n_in,
                                         std::size_t n_out, const T* X, T* Y, std::size_t n) {
    constexpr std::size_t L = lanes<T>(), C = 4 * L;
    for (std::size_t o = 0; o < n_out; ++o) {
        T* y = Y + o * n;
        const T bo = b ? b[o] : T(0);
        const T* w = W + o * n_in;
        std::size_t i0 = 0;
        for (; n >= C && i0 < n; i0 += C) {
            const std::size_t i = i0 + C <= n ? i0 : n - C;
            vec_t<T> a0 = vec_t<T>{} + bo, a1 = a0, a2 = a0, a3 = a0;
            for (std::size_t k = 0; k < n_in; ++k) {
                const T* x = X + k * n + i;
                const vec_t<T> wk = vec_t<T>{} + w[k];
                a0 += wk * vload(x);
                a1 += wk * vload(x + L);
                a2 += wk * vload(x + 2 * L);
                a3 += wk * vload(x + 3 * L);
            }
            vstore(y + i, a0);
            vstore(y + i + L, a1);
            vstore(y + i + 2 * L, a2);
            vstore(y + i + 3 * L, a3);
        }
        for (std::size_t i = i0; i < n; ++i) {
            T acc = bo;
            for (std::size_t k = 0; k < n_in; ++k) acc += w[k] * X[k * n + i];
            y[i] = acc;
        }
    }
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
                const T* rows[4] = {X + k * n, X + (k + 1) * n, X + (k + 2) * n, X + (k + 3) * n};
                T d[4];
                dots_impl<4>(gy, rows, n, d);
                for (int r = 0; r < 4; ++r) gw[k + r] += d[r];
            }
            const std::size_t rest = n_in - k;  // 0 to 3 inputs left: one more pass
            if (rest > 0) {
                const T* rows[3] = {X + k * n, X + std::min(k + 1, n_in - 1) * n,
                                    X + std::min(k + 2, n_in - 1) * n};
                T d[3];
                if (rest == 1) dots_impl<1>(gy, rows, n, d);
                if (rest == 2) dots_impl<2>(gy, rows, n, d);
                if (rest == 3) dots_impl<3>(gy, rows, n, d);
                for (std::size_t r = 0; r < rest; ++r) gw[k + r] += d[r];
            }
        }
    } else {
        // narrow input (e.g. 2 features): four output rows at a time share one input row
        for (std::size_t k = 0; k < n_in; ++k) {
            const T* x = X + k * n;
            std::size_t o = 0;
            for (; o + 4 <= n_out; o += 4) {
                const T* rows[4] = {gY + o * n, gY + (o + 1) * n, gY + (o + 2) * n, gY + (o + 3) * n};
                T d[4];
                dots_impl<4>(x, rows, n, d);
                for (int r = 0; r < 4; ++r) gW[(o + r) * n_in + k] += d[r];
            }
            const std::size_t rest = n_out - o;  // 0 to 3 outputs left: one more pass
            if (rest > 0) {
                const T* rows[3] = {gY + o * n, gY + std::min(o + 1, n_out - 1) * n,
                                    gY + std::min(o + 2, n_out - 1) * n};
                T d[3];
                if (rest == 1) dots_impl<1>(x, rows, n, d);
                if (rest == 2) dots_impl<2>(x, rows, n, d);
                if (rest == 3) dots_impl<3>(x, rows, n, d);
                for (std::size_t r = 0; r < rest; ++r) gW[(o + r) * n_in + k] += d[r];
            }
        }
    }
    if (gb) {
        for (std::size_t o = 0; o < n_out; ++o) gb[o] += sum_impl(gY + o * n, n);
    }
    if (!gX) return;
    constexpr std::size_t L = lanes<T>(), C = 4 * L;
    for (std::size_t k = 0; k < n_in; ++k) {
        T* gx = gX + k * n;
        std::size_t i0 = 0;
        for (; n >= C && i0 < n; i0 += C) {  // chunks as in dense_forward_impl
            const std::size_t i = i0 + C <= n ? i0 : n - C;
            vec_t<T> a0{}, a1{}, a2{}, a3{};
            for (std::size_t o = 0; o < n_out; ++o) {
                const T* gy = gY + o * n + i;
                const vec_t<T> w = vec_t<T>{} + W[o * n_in + k];
                a0 += w * vload(gy);
                a1 += w * vload(gy + L);
                a2 += w * vload(gy + 2 * L);
                a3 += w * vload(gy + 3 * L);
            }
            vstore(gx + i, a0);
            vstore(gx + i + L, a1);
            vstore(gx + i + 2 * L, a2);
            vstore(gx + i + 3 * L, a3);
        }
        for (std::size_t i = i0; i < n; ++i) {
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
