#include "eulerflow/network.hpp"

#include <algorithm>
#include <cmath>

#include "eulerflow/threadpool.hpp"

namespace eulerflow {

namespace {

std::string width_error(std::size_t expected, std::size_t got) {
    return "layer expects " + std::to_string(expected) + " input features but receives " +
           std::to_string(got);
}

// An element-wise kernel (activations) over count values: in pieces across
// the pool for large arrays (parallel_range: the same bits).
template <class F>
void elementwise(std::size_t count, F f) {
    parallel_range(count, kThreadedElements, f);
}

}  // namespace

template <class T>
void Sequence<T>::resolve(std::size_t width) {
    n_in = width;
    for (auto& L : layers) {
        switch (L.kind) {
            case LayerKind::Dense:
                if (L.n_in != width) throw std::invalid_argument(width_error(L.n_in, width));
                break;
            case LayerKind::Activation:
            case LayerKind::Map:
            case LayerKind::Penalty:
                L.n_in = L.n_out = width;
                break;
            case LayerKind::Block:
                L.block->resolve(width);
                L.n_in = width;
                L.n_out = L.block->n_out;
                if (L.mode != BlockMode::Plain && L.n_out != width) {
                    throw std::invalid_argument("residual block maps " + std::to_string(width) +
                                                " features to " + std::to_string(L.n_out) +
                                                "; a residual needs equal widths");
                }
                break;
        }
        width = L.n_out;
    }
    n_out = width;
    capacity = 0;  // widths may have changed: buffers are resized on the next reserve
}

template <class T>
std::size_t Sequence<T>::max_width() const {
    std::size_t w = n_in;
    for (const auto& L : layers) w = std::max({w, L.n_in, L.n_out});
    return w;
}

template <class T>
void Sequence<T>::reserve(std::size_t n) {
    if (n <= capacity) return;
    for (auto& L : layers) {
        L.out.assign(L.n_out * n, T(0));
        if (L.kind == LayerKind::Map || L.kind == LayerKind::Block) L.scratch.assign(L.n_out * n, T(0));
        if (L.kind == LayerKind::Activation) L.deriv.assign(L.n_out * n, T(0));
        L.has_deriv = false;
        if (L.kind == LayerKind::Block) L.block->reserve(n);
    }
    const std::size_t w = max_width();
    grad_a.assign(w * n, T(0));
    grad_b.assign(w * n, T(0));
    capacity = n;
}

template <class T>
const T* Sequence<T>::forward(const T* x, std::size_t n, bool keep_deriv) {
    for (auto& L : layers) {
        L.in = x;
        T* y = L.out.data();
        const std::size_t count = L.n_out * n;
        switch (L.kind) {
            case LayerKind::Dense:
                dense_layer_forward(L.W, L.b, L.n_in, L.n_out, x, y, n);
                break;
            case LayerKind::Activation:
                if (keep_deriv) {
                    T* d = L.deriv.data();
                    elementwise(count, [&](std::size_t i, std::size_t m) {
                        activation_forward_deriv(L.act, x + i, y + i, d + i, m);
                    });
                } else {
                    elementwise(count, [&](std::size_t i, std::size_t m) {
                        activation_forward(L.act, x + i, y + i, m);
                    });
                }
                L.has_deriv = keep_deriv;
                break;
            case LayerKind::Map:
                L.map->f(x, y, L.n_out, n);
                break;
            case LayerKind::Penalty: {
                std::copy(x, x + count, y);
                double v = 0.0;  // summed apart from the copy: see squared_error in loss.hpp
                for (std::size_t i = 0; i < count; ++i) {
                    v += L.pen_l1 * std::fabs(double(x[i])) + L.pen_l2 * double(x[i]) * double(x[i]);
                }
                L.pen_value = v / double(n);
                L.pen_active = keep_deriv;
                break;
            }
            case LayerKind::Block: {
                const T* f = L.block->forward(x, n, keep_deriv);
                const T cf = T(L.coef_f()), cx = T(L.coef_x());
                elementwise(count, [&](std::size_t i0, std::size_t m) {
                    if (L.mode == BlockMode::Plain) {
                        std::copy(f + i0, f + i0 + m, y + i0);
                    } else {
                        for (std::size_t i = i0; i < i0 + m; ++i) y[i] = cf * f[i] + cx * x[i];
                    }
                });
                break;
            }
        }
        x = y;
    }
    return x;
}

template <class T>
const T* Sequence<T>::backward(const T* gy, std::size_t n, bool need_gx) {
    T* bufs[2] = {grad_a.data(), grad_b.data()};
    int which = 0;
    for (std::size_t li = layers.size(); li-- > 0;) {
        Layer<T>& L = layers[li];
        const bool want = need_gx || li > 0;
        T* gx = want ? bufs[which] : nullptr;
        const std::size_t count = L.n_in * n;
        switch (L.kind) {
            case LayerKind::Dense:
                dense_layer_backward(L.W, L.n_in, L.n_out, L.in, gy, n, L.gW, L.gb, gx);
                break;
            case LayerKind::Activation:
                if (!want) break;
                if (L.has_deriv) {
                    const T* d = L.deriv.data();
                    elementwise(count, [&](std::size_t i, std::size_t m) {
                        multiply(d + i, gy + i, gx + i, m);
                    });
                } else {
                    const T *in = L.in, *out = L.out.data();
                    elementwise(count, [&](std::size_t i, std::size_t m) {
                        activation_backward(L.act, in + i, out + i, gy + i, gx + i, m);
                    });
                }
                break;
            case LayerKind::Map:
                if (want) {
                    T* d = L.scratch.data();
                    L.map->df(L.in, d, L.n_in, n);
                    for (std::size_t i = 0; i < count; ++i) gx[i] = d[i] * gy[i];
                }
                break;
            case LayerKind::Penalty:
                if (!want) break;
                if (L.pen_active) {
                    const double c1 = L.pen_l1 / double(n), c2 = 2.0 * L.pen_l2 / double(n);
                    for (std::size_t i = 0; i < count; ++i) {
                        const double v = double(L.in[i]);
                        const double sign = v > 0.0 ? 1.0 : (v < 0.0 ? -1.0 : 0.0);
                        gx[i] = T(double(gy[i]) + c1 * sign + c2 * v);
                    }
                } else {
                    std::copy(gy, gy + count, gx);
                }
                break;
            case LayerKind::Block: {
                const T cf = T(L.coef_f()), cx = T(L.coef_x());
                T* scaled = L.scratch.data();
                const std::size_t out_count = L.n_out * n;
                elementwise(out_count, [&](std::size_t i0, std::size_t m) {
                    for (std::size_t i = i0; i < i0 + m; ++i) scaled[i] = cf * gy[i];
                });
                const T* gblk = L.block->backward(scaled, n, want);
                if (want) {
                    elementwise(count, [&](std::size_t i0, std::size_t m) {
                        if (L.mode == BlockMode::Plain) {
                            std::copy(gblk + i0, gblk + i0 + m, gx + i0);
                        } else {
                            for (std::size_t i = i0; i < i0 + m; ++i) gx[i] = gblk[i] + cx * gy[i];
                        }
                    });
                }
                break;
            }
        }
        gy = gx;
        which ^= 1;
    }
    return need_gx ? gy : nullptr;
}

template <class T>
void Sequence<T>::collect(std::vector<ParamRef<T>>& out) const {
    for (const auto& L : layers) {
        if (L.kind == LayerKind::Dense) {
            out.push_back({L.W, L.gW, L.n_in * L.n_out, true, 0.0, 0.0});
            if (L.b) out.push_back({L.b, L.gb, L.n_out, false, L.bias_l1, L.bias_l2});
        } else if (L.kind == LayerKind::Block) {
            L.block->collect(out);
        }
    }
}

template <class T>
double Sequence<T>::penalty() const {
    double v = 0.0;
    for (const auto& L : layers) {
        if (L.kind == LayerKind::Penalty && L.pen_active) v += L.pen_value;
        if (L.kind == LayerKind::Block) v += L.block->penalty();
    }
    return v;
}

template <class T>
void Net<T>::finalize() {
    std::vector<ParamRef<T>> all;
    seq.collect(all);
    params.clear();
    for (const auto& p : all) {
        bool seen = false;
        for (const auto& q : params) seen = seen || q.p == p.p;
        if (!seen) params.push_back(p);
    }
}

template <class T>
void Net<T>::zero_grad() {
    parallel_pieces(
        params.size(), [&](std::size_t a) { return params[a].size; }, kThreadedElements,
        [&](std::size_t a, std::size_t lo, std::size_t n) { std::fill(params[a].g + lo, params[a].g + lo + n, T(0)); });
}

template <class T>
void Net<T>::reserve(std::size_t width, std::size_t n) {
    if (width != width_last) {
        seq.resolve(width);
        width_last = width;
        n_last = 0;
    }
    seq.reserve(n);
    if (xin.size() < width * n) xin.assign(width * n, T(0));
}

template <class T>
const T* Net<T>::forward_rows(const T* x, std::size_t n, std::size_t width, std::ptrdiff_t rs,
                              std::ptrdiff_t cs) {
    reserve(width, n);
    T* dst = xin.data();
    for (std::size_t f = 0; f < width; ++f) {
        for (std::size_t i = 0; i < n; ++i) dst[f * n + i] = x[std::ptrdiff_t(i) * rs + std::ptrdiff_t(f) * cs];
    }
    const T* y = seq.forward(dst, n);
    n_last = n;
    return y;
}

template struct Sequence<double>;
template struct Sequence<float>;
template struct Net<double>;
template struct Net<float>;

}  // namespace eulerflow
