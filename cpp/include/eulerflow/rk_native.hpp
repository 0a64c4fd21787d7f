// The fixed-step integration of odeint (rk.cpp) specialised for the built-in
// fields: the field's arithmetic (field_kernels.hpp) inlined into the stepping
// loop, the state in registers, the tableau's products h a_ij and h b_j formed
// once per step size, and a batch integrated in blocks of trajectories side by
// side (one SIMD lane per trajectory). Same operations in the same order as
// rk_step, so the same bits as the generic path (tests/test_ode_fast_path.py).
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>

#include "eulerflow/fields.hpp"
#include "eulerflow/rk.hpp"
#include "eulerflow/tableau.hpp"

namespace eulerflow {

// Whether odeint_fixed_native covers this field and method.
bool has_fixed_native(const Tableau& tb, const Field& f);

// odeint's fixed-step branch for a field and method that has_fixed_native
// accepts, with out[0] = y0 already written; returns false (doing nothing)
// for any other. Counts and errors (max_steps, non-finite states) as odeint's.
bool odeint_fixed_native(const Tableau& tb, Field& f, std::size_t batch, const double* t, std::size_t nt,
                         const OdeOptions& opt, double* out, OdeInfo& info);

// Whether adaptive_native covers this integration: one state (batch 1) of a
// built-in field, dopri5, tsit5 or dopri8, no record of the steps.
bool has_adaptive_native(const Tableau& tb, const Field& f, std::size_t batch, const OdeOptions& opt);

// integrate_adaptive's loop (rk.cpp) for an integration has_adaptive_native
// accepts, from the run's state: the same steps, the same bits, with the field
// inlined and the stages in registers. Returns when every output is filled, or
// before a step so short (|h| < 1e-300) that a product h a_ij could round to
// zero, which rk_step skips: the caller takes that step.
void adaptive_native(AdaptiveRun& r);

// A field that forwards to another through the virtual eval: a native field
// wrapped in it takes the generic path. Tests compare the two paths with it.
class OpaqueField : public Field {
public:
    explicit OpaqueField(std::shared_ptr<Field> inner) : inner_(std::move(inner)) {
        if (!inner_) throw std::invalid_argument("OpaqueField needs a field, got None");
    }
    void eval(double t, const double* y, double* dy, std::size_t batch) override {
        inner_->eval(t, y, dy, batch);
    }
    std::size_t dim() const override { return inner_->dim(); }
    void begin() override { inner_->begin(); }
    void end() override { inner_->end(); }

private:
    std::shared_ptr<Field> inner_;
};

}  // namespace eulerflow
