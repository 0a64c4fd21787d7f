"""Plain Python/NumPy reference for eulerflow's seeded Gaussian samples
(``_core.normal_samples``, which ``teacher_samples`` and ``fit_teacher`` read).

Written from the published algorithms, independently of the C++ core:

* the generator is xoshiro256** (Blackman and Vigna) with its four state words drawn by
  splitmix64 from the seed; a uniform is ``(next() >> 11) * 2**-53``;
* Box-Muller: per pair ``u1`` (drawn again while it is 0), then ``u2``;
  ``r = sqrt(-2 log u1)``, the pair is ``r cos(t), r sin(t)`` with ``t = 2 pi u2`` rounded
  to a double; an odd count drops the last sine. Here ``log``, ``cos`` and ``sin`` are
  NumPy's (libm's); the core evaluates its own in vector lanes, within a few ulp.
"""

from __future__ import annotations

import numpy as np

MASK = 2**64 - 1
TWO_PI = 6.283185307179586


def _splitmix64(z: int) -> tuple[int, int]:
    z = (z + 0x9E3779B97F4A7C15) & MASK
    r = z
    r = ((r ^ (r >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    r = ((r ^ (r >> 27)) * 0x94D049BB133111EB) & MASK
    return z, r ^ (r >> 31)


def _rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & MASK


def uniforms(seed: int, n: int) -> np.ndarray:
    """The generator's first ``n`` uniforms in [0, 1)."""
    s, z = [], seed & MASK
    for _ in range(4):
        z, r = _splitmix64(z)
        s.append(r)
    out = np.empty(n)
    for i in range(n):
        result = (_rotl((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        out[i] = (result >> 11) * 2.0**-53
    return out


def box_muller(u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    """The pairs ``r cos t, r sin t`` of the uniforms, interleaved, by NumPy's libm."""
    r = np.sqrt(-2.0 * np.log(u1))
    t = TWO_PI * u2
    return np.column_stack([r * np.cos(t), r * np.sin(t)]).reshape(-1)


def normal_samples(seed: int, n: int) -> np.ndarray:
    """``n`` normals as ``_core.normal_samples(seed, n)`` draws them (none of the first
    uniforms of a pair is 0 for the seeds tested: the redraw is not modelled)."""
    pairs = (n + 1) // 2
    u = uniforms(seed, 2 * pairs)
    assert np.all(u[0::2] > 0)
    return box_muller(u[0::2], u[1::2])[:n]
