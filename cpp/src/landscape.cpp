// Loss landscapes of dense/activation chains (landscape.hpp). The per-point
// evaluation is multi-versioned like kernels.cpp and compiled with the same
// flags (outside LTO, contraction on), so a forward here runs the network's
// own kernels: dense_forward_impl for every dense layer, activation_forward_impl
// for every activation and loss_and_grad_impl for the loss.
#include "eulerflow/landscape.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "eulerflow/dense.hpp"
#include "eulerflow/multiversion.hpp"
#include "eulerflow/threadpool.hpp"

namespace eulerflow {

namespace {

// out[j] = c_0 s_0[j] + c_1 s_1[j] + ... + c_K s_K[j], summed left to right
// (the first term a product, each later one a multiply-add), where s_k is the
// k-th of `terms` stacked arrays of `count` values that lie `stride` apart.
// Element-wise: every j sees the same operations, vectorized or not.
EF_ALWAYS_INLINE void combine(const double* c, std::size_t terms, const double* s, std::size_t stride,
                              std::size_t count, double* out) {
    const double c0 = c[0];
    for (std::size_t j = 0; j < count; ++j) out[j] = c0 * s[j];
    for (std::size_t k = 1; k < terms; ++k) {
        const double ck = c[k];
        const double* sk = s + k * stride;
        for (std::size_t j = 0; j < count; ++j) out[j] += ck * sk[j];
    }
}

// Rows [o, o + G) of Y = W X + b (n_in, n) -> (G, n) at Y, G <= 3. Each value is
// b_o + w_o0 x_0 + w_o1 x_1 + ... in that order, in the chunks of samples of
// dense_forward_impl (four vectors, the last chunk shifted back to end at n;
// fewer samples than a chunk one at a time), so it equals that kernel's value
// bit for bit. The rows of a group share each load of X, and their 4 G
// accumulators are independent chains: dense_forward_impl's four per row
// wait on the multiply-add latency when a layer has many inputs (15 -> 3).
template <std::size_t G>
EF_ALWAYS_INLINE void dense_rows(const double* W, const double* b, std::size_t n_in, const double* X,
                                 double* Y, std::size_t n) {
    using detail::vec_t;
    using detail::vload;
    using detail::vstore;
    constexpr std::size_t L = detail::lanes<double>(), C = 4 * L;
    std::size_t i0 = 0;
    for (; n >= C && i0 < n; i0 += C) {
        const std::size_t i = i0 + C <= n ? i0 : n - C;
        vec_t<double> a[G][4];
        for (std::size_t g = 0; g < G; ++g) {
            const double bo = b ? b[g] : 0.0;
            for (std::size_t v = 0; v < 4; ++v) a[g][v] = vec_t<double>{} + bo;
        }
        for (std::size_t k = 0; k < n_in; ++k) {
            const double* x = X + k * n + i;
            const vec_t<double> x0 = vload(x), x1 = vload(x + L), x2 = vload(x + 2 * L), x3 = vload(x + 3 * L);
            for (std::size_t g = 0; g < G; ++g) {
                const vec_t<double> wk = vec_t<double>{} + W[g * n_in + k];
                a[g][0] += wk * x0;
                a[g][1] += wk * x1;
                a[g][2] += wk * x2;
                a[g][3] += wk * x3;
            }
        }
        for (std::size_t g = 0; g < G; ++g) {
            for (std::size_t v = 0; v < 4; ++v) vstore(Y + g * n + i + v * L, a[g][v]);
        }
    }
    for (std::size_t g = 0; g < G; ++g) {  // fewer samples than a chunk: as dense_forward_impl's rest
        double* y = Y + g * n;
        for (std::size_t i = i0; i < n; ++i) y[i] = b ? b[g] : 0.0;
        for (std::size_t k = 0; k < n_in; ++k) {
            const double wk = W[g * n_in + k];
            const double* x = X + k * n;
            for (std::size_t i = i0; i < n; ++i) y[i] += wk * x[i];
        }
    }
}

// Y = act(W X + b) for a dense layer (n_in -> n_out) followed by an activation,
// or W X + b when act is null: by groups of three rows, each group's
// activation applied from `tmp` (3 n values) while the group is in L1.
EF_ALWAYS_INLINE void dense_layer(const double* W, const double* b, std::size_t n_in, std::size_t n_out,
                                  const double* X, const ActParams* act, double* tmp, double* Y, std::size_t n) {
    for (std::size_t o = 0; o < n_out; o += 3) {
        const std::size_t G = std::min<std::size_t>(3, n_out - o);
        double* out = act ? tmp : Y + o * n;
        const double* Wo = W + o * n_in;
        const double* bo = b ? b + o : nullptr;
        if (G == 3) {
            dense_rows<3>(Wo, bo, n_in, X, out, n);
        } else if (G == 2) {
            dense_rows<2>(Wo, bo, n_in, X, out, n);
        } else {
            dense_rows<1>(Wo, bo, n_in, X, out, n);
        }
        if (act) detail::activation_forward_impl(*act, tmp, Y + o * n, G * n);
    }
}

// One point's scratch: two activation buffers of max_width * n values, three
// rows of n values (dense rows before their activation), the point's weights.
struct Scratch {
    double* h[2];
    double* row;
    double* weights;
    LossWork* work;
};

// The loss at coefficients c. A dense layer (or the combined input) followed
// by an activation is evaluated a few output rows at a time, their
// activation applied while they are in L1: the same values as the layer then
// the activation over the whole array, without a pass over a second array.
EF_ALWAYS_INLINE double point_loss(const LandscapeChain& ch, const double* c, const Scratch& s) {
    const std::size_t n = ch.n, terms = ch.terms;
    const std::vector<LandscapeOp>& ops = ch.ops;
    std::size_t width = ch.width, i = 0;
    int next = 0;
    const double* x = ch.Q;
    if (ch.stacks > 1) {  // the first layer's output sum_k c_k Q_k (activated when an activation follows)
        const std::size_t count = width * n;
        double* y = s.h[next];
        if (!ops.empty() && !ops[0].dense) {
            for (std::size_t o = 0; o < width; ++o) {
                combine(c, terms, ch.Q + o * n, count, n, s.row);
                detail::activation_forward_impl(ops[0].act, s.row, y + o * n, n);
            }
            i = 1;
        } else {
            combine(c, terms, ch.Q, count, count, y);
        }
        x = y;
        next ^= 1;
    }
    for (; i < ops.size(); ++i) {
        const LandscapeOp& op = ops[i];
        double* y = s.h[next];
        if (op.dense) {
            const std::size_t nw = op.n_out * op.n_in;
            double* W = s.weights;
            double* b = op.b ? s.weights + nw : nullptr;
            combine(c, terms, op.W, nw, nw, W);
            if (b) combine(c, terms, op.b, op.n_out, op.n_out, b);
            const bool activated = i + 1 < ops.size() && !ops[i + 1].dense;
            dense_layer(W, b, op.n_in, op.n_out, x, activated ? &ops[i + 1].act : nullptr, s.row, y, n);
            i += activated ? 1 : 0;
            width = op.n_out;
        } else {
            detail::activation_forward_impl(op.act, x, y, width * n);
        }
        x = y;
        next ^= 1;
    }
    return detail::loss_and_grad_impl(ch.loss, x, ch.targets, width, n, static_cast<double*>(nullptr),
                                      *s.work, static_cast<std::size_t*>(nullptr));
}

EF_ALWAYS_INLINE void landscape_points_impl(const LandscapeChain& ch, const double* coeffs, std::size_t lo,
                                            std::size_t hi, double* out, const Scratch& s) {
    for (std::size_t p = lo; p < hi; ++p) {
        const double v = point_loss(ch, coeffs + p * ch.terms, s);
        out[p] = std::isfinite(v) ? v : std::numeric_limits<double>::infinity();
    }
}

EF_MULTIVERSION(, void, landscape_points,
                (const LandscapeChain& ch, const double* coeffs, std::size_t lo, std::size_t hi, double* out,
                 const Scratch& s),
                (ch, coeffs, lo, hi, out, s), landscape_points_impl)

}  // namespace

std::size_t landscape_max_width(const LandscapeChain& chain) {
    std::size_t w = chain.width;
    for (const auto& op : chain.ops) w = std::max(w, op.dense ? op.n_out : std::size_t(0));
    return w;
}

std::size_t landscape_max_weights(const LandscapeChain& chain) {
    std::size_t w = 0;
    for (const auto& op : chain.ops) {
        if (op.dense) w = std::max(w, op.n_out * op.n_in + op.n_out);
    }
    return w;
}

void landscape_losses(const LandscapeChain& chain, const double* coeffs, std::size_t points, double* out) {
    if (points == 0) return;
    const std::size_t n = chain.n, width = landscape_max_width(chain);
    const std::size_t per = 2 * width * n + 3 * n + landscape_max_weights(chain);
    // a few chunks per thread: a thread slowed by other work leaves its later chunks to the others
    const std::size_t threads = get_num_threads();
    const std::size_t chunks = threads > 1 ? std::min(points, 4 * threads) : 1;
    const std::size_t step = (points + chunks - 1) / chunks;
    // every chunk's scratch, allocated here, before any point is evaluated
    std::vector<double> buffer(chunks * per);
    std::vector<LossWork> works(chunks);
    std::vector<Scratch> scratch(chunks);
    for (std::size_t k = 0; k < chunks; ++k) {
        double* base = buffer.data() + k * per;
        works[k].reserve(n);
        scratch[k] = Scratch{{base, base + width * n}, base + 2 * width * n, base + 2 * width * n + 3 * n, &works[k]};
    }
    auto task = [&](std::size_t k) {
        const std::size_t lo = std::min(points, k * step), hi = std::min(points, lo + step);
        if (lo < hi) landscape_points(chain, coeffs, lo, hi, out, scratch[k]);
    };
    parallel_for(chunks, task);
}

}  // namespace eulerflow
