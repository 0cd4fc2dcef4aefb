/* Private to the CUDA backend: the kernel launchers of cuda_kernels.cu and
 * cuda_attention.cu, called by the host code in cuda_backend.c.
 *
 * Element types. Activations are f32 (DDPS_PREC_F32) or 16-bit (f16 for
 * DDPS_PREC_F16, bf16 for DDPS_PREC_BF16); `dt` below is that type, with the
 * same numbers as ddps_precision: CU_F32 = 0, CU_BF16 = 1, CU_F16 = 2.
 * Every kernel reads and writes tensors of type dt and computes in f32.
 * Tables (norm scales and shifts, embeddings, biases) are always f32.
 *
 * All launchers are asynchronous on the given stream. A launch failure
 * (invalid configuration, no kernel image for the device) is recorded with
 * ddps_cu_fail, as every CUDA failure in the backend is, and becomes the sticky
 * error of the backend whose op launched it (tensor/backend.h).
 *
 * Shapes are NHWC as in tensor/backend.h; counts of elements are size_t,
 * "rows" are n*h*w (or n*L) positions.
 */
#ifndef DDPS_CUDA_INTERNAL_H
#define DDPS_CUDA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "util/err.h" /* DDPS_KIND_* */

#ifdef __cplusplus
extern "C" {
#endif

enum { CU_F32 = 0, CU_BF16 = 1, CU_F16 = 2 };

/* Activations as in ddps_act. */
enum { CU_ACT_NONE = 0, CU_ACT_SILU = 1, CU_ACT_GELU = 2, CU_ACT_QUICK_GELU = 3 };

/* Records "CUDA failure: <what>: <msg> (<file>:<line>)" of kind (a
 * DDPS_KIND_*) as the pending failure of the backend whose op runs on this
 * thread, unless one is pending already; that backend turns it into its
 * sticky error after the op (poll)
 * and skips the ops after it. The caller goes on (it returns at once where
 * going on would use what failed to be made). Kernels run asynchronously: a
 * fault inside one surfaces at a later checked call, which the line then
 * names; without debug mode it adds a hint. */
void ddps_cu_fail(int kind, const char *what, const char *msg, const char *file, int line);
/* Records "internal error: <...>" (an op misused by our own code) the same way. */
void ddps_cu_internal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Debug mode (DDPS_CUDA_DEBUG=1): every op synchronises and checks the
 * stream before returning, so a failure is reported as the op that caused it. */
extern int ddps_cu_debug;

#define CUDA_OK(call)                                                                                                  \
    do {                                                                                                               \
        cudaError_t e_ = (call);                                                                                       \
        if (e_ != cudaSuccess) ddps_cu_fail(DDPS_KIND_RESOURCE, #call, cudaGetErrorString(e_), __FILE__, __LINE__);         \
    } while (0)

/* 0 when the kernels of this build can run on the current device; else -1
 * with the reason in msg (e.g. no kernel image for its architecture). */
int ddps_cuk_probe(char *msg, size_t len);

/* Conversions, n elements: dst (type ddt) = src (type sdt). */
void ddps_cuk_convert(cudaStream_t s, void *dst, int ddt, const void *src, int sdt, size_t n);

/* y[r][c] = act(y[r][c] + bias[c]), in place (bias may be NULL). */
void ddps_cuk_bias_act(cudaStream_t s, void *y, int dt, const float *bias, size_t rows, int cols, int act);
/* y = act(x), n elements (y may be x). */
void ddps_cuk_activate(cudaStream_t s, void *y, const void *x, int dt, size_t n, int act);
/* y = a*x + b*z, n elements (any may alias). */
void ddps_cuk_axpby(cudaStream_t s, void *y, float a, const void *x, float b, const void *z, int dt, size_t n);
/* y[r][0..f) = x[r][0..f) * gelu(x[r][f..2f)). */
void ddps_cuk_geglu(cudaStream_t s, void *y, const void *x, int dt, size_t rows, int f);

/* GroupNorm of x [N, HW, C] (+ shift [N, C] or NULL), y = norm * gamma + beta,
 * SiLU if silu. scratch: device memory of ddps_cuk_group_norm_scratch() bytes. */
size_t ddps_cuk_group_norm_scratch(int sm_count, int N, size_t HW, int C);
void ddps_cuk_group_norm(cudaStream_t s, int sm_count, void *y, const void *x, const void *shift, const float *gamma,
                    const float *beta, int dt, int N, size_t HW, int C, int groups, float eps, int silu, void *scratch);
/* LayerNorm over the last dimension of x [rows, C]. */
void ddps_cuk_layer_norm(cudaStream_t s, void *y, const void *x, const float *gamma, const float *beta, int dt, size_t rows,
                         int C, float eps);

/* Nearest resize x [N, ih, iw, C] -> y [N, oh, ow, C] (PyTorch 'nearest'). */
void ddps_cuk_upsample_nearest(cudaStream_t s, void *y, const void *x, int dt, int N, int ih, int iw, int oh, int ow, int C);
/* y[r] = a[r] ++ b[r]: y [rows, ca + cb]. */
void ddps_cuk_concat_c(cudaStream_t s, void *y, const void *a, const void *b, int dt, size_t rows, int ca, int cb);
/* y[n, i, :] = tok[ids[n*L + i], :] + pos[i, :]; ids in device memory. */
void ddps_cuk_embed(cudaStream_t s, void *y, const int32_t *ids, const float *tok, const float *pos, int dt, int N, int L,
                    int C);
/* d += w * ((e - a)^2 - (e - b)^2), n elements: d f32 (a Stage I map), e, a, b of type dt. */
void ddps_cuk_sqdiff_acc(cudaStream_t s, float *d, const void *e, const void *a, const void *b, float w, int dt, size_t n);
/* p[0..n) = v (f32). */
void ddps_cuk_fill_f32(cudaStream_t s, float *p, float v, size_t n);
/* y [N, oh, ow, 1] = channel mean of the bilinear resize (align_corners = false) of x [N, ih, iw, C]. */
void ddps_cuk_resize_bilinear_cmean(cudaStream_t s, void *y, const void *x, int dt, int N, int ih, int iw, int C, int oh,
                                    int ow);
/* y [N, oh, ow, C] = k x k average pooling with stride st of x [N, H, W, C] (no padding). */
void ddps_cuk_avg_pool(cudaStream_t s, void *y, const void *x, int dt, int N, int H, int W, int C, int k, int st, int oh,
                       int ow);
/* y [N, C] = mean of x [N, HW, C] over HW. */
void ddps_cuk_global_avg(cudaStream_t s, void *y, const void *x, int dt, int N, size_t HW, int C);

/* Zero padding: y [N, oh, ow, C] with x [N, H, W, C] placed at (pt, pl). */
void ddps_cuk_pad(cudaStream_t s, void *y, const void *x, int dt, int N, int H, int W, int C, int pt, int pl, int oh,
                  int ow);
/* Direct convolution (fallback when cuDNN has no algorithm): w [K][kh][kw][C]
 * (KRSC, type dt), bias f32 or NULL, symmetric or asymmetric padding (pt, pl
 * at the top/left; the bottom/right follow from oh, ow). accumulate: y += . */
void ddps_cuk_conv_direct(cudaStream_t s, void *y, const void *x, const void *w, const float *bias, int dt, int N, int H,
                     int W, int C, int K, int kh, int kw, int stride, int pt, int pl, int oh, int ow, int accumulate);
/* y [M, N] (+)= act(x [M, K] w[N, K]^T + bias) (fallback when cuBLASLt has no algorithm). */
void ddps_cuk_gemm_direct(cudaStream_t s, void *y, const void *x, const void *w, const float *bias, int dt, size_t M, int N,
                          int K, int act, int accumulate);

/* Attention: q [B, Lq, H*d], k and v [B, Lk, H*d] -> y [B, Lq, H*d], softmax
 * (q k^T / sqrt(d)) v per head, causal masks key j > query i. 16-bit types use
 * tensor cores (mma.sync, f32 accumulation); f32 uses CUDA cores. d <= 512.
 * smem_optin: the device's cudaDevAttrMaxSharedMemoryPerBlockOptin (queried
 * once by the backend). Returns -1 (nothing launched) when the shape is
 * beyond the kernels. */
int ddps_cuk_attention(cudaStream_t s, int smem_optin, void *y, const void *q, const void *k, const void *v, int dt, int B,
                       int Lq, int Lk, int H, int d, int causal);

/* For tests (declared again in tests/test_cuda.c): how many shapes of this
 * backend fell to a direct kernel (ddps_cuk_conv_direct, ddps_cuk_gemm_direct)
 * although their channel counts (in and out) are multiples of 8, which
 * cuDNN and cuBLASLt should always cover, without DDPS_CUDA_DIRECT. Each
 * printed a "slow direct kernel" warning (as odd shapes do too);
 * scripts/gpu-check.sh fails on the same rule. */
struct ddps_backend;
int ddps_cuda_slow_plans(const struct ddps_backend *be);

#ifdef __cplusplus
}
#endif

#endif
