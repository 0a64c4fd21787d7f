#include "eulerflow/rk.hpp"

#include "eulerflow/implicit.hpp"
#include "eulerflow/rk_native.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace eulerflow {

void rk_step(const Tableau& tb, Field& f, std::size_t batch, double t, double h, const double* y,
             double* y_new, RkWork& w) {
    const std::size_t S = tb.stages, n = w.ytmp.size();
    double* K = w.K.data();
    double* ytmp = w.ytmp.data();
    for (std::size_t s = 1; s < S; ++s) {
        for (std::size_t i = 0; i < n; ++i) ytmp[i] = y[i];
        for (std::size_t j = 0; j < s; ++j) {
            const double a = h * tb.A(s, j);
            if (a == 0.0) continue;
            const double* Kj = K + j * n;
            for (std::size_t i = 0; i < n; ++i) ytmp[i] += a * Kj[i];
        }
        f.eval(t + tb.c[s] * h, ytmp, K + s * n, batch);
    }
    if (tb.fsal) {
        // the last stage was evaluated at y + h sum b_j K_j, which is y_new
        std::copy(ytmp, ytmp + n, y_new);
    } else {
        for (std::size_t i = 0; i < n; ++i) y_new[i] = y[i];
        for (std::size_t j = 0; j < S; ++j) {
            const double bj = h * tb.b[j];
            if (bj == 0.0) continue;
            const double* Kj = K + j * n;
            for (std::size_t i = 0; i < n; ++i) y_new[i] += bj * Kj[i];
        }
    }
    // err = h sum_j b_err[j] K_j (and the same with b_err3 into err3)
    auto estimate = [&](const std::vector<double>& weights, double* err) {
        std::fill(err, err + n, 0.0);
        for (std::size_t j = 0; j < S; ++j) {
            const double e = h * weights[j];
            if (e == 0.0) continue;
            const double* Kj = K + j * n;
            for (std::size_t i = 0; i < n; ++i) err[i] += e * Kj[i];
        }
    };
    if (tb.adaptive()) estimate(tb.b_err, w.err.data());
    if (!tb.b_err3.empty()) estimate(tb.b_err3, w.err3.data());
}

double error_norm(const Tableau& tb, const RkWork& w, const double* y, const double* y_new, std::size_t n,
                  double rtol, double atol) {
    return step_error_norm(w.err.data(), tb.b_err3.empty() ? nullptr : w.err3.data(), y, y_new, n, rtol, atol);
}

std::string format_g17(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

namespace {


void integrate_fixed(const Tableau& tb, Field& f, std::size_t batch, const double* t, std::size_t nt,
                     const OdeOptions& opt, double* out, OdeInfo& info, RkWork& w) {
    // a built-in field: the same steps, same bits, with the field inlined (rk_native.cpp)
    if (odeint_fixed_native(tb, f, batch, t, nt, opt, out, info)) return;
    const std::size_t n = w.ytmp.size();
    std::vector<double> ybuf(n);
    double* y = out;  // the current state lives in the output row being advanced
    for (std::size_t i = 1; i < nt; ++i) {
        double* y_next = out + i * n;
        std::copy(y, y + n, ybuf.data());
        const double t_start = t[i - 1], t_end = t[i];
        std::int64_t k;
        double h_nominal;
        fixed_schedule(t_start, t_end, opt.step_size, 0, k, h_nominal);
        for (std::int64_t j = 0; j < k; ++j) {
            double tc, h;
            fixed_step(t_start, t_end, k, h_nominal, j, tc, h);
            if (info.nsteps >= opt.max_steps) {
                throw IntegrationError("max_steps (" + std::to_string(opt.max_steps) +
                                           ") reached at t = " + format_g17(tc) + " with step size " + format_g17(h),
                                       tc, h);
            }
            f.eval(tc, ybuf.data(), w.K.data(), batch);
            rk_step(tb, f, batch, tc, h, ybuf.data(), y_next, w);
            info.nfev += std::int64_t(tb.stages);
            ++info.nsteps;
            ++info.naccepted;
            if (j + 1 < k) std::copy(y_next, y_next + n, ybuf.data());
        }
        check_finite(y_next, n, t_end);
        y = y_next;
    }
}

}  // namespace

void check_finite(const double* y, std::size_t n, double t) {
    for (std::size_t i = 0; i < n; ++i) {
        if (!std::isfinite(y[i])) {
            throw IntegrationError("the solution became non-finite (NaN or inf) at t = " + format_g17(t), t, 0.0);
        }
    }
}

// Weighted RMS norm: sqrt(mean((v_i / (atol + rtol * scale_i))^2)).
double rms_norm(const double* v, const double* a, const double* b, std::size_t n, double rtol, double atol) {
    return rms_norm_n(v, a, b, n, rtol, atol);
}

// Hairer, Norsett & Wanner, Solving ODEs I, II.4: a first step from the
// size of y0, f(y0) and an estimate of the second derivative.
double initial_step(const Tableau& tb, Field& f, std::size_t batch, double t0, const double* y0,
                    const double* f0, double dir, double span, const OdeOptions& opt, OdeInfo& info,
                    RkWork& w) {
    const std::size_t n = w.ytmp.size();
    const double d0 = rms_norm(y0, y0, nullptr, n, opt.rtol, opt.atol);
    const double d1 = rms_norm(f0, y0, nullptr, n, opt.rtol, opt.atol);
    double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
    h0 = std::min(h0, span);
    double* y1 = w.ytmp.data();
    for (std::size_t i = 0; i < n; ++i) y1[i] = y0[i] + dir * h0 * f0[i];
    std::vector<double> f1(n);
    f.eval(t0 + dir * h0, y1, f1.data(), batch);
    ++info.nfev;
    for (std::size_t i = 0; i < n; ++i) f1[i] -= f0[i];
    const double d2 = rms_norm(f1.data(), y0, nullptr, n, opt.rtol, opt.atol) / h0;
    const double q = double(tb.error_order + 1);
    double h1 = std::max(d1, d2) <= 1e-15 ? std::max(1e-6, h0 * 1e-3)
                                           : std::pow(0.01 / std::max(d1, d2), 1.0 / q);
    return std::min({100.0 * h0, h1, span});
}

void check_can_step(const AdaptiveRun& r, double tc, double h, const double* y) {
    const double dir = r.dir;
    if (r.info.nsteps >= r.opt.max_steps) {
        throw IntegrationError("max_steps (" + std::to_string(r.opt.max_steps) + ") reached at t = " + format_g17(tc) +
                                   " with step size " + format_g17(dir * h) +
                                   "; the problem may be stiff: try the implicit method='radau5', "
                                   "or raise max_steps",
                               tc, dir * h);
    }
    if (!std::isfinite(h)) {
        throw IntegrationError("the step size became non-finite at t = " + format_g17(tc) +
                                   " (the solution or the field overflows there)",
                               tc, h);
    }
    if (h < 16.0 * std::numeric_limits<double>::epsilon() * std::max(1.0, std::fabs(tc))) {
        double norm = 0.0;
        for (std::size_t i = 0; i < r.n; ++i) norm += y[i] * y[i];
        throw IntegrationError("step size underflow at t = " + format_g17(tc) + " (step " + format_g17(dir * h) +
                                   ", state norm " + format_g17(std::sqrt(norm)) +
                                   "): the solution may blow up there, or the problem is stiff and "
                                   "needs an implicit method (method='radau5'); when training a Neural "
                                   "ODE, a smaller learning rate",
                               tc, dir * h);
    }
}

namespace {

// Shampine's fourth-order continuous extension of Dormand-Prince 5(4)
// (as in Hairer's DOPRI5): y(t0 + theta h) from y0, y1 and the stages.
void dense_dopri5(const double* y0, const double* y1, const double* K, std::size_t n, double h,
                  double theta, double* out) {
    constexpr double d1 = -12715105075.0 / 11282082432.0, d3 = 87487479700.0 / 32700410799.0,
                     d4 = -10690763975.0 / 1880347072.0, d5 = 701980252875.0 / 199316789632.0,
                     d6 = -1453857185.0 / 822651844.0, d7 = 69997945.0 / 29380423.0;
    const double th1 = 1.0 - theta;
    const double *k1 = K, *k3 = K + 2 * n, *k4 = K + 3 * n, *k5 = K + 4 * n, *k6 = K + 5 * n, *k7 = K + 6 * n;
    for (std::size_t i = 0; i < n; ++i) {
        const double r2 = y1[i] - y0[i];
        const double r3 = h * k1[i] - r2;
        const double r4 = r2 - h * k7[i] - r3;
        const double r5 = h * (d1 * k1[i] + d3 * k3[i] + d4 * k4[i] + d5 * k5[i] + d6 * k6[i] + d7 * k7[i]);
        out[i] = y0[i] + theta * (r2 + th1 * (r3 + theta * (r4 + th1 * r5)));
    }
}

// DOP853's seventh-order continuous extension (Hairer's DENSE OUTPUT of DOP853,
// function CONTD8): three more stages at c = 0.1, 0.2, 7/9 built from the step's
// stages, then y(t0 + theta h) = y0 + s (r2 + s1 (r3 + s (r4 + s1 (r5 + s (r6 +
// s1 (r7 + s r8)))))) with s = theta, s1 = 1 - theta.
namespace dop853 {
constexpr double c_extra[3] = {0.1, 0.2, 0.777777777777777777777777777778};
// rows of the extra stages 14, 15, 16 over the stages 1..16 (index = stage - 1;
// stage 13 is f(t + h, y_new))
constexpr double a_extra[3][16] = {
    {5.61675022830479523392909219681e-2, 0, 0, 0, 0, 0, 2.53500210216624811088794765333e-1,
     -2.46239037470802489917441475441e-1, -1.24191423263816360469010140626e-1,
     1.5329179827876569731206322685e-1, 8.20105229563468988491666602057e-3,
     7.56789766054569976138603589584e-3, -8.298e-3, 0, 0, 0},
    {3.18346481635021405060768473261e-2, 0, 0, 0, 0, 2.83009096723667755288322961402e-2,
     5.35419883074385676223797384372e-2, -5.49237485713909884646569340306e-2, 0, 0,
     -1.08347328697249322858509316994e-4, 3.82571090835658412954920192323e-4,
     -3.40465008687404560802977114492e-4, 1.41312443674632500278074618366e-1, 0, 0},
    {-4.28896301583791923408573538692e-1, 0, 0, 0, 0, -4.69762141536116384314449447206,
     7.68342119606259904184240953878, 4.06898981839711007970213554331,
     3.56727187455281109270669543021e-1, 0, 0, 0, -1.39902416515901462129418009734e-3,
     2.9475147891527723389556272149, -9.15095847217987001081870187138, 0},
};
// r5..r8 = h sum_j d[.][j] K_j (DOP853's d4*, d5*, d6*, d7*)
constexpr double d[4][16] = {
    {-0.84289382761090128651353491142e1, 0, 0, 0, 0, 0.56671495351937776962531783590,
     -0.30689499459498916912797304727e1, 0.23846676565120698287728149680e1,
     0.21170345824450282767155149946e1, -0.87139158377797299206789907490,
     0.22404374302607882758541771650e1, 0.63157877876946881815570249290,
     -0.88990336451333310820698117400e-1, 0.18148505520854727256656404962e2,
     -0.91946323924783554000451984436e1, -0.44360363875948939664310572000e1},
    {0.10427508642579134603413151009e2, 0, 0, 0, 0, 0.24228349177525818288430175319e3,
     0.16520045171727028198505394887e3, -0.37454675472269020279518312152e3,
     -0.22113666853125306036270938578e2, 0.77334326684722638389603898808e1,
     -0.30674084731089398182061213626e2, -0.93321305264302278729567221706e1,
     0.15697238121770843886131091075e2, -0.31139403219565177677282850411e2,
     -0.93529243588444783865713862664e1, 0.35816841486394083752465898540e2},
    {0.19985053242002433820987653617e2, 0, 0, 0, 0, -0.38703730874935176555105901742e3,
     -0.18917813819516756882830838328e3, 0.52780815920542364900561016686e3,
     -0.11573902539959630126141871134e2, 0.68812326946963000169666922661e1,
     -0.10006050966910838403183860980e1, 0.77771377980534432092869265740,
     -0.27782057523535084065932004339e1, -0.60196695231264120758267380846e2,
     0.84320405506677161018159903784e2, 0.11992291136182789328035130030e2},
    {-0.25693933462703749003312586129e2, 0, 0, 0, 0, -0.15418974869023643374053993627e3,
     -0.23152937917604549567536039109e3, 0.35763911791061412378285349910e3,
     0.93405324183624310003907691704e2, -0.37458323136451633156875139351e2,
     0.10409964950896230045147246184e3, 0.29840293426660503123344363579e2,
     -0.43533456590011143754432175058e2, 0.96324553959188282948394950600e2,
     -0.39177261675615439165231486172e2, -0.14972683625798562581422125276e3},
};
}  // namespace dop853

// The dense coefficients of an accepted dopri8 step into D (6n: r3, r4, r5..r8):
// evaluates the three extra stages into X (3n), with ytmp (n) as scratch. K holds
// the step's 13 stages, the last one f(t + h, y1). Calls f three times.
void dense_dop853_prepare(Field& f, std::size_t batch, double t, double h, const double* y0, const double* y1,
                          const double* K, double* X, double* ytmp, std::size_t n, double* D) {
    // stage j (0-based) of the 16: the step's K for j < 13, the extra X after
    auto stage = [&](std::size_t j) { return j < 13 ? K + j * n : X + (j - 13) * n; };
    for (std::size_t e = 0; e < 3; ++e) {
        for (std::size_t i = 0; i < n; ++i) ytmp[i] = y0[i];
        for (std::size_t j = 0; j < 13 + e; ++j) {
            const double a = h * dop853::a_extra[e][j];
            if (a == 0.0) continue;
            const double* Kj = stage(j);
            for (std::size_t i = 0; i < n; ++i) ytmp[i] += a * Kj[i];
        }
        f.eval(t + dop853::c_extra[e] * h, ytmp, X + e * n, batch);
    }
    const double* f0 = K;
    const double* f1 = K + 12 * n;
    double *r3 = D, *r4 = D + n;
    for (std::size_t i = 0; i < n; ++i) {
        const double r2 = y1[i] - y0[i];
        r3[i] = h * f0[i] - r2;
        r4[i] = r2 - h * f1[i] - r3[i];
    }
    for (std::size_t m = 0; m < 4; ++m) {
        double* r = D + (2 + m) * n;
        std::fill(r, r + n, 0.0);
        for (std::size_t j = 0; j < 16; ++j) {
            const double dj = h * dop853::d[m][j];
            if (dj == 0.0) continue;
            const double* Kj = stage(j);
            for (std::size_t i = 0; i < n; ++i) r[i] += dj * Kj[i];
        }
    }
}

void dense_dop853(const double* y0, const double* y1, const double* D, std::size_t n, double theta, double* out) {
    const double s = theta, s1 = 1.0 - theta;
    const double *r3 = D, *r4 = D + n, *r5 = D + 2 * n, *r6 = D + 3 * n, *r7 = D + 4 * n, *r8 = D + 5 * n;
    for (std::size_t i = 0; i < n; ++i) {
        const double conpar = r5[i] + s * (r6[i] + s1 * (r7[i] + s * r8[i]));
        out[i] = y0[i] + s * ((y1[i] - y0[i]) + s1 * (r3[i] + s * (r4[i] + s1 * conpar)));
    }
}

// Cubic Hermite interpolation from the values and slopes at both ends.
void dense_hermite(const double* y0, const double* y1, const double* f0, const double* f1, std::size_t n,
                   double h, double theta, double* out) {
    const double t2 = theta * theta, t3 = t2 * theta;
    const double h00 = 2 * t3 - 3 * t2 + 1, h10 = t3 - 2 * t2 + theta, h01 = -2 * t3 + 3 * t2, h11 = t3 - t2;
    for (std::size_t i = 0; i < n; ++i) out[i] = h00 * y0[i] + h10 * h * f0[i] + h01 * y1[i] + h11 * h * f1[i];
}

}  // namespace

void accept_outputs(AdaptiveRun& r, double hs, double t_new, const double* y, const double* y_new,
                    const double* K) {
    const Tableau& tb = r.tb;
    const std::size_t n = r.n, S = tb.stages, nt = r.nt;
    const double* t = r.t;
    const double tc = r.tc, dir = r.dir;
    const bool dop853 = tb.dense == Tableau::Dense::Dop853;
    // dopri8 pays its three extra evaluations only for a step with output inside
    // it (or when every step is kept)
    if (dop853 && (r.opt.record || (r.next < nt && dir * (t[r.next] - t_new) < 0.0))) {
        dense_dop853_prepare(r.f, r.batch, tc, hs, y, y_new, K, r.extra.data(), r.w.ytmp.data(), n, r.dcoef.data());
        r.info.nfev += 3;
    }
    if (DenseRecord* rec = r.opt.record) {
        rec->t0.push_back(tc);
        rec->h.push_back(hs);
        rec->y0.insert(rec->y0.end(), y, y + n);
        rec->y1.insert(rec->y1.end(), y_new, y_new + n);
        if (dop853) {
            rec->k.insert(rec->k.end(), r.dcoef.begin(), r.dcoef.end());
        } else if (tb.dense == Tableau::Dense::Shampine5) {
            rec->k.insert(rec->k.end(), K, K + S * n);
        } else {
            rec->k.insert(rec->k.end(), r.f0.begin(), r.f0.end());
            rec->k.insert(rec->k.end(), K + (S - 1) * n, K + S * n);
        }
    }
    // fill every requested time in (tc, t_new]
    while (r.next < nt && (dir * (t[r.next] - t_new) <= 0.0)) {
        double* o = r.out + r.next * n;
        if (t[r.next] == t_new) {
            std::copy(y_new, y_new + n, o);
        } else {
            const double theta = (t[r.next] - tc) / hs;
            if (dop853) {
                dense_dop853(y, y_new, r.dcoef.data(), n, theta, o);
            } else if (tb.dense == Tableau::Dense::Shampine5) {
                dense_dopri5(y, y_new, K, n, hs, theta, o);
            } else {
                dense_hermite(y, y_new, r.f0.data(), K + (S - 1) * n, n, hs, theta, o);
            }
        }
        ++r.next;
    }
}

namespace {

void integrate_adaptive(const Tableau& tb, Field& f, std::size_t batch, const double* t, std::size_t nt,
                        const OdeOptions& opt, double* out, OdeInfo& info, RkWork& w) {
    const std::size_t n = w.ytmp.size(), S = tb.stages;
    const bool dop853 = tb.dense == Tableau::Dense::Dop853;
    const double t0 = t[0], t_final = t[nt - 1];
    AdaptiveRun r{tb, f, batch, n, t, nt, opt, out, info, w, t_final > t0 ? 1.0 : -1.0, t_final,
                  std::vector<double>(out, out + n), std::vector<double>(n), std::vector<double>(n),
                  std::vector<double>(dop853 ? 3 * n : 0), std::vector<double>(dop853 ? 6 * n : 0),
                  t0, 0.0, 1, StepControl(tb)};
    double* K = w.K.data();
    f.eval(t0, r.y.data(), K, batch);
    ++info.nfev;
    for (std::size_t i = 0; i < n; ++i) {
        if (!std::isfinite(K[i])) {
            throw IntegrationError("the field is non-finite (NaN or inf) at the initial state, t = " + format_g17(t0),
                                   t0, 0.0);
        }
    }
    r.h = initial_step(tb, f, batch, t0, r.y.data(), K, r.dir, std::fabs(t_final - t0), opt, info, w);
    // a built-in field: the same steps, same bits, with the field inlined (rk_native.cpp)
    const bool native = has_adaptive_native(tb, f, batch, opt);
    while (r.next < nt) {
        if (native) {
            // returns at the end, or before a step it leaves to this loop
            adaptive_native(r);
            if (r.next >= nt) break;
        }
        check_can_step(r, r.tc, r.h, r.y.data());
        const bool reaches_end = std::fabs(t_final - r.tc) <= r.h * (1.0 + 1e-12);
        const double hs = reaches_end ? t_final - r.tc : r.dir * r.h;
        std::copy(K, K + n, r.f0.data());
        rk_step(tb, f, batch, r.tc, hs, r.y.data(), r.y_new.data(), w);
        info.nfev += std::int64_t(S - 1);
        ++info.nsteps;
        const double err = error_norm(tb, w, r.y.data(), r.y_new.data(), n, opt.rtol, opt.atol);
        if (!std::isfinite(err)) {
            ++info.nrejected;
            r.h = r.control.blown_up(r.h);
            continue;
        }
        const double fac11 = std::pow(err, r.control.expo1);
        if (err <= 1.0) {
            ++info.naccepted;
            const double t_new = reaches_end ? t_final : r.tc + hs;
            accept_outputs(r, hs, t_new, r.y.data(), r.y_new.data(), K);
            r.h = r.control.accepted(err, fac11, hs);
            r.tc = t_new;
            r.y.swap(r.y_new);
            // FSAL: the last stage is f(t_new, y_new); it becomes the next first stage
            std::copy(K + (S - 1) * n, K + S * n, K);
        } else {
            ++info.nrejected;
            r.h = r.control.rejected(fac11, hs);
        }
    }
    check_finite(out + (nt - 1) * n, n, t_final);
}

}  // namespace

void dense_eval(const DenseRecord& r, std::size_t i, double theta, double* out) {
    const std::size_t n = r.n;
    const double* y0 = r.y0.data() + i * n;
    const double* y1 = r.y1.data() + i * n;
    const double* k = r.k.data() + i * r.kn;
    if (r.collocation) {
        dense_radau(y0, k, n, theta, out);
    } else if (r.dense == Tableau::Dense::Dop853) {
        dense_dop853(y0, y1, k, n, theta, out);
    } else if (r.dense == Tableau::Dense::Shampine5) {
        dense_dopri5(y0, y1, k, n, r.h[i], theta, out);
    } else {
        dense_hermite(y0, y1, k, k + n, n, r.h[i], theta, out);
    }
}

void odeint(const Tableau& tb, Field& f, std::size_t batch, const double* y0, const double* t,
            std::size_t nt, const OdeOptions& opt, double* out, OdeInfo& info) {
    const std::size_t n = batch * f.dim();
    if (opt.record) {
        *opt.record = DenseRecord();
        opt.record->n = n;
        opt.record->dense = tb.dense;
        opt.record->kn = tb.dense == Tableau::Dense::Shampine5 ? tb.stages * n
                         : tb.dense == Tableau::Dense::Dop853  ? 6 * n
                                                                : 2 * n;
    }
    std::copy(y0, y0 + n, out);
    if (nt < 2) return;
    RkWork w;
    w.reserve(tb.stages, n);
    if (tb.adaptive()) {
        if (!tb.fsal) throw std::invalid_argument("adaptive methods need an FSAL tableau");
        integrate_adaptive(tb, f, batch, t, nt, opt, out, info, w);
    } else {
        integrate_fixed(tb, f, batch, t, nt, opt, out, info, w);
    }
}

}  // namespace eulerflow
