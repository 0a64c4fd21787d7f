// The selected kernel variant (see multiversion.hpp for the mechanism).
#include "eulerflow/multiversion.hpp"

#include <cstdlib>
#include <stdexcept>

namespace eulerflow::isa {

// Constant-initialized: before init() runs, every kernel runs its baseline.
std::atomic<int> g_level{kBaseline};

namespace {

#if EF_MULTIVERSIONED
const char* const kNames[] = {"baseline", "x86-64-v3", "x86-64-v4"};
constexpr int kBuilt = 3;

// The highest level this CPU (and its OS) runs.
int best_level() {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return kX86_64_V4;
    if (__builtin_cpu_supports("x86-64-v3")) return kX86_64_V3;
    return kBaseline;
}
#else
#if defined(EULERFLOW_NATIVE)
const char* const kNames[] = {"native"};
#else
const char* const kNames[] = {"baseline"};
#endif
constexpr int kBuilt = 1;
int best_level() { return kBaseline; }
#endif

std::string joined(const std::vector<std::string>& names) {
    std::string s;
    for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
    return s;
}

}  // namespace

std::vector<std::string> built() { return std::vector<std::string>(kNames, kNames + kBuilt); }

std::vector<std::string> available() { return std::vector<std::string>(kNames, kNames + best_level() + 1); }

std::string selected_name() { return kNames[selected()]; }

void select(const std::string& name) {
    const int best = best_level();
    for (int level = 0; level < kBuilt; ++level) {
        if (name != kNames[level]) continue;
        if (level > best) {
            throw std::invalid_argument("kernel variant '" + name + "' needs instructions this CPU lacks; available: " +
                                        joined(available()));
        }
        g_level.store(level, std::memory_order_relaxed);
        return;
    }
    throw std::invalid_argument("unknown kernel variant '" + name + "'; this build has " + joined(built()) +
                                ", this CPU runs " + joined(available()));
}

void init() {
    const char* env = std::getenv("EULERFLOW_ISA");
    if (env == nullptr || *env == '\0') {
        g_level.store(best_level(), std::memory_order_relaxed);
        return;
    }
    try {
        select(env);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string("environment variable EULERFLOW_ISA: ") + e.what());
    }
}

std::vector<std::pair<std::string, bool>> cpu_features() {
    std::vector<std::pair<std::string, bool>> f;
#if defined(__GNUC__) && defined(__x86_64__)
    __builtin_cpu_init();
    // __builtin_cpu_supports takes a literal: one line per feature
#define EF_FEATURE(name) f.emplace_back(name, __builtin_cpu_supports(name) != 0)
    EF_FEATURE("sse4.2");
    EF_FEATURE("avx");
    EF_FEATURE("avx2");
    EF_FEATURE("fma");
    EF_FEATURE("bmi");
    EF_FEATURE("bmi2");
    EF_FEATURE("avx512f");
    EF_FEATURE("avx512dq");
    EF_FEATURE("avx512cd");
    EF_FEATURE("avx512bw");
    EF_FEATURE("avx512vl");
#undef EF_FEATURE
#endif
    return f;
}

}  // namespace eulerflow::isa
