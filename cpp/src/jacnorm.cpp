#include "eulerflow/jacnorm.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace eulerflow {

namespace {

// act'(x) and act''(x), matching the network's derivative conventions
// (relu'(0) = 0; softplus linear above its threshold).
void act_derivatives(const ActParams& a, double x, double* d1, double* d2) {
    switch (a.kind) {
        case ActKind::Identity: *d1 = 1.0; *d2 = 0.0; return;
        case ActKind::Relu: *d1 = x > 0.0 ? 1.0 : 0.0; *d2 = 0.0; return;
        case ActKind::LeakyRelu: *d1 = x > 0.0 ? 1.0 : a.p1; *d2 = 0.0; return;
        case ActKind::Elu: {
            const double e = x > 0.0 ? 0.0 : a.p1 * std::exp(x);
            *d1 = x > 0.0 ? 1.0 : e;
            *d2 = e;
            return;
        }
        case ActKind::Tanh: {
            const double y = std::tanh(x);
            *d1 = 1.0 - y * y;
            *d2 = -2.0 * y * (1.0 - y * y);
            return;
        }
        case ActKind::Atan: {
            const double q = 1.0 / (1.0 + x * x);
            *d1 = q;
            *d2 = -2.0 * x * q * q;
            return;
        }
        case ActKind::Sigmoid: {
            const double s = 1.0 / (1.0 + std::exp(-x));
            *d1 = s * (1.0 - s);
            *d2 = s * (1.0 - s) * (1.0 - 2.0 * s);
            return;
        }
        case ActKind::Softplus: {
            const double beta = a.p1, bx = beta * x;
            if (bx > a.p2) {
                *d1 = 1.0;
                *d2 = 0.0;
                return;
            }
            const double s = 1.0 / (1.0 + std::exp(-bx));
            *d1 = s;
            *d2 = beta * s * (1.0 - s);
            return;
        }
    }
    *d1 = 1.0;
    *d2 = 0.0;
}

}  // namespace

JacobianNorm::JacobianNorm(Sequence<double>& seq, std::size_t d) : seq_(seq), d_(d) {
    std::size_t width = d, total = 0, widest = d;
    for (const auto& L : seq_.layers) {
        if (L.kind != LayerKind::Dense && L.kind != LayerKind::Activation) {
            throw std::invalid_argument(
                "the Jacobian penalty needs a field made of Dense and activation layers only "
                "(it differentiates the Jacobian exactly: residual blocks, Python maps and "
                "activity penalties are not supported)");
        }
        off_.push_back(total);
        total += width;
        width = L.kind == LayerKind::Dense ? L.n_out : width;
        widest = std::max(widest, width);
    }
    if (width != d) throw std::invalid_argument("the Jacobian penalty needs a field mapping d features to d");
    off_.push_back(total);
    total += width;
    xs_.assign(total, 0.0);
    ts_.assign(total * d, 0.0);
    xb_.assign(widest, 0.0);
    xb2_.assign(widest, 0.0);
    tb_.assign(widest * d, 0.0);
    tb2_.assign(widest * d, 0.0);
}

double JacobianNorm::eval(const double* z, double w, double* gz) {
    const std::size_t d = d_, nl = seq_.layers.size();
    // forward: x_{l+1} = layer(x_l), T_{l+1} = dlayer(x_l) T_l, from T_0 = I
    std::copy(z, z + d, xs_.begin());
    std::fill(ts_.begin(), ts_.begin() + std::ptrdiff_t(d * d), 0.0);
    for (std::size_t i = 0; i < d; ++i) ts_[i * d + i] = 1.0;
    std::size_t width = d;
    for (std::size_t l = 0; l < nl; ++l) {
        const Layer<double>& L = seq_.layers[l];
        const double* x = xs_.data() + off_[l];
        const double* T = ts_.data() + off_[l] * d;
        double* xn = xs_.data() + off_[l + 1];
        double* Tn = ts_.data() + off_[l + 1] * d;
        if (L.kind == LayerKind::Dense) {
            for (std::size_t o = 0; o < L.n_out; ++o) {
                const double* Wo = L.W + o * L.n_in;
                double v = L.b ? L.b[o] : 0.0;
                for (std::size_t i = 0; i < L.n_in; ++i) v += Wo[i] * x[i];
                xn[o] = v;
                double* To = Tn + o * d;
                std::fill(To, To + d, 0.0);
                for (std::size_t i = 0; i < L.n_in; ++i)
                    for (std::size_t j = 0; j < d; ++j) To[j] += Wo[i] * T[i * d + j];
            }
            width = L.n_out;
        } else {
            activation_forward(L.act, x, xn, width);
            for (std::size_t k = 0; k < width; ++k) {
                double d1, d2;
                act_derivatives(L.act, x[k], &d1, &d2);
                for (std::size_t j = 0; j < d; ++j) Tn[k * d + j] = d1 * T[k * d + j];
            }
        }
    }
    const double* TL = ts_.data() + off_[nl] * d;
    double P = 0.0;
    for (std::size_t i = 0; i < d * d; ++i) P += TL[i] * TL[i];
    if (gz == nullptr) return P;

    // reverse: cotangents xb of x and tb of T, from tb_L = 2 w T_L, xb_L = 0
    double* xb = xb_.data();
    double* tb = tb_.data();
    double* xb_in = xb2_.data();
    double* tb_in = tb2_.data();
    std::fill(xb, xb + d, 0.0);
    for (std::size_t i = 0; i < d * d; ++i) tb[i] = 2.0 * w * TL[i];
    for (std::size_t l = nl; l-- > 0;) {
        const Layer<double>& L = seq_.layers[l];
        const double* x = xs_.data() + off_[l];
        const double* T = ts_.data() + off_[l] * d;
        if (L.kind == LayerKind::Dense) {
            const std::size_t ni = L.n_in, no = L.n_out;
            std::fill(xb_in, xb_in + ni, 0.0);
            std::fill(tb_in, tb_in + ni * d, 0.0);
            for (std::size_t o = 0; o < no; ++o) {
                const double* Wo = L.W + o * ni;
                double* gWo = L.gW + o * ni;
                const double* tbo = tb + o * d;
                if (L.gb) L.gb[o] += xb[o];
                for (std::size_t i = 0; i < ni; ++i) {
                    double g = xb[o] * x[i];
                    for (std::size_t j = 0; j < d; ++j) g += tbo[j] * T[i * d + j];
                    gWo[i] += g;
                    xb_in[i] += Wo[i] * xb[o];
                    for (std::size_t j = 0; j < d; ++j) tb_in[i * d + j] += Wo[i] * tbo[j];
                }
            }
        } else {
            const std::size_t n = L.n_in;
            for (std::size_t k = 0; k < n; ++k) {
                double d1, d2;
                act_derivatives(L.act, x[k], &d1, &d2);
                double s = 0.0;
                for (std::size_t j = 0; j < d; ++j) s += T[k * d + j] * tb[k * d + j];
                xb_in[k] = d1 * xb[k] + d2 * s;
                for (std::size_t j = 0; j < d; ++j) tb_in[k * d + j] = d1 * tb[k * d + j];
            }
        }
        std::swap(xb, xb_in);
        std::swap(tb, tb_in);
    }
    for (std::size_t i = 0; i < d; ++i) gz[i] += xb[i];
    return P;
}

}  // namespace eulerflow
