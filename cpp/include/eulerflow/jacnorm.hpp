// The squared Frobenius norm of a network's Jacobian, P(z) = ||df/dz (z)||_F^2,
// and its exact gradient with respect to z and the parameters: the d input
// directions are pushed forward as tangents (forward mode), then a reverse
// sweep runs through the tangents and the primal values together, which brings
// in the activations' second derivatives. This is the Jacobian penalty of a
// regularized Neural ODE (Finlay et al. 2020), computed exactly rather than by
// Hutchinson's estimator. For networks of Dense and activation layers.
#pragma once

#include <cstddef>
#include <vector>

#include "eulerflow/network.hpp"

namespace eulerflow {

class JacobianNorm {
public:
    // Throws std::invalid_argument when a layer is not Dense or an activation.
    JacobianNorm(Sequence<double>& seq, std::size_t d);

    // P(z) for one state z (d values). With gz non-null, also adds w * dP/dz to
    // gz and w * dP/dtheta to the layers' gradient buffers (gW, gb).
    double eval(const double* z, double w, double* gz);

private:
    Sequence<double>& seq_;
    std::size_t d_;
    std::vector<std::size_t> off_;   // per layer: where its input's values start in xs_
    std::vector<double> xs_, ts_;    // every layer's input x (width) and tangents T (width x d)
    std::vector<double> xb_, tb_, xb2_, tb2_;  // cotangents of x and T, ping-pong
};

}  // namespace eulerflow
