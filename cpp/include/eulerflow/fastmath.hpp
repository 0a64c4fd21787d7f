// Branch-free elementary functions that the compiler can vectorize.
//
// libm's exp/atan are scalar calls (~10-20 ns each); the activations of small
// networks spend most of their time in them. These versions reduce the
// argument, evaluate a polynomial and rebuild the result with selects only,
// so a loop over an array of them becomes SIMD code. Accuracy is about one
// ulp in double precision (checked against NumPy in the tests).
#pragma once

#include <cstdint>
#include <cstring>

namespace eulerflow::fastmath {

#if defined(__GNUC__)
#define EF_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define EF_ALWAYS_INLINE inline
#endif

EF_ALWAYS_INLINE double bits_to_double(std::uint64_t u) {
    double d;
    std::memcpy(&d, &u, sizeof d);
    return d;
}

EF_ALWAYS_INLINE std::uint64_t double_to_bits(double d) {
    std::uint64_t u;
    std::memcpy(&u, &d, sizeof u);
    return u;
}

// 1.5 * 2^52: adding it rounds a double to an integer held in the low mantissa bits.
constexpr double kRoundMagic = 6755399441055744.0;

// 2^k for an integer-valued double k in [-1022, 1023].
EF_ALWAYS_INLINE double pow2i(double k) {
    const std::uint64_t u = double_to_bits(k + kRoundMagic);
    return bits_to_double((u + 1023u) << 52);
}

// expm1 of the reduced argument |r| <= ln2/2 by its Taylor series to r^13/13!
// (truncation error below 5e-18).
EF_ALWAYS_INLINE double expm1_reduced(double r) {
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    return p * r;
}

// x = n ln2 + r; returns q = expm1(r) and the scale 2^n split in two factors
// so that results down to the subnormal range are rebuilt without overflow.
EF_ALWAYS_INLINE void exp_split(double x, double& q, double& s1, double& s2) {
    constexpr double kLog2e = 1.4426950408889634;
    constexpr double kLn2Hi = 6.93147180369123816490e-01;  // 32 significant bits: n*hi is exact
    constexpr double kLn2Lo = 1.90821492927058770002e-10;
    x = x < -745.2 ? -745.2 : x;  // NaN passes both selects unchanged
    x = x > 709.8 ? 709.8 : x;
    const double n = (x * kLog2e + kRoundMagic) - kRoundMagic;
    const double r = (x - n * kLn2Hi) - n * kLn2Lo;
    q = expm1_reduced(r);
    const double n1 = (n * 0.5 + kRoundMagic) - kRoundMagic;
    s1 = pow2i(n1);
    s2 = pow2i(n - n1);
}

EF_ALWAYS_INLINE double exp(double x) {
    double q, s1, s2;
    exp_split(x, q, s1, s2);
    return ((1.0 + q) * s1) * s2;
}

// exp(x) - 1 with full relative accuracy near 0: (s - 1) + s q with s = 2^n.
EF_ALWAYS_INLINE double expm1(double x) {
    double q, s1, s2;
    exp_split(x, q, s1, s2);
    const double s = s1 * s2;
    return (s - 1.0) + s * q;
}

EF_ALWAYS_INLINE double copysign(double magnitude, double sign_of) {
    const std::uint64_t m = double_to_bits(magnitude) & 0x7fffffffffffffffull;
    const std::uint64_t s = double_to_bits(sign_of) & 0x8000000000000000ull;
    return bits_to_double(m | s);
}

EF_ALWAYS_INLINE double fabs(double x) {
    return bits_to_double(double_to_bits(x) & 0x7fffffffffffffffull);
}

// log(x) for the positive normal x this library meets (sums of exponentials):
// x = 2^e m with m in [sqrt(1/2), sqrt(2)), log(m) = 2 atanh(s), s = (m-1)/(m+1),
// |s| <= 0.1716, by its series to s^23 (truncation below 1e-18). NaN and +inf
// pass through; zero and negative inputs are not supported.
EF_ALWAYS_INLINE double log(double x) {
    constexpr double kLn2Hi = 6.93147180369123816490e-01;
    constexpr double kLn2Lo = 1.90821492927058770002e-10;
    const std::uint64_t u = double_to_bits(x);
    // exponent field as a double without an int64 conversion (which SSE/AVX2 lack)
    double e = bits_to_double(0x4330000000000000ull | (u >> 52)) - (4503599627370496.0 + 1023.0);
    double m = bits_to_double((u & 0x000fffffffffffffull) | 0x3ff0000000000000ull);
    const bool high = m > 1.4142135623730951;
    m = high ? 0.5 * m : m;
    e = high ? e + 1.0 : e;
    const double s = (m - 1.0) / (m + 1.0);
    const double z = s * s;
    double p = 1.0 / 23.0;
    p = p * z + 1.0 / 21.0;
    p = p * z + 1.0 / 19.0;
    p = p * z + 1.0 / 17.0;
    p = p * z + 1.0 / 15.0;
    p = p * z + 1.0 / 13.0;
    p = p * z + 1.0 / 11.0;
    p = p * z + 1.0 / 9.0;
    p = p * z + 1.0 / 7.0;
    p = p * z + 1.0 / 5.0;
    p = p * z + 1.0 / 3.0;
    const double res = e * kLn2Hi + (2.0 * s + (2.0 * s * z * p + e * kLn2Lo));
    return x > 1.7976931348623157e308 || x != x ? x : res;
}

// tanh(x) = e / (e + 2) with e = expm1(2|x|); tanh(20) rounds to 1.
EF_ALWAYS_INLINE double tanh(double x) {
    double a = fabs(x);
    a = a > 20.0 ? 20.0 : a;
    const double e = expm1(2.0 * a);
    return copysign(e / (e + 2.0), x);
}

EF_ALWAYS_INLINE double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

// atan with one division. |x| > 1 is folded by atan(a) = pi/2 - atan(1/a), then
// r > tan(pi/12) by atan(r) = pi/6 + atan((r sqrt3 - 1)/(r + sqrt3)); both folds
// are carried as numerator/denominator pairs so only the last quotient divides.
// On |r| <= tan(pi/12), atan(r) = r + r^3 P(r^2) with P of degree 8 fitted by
// Chebyshev interpolation of (atan(r) - r)/r^3 (max error 0.5 ulp).
// With `deriv`, the same division also gives d/dx atan = 1/(1 + x^2):
// q = 1/(bot u) with u = 1 + x^2, so r = top u q and 1/u = bot q. |x| is capped
// at 1e100 there (atan is pi/2 to the last bit beyond it) so bot u stays finite.
template <bool deriv>
EF_ALWAYS_INLINE double atan_impl(double x, double* dydx) {
    constexpr double kSqrt3 = 1.7320508075688772;
    constexpr double kTanPi12 = 0.2679491924311227;
    constexpr double kPi2 = 1.5707963267948966;
    constexpr double kPi6 = 0.5235987755982989;
    double a = fabs(x);
    const bool fold1 = a > 1.0;
    a = a > (deriv ? 1e100 : 1e300) ? (deriv ? 1e100 : 1e300) : a;  // NaN passes
    const double num = fold1 ? 1.0 : a;
    const double den = fold1 ? a : 1.0;
    const bool fold2 = num > kTanPi12 * den;
    const double top = fold2 ? num * kSqrt3 - den : num;
    const double bot = fold2 ? num + den * kSqrt3 : den;
    double r;
    if (deriv) {
        const double u = 1.0 + a * a;
        const double q = 1.0 / (bot * u);
        r = top * u * q;
        *dydx = bot * q;
    } else {
        r = top / bot;
    }
    const double z = r * r;
    double p = -0.03957893591546196;
    p = p * z + 0.05716329894442852;
    p = p * z - 0.06654945053677658;
    p = p * z + 0.07691819638198708;
    p = p * z - 0.09090897081592211;
    p = p * z + 0.11111110944516939;
    p = p * z - 0.14285714284553813;
    p = p * z + 0.1999999999999688;
    p = p * z - 0.3333333333333333;
    double res = r + r * z * p;
    res = fold2 ? kPi6 + res : res;
    res = fold1 ? kPi2 - res : res;
    return copysign(res, x);
}

EF_ALWAYS_INLINE double atan(double x) { return atan_impl<false>(x, nullptr); }

// atan(x), and its derivative 1/(1 + x^2) in *dydx, for one division.
EF_ALWAYS_INLINE double atan_with_derivative(double x, double* dydx) { return atan_impl<true>(x, dydx); }

}  // namespace eulerflow::fastmath
