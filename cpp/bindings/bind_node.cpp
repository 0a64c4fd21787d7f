// pybind11 glue for Neural ODEs: trajectories, window gradients and the
// training loop over windows of a time series, with the GIL released.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>

#include "eulerflow/node.hpp"
#include "pynet.hpp"

namespace py = pybind11;
using namespace eulerflow;
using eulerflow_bind::PyNet;

namespace {

using CArray = py::array_t<double, py::array::c_style>;

class PyNode {
public:
    PyNode(PyNet<double>& net, std::size_t d, const std::string& method, std::int64_t steps_per_interval,
           double step_size, double rtol, double atol, std::int64_t max_steps)
        : net_(net.native()), solver_(make_solver(method, steps_per_interval, step_size, rtol, atol, max_steps)),
          node_(net_, d, solver_), d_(d) {}

    py::tuple trajectory(CArray z0, std::size_t batch, CArray t) {
        check_size(z0, batch * d_, "z0");
        const std::size_t nt = std::size_t(t.size());
        py::array_t<double> out({py::ssize_t(nt), py::ssize_t(batch * d_)});
        OdeInfo info;
        Guard<double> guard(net_);
        {
            py::gil_scoped_release release;
            node_.trajectory(z0.data(), batch, t.data(), nt, out.mutable_data(), info);
        }
        net_.n_last = 0;
        return py::make_tuple(out, eulerflow_bind::ode_info_dict(info));
    }

    py::tuple window_gradient(CArray z0, CArray target, CArray t, int how) {
        check_size(z0, d_, "z0");
        check_size(target, d_, "target");
        py::array_t<double> grad(py::ssize_t(node_.n_params()));
        std::fill(grad.mutable_data(), grad.mutable_data() + grad.size(), 0.0);
        double L;
        Guard<double> guard(net_);
        {
            py::gil_scoped_release release;
            L = node_.window_gradient(z0.data(), target.data(), t.data(), std::size_t(t.size()),
                                      NodeGradient(how), 1.0, grad.mutable_data());
        }
        net_.n_last = 0;
        return py::make_tuple(L, grad, node_.workspace_bytes(), node_.last_penalty(), node_.last_nfev());
    }

    py::tuple fit(CArray data, CArray t, std::size_t window, std::size_t batch_size, std::int64_t epochs, int how,
                  const OptimConfig& oc, OptimScalars& os, py::object buf1, py::object buf2, std::uint64_t seed,
                  py::object callback) {
        const std::size_t T = std::size_t(t.size());
        check_size(data, T * d_, "data");
        double* b1 = eulerflow_bind::owned_buffer<double>(buf1, "optimizer state");
        double* b2 = eulerflow_bind::owned_buffer<double>(buf2, "optimizer state");
        py::array_t<double> losses(epochs), nfev(epochs), penalty(epochs);
        const EpochCallback on_epoch = eulerflow_bind::epoch_callback(net_, callback);
        Rng rng(seed);
        Guard<double> guard(net_);
        FitStatus st;
        {
            py::gil_scoped_release release;
            st = node_.fit(data.data(), t.data(), T, window, batch_size, epochs, NodeGradient(how), oc, os, b1, b2,
                           rng, losses.mutable_data(), nfev.mutable_data(), penalty.mutable_data(), on_epoch);
        }
        return py::make_tuple(losses, st, nfev, penalty);
    }

    void set_penalty(double kinetic, double jacobian) {
        Guard<double> guard(net_);
        NodePenalty pen;
        pen.kinetic = kinetic;
        pen.jacobian = jacobian;
        node_.set_penalty(pen);
    }

    std::size_t n_params() const { return node_.n_params(); }

private:
    static NodeSolver make_solver(const std::string& method, std::int64_t k, double h, double rtol, double atol,
                                  std::int64_t max_steps) {
        NodeSolver s;
        s.tb = &tableau_by_name(method);
        s.steps_per_interval = k;
        s.step_size = h;
        s.rtol = rtol;
        s.atol = atol;
        s.max_steps = max_steps;
        return s;
    }
    void check_size(const CArray& a, std::size_t n, const char* what) const {
        if (std::size_t(a.size()) != n) {
            throw std::invalid_argument(std::string(what) + " has " + std::to_string(a.size()) + " values, expected " +
                                        std::to_string(n));
        }
    }
    Net<double>& net_;
    NodeSolver solver_;
    NeuralOde node_;
    std::size_t d_;
};

}  // namespace

void bind_node(py::module_& m) {
    py::class_<PyNode>(m, "NeuralOde")
        .def(py::init<PyNet<double>&, std::size_t, const std::string&, std::int64_t, double, double, double,
                      std::int64_t>(),
             py::arg("net"), py::arg("dim"), py::arg("method"), py::arg("steps_per_interval"), py::arg("step_size"),
             py::arg("rtol"), py::arg("atol"), py::arg("max_steps"), py::keep_alive<1, 2>())
        .def("trajectory", &PyNode::trajectory, py::arg("z0"), py::arg("batch"), py::arg("t"))
        .def("window_gradient", &PyNode::window_gradient, py::arg("z0"), py::arg("target"), py::arg("t"),
             py::arg("how"))
        .def("fit", &PyNode::fit, py::arg("data"), py::arg("t"), py::arg("window"), py::arg("batch_size"),
             py::arg("epochs"), py::arg("how"), py::arg("optim"), py::arg("scalars"), py::arg("buf1"),
             py::arg("buf2"), py::arg("seed"), py::arg("callback"))
        .def("set_penalty", &PyNode::set_penalty, py::arg("kinetic"), py::arg("jacobian"))
        .def_property_readonly("n_params", &PyNode::n_params);
}
