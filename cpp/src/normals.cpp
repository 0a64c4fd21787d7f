// Standard normal deviates: Box-Muller on the seeded generator, its log, sin
// and cos evaluated in vector lanes (fdlibm's reductions and polynomials).
//
// This file is compiled without floating-point contraction (CMakeLists.txt):
// every variant of box_muller (baseline, AVX2+FMA, AVX-512) then rounds each
// product and sum alike, so a seed gives the same normals under every kernel
// variant and thread count.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "eulerflow/fastmath.hpp"
#include "eulerflow/meanfield.hpp"
#include "eulerflow/multiversion.hpp"

namespace eulerflow {

namespace {

constexpr double kTwoPi = 6.283185307179586;

// log(x) for normal x > 0, fdlibm's __ieee754_log (as musl wrote it): x =
// 2^k (1 + f) with sqrt(2)/2 < 1 + f < sqrt(2), s = f / (2 + f),
// log(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)) with R in two halves of even
// and odd powers of s^4 (a shorter chain of dependent operations than one
// Horner polynomial); below one ulp.
EF_ALWAYS_INLINE double log_normal(double x) {
    constexpr double kLn2Hi = 6.93147180369123816490e-01;
    constexpr double kLn2Lo = 1.90821492927058770002e-10;
    std::uint64_t ix = fastmath::double_to_bits(x);
    ix += std::uint64_t(0x3ff00000 - 0x3fe6a09e) << 32;  // 1 + f in [sqrt(2)/2, sqrt(2))
    // k as a double without an int64 conversion (which SSE and AVX2 lack)
    const double k = fastmath::bits_to_double(0x4330000000000000ull | (ix >> 52)) - (4503599627370496.0 + 1023.0);
    ix = (ix & 0x000fffffffffffffull) + (std::uint64_t(0x3fe6a09e) << 32);
    const double f = fastmath::bits_to_double(ix) - 1.0;
    const double hfsq = 0.5 * f * f;
    const double s = f / (2.0 + f);
    const double z = s * s;
    const double w = z * z;
    const double t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01));
    const double t2 = z * (6.666666666666735130e-01 +
                           w * (2.857142874366239149e-01 + w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));
    const double r = t2 + t1;
    return s * (hfsq + r) + k * kLn2Lo - hfsq + f + k * kLn2Hi;
}

// sin and cos of t = fl(2 pi u) for u in [0, 1), as libm's sin and cos of
// that double (within about an ulp). t = k pi/2 + r with k = 0..4 and
// |r| <= pi/4; pi/2 is split in three parts (fdlibm's pio2_1, pio2_2,
// pio2_2t; the first two of 33 bits, so k times them is exact and t minus the
// first is exact) so r keeps its relative accuracy next to the zeros of sin
// and cos. sin(r) and cos(r) are fdlibm's kernels (__kernel_sin, __kernel_cos
// with no tail).
EF_ALWAYS_INLINE void sincos_turn(double u, double& s_out, double& c_out) {
    constexpr double kTwoOverPi = 6.36619772367581382433e-01;
    constexpr double kPio2_1 = 1.57079632673412561417e+00;
    constexpr double kPio2_2 = 6.07710050630396597660e-11;
    constexpr double kPio2_3 = 2.02226624879595063154e-21;
    const double t = kTwoPi * u;
    const double k = (t * kTwoOverPi + fastmath::kRoundMagic) - fastmath::kRoundMagic;
    const double r = ((t - k * kPio2_1) - k * kPio2_2) - k * kPio2_3;
    const double z = r * r;
    const double w = z * z;
    const double ps = 8.33333333332248946124e-03 +
                      z * (-1.98412698298579493134e-04 +
                           z * (2.75573137070700676789e-06 +
                                z * (-2.50507602534068634195e-08 + z * 1.58969099521155010221e-10)));
    const double sin_r = r + (z * r) * (-1.66666666666666324348e-01 + z * ps);
    const double pc = z * (4.16666666666666019037e-02 +
                           z * (-1.38888888888741095749e-03 + z * 2.48015872894767294178e-05)) +
                      (w * w) * (-2.75573143513906633035e-07 +
                                 z * (2.08757232129817482790e-09 + z * -1.13596475577881948265e-11));
    const double hz = 0.5 * z;
    const double one_hz = 1.0 - hz;
    const double cos_r = one_hz + (((1.0 - one_hz) - hz) + z * pc);
    // quadrant k mod 4: (sin, cos) = (S, C), (C, -S), (-S, -C), (-C, S)
    const bool odd = k == 1.0 || k == 3.0;
    const double s = odd ? cos_r : sin_r;
    const double c = odd ? sin_r : cos_r;
    s_out = k == 2.0 || k == 3.0 ? -s : s;
    c_out = k == 1.0 || k == 2.0 ? -c : c;
}

EF_ALWAYS_INLINE void box_muller_impl(const double* __restrict u1, const double* __restrict u2, std::size_t n,
                                      double* __restrict out) {
    for (std::size_t p = 0; p < n; ++p) {
        const double r = std::sqrt(-2.0 * log_normal(u1[p]));
        double s, c;
        sincos_turn(u2[p], s, c);
        out[2 * p] = r * c;
        out[2 * p + 1] = r * s;
    }
}

}  // namespace

EF_MULTIVERSION(, void, box_muller, (const double* u1, const double* u2, std::size_t n, double* out),
                (u1, u2, n, out), box_muller_impl)

void normal_fill(Rng& rng, double* out, std::size_t n) {
    // pairs per pass: 40 normals (W3's batch) in one; the uniforms are drawn
    // in the order of the scalar Box-Muller (u1, redrawn while 0, then u2)
    constexpr std::size_t kPairs = 32;
    alignas(64) double u1[kPairs], u2[kPairs], z[2 * kPairs];
    for (std::size_t i = 0; i < n; i += 2 * kPairs) {
        const std::size_t pairs = std::min(kPairs, (n - i + 1) / 2);
        for (std::size_t p = 0; p < pairs; ++p) {
            double v = rng.uniform();
            while (v <= 0.0) v = rng.uniform();
            u1[p] = v;
            u2[p] = rng.uniform();
        }
        // whole vectors of 8 lanes (no scalar tail); the padding is never read
        const std::size_t lanes = (pairs + 7) & ~std::size_t(7);
        for (std::size_t p = pairs; p < lanes; ++p) {
            u1[p] = 1.0;
            u2[p] = 0.5;  // not 0: a loop of zeros would be a call to memset
        }
        box_muller(u1, u2, lanes, z);
        // an odd n leaves the last pair's sine unused
        std::memcpy(out + i, z, std::min(2 * pairs, n - i) * sizeof(double));
    }
}

}  // namespace eulerflow
