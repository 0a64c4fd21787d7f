#include "eulerflow/fields.hpp"

#include <cmath>
#include <stdexcept>

namespace eulerflow {

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

void LorenzField::eval(double, const double* y, double* dy, std::size_t batch) {
    for (std::size_t r = 0; r < batch; ++r) {
        const double x = y[3 * r], v = y[3 * r + 1], z = y[3 * r + 2];
        dy[3 * r] = s_ * (v - x);
        dy[3 * r + 1] = x * (r_ - z) - v;
        dy[3 * r + 2] = x * v - b_ * z;
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

void VanDerPolField::eval(double, const double* y, double* dy, std::size_t batch) {
    for (std::size_t r = 0; r < batch; ++r) {
        const double a = y[2 * r], b = y[2 * r + 1];
        dy[2 * r] = b;
        dy[2 * r + 1] = mu_ * (1.0 - a * a) * b - a;
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
