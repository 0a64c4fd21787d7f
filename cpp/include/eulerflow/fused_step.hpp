// One training step of a small network (a chain of Dense and activation
// layers, every width <= kFusedWidth) on a whole batch in one pass: the batch
// is cut into tiles of samples, and each tile runs forward, loss and backward
// with its layer values in a workspace that stays in L1, the parameter
// gradients accumulating across tiles. The general step (Sequence::forward,
// loss_and_grad, Sequence::backward) instead runs each layer over the whole
// batch, so every layer's values go through memory three times, and a bias
// gradient is one long chain of dependent additions.
//
// The results are the general step's bits. Every per-sample value is the same
// expression (dense_forward_impl's multiply-adds in input order, the same
// activation and loss code). Every sum over the batch is kept in the order the
// general kernels sum it: a weight gradient in dots_impl's two vector
// accumulators (samples 8t..8t+3 into the first, 8t+4..8t+7 into the second,
// the last, overlapping 8 samples masked as dots_impl masks them), a bias
// gradient in sum_impl's single accumulator, the loss over the samples in
// sample order (one chain of additions running through the tiles).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "eulerflow/activations.hpp"
#include "eulerflow/loss.hpp"
#include "eulerflow/network.hpp"
#include "eulerflow/small_net.hpp"

namespace eulerflow {

constexpr std::size_t kFusedWidth = 32;     // widest layer the fused step takes
constexpr std::size_t kFusedTile = 32;      // samples per tile
constexpr std::size_t kFusedMinBatch = 8;   // smaller batches take the general step

// A layer of a fused chain; in, out, d and acc are offsets into the workspace.
// A layer's pointers and widths (SmallLayer: Dense W (n_out, n_in), b and gb may be
// null; Activation act), and where its values lie in the tile workspace.
struct FusedLayer : SmallLayer {
    std::size_t in = 0, out = 0; // the tile's input and output values (width, tile)
    std::size_t d = 0;           // Activation: the tile's derivative values
    std::size_t acc = 0;         // Dense: the gradient accumulators (see fused_step.cpp)
    bool mask_gy = true;         // Dense: the operand dense_backward_impl masks in its tail
};

struct FusedChain {
    std::vector<FusedLayer> layers;
    std::size_t n_in = 0, n_out = 0;
    std::size_t grad[2] = {0, 0};  // the backward's two gradient tiles
    std::size_t acc_begin = 0, acc_end = 0;
    std::size_t size = 0;          // doubles of workspace (with room to align its start)
};

// The layers of seq (resolved) as a fused chain into out; false when seq holds
// another kind of layer, no Dense layer, or a width above kFusedWidth.
bool fused_chain(const Sequence<double>& seq, FusedChain& out);

// One training step on the batch X (n_in, m), feature-major, m >= kFusedMinBatch:
// adds the gradient of the loss to the Dense layers' gW and gb (zeroed by the
// caller) and returns the loss, as Sequence::forward + loss_and_grad +
// Sequence::backward would, bit for bit. tg as for loss_and_grad (t: (k, m));
// work: chain.size doubles; yout: k * m doubles (the outputs, kept for the
// squared-error losses); correct as loss_and_grad's.
double fused_step(const FusedChain& chain, const double* X, std::size_t m, LossKind loss,
                  const Targets<double>& tg, double* work, double* yout, std::size_t* correct);

// Whether the fused step is faster than the general one with the kernel
// variant selected now: with AVX-512's 32 vector registers. Its tiles keep
// about 24 vectors live; AVX2's 16 registers spill them, and there it measured
// about 1.35x slower than the general step on W4 (the bits are the same
// either way).
bool fused_step_pays();

// Whether fit() takes the fused step where it applies and pays (default true). A switch
// for the tests, which compare it with the general step; not for use while a
// fit runs.
void set_fused_step(bool enabled);
bool fused_step_enabled();

}  // namespace eulerflow
