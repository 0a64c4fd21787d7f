#include "eulerflow/fields.hpp"

#include <cmath>
#include <stdexcept>

namespace eulerflow {

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

void LorenzField::eval(double, const double* y, double* dy, std::size_t batch) {
    for (std::size_t r = 0; r < batch; ++r) fn_(y + 3 * r, dy + 3 * r);
}

void ProjectileField::eval(double, const double* y, double* dy, std::size_t batch) {
    for (std::size_t r = 0; r < batch; ++r) fn_(y + 6 * r, dy + 6 * r);
}

void VanDerPolField::eval(double, const double* y, double* dy, std::size_t batch) {
    for (std::size_t r = 0; r < batch; ++r) fn_(y + 2 * r, dy + 2 * r);
}

void ArenstorfField::eval(double, const double* y, double* dy, std::size_t batch) {
    for (std::size_t r = 0; r < batch; ++r) fn_(y + 4 * r, dy + 4 * r);
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
