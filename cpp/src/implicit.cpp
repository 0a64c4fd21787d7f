// An implicit solver for stiff problems: the 3-stage Radau IIA method (order 5,
// L-stable, stiffly accurate). Each step solves the stage equations
//   Z_i = h sum_j a_ij f(t + c_j h, y + Z_j)
// by simplified Newton iterations with the matrix I - h (A kron J), J = df/dy from
// the field (Field::jacobian) or by finite differences, kept across steps while
// Newton converges fast (dense LU of the 3n x 3n system, kept too while h does not
// change), started from the previous step's collocation polynomial. Newton stops
// after one iteration when the previous steps' contraction rate says it has
// converged (Hairer's RADAU5; scipy's Radau always takes two). The local error is
// Hairer & Wanner's embedded estimate filtered by (mu/h I - J)^-1, the step size
// follows Gustafsson's predictive controller and is kept when the proposed change
// is a small increase (as RADAU5), and the output times come from each step's
// collocation polynomial (RADAU5's CONTR5). Dense linear algebra on the whole
// state: meant for stiff systems of modest size.
#include "eulerflow/implicit.hpp"

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "eulerflow/rk.hpp"

namespace eulerflow {

namespace {

const double S6 = std::sqrt(6.0);
const double C[3] = {(4.0 - S6) / 10.0, (4.0 + S6) / 10.0, 1.0};
const double A[3][3] = {{(88.0 - 7.0 * S6) / 360.0, (296.0 - 169.0 * S6) / 1800.0, (-2.0 + 3.0 * S6) / 225.0},
                        {(296.0 + 169.0 * S6) / 1800.0, (88.0 + 7.0 * S6) / 360.0, (-2.0 - 3.0 * S6) / 225.0},
                        {(16.0 - S6) / 36.0, (16.0 + S6) / 36.0, 1.0 / 9.0}};

// The weights of the collocation polynomial u(theta) = y0 + sum_i w_i(theta) Z_i
// (degree 3, u(0) = y0, u(c_i) = y0 + Z_i): Lagrange's basis on the nodes 0, c1, c2, c3.
void collocation_weights(double theta, double w[3]) {
    for (int i = 0; i < 3; ++i) {
        double num = theta, den = C[i];
        for (int j = 0; j < 3; ++j) {
            if (j == i) continue;
            num *= theta - C[j];
            den *= C[i] - C[j];
        }
        w[i] = num / den;
    }
}

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
        : f_(f), batch_(batch), n_(n), opt_(opt), info_(info), J_(n * n, 0.0), M_(9 * n * n), E_(n * n),
          piv_(3 * n), pivE_(n), Z_(3 * n), F_(3 * n), dZ_(3 * n), ytmp_(n), fp_(n), scale_(n), Zprev_(3 * n),
          ze_(n), yt_(n) {
        if (f_.has_jacobian()) {
            const std::size_t d = f_.dim();
            Jb_.assign(batch * d * d, 0.0);
        }
    }

    void eval(double t, const double* y, double* out) {
        f_.eval(t, y, out, batch_);
        ++info_.nfev;
    }

    // J = df/dy at (t, y): the field's own (block diagonal over the batch), or forward
    // differences (n evaluations of f); f0 = f(t, y) is given
    void jacobian(double t, const double* y, const double* f0) {
        ++info_.njev;
        if (!Jb_.empty()) {
            const std::size_t d = f_.dim();
            f_.jacobian(t, y, Jb_.data(), batch_);
            for (std::size_t r = 0; r < batch_; ++r)
                for (std::size_t i = 0; i < d; ++i)
                    for (std::size_t k = 0; k < d; ++k) {
                        const double v = Jb_[(r * d + i) * d + k];
                        if (!std::isfinite(v)) {
                            throw std::invalid_argument("the Jacobian is non-finite (NaN or inf) at t = " + format_g17(t) +
                                                        " (entry [" + std::to_string(i) + ", " +
                                                        std::to_string(k) + "] of state " + std::to_string(r) + ")");
                        }
                        J_[(r * d + i) * n_ + r * d + k] = v;
                    }
            return;
        }
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

    // The first guess: the previous step's collocation polynomial (through its start
    // and its three stages) extrapolated to this step's stage times, or zero.
    void guess(double h) {
        const std::size_t n = n_;
        if (h_prev_ <= 0.0) {
            std::fill(Z_.begin(), Z_.end(), 0.0);
            return;
        }
        for (std::size_t s = 0; s < 3; ++s) {
            double w[3];
            collocation_weights(1.0 + C[s] * h / h_prev_, w);
            for (std::size_t i = 0; i < n; ++i) {
                // u(xs) - u(1), with u(0) = 0 and u(c_j) = Zprev_j relative to the old start
                const double u = w[0] * Zprev_[i] + w[1] * Zprev_[n + i] + w[2] * Zprev_[2 * n + i];
                Z_[s * n + i] = u - Zprev_[2 * n + i];
            }
        }
    }

    // after an accepted step of size h: its stages seed the next guess
    void accepted(double h) {
        std::copy(Z_.begin(), Z_.end(), Zprev_.begin());
        h_prev_ = std::fabs(h);
    }

    // Simplified Newton on the stage equations; the iterations taken, or -1 when they
    // do not converge. Hairer & Wanner's test (IV.8, as RADAU5): with the contraction
    // rate theta, the iterate is within faccon * |dZ| of the solution, faccon =
    // theta / (1 - theta); a step's first iteration uses the rate of the steps before
    // (faccon raised to the power 0.8 each step, so an old rate fades).
    int newton(double t, const double* y, double h, double tol) {
        const std::size_t n = n_, m = 3 * n;
        for (std::size_t i = 0; i < n; ++i) scale_[i] = opt_.atol + opt_.rtol * std::fabs(y[i]);
        guess(h);
        faccon_ = std::pow(std::max(faccon_, std::numeric_limits<double>::epsilon()), 0.8);
        theta_ = -1.0;
        double prev = 0.0, thq_old = 0.0;
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
            if (it > 0) {
                const double thq = norm / prev;
                theta_ = it == 1 ? thq : std::sqrt(thq * thq_old);
                thq_old = thq;
                if (theta_ >= 0.99) return -1;
                faccon_ = theta_ / (1.0 - theta_);
                // the error predicted after the iterations left
                if (faccon_ * norm * std::pow(theta_, kMaxIter - 1 - it) > tol) return -1;
            }
            for (std::size_t i = 0; i < m; ++i) Z_[i] += dZ_[i];
            if (norm == 0.0 || faccon_ * norm <= tol) return it + 1;
            prev = std::max(norm, std::numeric_limits<double>::min());
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
    // the last step's contraction rate; -1 when Newton converged in one iteration
    double theta() const { return theta_; }
    static constexpr int kMaxIter = 7;

private:
    const double MU = 3.0 + std::cbrt(9.0) - std::cbrt(3.0);  // the real eigenvalue of A^-1
    const double EE[3] = {(-13.0 - 7.0 * S6) / 3.0, (-13.0 + 7.0 * S6) / 3.0, -1.0 / 3.0};
    Field& f_;
    std::size_t batch_, n_;
    const OdeOptions& opt_;
    OdeInfo& info_;
    std::vector<double> J_, Jb_, M_, E_;
    std::vector<std::size_t> piv_, pivE_;
    std::vector<double> Z_, F_, dZ_, ytmp_, fp_, scale_, Zprev_, ze_, yt_;
    double h_prev_ = -1.0;
    double faccon_ = 1.0, theta_ = -1.0;
};

}  // namespace

void dense_radau(const double* y0, const double* Z, std::size_t n, double theta, double* out) {
    double w[3];
    collocation_weights(theta, w);
    for (std::size_t i = 0; i < n; ++i) out[i] = y0[i] + (w[0] * Z[i] + w[1] * Z[n + i] + w[2] * Z[2 * n + i]);
}

void odeint_radau(Field& f, std::size_t batch, const double* y0, const double* t, std::size_t nt,
                  const OdeOptions& opt, double* out, OdeInfo& info) {
    const std::size_t n = batch * f.dim();
    DenseRecord* rec = opt.record;
    if (rec) {
        *rec = DenseRecord();
        rec->n = n;
        rec->kn = 3 * n;
        rec->collocation = true;
    }
    std::copy(y0, y0 + n, out);
    if (nt < 2) return;
    Radau r(f, batch, n, opt, info);
    std::vector<double> y(y0, y0 + n), y_new(n), f0(n), f1(n);
    const double t0 = t[0], t_final = t[nt - 1];
    const double dir = t_final > t0 ? 1.0 : -1.0;
    r.eval(t0, y.data(), f0.data());
    for (double v : f0) {
        if (!std::isfinite(v)) {
            throw IntegrationError("the field is non-finite (NaN or inf) at the initial state, t = " + format_g17(t0), t0,
                                   0.0);
        }
    }
    // Newton's tolerance (relative to the error's scale) is RADAU5's default FNEWT =
    // min(0.03, sqrt(rtol')) for RADAU5's internal rtol' = 0.1 rtol^(2/3) (scipy takes the
    // tighter sqrt(rtol)): on W9 (stiff Van der Pol, rtol = 1e-6) that saves about 4% of
    // the evaluations and keeps the error at 1e-8.
    const double newton_tol = std::max(10.0 * std::numeric_limits<double>::epsilon() / opt.rtol,
                                       std::min(0.03, std::sqrt(0.1 * std::pow(opt.rtol, 2.0 / 3.0))));
    // A new Jacobian after an accepted step when Newton's contraction rate was above
    // kTheta: RADAU5 suggests 0.001 for small systems, but on W9 that evaluates twice
    // as many Jacobians (413 against 198 with 0.01) for no fewer steps.
    constexpr double kTheta = 0.01;
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
    double h_lu = 0.0;  // the step the factorization is for; 0 = none valid
    while (next < nt) {
        if (info.nsteps >= opt.max_steps) {
            throw IntegrationError("max_steps (" + std::to_string(opt.max_steps) + ") reached at t = " + format_g17(tc) +
                                       " with step size " + format_g17(dir * h) + " (radau5); raise max_steps",
                                   tc, dir * h);
        }
        if (!(h >= 16.0 * std::numeric_limits<double>::epsilon() * std::max(1.0, std::fabs(tc)))) {
            throw IntegrationError("step size underflow at t = " + format_g17(tc) + " (step " + format_g17(dir * h) +
                                       ") in radau5: the solution may blow up there",
                                   tc, dir * h);
        }
        const bool reaches_end = std::fabs(t_final - tc) <= h * (1.0 + 1e-12);
        const double hs = reaches_end ? t_final - tc : dir * h;
        ++info.nsteps;
        if (hs != h_lu) {
            if (!r.factorize(hs)) {
                ++info.nrejected;
                h_lu = 0.0;
                h *= 0.5;
                continue;
            }
            h_lu = hs;
        }
        const int iters = r.newton(tc, y.data(), hs, newton_tol);
        if (iters < 0) {  // no convergence: a fresh Jacobian, else a smaller step
            ++info.nrejected;
            if (!jac_fresh) {
                r.jacobian(tc, y.data(), f0.data());
                jac_fresh = true;
                h_lu = 0.0;
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
        if (rec) {
            rec->t0.push_back(tc);
            rec->h.push_back(hs);
            rec->y0.insert(rec->y0.end(), y.begin(), y.end());
            rec->y1.insert(rec->y1.end(), y_new.begin(), y_new.end());
            rec->k.insert(rec->k.end(), Z, Z + 3 * n);
        }
        while (next < nt && dir * (t[next] - t_new) <= 0.0) {
            double* o = out + next * n;
            if (t[next] == t_new) {
                std::copy(y_new.begin(), y_new.end(), o);
            } else {
                dense_radau(y.data(), Z, n, (t[next] - tc) / hs, o);
            }
            ++next;
        }
        if (next >= nt) break;
        r.accepted(hs);
        r.eval(t_new, y_new.data(), f1.data());
        double h_new = std::fabs(hs) * (err == 0.0 ? 10.0 : std::min(10.0, safety * factor));
        if (rejected) h_new = std::min(h_new, std::fabs(hs));
        h_old = std::fabs(hs);
        err_old = err;
        rejected = false;
        tc = t_new;
        y.swap(y_new);
        f0.swap(f1);
        // a new Jacobian only when Newton converged slowly (as RADAU5); a stale one that
        // stops Newton converging is refreshed before the step is shrunk
        const bool new_jac = r.theta() > kTheta;
        const double q = h_new / std::fabs(hs);
        // a small increase keeps h, and with it the factorization (RADAU5's QUOT1, QUOT2)
        h = (!new_jac && q >= 1.0 && q <= 1.2) ? std::fabs(hs) : h_new;
        if (new_jac) {
            r.jacobian(tc, y.data(), f0.data());
            jac_fresh = true;
            h_lu = 0.0;
        } else {
            jac_fresh = false;
        }
    }
    check_finite(out + (nt - 1) * n, n, t_final);
}

}  // namespace eulerflow
