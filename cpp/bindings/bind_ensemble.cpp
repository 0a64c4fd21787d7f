// pybind11 glue for ensembles: N members in lanes trained in one call with the
// GIL released; Python is called once per epoch, only for callbacks.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <vector>

#include "eulerflow/ensemble.hpp"
#include "eulerflow/train.hpp"
#include "pynet.hpp"

namespace py = pybind11;
using namespace eulerflow;

namespace {

using CArray = py::array_t<double, py::array::c_style>;

// ("dense", n_in, n_out, bias, w_off, b_off) or ("act", code, p1, p2, width)
std::vector<LaneLayer> lane_layers(const py::list& spec) {
    std::vector<LaneLayer> layers;
    for (const auto& h : spec) {
        const py::tuple item = py::reinterpret_borrow<py::tuple>(h);
        const std::string kind = item[0].cast<std::string>();
        LaneLayer L;
        if (kind == "dense") {
            L.dense = true;
            L.n_in = item[1].cast<std::size_t>();
            L.n_out = item[2].cast<std::size_t>();
            L.bias = item[3].cast<bool>();
            L.w_off = item[4].cast<std::size_t>();
            L.b_off = item[5].cast<std::size_t>();
        } else if (kind == "act") {
            L.dense = false;
            L.act.kind = activation_kind_from_int(item[1].cast<int>());
            L.act.p1 = item[2].cast<double>();
            L.act.p2 = item[3].cast<double>();
            L.n_in = L.n_out = item[4].cast<std::size_t>();
        } else {
            throw std::invalid_argument("unknown ensemble layer kind " + kind);
        }
        layers.push_back(std::move(L));
    }
    return layers;
}

py::tuple node_ensemble_fit_py(const py::list& spec, py::object params, std::size_t N, const std::string& method,
                               std::int64_t steps_per_interval, double step_size, CArray data, CArray t,
                               std::size_t window, std::size_t batch_size, std::int64_t epochs,
                               const OptimConfig& oc, OptimScalars& os, CArray lr, py::object buf1,
                               py::object buf2, py::array_t<std::uint64_t, py::array::c_style> seeds,
                               py::object callback) {
    double* P = eulerflow_bind::owned_buffer<double>(params, "parameters");
    double* b1 = eulerflow_bind::owned_buffer<double>(buf1, "optimizer state");
    double* b2 = eulerflow_bind::owned_buffer<double>(buf2, "optimizer state");
    const std::size_t total = std::size_t(py::cast<py::array>(params).size());
    if (N == 0 || total % N != 0) throw std::invalid_argument("parameters do not split into the members");
    if (std::size_t(lr.size()) != N || std::size_t(seeds.size()) != N) {
        throw std::invalid_argument("lr and seeds need one value per member");
    }
    LaneNet net(lane_layers(spec), N);
    const std::size_t d = net.n_in();
    if (net.n_out() != d) throw std::invalid_argument("the field must map d features to d");
    const std::size_t T = std::size_t(t.size());
    if (std::size_t(data.size()) != T * d) throw std::invalid_argument("data must be (len(t), d)");
    NodeEnsembleConfig cfg;
    cfg.tb = &tableau_by_name(method);
    cfg.steps_per_interval = steps_per_interval;
    cfg.step_size = step_size;
    cfg.window = window;
    cfg.batch_size = batch_size;
    cfg.epochs = epochs;
    std::vector<Rng> rngs;
    for (std::size_t l = 0; l < N; ++l) rngs.emplace_back(seeds.data()[l]);
    std::vector<double> losses(std::size_t(epochs) * N);
    EnsembleCallback on_epoch;
    if (!callback.is_none()) {
        on_epoch = [&callback, N](std::int64_t e, const double* l) {
            py::gil_scoped_acquire gil;
            py::array_t<double> arr{py::ssize_t(N)};
            std::copy(l, l + N, arr.mutable_data());
            return bool(py::bool_(callback(e, arr)));
        };
    }
    EnsembleStatus st;
    {
        py::gil_scoped_release release;
        st = node_ensemble_fit(net, P, total / N, N, data.data(), t.data(), T, d, cfg, oc, os, lr.data(), b1, b2,
                               rngs, losses.data(), on_epoch);
    }
    py::array_t<double> out({py::ssize_t(st.epochs_done), py::ssize_t(N)});
    std::copy(losses.begin(), losses.begin() + std::ptrdiff_t(std::size_t(st.epochs_done) * N), out.mutable_data());
    py::array_t<std::int64_t> bad{py::ssize_t(N)};
    std::copy(st.bad_epoch.begin(), st.bad_epoch.end(), bad.mutable_data());
    return py::make_tuple(out, st.stopped, bad, st.euler_window);
}

py::tuple ensemble_learn_py(const py::list& spec, py::object params, std::size_t N, CArray X, CArray Y,
                            CArray lr) {
    double* P = eulerflow_bind::owned_buffer<double>(params, "parameters");
    const std::size_t total = std::size_t(py::cast<py::array>(params).size());
    if (N == 0 || total % N != 0) throw std::invalid_argument("parameters do not split into the members");
    if (X.ndim() != 2 || Y.ndim() != 2 || X.shape(0) != Y.shape(0)) {
        throw std::invalid_argument("facts must be X (count, n_in) and Y (count, k)");
    }
    if (std::size_t(lr.size()) != N) throw std::invalid_argument("lr needs one value per member");
    LaneNet net(lane_layers(spec), N);
    const std::size_t count = std::size_t(X.shape(0));
    py::array_t<double> losses({py::ssize_t(count), py::ssize_t(N)});
    std::vector<std::int64_t> bad;
    {
        py::gil_scoped_release release;
        bad = ensemble_learn(net, P, total / N, N, X.data(), Y.data(), count, std::size_t(X.shape(1)),
                             std::size_t(Y.shape(1)), lr.data(), losses.mutable_data());
    }
    py::array_t<std::int64_t> bad_arr{py::ssize_t(N)};
    std::copy(bad.begin(), bad.end(), bad_arr.mutable_data());
    return py::make_tuple(losses, bad_arr);
}

// Network members trained by fit, each on one thread of a pool: returns the
// losses and accuracies (N, epochs), the epochs each ran and the epoch each
// diverged in (or -1).
py::tuple fit_members_py(const py::list& nets, CArray X, py::object Y, const FitConfig& cfg, const OptimConfig& oc,
                         CArray lr, py::array_t<std::uint64_t, py::array::c_style> seeds, std::size_t n_threads) {
    const std::size_t N = nets.size();
    if (N == 0) throw std::invalid_argument("an ensemble needs at least one member");
    if (std::size_t(lr.size()) != N || std::size_t(seeds.size()) != N) {
        throw std::invalid_argument("lr and seeds need one value per member");
    }
    const FitData<double> data = eulerflow_bind::fit_data<double>(X, Y);
    if (cfg.batch_size == 0) throw std::invalid_argument("batch_size must be positive");
    const std::size_t E = std::size_t(cfg.epochs);
    py::array_t<double> losses({py::ssize_t(N), py::ssize_t(E)}), accs({py::ssize_t(N), py::ssize_t(E)});
    std::vector<MemberFit> members(N);
    std::vector<std::unique_ptr<Guard<double>>> guards;  // a member listed twice is refused here
    for (std::size_t l = 0; l < N; ++l) {
        MemberFit& m = members[l];
        m.net = &nets[l].cast<eulerflow_bind::PyNet<double>&>().native();
        guards.push_back(std::make_unique<Guard<double>>(*m.net));
        m.oc = oc;
        m.oc.lr = lr.data()[l];
        m.rng = Rng(seeds.data()[l]);
        m.loss = losses.mutable_data() + l * E;
        m.acc = accs.mutable_data() + l * E;
    }
    {
        py::gil_scoped_release release;
        fit_members(members, data, cfg, n_threads);
    }
    py::array_t<std::int64_t> done{py::ssize_t(N)}, bad{py::ssize_t(N)};
    for (std::size_t l = 0; l < N; ++l) {
        done.mutable_data()[l] = members[l].status.epochs_done;
        bad.mutable_data()[l] = members[l].status.diverged ? members[l].status.bad_epoch : -1;
    }
    return py::make_tuple(losses, accs, done, bad);
}

}  // namespace

void bind_ensemble(py::module_& m) {
    m.def("fit_members", &fit_members_py, py::arg("nets"), py::arg("X"), py::arg("Y"), py::arg("config"),
          py::arg("optim"), py::arg("lr"), py::arg("seeds"), py::arg("threads"));
    m.def("ensemble_learn", &ensemble_learn_py, py::arg("layers"), py::arg("params"), py::arg("members"),
          py::arg("X"), py::arg("Y"), py::arg("lr"));
    m.def("node_ensemble_fit", &node_ensemble_fit_py, py::arg("layers"), py::arg("params"), py::arg("members"),
          py::arg("method"), py::arg("steps_per_interval"), py::arg("step_size"), py::arg("data"), py::arg("t"),
          py::arg("window"), py::arg("batch_size"), py::arg("epochs"), py::arg("optim"), py::arg("scalars"),
          py::arg("lr"), py::arg("buf1"), py::arg("buf2"), py::arg("seeds"), py::arg("callback"));
    m.def("_set_lanes_euler_window", &set_lanes_euler_window, py::arg("enabled"),
          "Whether node_ensemble_fit runs Euler windows on small fields in one kernel (tests compare "
          "it with the general sweep). Not for use while a fit runs.");
    m.def("_lanes_euler_window_enabled", &lanes_euler_window_enabled);
}
