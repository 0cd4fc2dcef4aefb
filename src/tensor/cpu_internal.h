/* Private to the CPU backend: state shared by cpu_backend.c (oneDNN
 * convolutions, matrix products, attention) and cpu_kernels.c (our own
 * normalisation and elementwise kernels). */
#ifndef DDPS_TENSOR_CPU_INTERNAL_H
#define DDPS_TENSOR_CPU_INTERNAL_H

#include <oneapi/dnnl/dnnl.h>

#include "tensor/backend.h"

/* Grow-only host buffer: reallocated only while the largest need is being
 * discovered, so steady-state calls allocate nothing. */
typedef struct {
    void *p;
    size_t size;
} cpu_buf;

typedef struct {
    ddps_backend *be; /* the backend this is the state of (for sticky errors) */
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    int threads;
    int winograd;          /* 0 disables Winograd (DDPS_NO_WINOGRAD=1, for reference checks) */
    cpu_buf scratch;       /* oneDNN scratchpads */
    cpu_buf tmp_a, tmp_b;  /* bf16 copies, blocked-layout copies */
    cpu_buf tmp_c;         /* attention: packed keys and values, score blocks */
    cpu_buf stats;         /* normalisation statistics */
} cpu_state;

/* The buffer, grown to at least bytes; NULL (a sticky resource error on
 * cs->be) when out of memory. */
void *ddps_cpu_buf_get(cpu_state *cs, cpu_buf *b, size_t bytes);
void ddps_cpu_buf_free(cpu_buf *b);

static inline cpu_state *cpu_of(ddps_backend *be) { return (cpu_state *)be->impl; }

/* Kernels in cpu_kernels.c (signatures as in ddps_backend_ops). */
void ddps_cpu_group_norm(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, const ddps_tensor *shift,
                         const ddps_weight *gamma, const ddps_weight *beta, int groups, float eps, int silu);
void ddps_cpu_layer_norm(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, const ddps_weight *gamma,
                         const ddps_weight *beta, float eps);
void ddps_cpu_geglu(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x);
void ddps_cpu_activate(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, ddps_act act);
void ddps_cpu_axpby(ddps_backend *be, ddps_tensor *y, float a, const ddps_tensor *x, float b, const ddps_tensor *z);
void ddps_cpu_upsample_nearest(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x);
void ddps_cpu_concat_c(ddps_backend *be, ddps_tensor *y, const ddps_tensor *a, const ddps_tensor *b);
void ddps_cpu_embed(ddps_backend *be, ddps_tensor *y, const int32_t *ids, const ddps_weight *tok,
                    const ddps_weight *pos);
void ddps_cpu_map_fill(ddps_backend *be, ddps_tensor *t, float v);
void ddps_cpu_sqdiff_acc(ddps_backend *be, ddps_tensor *d, const ddps_tensor *e, const ddps_tensor *a,
                         const ddps_tensor *b, float w);
void ddps_cpu_resize_bilinear_cmean(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x);
void ddps_cpu_avg_pool(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x, int k, int s);
void ddps_cpu_global_avg(ddps_backend *be, ddps_tensor *y, const ddps_tensor *x);
/* exp(s[j] - max) in place for j < n; returns 1 / their sum, the factor
 * that completes the softmax (applied later by the caller). Single-threaded:
 * called inside parallel loops. */
float ddps_cpu_softmax_row(float *s, int n);
/* Attention: q [B,Lq,C], k and v [B,Lk,C], C = heads * d -> y [B,Lq,C].
 * Out of scratch memory: y is not written (a sticky error on cs->be). */
void ddps_cpu_attention_kernel(cpu_state *cs, float *y, const float *q, const float *k, const float *v, int B, int Lq,
                               int Lk, int heads, int C, int causal);
/* f32 -> bf16 (round to nearest even), n elements. */
void ddps_cpu_to_bf16(uint16_t *dst, const float *src, size_t n);
/* Table weight data (norm scales, embeddings). */
const float *ddps_cpu_table(const ddps_weight *w);

#endif
