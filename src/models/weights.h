/* Where a model's weights come from, and the single description of which
 * tensors a model has.
 *
 * Model builders (clip_text.c, vae.c, unet.c) walk their architecture once
 * and ask a ddps_wsrc for each tensor by name and shape. The same walk serves
 * three purposes, so the list of expected tensors is written exactly once:
 *   WS_DECLARE: records the expected names and shapes (nothing is loaded);
 *               the loader checks a file against this list, and a test checks
 *               it against SD v1.5's real tensor list;
 *   WS_FILE:    converts each tensor from the safetensors file(s) to f32, one
 *               tensor at a time, hands it to the backend and drops the file
 *               pages, so no second full copy of the model is ever held;
 *   WS_RANDOM:  deterministic random weights (benchmarks, the demo model).
 * Errors are sticky: the first failure is kept in ws->err and later calls
 * return NULL, so builders check ws->failed once at the end.
 */
#ifndef DDPS_MODELS_WEIGHTS_H
#define DDPS_MODELS_WEIGHTS_H

#include <stdint.h>

#include "io/safetensors.h"
#include "tensor/backend.h"
#include "util/err.h"

typedef enum { WS_DECLARE, WS_FILE, WS_RANDOM } ddps_ws_mode;

typedef struct {
    char *name;
    int ndim;
    int64_t shape[4];
} ddps_ws_entry;

typedef struct {
    ddps_ws_mode mode;
    ddps_backend *be;
    /* declare: the expected list */
    ddps_ws_entry *list;
    int n, cap;
    /* file: open files (shards) and the name prefix to try first ("text_model.") */
    st_file *files;
    int n_files;
    const char *alt_prefix;
    /* random */
    uint64_t seed;
    /* conversion buffer (one tensor) */
    float *tmp;
    size_t tmp_cap;
    size_t nonfinite;      /* non-finite values seen (a warning, not an error: one summary line, sd.c) */
    int nonfinite_tensors; /* tensors holding them */
    char nonfinite_first[256]; /* name of the first such tensor */
    /* every weight made, so the model can free them without a walk of its own */
    ddps_weight **owned;
    int n_owned, cap_owned;
    int failed;
    ddps_err err;
} ddps_wsrc;

void ddps_ws_init_declare(ddps_wsrc *ws);
void ddps_ws_init_random(ddps_wsrc *ws, ddps_backend *be, uint64_t seed);
/* Files already opened and checked against the declared list by the caller. */
void ddps_ws_init_file(ddps_wsrc *ws, ddps_backend *be, st_file *files, int n_files, const char *alt_prefix);
void ddps_ws_free(ddps_wsrc *ws);
/* Hands the weights made so far to the caller (free each with be->ops->free_weight). */
ddps_weight **ddps_ws_take(ddps_wsrc *ws, int *n);

/* name is a printf format; ".weight"/".bias" are appended for linear/conv. */
ddps_weight *ddps_ws_linear(ddps_wsrc *ws, int out, int in, int bias, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Linear weights stored as a 1x1 convolution [out, in, 1, 1] (proj_in/out of
 * SD v1 transformers): loaded as a linear. */
ddps_weight *ddps_ws_linear_1x1(ddps_wsrc *ws, int out, int in, int bias, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
ddps_weight *ddps_ws_conv(ddps_wsrc *ws, int out, int in, int k, int bias, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* A linear made of rows [r0, r1) of a stored [out, in] weight (and bias):
 * used to split the VAE's quant_conv into mean and logvar halves. */
ddps_weight *ddps_ws_conv_rows(ddps_wsrc *ws, int out, int in, int k, int r0, int r1, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
/* GroupNorm/LayerNorm scale and shift: name.weight and name.bias, each [n]. */
void ddps_ws_norm(ddps_wsrc *ws, ddps_weight **gamma, ddps_weight **beta, int n, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* A full-name table [rows, cols] (embeddings). */
ddps_weight *ddps_ws_table(ddps_wsrc *ws, int rows, int cols, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Declares a tensor that is never loaded (the VAE decoder): it must exist
 * with this shape, but costs nothing. */
void ddps_ws_declare(ddps_wsrc *ws, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The deterministic random values WS_RANDOM uses for a tensor (from its
 * name: norm scales near 1, small biases, fan-in scaled weights). */
void ddps_ws_random_values(uint64_t seed, const char *name, int ndim, const int64_t *shape, float *out);

/* Checks files against a declared list: every declared tensor present with
 * its shape (all faults listed in one error), float dtype; extras warned. */
int ddps_ws_check(const ddps_wsrc *declared, st_file *files, int n_files, const char *alt_prefix, const char *what,
                  ddps_err *err);

#endif
