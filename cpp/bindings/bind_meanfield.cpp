// pybind11 glue for the mean-field particle engine: checks the particle
// arrays, copies them into the core's layout, releases the GIL for whole runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

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

// Rows of snapshots a run of `steps` steps writes: the start, then one every
// `every` steps (0: the start and the end).
std::int64_t snapshot_rows(std::int64_t steps, std::int64_t every) { return every > 0 ? 1 + steps / every : 2; }

// The steps of fit over n samples: epochs x batches per epoch, checked.
std::int64_t fit_steps(std::size_t n, std::size_t batch, std::int64_t epochs) {
    const std::size_t nb = std::min(batch, n);
    if (nb == 0) throw std::invalid_argument("batch and the number of samples must be positive");
    const std::int64_t per_epoch = std::int64_t((n + nb - 1) / nb);
    if (epochs < 0 || epochs > std::int64_t(1) << 40 || per_epoch > (std::int64_t(1) << 62) / std::max<std::int64_t>(epochs, 1)) {
        throw std::invalid_argument("epochs x batches per epoch is too large (" + std::to_string(epochs) + " x " +
                                    std::to_string(per_epoch) + ")");
    }
    return epochs * per_epoch;
}

// A run's records: snapshots (k, m, d + 2) and the loss at each, allocated
// before the GIL is released.
struct RunArrays {
    py::array_t<double> snaps, loss;
    RunArrays(std::int64_t k, std::size_t m, std::size_t d)
        : snaps({py::ssize_t(k), py::ssize_t(m), py::ssize_t(d + 2)}), loss(static_cast<py::ssize_t>(k)) {}
};

// (snapshots, losses, steps done, diverged, bad step, snapshots written)
py::tuple run_result(const RunArrays& out, const MeanFieldRun& run) {
    return py::make_tuple(out.snaps, out.loss, run.steps_done, run.diverged, run.bad_step, run.snapshots_done);
}

// The members of an ensemble: particles (a, w, b) each, the given rates and
// seeds, room for their records; teachers/tests (fit_teacher only) by index
// into the distinct ones given.
std::vector<MeanFieldMember> members_of(const py::list& students, const CArray& lr,
                                        const py::array_t<std::uint64_t, py::array::c_style>& seeds,
                                        std::int64_t rows, std::vector<RunArrays>& out,
                                        std::vector<Particles>& where) {
    const std::size_t N = students.size();
    if (N == 0) throw std::invalid_argument("an ensemble needs at least one member");
    if (std::size_t(lr.size()) != N || std::size_t(seeds.size()) != N) {
        throw std::invalid_argument("lr and seeds need one value per member");
    }
    std::vector<MeanFieldMember> members(N);
    for (std::size_t l = 0; l < N; ++l) {
        const py::tuple abw = students[l].cast<py::tuple>();
        where.push_back(particles(abw[0], abw[1], abw[2]));
        members[l].net = load(where.back());
        members[l].lr = lr.data()[l];
        members[l].seed = seeds.data()[l];
        out.emplace_back(rows, where.back().m, where.back().d);
        members[l].snapshots = out.back().snaps.mutable_data();
        members[l].loss = out.back().loss.mutable_data();
    }
    return members;
}

py::list members_result(const std::vector<MeanFieldMember>& members, const std::vector<RunArrays>& out) {
    py::list result;
    for (std::size_t l = 0; l < members.size(); ++l) result.append(run_result(out[l], members[l].run));
    return result;
}

void store_members(const std::vector<MeanFieldMember>& members, const std::vector<Particles>& where) {
    for (std::size_t l = 0; l < members.size(); ++l) members[l].net.store(where[l].a, where[l].w, where[l].b);
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
                                      std::int64_t snapshot_every, std::uint64_t seed, CArray x_test, CArray y_test,
                                      std::optional<CArray> inputs) {
        const Particles p = particles(a, w, b);
        const Particles q = particles(ta, tw, tb);
        if (p.d != q.d) throw std::invalid_argument("teacher and student dimensions differ");
        const std::size_t n_test = rows_of(x_test, p.d, "x_test");
        if (inputs && rows_of(*inputs, p.d, "x") != std::size_t(steps) * batch)
            throw std::invalid_argument("x must have steps x batch rows");
        MeanField student = load(p), teacher = load(q);
        RunArrays out(snapshot_rows(steps, snapshot_every), p.m, p.d);
        MeanFieldRun run;
        {
            py::gil_scoped_release release;
            Rng rng(seed);
            run = meanfield_fit_teacher(student, teacher, steps, batch, lr, snapshot_every, rng, x_test.data(),
                                        y_test.data(), n_test, out.snaps.mutable_data(), out.loss.mutable_data(),
                                        nullptr, inputs ? inputs->data() : nullptr);
            student.store(p.a, p.w, p.b);
        }
        return run_result(out, run);
    });
    m.def("meanfield_fit", [](py::object a, py::object w, py::object b, CArray x, CArray y, double lr,
                              std::size_t batch, std::int64_t epochs, bool shuffle, std::uint64_t seed,
                              std::int64_t snapshot_every) {
        const Particles p = particles(a, w, b);
        const std::size_t n = rows_of(x, p.d, "X");
        if (std::size_t(y.size()) != n) throw std::invalid_argument("Y must have one value per row of X");
        MeanField net = load(p);
        RunArrays out(snapshot_rows(fit_steps(n, batch, epochs), snapshot_every), p.m, p.d);
        MeanFieldRun run;
        {
            py::gil_scoped_release release;
            Rng rng(seed);
            run = meanfield_fit(net, x.data(), y.data(), n, lr, batch, epochs, shuffle, rng, snapshot_every,
                                out.snaps.mutable_data(), out.loss.mutable_data());
            net.store(p.a, p.w, p.b);
        }
        return run_result(out, run);
    });
    // Ensembles: every member's run in one call, GIL released, a list of the
    // members' results as the single runs return them. Member l learns from
    // teachers[teacher_index[l]] and is tested on tests[test_index[l]] (x, y).
    m.def("meanfield_fit_teacher_members", [](const py::list& students, const py::list& teachers,
                                              py::array_t<std::int64_t, py::array::c_style> teacher_index,
                                              const py::list& tests,
                                              py::array_t<std::int64_t, py::array::c_style> test_index,
                                              std::int64_t steps, std::size_t batch, CArray lr,
                                              std::int64_t snapshot_every,
                                              py::array_t<std::uint64_t, py::array::c_style> seeds,
                                              std::size_t threads) {
        std::vector<RunArrays> out;
        std::vector<Particles> where;
        std::vector<MeanFieldMember> members =
            members_of(students, lr, seeds, snapshot_rows(steps, snapshot_every), out, where);
        const std::size_t N = members.size();
        if (std::size_t(teacher_index.size()) != N || std::size_t(test_index.size()) != N) {
            throw std::invalid_argument("teacher_index and test_index need one value per member");
        }
        std::vector<MeanField> teacher_nets;
        for (const auto& t : teachers) {
            const py::tuple abw = t.cast<py::tuple>();
            teacher_nets.push_back(load(particles(abw[0], abw[1], abw[2])));
        }
        std::vector<std::pair<CArray, CArray>> test_sets;
        for (const auto& t : tests) {
            const py::tuple xy = t.cast<py::tuple>();
            test_sets.emplace_back(xy[0].cast<CArray>(), xy[1].cast<CArray>());
        }
        for (std::size_t l = 0; l < N; ++l) {
            const std::int64_t ti = teacher_index.data()[l], si = test_index.data()[l];
            if (ti < 0 || std::size_t(ti) >= teacher_nets.size() || si < 0 || std::size_t(si) >= test_sets.size()) {
                throw std::invalid_argument("member " + std::to_string(l) + ": teacher or test index out of range");
            }
            MeanFieldMember& mb = members[l];
            mb.teacher = &teacher_nets[std::size_t(ti)];
            const auto& [xt, yt] = test_sets[std::size_t(si)];
            if (mb.teacher->d != mb.net.d) {
                throw std::invalid_argument("member " + std::to_string(l) + ": teacher and student dimensions differ");
            }
            mb.n_test = rows_of(xt, mb.net.d, "x_test");
            if (std::size_t(yt.size()) != mb.n_test) throw std::invalid_argument("y_test must match x_test");
            mb.x_test = xt.data();
            mb.y_test = yt.data();
        }
        {
            py::gil_scoped_release release;
            meanfield_fit_teacher_members(members, steps, batch, snapshot_every, threads);
            store_members(members, where);
        }
        return members_result(members, out);
    });
    m.def("meanfield_fit_members", [](const py::list& students, CArray x, CArray y, CArray lr, std::size_t batch,
                                      std::int64_t epochs, bool shuffle,
                                      py::array_t<std::uint64_t, py::array::c_style> seeds,
                                      std::int64_t snapshot_every, std::size_t threads) {
        if (x.ndim() != 2) throw std::invalid_argument("X must have shape (n, d)");
        const std::size_t n = std::size_t(x.shape(0));
        if (std::size_t(y.size()) != n) throw std::invalid_argument("Y must have one value per row of X");
        std::vector<RunArrays> out;
        std::vector<Particles> where;
        std::vector<MeanFieldMember> members =
            members_of(students, lr, seeds, snapshot_rows(fit_steps(n, batch, epochs), snapshot_every), out, where);
        for (const MeanFieldMember& mb : members) rows_of(x, mb.net.d, "X");
        {
            py::gil_scoped_release release;
            meanfield_fit_members(members, x.data(), y.data(), n, batch, epochs, shuffle, snapshot_every, threads);
            store_members(members, where);
        }
        return members_result(members, out);
    });
    m.def("normal_samples", [](std::uint64_t seed, std::size_t n) {
        py::array_t<double> out(static_cast<py::ssize_t>(n));
        Rng rng(seed);
        normal_fill(rng, out.mutable_data(), n);
        return out;
    });
    // the sampler's arithmetic on given uniforms (tests)
    m.def("_box_muller", [](py::array_t<double, py::array::c_style | py::array::forcecast> u1,
                            py::array_t<double, py::array::c_style | py::array::forcecast> u2) {
        if (u1.ndim() != 1 || u2.ndim() != 1 || u1.size() != u2.size())
            throw std::invalid_argument("u1 and u2 must be 1-d arrays of one length");
        for (py::ssize_t i = 0; i < u1.size(); ++i)
            if (!(u1.data()[i] >= 0x1p-1022 && u1.data()[i] <= 1.0 && u2.data()[i] >= 0.0 && u2.data()[i] < 1.0))
                throw std::invalid_argument("u1 must lie in [2^-1022, 1] and u2 in [0, 1)");
        py::array_t<double> out(2 * u1.size());
        box_muller(u1.data(), u2.data(), std::size_t(u1.size()), out.mutable_data());
        return out;
    });
}
