// A small network (Dense and activation layers, every width <= 16) run on one
// sample with every layer's values kept in a caller's array, so a Neural ODE
// window can store them on its tape and run the backward pass without
// recomputing the forward. The arithmetic is Sequence::forward/backward's for a
// batch of one (dense_forward_impl, dense_backward_impl, the activation
// kernels), expression for expression, and it is multi-versioned like them, so
// the results are the same bits; only the per-layer dispatch, the staging
// copies and the network's own buffers are gone.
#pragma once

#include <cstddef>
#include <vector>

#include "eulerflow/activations.hpp"
#include "eulerflow/network.hpp"

namespace eulerflow {

constexpr std::size_t kSmallWidth = 16;  // widest layer the small path takes

struct SmallLayer {
    bool dense = false;
    std::size_t n_in = 0, n_out = 0;
    const double* W = nullptr;  // Dense: (n_out, n_in), b may be null
    const double* b = nullptr;
    double* gW = nullptr;
    double* gb = nullptr;
    ActParams act;  // Activation
};

// A Dense or Activation layer's pointers and widths (for the small-net and the
// fused training paths, which check the kind and widths themselves).
inline SmallLayer as_small_layer(const Layer<double>& L) {
    SmallLayer s;
    s.dense = L.kind == LayerKind::Dense;
    s.n_in = L.n_in;
    s.n_out = L.n_out;
    s.W = L.W;
    s.b = L.b;
    s.gW = L.gW;
    s.gb = L.gb;
    s.act = L.act;
    return s;
}

// The layers of seq (resolved) as SmallLayers into out; false when seq holds
// another kind of layer or a width above kSmallWidth.
bool small_layers(const Sequence<double>& seq, std::vector<SmallLayer>& out);

// Doubles one forward keeps: the input, then every layer's output.
std::size_t small_values(const std::vector<SmallLayer>& layers);

// vals holds the input (n_in) on entry; every layer's output is written after
// it, the network's output last.
void small_forward(const SmallLayer* layers, std::size_t n_layers, double* vals);
// Given vals of a small_forward and gy = dL/d(output): accumulates the Dense
// gradients into gW/gb and writes dL/d(input) into gx. scratch: 2 * kSmallWidth.
void small_backward(const SmallLayer* layers, std::size_t n_layers, const double* vals, const double* gy,
                    double* gx, double* scratch);

// The shapes small_euler_window takes: one Dense layer d -> d (0), or Dense d -> h,
// an activation and Dense h -> d (h), with d and h in 1..4; -1 for the others.
int small_euler_shape(const SmallLayer* layers, std::size_t n_layers);

// A whole window of a one-stage (Euler) tableau on a field of the shape
// small_euler_shape gave (hidden): the forward from z0 with the step sizes h[m] and
// the tableau's weight b0, the MSE loss against target, and, when the loss is
// finite, the backward: the Dense gradients accumulated into gW/gb (zeroed by the
// caller) and dL/dz0 in abar (d values). tape: steps * (d + 2 hidden) doubles.
// Returns whether the loss was finite (else no gradients). The same bits as the
// small path's general sweep.
bool small_euler_window(const SmallLayer* layers, std::size_t hidden, const double* h, double b0,
                        std::size_t steps, const double* z0, const double* target, double* tape, double* abar,
                        double& loss);

// small_euler_window for N ensemble members at once, member l in SIMD lane l:
// the layers' W, b, gW, gb are the ensemble's (count, N) parameters and
// gradients (N values side by side); member l's window starts from z0[l] (d
// values) with the step sizes h[l] (steps values) and ends against target[l].
// Each member goes through small_euler_window's arithmetic, so its loss lands in
// loss[l] with the same bits, and scale * its gradient is added to gW/gb as
// NeuralOde::add_param_grads adds it. The backward runs whatever the loss: a
// member whose loss is not finite gets meaningless gradients. scratch:
// small_euler_lanes_scratch doubles.
void small_euler_window_lanes(const SmallLayer* layers, std::size_t hidden, std::size_t N, const double* const* h,
                              double b0, std::size_t steps, const double* const* z0, const double* const* target,
                              double scale, double* scratch, double* loss);
std::size_t small_euler_lanes_scratch(std::size_t d, std::size_t hidden, std::size_t steps);

}  // namespace eulerflow
