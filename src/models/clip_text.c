#include "models/clip_text.h"

#include "models/blocks.h"

#include <stdlib.h>

#include "util/fs.h"

/* Weights (H = hidden_size, F = intermediate_size; linears with a bias): token_embedding [vocab_size, H];
 * position_embedding [max_position_embeddings, H]; per layer self_attn q_proj, k_proj, v_proj, out_proj
 * [H, H]; layer_norm1, layer_norm2 [H]; mlp.fc1 [F, H]; mlp.fc2 [H, F]; final_layer_norm [H]. On failure
 * returns -1 with err. */
int ddps_clip_build(ddps_wsrc *ws, const ddps_clip_config *cfg, ddps_clip **out, ddps_err *err) {
    ddps_clip *m = ddps_calloc(1, sizeof *m);
    m->cfg = *cfg;
    int H = cfg->hidden_size, F = cfg->intermediate_size;
    m->tok = ddps_ws_table(ws, cfg->vocab_size, H, "embeddings.token_embedding.weight");
    m->pos = ddps_ws_table(ws, cfg->max_position_embeddings, H, "embeddings.position_embedding.weight");
    m->layers = ddps_calloc((size_t)cfg->num_hidden_layers, sizeof *m->layers);
    for (int i = 0; i < cfg->num_hidden_layers; i++) {
        ddps_clip_layer *l = &m->layers[i];
        const char *p = "encoder.layers";
        l->k = ddps_ws_linear(ws, H, H, 1, "%s.%d.self_attn.k_proj", p, i);
        l->v = ddps_ws_linear(ws, H, H, 1, "%s.%d.self_attn.v_proj", p, i);
        l->q = ddps_ws_linear(ws, H, H, 1, "%s.%d.self_attn.q_proj", p, i);
        l->o = ddps_ws_linear(ws, H, H, 1, "%s.%d.self_attn.out_proj", p, i);
        ddps_ws_norm(ws, &l->ln1_g, &l->ln1_b, H, "%s.%d.layer_norm1", p, i);
        l->fc1 = ddps_ws_linear(ws, F, H, 1, "%s.%d.mlp.fc1", p, i);
        l->fc2 = ddps_ws_linear(ws, H, F, 1, "%s.%d.mlp.fc2", p, i);
        ddps_ws_norm(ws, &l->ln2_g, &l->ln2_b, H, "%s.%d.layer_norm2", p, i);
    }
    ddps_ws_norm(ws, &m->lnf_g, &m->lnf_b, H, "final_layer_norm");
    if (ws->failed) {
        ddps_clip_free(ws->be, m);
        *err = ws->err;
        return -1;
    }
    m->all = ddps_ws_take(ws, &m->n_all);
    *out = m;
    return 0;
}

/* Frees m's weights and m (NULL: no-op). */
void ddps_clip_free(ddps_backend *be, ddps_clip *m) {
    if (!m) return;
    for (int i = 0; i < m->n_all; i++) be->ops->free_weight(be, m->all[i]);
    free(m->all);
    free(m->layers);
    free(m);
}

/* ids: [n, L] (host, L = DDPS_CLIP_LEN = 77, already range-checked) -> y: [n, 1, L, H] (last hidden state
 * after final_layer_norm). Embeddings x: [n, 1, L, H]; each layer: x += causal self-attention of
 * num_attention_heads heads (pre-LayerNorm), x += fc2((quick) GELU(fc1(LayerNorm(x)))) with fc1's output
 * [n, 1, L, F]. */
int ddps_clip_forward(ddps_backend *be, const ddps_clip *m, const int32_t *ids, ddps_tensor *y) {
    const ddps_backend_ops *op = be->ops;
    int n = y->n, L = DDPS_CLIP_LEN, H = m->cfg.hidden_size, heads = m->cfg.num_attention_heads;
    float eps = m->cfg.layer_norm_eps;
    size_t mark = ddps_mark(be);
    ddps_tensor x = ddps_new(be, n, 1, L, H);
    op->embed(be, &x, ids, m->tok, m->pos);
    for (int i = 0; i < m->cfg.num_hidden_layers; i++) {
        const ddps_clip_layer *l = &m->layers[i];
        ddps_attn_residual(be, &x, l->ln1_g, l->ln1_b, eps, l->q, l->k, l->v, l->o, NULL, heads, 1);
        size_t m2 = ddps_mark(be);
        ddps_tensor h = ddps_new(be, n, 1, L, H);
        op->layer_norm(be, &h, &x, l->ln2_g, l->ln2_b, eps);
        ddps_tensor f = ddps_new(be, n, 1, L, m->cfg.intermediate_size);
        op->linear(be, &f, &h, l->fc1, m->cfg.quick_gelu ? DDPS_ACT_QUICK_GELU : DDPS_ACT_GELU, 0);
        op->linear(be, &x, &f, l->fc2, DDPS_ACT_NONE, 1);
        ddps_release(be, m2);
    }
    op->layer_norm(be, y, &x, m->lnf_g, m->lnf_b, eps);
    ddps_release(be, mark);
    return ddps_backend_error(be, NULL);
}
