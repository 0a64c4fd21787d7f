#include "eulerflow/node.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <type_traits>

namespace eulerflow {

NeuralOde::NeuralOde(Net<double>& net, std::size_t d, const NodeSolver& solver)
    : net_(net), d_(d), s_(solver), field_(net, d, false) {
    for (const auto& p : net_.params) n_params_ += p.size;
    set_penalty(NodePenalty{});
}

void NeuralOde::AdjointField::eval(double, const double* y, double* dy, std::size_t batch) {
    // One augmented state per call (windows are integrated one at a time). With a
    // penalty rate r = kinetic ||f||^2 + jacobian ||df/dz||_F^2 the adjoint gains its
    // derivatives: a' = -J^T (a + 2 kinetic f) - jacobian dP/dz, and likewise for g.
    const std::size_t d = o_.d_;
    const double kin = o_.pen_.kinetic * o_.adj_sign_, jac = o_.pen_.jacobian * o_.adj_sign_;
    for (std::size_t r = 0; r < batch; ++r) {
        const double* z = y + r * dim();
        const double* a = z + d;
        double* out = dy + r * dim();
        const double* fz = o_.net_.forward_rows(z, 1, d, std::ptrdiff_t(d), 1);
        std::copy(fz, fz + d, out);
        double* cot = o_.cot_.data();
        for (std::size_t i = 0; i < d; ++i) cot[i] = a[i] + 2.0 * kin * out[i];
        o_.zero_param_grads();
        const double* gx = o_.net_.seq.backward(cot, 1, true);
        for (std::size_t i = 0; i < d; ++i) out[d + i] = -gx[i];
        if (jac != 0.0) {
            double* gz = o_.gz_.data();
            std::fill(gz, gz + d, 0.0);
            o_.jn_->eval(z, jac, gz);
            for (std::size_t i = 0; i < d; ++i) out[d + i] -= gz[i];
        }
        double* g = out + 2 * d;
        for (const auto& p : o_.net_.params) {
            for (std::size_t i = 0; i < p.size; ++i) g[i] = -p.g[i];
            g += p.size;
        }
    }
}

void NeuralOde::set_penalty(const NodePenalty& pen) {
    if (pen.jacobian != 0.0 && !jn_) jn_ = std::make_unique<JacobianNorm>(net_.seq, d_);
    pen_ = pen;
    gz_.assign(d_, 0.0);
    cot_.assign(d_, 0.0);
    ystage_.assign(d_, 0.0);
}

void NeuralOde::zero_param_grads() {
    for (auto& p : net_.params) std::fill(p.g, p.g + p.size, 0.0);
}

void NeuralOde::add_param_grads(double scale, double* grad) const {
    if (!grad) {  // a batch of one window: its gradient stays in place, as 0 + scale g
        for (const auto& p : net_.params)
            for (std::size_t i = 0; i < p.size; ++i) p.g[i] = 0.0 + scale * p.g[i];
        return;
    }
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
        throw IntegrationError("max_steps (" + std::to_string(s_.max_steps) + ") reached at t = " + format_g17(tc) +
                                   " with step size " + format_g17(h),
                               tc, h);
    };
    if (!tb_.adaptive()) {
        std::int64_t k;
        double h_nominal;
        fixed_schedule(ta, tb, s_.step_size, s_.steps_per_interval, k, h_nominal);
        for (std::int64_t j = 0; j < k; ++j) {
            double tc, h;
            fixed_step(ta, tb, k, h_nominal, j, tc, h);
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
            throw IntegrationError("step size underflow at t = " + format_g17(tc) + " (step " + format_g17(hs) +
                                       ", state norm " + format_g17(std::sqrt(norm)) +
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

void NeuralOde::forward_step(double tc, double h, double* y) {
    const std::size_t d = d_;
    if (ynew_.size() < d) ynew_.resize(d);
    field_.eval(tc, y, work_.K.data(), 1);
    rk_step(*s_.tb, field_, 1, tc, h, y, ynew_.data(), work_);
    std::copy(ynew_.data(), ynew_.data() + d, y);
}

void NeuralOde::step_at(std::size_t m, double& tc, double& h) const {
    if (s_.tb->adaptive()) {
        tc = steps_th_[2 * m];
        h = steps_th_[2 * m + 1];
        return;
    }
    // the interval holding step m: sched_ rows are (first step, k, h_nominal, ta, tb)
    std::size_t lo = 0, hi = n_sched_;
    while (hi - lo > 1) {
        const std::size_t mid = (lo + hi) / 2;
        if (sched_[5 * mid] <= double(m)) lo = mid; else hi = mid;
    }
    const double* r = sched_.data() + 5 * lo;
    const std::int64_t j = std::int64_t(m) - std::int64_t(r[0]), k = std::int64_t(r[1]);
    fixed_step(r[3], r[4], k, r[2], j, tc, h);
}

double NeuralOde::step_penalty(double h, const double* y, const double* K) {
    const Tableau& tb = *s_.tb;
    const std::size_t d = d_;
    const double ah = std::fabs(h);
    double p = 0.0;
    for (std::size_t s = 0; s < tb.stages; ++s) {
        if (tb.b[s] == 0.0) continue;
        const double w = ah * tb.b[s];
        if (pen_.kinetic != 0.0) {
            double k2 = 0.0;
            for (std::size_t i = 0; i < d; ++i) k2 += K[s * d + i] * K[s * d + i];
            p += pen_.kinetic * w * k2;
        }
        if (pen_.jacobian != 0.0) {
            double* Ys = ystage_.data();
            std::copy(y, y + d, Ys);
            for (std::size_t j = 0; j < s; ++j) {
                const double a = h * tb.A(s, j);
                if (a != 0.0)
                    for (std::size_t i = 0; i < d; ++i) Ys[i] += a * K[j * d + i];
            }
            p += pen_.jacobian * w * jn_->eval(Ys, 0.0, nullptr);
        }
    }
    return p;
}

namespace {

// The input of stage s's backward in a reverse sweep: kb = h b_s abar + sum_{q>s}
// h a_qs Yb_q (Yb: the later stages' adjoints, d each). False when every term is
// zero (the stage does not reach the output; its adjoint is zero).
bool stage_adjoint_input(const Tableau& tb, std::size_t s, double h, const double* abar, const double* Yb,
                         std::size_t d, double* kb) {
    bool any = tb.b[s] != 0.0;
    for (std::size_t i = 0; i < d; ++i) kb[i] = h * tb.b[s] * abar[i];
    for (std::size_t q = s + 1; q < tb.stages; ++q) {
        const double a = h * tb.A(q, s);
        if (a == 0.0) continue;
        any = true;
        for (std::size_t i = 0; i < d; ++i) kb[i] += a * Yb[q * d + i];
    }
    return any;
}

}  // namespace

void NeuralOde::reverse_step(double tc, double h, const double* y) {
    // recompute the stages of the step, then
    // Kbar_s = h b_s ybar + sum_{r>s} h a_rs Ybar_r (+ the kinetic penalty's 2 kinetic |h| b_s K_s),
    // Ybar_s = J(Y_s)^T Kbar_s (+ the Jacobian penalty's jacobian |h| b_s dP/dz at Y_s)
    const Tableau& tb = *s_.tb;
    const std::size_t S = tb.stages, d = d_;
    double* Y = ybar_stage_.data();     // S x d stage inputs
    double* Yb = Y + S * d;             // S x d stage adjoints
    double* kb = Yb + S * d;            // d
    double* K = work_.K.data();
    const double ah = std::fabs(h);
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
        double* Ybs = Yb + s * d;
        if (!stage_adjoint_input(tb, s, h, abar_.data(), Yb, d, kb)) {
            std::fill(Ybs, Ybs + d, 0.0);
            continue;
        }
        const double w = ah * tb.b[s];
        if (pen_.kinetic != 0.0 && w != 0.0) {
            const double* Ks = K + s * d;
            double k2 = 0.0;
            for (std::size_t i = 0; i < d; ++i) {
                k2 += Ks[i] * Ks[i];
                kb[i] += 2.0 * pen_.kinetic * w * Ks[i];
            }
            penalty_ += pen_.kinetic * w * k2;
        }
        net_.forward_rows(Y + s * d, 1, d, std::ptrdiff_t(d), 1);
        const double* gx = net_.seq.backward(kb, 1, true);
        std::copy(gx, gx + d, Ybs);
        if (pen_.jacobian != 0.0 && w != 0.0) penalty_ += pen_.jacobian * w * jn_->eval(Y + s * d, pen_.jacobian * w, Ybs);
    }
    for (std::size_t s = 0; s < S; ++s)
        for (std::size_t i = 0; i < d; ++i) abar_[i] += Yb[s * d + i];
}

void NeuralOde::reverse_range(std::size_t m0, std::size_t m1, const double* y, std::size_t level) {
    if (m1 <= m0) return;
    if (m1 - m0 == 1) {
        double tc, h;
        step_at(m0, tc, h);
        reverse_step(tc, h, y);
        return;
    }
    // the state at the midpoint, recomputed from y and kept on this level's slot
    const std::size_t mid = m0 + (m1 - m0) / 2;
    double* ym = levels_.data() + (level + 1) * d_;
    std::copy(y, y + d_, ym);
    for (std::size_t m = m0; m < mid; ++m) {
        double tc, h;
        step_at(m, tc, h);
        forward_step(tc, h, ym);
    }
    reverse_range(mid, m1, ym, level + 1);
    reverse_range(m0, mid, y, level + 1);
}

double NeuralOde::window_loss(const double* y, const double* target) {
    // MSE over the d components and its gradient
    const std::size_t d = d_;
    if (abar_.size() != d) abar_.resize(d);  // every entry is written below
    double L = 0.0;
    for (std::size_t j = 0; j < d; ++j) {
        const double e = y[j] - target[j];
        L += e * e;
        abar_[j] = 2.0 * e / double(d);
    }
    return L / double(d);
}

bool NeuralOde::small_schedule(const double* t, std::size_t nt, std::vector<double>& out) const {
    return fixed_step_sizes(t, nt, s_.step_size, s_.steps_per_interval, s_.max_steps, out);
}

bool NeuralOde::window_gradient_small(const double* z0, const double* target, const double* t,
                                      std::size_t nt, double scale, double* grad, double& loss) {
    const Tableau& tb = *s_.tb;
    if (tb.adaptive() || pen_.any()) return false;
    if (!small_cached_) {  // fit resolves the layers once for all its windows
        net_.reserve(d_, 1);  // resolves the widths
        if (!small_layers(net_.seq, small_) || small_.front().n_in != d_ || small_.back().n_out != d_) return false;
        small_cached_ = fit_t_ != nullptr;
    }
    // the step sizes of every interval's schedule (the field is autonomous: the
    // times are not needed): fit's, computed once for all its windows, or this
    // window's; a run beyond max_steps goes the general way, which throws
    const double* hs;
    std::size_t steps;
    const std::size_t w = fit_t_ && t >= fit_t_ && nt == fit_window_ + 1 ? std::size_t(t - fit_t_) : SIZE_MAX;
    if (w + 1 < fit_off_.size()) {
        hs = fit_h_.data() + fit_off_[w];
        steps = fit_off_[w + 1] - fit_off_[w];
    } else {
        small_h_.clear();
        if (!small_schedule(t, nt, small_h_)) return false;
        hs = small_h_.data();
        steps = small_h_.size();
    }
    const std::size_t S = tb.stages, nv = small_values(small_);
    const SmallLayer* layers = small_.data();
    const std::size_t nl = small_.size();
    const int euler_shape = S == 1 && tb.b[0] != 0.0 ? small_euler_shape(layers, nl) : -1;
    if (euler_shape >= 0) {
        // Euler on a one- or two-Dense field: the whole window in one kernel
        if (small_tape_.size() < steps * nv) small_tape_.resize(steps * nv);
        if (abar_.size() != d_) abar_.resize(d_);
        zero_param_grads();
        if (small_euler_window(layers, std::size_t(euler_shape), hs, tb.b[0], steps, z0, target,
                               small_tape_.data(), abar_.data(), loss))
            add_param_grads(scale, grad);
        workspace_bytes_ = (steps * nv + steps) * sizeof(double);
    } else {
        small_sweep(z0, target, hs, steps, scale, grad, loss);
    }
    net_.n_last = 0;  // the network's own buffers hold no forward of the caller's
    penalty_ = 0.0;
    last_penalty_ = 0.0;
    last_nfev_ = std::int64_t(S * steps);
    return true;
}

void NeuralOde::small_sweep(const double* z0, const double* target, const double* hs, std::size_t steps,
                            double scale, double* grad, double& loss) {
    const Tableau& tb = *s_.tb;
    const std::size_t S = tb.stages, nv = small_values(small_);
    const SmallLayer* layers = small_.data();
    const std::size_t nl = small_.size();
    // the tape: per step and stage the values of small_forward, the stage's input
    // first and its derivative K_s last
    if (small_tape_.size() < steps * S * nv) small_tape_.resize(steps * S * nv);
    small_scratch_.resize(2 * kSmallWidth);
    ybuf_.assign(z0, z0 + d_);
    if (ynew_.size() < d_) ynew_.resize(d_);
    ybar_stage_.assign(2 * S * d_ + d_, 0.0);
    // The sweeps, with the state size D known to the compiler for the common small
    // sizes (every loop over the state unrolled) and d_ otherwise (D = 0), and the
    // number of stages for Euler's one (the stage loops gone; NS = 0: any tableau).
    auto sweep = [&](auto size, auto stages) {
        constexpr std::size_t D = decltype(size)::value;
        constexpr std::size_t NS = decltype(stages)::value;
        const std::size_t d = D ? D : d_;
        const std::size_t S = NS ? NS : tb.stages;
        auto vals = [&](std::size_t m, std::size_t s) { return small_tape_.data() + (m * S + s) * nv; };
        auto K = [&](std::size_t m, std::size_t s) { return vals(m, s) + nv - d; };
        // forward: rk_step's arithmetic for fixed-step tableaus
        double* y = ybuf_.data();
        double* ynew = ynew_.data();
        for (std::size_t m = 0; m < steps; ++m) {
            const double h = hs[m];
            for (std::size_t s = 0; s < S; ++s) {
                double* ys = vals(m, s);
                for (std::size_t i = 0; i < d; ++i) ys[i] = y[i];
                for (std::size_t j = 0; j < s; ++j) {
                    const double a = h * tb.A(s, j);
                    if (a == 0.0) continue;
                    const double* Kj = K(m, j);
                    for (std::size_t i = 0; i < d; ++i) ys[i] += a * Kj[i];
                }
                small_forward(layers, nl, ys);
            }
            // y_new = y + h sum_j b_j K_j, built from y as rk_step builds it
            for (std::size_t i = 0; i < d; ++i) ynew[i] = y[i];
            for (std::size_t j = 0; j < S; ++j) {
                const double bj = h * tb.b[j];
                if (bj == 0.0) continue;
                const double* Kj = K(m, j);
                for (std::size_t i = 0; i < d; ++i) ynew[i] += bj * Kj[i];
            }
            for (std::size_t i = 0; i < d; ++i) y[i] = ynew[i];
        }
        loss = window_loss(y, target);
        if (!std::isfinite(loss)) return;
        // reverse: reverse_step's sweep with the stage values taken from the tape
        zero_param_grads();
        double* abar = abar_.data();
        double* Yb = ybar_stage_.data() + S * d;  // S x d stage adjoints
        double* kb = Yb + S * d;                  // d
        for (std::size_t m = steps; m-- > 0;) {
            const double h = hs[m];
            for (std::size_t s = S; s-- > 0;) {
                double* Ybs = Yb + s * d;
                if (!stage_adjoint_input(tb, s, h, abar, Yb, d, kb)) {
                    std::fill(Ybs, Ybs + d, 0.0);
                    continue;
                }
                small_backward(layers, nl, vals(m, s), kb, Ybs, small_scratch_.data());
            }
            for (std::size_t s = 0; s < S; ++s)
                for (std::size_t i = 0; i < d; ++i) abar[i] += Yb[s * d + i];
        }
        add_param_grads(scale, grad);
    };
    auto sweep_d = [&](auto stages) {
        switch (d_) {
            case 1: sweep(std::integral_constant<std::size_t, 1>{}, stages); break;
            case 2: sweep(std::integral_constant<std::size_t, 2>{}, stages); break;
            case 3: sweep(std::integral_constant<std::size_t, 3>{}, stages); break;
            case 4: sweep(std::integral_constant<std::size_t, 4>{}, stages); break;
            default: sweep(std::integral_constant<std::size_t, 0>{}, stages); break;
        }
    };
    if (S == 1)
        sweep_d(std::integral_constant<std::size_t, 1>{});
    else
        sweep_d(std::integral_constant<std::size_t, 0>{});
    workspace_bytes_ = (steps * S * nv + steps + ybar_stage_.size()) * sizeof(double);
}

double NeuralOde::window_gradient(const double* z0, const double* target, const double* t,
                                  std::size_t nt, NodeGradient how, double scale, double* grad) {
    double loss;
    if (how == NodeGradient::Backprop && window_gradient_small(z0, target, t, nt, scale, grad, loss)) return loss;
    const std::size_t d = d_;
    const Tableau& tb = *s_.tb;
    const std::size_t S = tb.stages;
    work_.reserve(S, d);
    ybuf_.assign(z0, z0 + d);
    OdeInfo info;
    double h_adapt = 0.0;
    std::size_t steps = 0;
    penalty_ = 0.0;
    last_penalty_ = 0.0;
    // forward: backprop records (t, h, y_start) per step; checkpoint only the step
    // times (adaptive) or the schedule of each interval (fixed); the adjoint takes
    // the penalty's quadrature from the accepted steps' stages
    const std::size_t rec = 2 + d;
    n_sched_ = 0;
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
        } else if (how == NodeGradient::Checkpoint) {
            if (!tb.adaptive()) {
                std::int64_t k;
                double h_nominal;
                fixed_schedule(t[i - 1], t[i], s_.step_size, s_.steps_per_interval, k, h_nominal);
                if (sched_.size() < 5 * (n_sched_ + 1)) sched_.resize(10 * (n_sched_ + 1));
                double* r = sched_.data() + 5 * n_sched_++;
                r[0] = double(steps);
                r[1] = double(k);
                r[2] = h_nominal;
                r[3] = t[i - 1];
                r[4] = t[i];
            }
            integrate_interval(field_, 1, t[i - 1], t[i], ybuf_.data(), work_, h_adapt, info,
                               [&](double tc, double h, const double*) {
                                   if (tb.adaptive()) {
                                       if (steps_th_.size() < 2 * (steps + 1)) steps_th_.resize(4 * (steps + 1));
                                       steps_th_[2 * steps] = tc;
                                       steps_th_[2 * steps + 1] = h;
                                   }
                                   ++steps;
                               });
        } else {
            integrate_interval(field_, 1, t[i - 1], t[i], ybuf_.data(), work_, h_adapt, info,
                               [&](double, double h, const double* y) {
                                   if (pen_.any()) penalty_ += step_penalty(h, y, work_.K.data());
                               });
        }
    }
    last_nfev_ = info.nfev;
    const double L = window_loss(ybuf_.data(), target);
    if (!std::isfinite(L)) return L;

    if (how == NodeGradient::Backprop || how == NodeGradient::Checkpoint) {
        zero_param_grads();
        ybar_stage_.assign(2 * S * d + d, 0.0);
        if (how == NodeGradient::Backprop) {
            for (std::size_t m = steps; m-- > 0;) {
                const double* r = tape_.data() + m * rec;
                reverse_step(r[0], r[1], r + 2);
            }
            workspace_bytes_ = (steps * rec + ybar_stage_.size() + work_.K.size()) * sizeof(double);
        } else {
            std::size_t depth = 1;
            while ((std::size_t(1) << (depth - 1)) < steps) ++depth;
            if (levels_.size() < (depth + 1) * d) levels_.resize((depth + 1) * d);
            std::copy(z0, z0 + d, levels_.begin());
            reverse_range(0, steps, levels_.data(), 0);
            const std::size_t times = tb.adaptive() ? 2 * steps : 5 * n_sched_;
            workspace_bytes_ = (times + (depth + 1) * d + ybar_stage_.size() + work_.K.size() + d) * sizeof(double);
        }
        add_param_grads(scale, grad);
        last_penalty_ = penalty_;
        return L + penalty_;
    }

    // adjoint: integrate (z, a, g) from the last time back to the first
    const std::size_t na = 2 * d + n_params_;
    work_aug_.reserve(S, na);
    aug_.assign(na, 0.0);
    std::copy(ybuf_.begin(), ybuf_.end(), aug_.begin());
    std::copy(abar_.begin(), abar_.end(), aug_.begin() + std::ptrdiff_t(d));
    AdjointField adj(*this);
    adj_sign_ = t[nt - 1] >= t[0] ? 1.0 : -1.0;
    double h_back = 0.0;
    OdeInfo info_back;
    for (std::size_t i = nt - 1; i > 0; --i) {
        integrate_interval(adj, 1, t[i], t[i - 1], aug_.data(), work_aug_, h_back, info_back,
                           [](double, double, const double*) {});
    }
    const double* g = aug_.data() + 2 * d;
    if (grad) {
        for (std::size_t i = 0; i < n_params_; ++i) grad[i] += scale * g[i];
    } else {
        for (const auto& p : net_.params) {
            for (std::size_t i = 0; i < p.size; ++i) p.g[i] = 0.0 + scale * g[i];
            g += p.size;
        }
    }
    workspace_bytes_ = (aug_.size() + work_aug_.K.size() + work_aug_.ytmp.size() + work_aug_.err.size() +
                        ynew_.size()) * sizeof(double);
    last_penalty_ = penalty_;
    return L + penalty_;
}

FitStatus NeuralOde::fit(const double* data, const double* t, std::size_t T, std::size_t window,
                         std::size_t batch_size, std::int64_t epochs, NodeGradient how,
                         const OptimConfig& oc, OptimScalars& os, double* buf1, double* buf2, Rng& rng,
                         double* loss_out, double* nfev_out, double* penalty_out,
                         const EpochCallback& on_epoch) {
    FitStatus st;
    // the small path may keep its view of the layers from window to window: nothing
    // reallocates the network during a fit
    struct FitScope {
        NeuralOde& node;
        explicit FitScope(NeuralOde& n) : node(n) { node.small_cached_ = false; }
        ~FitScope() {
            node.small_cached_ = false;
            node.fit_t_ = nullptr;
            node.fit_off_.clear();
        }
    } scope(*this);
    const std::size_t nw = T - window;
    // the small path's step sizes, window by window, unless they would take much
    // memory or a window goes beyond max_steps (each window then computes its own,
    // and that one fails)
    fit_off_.assign(1, 0);
    fit_h_.clear();
    if (how == NodeGradient::Backprop && !s_.tb->adaptive()) {
        constexpr std::size_t kMaxCached = std::size_t(1) << 20;
        fit_t_ = t;
        fit_window_ = window;
        for (std::size_t i = 0; i < nw && fit_off_.size() == i + 1; ++i) {
            if (small_schedule(t + i, window + 1, fit_h_) && fit_h_.size() <= kMaxCached)
                fit_off_.push_back(fit_h_.size());
        }
    }
    if (fit_off_.size() != nw + 1) fit_off_.clear();
    std::vector<std::size_t> idx(nw);
    std::iota(idx.begin(), idx.end(), std::size_t(0));
    std::vector<double> gacc(n_params_);
    const std::size_t nb = std::min(batch_size, nw);
    for (std::int64_t e = 0; e < epochs; ++e) {
        rng.shuffle(idx.data(), nw);
        double epoch_loss = 0.0, epoch_penalty = 0.0, epoch_nfev = 0.0;
        std::size_t batches = 0;
        for (std::size_t start = 0; start < nw; start += nb) {
            const std::size_t m = std::min(nb, nw - start);
            // one window: its gradient is left in the parameters' gradients
            double* acc = m == 1 ? nullptr : gacc.data();
            if (acc) std::fill(gacc.begin(), gacc.end(), 0.0);
            double L = 0.0;
            for (std::size_t b = 0; b < m; ++b) {
                const std::size_t i = idx[start + b];
                L += window_gradient(data + i * d_, data + (i + window) * d_, t + i, window + 1, how,
                                     1.0 / double(m), acc);
                epoch_penalty += last_penalty_;
                epoch_nfev += double(last_nfev_);
            }
            if (!std::isfinite(L)) {
                st.diverged = true;
                st.bad_epoch = e;
                st.bad_batch = std::int64_t(batches);
                st.bad_loss = L;
                return st;
            }
            if (acc) {
                const double* g = gacc.data();
                for (auto& p : net_.params) {
                    std::copy(g, g + p.size, p.g);
                    g += p.size;
                }
            }
            optim_step(oc, os, net_.params, buf1, buf2);
            epoch_loss += L;
            ++batches;
        }
        net_.n_last = 0;
        loss_out[e] = epoch_loss / double(nw);
        nfev_out[e] = epoch_nfev;
        penalty_out[e] = epoch_penalty / double(nw);
        st.epochs_done = e + 1;
        small_cached_ = false;  // the callback may change the network
        if (on_epoch && on_epoch(e, loss_out[e])) {
            st.stopped = true;
            return st;
        }
    }
    return st;
}

}  // namespace eulerflow
