/* CLIP text encoder (transformers CLIPTextModel): token + position
 * embeddings, pre-LayerNorm blocks with causal self-attention and a
 * quick_gelu MLP, final LayerNorm. Output: last_hidden_state. */
#ifndef DDPS_MODELS_CLIP_TEXT_H
#define DDPS_MODELS_CLIP_TEXT_H

#include "models/config.h"
#include "models/weights.h"

typedef struct {
    ddps_weight *ln1_g, *ln1_b, *q, *k, *v, *o, *ln2_g, *ln2_b, *fc1, *fc2;
} ddps_clip_layer;

typedef struct {
    ddps_clip_config cfg;
    ddps_weight *tok, *pos, *lnf_g, *lnf_b;
    ddps_clip_layer *layers;
    ddps_weight **all;
    int n_all;
} ddps_clip;

#define DDPS_CLIP_LEN 77

/* Declares (ws in WS_DECLARE mode: returns a skeleton) or loads the model. */
int ddps_clip_build(ddps_wsrc *ws, const ddps_clip_config *cfg, ddps_clip **out, ddps_err *err);
void ddps_clip_free(ddps_backend *be, ddps_clip *m);
/* ids: host [n * 77], each < vocab_size -> y [n, 1, 77, hidden].
 * Returns 0, or -1 when an op failed on the backend (see ddps_backend_error). */
int ddps_clip_forward(ddps_backend *be, const ddps_clip *m, const int32_t *ids, ddps_tensor *y);

#endif
