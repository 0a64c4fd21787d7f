// Butcher tableaus: every explicit Runge-Kutta method of eulerflow, Euler
// included, is one of these, run by the one stepping routine in rk.hpp.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace eulerflow {

struct Tableau {
    std::string name;
    std::size_t stages = 0;
    std::vector<double> a;      // stages x stages, row-major, strictly lower triangular
    std::vector<double> b, c;   // weights and nodes
    std::vector<double> b_err;  // b - b_hat of the embedded method; empty for fixed-step methods
    // b - b_hat3 of a second, third-order embedded method (dopri8 only; empty otherwise):
    // the error is then DOP853's err5^2 / sqrt(err5^2 + 0.01 err3^2), see error_norm in rk.hpp
    std::vector<double> b_err3;
    int order = 0;              // order of b
    // the error estimate behaves like h^(error_order + 1): the order of the embedded
    // solution, or 7 for dopri8's combined estimate; the step control's exponent is
    // 1 / (error_order + 1)
    int error_order = 0;
    bool fsal = false;          // last stage is f(t + h, y_new): reused as the next first stage
    // the continuous extension used between steps
    enum class Dense { Hermite, Shampine5, Dop853 };
    Dense dense = Dense::Hermite;  // cubic Hermite; dopri5's 4th-order; dopri8's 7th-order

    bool adaptive() const { return !b_err.empty(); }
    double A(std::size_t i, std::size_t j) const { return a[i * stages + j]; }

    // Checks the tableau's consistency: a strictly lower triangular, every row
    // of a sums to its c, b (and the embedded weights) sum to 1, c[0] = 0.
    // Throws std::invalid_argument naming the method and the defect.
    void validate() const;
};

// The built-in methods: euler, midpoint, heun, rk4, rk38, bosh3, dopri5, tsit5, dopri8.
// Throws std::invalid_argument for an unknown name, listing the known ones.
const Tableau& tableau_by_name(const std::string& name);
std::vector<std::string> tableau_names();

}  // namespace eulerflow
