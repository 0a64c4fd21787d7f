// pybind11 glue for the build and kernel-variant configuration (ef.show_config):
// the instruction-set variants of the hot kernels (multiversion.hpp) and how
// the core was compiled.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "eulerflow/multiversion.hpp"

namespace py = pybind11;
namespace isa = eulerflow::isa;

void bind_config(py::module_& m) {
    // the variant is chosen once, here, at import
    isa::init();

    m.def("isa_available", &isa::available,
          "The kernel variants this CPU runs, lowest first (e.g. ['baseline', 'x86-64-v3', 'x86-64-v4']).");
    m.def("isa_built", &isa::built, "The kernel variants compiled into this build, lowest first.");
    m.def("isa_selected", &isa::selected_name, "The kernel variant every hot kernel runs now.");
    m.def("set_isa", &isa::select, py::arg("name"),
          "Run every hot kernel's `name` variant from now on (ValueError when this CPU cannot). "
          "Not for use while another thread runs a kernel.");
    m.def("cpu_features", &isa::cpu_features,
          "(feature, supported) for the CPU features that decide the variants, as __builtin_cpu_supports "
          "reports them.");
    m.def("build_info", []() {
        py::dict d;
        d["compiler"] = EF_BUILD_COMPILER;
        d["build_type"] = EF_BUILD_TYPE;
        d["flags"] = EF_BUILD_FLAGS;
        py::dict files;
        files["kernels.cpp, meanfield.cpp, small_net.cpp, landscape.cpp, fused_step.cpp"] = EF_KERNEL_FLAGS;
        files["lanes_kernels.cpp"] = EF_LANES_FLAGS;
        files["rk_native.cpp"] = EF_RK_NATIVE_FLAGS;
        d["file_flags"] = files;
        d["multiversioned"] = bool(EF_MULTIVERSIONED);
        return d;
    }, "How the core was compiled: compiler, build type, the flags CMakeLists.txt sets (all files, and "
       "per file).");
}
