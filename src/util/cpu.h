/* What the CPU is, for benchmark reports. */
#ifndef DDPS_UTIL_CPU_H
#define DDPS_UTIL_CPU_H

#include <stddef.h>

/* Writes a one-line description of this machine's CPU into buf (size n, always
 * NUL-terminated): the model name, family and model numbers and the matrix
 * extensions that decide f32 vs bf16 speed (AVX512-BF16, AVX512-FP16, AMX),
 * e.g. "Intel(R) Xeon(R) Processor, family 6 model 207, 2 cores, avx512f
 * avx512_bf16". Read from /proc/cpuinfo; "unknown CPU" where that is absent. */
void ddps_cpu_describe(char *buf, size_t n);

#endif
