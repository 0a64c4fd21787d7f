// Internal to the bindings: the Python-facing network wrapper and array
// helpers, shared by the binding files of networks, ODEs and Neural ODEs.
#pragma once

#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <thread>
#include <memory>
#include <string>
#include <vector>

#include "eulerflow/fields.hpp"
#include "eulerflow/network.hpp"
#include "eulerflow/rk.hpp"
#include "eulerflow/train.hpp"

namespace py = pybind11;

namespace eulerflow_bind {

using namespace eulerflow;


// An integration's counts as the dict odeint's full_output returns.
inline py::dict ode_info_dict(const OdeInfo& info) {
    py::dict d;
    d["nfev"] = info.nfev;
    d["nsteps"] = info.nsteps;
    d["naccepted"] = info.naccepted;
    d["nrejected"] = info.nrejected;
    return d;
}

inline std::string shape_str(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) {
        s += std::to_string(a.shape(i));
        if (a.ndim() == 1 || i + 1 < a.ndim()) s += a.ndim() == 1 ? "," : ", ";
    }
    return s + ")";
}

// An array that must be exactly of dtype T, C-contiguous and writable: the
// core keeps raw pointers into it.
template <class T>
T* owned_buffer(const py::handle& obj, const char* what) {
    if (!py::isinstance<py::array>(obj)) throw py::type_error(std::string(what) + " must be a NumPy array");
    py::array a = py::reinterpret_borrow<py::array>(obj);
    if (!a.dtype().is(py::dtype::of<T>())) {
        throw py::type_error(std::string(what) + " must have dtype " +
                             std::string(py::str(py::dtype::of<T>())));
    }
    if (!(a.flags() & py::array::c_style) || !a.writeable()) {
        throw std::invalid_argument(std::string(what) + " must be a writable C-contiguous array");
    }
    return static_cast<T*>(a.mutable_data());
}

// fit's training data: X (n, n_in) and Y as targets (n, k) of dtype T or
// int64 class labels (n,); the arrays must outlive the returned view.
template <class T>
FitData<T> fit_data(const py::array_t<T, py::array::c_style>& X, const py::object& Y) {
    if (X.ndim() != 2) throw std::invalid_argument("X must be 2-D, got shape " + shape_str(X));
    FitData<T> data;
    data.X = X.data();
    data.n = std::size_t(X.shape(0));
    data.n_in = std::size_t(X.shape(1));
    py::array Yarr = Y.cast<py::array>();
    if (Yarr.ndim() == 1) {
        if (!Yarr.dtype().is(py::dtype::of<std::int64_t>()) || !(Yarr.flags() & py::array::c_style)) {
            throw py::type_error("class labels must be a contiguous int64 array");
        }
        data.labels = static_cast<const std::int64_t*>(Yarr.data());
    } else {
        if (!Yarr.dtype().is(py::dtype::of<T>()) || !(Yarr.flags() & py::array::c_style) || Yarr.ndim() != 2) {
            throw py::type_error("Y must be a contiguous 2-D array of the network's dtype");
        }
        data.Y = static_cast<const T*>(Yarr.data());
        data.k = std::size_t(Yarr.shape(1));
    }
    if (std::size_t(Yarr.shape(0)) != data.n) {
        throw std::invalid_argument("X has " + std::to_string(data.n) + " rows but Y has " +
                                    std::to_string(Yarr.shape(0)));
    }
    if (data.n == 0) throw std::invalid_argument("X is empty");
    return data;
}

// A read-only 2-D array of dtype T (any strides); returns element strides.
template <class T>
const T* view2d(const py::array& a, const char* what, std::ptrdiff_t& rs, std::ptrdiff_t& cs) {
    if (!a.dtype().is(py::dtype::of<T>())) {
        throw py::type_error(std::string(what) + " must have dtype " +
                             std::string(py::str(py::dtype::of<T>())));
    }
    if (a.ndim() != 2) {
        throw std::invalid_argument(std::string(what) + " must be 2-D (n, features), got shape " +
                                    shape_str(a));
    }
    if (a.strides(0) % py::ssize_t(sizeof(T)) || a.strides(1) % py::ssize_t(sizeof(T))) {
        throw std::invalid_argument(std::string(what) + " has strides that are not multiples of its item size");
    }
    rs = a.strides(0) / py::ssize_t(sizeof(T));
    cs = a.strides(1) / py::ssize_t(sizeof(T));
    return static_cast<const T*>(a.data());
}

template <class T>
py::array_t<T> rows_from_features(const T* src, std::size_t features, std::size_t n) {
    py::array_t<T> out({py::ssize_t(n), py::ssize_t(features)});
    T* dst = out.mutable_data();
    for (std::size_t f = 0; f < features; ++f) {
        for (std::size_t i = 0; i < n; ++i) dst[i * features + f] = src[f * n + i];
    }
    return out;
}

template <class T>
std::shared_ptr<MapFn<T>> make_map(py::object f, py::object df) {
    auto m = std::make_shared<MapFn<T>>();
    auto wrap = [](py::object fun, const char* name) {
        return [fun, name](const T* in, T* out, std::size_t rows, std::size_t n) {
            py::gil_scoped_acquire gil;
            py::array_t<T> a({py::ssize_t(rows), py::ssize_t(n)}, in);
            py::object r = fun(a.attr("T"));
            py::array raw = py::array::ensure(r);
            const char kind = raw ? raw.dtype().kind() : 'O';
            if (kind != 'f' && kind != 'i' && kind != 'u') {
                throw py::type_error(std::string("Map: ") + name + " must return real numbers, got " +
                                     (raw ? "dtype " + std::string(py::str(raw.dtype())) : "a non-array"));
            }
            py::array_t<T, py::array::forcecast> ra = py::array_t<T, py::array::forcecast>::ensure(raw);
            if (!ra || ra.ndim() != 2 || std::size_t(ra.shape(0)) != n || std::size_t(ra.shape(1)) != rows) {
                throw std::invalid_argument(std::string("Map: ") + name +
                                            " must return an array of the input's shape (" +
                                            std::to_string(n) + ", " + std::to_string(rows) + ")");
            }
            auto v = ra.template unchecked<2>();
            for (std::size_t fi = 0; fi < rows; ++fi) {
                for (std::size_t i = 0; i < n; ++i) out[fi * n + i] = v(i, fi);
            }
        };
    };
    m->f = wrap(f, "fun");
    m->df = wrap(df, "dfun");
    return m;
}

// spec items:
//   (0, W, b|None, gW, gb|None)      Dense
//   (1, act_code, p1, p2)            Activation
//   (2, fun, dfun)                   Map
//   (3, mode, h, [items...])         Block (nested sequence)
//   (4, l1, l2)                      Penalty (activity regularizer)
//   Dense may carry (..., bias_l1, bias_l2) after its arrays
template <class T>
void build_sequence(const py::list& spec, Sequence<T>& seq) {
    for (const py::handle& item_h : spec) {
        py::tuple item = py::reinterpret_borrow<py::tuple>(item_h);
        const int kind = item[0].cast<int>();
        Layer<T> L;
        L.kind = LayerKind(kind);
        switch (L.kind) {
            case LayerKind::Dense: {
                py::array W = item[1].cast<py::array>();
                if (W.ndim() != 2) throw std::invalid_argument("Dense weight must be 2-D");
                L.n_out = std::size_t(W.shape(0));
                L.n_in = std::size_t(W.shape(1));
                L.W = owned_buffer<T>(item[1], "Dense.W");
                L.gW = owned_buffer<T>(item[3], "Dense.W gradient");
                if (!item[2].is_none()) {
                    L.b = owned_buffer<T>(item[2], "Dense.b");
                    L.gb = owned_buffer<T>(item[4], "Dense.b gradient");
                }
                if (item.size() > 5) {
                    L.bias_l1 = item[5].cast<double>();
                    L.bias_l2 = item[6].cast<double>();
                }
                break;
            }
            case LayerKind::Activation:
                L.act.kind = activation_kind_from_int(item[1].cast<int>());
                L.act.p1 = item[2].cast<double>();
                L.act.p2 = item[3].cast<double>();
                break;
            case LayerKind::Map:
                L.map = make_map<T>(item[1], item[2]);
                break;
            case LayerKind::Block:
                L.mode = BlockMode(item[1].cast<int>());
                L.h = item[2].cast<double>();
                L.block = std::make_unique<Sequence<T>>();
                build_sequence<T>(item[3].cast<py::list>(), *L.block);
                break;
            case LayerKind::Penalty:
                L.pen_l1 = item[1].cast<double>();
                L.pen_l2 = item[2].cast<double>();
                break;
            default:
                throw std::invalid_argument("unknown layer kind " + std::to_string(kind));
        }
        seq.layers.push_back(std::move(L));
    }
}

// The per-epoch Python callback of a training loop, or an empty function for
// None. The callback may use the network being trained (e.g. evaluate it):
// the busy flag is lifted while it runs and must be free again when it returns.
template <class T>
EpochCallback epoch_callback(Net<T>& net, const py::object& callback) {
    if (callback.is_none()) return EpochCallback();
    return [&net, &callback](std::int64_t e, double l) {
        py::gil_scoped_acquire gil;
        net.busy.store(false);
        py::object r = callback(e, l);
        const bool stop = bool(py::bool_(r));
        // another thread may have taken the network meanwhile: wait for it to
        // finish (GIL released so it can) and take the network back
        bool expected = false;
        while (!net.busy.compare_exchange_weak(expected, true)) {
            expected = false;
            py::gil_scoped_release release;
            std::this_thread::yield();
        }
        return stop;
    };
}

template <class T>
class PyNet {
public:
    PyNet(py::list spec, py::list keepalive) : keep_(std::move(keepalive)) {
        build_sequence<T>(spec, net_.seq);
        net_.finalize();
    }

    // x: (n, width) of dtype T, any strides. Returns (n, n_out).
    py::array_t<T> forward(const py::array& x) {
        std::ptrdiff_t rs, cs;
        const T* p = view2d<T>(x, "x", rs, cs);
        const std::size_t n = std::size_t(x.shape(0)), w = std::size_t(x.shape(1));
        if (n == 0) throw std::invalid_argument("x is an empty batch, shape " + shape_str(x));
        Guard<T> guard(net_);
        const T* y;
        {
            py::gil_scoped_release release;
            y = net_.forward_rows(p, n, w, rs, cs);
        }
        return rows_from_features(y, net_.seq.n_out, n);
    }

    // The input and the output of every top-level layer of the last forward.
    py::list hidden_states(const py::array& x) {
        py::array_t<T> y = forward(x);
        const std::size_t n = net_.n_last;
        py::list out;
        out.append(rows_from_features(net_.xin.data(), net_.seq.n_in, n));
        for (const auto& L : net_.seq.layers) out.append(rows_from_features(L.out.data(), L.n_out, n));
        return out;
    }

    py::array_t<T> backward(const py::array& gy) {
        if (net_.n_last == 0) {
            throw std::invalid_argument("backward needs a forward first: call net(x) before net.backward(gy)");
        }
        std::ptrdiff_t rs, cs;
        const T* p = view2d<T>(gy, "gy", rs, cs);
        const std::size_t n = net_.n_last, k = net_.seq.n_out;
        if (std::size_t(gy.shape(0)) != n || std::size_t(gy.shape(1)) != k) {
            throw std::invalid_argument("gy must have the shape of the last output (" + std::to_string(n) +
                                        ", " + std::to_string(k) + "), got " + shape_str(gy));
        }
        Guard<T> guard(net_);
        std::vector<T> g(n * k);
        for (std::size_t j = 0; j < k; ++j)
            for (std::size_t i = 0; i < n; ++i) g[j * n + i] = p[std::ptrdiff_t(i) * rs + std::ptrdiff_t(j) * cs];
        const T* gx;
        {
            py::gil_scoped_release release;
            net_.zero_grad();
            gx = net_.seq.backward(g.data(), n, true);
        }
        return rows_from_features(gx, net_.seq.n_in, n);
    }

    // Returns (losses, accuracies, status).
    py::tuple fit(py::array_t<T, py::array::c_style> X, py::object Y, const FitConfig& cfg,
                  const OptimConfig& oc, OptimScalars& os, py::object buf1, py::object buf2,
                  py::object rng_state, py::object callback) {
        const FitData<T> data = fit_data<T>(X, Y);
        if (cfg.batch_size == 0) throw std::invalid_argument("batch_size must be positive");
        T* b1 = owned_buffer<T>(buf1, "optimizer state");
        T* b2 = owned_buffer<T>(buf2, "optimizer state");
        py::array_t<double> losses(cfg.epochs), accs(cfg.epochs);
        double* lp = losses.mutable_data();
        double* ap = accs.mutable_data();
        const EpochCallback on_epoch = epoch_callback(net_, callback);
        // the generator's state comes in and goes back out, so that a run split
        // into several calls (checkpoints) draws the same numbers as one call
        std::uint64_t* state = owned_buffer<std::uint64_t>(rng_state, "rng_state");
        if (py::cast<py::array>(rng_state).size() != 4) throw std::invalid_argument("rng_state must hold 4 uint64");
        Rng rng;
        rng.set_state(state);
        Guard<T> guard(net_);
        FitStatus st;
        {
            py::gil_scoped_release release;
            st = eulerflow::fit(net_, data, cfg, oc, os, b1, b2, rng, lp, ap, on_epoch);
        }
        rng.copy_state(state);
        return py::make_tuple(losses, accs, st);
    }

    // Returns (losses, index of the first non-finite loss or -1).
    py::tuple learn(py::array_t<T, py::array::c_style> X, py::array_t<T, py::array::c_style> Y, double lr) {
        if (X.ndim() != 2 || Y.ndim() != 2 || X.shape(0) != Y.shape(0)) {
            throw std::invalid_argument("facts must stack to X (k, n_in) and Y (k, n_out); got " +
                                        shape_str(X) + " and " + shape_str(Y));
        }
        const std::size_t count = std::size_t(X.shape(0));
        py::array_t<double> losses(count);
        double* lp = losses.mutable_data();
        Guard<T> guard(net_);
        std::int64_t bad;
        {
            py::gil_scoped_release release;
            bad = eulerflow::learn(net_, X.data(), Y.data(), count, std::size_t(X.shape(1)),
                                   std::size_t(Y.shape(1)), lr, lp);
        }
        return py::make_tuple(losses, bad);
    }

    std::size_t n_out() const { return net_.seq.n_out; }

    // This network as an autonomous field f(y) of dimension d (float64 only).
    Net<T>& native() { return net_; }

private:
    Net<T> net_;
    py::list keep_;  // the NumPy arrays and callables the core points into
};

}  // namespace eulerflow_bind
