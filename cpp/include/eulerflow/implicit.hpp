// Implicit integration for stiff problems (cpp/src/implicit.cpp).
#pragma once

#include <cstddef>

#include "eulerflow/fields.hpp"
#include "eulerflow/rk.hpp"

namespace eulerflow {

// odeint with the 3-stage Radau IIA method (order 5, L-stable): simplified Newton
// on the stage equations with a finite-difference Jacobian, Hairer's filtered error
// estimate and predictive step control (as RADAU5), Hermite interpolation at the
// output times. Same contract as odeint.
void odeint_radau(Field& f, std::size_t batch, const double* y0, const double* t, std::size_t nt,
                  const OdeOptions& opt, double* out, OdeInfo& info);

}  // namespace eulerflow
