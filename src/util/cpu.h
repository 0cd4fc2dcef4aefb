/* What the CPU is, for benchmark reports; DDPS_HOT for loops that pick their ISA at run time. */
#ifndef DDPS_UTIL_CPU_H
#define DDPS_UTIL_CPU_H

#include <stddef.h>

/* Writes a one-line description of this machine's CPU into buf (size n, always
 * NUL-terminated): the model name, family and model numbers and the matrix
 * extensions that decide f32 vs bf16 speed (AVX512-BF16, AVX512-FP16, AMX),
 * e.g. "Intel(R) Xeon(R) Processor, family 6 model 207, 2 cores, avx512f
 * avx512_bf16". Read from /proc/cpuinfo; "unknown CPU" where that is absent. */
void ddps_cpu_describe(char *buf, size_t n);

/* A hot loop's function compiled for x86-64-v4 (AVX-512), v3 (AVX2, FMA) and
 * the baseline, the best one picked at load time (GCC's target_clones), so
 * that the binary stays portable (no -march=native). Not under ASan, whose
 * instrumentation and ifunc resolvers do not mix. The build contracts a*b+c
 * into FMA (-ffp-contract=fast) where the ISA has it, so clones may differ
 * in the last bits (results stay the same for the same machine). */
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define DDPS_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DDPS_HOT
#endif

#endif
