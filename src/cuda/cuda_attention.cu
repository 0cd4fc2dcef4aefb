/* Multi-head attention on the GPU: flash-style kernels (online softmax), so
 * no B x H x Lq x Lk score matrix ever exists in memory.
 *
 * 16-bit activations (f16, bf16): tensor cores through mma.sync m16n8k16
 * with f32 accumulation (FlashAttention-2's scheme). A block of 4 warps
 * takes 64 query rows of one (batch, head); each warp owns 16 rows. Per tile
 * of 64 keys: K and V are copied to shared memory, S = Q K^T comes from
 * mma.sync with Q and K fragments read as 32-bit pairs from shared memory,
 * the row maxima and sums are updated in registers (a row's values live in
 * the 4 threads of a quad, reduced with shuffles), P is rounded to 16 bits
 * and fed straight from the S accumulators into the second mma.sync as its
 * A operand, with V's B fragments loaded by ldmatrix.trans. Head widths are
 * padded to a multiple of 16 with zeros. The output accumulators hold up to
 * 160 columns per thread group (SD's widest head); wider heads (the VAE's
 * single 512-channel head) split the output columns over blocks (grid z, 128
 * columns each), each recomputing S: 2.5x the arithmetic of one pass, still on
 * tensor cores.
 *
 * Fragment layouts (PTX ISA, mma.m16n8k16, g = lane / 4, t = lane % 4):
 *   A (16x16, row-major): a0 = (g, 2t..2t+1), a1 = (g+8, 2t..), a2 = (g, 2t+8..), a3 = (g+8, 2t+8..)
 *   B (16x8, k-major):    b0 = (k 2t..2t+1, n g), b1 = (k 2t+8..2t+9, n g)
 *   C (16x8, f32):        c0, c1 = (g, 2t..2t+1), c2, c3 = (g+8, 2t..2t+1)
 * so the S accumulators of key tiles 2j and 2j+1 are exactly the A fragment
 * of keys [16j, 16j+16) for P V.
 *
 * f32 activations: a CUDA-core kernel with the same online softmax, exact
 * f32 arithmetic (expf), for the reference precision. 16 query rows per
 * block (4 per warp), 32 keys per tile, one key per lane for the scores,
 * output columns spread over lanes. Any head width up to 512.
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "cuda/cuda_internal.h"

extern __shared__ __align__(16) unsigned char fa_smem[];

/* ---------- tensor-core kernel (f16 / bf16) ---------- */

#define FA_BM 64 /* query rows per block */
#define FA_BN 64 /* keys per tile */
#define FA_THREADS 128
#define FA_MAX_OT 20 /* 8-column output tiles a thread group holds: 160 columns */
#define FA_WIDE 128  /* output columns per block when the head is wider than 160 */

static __device__ __forceinline__ void mma16816(int bf16, float c[4], unsigned a0, unsigned a1, unsigned a2,
                                                unsigned a3, unsigned b0, unsigned b1) {
    if (bf16)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

/* Four 8x8 matrices, transposed: lanes 8i..8i+7 give the row addresses of matrix i. */
static __device__ __forceinline__ void ldsm_x4_trans(unsigned r[4], const unsigned short *p) {
    unsigned a = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

static __device__ __forceinline__ unsigned short to16(int bf16, float v) {
    return bf16 ? __bfloat16_as_ushort(__float2bfloat16_rn(v)) : __half_as_ushort(__float2half_rn(v));
}

/* Two values as one 32-bit fragment register: lo in the low half. */
static __device__ __forceinline__ unsigned pack2(int bf16, float lo, float hi) {
    return (unsigned)to16(bf16, lo) | ((unsigned)to16(bf16, hi) << 16);
}

static __device__ __forceinline__ unsigned ld32(const unsigned short *p) { return *(const unsigned *)p; }

/* Copies a 64-row tile into shared memory (row stride ss): global element
 * (r, c) is g[(grow0 + r) * C + col0 + c]; rows >= nrows and columns >=
 * ncols are zero, up to `width` columns. vec: 16-byte copies (width, ncols,
 * col0 and C multiples of 8, g 16-byte aligned). */
static __device__ __forceinline__ void fa_load(unsigned short *s, int ss, const unsigned short *g, size_t grow0,
                                               int nrows, size_t C, int col0, int ncols, int width, int vec) {
    if (vec) {
        int w8 = width >> 3;
        for (int idx = threadIdx.x; idx < FA_BN * w8; idx += FA_THREADS) {
            int r = idx / w8, c = (idx - r * w8) << 3;
            uint4 v = make_uint4(0, 0, 0, 0);
            if (r < nrows && c < ncols) v = *(const uint4 *)(g + (grow0 + r) * C + col0 + c);
            *(uint4 *)(s + r * ss + c) = v;
        }
    } else {
        for (int idx = threadIdx.x; idx < FA_BN * width; idx += FA_THREADS) {
            int r = idx / width, c = idx - r * width;
            unsigned short v = 0;
            if (r < nrows && c < ncols) v = g[(grow0 + r) * C + col0 + c];
            s[r * ss + c] = v;
        }
    }
}

/* q: [B, Lq, H*d], k, v: [B, Lk, H*d] (f16 or bf16 bits) -> y: [B, Lq, H*d]; one block per (b*H + h, FA_BM query
 * rows, `chunk` output columns). Flash attention on tensor cores: online softmax over FA_BN-key tiles.
 * Longer than 100 lines on purpose: the running max, sum and output accumulators live in registers across
 * the whole key loop; cut into functions they would have to travel through memory or through many
 * by-reference arguments, which costs registers and speed in the one kernel where both matter most. */
static __device__ __forceinline__ void flash_mma_impl(int bf16, unsigned short *y, const unsigned short *q,
                                                      const unsigned short *k, const unsigned short *v, int Lq, int Lk,
                                                      int H, int d, int DP, int chunk, int causal, float scale_log2,
                                                      int vec) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int bh = blockIdx.x, b = bh / H, h = bh - b * H;
    const int q0 = blockIdx.y * FA_BM, choff = blockIdx.z * chunk;
    const int ncol = d - choff < chunk ? d - choff : chunk; /* valid output columns of this block */
    const int QS = DP + 8, VS = chunk + 8, ot = chunk >> 3;
    const size_t C = (size_t)H * d;
    unsigned short *Qs = (unsigned short *)fa_smem, *Ks = Qs + FA_BM * QS, *Vs = Ks + FA_BN * QS;

    fa_load(Qs, QS, q, (size_t)b * Lq + q0, Lq - q0 < FA_BM ? Lq - q0 : FA_BM, C, h * d, d, DP, vec);

    float o[FA_MAX_OT][4];
#pragma unroll
    for (int i = 0; i < FA_MAX_OT; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
    const int row0 = q0 + warp * 16 + g, row1 = row0 + 8; /* this thread's two query rows */
    const int kend = causal ? (Lk < q0 + FA_BM ? Lk : q0 + FA_BM) : Lk;
    const unsigned short *qa = Qs + (warp * 16 + g) * QS + 2 * t;

    for (int k0 = 0; k0 < kend; k0 += FA_BN) {
        const int nk = Lk - k0 < FA_BN ? Lk - k0 : FA_BN;
        __syncthreads(); /* the previous tile is no longer read */
        fa_load(Ks, QS, k, (size_t)b * Lk + k0, nk, C, h * d, d, DP, vec);
        fa_load(Vs, VS, v, (size_t)b * Lk + k0, nk, C, h * d + choff, ncol, chunk, vec);
        __syncthreads();

        /* S = Q K^T for 16 rows x 64 keys per warp */
        float s[8][4];
#pragma unroll
        for (int i = 0; i < 8; i++) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
        for (int kk = 0; kk < DP; kk += 16) {
            unsigned a0 = ld32(qa + kk), a1 = ld32(qa + 8 * QS + kk), a2 = ld32(qa + kk + 8),
                     a3 = ld32(qa + 8 * QS + kk + 8);
#pragma unroll
            for (int nt = 0; nt < 8; nt++) {
                const unsigned short *kp = Ks + (nt * 8 + g) * QS + kk + 2 * t;
                mma16816(bf16, s[nt], a0, a1, a2, a3, ld32(kp), ld32(kp + 8));
            }
        }

        /* scale (to base 2), mask, row maxima over the quad */
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < 8; nt++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int key = k0 + nt * 8 + 2 * t + e;
                float v0 = s[nt][e] * scale_log2, v1 = s[nt][2 + e] * scale_log2;
                if (key >= Lk || (causal && key > row0)) v0 = -INFINITY;
                if (key >= Lk || (causal && key > row1)) v1 = -INFINITY;
                s[nt][e] = v0;
                s[nt][2 + e] = v1;
                mx0 = fmaxf(mx0, v0);
                mx1 = fmaxf(mx1, v1);
            }
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
        /* a row with no key yet keeps max -inf: use 0 as the base, so
         * exp2(-inf - 0) = 0 instead of exp2(-inf + inf) = NaN */
        float base0 = mn0 == -INFINITY ? 0.0f : mn0, base1 = mn1 == -INFINITY ? 0.0f : mn1;
        float al0 = exp2f(m0 - base0), al1 = exp2f(m1 - base1);
        m0 = mn0;
        m1 = mn1;
        float rs0 = 0.0f, rs1 = 0.0f;
#pragma unroll
        for (int nt = 0; nt < 8; nt++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                s[nt][e] = exp2f(s[nt][e] - base0);
                s[nt][2 + e] = exp2f(s[nt][2 + e] - base1);
                rs0 += s[nt][e];
                rs1 += s[nt][2 + e];
            }
        l0 = l0 * al0 + rs0; /* per-thread partial sums; the quad adds them at the end */
        l1 = l1 * al1 + rs1;
#pragma unroll
        for (int i = 0; i < FA_MAX_OT; i++) {
            o[i][0] *= al0;
            o[i][1] *= al0;
            o[i][2] *= al1;
            o[i][3] *= al1;
        }

        /* O += P V: keys in 4 steps of 16, output columns in pairs of 8-column tiles */
#pragma unroll
        for (int j = 0; j < 4; j++) {
            unsigned a0 = pack2(bf16, s[2 * j][0], s[2 * j][1]), a1 = pack2(bf16, s[2 * j][2], s[2 * j][3]);
            unsigned a2 = pack2(bf16, s[2 * j + 1][0], s[2 * j + 1][1]),
                     a3 = pack2(bf16, s[2 * j + 1][2], s[2 * j + 1][3]);
            const unsigned short *vp = Vs + (j * 16 + (lane & 15)) * VS + (lane >> 4) * 8;
#pragma unroll
            for (int nt = 0; nt < FA_MAX_OT; nt += 2) {
                if (nt < ot) { /* uniform over the block: ldmatrix needs the whole warp */
                    unsigned r[4];
                    ldsm_x4_trans(r, vp + nt * 8);
                    mma16816(bf16, o[nt], a0, a1, a2, a3, r[0], r[1]);
                    mma16816(bf16, o[nt + 1], a0, a1, a2, a3, r[2], r[3]);
                }
            }
        }
    }

    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    float inv0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, inv1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
    unsigned short *y0 = y + ((size_t)b * Lq + row0) * C + h * d + choff;
    unsigned short *y1 = y + ((size_t)b * Lq + row1) * C + h * d + choff;
#pragma unroll
    for (int nt = 0; nt < FA_MAX_OT; nt++) {
        if (nt < ot) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int col = nt * 8 + 2 * t + e;
                if (col < ncol) {
                    if (row0 < Lq) y0[col] = to16(bf16, o[nt][e] * inv0);
                    if (row1 < Lq) y1[col] = to16(bf16, o[nt][2 + e] * inv1);
                }
            }
        }
    }
}

static __global__ void __launch_bounds__(FA_THREADS)
    flash_mma_f16(unsigned short *y, const unsigned short *q, const unsigned short *k, const unsigned short *v, int Lq,
                  int Lk, int H, int d, int DP, int chunk, int causal, float scale_log2, int vec) {
    flash_mma_impl(0, y, q, k, v, Lq, Lk, H, d, DP, chunk, causal, scale_log2, vec);
}

static __global__ void __launch_bounds__(FA_THREADS)
    flash_mma_bf16(unsigned short *y, const unsigned short *q, const unsigned short *k, const unsigned short *v, int Lq,
                   int Lk, int H, int d, int DP, int chunk, int causal, float scale_log2, int vec) {
    flash_mma_impl(1, y, q, k, v, Lq, Lk, H, d, DP, chunk, causal, scale_log2, vec);
}

/* ---------- CUDA-core kernel (f32; any type) ---------- */

#define FS_ROWS 16   /* query rows per block */
#define FS_RW 4      /* rows per warp */
#define FS_KEYS 32   /* keys per tile: one per lane */
#define FS_MAX_DC 16 /* output columns per lane: d <= 512 */
#define FS_THREADS 128

static __device__ __forceinline__ float lde(const void *p, size_t i, int dt) {
    if (dt == CU_F32) return ((const float *)p)[i];
    unsigned short u = ((const unsigned short *)p)[i];
    return dt == CU_BF16 ? __uint_as_float((unsigned)u << 16) : __half2float(__ushort_as_half(u));
}

static __device__ __forceinline__ void ste(void *p, size_t i, float v, int dt) {
    if (dt == CU_F32)
        ((float *)p)[i] = v;
    else
        ((unsigned short *)p)[i] = to16(dt == CU_BF16, v);
}

static __device__ __forceinline__ void flash_simt_impl(int dt, void *y, const void *q, const void *k, const void *v,
                                                       int Lq, int Lk, int H, int d, int causal, float scale) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int bh = blockIdx.x, b = bh / H, h = bh - b * H, q0 = blockIdx.y * FS_ROWS;
    const size_t C = (size_t)H * d;
    const int ds = d + 1; /* odd stride: lanes read a column of Ks without bank conflicts */
    float *Qs = (float *)fa_smem, *Ks = Qs + FS_ROWS * d, *Vs = Ks + FS_KEYS * ds;
    for (int idx = threadIdx.x; idx < FS_ROWS * d; idx += FS_THREADS) {
        int r = idx / d, e = idx - r * d;
        Qs[idx] = q0 + r < Lq ? lde(q, ((size_t)b * Lq + q0 + r) * C + h * d + e, dt) : 0.0f;
    }
    float o[FS_RW][FS_MAX_DC], m[FS_RW], l[FS_RW];
#pragma unroll
    for (int r = 0; r < FS_RW; r++) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
#pragma unroll
        for (int c = 0; c < FS_MAX_DC; c++) o[r][c] = 0.0f;
    }
    const int kend = causal ? (Lk < q0 + FS_ROWS ? Lk : q0 + FS_ROWS) : Lk;
    for (int k0 = 0; k0 < kend; k0 += FS_KEYS) {
        __syncthreads();
        for (int idx = threadIdx.x; idx < FS_KEYS * d; idx += FS_THREADS) {
            int r = idx / d, e = idx - r * d;
            int ok = k0 + r < Lk;
            size_t gi = ((size_t)b * Lk + k0 + r) * C + h * d + e;
            Ks[r * ds + e] = ok ? lde(k, gi, dt) : 0.0f;
            Vs[r * d + e] = ok ? lde(v, gi, dt) : 0.0f;
        }
        __syncthreads();
        const int key = k0 + lane;
        float p[FS_RW];
#pragma unroll
        for (int r = 0; r < FS_RW; r++) {
            const int row = q0 + warp * FS_RW + r;
            const float *qr = Qs + (warp * FS_RW + r) * d, *kr = Ks + lane * ds;
            float acc = 0.0f;
            for (int e = 0; e < d; e++) acc += qr[e] * kr[e];
            float sv = acc * scale;
            if (key >= Lk || (causal && key > row)) sv = -INFINITY;
            float mx = sv;
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
            float mn = fmaxf(m[r], mx), base = mn == -INFINITY ? 0.0f : mn;
            float al = expf(m[r] - base), pv = expf(sv - base), ps = pv;
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) ps += __shfl_xor_sync(0xffffffffu, ps, off);
            l[r] = l[r] * al + ps;
            m[r] = mn;
#pragma unroll
            for (int c = 0; c < FS_MAX_DC; c++) o[r][c] *= al;
            p[r] = pv;
        }
        for (int j = 0; j < FS_KEYS; j++) {
            const float *vr = Vs + j * d;
            float pj[FS_RW];
#pragma unroll
            for (int r = 0; r < FS_RW; r++) pj[r] = __shfl_sync(0xffffffffu, p[r], j);
#pragma unroll
            for (int c = 0; c < FS_MAX_DC; c++) {
                int e = lane + 32 * c;
                if (e < d) {
                    float vv = vr[e];
#pragma unroll
                    for (int r = 0; r < FS_RW; r++) o[r][c] += pj[r] * vv;
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < FS_RW; r++) {
        const int row = q0 + warp * FS_RW + r;
        if (row >= Lq) continue;
        float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
#pragma unroll
        for (int c = 0; c < FS_MAX_DC; c++) {
            int e = lane + 32 * c;
            if (e < d) ste(y, ((size_t)b * Lq + row) * C + h * d + e, o[r][c] * inv, dt);
        }
    }
}

static __global__ void __launch_bounds__(FS_THREADS)
    flash_simt_f32(void *y, const void *q, const void *k, const void *v, int Lq, int Lk, int H, int d, int causal,
                   float scale) {
    flash_simt_impl(CU_F32, y, q, k, v, Lq, Lk, H, d, causal, scale);
}

static __global__ void __launch_bounds__(FS_THREADS)
    flash_simt_bf16(void *y, const void *q, const void *k, const void *v, int Lq, int Lk, int H, int d, int causal,
                    float scale) {
    flash_simt_impl(CU_BF16, y, q, k, v, Lq, Lk, H, d, causal, scale);
}

static __global__ void __launch_bounds__(FS_THREADS)
    flash_simt_f16(void *y, const void *q, const void *k, const void *v, int Lq, int Lk, int H, int d, int causal,
                   float scale) {
    flash_simt_impl(CU_F16, y, q, k, v, Lq, Lk, H, d, causal, scale);
}

/* ---------- launcher ---------- */

static int al16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

/* Kernels asking for more than the default 48 KB of dynamic shared memory
 * must say so first. */
static void want_smem(const void *fn, size_t bytes, const char *name) {
    if (bytes <= 48 * 1024) return;
    cudaError_t e = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
    if (e != cudaSuccess) ddps_cu_fail(DDPS_KIND_RESOURCE, name, cudaGetErrorString(e), __FILE__, __LINE__);
}

extern "C" int ddps_cuk_attention(cudaStream_t s, int smem_optin, void *y, const void *q, const void *k, const void *v,
                                  int dt, int B, int Lq, int Lk, int H, int d, int causal) {
    if (B <= 0 || Lq <= 0 || H <= 0 || d <= 0) return 0;
    int optin = smem_optin > 0 ? smem_optin : 48 * 1024;
    if (Lk <= 0) {
        /* no keys: softmax over nothing, output zero (as the CPU's kernel gives) */
        cudaError_t e = cudaMemsetAsync(y, 0, (size_t)B * Lq * H * d * (dt == CU_F32 ? 4 : 2), s);
        if (e != cudaSuccess)
            ddps_cu_fail(DDPS_KIND_RESOURCE, "cudaMemsetAsync (attention)", cudaGetErrorString(e), __FILE__, __LINE__);
        return 0;
    }
    if ((long)B * H > 2147483647L || (Lq + FS_ROWS - 1) / FS_ROWS > 65535) return -1;
    if (dt != CU_F32) {
        int DP = (d + 15) & ~15, chunk = DP <= 8 * FA_MAX_OT ? DP : FA_WIDE;
        size_t smem = ((size_t)FA_BM * (DP + 8) + (size_t)FA_BN * (DP + 8) + (size_t)FA_BN * (chunk + 8)) * 2;
        if (smem <= (size_t)optin) {
            int vec = d % 8 == 0 && al16(y) && al16(q) && al16(k) && al16(v);
            dim3 grid((unsigned)(B * H), (unsigned)((Lq + FA_BM - 1) / FA_BM), (unsigned)((d + chunk - 1) / chunk));
            float scale_log2 = 1.4426950408889634f / sqrtf((float)d);
            const void *fn = dt == CU_BF16 ? (const void *)flash_mma_bf16 : (const void *)flash_mma_f16;
            want_smem(fn, smem, "cudaFuncSetAttribute (flash_mma)");
            if (dt == CU_BF16)
                flash_mma_bf16<<<grid, FA_THREADS, smem, s>>>((unsigned short *)y, (const unsigned short *)q,
                                                              (const unsigned short *)k, (const unsigned short *)v, Lq,
                                                              Lk, H, d, DP, chunk, causal, scale_log2, vec);
            else
                flash_mma_f16<<<grid, FA_THREADS, smem, s>>>((unsigned short *)y, (const unsigned short *)q,
                                                             (const unsigned short *)k, (const unsigned short *)v, Lq,
                                                             Lk, H, d, DP, chunk, causal, scale_log2, vec);
            cudaError_t e = cudaGetLastError();
            if (e != cudaSuccess)
                ddps_cu_fail(DDPS_KIND_RESOURCE, "kernel flash_mma", cudaGetErrorString(e), __FILE__, __LINE__);
            return 0;
        }
    }
    if (d > 32 * FS_MAX_DC) return -1;
    size_t smem = ((size_t)FS_ROWS * d + (size_t)FS_KEYS * (d + 1) + (size_t)FS_KEYS * d) * sizeof(float);
    if (smem > (size_t)optin) return -1;
    dim3 grid((unsigned)(B * H), (unsigned)((Lq + FS_ROWS - 1) / FS_ROWS));
    float scale = 1.0f / sqrtf((float)d);
    const void *fn = dt == CU_F32    ? (const void *)flash_simt_f32
                     : dt == CU_BF16 ? (const void *)flash_simt_bf16
                                     : (const void *)flash_simt_f16;
    want_smem(fn, smem, "cudaFuncSetAttribute (flash_simt)");
    if (dt == CU_F32)
        flash_simt_f32<<<grid, FS_THREADS, smem, s>>>(y, q, k, v, Lq, Lk, H, d, causal, scale);
    else if (dt == CU_BF16)
        flash_simt_bf16<<<grid, FS_THREADS, smem, s>>>(y, q, k, v, Lq, Lk, H, d, causal, scale);
    else
        flash_simt_f16<<<grid, FS_THREADS, smem, s>>>(y, q, k, v, Lq, Lk, H, d, causal, scale);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) ddps_cu_fail(DDPS_KIND_RESOURCE, "kernel flash_simt", cudaGetErrorString(e), __FILE__, __LINE__);
    return 0;
}
