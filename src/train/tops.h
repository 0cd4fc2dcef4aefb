/* Training ops: forward and backward pairs for the students of the
 * evaluation protocol (ResNet, ConvNet), on the CPU backend.
 *
 * Every layer is a small forward and backward pair (llm.c style) whose first
 * comment lines give every tensor's shape. Activations are NHWC f32 tensors
 * in the backend's memory (host RAM on the CPU); parameters are host f32
 * arrays in PyTorch's layout (conv [out,in,kh,kw], linear [out,in]) with a
 * gradient array of the same shape. Backward passes overwrite parameter
 * gradients (each parameter is used once per step) and overwrite dx.
 *
 * oneDNN primitives (convolution, batch normalisation, pooling, ReLU, inner
 * product) are made once per shape and cached on the context with their
 * argument memories, so a steady-state step creates nothing. Activations kept
 * for backward come from the backend's arena (ddps_new, ddps_mark,
 * ddps_release): a step that releases to its mark allocates nothing once the
 * arena has grown to the step's peak.
 *
 * Errors are the backend's sticky errors (tensor/backend.h): an op on a failed
 * backend does nothing; a failing op records the first failure on it.
 */
#ifndef DDPS_TRAIN_TOPS_H
#define DDPS_TRAIN_TOPS_H

#include <stddef.h>
#include <stdint.h>

#include "tensor/backend.h"

/* A parameter or buffer with its PyTorch name and shape. Buffers (batch-norm
 * running statistics, num_batches_tracked) have no gradient and are not
 * trained. m, v: optimiser state (NULL until the optimiser first runs). */
typedef struct {
    char name[80];
    int ndim;
    int shape[4];
    size_t numel;
    float *data, *grad, *m, *v;
    int buffer;     /* 1: running statistic; 2: num_batches_tracked (int64 in files) */
} tr_param;

typedef struct tr_entry tr_entry;

/* Per-backend training context: the CPU backend it runs on and the cache of
 * oneDNN primitives. */
typedef struct {
    ddps_backend *be;
    tr_entry *cache;
    void *wbuf; /* weights in a primitive's layout (grow-only) */
    size_t wbuf_size;
    void *attr; /* dnnl_primitive_attr_t of every primitive (made on first use) */
    int winograd; /* 1 (default; 0 with DDPS_NO_WINOGRAD=1): 3x3 stride-1 convolutions with >= 64 channels
                     in and out and >= 512 output positions use Winograd F(4x4,3x3), activations
                     reordered to oneDNN's blocked layout around them (~1e-6 relative from direct) */
} tr_ctx;

/* NULL with err filled when be is not the CPU backend. */
tr_ctx *ddps_tr_ctx_new(ddps_backend *be, ddps_err *err);
void ddps_tr_ctx_free(tr_ctx *c);

/* ---- layers on oneDNN (tops_dnnl.c) ---- */

typedef struct {
    int in, out, k, stride, pad;
    tr_param *w, *b; /* w [out,in,k,k], b [out] or NULL */
} tr_conv;

/* x [n,h,w,in] -> y [n,ho,wo,out], ho = (h + 2 pad - k)/stride + 1. */
void ddps_tr_conv_forward(tr_ctx *c, const tr_conv *l, ddps_tensor *y, const ddps_tensor *x);
/* dy [n,ho,wo,out], x [n,h,w,in] -> dx [n,h,w,in] (skipped when NULL), w->grad [out,in,k,k], b->grad [out]. */
void ddps_tr_conv_backward(tr_ctx *c, const tr_conv *l, ddps_tensor *dx, const ddps_tensor *dy, const ddps_tensor *x);

typedef struct {
    int c;
    float eps, momentum;
    tr_param *weight, *bias, *running_mean, *running_var, *num_batches;
} tr_bn;

/* x, y [n,h,w,c]; mean, var [1,1,1,c] (saved batch statistics, biased variance).
 * training: batch statistics, then running = (1-momentum) running + momentum batch (unbiased var),
 * num_batches += 1. Eval: running statistics (mean, var untouched). */
void ddps_tr_bn_forward(tr_ctx *c, const tr_bn *l, ddps_tensor *y, const ddps_tensor *x, ddps_tensor *mean,
                   ddps_tensor *var, int training);
/* dy, x [n,h,w,c], mean, var [1,1,1,c] from the forward -> dx [n,h,w,c] (may alias dy: oneDNN's
 * in-place backward), weight->grad, bias->grad [c]. */
void ddps_tr_bn_backward(tr_ctx *c, const tr_bn *l, ddps_tensor *dx, const ddps_tensor *dy, const ddps_tensor *x,
                    const ddps_tensor *mean, const ddps_tensor *var);

/* x, y [n,h,w,c]: y = max(x, 0) (y may alias x: the backward may be given the output y in place of x,
 * since y > 0 exactly where x > 0). */
void ddps_tr_relu_forward(tr_ctx *c, ddps_tensor *y, const ddps_tensor *x);
/* dy, x [n,h,w,c] -> dx [n,h,w,c] = dy * (x > 0) (dx may alias dy). */
void ddps_tr_relu_backward(tr_ctx *c, ddps_tensor *dx, const ddps_tensor *dy, const ddps_tensor *x);

/* Pooling, k x k window, stride s, padding p on every side; max, or average
 * excluding padding (PyTorch's AvgPool2d with no padding, MaxPool2d).
 * x [n,h,w,c] -> y [n,ho,wo,c], ho = (h + 2p - k)/s + 1; ws: the max pool's
 * workspace, allocated from the arena by the forward (unused for average). */
void ddps_tr_pool_forward(tr_ctx *c, int max, int k, int s, int p, ddps_tensor *y, const ddps_tensor *x,
                     ddps_tensor *ws);
/* dy [n,ho,wo,c], ws from the forward -> dx [n,h,w,c]. */
void ddps_tr_pool_backward(tr_ctx *c, int max, int k, int s, int p, ddps_tensor *dx, const ddps_tensor *dy,
                      const ddps_tensor *ws);

typedef struct {
    int in, out; /* in = h*w*c of the input */
    tr_param *w, *b; /* w [out,in] with in in PyTorch's flatten order (c,h,w), b [out] */
} tr_linear;

/* x [n,h,w,c] (flattened as PyTorch's NCHW .view(n,-1)) -> y [n,1,1,out] = x W^T + b. */
void ddps_tr_linear_forward(tr_ctx *c, const tr_linear *l, ddps_tensor *y, const ddps_tensor *x);
/* dy [n,1,1,out], x [n,h,w,c] -> dx [n,h,w,c] (skipped when NULL), w->grad [out,in], b->grad [out]. */
void ddps_tr_linear_backward(tr_ctx *c, const tr_linear *l, ddps_tensor *dx, const ddps_tensor *dy,
                        const ddps_tensor *x);

/* ---- our own kernels (tops_own.c) ---- */

/* x, y [n,h,w,c]; gamma, beta [c]; mean, rstd [1,1,n,groups] (saved).
 * GroupNorm over groups of c/groups channels; groups = c is instance norm
 * (the dataset-distillation ConvNet's 'instancenorm'). */
void ddps_tr_group_norm_forward(tr_ctx *c, int groups, float eps, const tr_param *gamma, const tr_param *beta,
                           ddps_tensor *y, const ddps_tensor *x, ddps_tensor *mean, ddps_tensor *rstd);
/* dy, x [n,h,w,c], mean, rstd [1,1,n,groups] -> dx [n,h,w,c] (may alias dy), gamma->grad, beta->grad [c]. */
void ddps_tr_group_norm_backward(tr_ctx *c, int groups, const tr_param *gamma, const tr_param *beta, ddps_tensor *dx,
                            const ddps_tensor *dy, const ddps_tensor *x, const ddps_tensor *mean,
                            const ddps_tensor *rstd);

/* The same followed by ReLU in one pass: y = max(GN(x), 0); its backward takes that y (the mask)
 * and dy of the ReLU's output. dx may alias dy. */
void ddps_tr_group_norm_relu_forward(tr_ctx *c, int groups, float eps, const tr_param *gamma, const tr_param *beta,
                                     ddps_tensor *y, const ddps_tensor *x, ddps_tensor *mean, ddps_tensor *rstd);
void ddps_tr_group_norm_relu_backward(tr_ctx *c, int groups, const tr_param *gamma, const tr_param *beta,
                                      ddps_tensor *dx, const ddps_tensor *dy, const ddps_tensor *x,
                                      const ddps_tensor *y, const ddps_tensor *mean, const ddps_tensor *rstd);

/* x [n,h,w,c] -> y [n,oh,ow,c]: PyTorch's AdaptiveAvgPool2d((oh, ow)), cell i covering
 * [floor(i h/oh), ceil((i+1) h/oh)). */
void ddps_tr_adaptive_avg_forward(tr_ctx *c, ddps_tensor *y, const ddps_tensor *x);
/* dy [n,oh,ow,c] -> dx [n,h,w,c]. */
void ddps_tr_adaptive_avg_backward(tr_ctx *c, ddps_tensor *dx, const ddps_tensor *dy);

/* a, b, y: one shape (any may alias). y = a + b: the residual add; its
 * backward passes dy to both inputs, and this same op sums the two gradients
 * that meet where a block's input forks. */
void ddps_tr_add(tr_ctx *c, ddps_tensor *y, const ddps_tensor *a, const ddps_tensor *b);

/* logits [n,1,1,K], labels [n] (host, 0 <= label < K) -> returns the mean loss
 * of log_softmax with label smoothing eps (PyTorch's CrossEntropyLoss(label_smoothing=eps)):
 * loss_i = -(1-eps) logp[y_i] - eps/K sum_k logp[k]; probs [n,1,1,K] saved (softmax). */
float ddps_tr_xent_forward(tr_ctx *c, const ddps_tensor *logits, const int64_t *labels, float eps, ddps_tensor *probs);
/* probs [n,1,1,K], labels [n] -> dlogits [n,1,1,K] = (probs - (1-eps) onehot - eps/K) / n (may alias probs). */
void ddps_tr_xent_backward(tr_ctx *c, ddps_tensor *dlogits, const ddps_tensor *probs, const int64_t *labels, float eps);

/* s, t [n,1,1,K] (student and teacher logits), temperature T -> returns
 * KLDivLoss(reduction="batchmean")(log_softmax(s/T), softmax(t/T))
 * = sum_i sum_k p_t (log p_t - log q_s) / n; q [n,1,1,K] = softmax(s/T) and
 * p [n,1,1,K] = softmax(t/T) saved. */
float ddps_tr_kl_forward(tr_ctx *c, const ddps_tensor *s, const ddps_tensor *t, float T, ddps_tensor *q, ddps_tensor *p);
/* q, p [n,1,1,K] -> ds [n,1,1,K] = (q - p) / (n T) (may alias q). */
void ddps_tr_kl_backward(tr_ctx *c, ddps_tensor *ds, const ddps_tensor *q, const ddps_tensor *p, float T);

#endif
