// Training loops that run wholly in the core: fit (epochs x shuffled
// mini-batches) and learn (seed 001's online SGD, one step per fact).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "eulerflow/loss.hpp"
#include "eulerflow/network.hpp"
#include "eulerflow/optim.hpp"
#include "eulerflow/rng.hpp"

namespace eulerflow {

struct FitConfig {
    LossKind loss = LossKind::Mse;
    std::int64_t epochs = 1;
    std::size_t batch_size = 32;
    bool shuffle = true;
    double l1 = 0.0;  // Keras-style penalties on Dense weight matrices:
    double l2 = 0.0;  // l1 * sum|W| + l2 * sum W^2, added to the loss
};

// Row-major training data: X (n, n_in); targets Y (n, k) or labels (n,).
template <class T>
struct FitData {
    const T* X = nullptr;
    std::size_t n = 0, n_in = 0;
    const T* Y = nullptr;
    const std::int64_t* labels = nullptr;
    std::size_t k = 0;  // output width
};

struct FitStatus {
    std::int64_t epochs_done = 0;
    bool diverged = false;
    bool stopped = false;  // a callback asked to stop
    std::int64_t bad_epoch = -1, bad_batch = -1;
    double bad_loss = 0.0;
};

// Called once per epoch with (epoch, mean loss); returns true to stop.
using EpochCallback = std::function<bool(std::int64_t, double)>;

// Trains in place. loss_out/acc_out have room for cfg.epochs values.
template <class T>
FitStatus fit(Net<T>& net, const FitData<T>& data, const FitConfig& cfg, const OptimConfig& oc,
              OptimScalars& os, T* buf1, T* buf2, Rng& rng, double* loss_out, double* acc_out,
              const EpochCallback& on_epoch);

// One SGD step of rate lr per fact on ||y - t||^2 / 2; losses (taken before
// each step) go to losses_out. Returns the index of the first non-finite loss,
// or -1; training stops there.
template <class T>
std::int64_t learn(Net<T>& net, const T* X, const T* Y, std::size_t count, std::size_t n_in,
                   std::size_t k, double lr, double* losses_out);

// One member of fit_members: a network with its own optimizer (fresh state)
// and shuffling generator; the losses and accuracies of its epochs go to
// loss/acc (room for cfg.epochs values each).
struct MemberFit {
    Net<double>* net = nullptr;
    OptimConfig oc;
    OptimScalars os;
    Rng rng;
    double* loss = nullptr;
    double* acc = nullptr;
    FitStatus status;
};

// Trains every member on the same data as fit() would, the members spread over
// n_threads threads (each member on one thread, from start to end), so member i
// ends bit-identical to its separate fit whatever the thread count. An
// exception in a member is rethrown after every thread has finished.
void fit_members(std::vector<MemberFit>& members, const FitData<double>& data, const FitConfig& cfg,
                 std::size_t n_threads);

}  // namespace eulerflow
