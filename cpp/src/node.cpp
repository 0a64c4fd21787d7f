#include "eulerflow/node.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

namespace eulerflow {

namespace {

std::string num(double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

}  // namespace

NeuralOde::NeuralOde(Net<double>& net, std::size_t d, const NodeSolver& solver)
    : net_(net), d_(d), s_(solver), field_(net, d, false) {
    for (const auto& p : net_.params) n_params_ += p.size;
}

void NeuralOde::AdjointField::eval(double, const double* y, double* dy, std::size_t batch) {
    // one augmented state per call (windows are integrated one at a time)
    const std::size_t d = o_.d_;
    for (std::size_t r = 0; r < batch; ++r) {
        const double* z = y + r * dim();
        const double* a = z + d;
        double* out = dy + r * dim();
        const double* fz = o_.net_.forward_rows(z, 1, d, std::ptrdiff_t(d), 1);
        std::copy(fz, fz + d, out);
        o_.zero_param_grads();
        const double* gx = o_.net_.seq.backward(a, 1, true);
        for (std::size_t i = 0; i < d; ++i) out[d + i] = -gx[i];
        double* g = out + 2 * d;
        for (const auto& p : o_.net_.params) {
            for (std::size_t i = 0; i < p.size; ++i) g[i] = -p.g[i];
            g += p.size;
        }
    }
}

void NeuralOde::zero_param_grads() {
    for (auto& p : net_.params) std::fill(p.g, p.g + p.size, 0.0);
}

void NeuralOde::add_param_grads(double scale, double* grad) const {
    for (const auto& p : net_.params) {
        for (std::size_t i = 0; i < p.size; ++i) grad[i] += scale * p.g[i];
        grad += p.size;
    }
}

template <class OnStep>
void NeuralOde::integrate_interval(Field& f, std::size_t batch, double ta, double tb, double* y,
                                   RkWork& w, double& h_adapt, OdeInfo& info, OnStep&& on_step) {
    const Tableau& tb_ = *s_.tb;
    const std::size_t n = batch * f.dim();
    if (ynew_.size() < n) ynew_.resize(n);
    double* ynew = ynew_.data();
    const double span = tb - ta;
    const double dir = span > 0.0 ? 1.0 : -1.0;
    auto too_many = [&](double tc, double h) {
        throw IntegrationError("max_steps (" + std::to_string(s_.max_steps) + ") reached at t = " + num(tc) +
                                   " with step size " + num(h),
                               tc, h);
    };
    if (!tb_.adaptive()) {
        std::int64_t k = 1;
        double h_nominal = span;
        if (s_.steps_per_interval > 0) {
            k = s_.steps_per_interval;
            h_nominal = span / double(k);
        } else if (s_.step_size > 0.0) {
            const double steps = std::ceil(std::fabs(span) / s_.step_size * (1.0 - 1e-9));
            k = steps >= 9.0e18 ? std::numeric_limits<std::int64_t>::max()
                                : std::max<std::int64_t>(std::int64_t(steps), 1);
            h_nominal = dir * s_.step_size;
        }
        for (std::int64_t j = 0; j < k; ++j) {
            const double tc = ta + double(j) * h_nominal;
            const double h = j + 1 == k ? tb - tc : h_nominal;
            if (info.nsteps >= s_.max_steps) too_many(tc, h);
            f.eval(tc, y, w.K.data(), batch);
            rk_step(tb_, f, batch, tc, h, y, ynew, w);
            info.nfev += std::int64_t(tb_.stages);
            ++info.nsteps;
            on_step(tc, h, y);
            std::copy(ynew, ynew + n, y);
        }
        return;
    }
    OdeOptions opt;
    opt.rtol = s_.rtol;
    opt.atol = s_.atol;
    double tc = ta;
    f.eval(tc, y, w.K.data(), batch);
    ++info.nfev;
    if (h_adapt <= 0.0) h_adapt = initial_step(tb_, f, batch, tc, y, w.K.data(), dir, std::fabs(span), opt, info, w);
    const double expo = 1.0 / double(tb_.error_order + 1);
    while (true) {
        const bool reaches_end = std::fabs(tb - tc) <= h_adapt * (1.0 + 1e-12);
        const double hs = reaches_end ? tb - tc : dir * h_adapt;
        if (info.nsteps >= s_.max_steps) too_many(tc, hs);
        if (std::fabs(hs) < 16.0 * std::numeric_limits<double>::epsilon() * std::max(1.0, std::fabs(tc))) {
            double norm = 0.0;
            for (std::size_t i = 0; i < n; ++i) norm += y[i] * y[i];
            throw IntegrationError("step size underflow at t = " + num(tc) + " (step " + num(hs) +
                                       ", state norm " + num(std::sqrt(norm)) +
                                       "): the field blows up there or is stiff; try a smaller learning "
                                       "rate, a fixed-step method or a larger atol",
                                   tc, hs);
        }
        rk_step(tb_, f, batch, tc, hs, y, ynew, w);
        info.nfev += std::int64_t(tb_.stages - 1);
        ++info.nsteps;
        const double err = error_norm(tb_, w, y, ynew, n, s_.rtol, s_.atol);
        const double fac = std::isfinite(err) ? std::min(10.0, std::max(0.2, 0.9 * std::pow(std::max(err, 1e-10), -expo))) : 0.2;
        if (err <= 1.0) {
            ++info.naccepted;
            on_step(tc, hs, y);
            std::copy(ynew, ynew + n, y);
            // the step size that fits the error stays for the next interval
            if (!reaches_end || fac < 1.0) h_adapt = std::fabs(hs) * fac;
            if (reaches_end) return;
            tc += hs;
            // FSAL: the last stage is f(tc, y)
            std::copy(w.K.data() + (tb_.stages - 1) * n, w.K.data() + tb_.stages * n, w.K.data());
        } else {
            ++info.nrejected;
            h_adapt = std::fabs(hs) * fac;
        }
    }
}

void NeuralOde::trajectory(const double* z0, std::size_t batch, const double* t, std::size_t nt,
                           double* out, OdeInfo& info) {
    const std::size_t n = batch * d_;
    work_.reserve(s_.tb->stages, n);
    std::copy(z0, z0 + n, out);
    ybuf_.assign(z0, z0 + n);
    double h_adapt = 0.0;
    for (std::size_t i = 1; i < nt; ++i) {
        integrate_interval(field_, batch, t[i - 1], t[i], ybuf_.data(), work_, h_adapt, info,
                           [](double, double, const double*) {});
        check_finite(ybuf_.data(), n, t[i]);
        std::copy(ybuf_.begin(), ybuf_.end(), out + i * n);
    }
}

double NeuralOde::window_gradient(const double* z0, const double* target, const double* t,
                                  std::size_t nt, NodeGradient how, double scale, double* grad) {
    const std::size_t d = d_;
    const Tableau& tb = *s_.tb;
    const std::size_t S = tb.stages;
    work_.reserve(S, d);
    ybuf_.assign(z0, z0 + d);
    OdeInfo info;
    double h_adapt = 0.0;
    std::size_t steps = 0;
    // forward: record (t, h, y_start) per step for backprop
    const std::size_t rec = 2 + d;
    for (std::size_t i = 1; i < nt; ++i) {
        if (how == NodeGradient::Backprop) {
            integrate_interval(field_, 1, t[i - 1], t[i], ybuf_.data(), work_, h_adapt, info,
                               [&](double tc, double h, const double* y) {
                                   if (tape_.size() < (steps + 1) * rec) tape_.resize(2 * (steps + 1) * rec);
                                   double* r = tape_.data() + steps * rec;
                                   r[0] = tc;
                                   r[1] = h;
                                   std::copy(y, y + d, r + 2);
                                   ++steps;
                               });
        } else {
            integrate_interval(field_, 1, t[i - 1], t[i], ybuf_.data(), work_, h_adapt, info,
                               [](double, double, const double*) {});
        }
    }
    // loss MSE over the d components and its gradient
    abar_.assign(d, 0.0);
    double L = 0.0;
    for (std::size_t j = 0; j < d; ++j) {
        const double e = ybuf_[j] - target[j];
        L += e * e;
        abar_[j] = 2.0 * e / double(d);
    }
    L /= double(d);
    if (!std::isfinite(L)) return L;

    if (how == NodeGradient::Backprop) {
        // reverse sweep through the steps: recompute the stages of each step, then
        // Kbar_s = h b_s ybar + sum_{r>s} h a_rs Ybar_r, Ybar_s = J(Y_s)^T Kbar_s
        zero_param_grads();
        ybar_stage_.assign(2 * S * d + d, 0.0);
        double* Y = ybar_stage_.data();     // S x d stage inputs
        double* Yb = Y + S * d;             // S x d stage adjoints
        double* kb = Yb + S * d;            // d
        double* K = work_.K.data();
        for (std::size_t m = steps; m-- > 0;) {
            const double* r = tape_.data() + m * rec;
            const double tc = r[0], h = r[1];
            const double* y = r + 2;
            for (std::size_t s = 0; s < S; ++s) {
                double* Ys = Y + s * d;
                std::copy(y, y + d, Ys);
                for (std::size_t j = 0; j < s; ++j) {
                    const double a = h * tb.A(s, j);
                    if (a != 0.0)
                        for (std::size_t i = 0; i < d; ++i) Ys[i] += a * K[j * d + i];
                }
                field_.eval(tc + tb.c[s] * h, Ys, K + s * d, 1);
            }
            for (std::size_t s = S; s-- > 0;) {
                bool any = tb.b[s] != 0.0;
                for (std::size_t i = 0; i < d; ++i) kb[i] = h * tb.b[s] * abar_[i];
                for (std::size_t q = s + 1; q < S; ++q) {
                    const double a = h * tb.A(q, s);
                    if (a == 0.0) continue;
                    any = true;
                    for (std::size_t i = 0; i < d; ++i) kb[i] += a * Yb[q * d + i];
                }
                double* Ybs = Yb + s * d;
                if (!any) {
                    std::fill(Ybs, Ybs + d, 0.0);
                    continue;
                }
                net_.forward_rows(Y + s * d, 1, d, std::ptrdiff_t(d), 1);
                const double* gx = net_.seq.backward(kb, 1, true);
                std::copy(gx, gx + d, Ybs);
            }
            for (std::size_t s = 0; s < S; ++s)
                for (std::size_t i = 0; i < d; ++i) abar_[i] += Yb[s * d + i];
        }
        add_param_grads(scale, grad);
        workspace_bytes_ = (steps * rec + ybar_stage_.size() + work_.K.size()) * sizeof(double);
        return L;
    }

    // adjoint: integrate (z, a, g) from the last time back to the first
    const std::size_t na = 2 * d + n_params_;
    work_aug_.reserve(S, na);
    aug_.assign(na, 0.0);
    std::copy(ybuf_.begin(), ybuf_.end(), aug_.begin());
    std::copy(abar_.begin(), abar_.end(), aug_.begin() + std::ptrdiff_t(d));
    AdjointField adj(*this);
    double h_back = 0.0;
    OdeInfo info_back;
    for (std::size_t i = nt - 1; i > 0; --i) {
        integrate_interval(adj, 1, t[i], t[i - 1], aug_.data(), work_aug_, h_back, info_back,
                           [](double, double, const double*) {});
    }
    const double* g = aug_.data() + 2 * d;
    for (std::size_t i = 0; i < n_params_; ++i) grad[i] += scale * g[i];
    workspace_bytes_ = (aug_.size() + work_aug_.K.size() + work_aug_.ytmp.size() + work_aug_.err.size() +
                        ynew_.size()) * sizeof(double);
    return L;
}

FitStatus NeuralOde::fit(const double* data, const double* t, std::size_t T, std::size_t window,
                         std::size_t batch_size, std::int64_t epochs, NodeGradient how,
                         const OptimConfig& oc, OptimScalars& os, double* buf1, double* buf2, Rng& rng,
                         double* loss_out, const EpochCallback& on_epoch) {
    FitStatus st;
    const std::size_t nw = T - window;
    std::vector<std::size_t> idx(nw);
    std::iota(idx.begin(), idx.end(), std::size_t(0));
    std::vector<double> gacc(n_params_);
    const std::size_t nb = std::min(batch_size, nw);
    for (std::int64_t e = 0; e < epochs; ++e) {
        rng.shuffle(idx.data(), nw);
        double epoch_loss = 0.0;
        std::size_t batches = 0;
        for (std::size_t start = 0; start < nw; start += nb) {
            const std::size_t m = std::min(nb, nw - start);
            std::fill(gacc.begin(), gacc.end(), 0.0);
            double L = 0.0;
            for (std::size_t b = 0; b < m; ++b) {
                const std::size_t i = idx[start + b];
                L += window_gradient(data + i * d_, data + (i + window) * d_, t + i, window + 1, how,
                                     1.0 / double(m), gacc.data());
            }
            if (!std::isfinite(L)) {
                st.diverged = true;
                st.bad_epoch = e;
                st.bad_batch = std::int64_t(batches);
                st.bad_loss = L;
                return st;
            }
            const double* g = gacc.data();
            for (auto& p : net_.params) {
                std::copy(g, g + p.size, p.g);
                g += p.size;
            }
            optim_step(oc, os, net_.params, buf1, buf2);
            epoch_loss += L;
            ++batches;
        }
        net_.n_last = 0;
        loss_out[e] = epoch_loss / double(nw);
        st.epochs_done = e + 1;
        if (on_epoch && on_epoch(e, loss_out[e])) {
            st.stopped = true;
            return st;
        }
    }
    return st;
}

}  // namespace eulerflow
