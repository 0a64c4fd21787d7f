// The fused training step of small chains (fused_step.hpp). It is
// multi-versioned like kernels.cpp and compiled with the same flags (outside
// LTO, contraction on), and every expression below is the one of the general
// kernel it stands for (named in the comments), so each multiply-add is fused
// exactly where the general step fuses it.
#include "eulerflow/fused_step.hpp"

#include <algorithm>
#include <atomic>

#include "eulerflow/dense.hpp"
#include "eulerflow/multiversion.hpp"

namespace eulerflow {

namespace {

std::atomic<bool> g_fused_enabled{true};

using detail::hsum;
using detail::vload;
using detail::vstore;
using V = detail::vec_t<double>;
constexpr std::size_t kFusedAlign = 64;  // bytes: a cache line
constexpr std::size_t kL = detail::lanes<double>();  // 4: dots_impl strides 2 kL = 8 samples
static_assert(kFusedTile % (2 * kL) == 0, "a tile holds whole dots_impl strides");
static_assert(kFusedMinBatch == 2 * kL, "dots_impl sums in vectors from 2L samples");

// detail::mask_below's result (v with its lanes start + j < from zeroed) by a
// compare and select: mask_below goes through a stack buffer, whose scalar
// stores the vector load cannot forward from.
EF_ALWAYS_INLINE V mask_below(const V& v, std::size_t start, std::size_t from) {
    typedef std::int64_t I __attribute__((vector_size(sizeof(V))));
    static_assert(sizeof(I) / sizeof(std::int64_t) == kL, "one index per lane");
    const I lane = I{0, 1, 2, 3} + std::int64_t(start);
    return lane >= std::int64_t(from) ? v : V{};
}

// The running sums of cross entropy over the samples, in sample order as
// cross_entropy sums them: the loss and the correct predictions.
struct CeSums {
    double total = 0.0;
    std::size_t hits = 0;
};

// dL/dz into g (k, C) for the tile of C samples starting at sample p, with
// cross_entropy's and squared_error's expressions per sample. Cross entropy
// adds the samples from lane `fresh` on to ce (those before it were added by
// an earlier tile); squared_error's sum runs over yout after the tiles.
template <std::size_t C>
EF_ALWAYS_INLINE void tile_loss(LossKind kind, const double* z, std::size_t k, std::size_t m,
                                std::size_t p, std::size_t fresh, const Targets<double>& tg, double* g,
                                CeSums& ce, double* yout) {
    if (kind != LossKind::CrossEntropy) {
        // squared_error's gradient; its sum runs over yout (k, m) after the tiles
        const double scale = kind == LossKind::Mse ? 1.0 / double(k * m) : 0.5 / double(m);
        for (std::size_t j = 0; j < k; ++j) {
            const double* zj = z + j * C;
            const double* tj = tg.t + j * m + p;
            double* gj = g + j * C;
            double* yj = yout + j * m + p;
            for (std::size_t i = 0; i < C; ++i) yj[i] = zj[i];
            for (std::size_t i = 0; i < C; ++i) gj[i] = 2.0 * scale * (zj[i] - tj[i]);
        }
        return;
    }
    double zmax[C], zsum[C];
    std::int64_t best[C];
    for (std::size_t i = 0; i < C; ++i) {
        zmax[i] = z[i];
        best[i] = 0;
    }
    for (std::size_t j = 1; j < k; ++j) {
        const double* zj = z + j * C;
        for (std::size_t i = 0; i < C; ++i) {
            const bool up = zj[i] > zmax[i];
            best[i] = up ? std::int64_t(j) : best[i];
            zmax[i] = up ? zj[i] : zmax[i];
        }
    }
    for (std::size_t i = 0; i < C; ++i) zsum[i] = 0.0;
    for (std::size_t j = 0; j < k; ++j) {
        const double* zj = z + j * C;
        double* gj = g + j * C;
        for (std::size_t i = 0; i < C; ++i) {
            const double e = fastmath::exp(zj[i] - zmax[i]);
            zsum[i] += e;
            gj[i] = e;
        }
    }
    const double inv_n = 1.0 / double(m);
    for (std::size_t i = 0; i < C; ++i) zmax[i] += fastmath::log(zsum[i]);
    double total = ce.total;  // one chain of additions, as cross_entropy's
    std::size_t hits = ce.hits;
    if (tg.labels) {
        const std::int64_t* lab = tg.labels + p;
        double zlab[C];
        for (std::size_t i = 0; i < C; ++i) zlab[i] = z[std::size_t(lab[i]) * C + i];
        for (std::size_t i = fresh; i < C; ++i) {
            total += zmax[i] - zlab[i];
            hits += std::size_t(best[i] == lab[i]);
        }
        ce.total = total;
        ce.hits = hits;
        for (std::size_t i = 0; i < C; ++i) zsum[i] = inv_n / zsum[i];
        for (std::size_t j = 0; j < k; ++j) {
            double* gj = g + j * C;
            for (std::size_t i = 0; i < C; ++i) gj[i] = gj[i] * zsum[i];
            const std::int64_t jj = std::int64_t(j);
            const double step = inv_n;
            for (std::size_t i = 0; i < C; ++i) gj[i] -= lab[i] == jj ? step : 0.0;
        }
        return;
    }
    double tsum[C], tz[C];
    std::int64_t tbest[C];
    for (std::size_t i = 0; i < C; ++i) {
        tsum[i] = 0.0;
        tz[i] = 0.0;
        tbest[i] = 0;
    }
    for (std::size_t j = 0; j < k; ++j) {
        const double* tj = tg.t + j * m + p;
        const double* zj = z + j * C;
        for (std::size_t i = 0; i < C; ++i) {
            tsum[i] += tj[i];
            tz[i] += tj[i] * zj[i];
            tbest[i] = tj[i] > tg.t[std::size_t(tbest[i]) * m + p + i] ? std::int64_t(j) : tbest[i];
        }
    }
    for (std::size_t i = fresh; i < C; ++i) {
        total += zmax[i] * tsum[i] - tz[i];
        hits += std::size_t(best[i] == tbest[i]);
    }
    ce.total = total;
    ce.hits = hits;
    for (std::size_t i = 0; i < C; ++i) zsum[i] = tsum[i] * inv_n / zsum[i];
    for (std::size_t j = 0; j < k; ++j) {
        double* gj = g + j * C;
        const double* tj = tg.t + j * m + p;
        for (std::size_t i = 0; i < C; ++i) gj[i] = gj[i] * zsum[i];
        for (std::size_t i = 0; i < C; ++i) gj[i] = gj[i] - tj[i] * inv_n;
    }
}

// The Dense layer's arithmetic on a tile of C = NV kL samples (x: n_in rows of
// C, y: n_out rows). Scalars arrive by value so that they stay in registers
// across the stores to the tiles.

// y = W x + b: dense_forward_impl's chunks (b, then one multiply-add per input)
template <std::size_t NV>
EF_ALWAYS_INLINE void tile_dense_forward(const double* W, const double* b, std::size_t n_in,
                                         std::size_t n_out, const double* x, double* y) {
    constexpr std::size_t C = NV * kL;
    for (std::size_t o = 0; o < n_out; ++o) {
        const double bo = b ? b[o] : 0.0;
        const double* w = W + o * n_in;
        V a[NV];
        for (std::size_t v = 0; v < NV; ++v) a[v] = V{} + bo;
        for (std::size_t k = 0; k < n_in; ++k) {
            const V wk = V{} + w[k];
            for (std::size_t v = 0; v < NV; ++v) a[v] += wk * vload(x + k * C + v * kL);
        }
        for (std::size_t v = 0; v < NV; ++v) vstore(y + o * C + v * kL, a[v]);
    }
}

// The backward of a Dense layer on the tile, one pass over its inputs:
// - weight gradients into their accumulators, each weight's two vectors of
//   dots_impl (samples 8t..8t+3 into s0, 8t+4..8t+7 into s1);
// - bias gradients, each in sum_impl's vector (samples in steps of kL);
// - when gx is not null, gx = W^T gy as dense_backward_impl's chunks (from
//   zero, one multiply-add per output), times d when d is not null (the
//   derivative of the activation below: Sequence::backward's multiply).
// Masked: the batch's last 8 samples, of which those before lane `fresh` are
// summed already: dots_impl's masked tail (on the operand dense_backward_impl
// passes first) and sum_impl's remaining steps and masked tail.
template <std::size_t NV, bool Masked>
EF_ALWAYS_INLINE void tile_dense_backward(const double* W, std::size_t n_in, std::size_t n_out,
                                          const double* x, const double* gy, double* accw,
                                          double* accb, bool mask_gy, std::size_t fresh, double* gx,
                                          const double* d) {
    constexpr std::size_t C = NV * kL;
    for (std::size_t k = 0; k < n_in; ++k) {
        V xv[NV], a[NV];
        for (std::size_t v = 0; v < NV; ++v) {
            xv[v] = vload(x + k * C + v * kL);
            a[v] = V{};
        }
        if (Masked && !mask_gy) {
            xv[0] = mask_below(xv[0], 0, fresh);
            xv[1] = mask_below(xv[1], kL, fresh);
        }
        for (std::size_t o = 0; o < n_out; ++o) {
            V g[NV];
            for (std::size_t v = 0; v < NV; ++v) g[v] = vload(gy + o * C + v * kL);
            if (gx) {
                const V w = V{} + W[o * n_in + k];
                for (std::size_t v = 0; v < NV; ++v) a[v] += w * g[v];
            }
            if (Masked && mask_gy) {
                g[0] = mask_below(g[0], 0, fresh);
                g[1] = mask_below(g[1], kL, fresh);
            }
            double* s = accw + (o * n_in + k) * 2 * kL;
            V s0 = vload(s), s1 = vload(s + kL);
            for (std::size_t t = 0; t < NV; t += 2) {
                s0 += g[t] * xv[t];
                s1 += g[t + 1] * xv[t + 1];
            }
            vstore(s, s0);
            vstore(s + kL, s1);
        }
        if (!gx) continue;
        if (d) {
            for (std::size_t v = 0; v < NV; ++v) a[v] = vload(d + k * C + v * kL) * a[v];
        }
        for (std::size_t v = 0; v < NV; ++v) vstore(gx + k * C + v * kL, a[v]);
    }
    if (!accb) return;
    for (std::size_t o = 0; o < n_out; ++o) {
        const double* g = gy + o * C;
        V sb = vload(accb + o * kL);
        if (Masked) {  // sum_impl's steps from lane `fresh` on, then its masked tail
            std::size_t i = fresh;
            for (; i + kL <= C; i += kL) sb += vload(g + i);
            if (i < C) sb += mask_below(vload(g + C - kL), C - kL, i);
        } else {
            for (std::size_t v = 0; v < NV; ++v) sb += vload(g + v * kL);
        }
        vstore(accb + o * kL, sb);
    }
}

// Forward, loss and backward of the C = NV kL samples from p on (Masked: the
// batch's last 8, those before p + fresh done already).
template <std::size_t NV, bool Masked>
EF_ALWAYS_INLINE void fused_tile(const FusedChain& ch, const double* X, std::size_t m, LossKind loss,
                                 const Targets<double>& tg, double* work, CeSums& ce, double* yout,
                                 std::size_t p, std::size_t fresh) {
    constexpr std::size_t C = NV * kL;
    static_assert(!Masked || NV == 2, "only the last 8 samples are masked");
    const FusedLayer* layers = ch.layers.data();
    const std::size_t nl = ch.layers.size(), n_in = ch.n_in;
    double* x0 = work + layers[0].in;
    for (std::size_t f = 0; f < n_in; ++f) {
        for (std::size_t i = 0; i < C; ++i) x0[f * C + i] = X[f * m + p + i];
    }
    for (std::size_t l = 0; l < nl; ++l) {
        const FusedLayer& L = layers[l];
        if (L.dense) {
            tile_dense_forward<NV>(L.W, L.b, L.n_in, L.n_out, work + L.in, work + L.out);
        } else {
            detail::activation_forward_deriv_impl(L.act, work + L.in, work + L.out, work + L.d, L.n_out * C);
        }
    }
    tile_loss<C>(loss, work + layers[nl - 1].out, ch.n_out, m, p, fresh, tg, work + ch.grad[0], ce, yout);

    const double* gy = work + ch.grad[0];
    int which = 1;
    for (std::size_t l = nl; l-- > 0;) {
        const FusedLayer& L = layers[l];
        double* gx = work + ch.grad[which];
        if (L.dense) {
            // an activation below is folded into this layer's input gradient
            const bool act_below = l > 0 && !layers[l - 1].dense;
            const bool need_gx = l > (act_below ? 1u : 0u);
            double* accw = work + L.acc;
            double* accb = L.gb ? accw + L.n_out * L.n_in * 2 * kL : nullptr;
            tile_dense_backward<NV, Masked>(L.W, L.n_in, L.n_out, work + L.in, gy, accw, accb, L.mask_gy,
                                            fresh, need_gx ? gx : nullptr,
                                            act_below ? work + layers[l - 1].d : nullptr);
            if (!need_gx) break;
            if (act_below) --l;
        } else {
            if (l == 0) break;
            detail::multiply_impl(work + L.d, gy, gx, L.n_in * C);  // Sequence::backward's
        }
        gy = gx;
        which ^= 1;
    }
}

EF_ALWAYS_INLINE double fused_step_impl(const FusedChain& ch, const double* X, std::size_t m, LossKind loss,
                                        const Targets<double>& tg, double* work, double* yout,
                                        std::size_t* correct) {
    // Every tile and accumulator offset is a multiple of 8 doubles: from a
    // 64-byte boundary no vector load or store straddles two cache lines (a
    // malloc'd buffer starts 16 bytes past one, and the split accesses cost
    // about a tenth of the step on W4).
    work = reinterpret_cast<double*>((reinterpret_cast<std::uintptr_t>(work) + kFusedAlign - 1) &
                                     ~std::uintptr_t(kFusedAlign - 1));
    std::fill(work + ch.acc_begin, work + ch.acc_end, 0.0);
    CeSums ce;
    std::size_t i = 0;
    for (; i + kFusedTile <= m; i += kFusedTile) {
        fused_tile<kFusedTile / kL, false>(ch, X, m, loss, tg, work, ce, yout, i, 0);
    }
    for (; i + 2 * kL <= m; i += 2 * kL) fused_tile<2, false>(ch, X, m, loss, tg, work, ce, yout, i, 0);
    if (i < m) fused_tile<2, true>(ch, X, m, loss, tg, work, ce, yout, m - 2 * kL, i - (m - 2 * kL));
    // the sums, in the general backward's layer order (tied weights add alike)
    for (std::size_t l = ch.layers.size(); l-- > 0;) {
        const FusedLayer& L = ch.layers[l];
        if (!L.dense) continue;
        const double* acc = work + L.acc;
        for (std::size_t e = 0; e < L.n_out * L.n_in; ++e) {
            L.gW[e] += hsum<double>(vload(acc + e * 2 * kL) + vload(acc + e * 2 * kL + kL));
        }
        if (L.gb) {
            const double* sb = acc + L.n_out * L.n_in * 2 * kL;
            for (std::size_t o = 0; o < L.n_out; ++o) L.gb[o] += hsum<double>(vload(sb + o * kL));
        }
    }
    // squared_error's sums, over the outputs in its own order
    if (loss == LossKind::Mse) return detail::squared_error(yout, tg.t, ch.n_out * m, 1.0 / double(ch.n_out * m), static_cast<double*>(nullptr));
    if (loss == LossKind::HalfSe) return detail::squared_error(yout, tg.t, ch.n_out * m, 0.5 / double(m), static_cast<double*>(nullptr));
    if (correct) *correct = ce.hits;
    return ce.total * (1.0 / double(m));
}

}  // namespace

bool fused_chain(const Sequence<double>& seq, FusedChain& out) {
    out.layers.clear();  // keeps its capacity: fit calls this again after every callback
    out.size = 0;
    if (seq.layers.empty()) return false;
    bool any_dense = false;
    std::size_t width = seq.n_in, maxw = seq.n_in;
    std::size_t off = width * kFusedTile;  // the input tile at 0
    std::size_t prev = 0;
    for (const auto& L : seq.layers) {
        if (L.kind != LayerKind::Dense && L.kind != LayerKind::Activation) return false;
        if (L.n_in != width || L.n_in > kFusedWidth || L.n_out > kFusedWidth) return false;
        FusedLayer f;
        static_cast<SmallLayer&>(f) = as_small_layer(L);
        any_dense = any_dense || f.dense;
        f.mask_gy = L.n_in >= 4 || L.n_out < 4;  // dense_backward_impl's choice
        f.in = prev;
        f.out = off;
        off += L.n_out * kFusedTile;
        if (!f.dense) {
            f.d = off;
            off += L.n_out * kFusedTile;
        }
        prev = f.out;
        width = L.n_out;
        maxw = std::max(maxw, width);
        out.layers.push_back(f);
    }
    if (!any_dense) return false;
    out.grad[0] = off;
    out.grad[1] = off + maxw * kFusedTile;
    off += 2 * maxw * kFusedTile;
    out.acc_begin = off;
    for (auto& f : out.layers) {
        if (!f.dense) continue;
        f.acc = off;
        off += f.n_out * f.n_in * 2 * kL + f.n_out * kL;
    }
    out.acc_end = off;
    out.size = off + kFusedAlign / sizeof(double) - 1;  // room to align the start (fused_step_impl)
    out.n_in = seq.n_in;
    out.n_out = width;
    return true;
}

// In AVX2's 16 registers the tiles spill (measured 1.35x slower than the general step).
bool fused_step_pays() { return isa::wide_registers(); }

void set_fused_step(bool enabled) { g_fused_enabled.store(enabled, std::memory_order_relaxed); }

bool fused_step_enabled() { return g_fused_enabled.load(std::memory_order_relaxed); }

EF_MULTIVERSION(, double, fused_step,
                (const FusedChain& chain, const double* X, std::size_t m, LossKind loss,
                 const Targets<double>& tg, double* work, double* yout, std::size_t* correct),
                (chain, X, m, loss, tg, work, yout, correct), fused_step_impl)

}  // namespace eulerflow
