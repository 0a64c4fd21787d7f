// An implicit solver for stiff problems: the 3-stage Radau IIA method (order 5,
// L-stable, stiffly accurate). Each step solves the stage equations
//   Z_i = h sum_j a_ij f(t + c_j h, y + Z_j)
// by simplified Newton iterations with the matrix I - h (A kron J), J = df/dy by
// finite differences, kept across steps while Newton converges fast (dense LU of
// the 3n x 3n system), each iteration started from the previous step's collocation
// polynomial. The
// local error is Hairer & Wanner's embedded estimate filtered by (mu/h I - J)^-1,
// the step size follows Gustafsson's predictive controller (as in RADAU5 and
// scipy's Radau), and the output times are filled by cubic Hermite interpolation. Dense linear algebra on
// the whole state: meant for stiff systems of modest size.
#include "eulerflow/implicit.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "eulerflow/rk.hpp"

namespace eulerflow {

namespace {

std::string fmt(double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

const double S6 = std::sqrt(6.0);
const double C[3] = {(4.0 - S6) / 10.0, (4.0 + S6) / 10.0, 1.0};
const double A[3][3] = {{(88.0 - 7.0 * S6) / 360.0, (296.0 - 169.0 * S6) / 1800.0, (-2.0 + 3.0 * S6) / 225.0},
                        {(296.0 + 169.0 * S6) / 1800.0, (88.0 + 7.0 * S6) / 360.0, (-2.0 - 3.0 * S6) / 225.0},
                        {(16.0 - S6) / 36.0, (16.0 + S6) / 36.0, 1.0 / 9.0}};

// LU factorization with partial pivoting of the m x m matrix M (row-major) in place.
bool lu_factor(std::vector<double>& M, std::vector<std::size_t>& piv, std::size_t m) {
    for (std::size_t k = 0; k < m; ++k) {
        std::size_t p = k;
        for (std::size_t i = k + 1; i < m; ++i)
            if (std::fabs(M[i * m + k]) > std::fabs(M[p * m + k])) p = i;
        piv[k] = p;
        if (M[p * m + k] == 0.0 || !std::isfinite(M[p * m + k])) return false;
        if (p != k)
            for (std::size_t j = 0; j < m; ++j) std::swap(M[k * m + j], M[p * m + j]);
        const double inv = 1.0 / M[k * m + k];
        for (std::size_t i = k + 1; i < m; ++i) {
            const double l = M[i * m + k] * inv;
            M[i * m + k] = l;
            if (l != 0.0)
                for (std::size_t j = k + 1; j < m; ++j) M[i * m + j] -= l * M[k * m + j];
        }
    }
    return true;
}

void lu_solve(const std::vector<double>& M, const std::vector<std::size_t>& piv, std::size_t m, double* x) {
    // the row exchanges first, in the order they were made (the factorization swapped
    // whole rows, multipliers included), then the unit lower and the upper solves
    for (std::size_t k = 0; k < m; ++k) std::swap(x[k], x[piv[k]]);
    for (std::size_t k = 0; k < m; ++k) {
        for (std::size_t i = k + 1; i < m; ++i) x[i] -= M[i * m + k] * x[k];
    }
    for (std::size_t k = m; k-- > 0;) {
        for (std::size_t j = k + 1; j < m; ++j) x[k] -= M[k * m + j] * x[j];
        x[k] /= M[k * m + k];
    }
}

class Radau {
public:
    Radau(Field& f, std::size_t batch, std::size_t n, const OdeOptions& opt, OdeInfo& info)
        : f_(f), batch_(batch), n_(n), opt_(opt), info_(info), J_(n * n), M_(9 * n * n), E_(n * n),
          piv_(3 * n), pivE_(n), Z_(3 * n), F_(3 * n), dZ_(3 * n), ytmp_(n), fp_(n), scale_(n),
          ze_(n), yt_(n) {}

    void eval(double t, const double* y, double* out) {
        f_.eval(t, y, out, batch_);
        ++info_.nfev;
    }

    // J = df/dy at (t, y) by forward differences; f0 = f(t, y) is given
    void jacobian(double t, const double* y, const double* f0) {
        std::copy(y, y + n_, ytmp_.begin());
        const double eps = std::sqrt(std::numeric_limits<double>::epsilon());
        for (std::size_t k = 0; k < n_; ++k) {
            const double d = eps * std::max(std::fabs(y[k]), 1e-5);
            ytmp_[k] = y[k] + d;
            eval(t, ytmp_.data(), fp_.data());
            for (std::size_t i = 0; i < n_; ++i) J_[i * n_ + k] = (fp_[i] - f0[i]) / d;
            ytmp_[k] = y[k];
        }
    }

    // Newton's matrix I - h (A kron J) and the error's MU/h I - J, factorized
    bool factorize(double h) {
        const std::size_t n = n_, m = 3 * n;
        for (std::size_t bi = 0; bi < 3; ++bi)
            for (std::size_t bj = 0; bj < 3; ++bj)
                for (std::size_t i = 0; i < n; ++i)
                    for (std::size_t k = 0; k < n; ++k)
                        M_[(bi * n + i) * m + bj * n + k] = (bi == bj && i == k ? 1.0 : 0.0) - h * A[bi][bj] * J_[i * n + k];
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t k = 0; k < n; ++k) E_[i * n + k] = (i == k ? MU / h : 0.0) - J_[i * n + k];
        return lu_factor(M_, piv_, m) && lu_factor(E_, pivE_, n);
    }

    // Simplified Newton on the stage equations from Z = 0; the iterations taken, or
    // -1 when they do not converge (the convergence test of Hairer & Wanner, IV.8)
    // The first guess: the previous step's collocation polynomial (through its start
    // and its three stages) extrapolated to this step's stage times, or zero.
    void guess(double h) {
        const std::size_t n = n_;
        if (h_prev_ <= 0.0) {
            std::fill(Z_.begin(), Z_.end(), 0.0);
            return;
        }
        const double x[4] = {0.0, C[0], C[1], 1.0};
        for (std::size_t s = 0; s < 3; ++s) {
            const double xs = 1.0 + C[s] * h / h_prev_;
            double w[4];
            for (int a = 0; a < 4; ++a) {
                w[a] = 1.0;
                for (int b = 0; b < 4; ++b)
                    if (b != a) w[a] *= (xs - x[b]) / (x[a] - x[b]);
            }
            for (std::size_t i = 0; i < n; ++i) {
                // u(xs) - u(1), with u(0) = 0 and u(c_j) = Zprev_j relative to the old start
                const double u = w[1] * Zprev_[i] + w[2] * Zprev_[n + i] + w[3] * Zprev_[2 * n + i];
                Z_[s * n + i] = u - Zprev_[2 * n + i];
            }
        }
    }

    // after an accepted step of size h: its stages seed the next guess
    void accepted(double h) {
        Zprev_ = Z_;
        h_prev_ = std::fabs(h);
    }
    void forget() { h_prev_ = -1.0; }

    int newton(double t, const double* y, double h, double tol) {
        const std::size_t n = n_, m = 3 * n;
        for (std::size_t i = 0; i < n; ++i) scale_[i] = opt_.atol + opt_.rtol * std::fabs(y[i]);
        guess(h);
        double prev = 0.0, rate = -1.0;
        for (int it = 0; it < kMaxIter; ++it) {
            for (std::size_t s = 0; s < 3; ++s) {
                for (std::size_t i = 0; i < n; ++i) ytmp_[i] = y[i] + Z_[s * n + i];
                eval(t + C[s] * h, ytmp_.data(), F_.data() + s * n);
            }
            for (std::size_t s = 0; s < 3; ++s)
                for (std::size_t i = 0; i < n; ++i) {
                    double hz = 0.0;
                    for (std::size_t j = 0; j < 3; ++j) hz += A[s][j] * F_[j * n + i];
                    dZ_[s * n + i] = h * hz - Z_[s * n + i];
                }
            for (double v : dZ_)
                if (!std::isfinite(v)) return -1;
            lu_solve(M_, piv_, m, dZ_.data());
            double norm = 0.0;
            for (std::size_t s = 0; s < 3; ++s)
                for (std::size_t i = 0; i < n; ++i) {
                    const double q = dZ_[s * n + i] / scale_[i];
                    norm += q * q;
                }
            norm = std::sqrt(norm / double(m));
            if (!std::isfinite(norm)) return -1;
            if (it > 0) rate = norm / prev;
            if (rate >= 0.0 && (rate >= 1.0 || std::pow(rate, kMaxIter - it) / (1.0 - rate) * norm > tol)) return -1;
            for (std::size_t i = 0; i < m; ++i) Z_[i] += dZ_[i];
            last_rate_ = rate;
            if (norm == 0.0 || (rate >= 0.0 && rate / (1.0 - rate) * norm < tol)) return it + 1;
            prev = norm;
        }
        return -1;
    }

    // Hairer's embedded error estimate, filtered by (MU/h I - J)^-1 so that stiff
    // components do not inflate it; f0 = f(t, y)
    double error(double t, const double* y, const double* y_new, const double* f0, double h, bool refine) {
        const std::size_t n = n_;
        std::vector<double>& e = ytmp_;
        std::vector<double>& ze = ze_;
        for (std::size_t i = 0; i < n; ++i) ze[i] = (EE[0] * Z_[i] + EE[1] * Z_[n + i] + EE[2] * Z_[2 * n + i]) / h;
        for (std::size_t i = 0; i < n; ++i) e[i] = f0[i] + ze[i];
        lu_solve(E_, pivE_, n, e.data());
        auto norm = [&] {
            double s2 = 0.0;
            for (std::size_t i = 0; i < n; ++i) {
                const double sc = opt_.atol + opt_.rtol * std::max(std::fabs(y[i]), std::fabs(y_new[i]));
                const double q = e[i] / sc;
                s2 += q * q;
            }
            return std::sqrt(s2 / double(n));
        };
        double err = norm();
        if (refine && err > 1.0) {  // a second filtering after a rejection
            for (std::size_t i = 0; i < n; ++i) yt_[i] = y[i] + e[i];
            eval(t, yt_.data(), fp_.data());
            for (std::size_t i = 0; i < n; ++i) e[i] = fp_[i] + ze[i];
            lu_solve(E_, pivE_, n, e.data());
            err = norm();
        }
        return err;
    }

    const double* Z() const { return Z_.data(); }
    double last_rate() const { return last_rate_; }
    static constexpr int kMaxIter = 6;

private:
    const double MU = 3.0 + std::cbrt(9.0) - std::cbrt(3.0);  // the real eigenvalue of A^-1
    const double EE[3] = {(-13.0 - 7.0 * S6) / 3.0, (-13.0 + 7.0 * S6) / 3.0, -1.0 / 3.0};
    Field& f_;
    std::size_t batch_, n_;
    const OdeOptions& opt_;
    OdeInfo& info_;
    std::vector<double> J_, M_, E_;
    std::vector<std::size_t> piv_, pivE_;
    std::vector<double> Z_, F_, dZ_, ytmp_, fp_, scale_, Zprev_, ze_, yt_;
    double h_prev_ = -1.0;
    double last_rate_ = -1.0;
};

}  // namespace

void odeint_radau(Field& f, std::size_t batch, const double* y0, const double* t, std::size_t nt,
                  const OdeOptions& opt, double* out, OdeInfo& info) {
    const std::size_t n = batch * f.dim();
    std::copy(y0, y0 + n, out);
    if (nt < 2) return;
    Radau r(f, batch, n, opt, info);
    std::vector<double> y(y0, y0 + n), y_new(n), f0(n), f1(n);
    const double t0 = t[0], t_final = t[nt - 1];
    const double dir = t_final > t0 ? 1.0 : -1.0;
    r.eval(t0, y.data(), f0.data());
    for (double v : f0) {
        if (!std::isfinite(v)) {
            throw IntegrationError("the field is non-finite (NaN or inf) at the initial state, t = " + fmt(t0), t0,
                                   0.0);
        }
    }
    const double newton_tol = std::max(10.0 * std::numeric_limits<double>::epsilon() / opt.rtol,
                                       std::min(0.03, std::sqrt(opt.rtol)));
    // first step: Hairer & Wanner's estimate from the sizes of y0 and f(y0)
    double d0 = 0.0, d1 = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
        const double sc = opt.atol + opt.rtol * std::fabs(y[i]);
        d0 += (y[i] / sc) * (y[i] / sc);
        d1 += (f0[i] / sc) * (f0[i] / sc);
    }
    d0 = std::sqrt(d0 / double(n));
    d1 = std::sqrt(d1 / double(n));
    double h = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
    h = std::min(h, std::fabs(t_final - t0));
    double h_old = -1.0, err_old = -1.0;
    bool rejected = false;
    double tc = t0;
    std::size_t next = 1;
    r.jacobian(tc, y.data(), f0.data());
    bool jac_fresh = true;
    while (next < nt) {
        if (info.nsteps >= opt.max_steps) {
            throw IntegrationError("max_steps (" + std::to_string(opt.max_steps) + ") reached at t = " + fmt(tc) +
                                       " with step size " + fmt(dir * h) + " (radau5); raise max_steps",
                                   tc, dir * h);
        }
        if (!(h >= 16.0 * std::numeric_limits<double>::epsilon() * std::max(1.0, std::fabs(tc)))) {
            throw IntegrationError("step size underflow at t = " + fmt(tc) + " (step " + fmt(dir * h) +
                                       ") in radau5: the solution may blow up there",
                                   tc, dir * h);
        }
        const bool reaches_end = std::fabs(t_final - tc) <= h * (1.0 + 1e-12);
        const double hs = reaches_end ? t_final - tc : dir * h;
        ++info.nsteps;
        if (!r.factorize(hs)) {
            ++info.nrejected;
            h *= 0.5;
            continue;
        }
        const int iters = r.newton(tc, y.data(), hs, newton_tol);
        if (iters < 0) {  // no convergence: a fresh Jacobian, else a smaller step
            ++info.nrejected;
            if (!jac_fresh) {
                r.jacobian(tc, y.data(), f0.data());
                jac_fresh = true;
            } else {
                h *= 0.5;
            }
            rejected = true;
            continue;
        }
        const double* Z = r.Z();
        for (std::size_t i = 0; i < n; ++i) y_new[i] = y[i] + Z[2 * n + i];  // stiffly accurate
        const double err = r.error(tc, y.data(), y_new.data(), f0.data(), hs, rejected);
        const double safety = 0.9 * (2 * Radau::kMaxIter + 1) / double(2 * Radau::kMaxIter + iters);
        // Gustafsson's predictive controller, as scipy's Radau
        double mult = 1.0;
        if (h_old > 0.0 && err_old > 0.0 && err > 0.0) mult = std::fabs(hs) / h_old * std::pow(err_old / err, 0.25);
        const double factor = err > 0.0 ? std::min(1.0, mult) * std::pow(err, -0.25) : 10.0;
        if (!(err <= 1.0)) {
            ++info.nrejected;
            h = std::fabs(hs) * std::max(0.2, std::isfinite(err) ? safety * factor : 0.2);
            rejected = true;
            continue;
        }
        ++info.naccepted;
        const double t_new = reaches_end ? t_final : tc + hs;
        r.eval(t_new, y_new.data(), f1.data());
        while (next < nt && dir * (t[next] - t_new) <= 0.0) {
            double* o = out + next * n;
            if (t[next] == t_new) {
                std::copy(y_new.begin(), y_new.end(), o);
            } else {  // cubic Hermite from both ends' values and slopes
                const double th = (t[next] - tc) / hs, t2 = th * th, t3 = t2 * th;
                const double h00 = 2 * t3 - 3 * t2 + 1, h10 = t3 - 2 * t2 + th, h01 = -2 * t3 + 3 * t2, h11 = t3 - t2;
                for (std::size_t i = 0; i < n; ++i)
                    o[i] = h00 * y[i] + h10 * hs * f0[i] + h01 * y_new[i] + h11 * hs * f1[i];
            }
            ++next;
        }
        r.accepted(hs);
        h_old = std::fabs(hs);
        err_old = err;
        h = std::fabs(hs) * (err == 0.0 ? 10.0 : std::min(10.0, safety * factor));
        rejected = false;
        tc = t_new;
        y.swap(y_new);
        f0.swap(f1);
        // a new Jacobian only when Newton converged slowly (as RADAU5); a stale one that
        // stops Newton converging is refreshed before the step is shrunk
        if (iters > 2 && r.last_rate() > 1e-3) {
            r.jacobian(tc, y.data(), f0.data());
            jac_fresh = true;
        } else {
            jac_fresh = false;
        }
    }
    check_finite(out + (nt - 1) * n, n, t_final);
}

}  // namespace eulerflow
