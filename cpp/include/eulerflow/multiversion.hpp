// Run-time choice of the instruction set of the hot kernels.
//
// The default build stays portable (no -march=native): each hot kernel is
// compiled three times in its own translation unit, as three static functions
// that inline the same EF_ALWAYS_INLINE template body, each under its own
// __attribute__((target)):
//
//   baseline    plain x86-64 (SSE2): runs on every x86-64 CPU
//   x86-64-v3   AVX2, FMA, BMI1/2 (Haswell, Zen 1 and later)
//   x86-64-v4   AVX-512 F/BW/CD/DQ/VL (Skylake-X, Zen 4 and later)
//
// The kernel's public name (declared in its header, unchanged) is a small entry
// point that calls the selected variant through a constant table of function
// pointers indexed by one global level, so a call costs what an ifunc's PLT
// call cost (one indirect jump). The level is the best the CPU runs
// (__builtin_cpu_supports, which also checks that the OS saves the AVX-512
// state), chosen when the Python module is imported (isa::init, which also
// reads EULERFLOW_ISA to force a lower level, as NumPy's
// NPY_DISABLE_CPU_FEATURES does); until then it is the baseline, which is safe
// anywhere. isa::select switches every kernel at once: tests run each variant
// the CPU supports and compare their results (tests/test_isa_dispatch.py).
//
// Only the variant functions and what they inline are compiled for an ISA.
// Never compile a whole file with -mavx2/-mavx512f: an inline function that a
// file instantiates out of line would be merged (ODR) with the other files'
// copies and could then run AVX-512 instructions on a CPU without them.
//
// Elsewhere (not x86-64 with GCC, -march=native builds, EULERFLOW_NO_MULTIVERSION)
// each kernel is compiled once, the entry calls it directly, and the one
// variant is named "baseline" ("native" under -march=native).
#pragma once

#include <atomic>
#include <string>
#include <utility>
#include <vector>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(EULERFLOW_NO_MULTIVERSION)
#define EF_MULTIVERSIONED 1
#else
#define EF_MULTIVERSIONED 0
#endif

namespace eulerflow::isa {

// The kernel variants, lowest first: a CPU that runs one runs every lower one.
enum Level : int { kBaseline = 0, kX86_64_V3 = 1, kX86_64_V4 = 2 };

// The selected level, read by every kernel call (relaxed: it only changes when
// select() is called, between runs).
extern std::atomic<int> g_level;

inline int selected() noexcept { return g_level.load(std::memory_order_relaxed); }

// Whether the kernel variant that runs has AVX-512's 32 vector registers. Register
// tiles follow the variant, not the CPU: EULERFLOW_ISA or set_isa may select the
// AVX2 variant on an AVX-512 CPU, whose 16 registers the larger tiles would spill.
inline bool wide_registers() noexcept {
#if EF_MULTIVERSIONED
    return selected() == kX86_64_V4;
#elif defined(__AVX512F__)
    return true;
#else
    return false;
#endif
}

// Variant names, lowest first: what this build has and what this CPU runs.
std::vector<std::string> built();
std::vector<std::string> available();
std::string selected_name();

// Selects the named variant for every kernel; std::invalid_argument naming the
// variant and the available ones when this build or CPU cannot run it.
void select(const std::string& name);

// At import: the best available variant, or EULERFLOW_ISA's when it is set
// (std::invalid_argument naming the variable when it names no available one).
void init();

// The CPU features that decide the variants, as __builtin_cpu_supports reports
// them (feature name, supported), in a fixed order; empty off x86-64.
std::vector<std::pair<std::string, bool>> cpu_features();

}  // namespace eulerflow::isa

// EF_MULTIVERSION(Attrs, Ret, name, Params, Args, impl) defines the kernel
// `Ret name Params` as `return impl Args;` compiled for each level, e.g.
//   EF_MULTIVERSION(, void, add_into, (double* x, const double* y, std::size_t n), (x, y, n),
//                   detail::add_into_impl)
// impl must be an always-inline function (or template), so each variant
// compiles its own copy of the body for its ISA. Attrs are extra attributes of
// every variant (or nothing). Overloads of one name (float, double) each get
// their own table.
#if EF_MULTIVERSIONED
#define EF_TARGET_X86_64_V3 __attribute__((target("arch=x86-64-v3")))
#define EF_TARGET_X86_64_V4 __attribute__((target("arch=x86-64-v4")))
#define EF_MULTIVERSION(Attrs, Ret, name, Params, Args, impl)                                    \
    static Attrs Ret name##_baseline Params { return impl Args; }                                \
    static Attrs EF_TARGET_X86_64_V3 Ret name##_x86_64_v3 Params { return impl Args; }            \
    static Attrs EF_TARGET_X86_64_V4 Ret name##_x86_64_v4 Params { return impl Args; }            \
    Ret name Params {                                                                             \
        static Ret(*const variants[]) Params = {name##_baseline, name##_x86_64_v3, name##_x86_64_v4}; \
        return variants[::eulerflow::isa::selected()] Args;                                       \
    }
#else
#define EF_MULTIVERSION(Attrs, Ret, name, Params, Args, impl) \
    Attrs Ret name Params { return impl Args; }
#endif
