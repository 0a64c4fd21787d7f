// Implicit integration for stiff problems (cpp/src/implicit.cpp).
#pragma once

#include <cstddef>

#include "eulerflow/fields.hpp"
#include "eulerflow/rk.hpp"

namespace eulerflow {

// odeint with the 3-stage Radau IIA method (order 5, L-stable): simplified Newton
// on the stage equations with the field's Jacobian (Field::jacobian) or, without
// one, a finite-difference Jacobian; Hairer's filtered error estimate and predictive
// step control (as RADAU5); the output times from each step's collocation
// polynomial. Same contract as odeint (opt.record keeps the steps for dense output);
// info.njev counts the Jacobians, info.nfev every evaluation of f (finite-difference
// columns included).
void odeint_radau(Field& f, std::size_t batch, const double* y0, const double* t, std::size_t nt,
                  const OdeOptions& opt, double* out, OdeInfo& info);

// radau5's continuous extension (Hairer's CONTR5): the collocation polynomial of a
// step, of degree 3 through y0 at theta = 0 and y0 + Z_i at theta = c_i, at theta
// in [0, 1]; Z holds the step's three stage increments (3 n values).
void dense_radau(const double* y0, const double* Z, std::size_t n, double theta, double* out);

}  // namespace eulerflow
