#include "eulerflow/fields.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace eulerflow {

void Field::jacobian(double, const double*, double*, std::size_t) {
    throw std::logic_error("this field has no analytic Jacobian (has_jacobian() is false)");
}

LinearField::LinearField(std::vector<double> A, std::vector<double> b, std::size_t d)
    : A_(std::move(A)), b_(std::move(b)), d_(d) {
    if (A_.size() != d * d) throw std::invalid_argument("A must be square (d, d)");
    if (!b_.empty() && b_.size() != d) throw std::invalid_argument("b must have shape (d,)");
}

void LinearField::eval(double, const double* y, double* dy, std::size_t batch) {
    for (std::size_t r = 0; r < batch; ++r) {
        const double* yr = y + r * d_;
        double* out = dy + r * d_;
        for (std::size_t i = 0; i < d_; ++i) {
            double acc = b_.empty() ? 0.0 : b_[i];
            const double* Ai = A_.data() + i * d_;
            for (std::size_t j = 0; j < d_; ++j) acc += Ai[j] * yr[j];
            out[i] = acc;
        }
    }
}

void LinearField::jacobian(double, const double*, double* J, std::size_t batch) {
    for (std::size_t r = 0; r < batch; ++r) std::copy(A_.begin(), A_.end(), J + r * d_ * d_);
}

void LorenzField::eval(double, const double* y, double* dy, std::size_t batch) {
    for (std::size_t r = 0; r < batch; ++r) {
        const double x = y[3 * r], v = y[3 * r + 1], z = y[3 * r + 2];
        dy[3 * r] = s_ * (v - x);
        dy[3 * r + 1] = x * (r_ - z) - v;
        dy[3 * r + 2] = x * v - b_ * z;
    }
}

void LorenzField::jacobian(double, const double* y, double* J, std::size_t batch) {
    for (std::size_t r = 0; r < batch; ++r) {
        const double x = y[3 * r], v = y[3 * r + 1], z = y[3 * r + 2];
        double* j = J + 9 * r;
        j[0] = -s_, j[1] = s_, j[2] = 0.0;
        j[3] = r_ - z, j[4] = -1.0, j[5] = -x;
        j[6] = v, j[7] = x, j[8] = -b_;
    }
}

void ProjectileField::eval(double, const double* y, double* dy, std::size_t batch) {
    for (std::size_t r = 0; r < batch; ++r) {
        const double* s = y + 6 * r;
        double* d = dy + 6 * r;
        d[0] = s[3];
        d[1] = s[4];
        d[2] = s[5];
        d[3] = ax_;
        d[4] = ay_;
        d[5] = az_;
    }
}

void ProjectileField::jacobian(double, const double*, double* J, std::size_t batch) {
    std::fill(J, J + 36 * batch, 0.0);
    for (std::size_t r = 0; r < batch; ++r)
        for (std::size_t i = 0; i < 3; ++i) J[36 * r + 6 * i + 3 + i] = 1.0;
}

void VanDerPolField::eval(double, const double* y, double* dy, std::size_t batch) {
    for (std::size_t r = 0; r < batch; ++r) {
        const double a = y[2 * r], b = y[2 * r + 1];
        dy[2 * r] = b;
        dy[2 * r + 1] = mu_ * (1.0 - a * a) * b - a;
    }
}

void VanDerPolField::jacobian(double, const double* y, double* J, std::size_t batch) {
    for (std::size_t r = 0; r < batch; ++r) {
        const double a = y[2 * r], b = y[2 * r + 1];
        double* j = J + 4 * r;
        j[0] = 0.0, j[1] = 1.0;
        j[2] = -2.0 * mu_ * a * b - 1.0, j[3] = mu_ * (1.0 - a * a);
    }
}

void ArenstorfField::eval(double, const double* y, double* dy, std::size_t batch) {
    const double mu = mu_, mup = 1.0 - mu_;
    for (std::size_t r = 0; r < batch; ++r) {
        const double x = y[4 * r], v = y[4 * r + 1], vx = y[4 * r + 2], vy = y[4 * r + 3];
        const double r1 = (x + mu) * (x + mu) + v * v;
        const double r2 = (x - mup) * (x - mup) + v * v;
        const double d1 = r1 * std::sqrt(r1), d2 = r2 * std::sqrt(r2);
        dy[4 * r] = vx;
        dy[4 * r + 1] = vy;
        dy[4 * r + 2] = x + 2.0 * vy - mup * (x + mu) / d1 - mu * (x - mup) / d2;
        dy[4 * r + 3] = v - 2.0 * vx - mup * v / d1 - mu * v / d2;
    }
}

// d/dx of (x - p) / r^3 is 1 / r^3 - 3 (x - p)^2 / r^5 (r^2 = (x - p)^2 + y^2), and so on.
void ArenstorfField::jacobian(double, const double* y, double* J, std::size_t batch) {
    const double mu = mu_, mup = 1.0 - mu_;
    for (std::size_t r = 0; r < batch; ++r) {
        const double x = y[4 * r], v = y[4 * r + 1];
        const double a1 = x + mu, a2 = x - mup;
        const double r1 = a1 * a1 + v * v, r2 = a2 * a2 + v * v;
        const double i3a = 1.0 / (r1 * std::sqrt(r1)), i3b = 1.0 / (r2 * std::sqrt(r2));
        const double i5a = i3a / r1, i5b = i3b / r2;
        double* j = J + 16 * r;
        std::fill(j, j + 16, 0.0);
        j[2] = 1.0;
        j[7] = 1.0;
        j[8] = 1.0 - mup * (i3a - 3.0 * a1 * a1 * i5a) - mu * (i3b - 3.0 * a2 * a2 * i5b);
        j[9] = 3.0 * v * (mup * a1 * i5a + mu * a2 * i5b);
        j[11] = 2.0;
        j[12] = j[9];
        j[13] = 1.0 - mup * (i3a - 3.0 * v * v * i5a) - mu * (i3b - 3.0 * v * v * i5b);
        j[14] = -2.0;
    }
}

void NetworkField::begin() {
    if (guarded_ && !held_) held_.emplace(net_);
}

void NetworkField::end() { held_.reset(); }

void NetworkField::eval(double, const double* y, double* dy, std::size_t batch) {
    if (guarded_ && !held_) {
        Guard<double> guard(net_);
        eval_unguarded(y, dy, batch);
    } else {
        eval_unguarded(y, dy, batch);
    }
}

void NetworkField::eval_unguarded(const double* y, double* dy, std::size_t batch) {
    const double* out = net_.forward_rows(y, batch, d_, std::ptrdiff_t(d_), 1);
    for (std::size_t f = 0; f < d_; ++f)
        for (std::size_t r = 0; r < batch; ++r) dy[r * d_ + f] = out[f * batch + r];
}

}  // namespace eulerflow
