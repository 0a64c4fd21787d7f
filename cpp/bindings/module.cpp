// The private native module eulerflow._core: registration only.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void bind_network(py::module_& m);
void bind_ode(py::module_& m);
void bind_node(py::module_& m);
void bind_meanfield(py::module_& m);
void bind_ensemble(py::module_& m);
void bind_config(py::module_& m);
void bind_dense(py::module_& m);
void bind_landscape(py::module_& m);

PYBIND11_MODULE(_core, m) {
    m.doc() = "eulerflow's native core (private: use the eulerflow package)";
    bind_network(m);
    bind_ode(m);
    bind_node(m);
    bind_meanfield(m);
    bind_ensemble(m);
    bind_config(m);
    bind_dense(m);
    bind_landscape(m);
}
