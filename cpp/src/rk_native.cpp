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


// The adaptive methods: which coefficients are nonzero, one bit per stage j, in
// row s of A (the last row is b: FSAL), in the error weights b_err and in
// DOP853's second ones b_err3. The kernels take it as a template argument, so
// rk_step's zero skips are settled at compile time; has_adaptive_native checks
// it against the tableau.
template <std::size_t S>
struct Pattern {
    std::uint32_t a[S];
    std::uint32_t e, e3;
};
constexpr Pattern<7> kDopri5{{0x0, 0x1, 0x3, 0x7, 0xf, 0x1f, 0x3d}, 0x7d, 0x0};
constexpr Pattern<7> kTsit5{{0x0, 0x1, 0x3, 0x7, 0xf, 0x1f, 0x3f}, 0x7f, 0x0};
constexpr Pattern<13> kDopri8{{0x0, 0x1, 0x3, 0x5, 0xd, 0x19, 0x39, 0x79, 0xf9, 0x1f9, 0x3f9, 0x7f9, 0xfe1}, 0xfe1,
                              0xfe1};

template <std::size_t S>
bool matches(const Pattern<S>& p, const Tableau& tb) {
    if (tb.stages != S || !tb.fsal || !tb.adaptive() || (p.e3 != 0) == tb.b_err3.empty()) return false;
    auto bit = [](std::uint32_t m, std::size_t j) { return ((m >> j) & 1u) != 0; };
    for (std::size_t j = 0; j < S; ++j) {
        for (std::size_t s = 0; s < S; ++s)
            if ((tb.A(s, j) != 0.0) != bit(p.a[s], j)) return false;
        if ((tb.b_err[j] != 0.0) != bit(p.e, j)) return false;
        if (p.e3 && (tb.b_err3[j] != 0.0) != bit(p.e3, j)) return false;
    }
    return true;
}

// A method's coefficients in arrays of fixed size.
template <std::size_t S>
struct MethodCoefs {
    double a[S][S], e[S], e3[S];
    explicit MethodCoefs(const Tableau& tb) : a{}, e{}, e3{} {
        for (std::size_t s = 0; s < S; ++s) {
            for (std::size_t j = 0; j < S; ++j) a[s][j] = tb.A(s, j);
            e[s] = tb.b_err[s];
            e3[s] = tb.b_err3.empty() ? 0.0 : tb.b_err3[s];
        }
    }
};

// One adaptive step of size hs from y with K[0] = f(y): rk_step's stages into K,
// y_new, and error_norm's error, the same operations in the same order. The
// error does not need the last stage f(y_new) unless its weight is nonzero
// (dopri5): that evaluation comes after the error then, so the step-size control
// overlaps it.
template <class F, std::size_t S, const Pattern<S>& P>
EF_FIELD_INLINE double adaptive_step(const F& fn, const MethodCoefs<S>& m, double hs, const double (&y)[F::D],
                                     double (&K)[S][F::D], double (&y_new)[F::D], double rtol, double atol) {
    constexpr std::size_t D = F::D;
    constexpr bool last_in_error = ((P.e | P.e3) >> (S - 1)) & 1u;
#pragma GCC unroll 16
    for (std::size_t s = 1; s < S; ++s) {
        double yt[D];
        for (std::size_t i = 0; i < D; ++i) yt[i] = y[i];
#pragma GCC unroll 16
        for (std::size_t j = 0; j < s; ++j) {
            if (!((P.a[s] >> j) & 1u)) continue;
            const double a = hs * m.a[s][j];
            for (std::size_t i = 0; i < D; ++i) yt[i] += a * K[j][i];
        }
        if (s + 1 < S) {
            fn(yt, K[s]);
        } else {
            // FSAL: the last stage is evaluated at y_new
            for (std::size_t i = 0; i < D; ++i) y_new[i] = yt[i];
            if (last_in_error) fn(y_new, K[S - 1]);
        }
    }
    // err = h sum_j b_err[j] K_j (and the same with b_err3 into err3)
    double err[D], err3[D];
    for (std::size_t i = 0; i < D; ++i) err[i] = err3[i] = 0.0;
#pragma GCC unroll 16
    for (std::size_t j = 0; j < S; ++j) {
        if ((P.e >> j) & 1u) {
            const double e = hs * m.e[j];
            for (std::size_t i = 0; i < D; ++i) err[i] += e * K[j][i];
        }
        if ((P.e3 >> j) & 1u) {
            const double e = hs * m.e3[j];
            for (std::size_t i = 0; i < D; ++i) err3[i] += e * K[j][i];
        }
    }
    const double norm = step_error_norm(err, P.e3 != 0 ? err3 : nullptr, y, y_new,
                                        std::integral_constant<std::size_t, D>{}, rtol, atol);
    if (!last_in_error) fn(y_new, K[S - 1]);
    return norm;
}

// integrate_adaptive's loop with adaptive_step (rk.cpp), the state and the
// stages in registers; the rare work (outputs, errors) through rk.cpp's own
// functions.
template <class F, std::size_t S, const Pattern<S>& P>
EF_FIELD_INLINE void adaptive_loop(const F& fn, AdaptiveRun& r) {
    constexpr std::size_t D = F::D;
    const MethodCoefs<S> m(r.tb);
    const double rtol = r.opt.rtol, atol = r.opt.atol, t_final = r.t_final, dir = r.dir;
    OdeInfo& info = r.info;
    StepControl control = r.control;
    double y[D], y_new[D], K[S][D];
    for (std::size_t i = 0; i < D; ++i) {
        y[i] = r.y[i];
        K[0][i] = r.w.K[i];
    }
    double tc = r.tc, h = r.h;
    auto save = [&] {
        std::copy(y, y + D, r.y.begin());
        std::copy(K[0], K[0] + D, r.w.K.begin());
        r.tc = tc;
        r.h = h;
        r.control = control;
    };
    while (r.next < r.nt) {
        if (!can_step(r, tc, h)) check_can_step(r, tc, h, y);
        const bool reaches_end = std::fabs(t_final - tc) <= h * (1.0 + 1e-12);
        const double hs = reaches_end ? t_final - tc : dir * h;
        if (!(std::fabs(hs) >= 1e-300)) break;
        const double err = adaptive_step<F, S, P>(fn, m, hs, y, K, y_new, rtol, atol);
        info.nfev += std::int64_t(S - 1);
        ++info.nsteps;
        if (!std::isfinite(err)) {
            ++info.nrejected;
            h = control.blown_up(h);
            continue;
        }
        const double fac11 = std::pow(err, control.expo1);
        if (err <= 1.0) {
            ++info.naccepted;
            const double t_new = reaches_end ? t_final : tc + hs;
            if (dir * (r.t[r.next] - t_new) <= 0.0) {
                // an output time in the step: rk.cpp's dense output, from memory
                double Km[S * D];
                for (std::size_t j = 0; j < S; ++j) std::copy(K[j], K[j] + D, Km + j * D);
                std::copy(y_new, y_new + D, r.y_new.begin());
                std::copy(K[0], K[0] + D, r.f0.begin());  // the Hermite interpolant's slope (tsit5)
                r.tc = tc;
                r.control = control;
                std::copy(y, y + D, r.y.begin());
                accept_outputs(r, hs, t_new, r.y.data(), r.y_new.data(), Km);
            }
            h = control.accepted(err, fac11, hs);
            tc = t_new;
            for (std::size_t i = 0; i < D; ++i) {
                y[i] = y_new[i];
                K[0][i] = K[S - 1][i];
            }
        } else {
            ++info.nrejected;
            h = control.rejected(fac11, hs);
        }
    }
    save();
}

template <class F>
EF_FIELD_INLINE void run_adaptive(const F& fn, int method, AdaptiveRun& r) {
    switch (method) {
        case 0: return adaptive_loop<F, 7, kDopri5>(fn, r);
        case 1: return adaptive_loop<F, 7, kTsit5>(fn, r);
        case 2: return adaptive_loop<F, 13, kDopri8>(fn, r);
        default: return;
    }
}

int adaptive_method(const Tableau& tb) {
    if (matches(kDopri5, tb)) return 0;
    if (matches(kTsit5, tb)) return 1;
    if (matches(kDopri8, tb)) return 2;
    return -1;
}

// The multi-versioned entry points (multiversion.hpp), per field kernel; scalar
// code, as interval_one.
#define EF_NATIVE_ADAPTIVE(F)                                                                              \
    EF_MULTIVERSION(__attribute__((optimize("no-tree-slp-vectorize"))), void, adaptive_one,             \
                    (const F& f, int method, AdaptiveRun& r), (f, method, r), (run_adaptive<F>))
EF_NATIVE_ADAPTIVE(LorenzFn)
EF_NATIVE_ADAPTIVE(VanDerPolFn)
EF_NATIVE_ADAPTIVE(ArenstorfFn)
EF_NATIVE_ADAPTIVE(ProjectileFn)
EF_NATIVE_ADAPTIVE(LinearFn<1>)
EF_NATIVE_ADAPTIVE(LinearFn<2>)
EF_NATIVE_ADAPTIVE(LinearFn<3>)
EF_NATIVE_ADAPTIVE(LinearFn<4>)
#undef EF_NATIVE_ADAPTIVE

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

bool has_adaptive_native(const Tableau& tb, const Field& f, std::size_t batch, const OdeOptions& opt) {
    if (batch != 1 || opt.record || adaptive_method(tb) < 0) return false;
    if (dynamic_cast<const LinearField*>(&f)) return f.dim() >= 1 && f.dim() <= 4;
    return dynamic_cast<const LorenzField*>(&f) || dynamic_cast<const VanDerPolField*>(&f) ||
           dynamic_cast<const ArenstorfField*>(&f) || dynamic_cast<const ProjectileField*>(&f);
}

void adaptive_native(AdaptiveRun& r) {
    const int method = adaptive_method(r.tb);
    Field& f = r.f;
    if (auto* g = dynamic_cast<const LorenzField*>(&f)) {
        adaptive_one(g->fn(), method, r);
    } else if (auto* g = dynamic_cast<const VanDerPolField*>(&f)) {
        adaptive_one(g->fn(), method, r);
    } else if (auto* g = dynamic_cast<const ArenstorfField*>(&f)) {
        adaptive_one(g->fn(), method, r);
    } else if (auto* g = dynamic_cast<const ProjectileField*>(&f)) {
        adaptive_one(g->fn(), method, r);
    } else if (auto* g = dynamic_cast<const LinearField*>(&f)) {
        switch (g->dim()) {
            case 1: adaptive_one(linear_fn<1>(*g), method, r); break;
            case 2: adaptive_one(linear_fn<2>(*g), method, r); break;
            case 3: adaptive_one(linear_fn<3>(*g), method, r); break;
            case 4: adaptive_one(linear_fn<4>(*g), method, r); break;
            default: break;
        }
    }
}

}  // namespace eulerflow
