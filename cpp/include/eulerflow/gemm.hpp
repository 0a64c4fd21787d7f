// Cache-blocked, register-tiled matrix products for the dense layers of wide
// networks (hundreds of features): the forward Y = W X + b, the input
// gradient gX = W^T gY and the weight gradient gW += gY X^T.
//
// They round exactly as the small-layer kernels of dense.hpp do, so a layer
// gives the same bits whichever path runs it:
// - matmul_blocked_impl builds every output as init + a_0 b_0 + a_1 b_1 + ...
//   in k order, one (fused, where the CPU has FMA) multiply-add per term,
//   as dense_forward_impl; a partial sum stored between blocks of k and
//   reloaded is exact.
// - grad_weights_blocked_impl sums each gW entry in dots_impl's order (two
//   vector accumulators striding 2L over the batch, the masked tail, hsum).
// Each output is computed the same way wherever its tile lies, so any split
// of the outputs across threads gives the same bits.
#pragma once

#include <algorithm>
#include <cstddef>

#include "eulerflow/dense.hpp"
#include "eulerflow/multiversion.hpp"

namespace eulerflow {

namespace detail {

// The register tiles follow the variant that runs (isa::wide_registers), not the
// CPU. Every output is summed the same way whatever the tile.
using isa::wide_registers;

// Register tile of the products: MR rows x NV vectors of outputs, NV = 2 (12
// accumulators, two operand vectors and a broadcast fit AVX2's 16 registers)
// or NV = 4 (24 accumulators in AVX-512's 32). Cache blocks: a KC x NR panel
// of B (16 KiB, half of L1) stays in L1 while the MC x KC packed block of A
// (L2) streams past it; the packed B block of KC x NC lives in L2/L3. KC only
// sets where a partial sum is stored and reloaded, which is exact.
template <class T, std::size_t NV_ = 2>
struct GemmBlocks {
    static constexpr std::size_t MR = 6, NV = NV_, NR = NV * lanes<T>();
    static constexpr std::size_t KC = (std::size_t(16) << 10) / (NR * sizeof(T));  // 256 or 128
    static constexpr std::size_t MC = 72;
    static constexpr std::size_t NC = 512;
    // elements of the packing buffer one thread needs, for either tile
    static constexpr std::size_t pack_size = MC * 256 + 256 * NC;
    static_assert(MC * KC + KC * NC <= pack_size && NC % NR == 0, "blocks fit the buffer");
};

// Accumulates one MR x NR tile: c[r][j] (+)= sum_k ap[k MR + r] bp[k NR + j].
// first: start from init[r] (0 when init is null), else from the values in C.
template <std::size_t NV, class T>
EF_ALWAYS_INLINE void gemm_tile(std::size_t kc, const T* ap, const T* bp, T* C, std::size_t ldc,
                                const T* init, bool first) {
    using G = GemmBlocks<T, NV>;
    constexpr std::size_t L = lanes<T>(), MR = G::MR, NR = G::NR;
    vec_t<T> acc[MR][NV];
    for (std::size_t r = 0; r < MR; ++r) {
        for (std::size_t v = 0; v < NV; ++v) {
            acc[r][v] = first ? vec_t<T>{} + (init ? init[r] : T(0)) : vload(C + r * ldc + v * L);
        }
    }
    for (std::size_t k = 0; k < kc; ++k) {
        vec_t<T> bv[NV];
        for (std::size_t v = 0; v < NV; ++v) bv[v] = vload(bp + k * NR + v * L);
        // a scalar times a vector is a broadcast (AVX-512: folded into the FMA)
        for (std::size_t r = 0; r < MR; ++r) {
            for (std::size_t v = 0; v < NV; ++v) acc[r][v] += ap[k * MR + r] * bv[v];
        }
    }
    for (std::size_t r = 0; r < MR; ++r) {
        for (std::size_t v = 0; v < NV; ++v) vstore(C + r * ldc + v * L, acc[r][v]);
    }
}

// matmul_blocked_impl with tiles of MR x NV vectors.
template <std::size_t NV, class T>
EF_ALWAYS_INLINE void matmul_tiled(const T* A, std::size_t a_rs, std::size_t a_cs, const T* init,
                                   std::size_t M, std::size_t K, const T* B, std::size_t ldb, T* C,
                                   std::size_t ldc, std::size_t ncols, T* pack) {
    using G = GemmBlocks<T, NV>;
    constexpr std::size_t MR = G::MR, NR = G::NR;
    T* ap_all = pack;
    T* bp_all = pack + G::MC * G::KC;
    for (std::size_t jc = 0; jc < ncols; jc += G::NC) {
        const std::size_t nc = std::min(G::NC, ncols - jc);
        for (std::size_t pc = 0; pc < K; pc += G::KC) {
            const std::size_t kc = std::min(G::KC, K - pc);
            const bool first = pc == 0;
            // B block as panels of NR columns, k-major; columns past ncols are zero.
            // Read along B's rows.
            for (std::size_t k = 0; k < kc; ++k) {
                const T* row = B + (pc + k) * ldb + jc;
                for (std::size_t jr = 0; jr < nc; jr += NR) {
                    const std::size_t w = std::min(NR, nc - jr);
                    const T* src = row + jr;
                    T* dst = bp_all + jr * kc + k * NR;
                    if (w == NR) {
                        for (std::size_t j = 0; j < NR; ++j) dst[j] = src[j];
                    } else {
                        for (std::size_t j = 0; j < NR; ++j) dst[j] = j < w ? src[j] : T(0);
                    }
                }
            }
            for (std::size_t ic = 0; ic < M; ic += G::MC) {
                const std::size_t mc = std::min(G::MC, M - ic);
                // A block as panels of MR rows, k-major; rows past M are zero. Read
                // along A's contiguous direction: by rows for W, by k for W^T
                if (a_rs == 1 && a_cs != 1) {
                    for (std::size_t k = 0; k < kc; ++k) {
                        const T* src = A + (pc + k) * a_cs + ic;
                        for (std::size_t ir = 0; ir < mc; ir += MR) {
                            T* ap = ap_all + ir * kc + k * MR;
                            for (std::size_t r = 0; r < MR; ++r) ap[r] = ir + r < mc ? src[ir + r] : T(0);
                        }
                    }
                } else {
                    for (std::size_t ir = 0; ir < mc; ir += MR) {
                        T* ap = ap_all + ir * kc;
                        for (std::size_t r = 0; r < MR; ++r) {
                            const std::size_t m = ic + ir + r;
                            if (ir + r < mc) {
                                const T* src = A + m * a_rs + pc * a_cs;
                                for (std::size_t k = 0; k < kc; ++k) ap[k * MR + r] = src[k * a_cs];
                            } else {
                                for (std::size_t k = 0; k < kc; ++k) ap[k * MR + r] = T(0);
                            }
                        }
                    }
                }
                for (std::size_t jr = 0; jr < nc; jr += NR) {
                    const std::size_t w = std::min(NR, nc - jr);
                    const T* bp = bp_all + jr * kc;
                    for (std::size_t ir = 0; ir < mc; ir += MR) {
                        const std::size_t h = std::min(MR, mc - ir);
                        const T* ap = ap_all + ir * kc;
                        T* c = C + (ic + ir) * ldc + jc + jr;
                        const T* in = init ? init + ic + ir : nullptr;
                        if (h == MR && w == NR) {
                            gemm_tile<NV>(kc, ap, bp, c, ldc, in, first);
                            continue;
                        }
                        // an edge tile: through a full-size copy
                        T tile[MR * NR] = {};
                        T tinit[MR] = {};
                        for (std::size_t r = 0; r < h; ++r) {
                            if (in) tinit[r] = in[r];
                            if (!first) {
                                for (std::size_t j = 0; j < w; ++j) tile[r * NR + j] = c[r * ldc + j];
                            }
                        }
                        gemm_tile<NV>(kc, ap, bp, tile, NR, in ? tinit : nullptr, first);
                        for (std::size_t r = 0; r < h; ++r) {
                            for (std::size_t j = 0; j < w; ++j) c[r * ldc + j] = tile[r * NR + j];
                        }
                    }
                }
            }
        }
    }
}

// C (M, ncols; row stride ldc) = init + A B, with A (M, K) read as
// A[m a_rs + k a_cs] and B (K, ncols; row stride ldb); init (M) may be null
// (zero). pack holds GemmBlocks<T>::pack_size elements.
// The forward is A = W (a_rs = n_in, a_cs = 1), init = b; the input gradient
// is A = W^T (a_rs = 1, a_cs = n_in), init null.
template <class T>
EF_ALWAYS_INLINE void matmul_blocked_impl(const T* A, std::size_t a_rs, std::size_t a_cs,
                                          const T* init, std::size_t M, std::size_t K, const T* B,
                                          std::size_t ldb, T* C, std::size_t ldc, std::size_t ncols,
                                          T* pack) {
    if (K == 0) {  // no terms: the outputs are their initial values
        for (std::size_t m = 0; m < M; ++m) {
            for (std::size_t j = 0; j < ncols; ++j) C[m * ldc + j] = T(0) + (init ? init[m] : T(0));
        }
        return;
    }
    // float32 with AVX-512: 6 x 4 vectors, 10-15% faster on Zen 4 than 6 x 2;
    // float64 measured slower with 6 x 4 there and keeps 6 x 2
    if (sizeof(T) == 4 && wide_registers()) {
        matmul_tiled<4>(A, a_rs, a_cs, init, M, K, B, ldb, C, ldc, ncols, pack);
    } else {
        matmul_tiled<2>(A, a_rs, a_cs, init, M, K, B, ldb, C, ldc, ncols, pack);
    }
}

// out[c] = hsum(v[c]) for four vectors, bit for bit (hsum's additions, each
// with the same operands in the same order), but four sums at a time: the
// reductions of a weight-gradient tile cost about as much as a sixth of its
// multiply-adds done one by one.
#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define EF_HAVE_SHUFFLEVECTOR 1
#endif
#endif
template <class T>
EF_ALWAYS_INLINE void hsum4(const vec_t<T>* v, T* out) {
#if defined(EF_HAVE_SHUFFLEVECTOR)
    if constexpr (lanes<T>() == 4) {
        // lanes j + 2 onto j: (v0 | v2) and (v1 | v3) halves side by side
        const vec_t<T> p = __builtin_shufflevector(v[0], v[2], 0, 1, 4, 5) +
                           __builtin_shufflevector(v[0], v[2], 2, 3, 6, 7);
        const vec_t<T> q = __builtin_shufflevector(v[1], v[3], 0, 1, 4, 5) +
                           __builtin_shufflevector(v[1], v[3], 2, 3, 6, 7);
        // lane 1 onto lane 0, the four vectors in order
        const vec_t<T> r = __builtin_shufflevector(p, q, 0, 4, 2, 6) + __builtin_shufflevector(p, q, 1, 5, 3, 7);
        std::memcpy(out, &r, sizeof r);
        return;
    } else if constexpr (lanes<T>() == 8) {
        // lanes j + 4 onto j
        const vec_t<T> p = __builtin_shufflevector(v[0], v[2], 0, 1, 2, 3, 8, 9, 10, 11) +
                           __builtin_shufflevector(v[0], v[2], 4, 5, 6, 7, 12, 13, 14, 15);
        const vec_t<T> q = __builtin_shufflevector(v[1], v[3], 0, 1, 2, 3, 8, 9, 10, 11) +
                           __builtin_shufflevector(v[1], v[3], 4, 5, 6, 7, 12, 13, 14, 15);
        // lanes j + 2 onto j
        const vec_t<T> r = __builtin_shufflevector(p, q, 0, 1, 8, 9, 4, 5, 12, 13) +
                           __builtin_shufflevector(p, q, 2, 3, 10, 11, 6, 7, 14, 15);
        // lane 1 onto lane 0
        typedef T half_t __attribute__((vector_size(sizeof(vec_t<T>) / 2)));
        const half_t s = __builtin_shufflevector(r, r, 0, 2, 4, 6) + __builtin_shufflevector(r, r, 1, 3, 5, 7);
        std::memcpy(out, &s, sizeof s);
        return;
    }
#endif
    for (std::size_t c = 0; c < 4; ++c) out[c] = hsum<T>(v[c]);
}

// out[r][c] = gy_r . x_c in dots_impl's order, for n >= 2L.
template <std::size_t RO, std::size_t CK, class T>
EF_ALWAYS_INLINE void grad_tile(const T* const* gy, const T* const* x, std::size_t n, T (*out)[CK]) {
    constexpr std::size_t L = lanes<T>();
    vec_t<T> s0[RO][CK], s1[RO][CK];
    for (std::size_t r = 0; r < RO; ++r) {
        for (std::size_t c = 0; c < CK; ++c) s0[r][c] = s1[r][c] = vec_t<T>{};
    }
    std::size_t i = 0;
    for (; i + 2 * L <= n; i += 2 * L) {
        for (std::size_t r = 0; r < RO; ++r) {
            const vec_t<T> a0 = vload(gy[r] + i), a1 = vload(gy[r] + i + L);
            for (std::size_t c = 0; c < CK; ++c) {
                s0[r][c] += a0 * vload(x[c] + i);
                s1[r][c] += a1 * vload(x[c] + i + L);
            }
        }
    }
    if (i < n) {  // the tail as dots_impl's: the last 2L values, the part summed masked out
        const std::size_t st = n - 2 * L;
        for (std::size_t r = 0; r < RO; ++r) {
            const vec_t<T> a0 = mask_below<T>(vload(gy[r] + st), st, i);
            const vec_t<T> a1 = mask_below<T>(vload(gy[r] + st + L), st + L, i);
            for (std::size_t c = 0; c < CK; ++c) {
                s0[r][c] += a0 * vload(x[c] + st);
                s1[r][c] += a1 * vload(x[c] + st + L);
            }
        }
    }
    for (std::size_t r = 0; r < RO; ++r) {
        vec_t<T> v[CK];
        for (std::size_t c = 0; c < CK; ++c) v[c] = s0[r][c] + s1[r][c];
        if constexpr (CK == 4) {
            hsum4<T>(v, out[r]);
        } else {
            for (std::size_t c = 0; c < CK; ++c) out[r][c] = hsum<T>(v[c]);
        }
    }
}

// gW (n_out, n_in) += gY (n_out, n) X^T (X: n_in, n) for n >= 2L, in tiles
// of RO rows of gY against CK rows of X, each dot product in two vector
// accumulators. Both operands run along the batch, so a tile reuses each
// vector it loads only RO or CK times; the blocks keep the loads close: a
// block of X rows (about 384 KiB) stays in L2 while every block of gY rows
// (about 12 KiB, in L1) passes it, and each X tile, once in L1, serves all
// the row tiles of the gY block.
template <std::size_t RO, std::size_t CK, class T>
EF_ALWAYS_INLINE void grad_weights_tiled(const T* gY, const T* X, std::size_t n_out,
                                         std::size_t n_in, std::size_t n, T* gW) {
    const std::size_t row = n * sizeof(T);
    const std::size_t kb = std::max<std::size_t>(CK, (std::size_t(384) << 10) / row / CK * CK);
    const std::size_t ob = std::max<std::size_t>(RO, (std::size_t(12) << 10) / row / RO * RO);
    for (std::size_t k0 = 0; k0 < n_in; k0 += kb) {
        const std::size_t k1 = std::min(n_in, k0 + kb);
        for (std::size_t o0 = 0; o0 < n_out; o0 += ob) {
            const std::size_t o1 = std::min(n_out, o0 + ob);
            for (std::size_t k = k0; k < k1; k += CK) {
                const T* x[CK];  // rows past n_in repeat the last one; their sums are dropped
                for (std::size_t c = 0; c < CK; ++c) x[c] = X + std::min(k + c, n_in - 1) * n;
                for (std::size_t o = o0; o < o1; o += RO) {
                    const T* gy[RO];
                    for (std::size_t r = 0; r < RO; ++r) gy[r] = gY + std::min(o + r, n_out - 1) * n;
                    T d[RO][CK];
                    grad_tile<RO, CK>(gy, x, n, d);
                    for (std::size_t r = 0; r < RO && o + r < o1; ++r) {
                        for (std::size_t c = 0; c < CK && k + c < k1; ++c) gW[(o + r) * n_in + k + c] += d[r][c];
                    }
                }
            }
        }
    }
}

// gW += gY X^T and gb += gY 1 (gb may be null), for n >= 2L. The tile is
// 3 x 4 dot products (24 accumulators) where AVX-512 gives 32 vector
// registers, 2 x 3 (12) in AVX2's 16: the larger tile spills there (see
// wide_registers). Every entry is summed the same way whatever the tile.
template <class T>
EF_ALWAYS_INLINE void grad_weights_blocked_impl(const T* gY, const T* X, std::size_t n_out,
                                                std::size_t n_in, std::size_t n, T* gW, T* gb) {
    if (wide_registers()) {
        grad_weights_tiled<3, 4>(gY, X, n_out, n_in, n, gW);
    } else {
        grad_weights_tiled<2, 3>(gY, X, n_out, n_in, n, gW);
    }
    if (gb) {
        for (std::size_t o = 0; o < n_out; ++o) gb[o] += sum_impl(gY + o * n, n);
    }
}

}  // namespace detail

}  // namespace eulerflow
