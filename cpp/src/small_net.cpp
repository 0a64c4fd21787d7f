// Small networks on one sample (small_net.hpp). small_forward and
// small_backward are multi-versioned like kernels.cpp and compiled with the same
// flags (outside LTO, contraction on), so each multiply-add is fused exactly
// where the batch-of-one paths of dense_forward/dense_backward fuse it.
#include "eulerflow/small_net.hpp"

#include "eulerflow/dense.hpp"
#include "eulerflow/multiversion.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
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
// small Neural ODE window's time). V is double for one sample, or a vector of
// ensemble members, one per lane (the Euler window kernels below).
template <class V>
struct DenseValues {
    const V* W;  // (n_out, n_in)
    const V* b;  // never null: zeros for a layer without bias
    V* gW;
    V* gb;  // null for a layer without bias
};

// dense_forward_impl's one-sample path, summed in a register. A missing bias
// reads zeros rather than branching: with the branch, the unrolled code computed
// the products ahead of it and could no longer fuse the first multiply-add.
constexpr double kZeroBias[kSmallWidth] = {};

inline DenseValues<double> dense_values(const SmallLayer& L) { return {L.W, L.b ? L.b : kZeroBias, L.gW, L.gb}; }

template <class V, class In, class Out>
EF_ALWAYS_INLINE void dense_forward_one(const DenseValues<V>& L, In n_in, Out n_out, const V* x, V* y) {
    for (std::size_t o = 0; o < n_out; ++o) {
        V acc = L.b[o];
        const V* w = L.W + o * n_in;
        for (std::size_t k = 0; k < n_in; ++k) acc += w[k] * x[k];
        y[o] = acc;
    }
}

// dense_backward_impl with n = 1: each weight gradient gets 0 + gy x (a dot
// product of length one), each bias gradient 0 + gy, then gx = W^T gy.
template <class V, class In, class Out>
EF_ALWAYS_INLINE void dense_backward_one(const DenseValues<V>& L, In n_in, Out n_out, const V* in, const V* gy,
                                         V* g) {
    for (std::size_t o = 0; o < n_out; ++o) {
        const V gyo = gy[o];
        for (std::size_t k = 0; k < n_in; ++k) {
            V acc = V{};
            acc += gyo * in[k];
            L.gW[o * n_in + k] += acc;
        }
    }
    if (L.gb) {
        for (std::size_t o = 0; o < n_out; ++o) {
            V acc = V{};
            acc += gy[o];
            L.gb[o] += acc;
        }
    }
    for (std::size_t k = 0; k < n_in; ++k) {
        V acc = V{};
        for (std::size_t o = 0; o < n_out; ++o) acc += L.W[o * n_in + k] * gy[o];
        g[k] = acc;
    }
}

struct DenseForward {
    template <std::size_t I, std::size_t O>
    static EF_ALWAYS_INLINE void run(const SmallLayer& L, const double* x, double* y, double*) {
        dense_forward_one(dense_values(L), std::integral_constant<std::size_t, I>{},
                          std::integral_constant<std::size_t, O>{}, x, y);
    }
};

struct DenseBackward {
    template <std::size_t I, std::size_t O>
    static EF_ALWAYS_INLINE void run(const SmallLayer& L, const double* in, const double* gy, double* g) {
        dense_backward_one(dense_values(L), std::integral_constant<std::size_t, I>{},
                           std::integral_constant<std::size_t, O>{}, in, gy, g);
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
            if (!dense_fixed<DenseForward>(L, x, y, nullptr)) dense_forward_one(dense_values(L), L.n_in, L.n_out, x, y);
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
            if (!dense_fixed<DenseBackward>(L, in, gy, g))
                dense_backward_one(dense_values(L), L.n_in, L.n_out, in, gy, g);
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

// The same for a vector of lanes. An asm operand cannot hold a 32-byte vector in
// the baseline variant (SSE2 has no such register); GCC's association barrier
// stops the contraction in every variant and costs no instruction.
using Lanes = detail::vec_t<double>;
constexpr std::size_t kLanes = detail::lanes<double>();

#if defined(__has_builtin)
#if __has_builtin(__builtin_assoc_barrier)
#define EF_ASSOC_BARRIER 1
#endif
#endif

EF_ALWAYS_INLINE Lanes unfused(Lanes v) {
#ifdef EF_ASSOC_BARRIER
    return __builtin_assoc_barrier(v);
#else
    volatile Lanes keep = v;
    return keep;
#endif
}

// The doubles of an array of values, for the element-wise activation kernels.
template <class V>
EF_ALWAYS_INLINE double* scalars(V* v) {
    return reinterpret_cast<double*>(v);
}
template <class V>
EF_ALWAYS_INLINE const double* scalars(const V* v) {
    return reinterpret_cast<const double*>(v);
}

// One Euler window on a field of D -> D (H = 0: one Dense layer) or D -> H -> D
// (Dense, activation, Dense): NeuralOde::window_gradient_small's sweep for a
// one-stage tableau, with every width known to the compiler, so the state, the
// stage's values and the adjoint stay in registers from step to step instead of
// travelling through the tape and the per-layer calls. The layer code is
// small_forward's and small_backward's (dense_forward_one, dense_backward_one,
// the activation kernels) and the solver's arithmetic is node.cpp's with its
// products kept unfused, so the results are the same bits. V is double for one
// sample, or a vector of ensemble members (one per lane), each of which goes
// through the one-sample arithmetic; with lanes the backward runs whatever the
// loss (a lane whose loss is not finite gets meaningless gradients, which the
// ensemble drops with the member).
template <std::size_t D, std::size_t H, class V>
EF_ALWAYS_INLINE bool euler_window_fixed(const DenseValues<V>* dense, const ActParams& act, const V* h, double b0,
                                         std::size_t steps, const V* z0, const V* target, V* tape, V* abar_out,
                                         V& loss) {
    using IC_D = std::integral_constant<std::size_t, D>;
    using IC_H = std::integral_constant<std::size_t, H>;
    constexpr std::size_t NV = H ? D + 2 * H : D;  // per step: the input, the hidden layer before and after
    constexpr std::size_t NH = H * sizeof(V) / sizeof(double);  // the hidden layer's doubles
    V y[D];
    for (std::size_t i = 0; i < D; ++i) y[i] = z0[i];
    for (std::size_t m = 0; m < steps; ++m) {
        V* v = tape + m * NV;
        V K[D];
        for (std::size_t i = 0; i < D; ++i) v[i] = y[i];
        if constexpr (H > 0) {
            V z[H], a[H];
            dense_forward_one(dense[0], IC_D{}, IC_H{}, y, z);
            detail::activation_forward_impl(act, scalars(z), scalars(a), NH);
            dense_forward_one(dense[1], IC_H{}, IC_D{}, a, K);
            for (std::size_t i = 0; i < H; ++i) v[D + i] = z[i];
            for (std::size_t i = 0; i < H; ++i) v[D + H + i] = a[i];
        } else {
            dense_forward_one(dense[0], IC_D{}, IC_D{}, y, K);
        }
        const V hb = h[m] * b0;
        for (std::size_t i = 0; i < D; ++i) y[i] = y[i] + unfused(hb * K[i]);
    }
    // NeuralOde::window_loss
    V abar[D];
    V L = V{};
    for (std::size_t j = 0; j < D; ++j) {
        const V e = y[j] - target[j];
        L = L + unfused(e * e);
        abar[j] = 2.0 * e / double(D);
    }
    loss = L / double(D);
    if constexpr (std::is_same_v<V, double>) {
        if (!std::isfinite(loss)) return false;
    }
    for (std::size_t m = steps; m-- > 0;) {
        const V* v = tape + m * NV;
        V kb[D], gx[D];
        const V hb = h[m] * b0;
        for (std::size_t i = 0; i < D; ++i) kb[i] = hb * abar[i];
        if constexpr (H > 0) {
            V ga[H], gz[H];
            dense_backward_one(dense[1], IC_H{}, IC_D{}, v + D + H, kb, ga);
            detail::activation_backward_impl(act, scalars(v + D), scalars(v + D + H), scalars(ga), scalars(gz), NH);
            dense_backward_one(dense[0], IC_D{}, IC_H{}, v, gz, gx);
        } else {
            dense_backward_one(dense[0], IC_D{}, IC_D{}, v, kb, gx);
        }
        for (std::size_t i = 0; i < D; ++i) abar[i] += gx[i];
    }
    for (std::size_t i = 0; i < D; ++i) abar_out[i] = abar[i];
    return true;
}

// The jump table over the shapes small_euler_shape accepts: Run::run<d, hidden>(args...).
template <class Run, class... Args>
EF_ALWAYS_INLINE bool euler_shape_switch(std::size_t d, std::size_t hidden, Args&&... args) {
    switch (d * 5 + hidden) {
#define EF_EULER_CASE(D, H) \
    case D * 5 + H: return Run::template run<D, H>(args...);
#define EF_EULER_ROW(D) EF_EULER_CASE(D, 0) EF_EULER_CASE(D, 1) EF_EULER_CASE(D, 2) EF_EULER_CASE(D, 3) EF_EULER_CASE(D, 4)
        EF_EULER_ROW(1) EF_EULER_ROW(2) EF_EULER_ROW(3) EF_EULER_ROW(4)
#undef EF_EULER_ROW
#undef EF_EULER_CASE
        default: return false;  // a shape small_euler_shape refuses
    }
}

// One sample: the layers' own parameters and gradients.
struct EulerWindowOne {
    template <std::size_t D, std::size_t H>
    static EF_ALWAYS_INLINE bool run(const SmallLayer* layers, const double* h, double b0, std::size_t steps,
                                     const double* z0, const double* target, double* tape, double* abar,
                                     double& loss) {
        const DenseValues<double> dense[2] = {dense_values(layers[0]), dense_values(layers[H ? 2 : 0])};
        return euler_window_fixed<D, H>(dense, layers[H ? 1 : 0].act, h, b0, steps, z0, target, tape, abar, loss);
    }
};

// An ensemble, kLanes members at a time: each group's parameters are loaded into
// registers, its gradients summed there from zero (as zero_param_grads and the
// Dense backward do) and added to the caller's as scale * g (add_param_grads).
// The last group may be partial: its missing lanes compute on zeros and are not
// stored. The bias gradients are summed for every layer (in registers, where a
// branch would keep them in memory) and stored for the layers with a bias.
struct EulerWindowLanes {
    template <std::size_t D, std::size_t H>
    static EF_ALWAYS_INLINE bool run(const SmallLayer* layers, std::size_t N, const double* const* h, double b0,
                                     std::size_t steps, const double* const* z0, const double* const* target,
                                     double scale, double* scratch, double* loss) {
        static_assert(kLanes == 4, "a group gathers four lanes");
        constexpr std::size_t O = H ? H : D;   // the first layer's outputs
        constexpr std::size_t I1 = H ? H : 1;  // the second layer's inputs (a placeholder without one)
        const SmallLayer& L0 = layers[0];
        const SmallLayer& L1 = layers[H ? 2 : 0];
        Lanes* hv = reinterpret_cast<Lanes*>((reinterpret_cast<std::uintptr_t>(scratch) + sizeof(Lanes) - 1) &
                                             ~std::uintptr_t(sizeof(Lanes) - 1));
        Lanes* tape = hv + steps;
        for (std::size_t l = 0; l < N; l += kLanes) {
            const std::size_t cnt = std::min(kLanes, N - l);
            auto load = [&](const double* p, std::size_t i) { return detail::vload_part(p + i * N + l, cnt); };
            // the rows of lanes l..l+3 (a partial group repeats its first lane's)
            auto rows_of = [&](const double* const* rows) {
                return std::array<const double*, kLanes>{rows[l], rows[l + (cnt > 1)], rows[l + 2 * (cnt > 2)],
                                                         rows[l + 3 * (cnt > 3)]};
            };
            auto gather = [](const std::array<const double*, kLanes>& r, std::size_t i) {
                return Lanes{r[0][i], r[1][i], r[2][i], r[3][i]};
            };
            auto load_layer = [&](const SmallLayer& L, Lanes* W, Lanes* b, std::size_t n_w, std::size_t n_b) {
                for (std::size_t q = 0; q < n_w; ++q) W[q] = load(L.W, q);
                for (std::size_t o = 0; o < n_b; ++o) b[o] = L.b ? load(L.b, o) : Lanes{};
            };
            auto add_grads = [&](const SmallLayer& L, const Lanes* gW, const Lanes* gb, std::size_t n_w,
                                 std::size_t n_b) {
                auto add = [&](double* p, std::size_t i, Lanes g) {
                    detail::vstore_part(p + i * N + l, load(p, i) + unfused(scale * g), cnt);
                };
                for (std::size_t q = 0; q < n_w; ++q) add(L.gW, q, gW[q]);
                if (L.gb)
                    for (std::size_t o = 0; o < n_b; ++o) add(L.gb, o, gb[o]);
            };
            Lanes W0[O * D], bias0[O], gW0[O * D] = {}, gb0[O] = {};
            Lanes W1[D * I1], bias1[D], gW1[D * I1] = {}, gb1[D] = {};
            load_layer(L0, W0, bias0, O * D, O);
            if constexpr (H > 0) load_layer(L1, W1, bias1, D * H, D);
            const DenseValues<Lanes> dense[2] = {{W0, bias0, gW0, gb0}, {W1, bias1, gW1, gb1}};
            Lanes y0[D], goal[D], abar[D], L;
            const auto z0_l = rows_of(z0), target_l = rows_of(target), h_l = rows_of(h);
            for (std::size_t i = 0; i < D; ++i) {
                y0[i] = gather(z0_l, i);
                goal[i] = gather(target_l, i);
            }
            for (std::size_t m = 0; m < steps; ++m) hv[m] = gather(h_l, m);
            euler_window_fixed<D, H>(dense, layers[H ? 1 : 0].act, hv, b0, steps, y0, goal, tape, abar, L);
            add_grads(L0, gW0, gb0, O * D, O);
            if constexpr (H > 0) add_grads(L1, gW1, gb1, D * H, D);
            detail::vstore_part(loss + l, L, cnt);
        }
        return true;
    }
};

std::size_t small_euler_lanes_scratch(std::size_t d, std::size_t hidden, std::size_t steps) {
    const std::size_t nv = hidden ? d + 2 * hidden : d;
    return (steps * (nv + 1) + 1) * kLanes;  // the step sizes, the tape, room to align
}

EF_ALWAYS_INLINE bool small_euler_window_impl(const SmallLayer* layers, std::size_t hidden, const double* h,
                                              double b0, std::size_t steps, const double* z0,
                                              const double* target, double* tape, double* abar, double& loss) {
    return euler_shape_switch<EulerWindowOne>(layers[0].n_in, hidden, layers, h, b0, steps, z0, target, tape,
                                              abar, loss);
}

EF_ALWAYS_INLINE void small_euler_window_lanes_impl(const SmallLayer* layers, std::size_t hidden, std::size_t N,
                                                    const double* const* h, double b0, std::size_t steps,
                                                    const double* const* z0, const double* const* target,
                                                    double scale, double* scratch, double* loss) {
    euler_shape_switch<EulerWindowLanes>(layers[0].n_in, hidden, layers, N, h, b0, steps, z0, target, scale,
                                         scratch, loss);
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
EF_MULTIVERSION(, void, small_euler_window_lanes,
                (const SmallLayer* layers, std::size_t hidden, std::size_t N, const double* const* h, double b0,
                 std::size_t steps, const double* const* z0, const double* const* target, double scale,
                 double* scratch, double* loss),
                (layers, hidden, N, h, b0, steps, z0, target, scale, scratch, loss), small_euler_window_lanes_impl)

}  // namespace eulerflow
