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

// One point's scratch: two activation buffers of max_width * n values, one
// row of n values (a dense row before its activation), the point's weights.
struct Scratch {
    double* h[2];
    double* row;
    double* weights;
    LossWork* work;
};

// The loss at coefficients c. A dense layer (or the combined input) followed
// by an activation is evaluated one output row at a time, the row's
// activation applied while it is in L1: the same values as the layer then
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
            if (i + 1 < ops.size() && !ops[i + 1].dense) {  // row by row, each row activated
                const ActParams& act = ops[i + 1].act;
                for (std::size_t o = 0; o < op.n_out; ++o) {
                    detail::dense_forward_impl(W + o * op.n_in, b ? b + o : nullptr, op.n_in, std::size_t(1), x,
                                               s.row, n);
                    detail::activation_forward_impl(act, s.row, y + o * n, n);
                }
                ++i;
            } else {
                detail::dense_forward_impl(W, b, op.n_in, op.n_out, x, y, n);
            }
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
    const std::size_t per = 2 * width * n + n + landscape_max_weights(chain);
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
        scratch[k] = Scratch{{base, base + width * n}, base + 2 * width * n, base + 2 * width * n + n, &works[k]};
    }
    auto task = [&](std::size_t k) {
        const std::size_t lo = std::min(points, k * step), hi = std::min(points, lo + step);
        if (lo < hi) landscape_points(chain, coeffs, lo, hi, out, scratch[k]);
    };
    parallel_for(chunks, task);
}

}  // namespace eulerflow
