// pybind11 glue for networks and their training loops: checks shapes, dtypes
// and contiguity, releases the GIL around the core, converts layouts.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <memory>
#include <string>

#include "eulerflow/fused_step.hpp"
#include "pynet.hpp"

namespace py = pybind11;
using namespace eulerflow;

namespace {

using namespace eulerflow_bind;

template <class T>
void bind_net_class(py::module_& m, const char* name) {
    py::class_<PyNet<T>>(m, name)
        .def(py::init<py::list, py::list>(), py::arg("spec"), py::arg("keepalive"))
        .def("forward", &PyNet<T>::forward, py::arg("x"))
        .def("hidden_states", &PyNet<T>::hidden_states, py::arg("x"))
        .def("backward", &PyNet<T>::backward, py::arg("gy"))
        .def("fit", &PyNet<T>::fit, py::arg("X"), py::arg("Y"), py::arg("config"), py::arg("optim"),
             py::arg("scalars"), py::arg("buf1"), py::arg("buf2"), py::arg("rng_state"), py::arg("callback"))
        .def("learn", &PyNet<T>::learn, py::arg("X"), py::arg("Y"), py::arg("lr"))
        .def_property_readonly("n_out", &PyNet<T>::n_out);
}

std::shared_ptr<Field> network_field(PyNet<double>& pynet, std::size_t d) {
    return std::make_shared<NetworkField>(pynet.native(), d);
}

}  // namespace

void bind_network(py::module_& m) {
    py::class_<FitConfig>(m, "FitConfig")
        .def(py::init<>())
        .def_property(
            "loss", [](const FitConfig& c) { return int(c.loss); },
            [](FitConfig& c, int k) { c.loss = loss_kind_from_int(k); })
        .def_readwrite("epochs", &FitConfig::epochs)
        .def_readwrite("batch_size", &FitConfig::batch_size)
        .def_readwrite("shuffle", &FitConfig::shuffle)
        .def_readwrite("l1", &FitConfig::l1)
        .def_readwrite("l2", &FitConfig::l2);

    py::class_<OptimConfig>(m, "OptimConfig")
        .def(py::init<>())
        .def_property(
            "kind", [](const OptimConfig& c) { return int(c.kind); },
            [](OptimConfig& c, int k) {
                if (k < 0 || k > 2) throw std::invalid_argument("unknown optimizer code");
                c.kind = OptimKind(k);
            })
        .def_readwrite("lr", &OptimConfig::lr)
        .def_readwrite("momentum", &OptimConfig::momentum)
        .def_readwrite("dampening", &OptimConfig::dampening)
        .def_readwrite("weight_decay", &OptimConfig::weight_decay)
        .def_readwrite("nesterov", &OptimConfig::nesterov)
        .def_readwrite("beta1", &OptimConfig::beta1)
        .def_readwrite("beta2", &OptimConfig::beta2)
        .def_readwrite("eps", &OptimConfig::eps)
        .def_readwrite("momentum_decay", &OptimConfig::momentum_decay);

    py::class_<OptimScalars>(m, "OptimScalars")
        .def(py::init<>())
        .def_readwrite("step", &OptimScalars::step)
        .def_readwrite("mu_product", &OptimScalars::mu_product);

    py::class_<FitStatus>(m, "FitStatus")
        .def_readonly("epochs_done", &FitStatus::epochs_done)
        .def_readonly("diverged", &FitStatus::diverged)
        .def_readonly("stopped", &FitStatus::stopped)
        .def_readonly("bad_epoch", &FitStatus::bad_epoch)
        .def_readonly("bad_batch", &FitStatus::bad_batch)
        .def_readonly("bad_loss", &FitStatus::bad_loss);

    bind_net_class<double>(m, "Net64");
    bind_net_class<float>(m, "Net32");
    m.def("rng_state", [](std::uint64_t seed) {
        py::array_t<std::uint64_t> out(4);
        Rng(seed).copy_state(out.mutable_data());
        return out;
    }, py::arg("seed"), "The state of eulerflow's generator seeded with `seed` (4 uint64).");
    m.def("network_field", &network_field, py::arg("net"), py::arg("dim"), py::keep_alive<0, 1>(),
          "The float64 network as an autonomous vector field f(y).");
    m.def("_set_fused_step", &set_fused_step, py::arg("enabled"),
          "Whether fit takes the fused step of small float64 chains (tests compare it with the "
          "general step). Not for use while a fit runs.");
    m.def("_fused_step_enabled", &fused_step_enabled);
}
