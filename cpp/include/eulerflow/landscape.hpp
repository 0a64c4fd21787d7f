// Loss landscapes of a chain of dense layers and activations: the loss at
// many points theta(c) = c_0 theta_0 + c_1 d_1 + ... + c_K d_K of a plane (or
// line) through the parameters, one native call for a whole grid.
//
// Every dense layer's weights at a point are the same combination of the
// stacks [theta_0, d_1, ..., d_K] of that layer, W(c) = sum_k c_k W_k, built
// per point from the stacks (a few hundred multiply-adds). The first layer
// may instead come as its products with the data, Q_k = W_k X + b_k, computed
// once for all points: the layer is linear in its weights, so its output at a
// point is sum_k c_k Q_k (the linearity trick; cheaper than W(c) X when the
// layer has more inputs than the chain has stacks).
//
// Points are independent: each is evaluated start to end by one thread with
// its own scratch, in a fixed order of operations, so a loss does not depend
// on the thread count nor on which thread ran it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "eulerflow/activations.hpp"
#include "eulerflow/loss.hpp"

namespace eulerflow {

// One layer after the input: a dense layer from its stacks, or an activation.
struct LandscapeOp {
    bool dense = false;
    ActParams act;                 // activation
    const double* W = nullptr;     // dense: (1 + K, n_out * n_in), row k = W_k row-major
    const double* b = nullptr;     // dense: (1 + K, n_out), or null (no bias)
    std::size_t n_out = 0, n_in = 0;
};

struct LandscapeChain {
    // The input of the first op, (width, n) feature-major per point:
    //   stacks == 1 + K: Q (1 + K, width * n), combined with each point's c
    //                    (the first layer's products, linearity trick);
    //   stacks == 1:     the input itself (width, n), the same for every point.
    const double* Q = nullptr;
    std::size_t stacks = 1, width = 0;
    std::size_t n = 0;     // samples
    std::size_t terms = 1;  // 1 + K: coefficients per point
    std::vector<LandscapeOp> ops;
    LossKind loss = LossKind::Mse;
    Targets<double> targets;  // (k, n) values or (n,) labels, k = the last width
};

// Widest activation of the chain (values per sample) and the largest dense
// layer (weights and biases): what one point's scratch holds.
std::size_t landscape_max_width(const LandscapeChain& chain);
std::size_t landscape_max_weights(const LandscapeChain& chain);

// out[p] = L(theta(coeffs[p])) for p < points, coeffs (points, terms)
// row-major; a loss that is not finite (overflow, NaN) is +inf. Splits the
// points over the thread pool (threadpool.hpp); allocates its scratch once
// per call, before the loop.
void landscape_losses(const LandscapeChain& chain, const double* coeffs, std::size_t points, double* out);

}  // namespace eulerflow
