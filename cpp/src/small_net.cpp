// Small networks on one sample (small_net.hpp). small_forward and
// small_backward are multi-versioned like kernels.cpp and compiled with the same
// flags (outside LTO, contraction on), so each multiply-add is fused exactly
// where the batch-of-one paths of dense_forward/dense_backward fuse it.
#include "eulerflow/small_net.hpp"

#include "eulerflow/dense.hpp"
#include "eulerflow/multiversion.hpp"

#include <cmath>
#include <cstddef>
#include <type_traits>

// The loops run over a handful of values: vectorizing them would only add
// alias checks and remainder loops (the arithmetic per value is the same either way).
#define EF_NO_VECTORIZE __attribute__((optimize("no-tree-vectorize")))

namespace eulerflow {

bool small_layers(const Sequence<double>& seq, std::vector<SmallLayer>& out) {
    out.clear();
    for (const auto& L : seq.layers) {
        if (L.kind != LayerKind::Dense && L.kind != LayerKind::Activation) return false;
        if (L.n_in > kSmallWidth || L.n_out > kSmallWidth) return false;
        out.push_back(as_small_layer(L));
    }
    return !out.empty();
}

int small_euler_shape(const SmallLayer* layers, std::size_t n_layers) {
    const std::size_t d = layers[0].n_in;
    if (d < 1 || d > 4) return -1;
    if (n_layers == 1) return layers[0].dense && layers[0].n_out == d ? 0 : -1;
    if (n_layers != 3 || !layers[0].dense || layers[1].dense || !layers[2].dense) return -1;
    const std::size_t h = layers[0].n_out;
    if (h > 4 || layers[2].n_in != h || layers[2].n_out != d) return -1;
    return int(h);
}

std::size_t small_values(const std::vector<SmallLayer>& layers) {
    std::size_t n = layers.front().n_in;
    for (const auto& L : layers) n += L.n_out;
    return n;
}

// One Dense layer on one sample, written once for run-time widths (n_in, n_out)
// and instantiated for compile-time ones: the same expressions in the same
// order either way, so the same bits; with the widths known the loops unroll
// and the values stay in registers (the per-layer loop overhead was most of a
// small Neural ODE window's time).
//
// dense_forward_impl's one-sample path, summed in a register. A missing bias
// reads zeros rather than branching: with the branch, the unrolled code computed
// the products ahead of it and could no longer fuse the first multiply-add.
constexpr double kZeroBias[kSmallWidth] = {};

template <class In, class Out>
EF_ALWAYS_INLINE void dense_forward_one(const SmallLayer& L, In n_in, Out n_out, const double* x, double* y) {
    const double* bias = L.b ? L.b : kZeroBias;
    for (std::size_t o = 0; o < n_out; ++o) {
        double acc = bias[o];
        const double* w = L.W + o * n_in;
        for (std::size_t k = 0; k < n_in; ++k) acc += w[k] * x[k];
        y[o] = acc;
    }
}

// dense_backward_impl with n = 1: each weight gradient gets 0 + gy x (a dot
// product of length one), each bias gradient 0 + gy, then gx = W^T gy.
template <class In, class Out>
EF_ALWAYS_INLINE void dense_backward_one(const SmallLayer& L, In n_in, Out n_out, const double* in,
                                         const double* gy, double* g) {
    for (std::size_t o = 0; o < n_out; ++o) {
        const double gyo = gy[o];
        for (std::size_t k = 0; k < n_in; ++k) {
            double acc = 0.0;
            acc += gyo * in[k];
            L.gW[o * n_in + k] += acc;
        }
    }
    if (L.gb) {
        for (std::size_t o = 0; o < n_out; ++o) {
            double acc = 0.0;
            acc += gy[o];
            L.gb[o] += acc;
        }
    }
    for (std::size_t k = 0; k < n_in; ++k) {
        double acc = 0.0;
        for (std::size_t o = 0; o < n_out; ++o) acc += L.W[o * n_in + k] * gy[o];
        g[k] = acc;
    }
}

struct DenseForward {
    template <std::size_t I, std::size_t O>
    static EF_ALWAYS_INLINE void run(const SmallLayer& L, const double* x, double* y, double*) {
        dense_forward_one(L, std::integral_constant<std::size_t, I>{}, std::integral_constant<std::size_t, O>{}, x, y);
    }
};

struct DenseBackward {
    template <std::size_t I, std::size_t O>
    static EF_ALWAYS_INLINE void run(const SmallLayer& L, const double* in, const double* gy, double* g) {
        dense_backward_one(L, std::integral_constant<std::size_t, I>{}, std::integral_constant<std::size_t, O>{},
                           in, gy, g);
    }
};

// Op::run<n_in, n_out> for the widths 1..4 (a jump table); false for the others.
template <class Op, class A, class B, class C>
EF_ALWAYS_INLINE bool dense_fixed(const SmallLayer& L, A a, B b, C c) {
    if (L.n_in > 4 || L.n_out > 4) return false;
    switch ((L.n_in - 1) * 4 + (L.n_out - 1)) {
#define EF_FIXED_CASE(I, O) \
    case (I - 1) * 4 + (O - 1): Op::template run<I, O>(L, a, b, c); return true;
        EF_FIXED_CASE(1, 1) EF_FIXED_CASE(1, 2) EF_FIXED_CASE(1, 3) EF_FIXED_CASE(1, 4)
        EF_FIXED_CASE(2, 1) EF_FIXED_CASE(2, 2) EF_FIXED_CASE(2, 3) EF_FIXED_CASE(2, 4)
        EF_FIXED_CASE(3, 1) EF_FIXED_CASE(3, 2) EF_FIXED_CASE(3, 3) EF_FIXED_CASE(3, 4)
        EF_FIXED_CASE(4, 1) EF_FIXED_CASE(4, 2) EF_FIXED_CASE(4, 3) EF_FIXED_CASE(4, 4)
#undef EF_FIXED_CASE
        default: return false;
    }
}

EF_ALWAYS_INLINE void small_forward_impl(const SmallLayer* layers, std::size_t n_layers, double* vals) {
    const double* x = vals;
    double* y = vals + layers[0].n_in;
    for (std::size_t l = 0; l < n_layers; ++l) {
        const SmallLayer& L = layers[l];
        if (L.dense) {
            if (!dense_fixed<DenseForward>(L, x, y, nullptr)) dense_forward_one(L, L.n_in, L.n_out, x, y);
        } else {
            detail::activation_forward_impl(L.act, x, y, L.n_out);
        }
        x = y;
        y += L.n_out;
    }
}

EF_ALWAYS_INLINE void small_backward_impl(const SmallLayer* layers, std::size_t n_layers,
                                         const double* vals, const double* gy, double* gx, double* scratch) {
    std::size_t end = layers[0].n_in;  // where the last layer's output ends
    for (std::size_t l = 0; l < n_layers; ++l) end += layers[l].n_out;
    int which = 0;
    for (std::size_t l = n_layers; l-- > 0;) {
        const SmallLayer& L = layers[l];
        const double* out = vals + end - L.n_out;
        const double* in = out - L.n_in;
        double* g = l == 0 ? gx : scratch + std::size_t(which) * kSmallWidth;
        if (L.dense) {
            if (!dense_fixed<DenseBackward>(L, in, gy, g)) dense_backward_one(L, L.n_in, L.n_out, in, gy, g);
        } else {
            detail::activation_backward_impl(L.act, in, out, gy, g, L.n_in);
        }
        gy = g;
        end -= L.n_out;
        which ^= 1;
    }
}

// A value the compiler must round on its own: the solver's products (h K, e e)
// are separate multiplies and adds in node.cpp, which the baseline build
// compiles without FMA; here, in the FMA variants, GCC would fuse them.
EF_ALWAYS_INLINE double unfused(double v) {
#if defined(__x86_64__)
    asm("" : "+x"(v));
#elif defined(__aarch64__)
    asm("" : "+w"(v));
#else
    volatile double keep = v;
    v = keep;
#endif
    return v;
}

// One Euler window on a field of D -> D (H = 0: one Dense layer) or D -> H -> D
// (Dense, activation, Dense): NeuralOde::window_gradient_small's sweep for a
// one-stage tableau, with every width known to the compiler, so the state, the
// stage's values and the adjoint stay in registers from step to step instead of
// travelling through the tape and the per-layer calls. The layer code is
// small_forward's and small_backward's (dense_forward_one, dense_backward_one,
// the activation kernels) and the solver's arithmetic is node.cpp's with its
// products kept unfused, so the results are the same bits.
template <std::size_t D, std::size_t H>
EF_ALWAYS_INLINE bool euler_window_fixed(const SmallLayer* layers, const double* h, double b0, std::size_t steps,
                                         const double* z0, const double* target, double* tape, double* abar_out,
                                         double& loss) {
    using IC_D = std::integral_constant<std::size_t, D>;
    using IC_H = std::integral_constant<std::size_t, H>;
    constexpr std::size_t NV = H ? D + 2 * H : D;  // per step: the input, the hidden layer before and after
    double y[D];
    for (std::size_t i = 0; i < D; ++i) y[i] = z0[i];
    for (std::size_t m = 0; m < steps; ++m) {
        double* v = tape + m * NV;
        double K[D];
        for (std::size_t i = 0; i < D; ++i) v[i] = y[i];
        if constexpr (H > 0) {
            double z[H], a[H];
            dense_forward_one(layers[0], IC_D{}, IC_H{}, y, z);
            detail::activation_forward_impl(layers[1].act, z, a, H);
            dense_forward_one(layers[2], IC_H{}, IC_D{}, a, K);
            for (std::size_t i = 0; i < H; ++i) v[D + i] = z[i];
            for (std::size_t i = 0; i < H; ++i) v[D + H + i] = a[i];
        } else {
            dense_forward_one(layers[0], IC_D{}, IC_D{}, y, K);
        }
        for (std::size_t i = 0; i < D; ++i) y[i] = y[i] + unfused(h[m] * b0 * K[i]);
    }
    // NeuralOde::window_loss
    double abar[D];
    double L = 0.0;
    for (std::size_t j = 0; j < D; ++j) {
        const double e = y[j] - target[j];
        L = L + unfused(e * e);
        abar[j] = 2.0 * e / double(D);
    }
    loss = L / double(D);
    if (!std::isfinite(loss)) return false;
    for (std::size_t m = steps; m-- > 0;) {
        const double* v = tape + m * NV;
        double kb[D], gx[D];
        for (std::size_t i = 0; i < D; ++i) kb[i] = h[m] * b0 * abar[i];
        if constexpr (H > 0) {
            double ga[H], gz[H];
            dense_backward_one(layers[2], IC_H{}, IC_D{}, v + D + H, kb, ga);
            detail::activation_backward_impl(layers[1].act, v + D, v + D + H, ga, gz, H);
            dense_backward_one(layers[0], IC_D{}, IC_H{}, v, gz, gx);
        } else {
            dense_backward_one(layers[0], IC_D{}, IC_D{}, v, kb, gx);
        }
        for (std::size_t i = 0; i < D; ++i) abar[i] += gx[i];
    }
    for (std::size_t i = 0; i < D; ++i) abar_out[i] = abar[i];
    return true;
}

// euler_window_fixed<d, hidden> for the shapes small_euler_shape accepts (a jump table).
EF_ALWAYS_INLINE bool small_euler_window_impl(const SmallLayer* layers, std::size_t hidden, const double* h,
                                              double b0, std::size_t steps, const double* z0,
                                              const double* target, double* tape, double* abar, double& loss) {
    switch (layers[0].n_in * 5 + hidden) {
#define EF_EULER_CASE(D, H) \
    case D * 5 + H: return euler_window_fixed<D, H>(layers, h, b0, steps, z0, target, tape, abar, loss);
#define EF_EULER_ROW(D) EF_EULER_CASE(D, 0) EF_EULER_CASE(D, 1) EF_EULER_CASE(D, 2) EF_EULER_CASE(D, 3) EF_EULER_CASE(D, 4)
        EF_EULER_ROW(1) EF_EULER_ROW(2) EF_EULER_ROW(3) EF_EULER_ROW(4)
#undef EF_EULER_ROW
#undef EF_EULER_CASE
        default: return false;  // a shape small_euler_shape refuses
    }
}

EF_MULTIVERSION(EF_NO_VECTORIZE, void, small_forward,
                (const SmallLayer* layers, std::size_t n_layers, double* vals), (layers, n_layers, vals),
                small_forward_impl)
EF_MULTIVERSION(EF_NO_VECTORIZE, void, small_backward,
                (const SmallLayer* layers, std::size_t n_layers, const double* vals, const double* gy,
                 double* gx, double* scratch),
                (layers, n_layers, vals, gy, gx, scratch), small_backward_impl)

EF_MULTIVERSION(EF_NO_VECTORIZE, bool, small_euler_window,
                (const SmallLayer* layers, std::size_t hidden, const double* h, double b0, std::size_t steps,
                 const double* z0, const double* target, double* tape, double* abar, double& loss),
                (layers, hidden, h, b0, steps, z0, target, tape, abar, loss), small_euler_window_impl)

}  // namespace eulerflow
