// pybind11 glue for the loss landscapes of dense/activation chains
// (landscape.hpp), privately: eulerflow.landscape builds the stacks and calls
// _landscape_losses once per scan.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "eulerflow/landscape.hpp"

namespace py = pybind11;
using namespace eulerflow;

namespace {

using Arr = py::array_t<double, py::array::c_style | py::array::forcecast>;
using Labels = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

std::string shape_of(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

std::string shape_text(std::size_t rows, std::size_t cols) {
    return "(" + std::to_string(rows) + ", " + std::to_string(cols) + ")";
}

// A real float array: complex, bool, object and string arrays are refused
// before forcecast could convert them.
Arr real_array(const py::handle& obj, const std::string& name) {
    const py::array a = py::array::ensure(obj);
    if (!a) throw py::type_error(name + " must be an array of real numbers, got " + std::string(py::str(py::type::handle_of(obj))));
    const char kind = a.dtype().kind();
    if (kind != 'f' && kind != 'i' && kind != 'u') {
        throw py::type_error(name + " must hold real numbers, got dtype " + std::string(py::str(a.dtype())));
    }
    return Arr::ensure(a);
}

void expect_2d(const py::array& a, const std::string& name, std::size_t rows, std::size_t cols) {
    if (a.ndim() != 2 || std::size_t(a.shape(0)) != rows || std::size_t(a.shape(1)) != cols) {
        throw std::invalid_argument(name + " must have shape " + shape_text(rows, cols) + ", got " + shape_of(a));
    }
}

// Q (stacks, width * n); ops: (1, activation code, p1, p2) or (0, W (1 + K,
// n_out * n_in), b (1 + K, n_out) or None, n_out, n_in); loss: LossKind code;
// targets: int labels (n,) or values (k, n); coeffs (points, 1 + K).
py::array_t<double> landscape_losses_py(const py::handle& Q_obj, long long width_in, const py::list& op_list,
                                        int loss_code, const py::handle& targets, const py::handle& coeffs_obj) {
    LandscapeChain ch;
    ch.loss = loss_kind_from_int(loss_code);
    Arr Q = real_array(Q_obj, "Q");
    Arr coeffs = real_array(coeffs_obj, "coeffs");
    if (coeffs.ndim() != 2 || coeffs.shape(1) < 1) {
        throw std::invalid_argument("coeffs must have shape (points, 1 + K), got " + shape_of(coeffs));
    }
    const std::size_t points = coeffs.shape(0), terms = coeffs.shape(1);
    if (width_in < 1) throw std::invalid_argument("width must be positive, got " + std::to_string(width_in));
    const std::size_t width = std::size_t(width_in);
    if (Q.ndim() != 2 || Q.shape(1) == 0 || std::size_t(Q.shape(1)) % width != 0 ||
        (std::size_t(Q.shape(0)) != terms && Q.shape(0) != 1)) {
        throw std::invalid_argument("Q must have shape (" + std::to_string(terms) + " or 1, " + std::to_string(width) +
                                    " * n) for coeffs of shape " + shape_of(coeffs) + ", got " + shape_of(Q));
    }
    ch.Q = Q.data();
    ch.stacks = Q.shape(0);
    ch.width = width;
    ch.n = std::size_t(Q.shape(1)) / width;
    ch.terms = terms;

    std::vector<Arr> held;  // the stacks, alive until the call returns
    std::size_t w = width;
    for (std::size_t i = 0; i < op_list.size(); ++i) {
        const py::tuple item = op_list[i].cast<py::tuple>();
        const std::string where = "ops[" + std::to_string(i) + "]";
        LandscapeOp op;
        if (item.size() == 4 && item[0].cast<int>() == 1) {
            op.act.kind = activation_kind_from_int(item[1].cast<int>());
            op.act.p1 = item[2].cast<double>();
            op.act.p2 = item[3].cast<double>();
        } else if (item.size() == 5 && item[0].cast<int>() == 0) {
            op.dense = true;
            op.n_out = item[3].cast<std::size_t>();
            op.n_in = item[4].cast<std::size_t>();
            if (op.n_in != w || op.n_out == 0) {
                throw std::invalid_argument(where + " is a dense layer " + std::to_string(op.n_in) + " -> " +
                                            std::to_string(op.n_out) + " but its input has " + std::to_string(w) +
                                            " features");
            }
            held.push_back(real_array(item[1], where + " W"));
            expect_2d(held.back(), where + " W", terms, op.n_out * op.n_in);
            op.W = held.back().data();
            if (!item[2].is_none()) {
                held.push_back(real_array(item[2], where + " b"));
                expect_2d(held.back(), where + " b", terms, op.n_out);
                op.b = held.back().data();
            }
            w = op.n_out;
        } else {
            throw std::invalid_argument(where + " must be (1, code, p1, p2) or (0, W, b, n_out, n_in)");
        }
        ch.ops.push_back(op);
    }

    // the targets of the last width k = w
    const py::array t = py::array::ensure(targets);
    Labels labels;
    Arr values;
    if (t && (t.dtype().kind() == 'i' || t.dtype().kind() == 'u')) {
        if (ch.loss != LossKind::CrossEntropy) {
            throw std::invalid_argument("class labels need the cross-entropy loss; mse and half_se take values (k, n)");
        }
        labels = Labels::ensure(t);
        if (labels.ndim() != 1 || std::size_t(labels.shape(0)) != ch.n) {
            throw std::invalid_argument("labels must have shape (" + std::to_string(ch.n) + ",), got " + shape_of(labels));
        }
        const std::int64_t* l = labels.data();
        for (std::size_t s = 0; s < ch.n; ++s) {
            if (l[s] < 0 || std::size_t(l[s]) >= w) {
                throw std::invalid_argument("labels must lie in [0, " + std::to_string(w) + "), got " +
                                            std::to_string(l[s]) + " at " + std::to_string(s));
            }
        }
        ch.targets.labels = l;
    } else {
        values = real_array(targets, "targets");
        expect_2d(values, "targets", w, ch.n);
        ch.targets.t = values.data();
    }

    py::array_t<double> out(points);
    double* o = out.mutable_data();
    const double* c = coeffs.data();
    {
        py::gil_scoped_release release;  // every array is held by this frame
        landscape_losses(ch, c, points, o);
    }
    return out;
}

}  // namespace

void bind_landscape(py::module_& m) {
    m.def("_landscape_losses", &landscape_losses_py, py::arg("Q"), py::arg("width"), py::arg("ops"),
          py::arg("loss"), py::arg("targets"), py::arg("coeffs"),
          "Losses of a dense/activation chain at the points theta(c) = sum_k c_k theta_k (landscape.hpp): "
          "Q (1 + K, width * n) the first layer's stacked products, or (1, width * n) the input; ops "
          "(1, code, p1, p2) or (0, W (1 + K, out * in), b (1 + K, out) or None, out, in); loss code; targets "
          "int labels (n,) or values (k, n) feature-major; coeffs (points, 1 + K). Returns (points,), inf "
          "where not finite.");
}
