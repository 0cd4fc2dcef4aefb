/* Multi-head attention on the CPU.
 *
 * Why our own kernel: the UNet's heads are narrow (d = 40..160) and long
 * (1024 tokens at 256 px), a shape on which general matrix-product kernels
 * spend their time packing (measured: oneDNN ~15-30 GFLOP/s here, against
 * ~225 for the UNet's linear layers).
 *
 * Per (batch, head): K is packed once, transposed, as Kt[d][Lk'] and V as
 * Vp[Lk][d'] (Lk' a multiple of 32 and d' of 16, zero padded). Then, in
 * parallel over blocks of 8 query rows: the 8 x Lk' scores with a register
 * tiled kernel, the softmax of each row (causal rows stop at their query),
 * and the 8 x d' output as scores times Vp. The score block stays in the L1/L2
 * cache; no B x H x Lq x Lk matrix ever exists.
 *
 * The kernels use GCC vector extensions (16 floats), compiled for AVX-512,
 * AVX2 and baseline x86-64 and chosen at run time.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/cpu_internal.h"
#include "util/cpu.h"

/* The helpers below pass vectors by value; they are always inlined, so the
 * ABI note GCC gives for non-AVX-512 builds does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float v16 __attribute__((vector_size(64), aligned(4)));

#define HOT DDPS_HOT

#define ROWS 12
#define KB 32 /* keys per score tile */

static inline __attribute__((always_inline)) v16 ld(const float *p) {
    v16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) void st(float *p, v16 v) { memcpy(p, &v, sizeof v); }

static inline __attribute__((always_inline)) v16 splat(float x) { return (v16){0} + x; }

/* s[r][0..lkp) = scale * sum_e q[r][e] * kt[e][..] for `rows` <= ROWS rows.
 * A full block keeps ROWS x 2 vector accumulators in registers (24 of the 32
 * AVX-512 registers), so each 32-key slice of Kt is read once per 12 rows. */
HOT static void scores(float *s, const float *q, long ldq, const float *kt, int d, int lkp, float scale, int rows) {
    if (rows == ROWS) {
        for (int j = 0; j < lkp; j += KB) {
            v16 a[ROWS][2];
#pragma GCC unroll 12
            for (int r = 0; r < ROWS; r++) a[r][0] = a[r][1] = splat(0);
            for (int e = 0; e < d; e++) {
                v16 k0 = ld(kt + (long)e * lkp + j), k1 = ld(kt + (long)e * lkp + j + 16);
#pragma GCC unroll 12
                for (int r = 0; r < ROWS; r++) {
                    float qv = q[r * ldq + e];
                    a[r][0] += qv * k0;
                    a[r][1] += qv * k1;
                }
            }
#pragma GCC unroll 12
            for (int r = 0; r < ROWS; r++) {
                st(s + (long)r * lkp + j, a[r][0] * scale);
                st(s + (long)r * lkp + j + 16, a[r][1] * scale);
            }
        }
        return;
    }
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < lkp; j += KB) {
            v16 a0 = splat(0), a1 = splat(0);
            for (int e = 0; e < d; e++) {
                float qv = q[r * ldq + e];
                a0 += qv * ld(kt + (long)e * lkp + j);
                a1 += qv * ld(kt + (long)e * lkp + j + 16);
            }
            st(s + (long)r * lkp + j, a0 * scale);
            st(s + (long)r * lkp + j + 16, a1 * scale);
        }
}

/* Columns [c, c + 16*NV) of 6 output rows: y[r] = inv[r] * sum_j p[r][j] vp[j].
 * NV is a constant at each call site, so the accumulators (6 x NV vectors)
 * stay in registers. */
#define WROWS 6
static inline __attribute__((always_inline)) void wchunk(float *y, long ldy, const float *p, int lkp, int lk,
                                                         const float *vp, int dp, int c, int NV, int cols, int rows,
                                                         const float *inv) {
    v16 a[WROWS][3];
#pragma GCC unroll 6
    for (int r = 0; r < WROWS; r++) a[r][0] = a[r][1] = a[r][2] = splat(0);
    for (int j = 0; j < lk; j++) {
        const float *vr = vp + (long)j * dp + c;
        v16 v0 = ld(vr), v1 = NV > 1 ? ld(vr + 16) : splat(0), v2 = NV > 2 ? ld(vr + 32) : splat(0);
#pragma GCC unroll 6
        for (int r = 0; r < WROWS; r++) {
            float pv = p[(long)r * lkp + j];
            a[r][0] += pv * v0;
            if (NV > 1) a[r][1] += pv * v1;
            if (NV > 2) a[r][2] += pv * v2;
        }
    }
    for (int r = 0; r < rows; r++) {
        float tmp[48];
        st(tmp, a[r][0] * inv[r]);
        st(tmp + 16, a[r][1] * inv[r]);
        st(tmp + 32, a[r][2] * inv[r]);
        memcpy(y + r * ldy + c, tmp, (size_t)cols * sizeof(float));
    }
}

/* y[r][0..d) = inv[r] * sum_j p[r][j] * vp[j][..] for `rows` <= ROWS rows
 * (score rows past `rows` are zero), 48 columns and 6 rows at a time. */
HOT static void weighted(float *y, long ldy, const float *p, int lkp, int lk, const float *vp, int dp, int d,
                         int rows, const float *inv) {
    for (int r0 = 0; r0 < rows; r0 += WROWS) {
        int nr = rows - r0 < WROWS ? rows - r0 : WROWS;
        for (int c = 0; c < dp; c += 48) {
            int cols = d - c < 48 ? d - c : 48, nv = (dp - c) / 16;
            float *yr = y + r0 * ldy;
            const float *pr = p + (long)r0 * lkp;
            if (nv >= 3)
                wchunk(yr, ldy, pr, lkp, lk, vp, dp, c, 3, cols, nr, inv + r0);
            else if (nv == 2)
                wchunk(yr, ldy, pr, lkp, lk, vp, dp, c, 2, cols, nr, inv + r0);
            else
                wchunk(yr, ldy, pr, lkp, lk, vp, dp, c, 1, cols, nr, inv + r0);
        }
    }
}

/* q: [B, Lq, C], k, v: [B, Lk, C] (host f32, rows of C = heads * d) -> y: [B, Lq, C]. */
void ddps_cpu_attention_kernel(cpu_state *cs, float *y, const float *q, const float *k, const float *v, int B, int Lq,
                               int Lk, int heads, int C, int causal) {
    int d = C / heads, dp = (d + 15) / 16 * 16, lkp = (Lk + KB - 1) / KB * KB;
    long BH = (long)B * heads;
    size_t kt_n = (size_t)BH * d * lkp, vp_n = (size_t)BH * Lk * dp;
    int nthr = omp_get_max_threads();
    float *buf = ddps_cpu_buf_get(cs, &cs->tmp_c, (kt_n + vp_n + (size_t)nthr * ROWS * lkp) * sizeof(float));
    if (!buf) return;
    float *kt = buf, *vp = buf + kt_n, *sbuf = vp + vp_n;
    /* Pack K transposed and V padded, per (batch, head). */
#pragma omp parallel for schedule(static)
    for (long bh = 0; bh < BH; bh++) {
        long b = bh / heads, h = bh % heads;
        float *ktb = kt + (size_t)bh * d * lkp, *vpb = vp + (size_t)bh * Lk * dp;
        for (int e = 0; e < d; e++) {
            float *row = ktb + (size_t)e * lkp;
            for (int j = 0; j < Lk; j++) row[j] = k[((size_t)b * Lk + j) * C + h * d + e];
            for (int j = Lk; j < lkp; j++) row[j] = 0;
        }
        for (int j = 0; j < Lk; j++) {
            memcpy(vpb + (size_t)j * dp, v + ((size_t)b * Lk + j) * C + h * d, (size_t)d * sizeof(float));
            for (int e = d; e < dp; e++) vpb[(size_t)j * dp + e] = 0;
        }
    }
    float scale = 1.0f / sqrtf((float)d);
    long nblk = (Lq + ROWS - 1) / ROWS;
#pragma omp parallel for schedule(dynamic, 4)
    for (long t = 0; t < BH * nblk; t++) {
        long bh = t / nblk, b = bh / heads, h = bh % heads;
        int q0 = (int)(t % nblk) * ROWS, rows = Lq - q0 < ROWS ? Lq - q0 : ROWS;
        float *s = sbuf + (size_t)omp_get_thread_num() * ROWS * lkp;
        const float *qb = q + ((size_t)b * Lq + q0) * C + h * d;
        scores(s, qb, C, kt + (size_t)bh * d * lkp, d, lkp, scale, rows);
        if (rows < ROWS) memset(s + (size_t)rows * lkp, 0, (size_t)(ROWS - rows) * lkp * sizeof(float));
        int lim = Lk;
        float inv[ROWS] = {0};
        for (int r = 0; r < rows; r++) {
            int l = causal ? (q0 + r + 1 < Lk ? q0 + r + 1 : Lk) : Lk;
            inv[r] = ddps_cpu_softmax_row(s + (size_t)r * lkp, l);
            for (int j = l; j < lkp; j++) s[(size_t)r * lkp + j] = 0;
        }
        if (causal) lim = q0 + rows < Lk ? q0 + rows : Lk;
        weighted(y + ((size_t)b * Lq + q0) * C + h * d, C, s, lkp, lim, vp + (size_t)bh * Lk * dp, dp, d, rows, inv);
    }
}
