// Small networks on one sample (small_net.hpp). small_forward and
// small_backward are multi-versioned like kernels.cpp and compiled with the same
// flags (outside LTO, contraction on), so each multiply-add is fused exactly
// where the batch-of-one paths of dense_forward/dense_backward fuse it.
#include "eulerflow/small_net.hpp"

#include "eulerflow/dense.hpp"
#include "eulerflow/multiversion.hpp"

// The loops run over a handful of values: vectorizing them would only add
// alias checks and remainder loops (the arithmetic per value is the same either way).
#define EF_NO_VECTORIZE __attribute__((optimize("no-tree-vectorize")))

namespace eulerflow {

bool small_layers(const Sequence<double>& seq, std::vector<SmallLayer>& out) {
    out.clear();
    for (const auto& L : seq.layers) {
        if (L.kind != LayerKind::Dense && L.kind != LayerKind::Activation) return false;
        if (L.n_in > kSmallWidth || L.n_out > kSmallWidth) return false;
        SmallLayer s;
        s.dense = L.kind == LayerKind::Dense;
        s.n_in = L.n_in;
        s.n_out = L.n_out;
        s.W = L.W;
        s.b = L.b;
        s.gW = L.gW;
        s.gb = L.gb;
        s.act = L.act;
        out.push_back(s);
    }
    return !out.empty();
}

std::size_t small_values(const std::vector<SmallLayer>& layers) {
    std::size_t n = layers.front().n_in;
    for (const auto& L : layers) n += L.n_out;
    return n;
}

EF_ALWAYS_INLINE void small_forward_impl(const SmallLayer* layers, std::size_t n_layers, double* vals) {
    const double* x = vals;
    double* y = vals + layers[0].n_in;
    for (std::size_t l = 0; l < n_layers; ++l) {
        const SmallLayer& L = layers[l];
        if (L.dense) {  // dense_forward_impl's one-sample path, summed in a register
            for (std::size_t o = 0; o < L.n_out; ++o) {
                double acc = L.b ? L.b[o] : 0.0;
                const double* w = L.W + o * L.n_in;
                for (std::size_t k = 0; k < L.n_in; ++k) acc += w[k] * x[k];
                y[o] = acc;
            }
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
            // dense_backward_impl with n = 1: each weight gradient gets 0 + gy x (a
            // dot product of length one), each bias gradient 0 + gy, then gx = W^T gy
            for (std::size_t o = 0; o < L.n_out; ++o) {
                for (std::size_t k = 0; k < L.n_in; ++k) {
                    double acc = 0.0;
                    acc += gy[o] * in[k];
                    L.gW[o * L.n_in + k] += acc;
                }
            }
            if (L.gb) {
                for (std::size_t o = 0; o < L.n_out; ++o) {
                    double acc = 0.0;
                    acc += gy[o];
                    L.gb[o] += acc;
                }
            }
            for (std::size_t k = 0; k < L.n_in; ++k) {
                double acc = 0.0;
                for (std::size_t o = 0; o < L.n_out; ++o) acc += L.W[o * L.n_in + k] * gy[o];
                g[k] = acc;
            }
        } else {
            detail::activation_backward_impl(L.act, in, out, gy, g, L.n_in);
        }
        gy = g;
        end -= L.n_out;
        which ^= 1;
    }
}

EF_MULTIVERSION(EF_NO_VECTORIZE, void, small_forward,
                (const SmallLayer* layers, std::size_t n_layers, double* vals), (layers, n_layers, vals),
                small_forward_impl)
EF_MULTIVERSION(EF_NO_VECTORIZE, void, small_backward,
                (const SmallLayer* layers, std::size_t n_layers, const double* vals, const double* gy,
                 double* gx, double* scratch),
                (layers, n_layers, vals, gy, gx, scratch), small_backward_impl)

}  // namespace eulerflow
