// EF_KERNEL marks a hot function compiled for several instruction sets
// (baseline x86-64, AVX2+FMA, AVX-512) with the CPU picking one at load time:
// function multi-versioning, portable, unlike -march=native. Only the marked
// function's own body (with what it inlines) is compiled per ISA.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(EULERFLOW_NO_MULTIVERSION)
#define EF_KERNEL __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4"), noinline))
#else
#define EF_KERNEL
#endif
