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

// The first `count` (<= lanes) values, the rest zero; and the matching store.
// The copies are spelled out: a copy of a run-time length would be a call to
// memcpy, which costs more than the arithmetic of a small batch.
template <class T>
EF_ALWAYS_INLINE void copy_few(T* dst, const T* src, std::size_t count) {
    static_assert(lanes<T>() <= 8, "copy_few copies up to 7 values");
    switch (count) {
        case 7: dst[6] = src[6]; [[fallthrough]];
        case 6: dst[5] = src[5]; [[fallthrough]];
        case 5: dst[4] = src[4]; [[fallthrough]];
        case 4: dst[3] = src[3]; [[fallthrough]];
        case 3: dst[2] = src[2]; [[fallthrough]];
        case 2: dst[1] = src[1]; [[fallthrough]];
        case 1: dst[0] = src[0]; [[fallthrough]];
        default: break;
    }
}

template <class T>
EF_ALWAYS_INLINE vec_t<T> vload_part(const T* p, std::size_t count) {
    if (count == lanes<T>()) return vload(p);
    T buf[lanes<T>()] = {};
    copy_few(buf, p, count);
    vec_t<T> v;
    std::memcpy(&v, buf, sizeof v);
    return v;
}

template <class T>
EF_ALWAYS_INLINE void vstore_part(T* p, const vec_t<T>& v, std::size_t count) {
    if (count == lanes<T>()) return vstore(p, v);
    T buf[lanes<T>()];
    std::memcpy(buf, &v, sizeof v);
    copy_few(p, buf, count);
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
// values); the samples of batches below one chunk are updated one input at a
// time. Every output is thus b + w_0 x_0 + w_1 x_1 + ..., each term added by
// a (fused, where the CPU has FMA) multiply-add, whatever the batch size. A
// per-sample sum over the inputs would not be: GCC vectorizes such a loop as
// an in-order reduction whose products are rounded apart, and a sample's
// output would then depend on the batch it is in.
// The same for n samples of rows ld apart (X (n_in, ld), Y (n_out, ld)): a
// range of a larger batch, each sample's output computed as in the whole.
template <class T>
EF_ALWAYS_INLINE void dense_forward_rows_impl(const T* W, const T* b, std::size_t n_in, std::size_t n_out,
                                              const T* X, std::size_t ld, T* Y, std::size_t n) {
    constexpr std::size_t L = lanes<T>(), C = 4 * L;
    if (n == 1) {  // one sample (a Neural ODE window, online learning): the same
        // multiply-adds, accumulated in Y itself (not a loop sum GCC could vectorize)
        for (std::size_t o = 0; o < n_out; ++o) {
            T& y = Y[o * ld];
            y = b ? b[o] : T(0);
            const T* w = W + o * n_in;
            for (std::size_t k = 0; k < n_in; ++k) y += w[k] * X[k * ld];
        }
        return;
    }
    for (std::size_t o = 0; o < n_out; ++o) {
        T* y = Y + o * ld;
        const T bo = b ? b[o] : T(0);
        const T* w = W + o * n_in;
        std::size_t i0 = 0;
        for (; n >= C && i0 < n; i0 += C) {
            const std::size_t i = i0 + C <= n ? i0 : n - C;
            vec_t<T> a0 = vec_t<T>{} + bo, a1 = a0, a2 = a0, a3 = a0;
            for (std::size_t k = 0; k < n_in; ++k) {
                const T* x = X + k * ld + i;
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
        // the rest, one input at a time over the remaining samples: no loop sums
        for (std::size_t i = i0; i < n; ++i) y[i] = bo;
        for (std::size_t k = 0; k < n_in; ++k) {
            const T wk = w[k];
            const T* x = X + k * ld;
            for (std::size_t i = i0; i < n; ++i) y[i] += wk * x[i];
        }
    }
}

template <class T>
EF_ALWAYS_INLINE void dense_forward_impl(const T* W, const T* b, std::size_t n_in,
                                         std::size_t n_out, const T* X, T* Y, std::size_t n) {
    dense_forward_rows_impl(W, b, n_in, n_out, X, n, Y, n);
}

// gX = W^T gY for n samples of rows ld apart (gY (n_out, ld), gX (n_in, ld)),
// each sample's as in dense_backward_impl on the whole batch.
template <class T>
EF_ALWAYS_INLINE void dense_input_grad_rows_impl(const T* W, std::size_t n_in, std::size_t n_out, const T* gY,
                                                 std::size_t ld, T* gX, std::size_t n) {
    if (n == 1) {  // as the forward's single sample
        for (std::size_t k = 0; k < n_in; ++k) {
            T& gx = gX[k * ld];
            gx = T(0);
            for (std::size_t o = 0; o < n_out; ++o) gx += W[o * n_in + k] * gY[o * ld];
        }
        return;
    }
    constexpr std::size_t L = lanes<T>(), C = 4 * L;
    for (std::size_t k = 0; k < n_in; ++k) {
        T* gx = gX + k * ld;
        std::size_t i0 = 0;
        for (; n >= C && i0 < n; i0 += C) {  // chunks as in dense_forward_impl
            const std::size_t i = i0 + C <= n ? i0 : n - C;
            vec_t<T> a0{}, a1{}, a2{}, a3{};
            for (std::size_t o = 0; o < n_out; ++o) {
                const T* gy = gY + o * ld + i;
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
        for (std::size_t i = i0; i < n; ++i) gx[i] = T(0);  // as the forward's rest
        for (std::size_t o = 0; o < n_out; ++o) {
            const T wo = W[o * n_in + k];
            const T* gy = gY + o * ld;
            for (std::size_t i = i0; i < n; ++i) gx[i] += wo * gy[i];
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
    if (gX) dense_input_grad_rows_impl(W, n_in, n_out, gY, n, gX, n);
}

// --- lanes: one network per SIMD lane (ensembles) -----------------------------
// Every array holds N members side by side: W is (n_out * n_in, N), b and Y
// (n_out, N), X (n_in, N). Each member sees exactly the operations, in the same
// order, that dense_forward_impl / dense_backward_impl apply to a batch of one
// sample, so a member's results equal its separate computation bit for bit.

template <class T>
EF_ALWAYS_INLINE void dense_forward_lanes_impl(const T* W, const T* b, std::size_t n_in,
                                               std::size_t n_out, const T* X, T* Y,
                                               std::size_t N) {
    constexpr std::size_t L = lanes<T>();
    for (std::size_t o = 0; o < n_out; ++o) {
        std::size_t l = 0;
        for (; l + L <= N; l += L) {
            vec_t<T> a = b ? vload(b + o * N + l) : vec_t<T>{};
            for (std::size_t k = 0; k < n_in; ++k)
                a += vload(W + (o * n_in + k) * N + l) * vload(X + k * N + l);
            vstore(Y + o * N + l, a);
        }
        if (l < N) {
            const std::size_t cnt = N - l;
            vec_t<T> a = b ? vload_part(b + o * N + l, cnt) : vec_t<T>{};
            for (std::size_t k = 0; k < n_in; ++k)
                a += vload_part(W + (o * n_in + k) * N + l, cnt) * vload_part(X + k * N + l, cnt);
            vstore_part(Y + o * N + l, a, cnt);
        }
    }
}

// gW += gY X^T and gb += gY per member (a batch of one: each sum is 0 + one
// product, as dots_impl and sum_impl compute it), gX = W^T gY. One chunk of
// lanes [l, l + cnt); Full: cnt is a whole vector.
template <bool Full, class T>
EF_ALWAYS_INLINE void dense_backward_lanes_chunk(const T* W, std::size_t n_in, std::size_t n_out,
                                                 const T* X, const T* gY, std::size_t N, T* gW,
                                                 T* gb, T* gX, std::size_t l, std::size_t cnt) {
    auto ld = [cnt](const T* p) { return Full ? vload(p) : vload_part(p, cnt); };
    auto st = [cnt](T* p, const vec_t<T>& v) { Full ? vstore(p, v) : vstore_part(p, v, cnt); };
    for (std::size_t o = 0; o < n_out; ++o) {
        const vec_t<T> gy = ld(gY + o * N + l);
        for (std::size_t k = 0; k < n_in; ++k) {
            T* gw = gW + (o * n_in + k) * N + l;
            st(gw, ld(gw) + (vec_t<T>{} + gy * ld(X + k * N + l)));
        }
        if (gb) st(gb + o * N + l, ld(gb + o * N + l) + (vec_t<T>{} + gy));
    }
    if (!gX) return;
    for (std::size_t k = 0; k < n_in; ++k) {
        vec_t<T> a{};
        for (std::size_t o = 0; o < n_out; ++o) a += ld(W + (o * n_in + k) * N + l) * ld(gY + o * N + l);
        st(gX + k * N + l, a);
    }
}

template <class T>
EF_ALWAYS_INLINE void dense_backward_lanes_impl(const T* W, std::size_t n_in, std::size_t n_out,
                                                const T* X, const T* gY, std::size_t N, T* gW,
                                                T* gb, T* gX) {
    constexpr std::size_t L = lanes<T>();
    std::size_t l = 0;
    for (; l + L <= N; l += L) dense_backward_lanes_chunk<true>(W, n_in, n_out, X, gY, N, gW, gb, gX, l, L);
    if (l < N) dense_backward_lanes_chunk<false>(W, n_in, n_out, X, gY, N, gW, gb, gX, l, N - l);
}

}  // namespace detail

// Dispatched kernels (defined in kernels.cpp, compiled for several ISAs).
void dense_forward(const double* W, const double* b, std::size_t n_in, std::size_t n_out,
                   const double* X, double* Y, std::size_t n);
void dense_forward(const float* W, const float* b, std::size_t n_in, std::size_t n_out,
                   const float* X, float* Y, std::size_t n);
// dense_forward_rows_impl and dense_input_grad_rows_impl: n samples of rows ld apart.
void dense_forward_rows(const double* W, const double* b, std::size_t n_in, std::size_t n_out, const double* X,
                        std::size_t ld, double* Y, std::size_t n);
void dense_forward_rows(const float* W, const float* b, std::size_t n_in, std::size_t n_out, const float* X,
                        std::size_t ld, float* Y, std::size_t n);
void dense_input_grad_rows(const double* W, std::size_t n_in, std::size_t n_out, const double* gY, std::size_t ld,
                           double* gX, std::size_t n);
void dense_input_grad_rows(const float* W, std::size_t n_in, std::size_t n_out, const float* gY, std::size_t ld,
                           float* gX, std::size_t n);
void dense_backward(const double* W, std::size_t n_in, std::size_t n_out, const double* X,
                    const double* gY, std::size_t n, double* gW, double* gb, double* gX);
void dense_backward(const float* W, std::size_t n_in, std::size_t n_out, const float* X,
                    const float* gY, std::size_t n, float* gW, float* gb, float* gX);
// The blocked products of gemm.hpp (see matmul_blocked_impl and
// grad_weights_blocked_impl); pack holds GemmBlocks<T>::pack_size elements.
void matmul_blocked(const double* A, std::size_t a_rs, std::size_t a_cs, const double* init,
                    std::size_t M, std::size_t K, const double* B, std::size_t ldb, double* C,
                    std::size_t ldc, std::size_t ncols, double* pack);
void matmul_blocked(const float* A, std::size_t a_rs, std::size_t a_cs, const float* init,
                    std::size_t M, std::size_t K, const float* B, std::size_t ldb, float* C,
                    std::size_t ldc, std::size_t ncols, float* pack);
void grad_weights_blocked(const double* gY, const double* X, std::size_t n_out, std::size_t n_in,
                          std::size_t n, double* gW, double* gb);
void grad_weights_blocked(const float* gY, const float* X, std::size_t n_out, std::size_t n_in,
                          std::size_t n, float* gW, float* gb);
void dense_forward_lanes(const double* W, const double* b, std::size_t n_in, std::size_t n_out,
                         const double* X, double* Y, std::size_t N);
void dense_backward_lanes(const double* W, std::size_t n_in, std::size_t n_out, const double* X,
                          const double* gY, std::size_t N, double* gW, double* gb, double* gX);

// The blocked products of any layer split across the thread pool (the
// tests run them on small shapes too).
template <class T>
void dense_blocked_forward(const T* W, const T* b, std::size_t n_in, std::size_t n_out, const T* X,
                           T* Y, std::size_t n);
template <class T>
void dense_blocked_backward(const T* W, std::size_t n_in, std::size_t n_out, const T* X, const T* gY,
                            std::size_t n, T* gW, T* gb, T* gX);

// A dense layer as networks run it (dense.cpp): the kernels above for small
// layers, the blocked products split across the thread pool for wide ones;
// the same bits either way and whatever the thread count.
template <class T>
void dense_layer_forward(const T* W, const T* b, std::size_t n_in, std::size_t n_out, const T* X,
                         T* Y, std::size_t n);
template <class T>
void dense_layer_backward(const T* W, std::size_t n_in, std::size_t n_out, const T* X, const T* gY,
                          std::size_t n, T* gW, T* gb, T* gX);

}  // namespace eulerflow
