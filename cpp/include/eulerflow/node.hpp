// Neural ODEs: dz/dt = f_theta(z) with f a network, integrated by any Butcher
// tableau, trained on windows of a time series with the whole epoch loop in
// the core. Two gradients of the window loss:
//   backprop  the exact derivative of the discrete solver (reverse sweep
//             through every stage of every step, step sizes held fixed);
//   adjoint   Chen et al. (2018): the adjoint ODE integrated backwards with
//             the state, memory independent of the number of steps;
//   checkpoint  backprop's exact gradient with recursive checkpointing: the
//             reverse sweep bisects the steps and recomputes the forward from
//             one stored state per level, so stored states grow like log2(steps).
// A regularized objective (Kelly et al. 2020, Finlay et al. 2020) adds
//   kinetic * integral ||f(z)||^2 dt + jacobian * integral ||df/dz||_F^2 dt
// along the trajectory, by the solver's own quadrature (its stages and weights).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include <memory>

#include "eulerflow/fields.hpp"
#include "eulerflow/jacnorm.hpp"
#include "eulerflow/network.hpp"
#include "eulerflow/optim.hpp"
#include "eulerflow/rk.hpp"
#include "eulerflow/rng.hpp"
#include "eulerflow/small_net.hpp"
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

enum class NodeGradient { Backprop = 0, Adjoint = 1, Checkpoint = 2 };

struct NodePenalty {
    double kinetic = 0.0;   // weight of integral ||f||^2 dt
    double jacobian = 0.0;  // weight of integral ||df/dz||_F^2 dt
    bool any() const { return kinetic != 0.0 || jacobian != 0.0; }
};

class NeuralOde {
public:
    // net maps d features to d; the caller keeps it alive and unused by others.
    NeuralOde(Net<double>& net, std::size_t d, const NodeSolver& solver);

    // States at every t[i] from z0 (batch rows of d) into out (nt * batch * d).
    void trajectory(const double* z0, std::size_t batch, const double* t, std::size_t nt,
                    double* out, OdeInfo& info);

    // Sets the regularization of window_gradient and fit (throws
    // std::invalid_argument when the Jacobian penalty cannot handle the field).
    void set_penalty(const NodePenalty& pen);

    // Loss MSE(z(t[nt-1]), target) of one window started at z0 over t[0..nt),
    // plus the penalty; adds scale * dLoss/dtheta into grad (flat, in
    // net.params order), or with grad null leaves 0 + scale * dLoss/dtheta in the
    // parameters' own gradients. last_penalty() and last_nfev() describe the window.
    double window_gradient(const double* z0, const double* target, const double* t,
                           std::size_t nt, NodeGradient how, double scale, double* grad);

    // Trains on the windows of data (T, d) at times t (T): window w starts at
    // data[i], runs over t[i..i+w], and is scored against data[i+w]. Windows
    // are shuffled each epoch; each optimizer step averages batch_size windows.
    FitStatus fit(const double* data, const double* t, std::size_t T, std::size_t window,
                  std::size_t batch_size, std::int64_t epochs, NodeGradient how,
                  const OptimConfig& oc, OptimScalars& os, double* buf1, double* buf2, Rng& rng,
                  double* loss_out, double* nfev_out, double* penalty_out, const EpochCallback& on_epoch);

    std::size_t n_params() const { return n_params_; }
    // Bytes of scratch the last window_gradient held (the backprop tape grows
    // with the number of steps; the adjoint's does not).
    std::size_t workspace_bytes() const { return workspace_bytes_; }
    double last_penalty() const { return last_penalty_; }
    std::int64_t last_nfev() const { return last_nfev_; }

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

    // The step of (tc, h) from y, in place, as the forward integration took it.
    void forward_step(double tc, double h, double* y);
    // Reverse of one step from y: abar_ holds dL/dy_new on entry and dL/dy on
    // return; parameter gradients accumulate in the network; the step's penalty
    // is added to penalty_ (and its gradient taken).
    void reverse_step(double tc, double h, const double* y);
    // Checkpointed reverse over steps [m0, m1) from the state y at step m0.
    void reverse_range(std::size_t m0, std::size_t m1, const double* y, std::size_t level);
    // Time and size of step m of the current window.
    void step_at(std::size_t m, double& tc, double& h) const;
    // The penalty of one accepted step from its stages (forward only: the adjoint's loss).
    double step_penalty(double h, const double* y, const double* K);
    void zero_param_grads();
    // grad += scale * the parameters' gradients (flat); grad null: in place, 0 + scale g.
    void add_param_grads(double scale, double* grad) const;
    // MSE of the end state y against target; dL/dy into abar_.
    double window_loss(const double* y, const double* target);
    // window_gradient's backprop for a fixed-step method, a small network (every
    // layer Dense or an activation, widths <= kSmallWidth) and no penalty: each
    // stage's layer values go on the tape, so the reverse sweep runs only the
    // backward passes. The same operations in the same order as the general
    // sweep: the same bits. Returns false (nothing done) when it does not apply.
    bool window_gradient_small(const double* z0, const double* target, const double* t, std::size_t nt,
                               double scale, double* grad, double& loss);

    Net<double>& net_;
    std::size_t d_;
    NodeSolver s_;
    std::size_t n_params_ = 0;
    NetworkField field_;  // unguarded: the caller holds the network's busy flag
    RkWork work_, work_aug_;
    std::vector<double> tape_;  // backprop: per step t, h, then the state at the step's start
    // checkpoint: per step (t, h) for adaptive methods, per interval (first step, k, h,
    // ta, tb) for fixed ones; one stored state per bisection level
    std::vector<double> steps_th_, sched_, levels_;
    std::size_t n_sched_ = 0;
    NodePenalty pen_;
    std::unique_ptr<JacobianNorm> jn_;
    std::vector<double> gz_, cot_, ystage_;
    double adj_sign_ = 1.0;  // adjoint: +1 when the window runs forward in time
    double penalty_ = 0.0, last_penalty_ = 0.0;
    std::int64_t last_nfev_ = 0;
    std::vector<double> ybuf_, ynew_, abar_, kbar_, ybar_stage_, aug_;
    std::vector<SmallLayer> small_;      // the small path's view of the network
    std::vector<double> small_tape_, small_h_, small_scratch_;  // its layer values and step sizes
    bool small_cached_ = false;  // small_ resolved once per fit (while fit_t_ is set)
    // fit's step sizes for the small path: window i (starting at fit_t_ + i) has
    // fit_h_[fit_off_[i] .. fit_off_[i + 1]); fit_off_ is empty when not cached
    const double* fit_t_ = nullptr;
    std::size_t fit_window_ = 0;
    std::vector<double> fit_h_;
    std::vector<std::size_t> fit_off_;
    // Appends the step sizes of the windows' intervals over t[0..nt) to out; false
    // beyond max_steps.
    bool small_schedule(const double* t, std::size_t nt, std::vector<double>& out) const;
    // The small path's sweep for any fixed-step tableau (window_gradient_small's
    // general case), with the step sizes hs.
    void small_sweep(const double* z0, const double* target, const double* hs, std::size_t steps, double scale,
                     double* grad, double& loss);
    std::size_t workspace_bytes_ = 0;
};

}  // namespace eulerflow
