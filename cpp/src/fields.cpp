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

// Each field applies its one-state arithmetic (field_kernels.hpp) to every row.
void LinearField::eval(double, const double* y, double* dy, std::size_t batch) {
    const double* b = b_.empty() ? nullptr : b_.data();
    for (std::size_t r = 0; r < batch; ++r) linear_point(A_.data(), b, d_, y + r * d_, dy + r * d_);
}

void LinearField::jacobian(double, const double*, double* J, std::size_t batch) {
    for (std::size_t r = 0; r < batch; ++r) std::copy(A_.begin(), A_.end(), J + r * d_ * d_);
}

void LorenzField::eval(double, const double* y, double* dy, std::size_t batch) {
    for (std::size_t r = 0; r < batch; ++r) fn_(y + 3 * r, dy + 3 * r);
}

void LorenzField::jacobian(double, const double* y, double* J, std::size_t batch) {
    for (std::size_t r = 0; r < batch; ++r) {
        const double x = y[3 * r], v = y[3 * r + 1], z = y[3 * r + 2];
        double* j = J + 9 * r;
        j[0] = -fn_.s, j[1] = fn_.s, j[2] = 0.0;
        j[3] = fn_.r - z, j[4] = -1.0, j[5] = -x;
        j[6] = v, j[7] = x, j[8] = -fn_.b;
    }
}

void ProjectileField::eval(double, const double* y, double* dy, std::size_t batch) {
    for (std::size_t r = 0; r < batch; ++r) fn_(y + 6 * r, dy + 6 * r);
}

void ProjectileField::jacobian(double, const double*, double* J, std::size_t batch) {
    std::fill(J, J + 36 * batch, 0.0);
    for (std::size_t r = 0; r < batch; ++r)
        for (std::size_t i = 0; i < 3; ++i) J[36 * r + 6 * i + 3 + i] = 1.0;
}

void VanDerPolField::eval(double, const double* y, double* dy, std::size_t batch) {
    for (std::size_t r = 0; r < batch; ++r) fn_(y + 2 * r, dy + 2 * r);
}

void VanDerPolField::jacobian(double, const double* y, double* J, std::size_t batch) {
    for (std::size_t r = 0; r < batch; ++r) {
        const double a = y[2 * r], b = y[2 * r + 1];
        double* j = J + 4 * r;
        j[0] = 0.0, j[1] = 1.0;
        j[2] = -2.0 * fn_.mu * a * b - 1.0, j[3] = fn_.mu * (1.0 - a * a);
    }
}

void ArenstorfField::eval(double, const double* y, double* dy, std::size_t batch) {
    for (std::size_t r = 0; r < batch; ++r) fn_(y + 4 * r, dy + 4 * r);
}

// d/dx of (x - p) / r^3 is 1 / r^3 - 3 (x - p)^2 / r^5 (r^2 = (x - p)^2 + y^2), and so on.
void ArenstorfField::jacobian(double, const double* y, double* J, std::size_t batch) {
    const double mu = fn_.mu, mup = 1.0 - fn_.mu;
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
