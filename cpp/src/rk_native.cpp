// Fixed-step Runge-Kutta for the built-in fields with the field inlined.
//
// Bit-for-bit rk.cpp's integrate_fixed + rk_step: the same step count and step
// sizes per output interval, the same products h a_sj and h b_j with the same
// zero skips, the same sums in the same order, and the field's arithmetic from
// field_kernels.hpp, which the Field classes use too. rk.cpp and fields.cpp are
// built for baseline x86-64, where nothing is contracted into fused
// multiply-adds; this file's kernels are multi-versioned (AVX2, AVX-512:
// multiversion.hpp) and compiled with -ffp-contract=off (CMakeLists.txt), so
// their wider registers round the same. (A -march=native build compiles all
// three with the same contraction instead.)
#include "eulerflow/rk_native.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "eulerflow/field_kernels.hpp"
#include "eulerflow/multiversion.hpp"

namespace eulerflow {

namespace {

// the fixed-step methods have 1, 2 or 4 stages (euler; midpoint, heun; rk4, rk38)
constexpr std::size_t kMaxStages = 4;
// trajectories of a batch stepped side by side: one SIMD lane each, and enough
// independent chains to keep the floating-point units busy while one step's
// chain of dependent operations completes
constexpr std::size_t kLanes = 16;

// rk_step's coefficients for one step size h: h * A(s, j) and h * b[j], each
// product rounded as rk_step rounds it; a zero is a term rk_step skips.
struct StepCoefs {
    double a[kMaxStages][kMaxStages];
    double b[kMaxStages];
};

StepCoefs coefs_for(const Tableau& tb, double h) {
    StepCoefs c{};
    for (std::size_t s = 0; s < tb.stages; ++s) {
        for (std::size_t j = 0; j < s; ++j) c.a[s][j] = h * tb.A(s, j);
        c.b[s] = h * tb.b[s];
    }
    return c;
}

// Which terms a step adds, one bit per coefficient: a_sj is bit 4 s + j, b_j is
// bit 16 + j. The kernels take it as a template argument, so rk_step's
// `if (a == 0.0) continue` is settled at compile time for each method.
constexpr unsigned bit_a(std::size_t s, std::size_t j) { return 1u << (4 * s + j); }
constexpr unsigned bit_b(std::size_t j) { return 1u << (16 + j); }

unsigned terms_of(const StepCoefs& c, std::size_t S) {
    unsigned m = 0;
    for (std::size_t s = 0; s < S; ++s) {
        for (std::size_t j = 0; j < s; ++j)
            if (c.a[s][j] != 0.0) m |= bit_a(s, j);
        if (c.b[s] != 0.0) m |= bit_b(s);
    }
    return m;
}

// The terms of the built-in fixed-step methods (tableau.cpp).
constexpr unsigned kEuler = bit_b(0);
constexpr unsigned kMidpoint = bit_a(1, 0) | bit_b(1);
constexpr unsigned kHeun = bit_a(1, 0) | bit_b(0) | bit_b(1);
constexpr unsigned kRk4 = bit_a(1, 0) | bit_a(2, 1) | bit_a(3, 2) | bit_b(0) | bit_b(1) | bit_b(2) | bit_b(3);
constexpr unsigned kRk38 = bit_a(1, 0) | bit_a(2, 0) | bit_a(2, 1) | bit_a(3, 0) | bit_a(3, 1) | bit_a(3, 2) |
                           bit_b(0) | bit_b(1) | bit_b(2) | bit_b(3);

// One output interval: k steps from the states `from` to the states `to`
// (batch rows each); k - 1 with the nominal step size, then the last one, which
// lands on the output time, with its own.
struct Interval {
    const double* from;
    double* to;
    std::size_t batch;
    std::int64_t k;
    StepCoefs nominal, last;
};

// A block of trajectories side by side: a GCC vector of kLanes doubles, value
// i of every trajectory in one (each clone splits it into its widest registers).
typedef double Lanes __attribute__((vector_size(kLanes * sizeof(double))));

// `count` steps from y, rk_step's operations in its order: stage s starts from
// y and adds (h a_sj) K_j for j < s; y_new starts from y and adds (h b_j) K_j
// for j = 0, 1, ...; only the terms in T (the others are zero). V is double
// (one trajectory) or Lanes. A block of lanes adds each term of y_new as soon
// as its stage is known, holding fewer stages in registers; one trajectory
// adds them after the last stage, which measured faster there (the same sums
// in the same order either way).
template <class F, std::size_t S, unsigned T, class V>
EF_FIELD_INLINE void steps(const F& f, const StepCoefs& c, V (&y)[F::D], std::int64_t count) {
    constexpr std::size_t D = F::D;
    constexpr bool early = !std::is_same_v<V, double>;
    V K[S][D], yt[D], y_new[D];
    for (std::int64_t n = 0; n < count; ++n) {
        for (std::size_t i = 0; i < D; ++i) y_new[i] = y[i];
        for (std::size_t s = 0; s < S; ++s) {
            if (s == 0) {
                f(y, K[0]);
            } else {
                for (std::size_t i = 0; i < D; ++i) yt[i] = y[i];
                for (std::size_t j = 0; j < s; ++j) {
                    if (!(T & bit_a(s, j))) continue;
                    const double a = c.a[s][j];
                    for (std::size_t i = 0; i < D; ++i) yt[i] += a * K[j][i];
                }
                f(yt, K[s]);
            }
            if (early && (T & bit_b(s))) {
                const double b = c.b[s];
                for (std::size_t i = 0; i < D; ++i) y_new[i] += b * K[s][i];
            }
        }
        for (std::size_t j = 0; j < S; ++j) {
            if (early || !(T & bit_b(j))) continue;
            const double b = c.b[j];
            for (std::size_t i = 0; i < D; ++i) y_new[i] += b * K[j][i];
        }
        for (std::size_t i = 0; i < D; ++i) y[i] = y_new[i];
    }
}

// One interval of a single trajectory, its state in registers: the latency of
// one step's chain of dependent operations is the floor.
template <class F, std::size_t S, unsigned T>
EF_FIELD_INLINE void run_one(const F& f, const Interval& p) {
    constexpr std::size_t D = F::D;
    double y[D];
    for (std::size_t i = 0; i < D; ++i) y[i] = p.from[i];
    steps<F, S, T>(f, p.nominal, y, p.k - 1);
    steps<F, S, T>(f, p.last, y, 1);
    for (std::size_t i = 0; i < D; ++i) p.to[i] = y[i];
}

// One interval of a batch, in blocks of kLanes trajectories. The last block of
// a batch that kLanes does not divide repeats its last trajectory in the spare
// lanes and stores only the real ones.
template <class F, std::size_t S, unsigned T>
EF_FIELD_INLINE void run_lanes(const F& f, const Interval& p) {
    constexpr std::size_t D = F::D;
    for (std::size_t r0 = 0; r0 < p.batch; r0 += kLanes) {
        Lanes y[D];
        for (std::size_t l = 0; l < kLanes; ++l) {
            const std::size_t r = std::min(r0 + l, p.batch - 1);
            for (std::size_t i = 0; i < D; ++i) y[i][l] = p.from[r * D + i];
        }
        steps<F, S, T>(f, p.nominal, y, p.k - 1);
        steps<F, S, T>(f, p.last, y, 1);
        const std::size_t m = std::min(kLanes, p.batch - r0);
        for (std::size_t l = 0; l < m; ++l)
            for (std::size_t i = 0; i < D; ++i) p.to[(r0 + l) * D + i] = y[i][l];
    }
}

// The method's kernel, from its terms (one of the built-in methods: see covered_terms).
template <class F, bool Lanes>
EF_FIELD_INLINE void run_method(const F& f, unsigned terms, const Interval& p) {
    switch (terms) {
        case kEuler: return Lanes ? run_lanes<F, 1, kEuler>(f, p) : run_one<F, 1, kEuler>(f, p);
        case kMidpoint: return Lanes ? run_lanes<F, 2, kMidpoint>(f, p) : run_one<F, 2, kMidpoint>(f, p);
        case kHeun: return Lanes ? run_lanes<F, 2, kHeun>(f, p) : run_one<F, 2, kHeun>(f, p);
        case kRk4: return Lanes ? run_lanes<F, 4, kRk4>(f, p) : run_one<F, 4, kRk4>(f, p);
        case kRk38: return Lanes ? run_lanes<F, 4, kRk38>(f, p) : run_one<F, 4, kRk38>(f, p);
        default: return;
    }
}

bool covered_terms(unsigned terms) {
    return terms == kEuler || terms == kMidpoint || terms == kHeun || terms == kRk4 || terms == kRk38;
}

// The multi-versioned entry points (multiversion.hpp), per field kernel: one
// trajectory (scalar code: the SLP vectorizer's packing of a state's few
// values only lengthens the chain), and a batch (vectorized across the lanes).
#define EF_NATIVE_INTERVAL(F)                                                                         \
    EF_MULTIVERSION(__attribute__((optimize("no-tree-slp-vectorize"))), void, interval_one,             \
                    (const F& f, unsigned terms, const Interval& p), (f, terms, p), (run_method<F, false>)) \
    EF_MULTIVERSION(, void, interval_lanes, (const F& f, unsigned terms, const Interval& p), (f, terms, p), \
                    (run_method<F, true>))
EF_NATIVE_INTERVAL(LorenzFn)
EF_NATIVE_INTERVAL(VanDerPolFn)
EF_NATIVE_INTERVAL(ArenstorfFn)
EF_NATIVE_INTERVAL(ProjectileFn)
EF_NATIVE_INTERVAL(LinearFn<1>)
EF_NATIVE_INTERVAL(LinearFn<2>)
EF_NATIVE_INTERVAL(LinearFn<3>)
EF_NATIVE_INTERVAL(LinearFn<4>)
#undef EF_NATIVE_INTERVAL

// rk.cpp's own stepping for one interval, for step sizes whose products h a_sj
// lose a term of the method (underflow to zero: a step near 1e-300).
void generic_interval(const Tableau& tb, Field& f, std::size_t batch, const double* from, double* to,
                      double t_start, double t_end, std::int64_t k, double h_nominal) {
    const std::size_t n = batch * f.dim();
    RkWork w;
    w.reserve(tb.stages, n);
    std::vector<double> ybuf(from, from + n);
    for (std::int64_t j = 0; j < k; ++j) {
        double tc, h;
        fixed_step(t_start, t_end, k, h_nominal, j, tc, h);
        f.eval(tc, ybuf.data(), w.K.data(), batch);
        rk_step(tb, f, batch, tc, h, ybuf.data(), to, w);
        if (j + 1 < k) std::copy(to, to + n, ybuf.data());
    }
}

// integrate_fixed of rk.cpp with the stepping done by the kernels: the same
// step count per output interval, the same step sizes, max_steps and
// non-finite checks at the same points, with the same messages.
template <class F>
void integrate(const F& fn, Field& f, const Tableau& tb, std::size_t batch, const double* t, std::size_t nt,
               const OdeOptions& opt, double* out, OdeInfo& info) {
    const std::size_t n = batch * F::D;
    const std::int64_t S = std::int64_t(tb.stages);
    const unsigned terms = terms_of(coefs_for(tb, 1.0), tb.stages);
    for (std::size_t i = 1; i < nt; ++i) {
        const double t_start = t[i - 1], t_end = t[i];
        std::int64_t k;
        double h_nominal;
        fixed_schedule(t_start, t_end, opt.step_size, 0, k, h_nominal);
        if (k > opt.max_steps - info.nsteps) {
            // rk.cpp stops before the step that would exceed max_steps (the
            // states it reached are not kept: the integration fails)
            const std::int64_t j = opt.max_steps - info.nsteps;
            double tc, h;
            fixed_step(t_start, t_end, k, h_nominal, j, tc, h);
            info.nfev += S * j;
            info.nsteps += j;
            info.naccepted += j;
            throw IntegrationError("max_steps (" + std::to_string(opt.max_steps) + ") reached at t = " + format_g17(tc) +
                                       " with step size " + format_g17(h),
                                   tc, h);
        }
        const double h_last = t_end - (t_start + double(k - 1) * h_nominal);
        const Interval p{out + (i - 1) * n, out + i * n, batch, k, coefs_for(tb, h_nominal),
                         coefs_for(tb, h_last)};
        if ((k > 1 && terms_of(p.nominal, tb.stages) != terms) || terms_of(p.last, tb.stages) != terms) {
            generic_interval(tb, f, batch, p.from, p.to, t_start, t_end, k, h_nominal);
        } else if (batch == 1) {
            interval_one(fn, terms, p);
        } else {
            interval_lanes(fn, terms, p);
        }
        info.nfev += S * k;
        info.nsteps += k;
        info.naccepted += k;
        check_finite(out + i * n, n, t_end);
    }
}

template <std::size_t Dim>
LinearFn<Dim> linear_fn(const LinearField& f) {
    LinearFn<Dim> fn{};
    std::copy(f.A().begin(), f.A().end(), fn.A);
    // no bias: every sum starts from +0.0, as LinearField's does
    if (!f.b().empty()) std::copy(f.b().begin(), f.b().end(), fn.b);
    return fn;
}

}  // namespace

bool has_fixed_native(const Tableau& tb, const Field& f) {
    if (tb.adaptive() || tb.fsal || tb.stages > kMaxStages) return false;
    if (!covered_terms(terms_of(coefs_for(tb, 1.0), tb.stages))) return false;
    if (dynamic_cast<const LinearField*>(&f)) return f.dim() >= 1 && f.dim() <= 4;
    return dynamic_cast<const LorenzField*>(&f) || dynamic_cast<const VanDerPolField*>(&f) ||
           dynamic_cast<const ArenstorfField*>(&f) || dynamic_cast<const ProjectileField*>(&f);
}

bool odeint_fixed_native(const Tableau& tb, Field& f, std::size_t batch, const double* t, std::size_t nt,
                         const OdeOptions& opt, double* out, OdeInfo& info) {
    if (!has_fixed_native(tb, f)) return false;
    if (auto* g = dynamic_cast<const LorenzField*>(&f)) {
        integrate(g->fn(), f, tb, batch, t, nt, opt, out, info);
    } else if (auto* g = dynamic_cast<const VanDerPolField*>(&f)) {
        integrate(g->fn(), f, tb, batch, t, nt, opt, out, info);
    } else if (auto* g = dynamic_cast<const ArenstorfField*>(&f)) {
        integrate(g->fn(), f, tb, batch, t, nt, opt, out, info);
    } else if (auto* g = dynamic_cast<const ProjectileField*>(&f)) {
        integrate(g->fn(), f, tb, batch, t, nt, opt, out, info);
    } else if (auto* g = dynamic_cast<const LinearField*>(&f)) {
        switch (g->dim()) {
            case 1: integrate(linear_fn<1>(*g), f, tb, batch, t, nt, opt, out, info); break;
            case 2: integrate(linear_fn<2>(*g), f, tb, batch, t, nt, opt, out, info); break;
            case 3: integrate(linear_fn<3>(*g), f, tb, batch, t, nt, opt, out, info); break;
            case 4: integrate(linear_fn<4>(*g), f, tb, batch, t, nt, opt, out, info); break;
            default: return false;
        }
    } else {
        return false;
    }
    return true;
}

}  // namespace eulerflow
