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
    int order = 0;              // order of b
    int error_order = 0;        // order of the embedded solution (adaptive methods)
    bool fsal = false;          // last stage is f(t + h, y_new): reused as the next first stage
    bool shampine_dense = false;  // dopri5's fourth-order continuous extension

    bool adaptive() const { return !b_err.empty(); }
    double A(std::size_t i, std::size_t j) const { return a[i * stages + j]; }

    // Checks the tableau's consistency: a strictly lower triangular, every row
    // of a sums to its c, b (and the embedded weights) sum to 1, c[0] = 0.
    // Throws std::invalid_argument naming the method and the defect.
    void validate() const;
};

// The built-in methods: euler, midpoint, heun, rk4, rk38, bosh3, dopri5.
// Throws std::invalid_argument for an unknown name, listing the known ones.
const Tableau& tableau_by_name(const std::string& name);
std::vector<std::string> tableau_names();

}  // namespace eulerflow
