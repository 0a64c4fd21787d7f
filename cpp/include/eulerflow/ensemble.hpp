// Ensembles: N members of one small architecture trained in one call, member l
// in SIMD lane l of every array. Each member goes through exactly the
// operations of its separate training, in the same order, so it ends
// bit-identical to it; the lanes make the tiny per-member work (a 2 x 2 field
// on one window) run as wide vector operations.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "eulerflow/activations.hpp"
#include "eulerflow/optim.hpp"
#include "eulerflow/rng.hpp"
#include "eulerflow/tableau.hpp"

namespace eulerflow {

// One layer of an ensemble network: Dense (weights at P + w_off * N, bias at
// P + b_off * N when bias) or an element-wise activation.
struct LaneLayer {
    bool dense = true;
    std::size_t n_in = 0, n_out = 0;
    bool bias = false;
    std::size_t w_off = 0, b_off = 0;  // in parameters (each N lanes wide)
    ActParams act;
    std::vector<double> out;  // (n_out, N)
    const double* in = nullptr;
};

// A feed-forward network of Dense and activation layers, one member per lane.
// P and G (parameters and their gradients, (n_params, N)) belong to the caller.
class LaneNet {
public:
    LaneNet(std::vector<LaneLayer> layers, std::size_t N);
    // x (n_in, N) -> (n_out, N); the result lives until the next forward. With
    // `out`, the last layer writes there instead (no backward may follow then).
    const double* forward(const double* P, const double* x, double* out = nullptr);
    // Makes x the input of the next backward: runs the forward, except for a
    // single Dense layer, whose backward needs only its input.
    void set_input(const double* P, const double* x);
    // Adds dLoss/dP into G and returns gx (n_in, N) for gy (n_out, N), for the
    // input of the last forward (or set_input).
    const double* backward(const double* P, double* G, const double* gy);
    std::size_t n_in() const { return layers_.front().n_in; }
    std::size_t n_out() const { return layers_.back().n_out; }
    const std::vector<LaneLayer>& layers() const { return layers_; }

private:
    std::vector<LaneLayer> layers_;
    std::size_t N_;
    std::vector<double> ga_, gb_;
};

struct EnsembleStatus {
    std::int64_t epochs_done = 0;
    bool stopped = false;
    std::vector<std::int64_t> bad_epoch;  // per member: the epoch it diverged in, or -1
    bool euler_window = false;  // node_ensemble_fit: the windows ran in small_euler_window_lanes
};

// Called once per epoch with (epoch, the members' mean losses); true stops.
using EnsembleCallback = std::function<bool(std::int64_t, const double*)>;

// NeuralOde::fit for N members at once: fixed-step tableaus, gradient by
// backprop through the solver, windows shuffled per member with its own Rng.
// A member whose loss turns non-finite is frozen (no further updates; its later
// losses are NaN) and reported in status.bad_epoch; the others go on.
struct NodeEnsembleConfig {
    const Tableau* tb = nullptr;
    std::int64_t steps_per_interval = 0;
    double step_size = 0.0;
    std::size_t window = 1, batch_size = 1;
    std::int64_t epochs = 0;
};

EnsembleStatus node_ensemble_fit(LaneNet& net, double* P, std::size_t n_params, std::size_t N,
                                 const double* data, const double* t, std::size_t T, std::size_t d,
                                 const NodeEnsembleConfig& cfg, const OptimConfig& oc,
                                 OptimScalars& os, const double* lr, double* buf1, double* buf2,
                                 std::vector<Rng>& rngs, double* loss_out,
                                 const EnsembleCallback& on_epoch);

// Whether node_ensemble_fit runs an Euler window on a small field (Dense d -> d,
// or Dense, activation, Dense with d and the hidden width <= 4) in one kernel
// (small_euler_window_lanes; default true). A switch for the tests, which compare
// it with the general sweep; not for use while a fit runs.
void set_lanes_euler_window(bool enabled);
bool lanes_euler_window_enabled();

// Net::learn (seed 001's online learning) for N members at once, member l with
// rate lr[l]: every member sees the same facts X (count, n_in) -> Y (count, k).
// losses (count, N) get each fact's loss before its step (NaN once a member has
// diverged); returns, per member, the fact its loss became non-finite at, or -1.
std::vector<std::int64_t> ensemble_learn(LaneNet& net, double* P, std::size_t n_params, std::size_t N,
                                         const double* X, const double* Y, std::size_t count,
                                         std::size_t n_in, std::size_t k, const double* lr, double* losses);

}  // namespace eulerflow
