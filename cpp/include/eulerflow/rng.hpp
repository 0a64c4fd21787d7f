// A small seeded generator (xoshiro256**, state from splitmix64) and the
// operations built on it. Written out here rather than taken from <random> so
// that the same seed gives the same bits with every compiler and library.
#pragma once

#include <cstdint>
#include <cstddef>

namespace eulerflow {

class Rng {
public:
    explicit Rng(std::uint64_t seed = 0) { reseed(seed); }

    void reseed(std::uint64_t seed) {
        std::uint64_t z = seed;
        for (auto& s : s_) s = splitmix64(z);
    }

    std::uint64_t next() {
        const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    // Uniform integer in [0, bound) without modulo bias (Lemire's method).
    std::uint64_t below(std::uint64_t bound) {
        unsigned __int128 m = (unsigned __int128)next() * bound;
        std::uint64_t low = (std::uint64_t)m;
        if (low < bound) {
            const std::uint64_t threshold = (0 - bound) % bound;
            while (low < threshold) {
                m = (unsigned __int128)next() * bound;
                low = (std::uint64_t)m;
            }
        }
        return (std::uint64_t)(m >> 64);
    }

    // Uniform double in [0, 1) with 53 random bits.
    double uniform() { return double(next() >> 11) * 0x1.0p-53; }

    // Fisher-Yates shuffle of idx[0..n).
    template <class I>
    void shuffle(I* idx, std::size_t n) {
        for (std::size_t i = n; i > 1; --i) {
            const std::size_t j = std::size_t(below(i));
            const I tmp = idx[i - 1];
            idx[i - 1] = idx[j];
            idx[j] = tmp;
        }
    }

    void copy_state(std::uint64_t* out) const {
        for (int i = 0; i < 4; ++i) out[i] = s_[i];
    }
    void set_state(const std::uint64_t* s) {
        for (int i = 0; i < 4; ++i) s_[i] = s[i];
    }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    static std::uint64_t splitmix64(std::uint64_t& z) {
        std::uint64_t r = (z += 0x9e3779b97f4a7c15ull);
        r = (r ^ (r >> 30)) * 0xbf58476d1ce4e5b9ull;
        r = (r ^ (r >> 27)) * 0x94d049bb133111ebull;
        return r ^ (r >> 31);
    }
    std::uint64_t s_[4];
};

}  // namespace eulerflow
