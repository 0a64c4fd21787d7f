// Neural ODEs: dz/dt = f_theta(z) with f a network, integrated by any Butcher
// tableau, trained on windows of a time series with the whole epoch loop in
// the core. Two gradients of the window loss:
//   backprop  the exact derivative of the discrete solver (reverse sweep
//             through every stage of every step, step sizes held fixed);
//   adjoint   Chen et al. (2018): the adjoint ODE integrated backwards with
//             the state, memory independent of the number of steps.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "eulerflow/fields.hpp"
#include "eulerflow/network.hpp"
#include "eulerflow/optim.hpp"
#include "eulerflow/rk.hpp"
#include "eulerflow/rng.hpp"
#include "eulerflow/tableau.hpp"
#include "eulerflow/train.hpp"

namespace eulerflow {

struct NodeSolver {
    const Tableau* tb = nullptr;
    std::int64_t steps_per_interval = 0;  // fixed methods: k equal steps per interval, or
    double step_size = 0.0;               // steps of this size (last one shortened), or one step
    double rtol = 1e-7, atol = 1e-9;      // adaptive methods
    std::int64_t max_steps = 1000000;     // per integration
};

enum class NodeGradient { Backprop = 0, Adjoint = 1 };

class NeuralOde {
public:
    // net maps d features to d; the caller keeps it alive and unused by others.
    NeuralOde(Net<double>& net, std::size_t d, const NodeSolver& solver);

    // States at every t[i] from z0 (batch rows of d) into out (nt * batch * d).
    void trajectory(const double* z0, std::size_t batch, const double* t, std::size_t nt,
                    double* out, OdeInfo& info);

    // Loss MSE(z(t[nt-1]), target) of one window started at z0 over t[0..nt);
    // adds scale * dLoss/dtheta into grad (flat, in net.params order).
    double window_gradient(const double* z0, const double* target, const double* t,
                           std::size_t nt, NodeGradient how, double scale, double* grad);

    // Trains on the windows of data (T, d) at times t (T): window w starts at
    // data[i], runs over t[i..i+w], and is scored against data[i+w]. Windows
    // are shuffled each epoch; each optimizer step averages batch_size windows.
    FitStatus fit(const double* data, const double* t, std::size_t T, std::size_t window,
                  std::size_t batch_size, std::int64_t epochs, NodeGradient how,
                  const OptimConfig& oc, OptimScalars& os, double* buf1, double* buf2, Rng& rng,
                  double* loss_out, const EpochCallback& on_epoch);

    std::size_t n_params() const { return n_params_; }
    // Bytes of scratch the last window_gradient held (the backprop tape grows
    // with the number of steps; the adjoint's does not).
    std::size_t workspace_bytes() const { return workspace_bytes_; }

private:
    // Augmented adjoint field on (z, a, g): z' = f(z), a' = -J^T a, g' = -(df/dtheta)^T a.
    class AdjointField : public Field {
    public:
        AdjointField(NeuralOde& owner) : o_(owner) {}
        void eval(double t, const double* y, double* dy, std::size_t batch) override;
        std::size_t dim() const override { return 2 * o_.d_ + o_.n_params_; }

    private:
        NeuralOde& o_;
    };

    // One interval [ta, tb] for a batch: fixed steps per the solver options or
    // adaptive steps landing exactly on tb. Calls on_step(t, h, y) before every
    // accepted step. h_adapt carries the adaptive step size across intervals.
    template <class OnStep>
    void integrate_interval(Field& f, std::size_t batch, double ta, double tb, double* y,
                            RkWork& w, double& h_adapt, OdeInfo& info, OnStep&& on_step);

    void zero_param_grads();
    void add_param_grads(double scale, double* grad) const;

    Net<double>& net_;
    std::size_t d_;
    NodeSolver s_;
    std::size_t n_params_ = 0;
    NetworkField field_;  // unguarded: the caller holds the network's busy flag
    RkWork work_, work_aug_;
    std::vector<double> tape_;  // backprop: per step t, h, then the S stage inputs
    std::vector<double> ybuf_, ynew_, abar_, kbar_, ybar_stage_, aug_;
    std::size_t workspace_bytes_ = 0;
};

}  // namespace eulerflow
