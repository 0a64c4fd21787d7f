#include "eulerflow/meanfield.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <optional>
#include <utility>

#include "eulerflow/dense.hpp"
#include "eulerflow/members.hpp"
#include "eulerflow/multiversion.hpp"
#include "eulerflow/threadpool.hpp"

namespace eulerflow {

namespace {

// Particles are visited in blocks that stay in L1 while every sample of the
// batch passes over them; the block size is fixed, so sums have a fixed order.
constexpr std::size_t kBlock = 512;

// For d <= 4 a sample's output sum is taken over chunks of kChunk particles:
// each chunk's vector of partial sums starts from zero, and the chunks' vectors
// are added in their order (for d > 4 the blocks' dot products are added in
// their order). The order is fixed by m alone, so the chunks of one step can
// run on several threads and give the bits of one thread.
constexpr std::size_t kChunk = 512;

// The chunks of a step: for d <= 4 of the particles that fill whole vectors,
// for d > 4 the blocks of the particle loops (kBlock, the last one short).
std::size_t chunk_count(std::size_t m, std::size_t d) {
    const std::size_t whole = d <= 4 ? m / detail::lanes<double>() * detail::lanes<double>() : m;
    return (whole + kChunk - 1) / kChunk;
}

// z[j] = b[j] + sum_k w[k][j] x[k] for the particles of one block.
EF_ALWAYS_INLINE void preactivation(const double* b, const double* w, std::size_t m, std::size_t d, const double* x,
                          std::size_t j0, std::size_t jb, double* z) {
    for (std::size_t j = 0; j < jb; ++j) z[j] = b[j0 + j];
    for (std::size_t k = 0; k < d; ++k) {
        const double xk = x[k];
        const double* wk = w + k * m + j0;
        for (std::size_t j = 0; j < jb; ++j) z[j] += wk[j] * xk;
    }
}

// f(x_i) * m for n samples: sum_j a_j relu(z_ij).
// For small d the particles are visited four at a time (one vector) with their
// parameters in registers while every sample passes; each sample keeps a
// vector of partial sums, reduced once at the end (a fixed order).
// G consecutive groups of particles at once (each sample's inputs read once),
// added into acc in their order: the sums of G calls for one group each.
template <std::size_t D, std::size_t G, class V>
EF_ALWAYS_INLINE void forward_groups(const V* aj, const V* bj, const V (*wj)[D], const double* x, std::size_t n,
                                     V* acc) {
    for (std::size_t i = 0; i < n; ++i) {
        V s = acc[i];
        for (std::size_t g = 0; g < G; ++g) {
            V z = bj[g];
            for (std::size_t k = 0; k < D; ++k) z += wj[g][k] * x[i * D + k];
            s += aj[g] * (z >= 0.0 ? z : V{});
        }
        acc[i] = s;
    }
}

template <std::size_t D, class V>
EF_ALWAYS_INLINE void forward_group(V aj, V bj, const V* wj, const double* x, std::size_t n, V* acc) {
    V w1[1][D];
    for (std::size_t k = 0; k < D; ++k) w1[0][k] = wj[k];
    forward_groups<D, 1>(&aj, &bj, w1, x, n, acc);
}

// hsum of four vectors at once, in its order ((v0 + v2) + (v1 + v3) for each):
// one shuffle network instead of four trips through memory.
EF_ALWAYS_INLINE detail::vec_t<double> hsum4(const detail::vec_t<double>* v) {
    using V = detail::vec_t<double>;
    using M = std::int64_t __attribute__((vector_size(32)));
    static_assert(detail::lanes<double>() == 4, "hsum4 sums four lanes");
    const V s01 = __builtin_shuffle(v[0], v[1], M{0, 1, 4, 5}) + __builtin_shuffle(v[0], v[1], M{2, 3, 6, 7});
    const V s23 = __builtin_shuffle(v[2], v[3], M{0, 1, 4, 5}) + __builtin_shuffle(v[2], v[3], M{2, 3, 6, 7});
    return __builtin_shuffle(s01, s23, M{0, 2, 4, 6}) + __builtin_shuffle(s01, s23, M{1, 3, 5, 7});
}

// The sums from the vector partial sums, then the particles j0.. m - 1 that
// fill no vector, one by one.
template <std::size_t D>
EF_ALWAYS_INLINE void forward_finish(const double* a, const double* b, const double* w, std::size_t m,
                                     std::size_t j0, const double* x, std::size_t n,
                                     const detail::vec_t<double>* acc, double* sums) {
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4) detail::vstore(sums + i, hsum4(acc + i));
    for (; i < n; ++i) sums[i] = detail::hsum<double>(acc[i]);
    if (j0 == m) return;
    for (i = 0; i < n; ++i) {
        double t = sums[i];
        for (std::size_t jj = j0; jj < m; ++jj) {
            double z = b[jj];
            for (std::size_t k = 0; k < D; ++k) z += w[k * m + jj] * x[i * D + k];
            t += z >= 0.0 ? a[jj] * z : 0.0;
        }
        sums[i] = t;
    }
}

// acc[i] = the vector partial sums of sample i over the particles [j0, j1).
template <std::size_t D>
EF_ALWAYS_INLINE void forward_chunk(const double* a, const double* b, const double* w, std::size_t m,
                                    std::size_t j0, std::size_t j1, const double* x, std::size_t n,
                                    detail::vec_t<double>* acc) {
    using V = detail::vec_t<double>;
    constexpr std::size_t L = detail::lanes<double>();
    for (std::size_t i = 0; i < n; ++i) acc[i] = V{};
    for (std::size_t j = j0; j < j1; j += L) {
        V wj[D];
        for (std::size_t k = 0; k < D; ++k) wj[k] = detail::vload(w + k * m + j);
        forward_group<D>(detail::vload(a + j), detail::vload(b + j), wj, x, n, acc);
    }
}

template <std::size_t D>
EF_ALWAYS_INLINE void output_sums_small(const double* a, const double* b, const double* w, std::size_t m,
                                        const double* x, std::size_t n, double* sums, double* part) {
    using V = detail::vec_t<double>;
    const std::size_t whole = m / detail::lanes<double>() * detail::lanes<double>();
    V* total = reinterpret_cast<V*>(part);  // 2 n vectors, 32-byte aligned by the caller
    V* acc = total + n;
    forward_chunk<D>(a, b, w, m, 0, std::min(whole, kChunk), x, n, total);
    for (std::size_t j0 = kChunk; j0 < whole; j0 += kChunk) {
        forward_chunk<D>(a, b, w, m, j0, std::min(whole, j0 + kChunk), x, n, acc);
        for (std::size_t i = 0; i < n; ++i) total[i] += acc[i];
    }
    forward_finish<D>(a, b, w, m, whole, x, n, total, sums);
}

// dots[i] = sum_j a_j relu(z_ij) over the block [j0, j0 + jb) for n samples.
EF_ALWAYS_INLINE void block_dots_any(const double* a, const double* b, const double* w, std::size_t m, std::size_t d,
                    const double* x, std::size_t n, std::size_t j0, std::size_t jb, double* z, double* dots) {
    for (std::size_t i = 0; i < n; ++i) {
        preactivation(b, w, m, d, x + i * d, j0, jb, z);
        for (std::size_t j = 0; j < jb; ++j) z[j] = z[j] >= 0.0 ? z[j] : 0.0;
        dots[i] = detail::dot_impl(a + j0, z, jb);
    }
}

EF_ALWAYS_INLINE void output_sums_any(const double* a, const double* b, const double* w, std::size_t m, std::size_t d,
                     const double* x, std::size_t n, double* sums, double* z) {
    std::fill(sums, sums + n, 0.0);
    for (std::size_t j0 = 0; j0 < m; j0 += kBlock) {
        const std::size_t jb = std::min(kBlock, m - j0);
        for (std::size_t i = 0; i < n; ++i) {
            double dot;
            block_dots_any(a, b, w, m, d, x + i * d, 1, j0, jb, z, &dot);
            sums[i] += dot;
        }
    }
}

EF_ALWAYS_INLINE void output_sums_impl(const double* a, const double* b, const double* w, std::size_t m,
                                        std::size_t d, const double* x, std::size_t n, double* sums,
                                        double* scratch) {
    switch (d) {
        case 1: return output_sums_small<1>(a, b, w, m, x, n, sums, scratch);
        case 2: return output_sums_small<2>(a, b, w, m, x, n, sums, scratch);
        case 3: return output_sums_small<3>(a, b, w, m, x, n, sums, scratch);
        case 4: return output_sums_small<4>(a, b, w, m, x, n, sums, scratch);
        default: return output_sums_any(a, b, w, m, d, x, n, sums, scratch);
    }
}

// Gradient of mean_i r_i^2/2 (r_i = f(x_i) - y_i) given c_i = r_i / (m n):
// ga_j = sum_i c_i relu(z_ij), gb_j = sum_i c_i a_j [z_ij >= 0],
// gw_j = sum_i c_i a_j [z_ij >= 0] x_i. Small d: four particles at a time with
// their parameters and gradients in registers over the whole batch.
// G groups at once: independent sums (more work in flight), each sample's
// inputs read once; each group's numbers are those of one group alone.
template <std::size_t D, std::size_t G, class V>
EF_ALWAYS_INLINE void grad_groups(const V* aj, const V* bj, const V (*wj)[D], const double* x, const double* c,
                                  std::size_t n, V* ga, V* gb, V (*gw)[D]) {
    V gaj[G], gbj[G], gwj[G][D];
    for (std::size_t g = 0; g < G; ++g) {
        gaj[g] = V{};
        gbj[g] = V{};
        for (std::size_t k = 0; k < D; ++k) gwj[g][k] = V{};
    }
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t g = 0; g < G; ++g) {
            V z = bj[g];
            for (std::size_t k = 0; k < D; ++k) z += wj[g][k] * x[i * D + k];
            const auto on = z >= 0.0;
            gaj[g] += on ? c[i] * z : V{};
            const V t = on ? c[i] * aj[g] : V{};
            gbj[g] += t;
            for (std::size_t k = 0; k < D; ++k) gwj[g][k] += t * x[i * D + k];
        }
    }
    for (std::size_t g = 0; g < G; ++g) {
        ga[g] = gaj[g];
        gb[g] = gbj[g];
        for (std::size_t k = 0; k < D; ++k) gw[g][k] = gwj[g][k];
    }
}

template <std::size_t D, class V>
EF_ALWAYS_INLINE void grad_group(V aj, V bj, const V* wj, const double* x, const double* c, std::size_t n,
                                 V& ga, V& gb, V* gw) {
    V w1[1][D], gw1[1][D];
    for (std::size_t k = 0; k < D; ++k) w1[0][k] = wj[k];
    grad_groups<D, 1>(&aj, &bj, w1, x, c, n, &ga, &gb, gw1);
    for (std::size_t k = 0; k < D; ++k) gw[k] = gw1[0][k];
}

// The same for one particle (the ones that fill no vector).
template <std::size_t D>
EF_ALWAYS_INLINE void grad_one(double aj, double bj, const double* wj, const double* x, const double* c,
                               std::size_t n, double& ga, double& gb, double* gw) {
    double gaj = 0.0, gbj = 0.0, gwj[D] = {};
    for (std::size_t i = 0; i < n; ++i) {
        double z = bj;
        for (std::size_t k = 0; k < D; ++k) z += wj[k] * x[i * D + k];
        const bool on = z >= 0.0;
        gaj += on ? c[i] * z : 0.0;
        const double t = on ? c[i] * aj : 0.0;
        gbj += t;
        for (std::size_t k = 0; k < D; ++k) gwj[k] += t * x[i * D + k];
    }
    ga = gaj;
    gb = gbj;
    for (std::size_t k = 0; k < D; ++k) gw[k] = gwj[k];
}

template <std::size_t D>
EF_ALWAYS_INLINE void accumulate_grads_small(const double* a, const double* b, const double* w, std::size_t m,
                                             const double* x, const double* c, std::size_t n, double* ga,
                                             double* gb, double* gw) {
    using V = detail::vec_t<double>;
    constexpr std::size_t L = detail::lanes<double>();
    std::size_t j = 0;
    for (; j + L <= m; j += L) {
        V wj[D], gaj, gbj, gwj[D];
        for (std::size_t k = 0; k < D; ++k) wj[k] = detail::vload(w + k * m + j);
        grad_group<D>(detail::vload(a + j), detail::vload(b + j), wj, x, c, n, gaj, gbj, gwj);
        detail::vstore(ga + j, gaj);
        detail::vstore(gb + j, gbj);
        for (std::size_t k = 0; k < D; ++k) detail::vstore(gw + k * m + j, gwj[k]);
    }
    for (; j < m; ++j) {
        double wj[D], gwj[D];
        for (std::size_t k = 0; k < D; ++k) wj[k] = w[k * m + j];
        grad_one<D>(a[j], b[j], wj, x, c, n, ga[j], gb[j], gwj);
        for (std::size_t k = 0; k < D; ++k) gw[k * m + j] = gwj[k];
    }
}

// The gradient sums of the particles [j0, j0 + jb) (the block of kBlock at most),
// z and t scratch for jb values.
EF_ALWAYS_INLINE void grad_block_any(const double* a, const double* b, const double* w, std::size_t m, std::size_t d,
                    const double* x, const double* c, std::size_t n, double* ga, double* gb, double* gw,
                    std::size_t j0, std::size_t jb, double* z, double* t) {
    std::fill(ga + j0, ga + j0 + jb, 0.0);
    std::fill(gb + j0, gb + j0 + jb, 0.0);
    for (std::size_t k = 0; k < d; ++k) std::fill(gw + k * m + j0, gw + k * m + j0 + jb, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
        const double ci = c[i];
        const double* xi = x + i * d;
        preactivation(b, w, m, d, xi, j0, jb, z);
        for (std::size_t j = 0; j < jb; ++j) {
            const bool on = z[j] >= 0.0;
            ga[j0 + j] += on ? ci * z[j] : 0.0;
            t[j] = on ? ci * a[j0 + j] : 0.0;
            gb[j0 + j] += t[j];
        }
        for (std::size_t k = 0; k < d; ++k) {
            const double xk = xi[k];
            double* gwk = gw + k * m + j0;
            for (std::size_t j = 0; j < jb; ++j) gwk[j] += t[j] * xk;
        }
    }
}

EF_ALWAYS_INLINE void accumulate_grads_any(const double* a, const double* b, const double* w, std::size_t m, std::size_t d,
                          const double* x, const double* c, std::size_t n, double* ga, double* gb, double* gw,
                          double* z, double* t) {
    for (std::size_t j0 = 0; j0 < m; j0 += kBlock)
        grad_block_any(a, b, w, m, d, x, c, n, ga, gb, gw, j0, std::min(kBlock, m - j0), z, t);
}

EF_ALWAYS_INLINE void accumulate_grads_impl(const double* a, const double* b, const double* w, std::size_t m,
                                             std::size_t d, const double* x, const double* c, std::size_t n,
                                             double* ga, double* gb, double* gw, double* z, double* t) {
    switch (d) {
        case 1: return accumulate_grads_small<1>(a, b, w, m, x, c, n, ga, gb, gw);
        case 2: return accumulate_grads_small<2>(a, b, w, m, x, c, n, ga, gb, gw);
        case 3: return accumulate_grads_small<3>(a, b, w, m, x, c, n, ga, gb, gw);
        case 4: return accumulate_grads_small<4>(a, b, w, m, x, c, n, ga, gb, gw);
        default: return accumulate_grads_any(a, b, w, m, d, x, c, n, ga, gb, gw, z, t);
    }
}

EF_ALWAYS_INLINE void sgd_update_impl(double* p, const double* g, std::size_t n, double lr) {
    for (std::size_t i = 0; i < n; ++i) p[i] -= lr * g[i];
}

// One round of step_chunk: the gradient and update of R groups from
// particle j on, and the forward pass of the G groups of the round before
// (pending == G), whose updated particles ap, bp, wp it then replaces.
template <std::size_t D, std::size_t R, class V, std::size_t G>
EF_ALWAYS_INLINE void step_round(double* a, double* b, double* w, std::size_t m, std::size_t& j, const double* x,
                                 const double* c, std::size_t n, double lr, const double* x_next,
                                 std::size_t n_next, V* acc, V (&ap)[G], V (&bp)[G], V (&wp)[G][D],
                                 std::size_t& pending) {
    constexpr std::size_t L = detail::lanes<double>();
    V aj[R], bj[R], wj[R][D], gaj[R], gbj[R], gwj[R][D];
    for (std::size_t g = 0; g < R; ++g) {
        aj[g] = detail::vload(a + j + g * L);
        bj[g] = detail::vload(b + j + g * L);
        for (std::size_t k = 0; k < D; ++k) wj[g][k] = detail::vload(w + k * m + j + g * L);
    }
    grad_groups<D, R>(aj, bj, wj, x, c, n, gaj, gbj, gwj);
    if (pending == G) forward_groups<D, G>(ap, bp, wp, x_next, n_next, acc);
    for (std::size_t g = 0; g < R; ++g) {
        ap[g] = aj[g] - lr * gaj[g];
        bp[g] = bj[g] - lr * gbj[g];
        for (std::size_t k = 0; k < D; ++k) wp[g][k] = wj[g][k] - lr * gwj[g][k];
        detail::vstore(a + j + g * L, ap[g]);
        detail::vstore(b + j + g * L, bp[g]);
        for (std::size_t k = 0; k < D; ++k) detail::vstore(w + k * m + j + g * L, wp[g][k]);
    }
    pending = R;
    j += R * L;
}

// One SGD step (gradient of the batch (x, c), c_i = r_i / (m n), then
// p -= lr g) fused with the forward pass of the next batch x_next (n_next
// samples, 0 for none) on the updated particles: each group of particles is
// read and written once per step instead of three times, its gradient never
// leaves the registers. The same expressions in the same order as
// accumulate_grads + sgd_update + output_sums, so the same bits.
// step_chunk does the particles [j0, j1) (whole vectors), leaving their
// partial sums of the next batch in acc (n_next vectors); step_finish adds the
// chunks' sums in order and does the particles that fill no vector.
template <std::size_t D>
EF_ALWAYS_INLINE void step_chunk(double* a, double* b, double* w, std::size_t m, std::size_t j0, std::size_t j1,
                                 const double* x, const double* c, std::size_t n, double lr, const double* x_next,
                                 std::size_t n_next, detail::vec_t<double>* acc) {
    using V = detail::vec_t<double>;
    constexpr std::size_t L = detail::lanes<double>();
    for (std::size_t i = 0; i < n_next; ++i) acc[i] = V{};
    // A group's forward pass waits for its update, which waits for the end of
    // its gradient sums: it runs one round later, beside the next groups'
    // gradients, so the two overlap. Two groups per round (G), one for the last
    // if their count is odd; the groups still add into acc in order.
    constexpr std::size_t G = 2;
    V ap[G], bp[G], wp[G][D];
    std::size_t pending = 0;  // groups whose forward pass is due
    std::size_t j = j0;
    while (j + G * L <= j1)
        step_round<D, G>(a, b, w, m, j, x, c, n, lr, x_next, n_next, acc, ap, bp, wp, pending);
    if (j + L <= j1) {
        if (pending == G) {  // the single group's forward pass follows the pair's
            forward_groups<D, G>(ap, bp, wp, x_next, n_next, acc);
            pending = 0;
        }
        step_round<D, 1>(a, b, w, m, j, x, c, n, lr, x_next, n_next, acc, ap, bp, wp, pending);
    }
    if (pending == G) forward_groups<D, G>(ap, bp, wp, x_next, n_next, acc);
    if (pending == 1) forward_groups<D, 1>(ap, bp, wp, x_next, n_next, acc);
}

template <std::size_t D>
EF_ALWAYS_INLINE void step_finish(double* a, double* b, double* w, std::size_t m, const double* x,
                                  const double* c, std::size_t n, double lr, const double* x_next,
                                  std::size_t n_next, double* sums_next, detail::vec_t<double>* accs) {
    const std::size_t whole = m / detail::lanes<double>() * detail::lanes<double>();
    const std::size_t chunks = chunk_count(m, D);
    for (std::size_t q = 1; q < chunks; ++q)
        for (std::size_t i = 0; i < n_next; ++i) accs[i] += accs[q * n_next + i];
    if (chunks == 0)
        for (std::size_t i = 0; i < n_next; ++i) accs[i] = detail::vec_t<double>{};
    for (std::size_t jj = whole; jj < m; ++jj) {
        double wj[D], gaj, gbj, gwj[D];
        for (std::size_t k = 0; k < D; ++k) wj[k] = w[k * m + jj];
        grad_one<D>(a[jj], b[jj], wj, x, c, n, gaj, gbj, gwj);
        a[jj] -= lr * gaj;
        b[jj] -= lr * gbj;
        for (std::size_t k = 0; k < D; ++k) w[k * m + jj] -= lr * gwj[k];
    }
    forward_finish<D>(a, b, w, m, whole, x_next, n_next, accs, sums_next);
}

// Chunk q of a d > 4 step: the gradient and update of its block of particles
// (gradients in ga, gb, gw), then its dot products with the next batch in
// dots[q n_next ..]: step_finish adds them in block order, as output_sums_any.
EF_ALWAYS_INLINE void step_chunk_any(double* a, double* b, double* w, std::size_t m, std::size_t d,
                                     const double* x, const double* c, std::size_t n, double lr,
                                     const double* x_next, std::size_t n_next, std::size_t q, double* dots,
                                     double* ga, double* gb, double* gw) {
    alignas(32) double z[kBlock], t[kBlock];
    const std::size_t j0 = q * kBlock, jb = std::min(kBlock, m - j0);
    grad_block_any(a, b, w, m, d, x, c, n, ga, gb, gw, j0, jb, z, t);
    sgd_update_impl(a + j0, ga + j0, jb, lr);
    sgd_update_impl(b + j0, gb + j0, jb, lr);
    for (std::size_t k = 0; k < d; ++k) sgd_update_impl(w + k * m + j0, gw + k * m + j0, jb, lr);
    block_dots_any(a, b, w, m, d, x_next, n_next, j0, jb, z, dots + q * n_next);
}

// Chunk q of a step, its sums in accs + q n_next vectors (d <= 4) or values.
EF_ALWAYS_INLINE void step_chunk_impl(double* a, double* b, double* w, std::size_t m, std::size_t d,
                                      const double* x, const double* c, std::size_t n, double lr,
                                      const double* x_next, std::size_t n_next, std::size_t q, double* accs,
                                      double* ga, double* gb, double* gw) {
    if (d > 4) return step_chunk_any(a, b, w, m, d, x, c, n, lr, x_next, n_next, q, accs, ga, gb, gw);
    const std::size_t whole = m / detail::lanes<double>() * detail::lanes<double>();
    const std::size_t j0 = q * kChunk, j1 = std::min(whole, j0 + kChunk);
    auto* acc = reinterpret_cast<detail::vec_t<double>*>(accs) + q * n_next;
    switch (d) {
        case 1: return step_chunk<1>(a, b, w, m, j0, j1, x, c, n, lr, x_next, n_next, acc);
        case 2: return step_chunk<2>(a, b, w, m, j0, j1, x, c, n, lr, x_next, n_next, acc);
        case 3: return step_chunk<3>(a, b, w, m, j0, j1, x, c, n, lr, x_next, n_next, acc);
        case 4: return step_chunk<4>(a, b, w, m, j0, j1, x, c, n, lr, x_next, n_next, acc);
        default: return;
    }
}

EF_ALWAYS_INLINE void step_finish_impl(double* a, double* b, double* w, std::size_t m, std::size_t d,
                                       const double* x, const double* c, std::size_t n, double lr,
                                       const double* x_next, std::size_t n_next, double* sums_next, double* accs) {
    using V = detail::vec_t<double>;
    V* acc = reinterpret_cast<V*>(accs);
    switch (d) {
        case 1: return step_finish<1>(a, b, w, m, x, c, n, lr, x_next, n_next, sums_next, acc);
        case 2: return step_finish<2>(a, b, w, m, x, c, n, lr, x_next, n_next, sums_next, acc);
        case 3: return step_finish<3>(a, b, w, m, x, c, n, lr, x_next, n_next, sums_next, acc);
        case 4: return step_finish<4>(a, b, w, m, x, c, n, lr, x_next, n_next, sums_next, acc);
        default: {  // the blocks' dot products, added in order
            const std::size_t chunks = chunk_count(m, d);
            for (std::size_t i = 0; i < n_next; ++i) {
                double sum = 0.0;
                for (std::size_t q = 0; q < chunks; ++q) sum += accs[q * n_next + i];
                sums_next[i] = sum;
            }
        }
    }
}

// the kernels (multiversion.hpp)
EF_MULTIVERSION(, void, output_sums,
                (const double* a, const double* b, const double* w, std::size_t m, std::size_t d, const double* x,
                 std::size_t n, double* sums, double* scratch),
                (a, b, w, m, d, x, n, sums, scratch), output_sums_impl)
EF_MULTIVERSION(, void, accumulate_grads,
                (const double* a, const double* b, const double* w, std::size_t m, std::size_t d, const double* x,
                 const double* c, std::size_t n, double* ga, double* gb, double* gw, double* z, double* t),
                (a, b, w, m, d, x, c, n, ga, gb, gw, z, t), accumulate_grads_impl)
EF_MULTIVERSION(, void, sgd_update, (double* p, const double* g, std::size_t n, double lr), (p, g, n, lr),
                sgd_update_impl)
EF_MULTIVERSION(, void, step_one_chunk,
                (double* a, double* b, double* w, std::size_t m, std::size_t d, const double* x, const double* c,
                 std::size_t n, double lr, const double* x_next, std::size_t n_next, std::size_t q, double* accs,
                 double* ga, double* gb, double* gw),
                (a, b, w, m, d, x, c, n, lr, x_next, n_next, q, accs, ga, gb, gw), step_chunk_impl)
EF_MULTIVERSION(, void, step_finish_sums,
                (double* a, double* b, double* w, std::size_t m, std::size_t d, const double* x, const double* c,
                 std::size_t n, double lr, const double* x_next, std::size_t n_next, double* sums_next,
                 double* accs),
                (a, b, w, m, d, x, c, n, lr, x_next, n_next, sums_next, accs), step_finish_impl)

bool finite_params(const MeanField& net) {
    for (double v : net.a) if (!std::isfinite(v)) return false;
    for (double v : net.b) if (!std::isfinite(v)) return false;
    for (double v : net.w) if (!std::isfinite(v)) return false;
    return true;
}

// residual_i = sums_i / m - y_i (in place when residual is sums) and the loss
// mean_i residual_i^2 / 2.
double residual_loss(const double* sums, const double* y, std::size_t n, std::size_t m, double* residual) {
    for (std::size_t i = 0; i < n; ++i) residual[i] = sums[i] / double(m) - y[i];
    double loss = 0.0;  // summed apart from the store: see squared_error in loss.hpp
    for (std::size_t i = 0; i < n; ++i) loss += 0.5 * residual[i] * residual[i];
    return loss / double(n);
}

double batch_loss(const MeanField& net, const double* x, const double* y, std::size_t n, MeanFieldWork& w,
                  double* residual) {
    w.reserve_samples(n);
    output_sums(net.a.data(), net.b.data(), net.w.data(), net.m, net.d, x, n, residual, w.scratch());
    return residual_loss(residual, y, n, net.m, residual);
}

// SGD on consecutive batches with one pass over the particles per step: each
// step's update is fused with the next batch's forward pass (step_forward),
// whose output sums the chain keeps for that batch's step. The same numbers as
// meanfield_step on each batch in turn. The particles must not change between
// start and the steps but through the chain.
// The step's chunks of particles are taken by the team's threads in turn,
// then their sums added in order on the calling thread.
class StepChain {
public:
    StepChain(MeanField& net, MeanFieldWork& w, std::size_t batch, Team& team)
        : net_(net), w_(w), team_(team) {
        w_.reserve_samples(batch);
        sums_.assign(batch, 0.0);
        // 32-byte aligned room for every chunk's partial sums of a batch (one chunk at least)
        accs_.assign(4 * std::max<std::size_t>(1, chunk_count(net.m, net.d)) * batch + 4, 0.0);
    }

    // The forward pass of the first batch.
    void start(const double* x, std::size_t n) {
        output_sums(net_.a.data(), net_.b.data(), net_.w.data(), net_.m, net_.d, x, n, sums_.data(),
                    w_.scratch());
    }

    // The step on (x, y) (the batch given to start or as the previous step's
    // next); x_next the batch after it (n_next = 0: none). Returns the batch
    // loss before the step, as meanfield_step.
    double step(const double* x, const double* y, std::size_t n, double lr, const double* x_next,
                std::size_t n_next) {
        double* residual = w_.resid.data();
        const double loss = residual_loss(sums_.data(), y, n, net_.m, residual);
        const double scale = 1.0 / (double(net_.m) * double(n));
        for (std::size_t i = 0; i < n; ++i) residual[i] *= scale;
        double *a = net_.a.data(), *b = net_.b.data(), *w = net_.w.data();
        const std::size_t m = net_.m, d = net_.d;
        auto p = reinterpret_cast<std::uintptr_t>(accs_.data());
        double* accs = reinterpret_cast<double*>((p + 31) & ~std::uintptr_t(31));
        auto chunk = [&](std::size_t q) {
            step_one_chunk(a, b, w, m, d, x, residual, n, lr, x_next, n_next, q, accs, w_.ga.data(),
                           w_.gb.data(), w_.gw.data());
        };
        team_.run(chunk_count(m, d), chunk);
        step_finish_sums(a, b, w, m, d, x, residual, n, lr, x_next, n_next, sums_.data(), accs);
        return loss;
    }

private:
    MeanField& net_;
    MeanFieldWork& w_;
    Team& team_;
    std::vector<double> sums_, accs_;
};

// The threads a fit of `net` uses: the chunks of a step at most.
std::size_t step_threads(const MeanField& net) {
    return std::min(get_num_threads(), chunk_count(net.m, net.d));
}

// batch_loss on n samples cut into consecutive pieces that the team's threads
// take in turn, each piece with its own work (reserved before the loop);
// every sample's sum is one thread's: the bits of batch_loss.
class TeamLoss {
public:
    TeamLoss(Team& team, std::size_t n) : team_(team), works_(team.size() > 1 ? 4 * team.size() : 1) {
        for (std::size_t p = 0; p < works_.size(); ++p) works_[p].reserve_samples(piece(p, n).second);
    }

    double operator()(const MeanField& net, const double* x, const double* y, std::size_t n, double* residual) {
        auto sums = [&](std::size_t p) {
            const auto [i0, count] = piece(p, n);
            output_sums(net.a.data(), net.b.data(), net.w.data(), net.m, net.d, x + i0 * net.d, count,
                        residual + i0, works_[p].scratch());
        };
        team_.run(works_.size(), sums);
        return residual_loss(residual, y, n, net.m, residual);
    }

private:
    // piece p's first sample and count
    std::pair<std::size_t, std::size_t> piece(std::size_t p, std::size_t n) const {
        const std::size_t P = works_.size(), i0 = p * n / P;
        return {i0, (p + 1) * n / P - i0};
    }

    Team& team_;
    std::vector<MeanFieldWork> works_;
};

}  // namespace

void MeanField::load(const double* a_in, const double* w_rows, const double* b_in, std::size_t m_, std::size_t d_) {
    m = m_;
    d = d_;
    a.assign(a_in, a_in + m);
    b.assign(b_in, b_in + m);
    w.resize(m * d);
    for (std::size_t j = 0; j < m; ++j)
        for (std::size_t k = 0; k < d; ++k) w[k * m + j] = w_rows[j * d + k];
}

void MeanField::store(double* a_out, double* w_rows, double* b_out) const {
    std::copy(a.begin(), a.end(), a_out);
    std::copy(b.begin(), b.end(), b_out);
    for (std::size_t j = 0; j < m; ++j)
        for (std::size_t k = 0; k < d; ++k) w_rows[j * d + k] = w[k * m + j];
}

void MeanField::snapshot(double* out) const {
    const std::size_t r = d + 2;
    for (std::size_t j = 0; j < m; ++j) {
        out[j * r] = a[j];
        for (std::size_t k = 0; k < d; ++k) out[j * r + 1 + k] = w[k * m + j];
        out[j * r + 1 + d] = b[j];
    }
}

void MeanFieldWork::reserve_samples(std::size_t n) {
    // 32-byte aligned room for max(kBlock, 8 n) doubles (output_sums_small's 2 n vectors)
    const std::size_t need = std::max(kBlock, 8 * n) + 4;
    if (z.size() < need) z.assign(need, 0.0);
    if (resid.size() < n) resid.assign(n, 0.0);
    if (coef.size() < kBlock) coef.assign(kBlock, 0.0);
}

double* MeanFieldWork::scratch() {
    auto p = reinterpret_cast<std::uintptr_t>(z.data());
    return reinterpret_cast<double*>((p + 31) & ~std::uintptr_t(31));
}

void MeanFieldWork::reserve(std::size_t m, std::size_t d) {
    z.assign(kBlock + 4, 0.0);
    coef.assign(kBlock, 0.0);
    ga.assign(m, 0.0);
    gb.assign(m, 0.0);
    gw.assign(m * d, 0.0);
}

void meanfield_forward(const MeanField& net, const double* x, std::size_t n, double* out, MeanFieldWork& w) {
    w.reserve_samples(n);
    output_sums(net.a.data(), net.b.data(), net.w.data(), net.m, net.d, x, n, out, w.scratch());
    for (std::size_t i = 0; i < n; ++i) out[i] /= double(net.m);
}

double meanfield_step(MeanField& net, const double* x, const double* y, std::size_t n, double lr,
                      MeanFieldWork& w) {
    w.reserve_samples(n);
    std::vector<double>& c = w.coef;
    std::vector<double>& residual = w.resid;
    const double loss = batch_loss(net, x, y, n, w, residual.data());
    const double scale = 1.0 / (double(net.m) * double(n));
    for (std::size_t i = 0; i < n; ++i) residual[i] *= scale;
    accumulate_grads(net.a.data(), net.b.data(), net.w.data(), net.m, net.d, x, residual.data(), n, w.ga.data(),
                     w.gb.data(), w.gw.data(), w.z.data(), c.data());
    sgd_update(net.a.data(), w.ga.data(), net.m, lr);
    sgd_update(net.b.data(), w.gb.data(), net.m, lr);
    sgd_update(net.w.data(), w.gw.data(), net.m * net.d, lr);
    return loss;
}

void TeacherStream::draw(const MeanField& teacher, std::int64_t steps, std::size_t batch, Rng& rng) {
    const std::size_t d = teacher.d, n = std::size_t(steps);
    x.resize(n * batch * d);
    y.resize(n * batch);
    MeanFieldWork wt;
    wt.reserve(teacher.m, d);
    for (std::size_t s = 0; s < n; ++s) {  // step by step, as meanfield_fit_teacher draws
        normal_fill(rng, x.data() + s * batch * d, batch * d);
        meanfield_forward(teacher, x.data() + s * batch * d, batch, y.data() + s * batch, wt);
    }
}

MeanFieldRun meanfield_fit_teacher(MeanField& student, const MeanField& teacher, std::int64_t steps,
                                   std::size_t batch, double lr, std::int64_t snapshot_every, Rng& rng,
                                   const double* x_test, const double* y_test, std::size_t n_test,
                                   double* snapshots, double* test_loss, const TeacherStream* stream,
                                   const double* inputs) {
    MeanFieldRun run;
    const std::size_t m = student.m, d = student.d, r = d + 2;
    MeanFieldWork w, wt;
    w.reserve(m, d);
    wt.reserve(teacher.m, d);
    w.reserve_samples(batch);
    Team team(step_threads(student));
    TeamLoss held_out(team, n_test);
    // two batches: the step's and the next, drawn before the step (the fused pass needs it)
    std::vector<double> x(2 * batch * d), y(2 * batch), resid(std::max(n_test, batch));
    std::int64_t k = 0;
    auto record = [&]() {
        student.snapshot(snapshots + std::size_t(k) * m * r);
        test_loss[k] = n_test ? held_out(student, x_test, y_test, n_test, resid.data()) : 0.0;
        run.snapshots_done = ++k;
    };
    // the samples and labels of step s
    auto draw = [&](std::int64_t s, const double*& xs, const double*& ys) {
        if (stream) {
            xs = stream->x.data() + std::size_t(s) * batch * d;
            ys = stream->y.data() + std::size_t(s) * batch;
            return;
        }
        double* xb = x.data() + std::size_t(s % 2) * batch * d;
        double* yb = y.data() + std::size_t(s % 2) * batch;
        if (inputs) {
            xs = inputs + std::size_t(s) * batch * d;
        } else {
            normal_fill(rng, xb, batch * d);
            xs = xb;
        }
        meanfield_forward(teacher, xs, batch, yb, wt);
        ys = yb;
    };
    record();
    StepChain chain(student, w, batch, team);
    const double *xs = nullptr, *ys = nullptr, *xn = nullptr, *yn = nullptr;
    if (steps > 0) {
        draw(0, xs, ys);
        chain.start(xs, batch);
    }
    for (std::int64_t s = 0; s < steps; ++s) {
        const bool more = s + 1 < steps;
        if (more) draw(s + 1, xn, yn);
        const double L = chain.step(xs, ys, batch, lr, xn, more ? batch : 0);
        xs = xn;
        ys = yn;
        run.steps_done = s + 1;
        // the loss is taken before the step: the last step's blow-up shows in the parameters
        if (!std::isfinite(L) || (s + 1 == steps && !finite_params(student))) {
            run.diverged = true;
            run.bad_step = s;
            return run;
        }
        if ((snapshot_every > 0 && (s + 1) % snapshot_every == 0) || (snapshot_every == 0 && s + 1 == steps)) {
            record();
            if (n_test && !std::isfinite(test_loss[k - 1])) {
                run.diverged = true;
                run.bad_step = s;
                return run;
            }
        } else if (s + 1 == steps && n_test &&
                   !std::isfinite(held_out(student, x_test, y_test, n_test, resid.data()))) {
            // the last step's blow-up can leave huge but finite parameters
            run.diverged = true;
            run.bad_step = s;
            return run;
        }
    }
    return run;
}

MeanFieldRun meanfield_fit(MeanField& net, const double* x, const double* y, std::size_t n, double lr,
                           std::size_t batch, std::int64_t epochs, bool shuffle, Rng& rng,
                           std::int64_t snapshot_every, double* snapshots, double* loss_out) {
    MeanFieldRun run;
    const std::size_t m = net.m, d = net.d, r = d + 2;
    MeanFieldWork w;
    w.reserve(m, d);
    Team team(step_threads(net));
    TeamLoss train_loss(team, n);
    const std::size_t nb = std::min(batch, n);
    w.reserve_samples(nb);
    // two batches: the step's and the next, gathered before the step (the fused pass needs it)
    std::vector<double> xb(2 * nb * d), yb(2 * nb), resid(n);
    std::vector<std::size_t> idx(n);
    std::int64_t k = 0, step = 0;
    auto record = [&]() {
        net.snapshot(snapshots + std::size_t(k) * m * r);
        loss_out[k] = train_loss(net, x, y, n, resid.data());
        run.snapshots_done = ++k;
    };
    record();
    const std::size_t per_epoch = (n + nb - 1) / nb;
    const std::int64_t total = epochs * std::int64_t(per_epoch);
    // batch q of the run into buffer q % 2; the epoch's order is drawn at its first batch
    auto gather = [&](std::int64_t q, std::size_t& cnt) {
        const std::size_t start = std::size_t(q % std::int64_t(per_epoch)) * nb;
        if (start == 0) {
            std::iota(idx.begin(), idx.end(), std::size_t(0));
            if (shuffle) rng.shuffle(idx.data(), n);
        }
        cnt = std::min(nb, n - start);
        double* xq = xb.data() + std::size_t(q % 2) * nb * d;
        double* yq = yb.data() + std::size_t(q % 2) * nb;
        for (std::size_t i = 0; i < cnt; ++i) {
            const std::size_t row = idx[start + i];
            std::copy(x + row * d, x + row * d + d, xq + i * d);
            yq[i] = y[row];
        }
    };
    StepChain chain(net, w, nb, team);
    std::size_t cnt = 0, cnt_next = 0;
    if (total > 0) {
        gather(0, cnt);
        chain.start(xb.data(), cnt);
    }
    for (; step < total;) {
        const std::size_t cur = std::size_t(step % 2), nxt = 1 - cur;
        const bool more = step + 1 < total;
        if (more) gather(step + 1, cnt_next);
        const double L = chain.step(xb.data() + cur * nb * d, yb.data() + cur * nb, cnt, lr,
                                    xb.data() + nxt * nb * d, more ? cnt_next : 0);
        cnt = cnt_next;
        ++step;
        run.steps_done = step;
        if (!std::isfinite(L) || (step == total && !finite_params(net))) {
            run.diverged = true;
            run.bad_step = step - 1;
            return run;
        }
        if ((snapshot_every > 0 && step % snapshot_every == 0) || (snapshot_every == 0 && step == total)) {
            record();
            if (!std::isfinite(loss_out[k - 1])) {
                run.diverged = true;
                run.bad_step = step - 1;
                return run;
            }
        } else if (step == total && !std::isfinite(train_loss(net, x, y, n, resid.data()))) {
            run.diverged = true;
            run.bad_step = step - 1;
            return run;
        }
    }
    return run;
}

namespace {

// The members' indices, most particles first: the pool hands them out in this
// order, so the longest runs do not start last.
std::vector<std::size_t> longest_first(const std::vector<MeanFieldMember>& members) {
    std::vector<std::size_t> order(members.size());
    std::iota(order.begin(), order.end(), std::size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](std::size_t i, std::size_t j) {
        return members[i].net.m * members[i].net.d > members[j].net.m * members[j].net.d;
    });
    return order;
}

}  // namespace

void meanfield_fit_teacher_members(std::vector<MeanFieldMember>& members, std::int64_t steps, std::size_t batch,
                                   std::int64_t snapshot_every, std::size_t n_threads, std::size_t stream_bytes) {
    // the streams shared by two members or more (one teacher, one seed), while they fit
    using StreamKey = std::pair<const MeanField*, std::uint64_t>;
    std::map<StreamKey, std::size_t> count;
    for (const MeanFieldMember& mb : members) ++count[{mb.teacher, mb.seed}];
    std::map<StreamKey, TeacherStream> streams;
    double room = double(stream_bytes);
    for (const MeanFieldMember& mb : members) {
        const StreamKey key{mb.teacher, mb.seed};
        const double bytes = double(steps) * double(batch) * double(mb.net.d + 1) * double(sizeof(double));
        if (count[key] < 2 || streams.count(key) || bytes > room) continue;
        streams[key];
        room -= bytes;
    }
    std::vector<std::pair<const StreamKey, TeacherStream>*> todo;
    for (auto& kv : streams) todo.push_back(&kv);
    for_each_member(todo.size(), n_threads, [&](std::size_t k) {
        Rng rng(todo[k]->first.second);
        todo[k]->second.draw(*todo[k]->first.first, steps, batch, rng);
    });
    const std::vector<std::size_t> order = longest_first(members);
    const bool threaded = std::min(n_threads, members.size()) > 1;
    for_each_member(members.size(), n_threads, [&](std::size_t k) {
        // members already fill the threads asked for: each runs on one
        std::optional<SerialScope> serial;
        if (threaded) serial.emplace();
        MeanFieldMember& mb = members[order[k]];
        const auto shared = streams.find({mb.teacher, mb.seed});
        Rng rng(mb.seed);
        mb.run = meanfield_fit_teacher(mb.net, *mb.teacher, steps, batch, mb.lr, snapshot_every, rng, mb.x_test,
                                       mb.y_test, mb.n_test, mb.snapshots, mb.loss,
                                       shared == streams.end() ? nullptr : &shared->second);
    });
}

void meanfield_fit_members(std::vector<MeanFieldMember>& members, const double* x, const double* y, std::size_t n,
                           std::size_t batch, std::int64_t epochs, bool shuffle, std::int64_t snapshot_every,
                           std::size_t n_threads) {
    const std::vector<std::size_t> order = longest_first(members);
    const bool threaded = std::min(n_threads, members.size()) > 1;
    for_each_member(members.size(), n_threads, [&](std::size_t k) {
        std::optional<SerialScope> serial;
        if (threaded) serial.emplace();
        MeanFieldMember& mb = members[order[k]];
        Rng rng(mb.seed);
        mb.run = meanfield_fit(mb.net, x, y, n, mb.lr, batch, epochs, shuffle, rng, snapshot_every, mb.snapshots,
                               mb.loss);
    });
}

}  // namespace eulerflow
