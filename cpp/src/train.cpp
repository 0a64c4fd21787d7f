#include "eulerflow/train.hpp"

#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <type_traits>

#include "eulerflow/fused_step.hpp"
#include "eulerflow/threadpool.hpp"

#include "eulerflow/members.hpp"

namespace eulerflow {

namespace {

// Parameter penalties: fit's l1/l2 on every weight matrix plus each
// parameter's own (bias penalties). Adds their gradient when add_grad is set;
// returns their value.
template <class T>
double apply_penalty(const std::vector<ParamRef<T>>& params, double l1, double l2, bool add_grad) {
    double value = 0.0;
    for (const auto& pr : params) {
        const double p1 = pr.l1 + (pr.is_weight ? l1 : 0.0);
        const double p2 = pr.l2 + (pr.is_weight ? l2 : 0.0);
        if (p1 == 0.0 && p2 == 0.0) continue;
        const T c1 = T(p1), c2 = T(2.0 * p2);
        // the sum and the stores run in separate loops (see squared_error in loss.hpp)
        for (std::size_t i = 0; i < pr.size; ++i) {
            const double w = double(pr.p[i]);
            value += p1 * std::fabs(w) + p2 * w * w;
        }
        if (add_grad) {
            for (std::size_t i = 0; i < pr.size; ++i) {
                const T w = pr.p[i];
                const T sign = w > T(0) ? T(1) : (w < T(0) ? T(-1) : T(0));
                pr.g[i] += c1 * sign + c2 * w;
            }
        }
    }
    return value;
}

template <class T>
bool finite_params(const std::vector<ParamRef<T>>& params) {
    for (const auto& pr : params)
        for (std::size_t i = 0; i < pr.size; ++i)
            if (!std::isfinite(double(pr.p[i]))) return false;
    return true;
}

}  // namespace

template <class T>
FitStatus fit(Net<T>& net, const FitData<T>& data, const FitConfig& cfg, const OptimConfig& oc,
              OptimScalars& os, T* buf1, T* buf2, Rng& rng, double* loss_out, double* acc_out,
              const EpochCallback& on_epoch) {
    FitStatus st;
    const std::size_t n = data.n, d = data.n_in;
    const std::size_t nb = std::min(cfg.batch_size, n);
    net.reserve(d, nb);
    const std::size_t k = data.labels ? net.seq.n_out : data.k;
    if (net.seq.n_out != k) {
        throw std::invalid_argument("targets have " + std::to_string(k) +
                                    " columns but the network outputs " +
                                    std::to_string(net.seq.n_out));
    }
    std::vector<T> ybuf(k * nb), gbuf(k * nb);
    std::vector<std::int64_t> lbuf(nb);
    std::vector<std::size_t> idx(n);
    LossWork lw;
    lw.reserve(nb);
    bool penalty = cfg.l1 != 0.0 || cfg.l2 != 0.0;
    for (const auto& pr : net.params) penalty = penalty || pr.l1 != 0.0 || pr.l2 != 0.0;
    T* xin = net.xin.data();
    // full-batch training without shuffling sees the same batch every epoch:
    // it is gathered once (again only if a callback used the network)
    const bool same_batch = !cfg.shuffle && nb == n;
    bool gathered = false;
    // a plain chain of small float64 layers takes the fused step (same bits)
    FusedChain chain;
    std::vector<double> fwork, yout;
    bool fused = false;
    auto prepare_fused = [&]() {
        if constexpr (std::is_same_v<T, double>) {
            fused = fused_step_enabled() && fused_step_pays() && nb >= kFusedMinBatch && fused_chain(net.seq, chain);
            if (fused) {
                fwork.assign(chain.size, 0.0);
                yout.assign(k * nb, 0.0);
            }
        }
    };
    prepare_fused();

    std::iota(idx.begin(), idx.end(), std::size_t(0));
    for (std::int64_t e = 0; e < cfg.epochs; ++e) {
        if (cfg.shuffle) {
            std::iota(idx.begin(), idx.end(), std::size_t(0));
            rng.shuffle(idx.data(), n);
        }
        double epoch_loss = 0.0;
        std::size_t correct = 0, batches = 0;
        for (std::size_t start = 0; start < n; start += nb) {
            const std::size_t m = std::min(nb, n - start);
            const std::size_t* rows = idx.data() + start;
            if (!(same_batch && gathered)) {
                for (std::size_t f = 0; f < d; ++f) {
                    T* dst = xin + f * m;
                    for (std::size_t i = 0; i < m; ++i) dst[i] = data.X[rows[i] * d + f];
                }
                if (data.labels) {
                    for (std::size_t i = 0; i < m; ++i) lbuf[i] = data.labels[rows[i]];
                } else {
                    for (std::size_t j = 0; j < k; ++j) {
                        T* dst = ybuf.data() + j * m;
                        for (std::size_t i = 0; i < m; ++i) dst[i] = data.Y[rows[i] * k + j];
                    }
                }
                gathered = true;
            }
            Targets<T> tg;
            if (data.labels) {
                tg.labels = lbuf.data();
            } else {
                tg.t = ybuf.data();
            }
            std::size_t hits = 0;
            double L = 0.0;
            const bool fused_batch = fused && m >= kFusedMinBatch;
            if (fused_batch) {
                if constexpr (std::is_same_v<T, double>) {
                    net.zero_grad();
                    L = fused_step(chain, xin, m, cfg.loss, tg, fwork.data(), yout.data(), &hits);
                }
            } else {
                const T* y = net.seq.forward(xin, m, true);
                L = loss_and_grad(cfg.loss, y, tg, k, m, gbuf.data(), lw, &hits);
                net.zero_grad();
            }
            if (penalty) L += apply_penalty(net.params, cfg.l1, cfg.l2, false);
            L += net.seq.penalty();
            if (!std::isfinite(L)) {
                if (fused_batch) net.zero_grad();  // as the general step leaves them
                st.diverged = true;
                st.bad_epoch = e;
                st.bad_batch = std::int64_t(batches);
                st.bad_loss = L;
                return st;
            }
            if (!fused_batch) net.seq.backward(gbuf.data(), m, false);
            if (penalty) apply_penalty(net.params, cfg.l1, cfg.l2, true);
            optim_step(oc, os, net.params, buf1, buf2);
            epoch_loss += L;
            correct += hits;
            ++batches;
        }
        net.n_last = 0;  // the buffers no longer hold a forward the caller made
        if (e + 1 == cfg.epochs && !finite_params(net.params)) {
            // each loss is taken before its step: a blow-up in the very last step
            // shows only in the parameters
            st.diverged = true;
            st.bad_epoch = e;
            st.bad_batch = std::int64_t(batches) - 1;
            st.bad_loss = std::numeric_limits<double>::quiet_NaN();
            return st;
        }
        loss_out[e] = epoch_loss / double(batches);
        acc_out[e] = double(correct) / double(n);
        st.epochs_done = e + 1;
        if (on_epoch) {
            if (on_epoch(e, loss_out[e])) {
                st.stopped = true;
                return st;
            }
            // the callback may have run the network on other data: restore the buffers
            net.reserve(d, nb);
            xin = net.xin.data();
            gathered = false;
            prepare_fused();
        }
    }
    return st;
}

template <class T>
std::int64_t learn(Net<T>& net, const T* X, const T* Y, std::size_t count, std::size_t n_in,
                   std::size_t k, double lr, double* losses_out) {
    net.reserve(n_in, 1);
    if (net.seq.n_out != k) {
        throw std::invalid_argument("expected outputs have " + std::to_string(k) +
                                    " values but the network outputs " +
                                    std::to_string(net.seq.n_out));
    }
    std::vector<T> g(k);
    const T rate = T(lr);
    T* xin = net.xin.data();
    for (std::size_t s = 0; s < count; ++s) {
        for (std::size_t f = 0; f < n_in; ++f) xin[f] = X[s * n_in + f];
        const T* y = net.seq.forward(xin, 1);
        double L = 0.0;
        for (std::size_t j = 0; j < k; ++j) {
            const double e = double(y[j]) - double(Y[s * k + j]);
            L += 0.5 * e * e;
            g[j] = T(e);
        }
        losses_out[s] = L;
        if (!std::isfinite(L)) return std::int64_t(s);
        net.zero_grad();
        net.seq.backward(g.data(), 1, false);
        for (auto& pr : net.params) {
            for (std::size_t i = 0; i < pr.size; ++i) pr.p[i] -= rate * pr.g[i];
        }
    }
    net.n_last = 0;
    return -1;
}

void fit_members(std::vector<MemberFit>& members, const FitData<double>& data, const FitConfig& cfg,
                 std::size_t n_threads) {
    const bool threaded = std::min(n_threads, members.size()) > 1;
    for_each_member(members.size(), n_threads, [&](std::size_t i) {
        // members already fill the threads asked for: their layers run serially
        std::optional<SerialScope> serial;
        if (threaded) serial.emplace();
        MemberFit& m = members[i];
        std::size_t size = 0;
        for (const auto& p : m.net->params) size += p.size;
        // a fresh optimizer state, as a new optimizer's
        std::vector<double> b1(std::max<std::size_t>(size, 1), 0.0), b2(std::max<std::size_t>(size, 1), 0.0);
        m.status = fit(*m.net, data, cfg, m.oc, m.os, b1.data(), b2.data(), m.rng, m.loss, m.acc, EpochCallback());
    });
}

template FitStatus fit<double>(Net<double>&, const FitData<double>&, const FitConfig&,
                               const OptimConfig&, OptimScalars&, double*, double*, Rng&, double*,
                               double*, const EpochCallback&);
template FitStatus fit<float>(Net<float>&, const FitData<float>&, const FitConfig&,
                              const OptimConfig&, OptimScalars&, float*, float*, Rng&, double*,
                              double*, const EpochCallback&);
template std::int64_t learn<double>(Net<double>&, const double*, const double*, std::size_t,
                                    std::size_t, std::size_t, double, double*);
template std::int64_t learn<float>(Net<float>&, const float*, const float*, std::size_t,
                                   std::size_t, std::size_t, double, double*);

}  // namespace eulerflow
