// pybind11 glue for the thread pool and, privately, the dense-layer products
// (the tests compare the blocked kernels with the small-layer ones on any
// shape; the W6 benchmark times them against BLAS).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "eulerflow/dense.hpp"
#include "eulerflow/threadpool.hpp"

namespace py = pybind11;
using namespace eulerflow;

namespace {

template <class T>
using Arr = py::array_t<T, py::array::c_style | py::array::forcecast>;

std::string shape_of(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

void expect_shape(const py::array& a, const char* name, std::size_t rows, std::size_t cols) {
    const bool ok = cols == 0 ? a.ndim() == 1 && std::size_t(a.shape(0)) == rows
                              : a.ndim() == 2 && std::size_t(a.shape(0)) == rows &&
                                    std::size_t(a.shape(1)) == cols;
    if (!ok) {
        const std::string want = cols == 0 ? "(" + std::to_string(rows) + ",)"
                                           : "(" + std::to_string(rows) + ", " + std::to_string(cols) + ")";
        throw std::invalid_argument(std::string(name) + " must have shape " + want + ", got " + shape_of(a));
    }
}

// Forward and backward of one dense layer on feature-major arrays: W (n_out,
// n_in), b (n_out,), X (n_in, n), gY (n_out, n). Returns Y, gW, gb, gX.
// blocked: the blocked products on the thread pool, else the small-layer
// kernels on this thread.
template <class T>
py::tuple dense_products(Arr<T> W, Arr<T> b, Arr<T> X, Arr<T> gY, bool blocked) {
    if (W.ndim() != 2) throw std::invalid_argument("W must be 2-D, got shape " + shape_of(W));
    const std::size_t n_out = W.shape(0), n_in = W.shape(1);
    if (X.ndim() != 2) throw std::invalid_argument("X must be 2-D, got shape " + shape_of(X));
    const std::size_t n = X.shape(1);
    expect_shape(b, "b", n_out, 0);
    expect_shape(X, "X", n_in, n);
    expect_shape(gY, "gY", n_out, n);
    Arr<T> Y({n_out, n}), gW({n_out, n_in}), gb(n_out), gX({n_in, n});
    T *y = Y.mutable_data(), *gw = gW.mutable_data(), *gbp = gb.mutable_data(), *gx = gX.mutable_data();
    std::fill(gw, gw + n_out * n_in, T(0));
    std::fill(gbp, gbp + n_out, T(0));
    const T *w = W.data(), *bp = b.data(), *x = X.data(), *gy = gY.data();
    {
        py::gil_scoped_release release;  // the arrays are held by this frame
        if (blocked) {
            dense_blocked_forward(w, bp, n_in, n_out, x, y, n);
            dense_blocked_backward(w, n_in, n_out, x, gy, n, gw, gbp, gx);
        } else {
            dense_forward(w, bp, n_in, n_out, x, y, n);
            dense_backward(w, n_in, n_out, x, gy, n, gw, gbp, gx);
        }
    }
    return py::make_tuple(Y, gW, gb, gX);
}

// A Team of up to `want` threads making `calls` calls of `chunks` chunks, each
// chunk spinning `spin` times: its size, the size a team made inside it gets,
// how many times each chunk ran and the thread it ran on (hashes of
// std::thread ids, calls x chunks), and the caller's. For tests of the Team.
py::tuple team_probe(long long want, long long calls, long long chunks, long long spin) {
    if (want < 1 || calls < 1 || chunks < 1 || spin < 0)
        throw std::invalid_argument("want, calls and chunks must be positive, spin not negative");
    const std::size_t nc = std::size_t(calls) * std::size_t(chunks);
    std::vector<std::size_t> ids(nc, 0), runs(nc, 0);
    std::size_t size = 0, nested = 0;
    {
        py::gil_scoped_release nogil;
        Team team{std::size_t(want)};
        size = team.size();
        std::size_t call = 0;
        auto task = [&](std::size_t c) {
            const std::size_t k = call * std::size_t(chunks) + c;
            ids[k] = std::hash<std::thread::id>()(std::this_thread::get_id());
            ++runs[k];
            volatile std::size_t sink = 0;
            for (long long i = 0; i < spin; ++i) sink = sink + std::size_t(i);
        };
        for (; call < std::size_t(calls); ++call) team.run(std::size_t(chunks), task);
        Team inner{std::size_t(want)};
        nested = inner.size();
    }
    py::array_t<std::uint64_t> id_out({py::ssize_t(calls), py::ssize_t(chunks)});
    py::array_t<std::uint64_t> run_out({py::ssize_t(calls), py::ssize_t(chunks)});
    std::copy(ids.begin(), ids.end(), id_out.mutable_data());
    std::copy(runs.begin(), runs.end(), run_out.mutable_data());
    return py::make_tuple(size, nested, id_out, run_out,
                          std::hash<std::thread::id>()(std::this_thread::get_id()));
}

}  // namespace

void bind_dense(py::module_& m) {
    m.def("_team_probe", &team_probe, py::arg("want"), py::arg("calls"), py::arg("chunks"), py::arg("spin"));
    m.def("set_num_threads", [](long long n) {
        if (n < 1) throw std::invalid_argument("n must be positive, got " + std::to_string(n));
        set_num_threads(std::size_t(n));
    }, py::arg("n"), "Sets how many threads a native call may use.");
    m.def("get_num_threads", [] { return get_num_threads(); },
          "How many threads a native call may use.");
    m.def("available_cpus", [] { return available_cpus(); }, "The CPUs this process may run on.");
    m.def("_dense_products64", &dense_products<double>, py::arg("W"), py::arg("b"), py::arg("X"),
          py::arg("gY"), py::arg("blocked"));
    m.def("_dense_products32", &dense_products<float>, py::arg("W"), py::arg("b"), py::arg("X"),
          py::arg("gY"), py::arg("blocked"));
}
