// The arithmetic of the native fields, one state at a time: f(y) -> dy for a
// state of D values. The Field classes (fields.cpp) apply these to each row of
// a batch; the fixed-step fast path (rk_native.cpp) inlines them into its
// stepping loop, so both paths round the same operations in the same order.
// Every native field is autonomous: t does not enter.
#pragma once

#include <cmath>
#include <cstddef>
#include <type_traits>

#if defined(__GNUC__)
#define EF_FIELD_INLINE inline __attribute__((always_inline))
#else
#define EF_FIELD_INLINE inline
#endif

namespace eulerflow {

// The fields' arithmetic is written once for a value type V: double for one
// state, or a GCC vector of doubles for several states side by side (one lane
// each; the operations act lane by lane and round as on doubles).
template <class V>
EF_FIELD_INLINE V field_sqrt(V x) {
    if constexpr (std::is_same_v<V, double>) {
        return std::sqrt(x);
    } else {
        for (std::size_t l = 0; l < sizeof(V) / sizeof(double); ++l) x[l] = std::sqrt(x[l]);
        return x;
    }
}

// x in every lane
template <class V>
EF_FIELD_INLINE V splat(double x) {
    if constexpr (std::is_same_v<V, double>) {
        return x;
    } else {
        V v;
        for (std::size_t l = 0; l < sizeof(V) / sizeof(double); ++l) v[l] = x;
        return v;
    }
}

// dy = A y + b (b null: no bias) for a d x d row-major A; acc starts from b_i or 0.0
// (not from the first product: 0.0 + (-0.0) is +0.0).
template <class V>
EF_FIELD_INLINE void linear_point(const double* A, const double* b, std::size_t d, const V* y, V* dy) {
    for (std::size_t i = 0; i < d; ++i) {
        V acc = splat<V>(b ? b[i] : 0.0);
        const double* Ai = A + i * d;
        for (std::size_t j = 0; j < d; ++j) acc += Ai[j] * y[j];
        dy[i] = acc;
    }
}

// Lorenz (1963): x' = sigma (y - x), y' = x (rho - z) - y, z' = x y - beta z.
struct LorenzFn {
    static constexpr std::size_t D = 3;
    double s, r, b;
    template <class V>
    EF_FIELD_INLINE void operator()(const V* y, V* dy) const {
        const V x = y[0], v = y[1], z = y[2];
        dy[0] = s * (v - x);
        dy[1] = x * (r - z) - v;
        dy[2] = x * v - b * z;
    }
};

// The projectile on (x, y, z, vx, vy, vz): positions move with the velocities,
// velocities with constant accelerations.
struct ProjectileFn {
    static constexpr std::size_t D = 6;
    double ax, ay, az;
    template <class V>
    EF_FIELD_INLINE void operator()(const V* y, V* dy) const {
        dy[0] = y[3];
        dy[1] = y[4];
        dy[2] = y[5];
        dy[3] = splat<V>(ax);
        dy[4] = splat<V>(ay);
        dy[5] = splat<V>(az);
    }
};

// Van der Pol: y0' = y1, y1' = mu (1 - y0^2) y1 - y0.
struct VanDerPolFn {
    static constexpr std::size_t D = 2;
    double mu;
    template <class V>
    EF_FIELD_INLINE void operator()(const V* y, V* dy) const {
        const V a = y[0], b = y[1];
        dy[0] = b;
        dy[1] = mu * (1.0 - a * a) * b - a;
    }
};

// Arenstorf orbit of the restricted three-body problem on (x, y, vx, vy).
struct ArenstorfFn {
    static constexpr std::size_t D = 4;
    double mu;
    template <class V>
    EF_FIELD_INLINE void operator()(const V* y, V* dy) const {
        const double mup = 1.0 - mu;
        const V x = y[0], v = y[1], vx = y[2], vy = y[3];
        const V r1 = (x + mu) * (x + mu) + v * v;
        const V r2 = (x - mup) * (x - mup) + v * v;
        const V d1 = r1 * field_sqrt(r1), d2 = r2 * field_sqrt(r2);
        dy[0] = vx;
        dy[1] = vy;
        dy[2] = x + 2.0 * vy - mup * (x + mu) / d1 - mu * (x - mup) / d2;
        dy[3] = v - 2.0 * vx - mup * v / d1 - mu * v / d2;
    }
};

// dy = A y + b with the dimension known at compile time (the fast path's
// kernel of LinearField for small d); no bias is b = 0, the same +0.0 start.
template <std::size_t Dim>
struct LinearFn {
    static constexpr std::size_t D = Dim;
    double A[Dim * Dim];
    double b[Dim];
    template <class V>
    EF_FIELD_INLINE void operator()(const V* y, V* dy) const {
        linear_point(A, b, Dim, y, dy);
    }
};

}  // namespace eulerflow
