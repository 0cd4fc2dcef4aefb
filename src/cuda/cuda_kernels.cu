/* CUDA kernels of the backend other than attention: conversions, the
 * normalisations, elementwise ops, the Stage I map operations and two plain
 * fallbacks (direct convolution and matrix product) for shapes the vendor
 * libraries refuse.
 *
 * Style: plain C-like CUDA. A kernel's body is a __device__ function taking
 * the element type `dt` as its first argument; KERNEL3 stamps out one
 * __global__ kernel per type with dt a compile-time constant, so the type
 * branches in ld1/st1/ld8/st8 vanish. LAUNCH3 picks the kernel at run time.
 *
 * Memory-bound kernels move 8 elements per access (16 bytes of f16/bf16,
 * 2 x 16 bytes of f32) when the host has checked that the row lengths are
 * multiples of 8 and every pointer is 16-byte aligned (`vec`); otherwise they
 * go element by element. Loops are grid-stride, so any size fits any grid.
 *
 * Numerics follow the CPU kernels (tensor/cpu_kernels.c): f32 arithmetic,
 * double where the CPU sums in double (pooling), the same float formulas
 * for resampling coordinates (with the rounding of each step pinned by
 * __fmul_rn and friends, so no FMA contraction moves a sample point).
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cuda/cuda_internal.h"

#define THREADS 256
#define MAX_BLOCKS (1u << 20)

#define LAUNCH_CHECK(name)                                                                                             \
    do {                                                                                                               \
        cudaError_t e_ = cudaGetLastError();                                                                           \
        if (e_ != cudaSuccess)                                                                                         \
            ddps_cu_fail(DDPS_KIND_RESOURCE, "kernel " name, cudaGetErrorString(e_), __FILE__, __LINE__);                   \
    } while (0)

#define KERNEL3(name, params, ...)                                                                                     \
    static __global__ void name##_k0 params { name##_impl(CU_F32, __VA_ARGS__); }                                      \
    static __global__ void name##_k1 params { name##_impl(CU_BF16, __VA_ARGS__); }                                     \
    static __global__ void name##_k2 params { name##_impl(CU_F16, __VA_ARGS__); }

#define LAUNCH3(name, dt, grid, block, smem, stream, ...)                                                              \
    do {                                                                                                               \
        if ((dt) == CU_F32)                                                                                            \
            name##_k0<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__);                                             \
        else if ((dt) == CU_BF16)                                                                                      \
            name##_k1<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__);                                             \
        else                                                                                                           \
            name##_k2<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__);                                             \
        LAUNCH_CHECK(#name);                                                                                           \
    } while (0)

/* ---------- element access ---------- */

static __device__ __forceinline__ float h2f(unsigned u, int dt) {
    if (dt == CU_BF16) return __uint_as_float(u << 16);
    return __half2float(__ushort_as_half((unsigned short)u));
}

static __device__ __forceinline__ unsigned short f2h(float v, int dt) {
    if (dt == CU_BF16) return __bfloat16_as_ushort(__float2bfloat16_rn(v));
    return __half_as_ushort(__float2half_rn(v));
}

static __device__ __forceinline__ float ld1(const void *p, size_t i, int dt) {
    if (dt == CU_F32) return ((const float *)p)[i];
    return h2f(((const unsigned short *)p)[i], dt);
}

static __device__ __forceinline__ void st1(void *p, size_t i, float v, int dt) {
    if (dt == CU_F32)
        ((float *)p)[i] = v;
    else
        ((unsigned short *)p)[i] = f2h(v, dt);
}

/* Elements [i, i+8): i a multiple of 8, p 16-byte aligned. */
static __device__ __forceinline__ void ld8(const void *p, size_t i, int dt, float v[8]) {
    if (dt == CU_F32) {
        const float4 *q = (const float4 *)((const float *)p + i);
        float4 a = q[0], b = q[1];
        v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w;
        v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
    } else {
        uint4 u = *(const uint4 *)((const unsigned short *)p + i);
        unsigned w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
        for (int k = 0; k < 4; k++) {
            v[2 * k] = h2f(w[k] & 0xffffu, dt);
            v[2 * k + 1] = h2f(w[k] >> 16, dt);
        }
    }
}

static __device__ __forceinline__ void st8(void *p, size_t i, int dt, const float v[8]) {
    if (dt == CU_F32) {
        float4 *q = (float4 *)((float *)p + i);
        q[0] = make_float4(v[0], v[1], v[2], v[3]);
        q[1] = make_float4(v[4], v[5], v[6], v[7]);
    } else {
        unsigned w[4];
#pragma unroll
        for (int k = 0; k < 4; k++) w[k] = (unsigned)f2h(v[2 * k], dt) | ((unsigned)f2h(v[2 * k + 1], dt) << 16);
        *(uint4 *)((unsigned short *)p + i) = make_uint4(w[0], w[1], w[2], w[3]);
    }
}

static __device__ __forceinline__ float act_f(float v, int act) {
    switch (act) {
    case CU_ACT_SILU: return v / (1.0f + expf(-v));
    case CU_ACT_GELU: return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    case CU_ACT_QUICK_GELU: return v / (1.0f + expf(-1.702f * v));
    default: return v;
    }
}

static __device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

static __device__ __forceinline__ double warp_sum_d(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

static __device__ __forceinline__ size_t gtid(void) { return (size_t)blockIdx.x * blockDim.x + threadIdx.x; }
static __device__ __forceinline__ size_t gstride(void) { return (size_t)gridDim.x * blockDim.x; }

/* ---------- host helpers ---------- */

static int al16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

static unsigned blocks_for(size_t work) {
    size_t b = (work + THREADS - 1) / THREADS;
    if (b < 1) b = 1;
    if (b > MAX_BLOCKS) b = MAX_BLOCKS;
    return (unsigned)b;
}

/* ---------- probe ---------- */

static __global__ void probe_kernel(int *p) {
    if (p) *p = 1;
}

extern "C" int ddps_cuk_probe(char *msg, size_t len) {
    struct cudaFuncAttributes a;
    cudaError_t e = cudaFuncGetAttributes(&a, (const void *)probe_kernel);
    if (e != cudaSuccess) {
        snprintf(msg, len, "%s", cudaGetErrorString(e));
        cudaGetLastError();
        return -1;
    }
    return 0;
}

/* ---------- conversions ---------- */

static __global__ void convert_kernel(void *dst, int ddt, const void *src, int sdt, size_t n) {
    for (size_t i = gtid(); i < n; i += gstride()) {
        float v = sdt == CU_F32 ? ((const float *)src)[i] : h2f(((const unsigned short *)src)[i], sdt);
        if (ddt == CU_F32)
            ((float *)dst)[i] = v;
        else
            ((unsigned short *)dst)[i] = f2h(v, ddt);
    }
}

extern "C" void ddps_cuk_convert(cudaStream_t s, void *dst, int ddt, const void *src, int sdt, size_t n) {
    if (n == 0) return;
    convert_kernel<<<blocks_for(n), THREADS, 0, s>>>(dst, ddt, src, sdt, n);
    LAUNCH_CHECK("convert");
}

/* ---------- elementwise ---------- */

static __device__ __forceinline__ void bias_act_impl(int dt, void *y, const float *bias, size_t rows, int cols, int act,
                                                     int vec) {
    size_t n = rows * (size_t)cols;
    if (vec) {
        for (size_t i = gtid(); i < n / 8; i += gstride()) {
            float v[8];
            size_t e = i * 8;
            int c = (int)(e % (size_t)cols);
            ld8(y, e, dt, v);
#pragma unroll
            for (int k = 0; k < 8; k++) v[k] = act_f(v[k] + (bias ? bias[c + k] : 0.0f), act);
            st8(y, e, dt, v);
        }
    } else {
        for (size_t i = gtid(); i < n; i += gstride()) {
            int c = (int)(i % (size_t)cols);
            st1(y, i, act_f(ld1(y, i, dt) + (bias ? bias[c] : 0.0f), act), dt);
        }
    }
}
KERNEL3(bias_act, (void *y, const float *bias, size_t rows, int cols, int act, int vec), y, bias, rows, cols, act, vec)

extern "C" void ddps_cuk_bias_act(cudaStream_t s, void *y, int dt, const float *bias, size_t rows, int cols, int act) {
    size_t n = rows * (size_t)cols;
    if (n == 0 || (!bias && act == CU_ACT_NONE)) return;
    int vec = cols % 8 == 0 && al16(y) && (!bias || al16(bias));
    LAUNCH3(bias_act, dt, blocks_for(vec ? n / 8 : n), THREADS, 0, s, y, bias, rows, cols, act, vec);
}

static __device__ __forceinline__ void activate_impl(int dt, void *y, const void *x, size_t n, int act, int vec) {
    if (vec) {
        for (size_t i = gtid(); i < n / 8; i += gstride()) {
            float v[8];
            ld8(x, i * 8, dt, v);
#pragma unroll
            for (int k = 0; k < 8; k++) v[k] = act_f(v[k], act);
            st8(y, i * 8, dt, v);
        }
    } else {
        for (size_t i = gtid(); i < n; i += gstride()) st1(y, i, act_f(ld1(x, i, dt), act), dt);
    }
}
KERNEL3(activate, (void *y, const void *x, size_t n, int act, int vec), y, x, n, act, vec)

extern "C" void ddps_cuk_activate(cudaStream_t s, void *y, const void *x, int dt, size_t n, int act) {
    if (n == 0 || (act == CU_ACT_NONE && y == x)) return;
    int vec = n % 8 == 0 && al16(y) && al16(x);
    LAUNCH3(activate, dt, blocks_for(vec ? n / 8 : n), THREADS, 0, s, y, x, n, act, vec);
}

static __device__ __forceinline__ void axpby_impl(int dt, void *y, float a, const void *x, float b, const void *z,
                                                  size_t n, int vec) {
    if (vec) {
        for (size_t i = gtid(); i < n / 8; i += gstride()) {
            float u[8], v[8];
            ld8(x, i * 8, dt, u);
            ld8(z, i * 8, dt, v);
#pragma unroll
            for (int k = 0; k < 8; k++) u[k] = a * u[k] + b * v[k];
            st8(y, i * 8, dt, u);
        }
    } else {
        for (size_t i = gtid(); i < n; i += gstride()) st1(y, i, a * ld1(x, i, dt) + b * ld1(z, i, dt), dt);
    }
}
KERNEL3(axpby, (void *y, float a, const void *x, float b, const void *z, size_t n, int vec), y, a, x, b, z, n, vec)

extern "C" void ddps_cuk_axpby(cudaStream_t s, void *y, float a, const void *x, float b, const void *z, int dt, size_t n) {
    if (n == 0) return;
    int vec = n % 8 == 0 && al16(y) && al16(x) && al16(z);
    LAUNCH3(axpby, dt, blocks_for(vec ? n / 8 : n), THREADS, 0, s, y, a, x, b, z, n, vec);
}

static __device__ __forceinline__ void geglu_impl(int dt, void *y, const void *x, size_t rows, int f, int vec) {
    size_t n = rows * (size_t)f;
    if (vec) {
        for (size_t i = gtid(); i < n / 8; i += gstride()) {
            size_t e = i * 8, r = e / (size_t)f;
            int j = (int)(e - r * (size_t)f);
            float a[8], g[8];
            ld8(x, r * 2 * f + j, dt, a);
            ld8(x, r * 2 * f + f + j, dt, g);
#pragma unroll
            for (int k = 0; k < 8; k++) a[k] *= act_f(g[k], CU_ACT_GELU);
            st8(y, e, dt, a);
        }
    } else {
        for (size_t e = gtid(); e < n; e += gstride()) {
            size_t r = e / (size_t)f;
            int j = (int)(e - r * (size_t)f);
            st1(y, e, ld1(x, r * 2 * f + j, dt) * act_f(ld1(x, r * 2 * f + f + j, dt), CU_ACT_GELU), dt);
        }
    }
}
KERNEL3(geglu, (void *y, const void *x, size_t rows, int f, int vec), y, x, rows, f, vec)

extern "C" void ddps_cuk_geglu(cudaStream_t s, void *y, const void *x, int dt, size_t rows, int f) {
    size_t n = rows * (size_t)f;
    if (n == 0) return;
    int vec = f % 8 == 0 && al16(y) && al16(x);
    LAUNCH3(geglu, dt, blocks_for(vec ? n / 8 : n), THREADS, 0, s, y, x, rows, f, vec);
}

/* ---------- GroupNorm ----------
 * Pass 1 (gn_stats): grid (chunks, N); a block sums x + shift and its
 * square per channel over its chunk of rows: thread (tx, ty) takes channel
 * vectors tx, tx + TX, ... and rows ty, ty + TY, ..., so a warp reads
 * consecutive channels; the TY partials meet in shared memory in a fixed
 * order. Pass 2 (gn_finalize): one thread per (n, group) adds the chunk
 * partials in double, in a fixed order, and turns mean and variance into a
 * per-(n, c) scale and bias. Pass 3 (gn_apply): y = x * scale + bias (+ SiLU),
 * elementwise. No atomics: results do not depend on scheduling. */

#define GN_MAX_C 6144

typedef struct {
    int nchunk, rows_per_chunk, tx, ty, vec;
} gn_plan;

static gn_plan gn_make_plan(int sm_count, int N, size_t HW, int C, int vec) {
    gn_plan p;
    int cv = vec ? C / 8 : C;
    p.vec = vec;
    p.tx = cv < THREADS ? cv : THREADS;
    p.ty = THREADS / p.tx;
    if (p.ty < 1) p.ty = 1;
    size_t want = (size_t)(sm_count > 0 ? sm_count : 132) * 4;
    size_t nchunk = (want + (size_t)N - 1) / (size_t)N;
    size_t max_chunk = (HW + (size_t)p.ty - 1) / (size_t)p.ty; /* at least TY rows a chunk */
    if (nchunk > max_chunk) nchunk = max_chunk;
    if (nchunk < 1) nchunk = 1;
    size_t rpc = (HW + nchunk - 1) / nchunk;
    if (rpc < 1) rpc = 1;
    p.rows_per_chunk = (int)rpc;
    p.nchunk = (int)((HW + rpc - 1) / rpc);
    if (p.nchunk < 1) p.nchunk = 1;
    return p;
}

extern "C" size_t ddps_cuk_group_norm_scratch(int sm_count, int N, size_t HW, int C) {
    gn_plan p = gn_make_plan(sm_count, N, HW, C, 0);
    gn_plan q = gn_make_plan(sm_count, N, HW, C, 1);
    int nc = p.nchunk > q.nchunk ? p.nchunk : q.nchunk;
    /* partials [N][nchunk][C][2], then scale [N][C] and bias [N][C] */
    return ((size_t)N * nc * C * 2 + (size_t)N * C * 2) * sizeof(float) + 256;
}

extern __shared__ __align__(16) unsigned char cu_smem[];

static __device__ __forceinline__ void gn_stats_impl(int dt, const void *x, const void *shift, float *part, size_t HW,
                                                     int C, int rows_per_chunk, int TX, int TY, int vec) {
    float *sm = (float *)cu_smem; /* [TY][C][2] */
    int n = blockIdx.y, chunk = blockIdx.x;
    int tx = threadIdx.x % TX, ty = threadIdx.x / TX;
    size_t r0 = (size_t)chunk * rows_per_chunk, r1 = r0 + rows_per_chunk < HW ? r0 + rows_per_chunk : HW;
    size_t base = (size_t)n * HW * C;
    if (ty < TY) {
        if (vec) {
            for (int cv = tx; cv < C / 8; cv += TX) {
                float s[8], q[8], sh[8];
#pragma unroll
                for (int k = 0; k < 8; k++) {
                    s[k] = q[k] = 0.0f;
                    sh[k] = shift ? ld1(shift, (size_t)n * C + cv * 8 + k, dt) : 0.0f;
                }
                for (size_t r = r0 + ty; r < r1; r += TY) {
                    float v[8];
                    ld8(x, base + r * C + cv * 8, dt, v);
#pragma unroll
                    for (int k = 0; k < 8; k++) {
                        float t = v[k] + sh[k];
                        s[k] += t;
                        q[k] += t * t;
                    }
                }
#pragma unroll
                for (int k = 0; k < 8; k++) {
                    sm[((size_t)ty * C + cv * 8 + k) * 2] = s[k];
                    sm[((size_t)ty * C + cv * 8 + k) * 2 + 1] = q[k];
                }
            }
        } else {
            for (int c = tx; c < C; c += TX) {
                float s = 0.0f, q = 0.0f, sh = shift ? ld1(shift, (size_t)n * C + c, dt) : 0.0f;
                for (size_t r = r0 + ty; r < r1; r += TY) {
                    float t = ld1(x, base + r * C + c, dt) + sh;
                    s += t;
                    q += t * t;
                }
                sm[((size_t)ty * C + c) * 2] = s;
                sm[((size_t)ty * C + c) * 2 + 1] = q;
            }
        }
    }
    __syncthreads();
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float s = 0.0f, q = 0.0f;
        for (int t = 0; t < TY; t++) {
            s += sm[((size_t)t * C + c) * 2];
            q += sm[((size_t)t * C + c) * 2 + 1];
        }
        float *o = part + (((size_t)n * gridDim.x + chunk) * C + c) * 2;
        o[0] = s;
        o[1] = q;
    }
}
KERNEL3(gn_stats,
        (const void *x, const void *shift, float *part, size_t HW, int C, int rows_per_chunk, int TX, int TY, int vec),
        x, shift, part, HW, C, rows_per_chunk, TX, TY, vec)

static __device__ __forceinline__ void gn_finalize_impl(int dt, const float *part, const void *shift,
                                                        const float *gamma, const float *beta, float *scale,
                                                        float *bias, int N, size_t HW, int C, int groups, int nchunk,
                                                        float eps) {
    int t = (int)gtid();
    if (t >= N * groups) return;
    int n = t / groups, g = t % groups, cg = C / groups;
    double s1 = 0.0, s2 = 0.0;
    for (int ch = 0; ch < nchunk; ch++) {
        const float *p = part + ((size_t)n * nchunk + ch) * C * 2;
        for (int j = g * cg; j < (g + 1) * cg; j++) {
            s1 += p[2 * j];
            s2 += p[2 * j + 1];
        }
    }
    double cnt = (double)HW * cg, mean = s1 / cnt, var = s2 / cnt - mean * mean;
    if (var < 0) var = 0;
    double rstd = 1.0 / sqrt(var + (double)eps);
    for (int j = g * cg; j < (g + 1) * cg; j++) {
        double sc = rstd * gamma[j];
        double sv = shift ? (double)ld1(shift, (size_t)n * C + j, dt) : 0.0;
        scale[(size_t)n * C + j] = (float)sc;
        bias[(size_t)n * C + j] = (float)(beta[j] + (sv - mean) * sc);
    }
}
KERNEL3(gn_finalize,
        (const float *part, const void *shift, const float *gamma, const float *beta, float *scale, float *bias, int N,
         size_t HW, int C, int groups, int nchunk, float eps),
        part, shift, gamma, beta, scale, bias, N, HW, C, groups, nchunk, eps)

static __device__ __forceinline__ void gn_apply_impl(int dt, void *y, const void *x, const float *scale,
                                                     const float *bias, size_t HW, int C, size_t total, int silu,
                                                     int vec) {
    size_t per = HW * (size_t)C;
    if (vec) {
        for (size_t i = gtid(); i < total / 8; i += gstride()) {
            size_t e = i * 8, n = e / per;
            int c = (int)(e % (size_t)C);
            const float *sc = scale + n * C + c, *bi = bias + n * C + c;
            float v[8];
            ld8(x, e, dt, v);
#pragma unroll
            for (int k = 0; k < 8; k++) {
                float o = v[k] * sc[k] + bi[k];
                v[k] = silu ? act_f(o, CU_ACT_SILU) : o;
            }
            st8(y, e, dt, v);
        }
    } else {
        for (size_t e = gtid(); e < total; e += gstride()) {
            size_t n = e / per;
            int c = (int)(e % (size_t)C);
            float o = ld1(x, e, dt) * scale[n * C + c] + bias[n * C + c];
            st1(y, e, silu ? act_f(o, CU_ACT_SILU) : o, dt);
        }
    }
}
KERNEL3(gn_apply,
        (void *y, const void *x, const float *scale, const float *bias, size_t HW, int C, size_t total, int silu,
         int vec),
        y, x, scale, bias, HW, C, total, silu, vec)

extern "C" void ddps_cuk_group_norm(cudaStream_t s, int sm_count, void *y, const void *x, const void *shift,
                                    const float *gamma, const float *beta, int dt, int N, size_t HW, int C, int groups,
                                    float eps, int silu, void *scratch) {
    if (C > GN_MAX_C || groups < 1 || C % groups) {
        ddps_cu_internal("group norm of %d channels in %d groups (at most %d channels)", C, groups, GN_MAX_C);
        return;
    }
    size_t total = (size_t)N * HW * C;
    if (total == 0) return;
    int vec = C % 8 == 0 && al16(x) && al16(y);
    gn_plan p = gn_make_plan(sm_count, N, HW, C, vec);
    /* scratch layout: partials, then scale and bias (256-byte aligned start) */
    float *part = (float *)(((uintptr_t)scratch + 255) & ~(uintptr_t)255);
    float *scale = part + (size_t)N * p.nchunk * C * 2, *bias = scale + (size_t)N * C;
    size_t smem = (size_t)p.ty * C * 2 * sizeof(float);
    dim3 grid((unsigned)p.nchunk, (unsigned)N);
    LAUNCH3(gn_stats, dt, grid, p.tx * p.ty, smem, s, x, shift, part, HW, C, p.rows_per_chunk, p.tx, p.ty, vec);
    unsigned fb = (unsigned)((N * groups + 127) / 128);
    LAUNCH3(gn_finalize, dt, fb, 128, 0, s, part, shift, gamma, beta, scale, bias, N, HW, C, groups, p.nchunk, eps);
    LAUNCH3(gn_apply, dt, blocks_for(vec ? total / 8 : total), THREADS, 0, s, y, x, scale, bias, HW, C, total, silu,
            vec);
}

/* ---------- LayerNorm: one warp per row, three passes over the row (the
 * second and third hit L1) ---------- */

static __device__ __forceinline__ void layer_norm_impl(int dt, void *y, const void *x, const float *g, const float *b,
                                                       size_t rows, int C, float eps, int vec) {
    int lane = threadIdx.x & 31;
    size_t nw = gstride() / 32;
    for (size_t r = gtid() / 32; r < rows; r += nw) {
        size_t base = r * C;
        float s = 0.0f;
        if (vec) {
            for (int c = lane * 8; c < C; c += 256) {
                float v[8];
                ld8(x, base + c, dt, v);
#pragma unroll
                for (int k = 0; k < 8; k++) s += v[k];
            }
        } else {
            for (int c = lane; c < C; c += 32) s += ld1(x, base + c, dt);
        }
        float mean = warp_sum(s) / (float)C, q = 0.0f;
        if (vec) {
            for (int c = lane * 8; c < C; c += 256) {
                float v[8];
                ld8(x, base + c, dt, v);
#pragma unroll
                for (int k = 0; k < 8; k++) q += (v[k] - mean) * (v[k] - mean);
            }
        } else {
            for (int c = lane; c < C; c += 32) {
                float d = ld1(x, base + c, dt) - mean;
                q += d * d;
            }
        }
        float rstd = 1.0f / sqrtf(warp_sum(q) / (float)C + eps);
        if (vec) {
            for (int c = lane * 8; c < C; c += 256) {
                float v[8];
                ld8(x, base + c, dt, v);
#pragma unroll
                for (int k = 0; k < 8; k++) v[k] = (v[k] - mean) * rstd * g[c + k] + b[c + k];
                st8(y, base + c, dt, v);
            }
        } else {
            for (int c = lane; c < C; c += 32) st1(y, base + c, (ld1(x, base + c, dt) - mean) * rstd * g[c] + b[c], dt);
        }
    }
}
KERNEL3(layer_norm, (void *y, const void *x, const float *g, const float *b, size_t rows, int C, float eps, int vec), y,
        x, g, b, rows, C, eps, vec)

extern "C" void ddps_cuk_layer_norm(cudaStream_t s, void *y, const void *x, const float *gamma, const float *beta, int dt,
                                    size_t rows, int C, float eps) {
    if (rows == 0 || C == 0) return;
    /* y may be x: each lane rereads only the elements it writes itself, and
     * the writes come after both reductions of the row. */
    int vec = C % 8 == 0 && al16(x) && al16(y);
    LAUNCH3(layer_norm, dt, blocks_for(rows * 32), THREADS, 0, s, y, x, gamma, beta, rows, C, eps, vec);
}

/* ---------- resampling and copies ---------- */

/* PyTorch 'nearest' source index: identity, exact 2x, or floor(dst * (float)in / out). */
static __device__ __forceinline__ int nearest_src(int dst, int in, int out) {
    if (in == out) return dst;
    if (out == 2 * in) return dst >> 1;
    float scale = __fdiv_rn((float)in, (float)out);
    int s = (int)floorf(__fmul_rn((float)dst, scale));
    return s < in - 1 ? s : in - 1;
}

static __device__ __forceinline__ void upsample_impl(int dt, void *y, const void *x, int N, int ih, int iw, int oh,
                                                     int ow, int C, int vec) {
    int V = vec ? 8 : 1;
    size_t total = (size_t)N * oh * ow * C / V;
    int cv = C / V;
    for (size_t i = gtid(); i < total; i += gstride()) {
        int c = (int)(i % (size_t)cv) * V;
        size_t p = i / (size_t)cv;
        int j = (int)(p % (size_t)ow);
        p /= (size_t)ow;
        int r = (int)(p % (size_t)oh);
        size_t n = p / (size_t)oh;
        size_t src = ((n * ih + nearest_src(r, ih, oh)) * iw + nearest_src(j, iw, ow)) * C + c;
        size_t dst = i * V;
        if (vec) {
            float v[8];
            ld8(x, src, dt, v);
            st8(y, dst, dt, v);
        } else {
            st1(y, dst, ld1(x, src, dt), dt);
        }
    }
}
KERNEL3(upsample, (void *y, const void *x, int N, int ih, int iw, int oh, int ow, int C, int vec), y, x, N, ih, iw, oh,
        ow, C, vec)

extern "C" void ddps_cuk_upsample_nearest(cudaStream_t s, void *y, const void *x, int dt, int N, int ih, int iw, int oh,
                                          int ow, int C) {
    size_t total = (size_t)N * oh * ow * C;
    if (total == 0) return;
    int vec = C % 8 == 0 && al16(x) && al16(y);
    LAUNCH3(upsample, dt, blocks_for(vec ? total / 8 : total), THREADS, 0, s, y, x, N, ih, iw, oh, ow, C, vec);
}

static __device__ __forceinline__ void concat_impl(int dt, void *y, const void *a, const void *b, size_t rows, int ca,
                                                   int cb, int vec) {
    int V = vec ? 8 : 1, c = ca + cb;
    size_t total = rows * c / V;
    int cv = c / V;
    for (size_t i = gtid(); i < total; i += gstride()) {
        size_t r = i / (size_t)cv;
        int j = (int)(i - r * cv) * V;
        const void *src = j < ca ? a : b;
        size_t si = j < ca ? r * ca + j : r * cb + (j - ca);
        if (vec) {
            float v[8];
            ld8(src, si, dt, v);
            st8(y, i * 8, dt, v);
        } else {
            st1(y, i, ld1(src, si, dt), dt);
        }
    }
}
KERNEL3(concat, (void *y, const void *a, const void *b, size_t rows, int ca, int cb, int vec), y, a, b, rows, ca, cb,
        vec)

extern "C" void ddps_cuk_concat_c(cudaStream_t s, void *y, const void *a, const void *b, int dt, size_t rows, int ca,
                                  int cb) {
    size_t total = rows * (size_t)(ca + cb);
    if (total == 0) return;
    int vec = ca % 8 == 0 && cb % 8 == 0 && al16(y) && al16(a) && al16(b);
    LAUNCH3(concat, dt, blocks_for(vec ? total / 8 : total), THREADS, 0, s, y, a, b, rows, ca, cb, vec);
}

static __device__ __forceinline__ void embed_impl(int dt, void *y, const int32_t *ids, const float *tok,
                                                  const float *pos, int N, int L, int C) {
    size_t total = (size_t)N * L * C;
    for (size_t e = gtid(); e < total; e += gstride()) {
        size_t p = e / (size_t)C;
        int j = (int)(e - p * C), i = (int)(p % (size_t)L);
        st1(y, e, tok[(size_t)ids[p] * C + j] + pos[(size_t)i * C + j], dt);
    }
}
KERNEL3(embed, (void *y, const int32_t *ids, const float *tok, const float *pos, int N, int L, int C), y, ids, tok, pos,
        N, L, C)

extern "C" void ddps_cuk_embed(cudaStream_t s, void *y, const int32_t *ids, const float *tok, const float *pos, int dt,
                               int N, int L, int C) {
    size_t total = (size_t)N * L * C;
    if (total == 0) return;
    LAUNCH3(embed, dt, blocks_for(total), THREADS, 0, s, y, ids, tok, pos, N, L, C);
}

/* The accumulator d is f32 whatever dt: each term is a small difference of
 * two nearly equal squares, which 16 bits would round away. */
static __device__ __forceinline__ void sqdiff_impl(int dt, float *d, const void *e, const void *a, const void *b,
                                                   float w, size_t n) {
    for (size_t i = gtid(); i < n; i += gstride()) {
        float ev = ld1(e, i, dt), u = ev - ld1(a, i, dt), v = ev - ld1(b, i, dt);
        d[i] += w * (u * u - v * v);
    }
}
KERNEL3(sqdiff, (float *d, const void *e, const void *a, const void *b, float w, size_t n), d, e, a, b, w, n)

extern "C" void ddps_cuk_sqdiff_acc(cudaStream_t s, float *d, const void *e, const void *a, const void *b, float w, int dt,
                                    size_t n) {
    if (n == 0) return;
    LAUNCH3(sqdiff, dt, blocks_for(n), THREADS, 0, s, d, e, a, b, w, n);
}

static __global__ void fill_f32_kernel(float *p, float v, size_t n) {
    for (size_t i = gtid(); i < n; i += gstride()) p[i] = v;
}

extern "C" void ddps_cuk_fill_f32(cudaStream_t s, float *p, float v, size_t n) {
    if (n == 0) return;
    fill_f32_kernel<<<blocks_for(n), THREADS, 0, s>>>(p, v, n);
    LAUNCH_CHECK("fill_f32");
}

/* PyTorch bilinear (align_corners = false) source coordinate, as the CPU's
 * bilinear_src: each float step rounded on its own. */
static __device__ __forceinline__ void bilinear_src(int dst, int in, int out, int *i0, int *i1, float *l1) {
    float scale = __fdiv_rn((float)in, (float)out);
    float s = __fsub_rn(__fmul_rn(scale, __fadd_rn((float)dst, 0.5f)), 0.5f);
    if (s < 0) s = 0;
    int i = (int)s;
    *i0 = i;
    *i1 = i + (i < in - 1 ? 1 : 0);
    *l1 = __fsub_rn(s, (float)i);
}

static __device__ __forceinline__ void resize_cmean_impl(int dt, void *y, const void *x, int N, int ih, int iw, int C,
                                                         int oh, int ow) {
    size_t total = (size_t)N * oh * ow;
    for (size_t e = gtid(); e < total; e += gstride()) {
        int j = (int)(e % (size_t)ow), i = (int)((e / ow) % (size_t)oh);
        size_t n = e / ((size_t)ow * oh);
        int y0, y1, x0, x1;
        float ly, lx;
        bilinear_src(i, ih, oh, &y0, &y1, &ly);
        bilinear_src(j, iw, ow, &x0, &x1, &lx);
        size_t xn = n * ih * iw * C;
        size_t p00 = xn + ((size_t)y0 * iw + x0) * C, p01 = xn + ((size_t)y0 * iw + x1) * C;
        size_t p10 = xn + ((size_t)y1 * iw + x0) * C, p11 = xn + ((size_t)y1 * iw + x1) * C;
        float s = 0.0f;
        for (int k = 0; k < C; k++)
            s += (1 - ly) * ((1 - lx) * ld1(x, p00 + k, dt) + lx * ld1(x, p01 + k, dt)) +
                 ly * ((1 - lx) * ld1(x, p10 + k, dt) + lx * ld1(x, p11 + k, dt));
        st1(y, e, s / (float)C, dt);
    }
}
KERNEL3(resize_cmean, (void *y, const void *x, int N, int ih, int iw, int C, int oh, int ow), y, x, N, ih, iw, C, oh,
        ow)

extern "C" void ddps_cuk_resize_bilinear_cmean(cudaStream_t s, void *y, const void *x, int dt, int N, int ih, int iw, int C,
                                               int oh, int ow) {
    size_t total = (size_t)N * oh * ow;
    if (total == 0) return;
    LAUNCH3(resize_cmean, dt, blocks_for(total), THREADS, 0, s, y, x, N, ih, iw, C, oh, ow);
}

/* One warp per output value; the window is summed in double, as the CPU's
 * summed-area table is, so any window size gives the same digits. */
static __device__ __forceinline__ void avg_pool_impl(int dt, void *y, const void *x, int N, int H, int W, int C, int k,
                                                     int st, int oh, int ow) {
    int lane = threadIdx.x & 31;
    size_t total = (size_t)N * oh * ow * C, nw = gstride() / 32;
    int kk = k * k;
    for (size_t o = gtid() / 32; o < total; o += nw) {
        int c = (int)(o % (size_t)C);
        size_t p = o / (size_t)C;
        int j = (int)(p % (size_t)ow), i = (int)((p / ow) % (size_t)oh);
        size_t n = p / ((size_t)ow * oh);
        double acc = 0.0;
        for (int e = lane; e < kk; e += 32) {
            int a = e / k, b = e - a * k;
            acc += ld1(x, ((n * H + (size_t)i * st + a) * W + (size_t)j * st + b) * C + c, dt);
        }
        acc = warp_sum_d(acc);
        if (lane == 0) st1(y, o, (float)(acc * (1.0 / ((double)k * k))), dt);
    }
}
KERNEL3(avg_pool, (void *y, const void *x, int N, int H, int W, int C, int k, int st, int oh, int ow), y, x, N, H, W, C,
        k, st, oh, ow)

extern "C" void ddps_cuk_avg_pool(cudaStream_t s, void *y, const void *x, int dt, int N, int H, int W, int C, int k, int st,
                                  int oh, int ow) {
    size_t total = (size_t)N * oh * ow * C;
    if (total == 0) return;
    LAUNCH3(avg_pool, dt, blocks_for(total * 32), THREADS, 0, s, y, x, N, H, W, C, k, st, oh, ow);
}

/* Block (32, 8) per (32 channels, n): rows split over ty, summed in double,
 * combined over ty in a fixed order. */
static __device__ __forceinline__ void global_avg_impl(int dt, void *y, const void *x, int N, size_t HW, int C) {
    __shared__ double part[8][32];
    int tx = threadIdx.x, ty = threadIdx.y, c = blockIdx.x * 32 + tx, n = blockIdx.y;
    double acc = 0.0;
    if (c < C)
        for (size_t r = ty; r < HW; r += 8) acc += ld1(x, ((size_t)n * HW + r) * C + c, dt);
    part[ty][tx] = acc;
    __syncthreads();
    if (ty == 0 && c < C) {
        double s = 0.0;
        for (int t = 0; t < 8; t++) s += part[t][tx];
        st1(y, (size_t)n * C + c, (float)(s / (double)HW), dt);
    }
}
KERNEL3(global_avg, (void *y, const void *x, int N, size_t HW, int C), y, x, N, HW, C)

extern "C" void ddps_cuk_global_avg(cudaStream_t s, void *y, const void *x, int dt, int N, size_t HW, int C) {
    if (N == 0 || C == 0) return;
    dim3 grid((unsigned)((C + 31) / 32), (unsigned)N), block(32, 8);
    LAUNCH3(global_avg, dt, grid, block, 0, s, y, x, N, HW, C);
}

static __device__ __forceinline__ void pad_impl(int dt, void *y, const void *x, int N, int H, int W, int C, int pt,
                                                int pl, int oh, int ow, int vec) {
    int V = vec ? 8 : 1, cv = C / V;
    size_t total = (size_t)N * oh * ow * cv;
    for (size_t i = gtid(); i < total; i += gstride()) {
        int c = (int)(i % (size_t)cv) * V;
        size_t p = i / (size_t)cv;
        int j = (int)(p % (size_t)ow), r = (int)((p / ow) % (size_t)oh);
        size_t n = p / ((size_t)ow * oh);
        int si = r - pt, sj = j - pl;
        int in = si >= 0 && si < H && sj >= 0 && sj < W;
        size_t src = in ? ((n * H + si) * W + sj) * C + c : 0;
        if (vec) {
            float v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            if (in) ld8(x, src, dt, v);
            st8(y, i * 8, dt, v);
        } else {
            st1(y, i, in ? ld1(x, src, dt) : 0.0f, dt);
        }
    }
}
KERNEL3(pad, (void *y, const void *x, int N, int H, int W, int C, int pt, int pl, int oh, int ow, int vec), y, x, N, H,
        W, C, pt, pl, oh, ow, vec)

extern "C" void ddps_cuk_pad(cudaStream_t s, void *y, const void *x, int dt, int N, int H, int W, int C, int pt, int pl,
                             int oh, int ow) {
    size_t total = (size_t)N * oh * ow * C;
    if (total == 0) return;
    int vec = C % 8 == 0 && al16(x) && al16(y);
    LAUNCH3(pad, dt, blocks_for(vec ? total / 8 : total), THREADS, 0, s, y, x, N, H, W, C, pt, pl, oh, ow, vec);
}

/* ---------- fallbacks: direct convolution and matrix product ---------- */

static __device__ __forceinline__ void conv_direct_impl(int dt, void *y, const void *x, const void *w,
                                                        const float *bias, int N, int H, int W, int C, int K, int kh,
                                                        int kw, int stride, int pt, int pl, int oh, int ow,
                                                        int accumulate) {
    size_t total = (size_t)N * oh * ow * K;
    for (size_t e = gtid(); e < total; e += gstride()) {
        int o = (int)(e % (size_t)K);
        size_t p = e / (size_t)K;
        int j = (int)(p % (size_t)ow), i = (int)((p / ow) % (size_t)oh);
        size_t n = p / ((size_t)ow * oh);
        float acc = bias ? bias[o] : 0.0f;
        for (int di = 0; di < kh; di++) {
            int yi = i * stride - pt + di;
            if (yi < 0 || yi >= H) continue;
            for (int dj = 0; dj < kw; dj++) {
                int xj = j * stride - pl + dj;
                if (xj < 0 || xj >= W) continue;
                size_t xb = ((n * H + yi) * W + xj) * C, wb = (((size_t)o * kh + di) * kw + dj) * C;
                for (int c = 0; c < C; c++) acc += ld1(x, xb + c, dt) * ld1(w, wb + c, dt);
            }
        }
        if (accumulate) acc += ld1(y, e, dt);
        st1(y, e, acc, dt);
    }
}
KERNEL3(conv_direct,
        (void *y, const void *x, const void *w, const float *bias, int N, int H, int W, int C, int K, int kh, int kw,
         int stride, int pt, int pl, int oh, int ow, int accumulate),
        y, x, w, bias, N, H, W, C, K, kh, kw, stride, pt, pl, oh, ow, accumulate)

extern "C" void ddps_cuk_conv_direct(cudaStream_t s, void *y, const void *x, const void *w, const float *bias, int dt, int N,
                                int H, int W, int C, int K, int kh, int kw, int stride, int pt, int pl, int oh, int ow,
                                int accumulate) {
    size_t total = (size_t)N * oh * ow * K;
    if (total == 0) return;
    LAUNCH3(conv_direct, dt, blocks_for(total), THREADS, 0, s, y, x, w, bias, N, H, W, C, K, kh, kw, stride, pt, pl, oh,
            ow, accumulate);
}

/* 16 x 16 output tiles through shared memory; row tiles grid-stride over y. */
static __device__ __forceinline__ void gemm_direct_impl(int dt, void *y, const void *x, const void *w,
                                                        const float *bias, size_t M, int N, int K, int act,
                                                        int accumulate) {
    __shared__ float xs[16][17], ws[16][17];
    int tx = threadIdx.x, ty = threadIdx.y, col = blockIdx.x * 16 + tx;
    size_t mtiles = (M + 15) / 16;
    for (size_t mt = blockIdx.y; mt < mtiles; mt += gridDim.y) {
        size_t row = mt * 16 + ty;
        float acc = 0.0f;
        for (int k0 = 0; k0 < K; k0 += 16) {
            size_t wrow = (size_t)blockIdx.x * 16 + ty;
            xs[ty][tx] = row < M && k0 + tx < K ? ld1(x, row * K + k0 + tx, dt) : 0.0f;
            ws[ty][tx] = wrow < (size_t)N && k0 + tx < K ? ld1(w, wrow * K + k0 + tx, dt) : 0.0f;
            __syncthreads();
#pragma unroll
            for (int kk = 0; kk < 16; kk++) acc += xs[ty][kk] * ws[tx][kk];
            __syncthreads();
        }
        if (row < M && col < N) {
            float v = acc + (bias ? bias[col] : 0.0f);
            if (accumulate) v += ld1(y, row * N + col, dt);
            st1(y, row * N + col, act_f(v, act), dt);
        }
    }
}
KERNEL3(gemm_direct,
        (void *y, const void *x, const void *w, const float *bias, size_t M, int N, int K, int act, int accumulate), y,
        x, w, bias, M, N, K, act, accumulate)

extern "C" void ddps_cuk_gemm_direct(cudaStream_t s, void *y, const void *x, const void *w, const float *bias, int dt,
                                     size_t M, int N, int K, int act, int accumulate) {
    if (M == 0 || N == 0) return;
    size_t mt = (M + 15) / 16;
    dim3 grid((unsigned)((N + 15) / 16), (unsigned)(mt < 65535 ? mt : 65535)), block(16, 16);
    LAUNCH3(gemm_direct, dt, grid, block, 0, s, y, x, w, bias, M, N, K, act, accumulate);
}
