// The optimizer step over all parameters, split across the thread pool (the
// element-wise update of each piece is the dispatched optim_update kernel).
#include "eulerflow/optim.hpp"

#include "eulerflow/threadpool.hpp"

namespace eulerflow {

namespace {

template <class T>
void step_all(const OptimConfig& c, OptimScalars& s, const std::vector<ParamRef<T>>& params, T* buf1,
              T* buf2) {
    const OptimStep st = optim_advance(c, s);
    parallel_pieces(
        params.size(), [&](std::size_t a) { return params[a].size; }, kThreadedElements,
        [&](std::size_t a, std::size_t lo, std::size_t n) {
            // the state of parameter a follows the states of the parameters before it
            std::size_t at = lo;
            for (std::size_t b = 0; b < a; ++b) at += params[b].size;
            const ParamRef<T>& pr = params[a];
            optim_update(c, st, pr.p + lo, pr.g + lo, buf1 ? buf1 + at : buf1, buf2 ? buf2 + at : buf2, n);
        });
}

}  // namespace

void optim_step(const OptimConfig& c, OptimScalars& s, const std::vector<ParamRef<double>>& params,
                double* buf1, double* buf2) {
    step_all(c, s, params, buf1, buf2);
}

void optim_step(const OptimConfig& c, OptimScalars& s, const std::vector<ParamRef<float>>& params,
                float* buf1, float* buf2) {
    step_all(c, s, params, buf1, buf2);
}

}  // namespace eulerflow
