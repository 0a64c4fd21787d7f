// pybind11 glue for the ODE solvers: native fields, Python callables as
// fields, and odeint. Checks shapes, releases the GIL around the integration.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "eulerflow/fields.hpp"
#include "eulerflow/implicit.hpp"
#include "eulerflow/rk.hpp"
#include "eulerflow/rk_native.hpp"
#include "eulerflow/tableau.hpp"
#include "pynet.hpp"

namespace py = pybind11;
using namespace eulerflow;

namespace {

// fun(t, y) with y the rows viewed as (d,) or (batch, d), its result as a real
// array; `name` and `what` word the TypeError for anything else.
py::array call_on_state(const py::object& fun, double t, const double* y, bool batched, std::size_t batch,
                        std::size_t d, const char* name, const char* what) {
    std::vector<py::ssize_t> shape;
    if (batched) shape = {py::ssize_t(batch), py::ssize_t(d)};
    else shape = {py::ssize_t(d)};
    py::array_t<double> arr(shape, y);
    py::array ra = py::array::ensure(fun(t, arr));
    if (!ra) throw py::type_error(std::string(name) + " must return " + what);
    const char kind = ra.dtype().kind();
    if (kind != 'f' && kind != 'i' && kind != 'u') {
        throw py::type_error(std::string(name) + " must return real numbers, got dtype " +
                             std::string(py::str(ra.dtype())));
    }
    return ra;
}

// A Python callable f(t, y) -> dy/dt, called with y shaped like y0.
class PyField : public Field {
public:
    PyField(py::object fun, std::size_t d, bool batched) : fun_(std::move(fun)), d_(d), batched_(batched) {}
    ~PyField() override {
        py::gil_scoped_acquire gil;
        fun_ = py::object();
    }
    void eval(double t, const double* y, double* dy, std::size_t batch) override {
        py::gil_scoped_acquire gil;
        py::array ra = call_on_state(fun_, t, y, batched_, batch, d_, "func", "an array of derivatives");
        const py::ssize_t pd = py::ssize_t(d_), pb = py::ssize_t(batch);
        if (batched_ ? ra.ndim() != 2 || ra.shape(0) != pb || ra.shape(1) != pd : ra.ndim() != 1 || ra.shape(0) != pd) {
            const std::string got = eulerflow_bind::shape_str(ra);
            std::string want = batched_ ? "(" + std::to_string(batch) + ", " + std::to_string(d_) + ")"
                                        : "(" + std::to_string(d_) + ",)";
            throw std::invalid_argument("func returned shape " + got + " at t = " + format_g17(t) +
                                        "; expected the shape of y, " + want);
        }
        auto v = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(ra);
        std::copy(v.data(), v.data() + batch * d_, dy);
    }
    std::size_t dim() const override { return d_; }

private:
    py::object fun_;
    std::size_t d_;
    bool batched_;
};

// A field with its Jacobian from a Python callable jac(t, y): (d, d) for one state,
// (batch, d, d) for a batch (one block per row); evaluation is the wrapped field's.
class PyJacobianField : public Field {
public:
    PyJacobianField(std::shared_ptr<Field> base, py::object jac, bool batched)
        : base_(std::move(base)), jac_(std::move(jac)), batched_(batched) {}
    ~PyJacobianField() override {
        py::gil_scoped_acquire gil;
        jac_ = py::object();
    }
    void eval(double t, const double* y, double* dy, std::size_t batch) override { base_->eval(t, y, dy, batch); }
    std::size_t dim() const override { return base_->dim(); }
    void begin() override { base_->begin(); }
    void end() override { base_->end(); }
    bool has_jacobian() const override { return true; }
    void jacobian(double t, const double* y, double* J, std::size_t batch) override {
        py::gil_scoped_acquire gil;
        const std::size_t d = base_->dim();
        py::array ra = call_on_state(jac_, t, y, batched_, batch, d, "jac", "an array (the Jacobian df/dy)");
        const py::ssize_t pd = py::ssize_t(d), pb = py::ssize_t(batch);
        const bool square = ra.ndim() == 2 && batch == 1 && ra.shape(0) == pd && ra.shape(1) == pd;
        const bool blocks = ra.ndim() == 3 && ra.shape(0) == pb && ra.shape(1) == pd && ra.shape(2) == pd;
        if (!square && !blocks) {
            const std::string dd = std::to_string(d) + ", " + std::to_string(d);
            throw std::invalid_argument("jac returned shape " + eulerflow_bind::shape_str(ra) + " at t = " + format_g17(t) +
                                        "; expected the Jacobian df/dy of shape (" +
                                        (batched_ ? std::to_string(batch) + ", " + dd : dd) + ")");
        }
        auto v = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(ra);
        for (std::size_t i = 0; i < batch * d * d; ++i) {
            if (!std::isfinite(v.data()[i])) {
                throw std::invalid_argument("jac returned a non-finite value (NaN or inf) at t = " + format_g17(t) +
                                            " (flat index " + std::to_string(i) + " of shape " +
                                            eulerflow_bind::shape_str(ra) + ")");
            }
        }
        std::copy(v.data(), v.data() + batch * d * d, J);
    }

private:
    std::shared_ptr<Field> base_;
    py::object jac_;
    bool batched_;
};

std::vector<double> square(const py::array_t<double, py::array::c_style | py::array::forcecast>& A, std::size_t& d) {
    if (A.ndim() != 2 || A.shape(0) != A.shape(1)) throw std::invalid_argument("A must be a square 2-D array");
    d = std::size_t(A.shape(0));
    return std::vector<double>(A.data(), A.data() + d * d);
}

// odeint with a tableau method, or radau5 (implicit)
void integrate(const std::string& method, Field& f, std::size_t batch, const double* y0, const double* t,
               std::size_t nt, const OdeOptions& opt, double* out, OdeInfo& info) {
    if (method == "radau5") {
        odeint_radau(f, batch, y0, t, nt, opt, out, info);
    } else {
        odeint(tableau_by_name(method), f, batch, y0, t, nt, opt, out, info);
    }
}

py::tuple run_odeint(std::shared_ptr<Field> field, py::array_t<double, py::array::c_style> y0, std::size_t batch,
                     py::array_t<double, py::array::c_style> t, const std::string& method, double rtol, double atol,
                     double step_size, std::int64_t max_steps) {
    if (method != "radau5") tableau_by_name(method);  // an unknown name is refused here
    const std::size_t d = field->dim();
    if (std::size_t(y0.size()) != batch * d) {
        throw std::invalid_argument("y0 has " + std::to_string(y0.size()) + " values; the field needs " +
                                    std::to_string(batch) + " x " + std::to_string(d));
    }
    const std::size_t nt = std::size_t(t.size());
    OdeOptions opt;
    opt.rtol = rtol;
    opt.atol = atol;
    opt.step_size = step_size;
    opt.max_steps = max_steps;
    OdeInfo info;
    py::array_t<double> out({py::ssize_t(nt), py::ssize_t(batch * d)});
    double* o = out.mutable_data();
    {
        FieldSession session(*field);  // a network field is held for the whole integration
        py::gil_scoped_release release;
        integrate(method, *field, batch, y0.data(), t.data(), nt, opt, o, info);
    }
    py::dict d_info = eulerflow_bind::ode_info_dict(info);
    if (method == "radau5") d_info["njev"] = info.njev;
    return py::make_tuple(out, d_info);
}

// An adaptive integration from t[0] to t[-1] that keeps every accepted step; the
// states at the times t are returned too (bit for bit odeint's).
py::tuple run_solve(std::shared_ptr<Field> field, py::array_t<double, py::array::c_style> y0, std::size_t batch,
                    py::array_t<double, py::array::c_style> t, const std::string& method, double rtol,
                    double atol, std::int64_t max_steps) {
    const bool radau = method == "radau5";
    const Tableau* tb = radau ? nullptr : &tableau_by_name(method);
    if (tb && !tb->adaptive()) throw std::invalid_argument("dense output needs an adaptive method (dopri5, tsit5, dopri8, bosh3)");
    const std::size_t d = field->dim();
    if (std::size_t(y0.size()) != batch * d) throw std::invalid_argument("y0 does not match the field");
    const std::size_t nt = std::size_t(t.size());
    OdeOptions opt;
    opt.rtol = rtol;
    opt.atol = atol;
    opt.max_steps = max_steps;
    auto record = std::make_shared<DenseRecord>();
    opt.record = record.get();
    OdeInfo info;
    py::array_t<double> out({py::ssize_t(nt), py::ssize_t(batch * d)});
    {
        FieldSession session(*field);
        py::gil_scoped_release release;
        if (radau) {
            odeint_radau(*field, batch, y0.data(), t.data(), nt, opt, out.mutable_data(), info);
        } else {
            odeint(*tb, *field, batch, y0.data(), t.data(), nt, opt, out.mutable_data(), info);
        }
    }
    py::dict d_info = eulerflow_bind::ode_info_dict(info);
    if (radau) d_info["njev"] = info.njev;
    return py::make_tuple(out, d_info, record);
}

// Row r of a batch integrated on its own times t[r] (batch x nt), all in one call.
py::tuple run_odeint_rows(std::shared_ptr<Field> field, py::array_t<double, py::array::c_style> y0,
                          py::array_t<double, py::array::c_style> t, const std::string& method, double rtol,
                          double atol, double step_size, std::int64_t max_steps) {
    if (method != "radau5") tableau_by_name(method);
    const std::size_t d = field->dim();
    if (t.ndim() != 2 || y0.ndim() != 2 || t.shape(0) != y0.shape(0) || std::size_t(y0.shape(1)) != d) {
        throw std::invalid_argument("per-row times need y0 (batch, d) and t (batch, n_times)");
    }
    const std::size_t batch = std::size_t(t.shape(0)), nt = std::size_t(t.shape(1));
    OdeOptions opt;
    opt.rtol = rtol;
    opt.atol = atol;
    opt.step_size = step_size;
    opt.max_steps = max_steps;
    OdeInfo info;
    py::array_t<double> out({py::ssize_t(nt), py::ssize_t(batch * d)});
    {
        FieldSession session(*field);
        py::gil_scoped_release release;
        std::vector<double> row(nt * d);
        double* o = out.mutable_data();
        for (std::size_t r = 0; r < batch; ++r) {
            integrate(method, *field, 1, y0.data() + r * d, t.data() + r * nt, nt, opt, row.data(), info);
            for (std::size_t i = 0; i < nt; ++i) std::copy(row.begin() + std::ptrdiff_t(i * d), row.begin() + std::ptrdiff_t((i + 1) * d), o + (i * batch + r) * d);
        }
    }
    py::dict d_info = eulerflow_bind::ode_info_dict(info);
    if (method == "radau5") d_info["njev"] = info.njev;
    return py::make_tuple(out, d_info);
}

template <class V>
py::array_t<double> as_array(const V& v, std::size_t rows, std::size_t cols) {
    py::array_t<double> a({py::ssize_t(rows), py::ssize_t(cols)});
    std::copy(v.begin(), v.end(), a.mutable_data());
    return a;
}

}  // namespace

void bind_ode(py::module_& m) {
    py::register_exception<IntegrationError>(m, "IntegrationError", PyExc_RuntimeError);

    py::class_<DenseRecord, std::shared_ptr<DenseRecord>>(m, "DenseRecord")
        .def_property_readonly("steps", &DenseRecord::steps)
        .def_property_readonly("t0", [](const DenseRecord& r) { return as_array(r.t0, r.steps(), 1); })
        .def_property_readonly("h", [](const DenseRecord& r) { return as_array(r.h, r.steps(), 1); })
        .def_property_readonly("y0", [](const DenseRecord& r) { return as_array(r.y0, r.steps(), r.n); })
        .def_property_readonly("y1", [](const DenseRecord& r) { return as_array(r.y1, r.steps(), r.n); })
        .def("evaluate", [](const DenseRecord& r, py::array_t<std::int64_t, py::array::c_style> idx,
                            py::array_t<double, py::array::c_style> theta) {
            if (idx.size() != theta.size()) throw std::invalid_argument("idx and theta differ in length");
            const std::size_t q = std::size_t(idx.size());
            py::array_t<double> out({py::ssize_t(q), py::ssize_t(r.n)});
            double* o = out.mutable_data();
            for (std::size_t j = 0; j < q; ++j) {
                const std::int64_t i = idx.data()[j];
                if (i < 0 || std::size_t(i) >= r.steps()) throw std::invalid_argument("step index out of range");
                dense_eval(r, std::size_t(i), theta.data()[j], o + j * r.n);
            }
            return out;
        }, py::arg("idx"), py::arg("theta"));
    m.def("odeint_rows", &run_odeint_rows, py::arg("field"), py::arg("y0"), py::arg("t"), py::arg("method"),
          py::arg("rtol"), py::arg("atol"), py::arg("step_size"), py::arg("max_steps"));
    m.def("solve", &run_solve, py::arg("field"), py::arg("y0"), py::arg("batch"), py::arg("t"), py::arg("method"),
          py::arg("rtol"), py::arg("atol"), py::arg("max_steps"));

    py::class_<Field, std::shared_ptr<Field>>(m, "Field")
        .def_property_readonly("dim", &Field::dim)
        .def("__call__", [](Field& f, double t, py::array_t<double, py::array::c_style | py::array::forcecast> y) {
            const std::size_t d = f.dim();
            if (y.size() % py::ssize_t(d) != 0 || y.size() == 0) {
                throw std::invalid_argument("y must hold rows of " + std::to_string(d) + " values");
            }
            const std::size_t batch = std::size_t(y.size()) / d;
            py::array_t<double> out(std::vector<py::ssize_t>(y.shape(), y.shape() + y.ndim()));
            f.eval(t, y.data(), out.mutable_data(), batch);
            return out;
        }, py::arg("t"), py::arg("y"))
        .def_property_readonly("has_jacobian", &Field::has_jacobian)
        .def("jacobian", [](Field& f, double t, py::array_t<double, py::array::c_style | py::array::forcecast> y) {
            const std::size_t d = f.dim();
            if (!f.has_jacobian()) throw py::type_error("this field has no analytic Jacobian");
            if (y.size() % py::ssize_t(d) != 0 || y.size() == 0) {
                throw std::invalid_argument("y must hold rows of " + std::to_string(d) + " values");
            }
            const std::size_t batch = std::size_t(y.size()) / d;
            py::array_t<double> out({py::ssize_t(batch), py::ssize_t(d), py::ssize_t(d)});
            f.jacobian(t, y.data(), out.mutable_data(), batch);
            return out;
        }, py::arg("t"), py::arg("y"));

    py::class_<LinearField, Field, std::shared_ptr<LinearField>>(m, "LinearField")
        .def(py::init([](py::array_t<double, py::array::c_style | py::array::forcecast> A, py::object b) {
            std::size_t d = 0;
            std::vector<double> Av = square(A, d), bv;
            if (!b.is_none()) {
                auto ba = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(b);
                if (!ba || ba.ndim() != 1 || std::size_t(ba.shape(0)) != d) {
                    throw std::invalid_argument("b must have shape (" + std::to_string(d) + ",)");
                }
                bv.assign(ba.data(), ba.data() + d);
            }
            return std::make_shared<LinearField>(std::move(Av), std::move(bv), d);
        }), py::arg("A"), py::arg("b") = py::none());
    py::class_<LorenzField, Field, std::shared_ptr<LorenzField>>(m, "LorenzField")
        .def(py::init<double, double, double>(), py::arg("sigma"), py::arg("rho"), py::arg("beta"));
    py::class_<ProjectileField, Field, std::shared_ptr<ProjectileField>>(m, "ProjectileField")
        .def(py::init<double, double, double>(), py::arg("ax"), py::arg("ay"), py::arg("az"));
    py::class_<VanDerPolField, Field, std::shared_ptr<VanDerPolField>>(m, "VanDerPolField")
        .def(py::init<double>(), py::arg("mu"));
    py::class_<ArenstorfField, Field, std::shared_ptr<ArenstorfField>>(m, "ArenstorfField")
        .def(py::init<double>(), py::arg("mu"));
    py::class_<PyField, Field, std::shared_ptr<PyField>>(m, "PyField")
        .def(py::init<py::object, std::size_t, bool>(), py::arg("fun"), py::arg("dim"), py::arg("batched"));
    py::class_<PyJacobianField, Field, std::shared_ptr<PyJacobianField>>(m, "PyJacobianField")
        .def(py::init<std::shared_ptr<Field>, py::object, bool>(), py::arg("field"), py::arg("jac"),
             py::arg("batched"));
    // private, for tests and benchmarks: a native field hidden from the fixed-step fast path
    py::class_<OpaqueField, Field, std::shared_ptr<OpaqueField>>(m, "OpaqueField")
        .def(py::init<std::shared_ptr<Field>>(), py::arg("field"));
    m.def("has_fixed_native", [](const Field& f, const std::string& method) {
        return method != "radau5" && has_fixed_native(tableau_by_name(method), f);
    }, py::arg("field"), py::arg("method"));
    m.def("has_adaptive_native", [](const Field& f, const std::string& method, std::size_t batch) {
        return method != "radau5" && has_adaptive_native(tableau_by_name(method), f, batch, OdeOptions());
    }, py::arg("field"), py::arg("method"), py::arg("batch"));

    m.def("tableau_names", &tableau_names);
    m.def("tableau_info", [](const std::string& name) {
        const Tableau& tb = tableau_by_name(name);
        py::dict d;
        d["name"] = tb.name;
        d["stages"] = tb.stages;
        d["a"] = tb.a;
        d["b"] = tb.b;
        d["c"] = tb.c;
        d["b_err"] = tb.b_err;
        d["b_err3"] = tb.b_err3;
        d["order"] = tb.order;
        d["error_order"] = tb.error_order;
        d["adaptive"] = tb.adaptive();
        d["fsal"] = tb.fsal;
        return d;
    }, py::arg("name"));
    m.def("validate_tableau", [](const std::string& name, std::vector<double> a, std::vector<double> b,
                                 std::vector<double> c, std::vector<double> b_hat) {
        Tableau t;
        t.name = name;
        t.stages = b.size();
        t.a = std::move(a);
        t.b = std::move(b);
        t.c = std::move(c);
        if (!b_hat.empty()) {
            if (b_hat.size() != t.stages) throw std::invalid_argument("b_hat must have one weight per stage");
            t.b_err.resize(t.stages);
            for (std::size_t j = 0; j < t.stages; ++j) t.b_err[j] = t.b[j] - b_hat[j];
        }
        t.validate();
    }, py::arg("name"), py::arg("a"), py::arg("b"), py::arg("c"), py::arg("b_hat") = std::vector<double>());
    m.def("odeint", &run_odeint, py::arg("field"), py::arg("y0"), py::arg("batch"), py::arg("t"),
          py::arg("method"), py::arg("rtol"), py::arg("atol"), py::arg("step_size"), py::arg("max_steps"));
}
