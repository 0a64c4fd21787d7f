// Ensembles in lanes. This file is compiled for baseline x86-64 like node.cpp
// and rk.cpp, whose arithmetic it repeats lane by lane (an Euler update here
// must round exactly as rk_step's does); the network and optimizer work goes
// through the multi-versioned lanes kernels, as the separate training's does
// through dense_forward/dense_backward/optim_step.
#include "eulerflow/ensemble.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

#include "eulerflow/dense.hpp"
#include "eulerflow/lanes.hpp"
#include "eulerflow/rk.hpp"
#include "eulerflow/small_net.hpp"

namespace eulerflow {

LaneNet::LaneNet(std::vector<LaneLayer> layers, std::size_t N) : layers_(std::move(layers)), N_(N) {
    if (layers_.empty()) throw std::invalid_argument("an ensemble network needs at least one layer");
    std::size_t widest = layers_.front().n_in;
    for (auto& L : layers_) {
        L.out.assign(L.n_out * N, 0.0);
        widest = std::max({widest, L.n_in, L.n_out});
    }
    ga_.assign(widest * N, 0.0);
    gb_.assign(widest * N, 0.0);
}

const double* LaneNet::forward(const double* P, const double* x, double* out) {
    for (auto& L : layers_) {
        L.in = x;
        double* y = out && &L == &layers_.back() ? out : L.out.data();
        if (L.dense) {
            dense_forward_lanes(P + L.w_off * N_, L.bias ? P + L.b_off * N_ : nullptr, L.n_in, L.n_out, x, y,
                                N_);
        } else {
            activation_forward(L.act, x, y, L.n_out * N_);
        }
        x = y;
    }
    return x;
}

void LaneNet::set_input(const double* P, const double* x) {
    if (layers_.size() == 1 && layers_[0].dense) {
        layers_[0].in = x;
    } else {
        forward(P, x);
    }
}

const double* LaneNet::backward(const double* P, double* G, const double* gy) {
    double* bufs[2] = {ga_.data(), gb_.data()};
    int which = 0;
    for (std::size_t li = layers_.size(); li-- > 0;) {
        LaneLayer& L = layers_[li];
        double* gx = bufs[which];
        if (L.dense) {
            dense_backward_lanes(P + L.w_off * N_, L.n_in, L.n_out, L.in, gy, N_, G + L.w_off * N_,
                                 L.bias ? G + L.b_off * N_ : nullptr, gx);
        } else {
            activation_backward(L.act, L.in, L.out.data(), gy, gx, L.n_in * N_);
        }
        gy = gx;
        which ^= 1;
    }
    return gy;
}

namespace {

std::atomic<bool> g_lanes_euler_window{true};

// The step sizes of every window, the same number (`steps`) for each: a table
// computed once per fit, as NeuralOde::fit caches them, or, when the table
// would take much memory, each window's when it comes.
struct WindowSteps {
    const double* t;
    std::size_t window;
    double step_size;
    std::int64_t k_fixed;
    std::size_t steps = 0;
    std::vector<double> table, one, per_lane;

    WindowSteps(const double* times, std::size_t nw, std::size_t w, double h, std::int64_t k, std::size_t N)
        : t(times), window(w), step_size(h), k_fixed(k) {
        compute(0);
        steps = one.size();
        constexpr std::size_t kMaxTable = std::size_t(1) << 20;
        if (nw * steps > kMaxTable) {
            per_lane.assign(N * steps, 0.0);
            return;
        }
        table.reserve(nw * steps);
        for (std::size_t i = 0; i < nw; ++i) {
            compute(i);
            table.insert(table.end(), one.begin(), one.end());
        }
    }

    // window i's step sizes, for lane l
    const double* of(std::size_t i, std::size_t l) {
        if (!table.empty()) return table.data() + i * steps;
        compute(i);
        double* out = per_lane.data() + l * steps;
        std::copy(one.begin(), one.end(), out);
        return out;
    }

private:
    void compute(std::size_t i) {
        one.clear();
        fixed_step_sizes(t + i, window + 1, step_size, k_fixed, std::numeric_limits<std::int64_t>::max(), one);
        if (steps > 0 && one.size() != steps) {
            throw std::invalid_argument(
                "the ensemble's windows need different numbers of steps (step_size does not "
                "divide every interval alike): give steps_per_interval instead");
        }
    }
};

// The scratch of one window's forward integration and reverse sweep.
struct NodeLanes {
    LaneNet& net;
    const double* P;
    double* G;  // the network's parameter gradients (p.g of the separate run)
    double* gacc;  // the batch's gradient: scale * G added per window
    std::size_t n_params;
    const Tableau& tb;
    std::size_t N, d, S;
    std::vector<double> y, ytmp, K, Y, Yb, kb, abar, target, a;
    std::vector<double> tape_h, tape_y;  // per step: h (N), y (d * N); fields are autonomous
    std::vector<const double*> h_rows, z_rows, t_rows;  // per lane: its window's step sizes, start, target
    // Euler on a field small_euler_window takes: the layers over P and gacc, the
    // hidden width (-1: the general sweep) and the kernel's scratch
    std::vector<SmallLayer> small;
    int hidden = -1;
    std::vector<double> scratch;

    NodeLanes(LaneNet& n, const double* p, double* g, double* acc, std::size_t count, const Tableau& t,
              std::size_t lanes, std::size_t dim, std::size_t steps)
        : net(n), P(p), G(g), gacc(acc), n_params(count), tb(t), N(lanes), d(dim), S(std::size_t(t.stages)),
          h_rows(lanes), z_rows(lanes), t_rows(lanes) {
        if (S == 1 && tb.b[0] != 0.0 && g_lanes_euler_window.load(std::memory_order_relaxed)) {
            for (const auto& L : net.layers()) {
                SmallLayer s;
                s.dense = L.dense;
                s.n_in = L.n_in;
                s.n_out = L.n_out;
                s.act = L.act;
                if (L.dense) {
                    s.W = P + L.w_off * N;
                    s.b = L.bias ? P + L.b_off * N : nullptr;
                    s.gW = gacc + L.w_off * N;
                    s.gb = L.bias ? gacc + L.b_off * N : nullptr;
                }
                small.push_back(s);
            }
            hidden = small_euler_shape(small.data(), small.size());
        }
        if (hidden >= 0) {
            scratch.assign(small_euler_lanes_scratch(d, std::size_t(hidden), steps), 0.0);
            return;
        }
        y.assign(d * N, 0.0);
        ytmp = kb = abar = target = y;
        K.assign(S * d * N, 0.0);
        Y = Yb = K;
        a.assign(N, 0.0);
        tape_h.assign(steps * N, 0.0);
        tape_y.assign(steps * d * N, 0.0);
    }

    // f(x) into out, both (d, N): NetworkField::eval for every lane
    void field(const double* x, double* out) { net.forward(P, x, out); }

    // x += a_l * Kj per lane where a_l != 0, as rk_step's `if (a == 0.0) continue`
    void add_scaled(double* x, const double* Kj) const { lanes_add_scaled(x, Kj, a.data(), d, N); }

    // rk_step for fixed-step tableaus with the step sizes h (N): K[0] holds f(y);
    // y += h sum b_j K_j in place (the stages are all computed first, so this is
    // rk_step's y_new)
    void step(const double* h) {
        const std::size_t n = d * N;
        for (std::size_t s = 1; s < S; ++s) {
            std::copy(y.begin(), y.end(), ytmp.begin());
            for (std::size_t j = 0; j < s; ++j) {
                if (tb.A(s, j) == 0.0) continue;
                for (std::size_t l = 0; l < N; ++l) a[l] = h[l] * tb.A(s, j);
                add_scaled(ytmp.data(), K.data() + j * n);
            }
            field(ytmp.data(), K.data() + s * n);
        }
        for (std::size_t j = 0; j < S; ++j) {
            if (tb.b[j] == 0.0) continue;
            for (std::size_t l = 0; l < N; ++l) a[l] = h[l] * tb.b[j];
            add_scaled(y.data(), K.data() + j * n);
        }
    }

    // window_gradient (backprop) for every lane: the window of lane l starts at
    // data[order[l * nw]] (its shuffled windows are nw apart); adds scale *
    // dLoss/dP into gacc; losses into L.
    void window(const double* data, const std::size_t* order, std::size_t nw, std::size_t window,
                WindowSteps& ws, double scale, double* L) {
        const std::size_t n = d * N, steps = ws.steps;
        // locals: a store through one of these might change any pointer, a member's too
        const double** hr = h_rows.data();
        const double** zr = z_rows.data();
        const double** tr = t_rows.data();
        const double* table = ws.table.empty() ? nullptr : ws.table.data();
        for (std::size_t l = 0; l < N; ++l) {
            const std::size_t i = order[l * nw];
            hr[l] = table ? table + i * steps : ws.of(i, l);
            zr[l] = data + i * d;
            tr[l] = data + (i + window) * d;
        }
        if (hidden >= 0) {  // the whole window in one kernel
            small_euler_window_lanes(small.data(), std::size_t(hidden), N, h_rows.data(), tb.b[0], steps,
                                     z_rows.data(), t_rows.data(), scale, scratch.data(), L);
            return;
        }
        for (std::size_t l = 0; l < N; ++l) {
            for (std::size_t i = 0; i < d; ++i) {
                y[i * N + l] = z_rows[l][i];
                target[i * N + l] = t_rows[l][i];
            }
            for (std::size_t m = 0; m < steps; ++m) tape_h[m * N + l] = h_rows[l][m];
        }
        for (std::size_t m = 0; m < steps; ++m) {
            std::copy(y.begin(), y.end(), tape_y.begin() + std::ptrdiff_t(m * n));
            field(y.data(), K.data());
            step(tape_h.data() + m * N);
        }
        // loss: MSE over the d components, and its gradient
        lanes_mse(y.data(), target.data(), d, N, L, abar.data());

        // reverse sweep, as NeuralOde::window_gradient
        std::fill(G, G + n_params * N, 0.0);
        for (std::size_t m = steps; m-- > 0;) {
            const double* hm = tape_h.data() + m * N;
            const double* ym = tape_y.data() + m * n;
            for (std::size_t s = 0; s < S; ++s) {
                double* Ys = Y.data() + s * n;  // stage 0's input is ym itself
                if (s == 0) {
                    if (S > 1) field(ym, K.data());
                    continue;
                }
                std::copy(ym, ym + n, Ys);
                for (std::size_t j = 0; j < s; ++j) {
                    if (tb.A(s, j) == 0.0) continue;
                    for (std::size_t l = 0; l < N; ++l) a[l] = hm[l] * tb.A(s, j);
                    add_scaled(Ys, K.data() + j * n);
                }
                // K_s feeds only the later stages' inputs: the last one is not needed
                if (s + 1 < S) field(Ys, K.data() + s * n);
            }
            for (std::size_t s = S; s-- > 0;) {
                bool any = tb.b[s] != 0.0;
                lanes_scale(kb.data(), hm, tb.b[s], abar.data(), d, N);
                for (std::size_t q = s + 1; q < S; ++q) {
                    if (tb.A(q, s) == 0.0) continue;
                    any = true;
                    for (std::size_t l = 0; l < N; ++l) a[l] = hm[l] * tb.A(q, s);
                    add_scaled(kb.data(), Yb.data() + q * n);
                }
                double* Ybs = Yb.data() + s * n;
                if (!any) {
                    std::fill(Ybs, Ybs + n, 0.0);
                    continue;
                }
                net.set_input(P, s == 0 ? ym : Y.data() + s * n);
                const double* gx = net.backward(P, G, kb.data());
                if (S == 1) {  // abar += Yb_0 straight from the network's buffer
                    add_into(abar.data(), gx, n);
                    continue;
                }
                std::copy(gx, gx + n, Ybs);
            }
            if (S > 1) {
                for (std::size_t s = 0; s < S; ++s) add_into(abar.data(), Yb.data() + s * n, n);
            }
        }
        add_times(gacc, scale, G, n_params * N);
    }
};

}  // namespace

void set_lanes_euler_window(bool enabled) { g_lanes_euler_window.store(enabled, std::memory_order_relaxed); }

bool lanes_euler_window_enabled() { return g_lanes_euler_window.load(std::memory_order_relaxed); }

EnsembleStatus node_ensemble_fit(LaneNet& net, double* P, std::size_t n_params, std::size_t N,
                                 const double* data, const double* t, std::size_t T, std::size_t d,
                                 const NodeEnsembleConfig& cfg, const OptimConfig& oc,
                                 OptimScalars& os, const double* lr, double* buf1, double* buf2,
                                 std::vector<Rng>& rngs, double* loss_out,
                                 const EnsembleCallback& on_epoch) {
    if (cfg.tb->adaptive()) throw std::invalid_argument("ensembles train with fixed-step methods only");
    EnsembleStatus st;
    st.bad_epoch.assign(N, -1);
    const std::size_t nw = T - cfg.window;
    const std::size_t nb = std::min(cfg.batch_size, nw);
    std::vector<double> G(n_params * N), gacc(n_params * N), coef_a(N), coef_b(N);
    std::vector<double> L(N), batch_loss(N), epoch_loss(N);
    std::vector<unsigned char> active(N, 1);
    std::vector<std::size_t> idx(nw * N);
    for (std::size_t l = 0; l < N; ++l) std::iota(idx.begin() + std::ptrdiff_t(l * nw), idx.begin() + std::ptrdiff_t((l + 1) * nw), std::size_t(0));
    WindowSteps ws(t, nw, cfg.window, cfg.step_size, cfg.steps_per_interval, N);
    NodeLanes lanes(net, P, G.data(), gacc.data(), n_params, *cfg.tb, N, d, ws.steps);
    st.euler_window = lanes.hidden >= 0;
    std::size_t alive = N;
    for (std::int64_t e = 0; e < cfg.epochs && alive > 0; ++e) {
        for (std::size_t l = 0; l < N; ++l) {
            Rng r = rngs[l];  // a local copy keeps the state in registers (idx might alias it)
            r.shuffle(idx.data() + l * nw, nw);
            rngs[l] = r;
        }
        std::fill(epoch_loss.begin(), epoch_loss.end(), 0.0);
        for (std::size_t b0 = 0; b0 < nw; b0 += nb) {
            const std::size_t m = std::min(nb, nw - b0);
            std::fill(gacc.begin(), gacc.end(), 0.0);
            std::fill(batch_loss.begin(), batch_loss.end(), 0.0);
            for (std::size_t b = 0; b < m; ++b) {
                lanes.window(data, idx.data() + b0 + b, nw, cfg.window, ws, 1.0 / double(m), L.data());
                for (std::size_t l = 0; l < N; ++l) batch_loss[l] += L[l];
            }
            for (std::size_t l = 0; l < N; ++l) {
                if (active[l] && !std::isfinite(batch_loss[l])) {
                    active[l] = 0;
                    st.bad_epoch[l] = e;
                    --alive;
                }
            }
            optim_step_lanes(oc, os, lr, active.data(), N, P, gacc.data(), n_params, buf1, buf2, coef_a.data(),
                             coef_b.data());
            for (std::size_t l = 0; l < N; ++l) epoch_loss[l] += batch_loss[l];
        }
        double* out = loss_out + std::size_t(e) * N;
        for (std::size_t l = 0; l < N; ++l)
            out[l] = active[l] ? epoch_loss[l] / double(nw) : std::numeric_limits<double>::quiet_NaN();
        st.epochs_done = e + 1;
        if (on_epoch && on_epoch(e, out)) {
            st.stopped = true;
            break;
        }
    }
    return st;
}

std::vector<std::int64_t> ensemble_learn(LaneNet& net, double* P, std::size_t n_params, std::size_t N,
                                         const double* X, const double* Y, std::size_t count,
                                         std::size_t n_in, std::size_t k, const double* lr, double* losses) {
    if (net.n_in() != n_in || net.n_out() != k) {
        throw std::invalid_argument("facts have " + std::to_string(n_in) + " inputs and " + std::to_string(k) +
                                    " outputs; the network maps " + std::to_string(net.n_in()) + " to " +
                                    std::to_string(net.n_out()));
    }
    std::vector<std::int64_t> bad(N, -1);
    std::vector<unsigned char> active(N, 1);
    std::vector<double> x(n_in * N), g(k * N), L(N), G(n_params * N);
    std::size_t alive = N;
    // facts not reached (every member diverged before) stay NaN
    std::fill(losses, losses + count * N, std::numeric_limits<double>::quiet_NaN());
    for (std::size_t s = 0; s < count && alive > 0; ++s) {
        for (std::size_t f = 0; f < n_in; ++f) std::fill(x.begin() + std::ptrdiff_t(f * N), x.begin() + std::ptrdiff_t((f + 1) * N), X[s * n_in + f]);
        const double* y = net.forward(P, x.data());
        lanes_half_se(y, Y + s * k, k, N, L.data(), g.data());
        double* out = losses + s * N;
        for (std::size_t l = 0; l < N; ++l) {
            out[l] = active[l] ? L[l] : std::numeric_limits<double>::quiet_NaN();
            if (active[l] && !std::isfinite(L[l])) {
                active[l] = 0;
                bad[l] = std::int64_t(s);
                --alive;
            }
        }
        std::fill(G.begin(), G.end(), 0.0);
        net.backward(P, G.data(), g.data());
        lanes_sgd(P, G.data(), lr, active.data(), n_params, N);
    }
    return bad;
}

}  // namespace eulerflow

