// pybind11 glue for the mean-field particle engine: checks the particle
// arrays, copies them into the core's layout, releases the GIL for whole runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "eulerflow/meanfield.hpp"
#include "pynet.hpp"

namespace py = pybind11;
using namespace eulerflow;

namespace {

using CArray = py::array_t<double, py::array::c_style>;

// The particle arrays a (m,), w (m, d), b (m,): float64, C-contiguous, writable.
struct Particles {
    double *a, *w, *b;
    std::size_t m, d;
};

Particles particles(py::object a, py::object w, py::object b) {
    Particles p;
    p.a = eulerflow_bind::owned_buffer<double>(a, "a");
    p.w = eulerflow_bind::owned_buffer<double>(w, "w");
    p.b = eulerflow_bind::owned_buffer<double>(b, "b");
    py::array wa = w.cast<py::array>(), aa = a.cast<py::array>(), ba = b.cast<py::array>();
    if (wa.ndim() != 2 || aa.ndim() != 1 || ba.ndim() != 1 || aa.shape(0) != wa.shape(0) || ba.shape(0) != wa.shape(0)) {
        throw std::invalid_argument("particles must be a (m,), w (m, d), b (m,)");
    }
    p.m = std::size_t(wa.shape(0));
    p.d = std::size_t(wa.shape(1));
    return p;
}

MeanField load(const Particles& p) {
    MeanField net;
    net.load(p.a, p.w, p.b, p.m, p.d);
    return net;
}

std::size_t rows_of(const CArray& x, std::size_t d, const char* what) {
    if (x.ndim() != 2 || std::size_t(x.shape(1)) != d) {
        throw std::invalid_argument(std::string(what) + " must have shape (n, " + std::to_string(d) + ")");
    }
    return std::size_t(x.shape(0));
}

}  // namespace

void bind_meanfield(py::module_& m) {
    m.def("meanfield_forward", [](py::object a, py::object w, py::object b, CArray x) {
        const Particles p = particles(a, w, b);
        const std::size_t n = rows_of(x, p.d, "x");
        MeanField net = load(p);
        py::array_t<double> out(static_cast<py::ssize_t>(n));
        {
            py::gil_scoped_release release;
            MeanFieldWork wk;
            wk.reserve(net.m, net.d);
            meanfield_forward(net, x.data(), n, out.mutable_data(), wk);
        }
        return out;
    });
    m.def("meanfield_step", [](py::object a, py::object w, py::object b, CArray x, CArray y, double lr) {
        const Particles p = particles(a, w, b);
        const std::size_t n = rows_of(x, p.d, "X");
        if (std::size_t(y.size()) != n) throw std::invalid_argument("Y must have one value per row of X");
        MeanField net = load(p);
        double loss;
        {
            py::gil_scoped_release release;
            MeanFieldWork wk;
            wk.reserve(net.m, net.d);
            loss = meanfield_step(net, x.data(), y.data(), n, lr, wk);
            net.store(p.a, p.w, p.b);
        }
        return loss;
    });
    m.def("meanfield_fit_teacher", [](py::object a, py::object w, py::object b, py::object ta, py::object tw,
                                      py::object tb, std::int64_t steps, std::size_t batch, double lr,
                                      std::int64_t snapshot_every, std::uint64_t seed, CArray x_test, CArray y_test) {
        const Particles p = particles(a, w, b);
        const Particles q = particles(ta, tw, tb);
        if (p.d != q.d) throw std::invalid_argument("teacher and student dimensions differ");
        const std::size_t n_test = rows_of(x_test, p.d, "x_test");
        MeanField student = load(p), teacher = load(q);
        const std::int64_t k = snapshot_every > 0 ? 1 + steps / snapshot_every : 2;
        py::array_t<double> snaps({py::ssize_t(k), py::ssize_t(p.m), py::ssize_t(p.d + 2)});
        py::array_t<double> test_loss(static_cast<py::ssize_t>(k));
        MeanFieldRun run;
        {
            py::gil_scoped_release release;
            Rng rng(seed);
            run = meanfield_fit_teacher(student, teacher, steps, batch, lr, snapshot_every, rng, x_test.data(),
                                        y_test.data(), n_test, snaps.mutable_data(), test_loss.mutable_data());
            student.store(p.a, p.w, p.b);
        }
        return py::make_tuple(snaps, test_loss, run.steps_done, run.diverged, run.bad_step);
    });
    m.def("meanfield_fit", [](py::object a, py::object w, py::object b, CArray x, CArray y, double lr,
                              std::size_t batch, std::int64_t epochs, bool shuffle, std::uint64_t seed,
                              std::int64_t snapshot_every) {
        const Particles p = particles(a, w, b);
        const std::size_t n = rows_of(x, p.d, "X");
        if (std::size_t(y.size()) != n) throw std::invalid_argument("Y must have one value per row of X");
        MeanField net = load(p);
        const std::size_t nb = std::min(batch, n);
        const std::int64_t per_epoch = std::int64_t((n + nb - 1) / nb);
        if (epochs < 0 || epochs > std::int64_t(1) << 40 || per_epoch > (std::int64_t(1) << 62) / std::max<std::int64_t>(epochs, 1)) {
            throw std::invalid_argument("epochs x batches per epoch is too large (" + std::to_string(epochs) + " x " +
                                        std::to_string(per_epoch) + ")");
        }
        const std::int64_t total = epochs * per_epoch;
        const std::int64_t k = snapshot_every > 0 ? 1 + total / snapshot_every : 2;
        py::array_t<double> snaps({py::ssize_t(k), py::ssize_t(p.m), py::ssize_t(p.d + 2)});
        py::array_t<double> losses(static_cast<py::ssize_t>(k));
        MeanFieldRun run;
        {
            py::gil_scoped_release release;
            Rng rng(seed);
            run = meanfield_fit(net, x.data(), y.data(), n, lr, batch, epochs, shuffle, rng, snapshot_every,
                                snaps.mutable_data(), losses.mutable_data());
            net.store(p.a, p.w, p.b);
        }
        return py::make_tuple(snaps, losses, run.steps_done, run.diverged, run.bad_step);
    });
    m.def("normal_samples", [](std::uint64_t seed, std::size_t n) {
        py::array_t<double> out(static_cast<py::ssize_t>(n));
        Rng rng(seed);
        normal_fill(rng, out.mutable_data(), n);
        return out;
    });
}
