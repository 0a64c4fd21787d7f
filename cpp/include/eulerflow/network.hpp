// Networks: a Sequence of layers (Dense, activation, Python map, or a block
// holding a nested Sequence combined with its input as a residual step).
// Every buffer is feature-major (features, batch) and sized once per call by
// reserve(); forward and backward then run without allocating.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "eulerflow/activations.hpp"
#include "eulerflow/dense.hpp"
#include "eulerflow/optim.hpp"

namespace eulerflow {

enum class LayerKind { Dense = 0, Activation = 1, Map = 2, Block = 3, Penalty = 4 };

// How a block combines its input x with the output f(x) of its inner sequence:
// y = cf * f(x) + cx * x.
enum class BlockMode { Plain = 0, Average = 1, Add = 2, Step = 3 };

// An element-wise function supplied from outside the core (a Python callable).
// apply(in, out, rows, n) maps a (rows, n) feature-major array.
template <class T>
struct MapFn {
    std::function<void(const T*, T*, std::size_t, std::size_t)> f, df;
};

template <class T>
struct Sequence;

template <class T>
struct Layer {
    LayerKind kind = LayerKind::Dense;
    std::size_t n_in = 0, n_out = 0;  // resolved widths
    // Dense: parameters and their gradients, owned outside (views of NumPy arrays)
    T* W = nullptr;
    T* b = nullptr;
    T* gW = nullptr;
    T* gb = nullptr;
    double bias_l1 = 0.0, bias_l2 = 0.0;  // Dense: penalties on b
    // Activation
    ActParams act;
    // Penalty: an identity layer adding (l1 sum|x| + l2 sum x^2) / batch to the
    // training loss (Keras activity_regularizer on the previous layer's output)
    double pen_l1 = 0.0, pen_l2 = 0.0;
    double pen_value = 0.0;    // of the last training forward
    bool pen_active = false;   // the last forward was a training forward
    // Map
    std::shared_ptr<MapFn<T>> map;
    // Block
    BlockMode mode = BlockMode::Plain;
    double h = 1.0;
    std::unique_ptr<Sequence<T>> block;

    // workspace
    const T* in = nullptr;   // input of the last forward (owned by the previous layer)
    std::vector<T> out;      // (n_out, n)
    std::vector<T> scratch;  // Map derivative or block's scaled gradient
    std::vector<T> deriv;    // Activation: act'(in) kept by a training forward
    bool has_deriv = false;  // deriv holds the derivative of the last forward

    double coef_f() const {
        switch (mode) {
            case BlockMode::Plain: return 1.0;
            case BlockMode::Average: return 0.5;
            case BlockMode::Add: return 1.0;
            case BlockMode::Step: return h;
        }
        return 1.0;
    }
    double coef_x() const {
        switch (mode) {
            case BlockMode::Plain: return 0.0;
            case BlockMode::Average: return 0.5;
            case BlockMode::Add: return 1.0;
            case BlockMode::Step: return 1.0;
        }
        return 0.0;
    }
};

template <class T>
struct Sequence {
    std::vector<Layer<T>> layers;
    std::size_t n_in = 0, n_out = 0;
    std::size_t capacity = 0;   // batch size the buffers hold
    std::vector<T> grad_a, grad_b;  // ping-pong buffers for backward

    // Resolves every width from the input width; throws on a mismatch.
    void resolve(std::size_t width);
    // Sizes every buffer for batches up to n (allocates only when n grows).
    void reserve(std::size_t n);
    // Runs x (n_in, n) through the layers; returns the output (n_out, n).
    // With keep_deriv, activations also store their derivative for backward.
    const T* forward(const T* x, std::size_t n, bool keep_deriv = false);
    // Given dL/dy (n_out, n) of the last forward, accumulates parameter
    // gradients and returns dL/dx (n_in, n), or null when need_gx is false.
    const T* backward(const T* gy, std::size_t n, bool need_gx);
    // Appends every Dense parameter (possibly repeated if shared).
    void collect(std::vector<ParamRef<T>>& out) const;
    // Sum of the activity penalties of the last training forward.
    double penalty() const;
    std::size_t max_width() const;
};

// A network ready to run: its sequence, its unique parameters and the
// input/output staging buffers. One thread at a time: concurrent use is
// refused by a flag (see Guard) instead of corrupting the buffers.
template <class T>
struct Net {
    Sequence<T> seq;
    std::vector<ParamRef<T>> params;  // unique, in order of first appearance
    std::vector<T> xin;               // (n_in, n) staging buffer
    std::size_t n_last = 0;           // batch of the last forward; 0 = none yet
    std::size_t width_last = 0;
    std::atomic<bool> busy{false};

    // Finishes construction: resolves widths when known, lists parameters.
    void finalize();
    void zero_grad();
    void reserve(std::size_t width, std::size_t n);
    // Forward of row-major x (n, width) given as a strided view; returns the
    // feature-major output (n_out, n).
    const T* forward_rows(const T* x, std::size_t n, std::size_t width, std::ptrdiff_t rs,
                          std::ptrdiff_t cs);
};

// Marks a network busy for the lifetime of the guard.
template <class T>
class Guard {
public:
    explicit Guard(Net<T>& net) : net_(net) {
        bool expected = false;
        if (!net_.busy.compare_exchange_strong(expected, true)) {
            throw std::runtime_error(
                "this network is already running in another thread; use one network per thread");
        }
    }
    ~Guard() { net_.busy.store(false); }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

private:
    Net<T>& net_;
};

}  // namespace eulerflow
