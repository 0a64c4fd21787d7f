// Explicit Runge-Kutta integration driven by a Butcher tableau: one stepping
// routine for every method, fixed steps that land exactly on the output
// times, and adaptive steps (embedded error estimate, PI step-size control,
// first-step selection, dense output at the requested times).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "eulerflow/fields.hpp"
#include "eulerflow/tableau.hpp"

namespace eulerflow {

// An integration that cannot go on: too many steps, or a step that
// underflowed. Carries the time reached and the last step size.
class IntegrationError : public std::runtime_error {
public:
    IntegrationError(const std::string& what, double t, double h)
        : std::runtime_error(what), t_reached(t), step(h) {}
    double t_reached, step;
};

// The accepted steps of an adaptive integration, for dense output anywhere:
// per step its start time t0 and size h, the states at both ends (n each) and
// the stage data its continuous extension needs (kn each: all S stages for
// dopri5, six coefficient vectors for dopri8, the slopes at both ends for the
// Hermite interpolant, the three stage increments Z of radau5's collocation
// polynomial).
struct DenseRecord {
    std::vector<double> t0, h, y0, y1, k;
    std::size_t n = 0, kn = 0;
    Tableau::Dense dense = Tableau::Dense::Hermite;
    bool collocation = false;  // radau5
    std::size_t steps() const { return t0.size(); }
};

struct OdeOptions {
    double rtol = 1e-7;
    double atol = 1e-9;
    double step_size = 0.0;   // fixed-step methods: 0 = one step per output interval
    std::int64_t max_steps = 100000;
    DenseRecord* record = nullptr;  // adaptive methods: keep every accepted step
};

// The dense output of step `i` of a record at theta in [0, 1] into out (n):
// the same formulas that fill odeint's output times.
void dense_eval(const DenseRecord& r, std::size_t i, double theta, double* out);

struct OdeInfo {
    std::int64_t nfev = 0, nsteps = 0, naccepted = 0, nrejected = 0;
    std::int64_t njev = 0;  // Jacobian evaluations (radau5)
};

// Integrates dy/dt = f(t, y) for `batch` states of dimension f.dim() from
// y0 (batch * dim values) over the strictly monotone times t[0..nt); writes
// the state at every t[i] into out (nt * batch * dim), out[0] = y0.
void odeint(const Tableau& tb, Field& f, std::size_t batch, const double* y0, const double* t,
            std::size_t nt, const OdeOptions& opt, double* out, OdeInfo& info);

// Scratch space of one integration: stage derivatives and temporaries,
// sized once so the stepping loop does not allocate.
struct RkWork {
    std::vector<double> K;     // stages * n
    std::vector<double> ytmp;  // n
    std::vector<double> err;   // n
    std::vector<double> err3;  // n, the second error estimate (tableaus with b_err3)
    void reserve(std::size_t stages, std::size_t n) {
        K.assign(stages * n, 0.0);
        ytmp.assign(n, 0.0);
        err.assign(n, 0.0);
        err3.assign(n, 0.0);
    }
};

// One step of size h from (t, y): K[0] must hold f(t, y) on entry. Writes
// y_new and, for embedded tableaus, the error estimate into w.err (and the
// second one into w.err3 for tableaus with b_err3). Calls f stages - 1 times.
void rk_step(const Tableau& tb, Field& f, std::size_t batch, double t, double h, const double* y,
             double* y_new, RkWork& w);

// Throws IntegrationError when any of y[0..n) is NaN or infinite (time t).
void check_finite(const double* y, std::size_t n, double t);

// A number with every digit (%.17g), for error messages.
std::string format_g17(double v);

// The fixed-step schedule of one interval [t_start, t_end]: k equal steps
// (steps_per_interval > 0), or steps of step_size (> 0) with the last one
// shortened, or one step. A remainder below a relative 1e-9 of a step is
// absorbed rather than taken as a sliver step; a count beyond int64 (a tiny
// step) is capped, and max_steps then stops the run where it got to.
inline void fixed_schedule(double t_start, double t_end, double step_size, std::int64_t steps_per_interval,
                           std::int64_t& k, double& h_nominal) {
    const double span = t_end - t_start;
    k = 1;
    h_nominal = span;
    if (steps_per_interval > 0) {
        k = steps_per_interval;
        h_nominal = span / double(k);
    } else if (step_size > 0.0) {
        const double steps = std::ceil(std::fabs(span) / step_size * (1.0 - 1e-9));
        k = steps >= 9.0e18 ? std::numeric_limits<std::int64_t>::max()
                            : std::max<std::int64_t>(std::int64_t(steps), 1);
        h_nominal = (span > 0.0 ? 1.0 : -1.0) * step_size;
    }
}

// Start time and size of step j of that schedule: times computed from t_start,
// not accumulated, and the last step lands exactly on t_end.
inline void fixed_step(double t_start, double t_end, std::int64_t k, double h_nominal, std::int64_t j,
                       double& tc, double& h) {
    tc = t_start + double(j) * h_nominal;
    h = j + 1 == k ? t_end - tc : h_nominal;
}

// The step sizes of the schedules of the intervals of t[0..nt), appended to out;
// false (out then partly filled) when they would take more than max_steps.
inline bool fixed_step_sizes(const double* t, std::size_t nt, double step_size, std::int64_t steps_per_interval,
                             std::int64_t max_steps, std::vector<double>& out) {
    const std::size_t start = out.size();
    for (std::size_t i = 1; i < nt; ++i) {
        std::int64_t k;
        double h_nominal;
        fixed_schedule(t[i - 1], t[i], step_size, steps_per_interval, k, h_nominal);
        if (k > max_steps - std::int64_t(out.size() - start)) return false;
        for (std::int64_t j = 0; j < k; ++j) {
            double tc, h;
            fixed_step(t[i - 1], t[i], k, h_nominal, j, tc, h);
            out.push_back(h);
        }
    }
    return true;
}

// Weighted RMS norm sqrt(mean((v_i / (atol + rtol * max(|a_i|, |b_i|)))^2)); b may be null.
double rms_norm(const double* v, const double* a, const double* b, std::size_t n, double rtol,
                double atol);

// The two norms written once for error_norm (n at run time) and the adaptive fast
// path of rk_native.cpp (n = std::integral_constant: the loops unrolled), so both
// round alike. rms_norm_n: rms_norm with b not null.
template <class N>
inline double rms_norm_n(const double* v, const double* a, const double* b, N n, double rtol, double atol) {
    double s = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        const double sc = atol + rtol * std::max(std::fabs(a[i]), b ? std::fabs(b[i]) : 0.0);
        const double q = v[i] / sc;
        s += q * q;
    }
    return std::sqrt(s / double(n));
}

// error_norm of the estimates e5 and (DOP853's second one, or null) e3.
template <class N>
inline double step_error_norm(const double* e5, const double* e3, const double* y, const double* y_new, N n,
                              double rtol, double atol) {
    if (!e3) return rms_norm_n(e5, y, y_new, n, rtol, atol);
    // DOP853: the 5th-order estimate, damped where the 3rd-order one is much larger
    // (the combination behaves like h^8 for small h); both with the same scales
    double s5 = 0.0, s3 = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        const double sc = 1.0 / (atol + rtol * std::max(std::fabs(y[i]), std::fabs(y_new[i])));
        const double q5 = e5[i] * sc, q3 = e3[i] * sc;
        s5 += q5 * q5;
        s3 += q3 * q3;
    }
    // (s5 / n) / sqrt((s5 + 0.01 s3) / n): the squared RMS norm of err5 over the RMS
    // norm of the combination
    const double deno = s5 + 0.01 * s3;
    return deno > 0.0 ? s5 / std::sqrt(deno * double(n)) : 0.0;
}

// The scaled error of the step rk_step just took, compared with 1 by the step
// control (every adaptive integration measures its error here): the weighted RMS
// norm of w.err, or, for tableaus with a second estimate (dopri8), DOP853's
// err5^2 / sqrt(err5^2 + 0.01 err3^2) of the two norms. Scales use max(|y|, |y_new|).
double error_norm(const Tableau& tb, const RkWork& w, const double* y, const double* y_new, std::size_t n,
                  double rtol, double atol);

// Hairer-Norsett-Wanner first step size for an adaptive method, from y0 and
// f0 = f(t0, y0); uses w.ytmp; costs one evaluation of f (counted in info).
double initial_step(const Tableau& tb, Field& f, std::size_t batch, double t0, const double* y0,
                    const double* f0, double dir, double span, const OdeOptions& opt,
                    OdeInfo& info, RkWork& w);

// The step-size control of the adaptive methods: Hairer's DOPRI5 PI controller
// (beta = 0.04, step ratio in [0.2, 10]); with DOP853's error estimate (dopri8),
// DOP853's defaults: beta = 0, so the exponent is 1/8, and the step ratio in [1/3, 6].
// fac11 = pow(err, expo1) of the step's error.
struct StepControl {
    explicit StepControl(const Tableau& tb)
        : dop853(!tb.b_err3.empty()),
          beta(dop853 ? 0.0 : 0.04),
          facmin(dop853 ? 0.333 : 0.2),
          facmax(dop853 ? 6.0 : 10.0),
          expo1(1.0 / double(tb.error_order + 1) - (dop853 ? 0.2 : 0.75) * beta),
          err_old_beta(beta > 0.0 ? std::pow(err_old, beta) : 1.0) {}
    bool dop853;
    double beta, safety = 0.9, facmin, facmax, expo1;
    double err_old = 1e-4;
    // pow(err_old, beta), formed when err_old is: off the chain from a step's error to
    // the next step size
    double err_old_beta;
    bool rejected_last = false;

    // the next step size after an accepted step of size hs
    double accepted(double err, double fac11, double hs) {
        double fac = beta > 0.0 ? fac11 / err_old_beta : fac11;
        fac = std::max(1.0 / facmax, std::min(1.0 / facmin, fac / safety));
        double h_new = std::fabs(hs) / fac;
        if (rejected_last) h_new = std::min(h_new, std::fabs(hs));
        err_old = std::max(err, 1e-4);
        if (beta > 0.0) err_old_beta = std::pow(err_old, beta);
        rejected_last = false;
        return h_new;
    }
    // the step size to retry a rejected step of size hs with
    double rejected(double fac11, double hs) {
        rejected_last = true;
        return std::fabs(hs) / std::min(1.0 / facmin, fac11 / safety);
    }
    // ... and a step whose error is not finite (a blown-up stage)
    double blown_up(double h) {
        rejected_last = true;
        return h * facmin;
    }
};

// The state of an adaptive integration between two steps (rk.cpp's loop; the
// native fields' loop, rk_native.cpp, takes it over): the time tc, the state y,
// w.K[0..n) = f(tc, y), the next step size h and the next output index to fill.
struct AdaptiveRun {
    const Tableau& tb;
    Field& f;
    std::size_t batch, n;
    const double* t;
    std::size_t nt;
    const OdeOptions& opt;
    double* out;
    OdeInfo& info;
    RkWork& w;
    double dir, t_final;
    std::vector<double> y, y_new, f0, extra, dcoef;  // extra, dcoef: dopri8's dense output
    double tc, h;
    std::size_t next = 1;
    StepControl control;
};

// Whether a step of size h can be taken at time tc: max_steps not reached, h finite
// and at least 16 ulp of the time. check_can_step throws the IntegrationError that
// says why not (y: the state, for the message).
inline bool can_step(const AdaptiveRun& r, double tc, double h) {
    return r.info.nsteps < r.opt.max_steps && std::isfinite(h) &&
           !(h < 16.0 * std::numeric_limits<double>::epsilon() * std::max(1.0, std::fabs(tc)));
}
void check_can_step(const AdaptiveRun& r, double tc, double h, const double* y);

// After an accepted step from (r.tc, y) of size hs to (t_new, y_new) with stages K
// (S x n): records it (r.opt.record) and fills every requested time in (r.tc, t_new],
// advancing r.next; dopri8's dense output evaluates its three extra stages then.
void accept_outputs(AdaptiveRun& r, double hs, double t_new, const double* y, const double* y_new,
                    const double* K);

}  // namespace eulerflow
