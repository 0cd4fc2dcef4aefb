/* The engine against diffusers/transformers: `ddps probe` on the tiny model
 * golden/tiny-sd reproduces golden/{text,vae,unet,scheduler,stage1}.safetensors
 * (every output tensor, relative L2 error <= 1e-4) and the 23 tokenizer cases
 * of golden/tokens.json id for id; so does the same model as one original-
 * layout checkpoint (golden/tiny-sd-single.safetensors with --config
 * golden/tiny-sd), and the SD 2.x model golden/tiny-sd2 reproduces
 * golden/golden-sd2 (v-prediction, linear projections, GELU text encoder,
 * pad token "!"). Inputs the goldens do not cover are
 * checked by their shapes, as diffusers would give them: a non-square odd
 * image size for the VAE, a UNet latent that is not a multiple of 8. bf16
 * precision is checked against the f32 golden with a looser bound. Bad probe
 * inputs give one clear line, never a crash. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "engine_util.h"
#include "models/config.h"
#include "models/scheduler.h"
#include "models/sd.h"
#include "tools/demo.h"
#include "util/rng.h"

#define GOLDEN_TOL 1e-4
#define BF16_TOL 2e-2

static char MODEL[4800];   /* golden/tiny-sd, quoted for the shell (or a single file and --config) */
static char GOLDEN[2048];  /* golden/ */
static const char *GSET = ""; /* the golden set in use: "" (SD v1) or "golden-sd2/" */
static int N_TOKEN_CASES = 23;
static char TMP[2048];

static const char *golden(const char *name) {
    static char buf[4][4096];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 4096, "%s/%s%s", GOLDEN, GSET, name);
    return b;
}

static const char *tmp(const char *name) {
    static char buf[4][4096];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 4096, "%s/%s", TMP, name);
    return b;
}

static int is_input(const char *name, const char *const *inputs) {
    for (; *inputs; inputs++)
        if (strcmp(name, *inputs) == 0) return 1;
    return 0;
}

/* Every tensor of the golden file that is not an input must be in the probe's
 * output and match within tol; the output has no tensor the golden lacks. */
static void compare_outputs(const char *label, const char *out, const char *ref, const char *const *inputs, double tol) {
    st_file f;
    ddps_err err;
    if (ddps_st_open(&f, ref, &err) != 0) {
        CHECKF(0, "%s", err.msg);
        return;
    }
    int n_out = 0;
    for (int i = 0; i < f.n; i++) {
        if (is_input(f.t[i].name, inputs)) continue;
        n_out++;
        eu_compare(label, out, ref, f.t[i].name, tol);
    }
    ddps_st_close(&f);
    CHECKF(eu_count(out) == n_out, "%s: the probe wrote %d tensors, the golden has %d outputs", label, eu_count(out),
           n_out);
}

/* Runs a probe that must succeed. */
static int probe_ok(const char *label, const char *args) {
    char *out = NULL;
    int rc = eu_probe(args, &out);
    CHECKF(rc == 0 && eu_no_crash(rc, out), "%s: probe failed (rc %d): %s", label, rc, out);
    free(out);
    return rc;
}

static void golden_text(void) {
    static const char *inputs[] = {"input_ids", NULL};
    char args[16384];
    snprintf(args, sizeof args, "text --model %s --in %s --out %s", MODEL, golden("text.safetensors"),
             tmp("text.safetensors"));
    if (probe_ok("text", args) == 0)
        compare_outputs("text", tmp("text.safetensors"), golden("text.safetensors"), inputs, GOLDEN_TOL);
}

/* The same ids as I64 (what transformers' tokenizers return) give the same output. */
static void golden_text_i64(void) {
    st_file f;
    ddps_err err;
    if (ddps_st_open(&f, golden("text.safetensors"), &err) != 0) {
        CHECKF(0, "%s", err.msg);
        return;
    }
    const st_tensor *t = ddps_st_find(&f, "input_ids");
    CHECK(t && t->dtype == ST_I32 && t->ndim == 2 && t->shape[1] == 77);
    if (!t) {
        ddps_st_close(&f);
        return;
    }
    int64_t *ids = ddps_malloc(t->numel * sizeof *ids);
    CHECKF(ddps_st_to_i64(&f, t, 0, 49407, ids, &err) == 0, "%s", err.msg);
    st_out o = {"input_ids", ST_I64, 2, {t->shape[0], t->shape[1]}, ids};
    CHECKF(ddps_st_write(tmp("text_i64_in.safetensors"), &o, 1, &err) == 0, "%s", err.msg);
    free(ids);
    ddps_st_close(&f);
    char args[16384];
    snprintf(args, sizeof args, "text --model %s --in %s --out %s", MODEL, tmp("text_i64_in.safetensors"),
             tmp("text_i64.safetensors"));
    if (probe_ok("text i64", args) == 0)
        eu_compare("text i64", tmp("text_i64.safetensors"), golden("text.safetensors"), "last_hidden_state", GOLDEN_TOL);
}

static void golden_vae(void) {
    static const char *inputs[] = {"image", NULL};
    char args[16384];
    snprintf(args, sizeof args, "vae --model %s --in %s --out %s", MODEL, golden("vae.safetensors"),
             tmp("vae.safetensors"));
    if (probe_ok("vae", args) == 0)
        compare_outputs("vae", tmp("vae.safetensors"), golden("vae.safetensors"), inputs, GOLDEN_TOL);
}

static void golden_unet(void) {
    static const char *inputs[] = {"sample", "timesteps", "context", NULL};
    char args[16384];
    snprintf(args, sizeof args, "unet --model %s --in %s --out %s", MODEL, golden("unet.safetensors"),
             tmp("unet.safetensors"));
    if (probe_ok("unet", args) == 0)
        compare_outputs("unet", tmp("unet.safetensors"), golden("unet.safetensors"), inputs, GOLDEN_TOL);
}

/* alphas_cumprod, and add_noise with them: x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise. */
static void golden_schedule(void) {
    static const char *inputs[] = {"t", "x0", "noise", "x_t", NULL};
    char args[16384];
    snprintf(args, sizeof args, "schedule --model %s --out %s", MODEL, tmp("schedule.safetensors"));
    if (probe_ok("schedule", args) != 0) return;
    compare_outputs("schedule", tmp("schedule.safetensors"), golden("scheduler.safetensors"), inputs, GOLDEN_TOL);
    eu_arr ac, t, x0, noise, xt;
    int ok = eu_load(tmp("schedule.safetensors"), "alphas_cumprod", &ac) == 0;
    ok &= eu_load(golden("scheduler.safetensors"), "t", &t) == 0;
    ok &= eu_load(golden("scheduler.safetensors"), "x0", &x0) == 0;
    ok &= eu_load(golden("scheduler.safetensors"), "noise", &noise) == 0;
    ok &= eu_load(golden("scheduler.safetensors"), "x_t", &xt) == 0;
    if (ok && t.n == 1 && t.v[0] >= 0 && t.v[0] < (float)ac.n && x0.n == xt.n && noise.n == xt.n) {
        float a, b;
        ddps_noise_coefs(ac.v, (int)t.v[0], &a, &b);
        float *mine = ddps_malloc(xt.n * sizeof(float));
        for (size_t i = 0; i < xt.n; i++) mine[i] = a * x0.v[i] + b * noise.v[i];
        double e = t_rel_l2(mine, xt.v, xt.n);
        fprintf(stderr, "   schedule   add_noise t=%d       rel L2 %.3e (limit %.0e)\n", (int)t.v[0], e, GOLDEN_TOL);
        CHECKF(e <= GOLDEN_TOL, "add_noise: relative L2 error %.3e", e);
        free(mine);
    } else {
        CHECKF(0, "scheduler golden: unexpected tensors");
    }
    eu_free(&ac), eu_free(&t), eu_free(&x0), eu_free(&noise), eu_free(&xt);
}

static void golden_stage1(void) {
    static const char *inputs[] = {"image", "timesteps", "noises", "patch_stride", NULL};
    eu_arr ps;
    if (eu_load(golden("stage1.safetensors"), "patch_stride", &ps) != 0) return;
    CHECK(ps.n == 2);
    int P = ps.n == 2 ? (int)ps.v[0] : 0, S = ps.n == 2 ? (int)ps.v[1] : 0;
    eu_free(&ps);
    CHECKF(P == 32 && S == 8, "patch_stride is %d, %d", P, S);
    char args[16384];
    snprintf(args, sizeof args,
             "stage1 --model %s --in %s --out %s --prompt 'An image of tench.' --null-prompt '' --patch %d --stride %d",
             MODEL, golden("stage1.safetensors"), tmp("stage1.safetensors"), P, S);
    if (probe_ok("stage1", args) == 0)
        compare_outputs("stage1", tmp("stage1.safetensors"), golden("stage1.safetensors"), inputs, GOLDEN_TOL);
}

/* Every case of tokens.json through `ddps probe tokenize`, in one call (one
 * output line of 77 ids per text, in order). */
static void golden_tokens(void) {
    json_error_t je;
    json_t *root = json_load_file(golden("tokens.json"), 0, &je);
    CHECKF(json_is_array(root), "tokens.json: %s", je.text);
    if (!json_is_array(root)) return;
    size_t n = json_array_size(root);
    CHECKF((int)n == N_TOKEN_CASES, "tokens.json has %zu cases", n);
    size_t cap = 4096, len = 0;
    char *args = ddps_malloc(cap);
    len += (size_t)snprintf(args, cap, "tokenize --model %s", MODEL);
    for (size_t i = 0; i < n; i++) {
        const char *text = json_string_value(json_object_get(json_array_get(root, i), "text"));
        CHECK(text != NULL);
        size_t need = 4 * strlen(text ? text : "") + 8;
        if (len + need >= cap) args = ddps_realloc(args, cap = 2 * (len + need));
        args[len++] = ' ';
        eu_quote(args + len, cap - len, text ? text : "");
        len += strlen(args + len);
    }
    char *out = NULL;
    int rc = eu_probe(args, &out);
    CHECKF(rc == 0 && eu_no_crash(rc, out), "tokenize failed (rc %d): %s", rc, out);
    const char *p = out;
    int exact = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *want = json_object_get(json_array_get(root, i), "ids");
        const char *text = json_string_value(json_object_get(json_array_get(root, i), "text"));
        int same = json_array_size(want) == 77;
        for (size_t k = 0; k < 77; k++) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p) {
                same = 0;
                break;
            }
            p = end;
            same &= v == json_integer_value(json_array_get(want, k));
        }
        same &= *p == '\n';
        CHECKF(same, "tokens of case %zu (\"%.60s\") differ from tokens.json", i, text ? text : "?");
        exact += same;
        p = strchr(p, '\n');
        if (!p) break;
        p++;
    }
    CHECKF(p && *p == 0, "tokenize printed more than %zu lines", n);
    fprintf(stderr, "   tokens: %d of %zu cases exact\n", exact, n);
    free(out);
    free(args);
    json_decref(root);
}

/* Writes an [n,c,H,W] tensor of uniform values in [-1, 1). */
static void write_random(const char *path, const char *name, int n, int c, int H, int W, uint64_t seed) {
    size_t numel = (size_t)n * c * H * W;
    float *v = ddps_malloc(numel * sizeof(float));
    ddps_rng r;
    ddps_rng_seed(&r, seed);
    for (size_t i = 0; i < numel; i++) v[i] = (float)(2 * ddps_rng_uniform(&r) - 1);
    st_out o = {name, ST_F32, 4, {n, c, H, W}, v};
    ddps_err err;
    CHECKF(ddps_st_write(path, &o, 1, &err) == 0, "%s", err.msg);
    free(v);
}

/* Length of a JSON list in a component config of the tiny model. */
static int config_list_len(const char *component, const char *key) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tiny-sd/%s/config.json", GOLDEN, component);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    int n = (int)json_array_size(json_object_get(root, key));
    json_decref(root);
    CHECKF(n > 0, "%s: no list \"%s\"", path, key);
    return n;
}

/* diffusers' Encoder downsampler: pad (0,1,0,1), 3x3 stride-2 conv, no padding. */
static int vae_down(int s) { return (s + 1 - 3) / 2 + 1; }

/* A non-square, odd-sized image: latent shape by diffusers' rule per
 * downsampler, finite outputs, latent = mean * scaling_factor, clamped logvar. */
static void vae_odd_size(void) {
    int H = 37, W = 50, n_down = config_list_len("vae", "block_out_channels") - 1;
    int h = H, w = W;
    for (int i = 0; i < n_down; i++) h = vae_down(h), w = vae_down(w);
    CHECK(h == 4 && w == 6); /* 37 -> 18 -> 9 -> 4, 50 -> 25 -> 12 -> 6 */
    write_random(tmp("vae_odd_in.safetensors"), "image", 1, 3, H, W, 37);
    char args[16384];
    snprintf(args, sizeof args, "vae --model %s --in %s --out %s", MODEL, tmp("vae_odd_in.safetensors"),
             tmp("vae_odd.safetensors"));
    if (probe_ok("vae 37x50", args) != 0) return;
    int64_t want[4] = {1, 4, h, w};
    eu_arr mean, logvar, latent;
    int ok = eu_load(tmp("vae_odd.safetensors"), "mean", &mean) == 0;
    ok &= eu_load(tmp("vae_odd.safetensors"), "logvar", &logvar) == 0;
    ok &= eu_load(tmp("vae_odd.safetensors"), "latent", &latent) == 0;
    if (ok) {
        fprintf(stderr, "   vae 37x50 -> mean %s (diffusers: %s)\n", eu_shape_str(mean.ndim, mean.shape),
                eu_shape_str(4, want));
        CHECK(eu_shape_is(&mean, 4, want) && eu_shape_is(&logvar, 4, want) && eu_shape_is(&latent, 4, want));
        CHECK(eu_nonfinite(mean.v, mean.n) == 0 && eu_nonfinite(logvar.v, logvar.n) == 0);
        int in_range = 1;
        for (size_t i = 0; i < logvar.n; i++) in_range &= logvar.v[i] >= -30 && logvar.v[i] <= 20;
        CHECK(in_range);
        if (latent.n == mean.n) {
            for (size_t i = 0; i < mean.n; i++) mean.v[i] *= 0.18215f;
            double e = t_rel_l2(latent.v, mean.v, mean.n);
            CHECKF(e < 1e-6, "latent != mean * 0.18215: rel %.3e", e);
        }
    }
    eu_free(&mean), eu_free(&logvar), eu_free(&latent);
}

/* UNet down block: 3x3 stride-2 conv with padding 1. */
static int unet_down(int s) { return (s + 2 - 3) / 2 + 1; }

/* Expected shape of every UNet output for a latent h x w, as diffusers gives
 * it: each down block but the last halves (stride-2 conv), each up block but
 * the last upsamples to the size of the skip it meets next. */
static void unet_tap_shapes(const int *ch, int nb, int n, int h, int w, char names[][16], int64_t shapes[][4], int *count) {
    int lh[DDPS_MAX_BLOCKS + 1], lw[DDPS_MAX_BLOCKS + 1];
    lh[0] = h, lw[0] = w;
    for (int i = 0; i + 1 < nb; i++) lh[i + 1] = unet_down(lh[i]), lw[i + 1] = unet_down(lw[i]);
    int k = 0;
    for (int i = 0; i < nb; i++) {
        int l = i + 1 < nb ? i + 1 : nb - 1;
        snprintf(names[k], 16, "down%d", i);
        int64_t s[4] = {n, ch[i], lh[l], lw[l]};
        memcpy(shapes[k++], s, sizeof s);
    }
    snprintf(names[k], 16, "mid");
    int64_t m[4] = {n, ch[nb - 1], lh[nb - 1], lw[nb - 1]};
    memcpy(shapes[k++], m, sizeof m);
    for (int i = 0; i < nb; i++) {
        int l = i + 1 < nb ? nb - 2 - i : 0;
        snprintf(names[k], 16, "up%d", i);
        int64_t s[4] = {n, ch[nb - 1 - i], lh[l], lw[l]};
        memcpy(shapes[k++], s, sizeof s);
    }
    snprintf(names[k], 16, "eps");
    int64_t e[4] = {n, 4, h, w};
    memcpy(shapes[k++], e, sizeof e);
    *count = k;
}

/* extra: tensors of the file that are not outputs (the golden's inputs);
 * unet_config: the model's unet/config.json. */
static void check_unet_shapes(const char *label, const char *out, const char *unet_config, int n, int h, int w,
                              int extra, int want_finite) {
    int ch[DDPS_MAX_BLOCKS] = {0}, nb = 0;
    json_error_t je;
    json_t *root = json_load_file(unet_config, 0, &je);
    json_t *list = json_object_get(root, "block_out_channels");
    nb = (int)json_array_size(list);
    CHECKF(nb >= 1 && nb <= DDPS_MAX_BLOCKS, "%s: %d blocks", unet_config, nb);
    for (int i = 0; i < nb && i < DDPS_MAX_BLOCKS; i++) ch[i] = (int)json_integer_value(json_array_get(list, (size_t)i));
    json_decref(root);
    if (nb < 1 || nb > DDPS_MAX_BLOCKS) return;
    char names[2 * DDPS_MAX_BLOCKS + 2][16];
    int64_t shapes[2 * DDPS_MAX_BLOCKS + 2][4];
    int count;
    unet_tap_shapes(ch, nb, n, h, w, names, shapes, &count);
    CHECKF(eu_count(out) == count + extra, "%s: %d tensors, expected %d", label, eu_count(out), count + extra);
    for (int i = 0; i < count; i++) {
        eu_arr a;
        if (eu_load(out, names[i], &a) != 0) continue;
        CHECKF(eu_shape_is(&a, 4, shapes[i]), "%s %s: shape %s, diffusers gives %s", label, names[i],
               eu_shape_str(a.ndim, a.shape), eu_shape_str(4, shapes[i]));
        if (want_finite) CHECKF(eu_nonfinite(a.v, a.n) == 0, "%s %s: non-finite values", label, names[i]);
        eu_free(&a);
    }
}

static const char *tiny_unet_config(void) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/tiny-sd/unet/config.json", GOLDEN);
    return path;
}

/* The shape rule above, applied to the golden's 8x6 latent, agrees with diffusers. */
static void unet_shape_rule(void) { check_unet_shapes("unet golden", golden("unet.safetensors"), tiny_unet_config(), 3, 8, 6, 3, 0); }

/* Writes a UNet probe input: sample [n,4,h,w] (seeded normal), timesteps
 * (I64), context [n,L,C] (seeded normal). */
static void write_unet_input(const char *path, int n, int h, int w, const int64_t *ts, int L, int C, uint64_t seed) {
    size_t nx = (size_t)n * 4 * h * w, nc = (size_t)n * L * C;
    float *x = ddps_malloc(nx * sizeof(float)), *ctx = ddps_malloc(nc * sizeof(float));
    ddps_rng r;
    ddps_rng_seed(&r, seed);
    ddps_rng_fill_normal(&r, x, nx);
    ddps_rng_fill_normal(&r, ctx, nc);
    st_out o[3] = {{"sample", ST_F32, 4, {n, 4, h, w}, x}, {"timesteps", ST_I64, 1, {n}, ts}, {"context", ST_F32, 3, {n, L, C}, ctx}};
    ddps_err err;
    CHECKF(ddps_st_write(path, o, 3, &err) == 0, "%s", err.msg);
    free(x);
    free(ctx);
}

/* A 5x7 latent (not a multiple of 8: the up blocks must meet the skips' odd sizes). */
static void unet_odd_latent(void) {
    int n = 2, h = 5, w = 7;
    int64_t ts[2] = {10, 900};
    write_unet_input(tmp("unet_odd_in.safetensors"), n, h, w, ts, 77, 32, 57);
    char args[16384];
    snprintf(args, sizeof args, "unet --model %s --in %s --out %s", MODEL, tmp("unet_odd_in.safetensors"),
             tmp("unet_odd.safetensors"));
    if (probe_ok("unet 5x7", args) == 0)
        check_unet_shapes("unet 5x7", tmp("unet_odd.safetensors"), tiny_unet_config(), n, h, w, 0, 1);
}

/* The most blocks a config may have (DDPS_MAX_BLOCKS): every tap comes out.
 * The model is a random one written by ddps_sd_write_random (the demo's
 * writer), which must load as any diffusers folder does. */
static void unet_max_blocks(void) {
    ddps_unet_config u;
    ddps_vae_config v;
    ddps_clip_config c;
    ddps_sd15_unet_config(&u);
    u.n_blocks = DDPS_MAX_BLOCKS;
    for (int i = 0; i < u.n_blocks; i++) {
        u.block_out_channels[i] = 8 * (1 + i % 2);
        u.heads[i] = 2;
        u.down_cross[i] = i % 2 == 0;
        u.up_cross[i] = i % 3 != 0;
    }
    u.layers_per_block = 1;
    u.cross_attention_dim = 16;
    u.norm_num_groups = 4;
    u.time_embed_dim = 4 * u.block_out_channels[0];
    ddps_sd15_vae_config(&v);
    v.n_blocks = 2;
    v.block_out_channels[0] = v.block_out_channels[1] = 8;
    v.layers_per_block = 1;
    v.norm_num_groups = 4;
    ddps_sd15_clip_config(&c);
    c.hidden_size = 16;
    c.intermediate_size = 32;
    c.num_hidden_layers = 1;
    c.num_attention_heads = 2;
    static const char *words[] = {"tench"};
    char dir[2200];
    snprintf(dir, sizeof dir, "%s/blocks8", TMP);
    ddps_err err = {{0}};
    CHECKF(ddps_sd_write_random(dir, &u, &v, &c, words, 1, 7, ST_F32, &err) == 0, "%s", err.msg);
    int64_t ts[1] = {500};
    write_unet_input(tmp("blocks8_in.safetensors"), 1, 8, 8, ts, 77, 16, 3);
    char args[16384], qdir[2400], config[2300];
    eu_quote(qdir, sizeof qdir, dir);
    snprintf(config, sizeof config, "%s/unet/config.json", dir);
    snprintf(args, sizeof args, "unet --model %s --in %s --out %s", qdir, tmp("blocks8_in.safetensors"),
             tmp("blocks8.safetensors"));
    if (probe_ok("unet 8 blocks", args) == 0)
        check_unet_shapes("unet 8 blocks", tmp("blocks8.safetensors"), config, 1, 8, 8, 0, 1);
}

/* bf16 matrix products (f32 accumulation) stay within 2e-2 of the f32 golden. */
static void golden_unet_bf16(void) {
    static const char *inputs[] = {"sample", "timesteps", "context", NULL};
    char args[16384], *out = NULL;
    snprintf(args, sizeof args, "unet --precision bf16 --model %s --in %s --out %s", MODEL, golden("unet.safetensors"),
             tmp("unet_bf16.safetensors"));
    int rc = eu_probe(args, &out);
    CHECKF(eu_no_crash(rc, out), "bf16 probe crashed: %s", out);
    if (rc != 0 && strstr(out, "bf16")) {
        t_skip("bf16: %s", out);
    } else {
        CHECKF(rc == 0, "bf16 probe failed: %s", out);
        if (rc == 0)
            compare_outputs("unet bf16", tmp("unet_bf16.safetensors"), golden("unet.safetensors"), inputs, BF16_TOL);
    }
    free(out);
}

/* Wrong inputs: a non-zero exit and one line naming the file or tensor. */
static void probe_errors(void) {
    char args[16384], *out = NULL;
    int rc;
    /* ids beyond the vocabulary */
    int32_t ids[77];
    for (int i = 0; i < 77; i++) ids[i] = i == 3 ? 49408 : 49407;
    st_out o = {"input_ids", ST_I32, 2, {1, 77}, ids};
    ddps_err err;
    CHECK(ddps_st_write(tmp("bad_ids.safetensors"), &o, 1, &err) == 0);
    snprintf(args, sizeof args, "text --model %s --in %s --out %s", MODEL, tmp("bad_ids.safetensors"),
             tmp("never.safetensors"));
    rc = eu_probe(args, &out);
    eu_expect_fail("ids out of range", rc, out, (const char *[]){"bad_ids.safetensors", "input_ids", "outside"}, 3);
    free(out);
    /* ids of the wrong length */
    o.shape[1] = 76;
    CHECK(ddps_st_write(tmp("short_ids.safetensors"), &o, 1, &err) == 0);
    snprintf(args, sizeof args, "text --model %s --in %s --out %s", MODEL, tmp("short_ids.safetensors"),
             tmp("never.safetensors"));
    rc = eu_probe(args, &out);
    eu_expect_fail("ids [1,76]", rc, out, (const char *[]){"short_ids.safetensors", "input_ids"}, 2);
    free(out);
    /* the input file lacks the tensor the probe needs */
    snprintf(args, sizeof args, "vae --model %s --in %s --out %s", MODEL, golden("text.safetensors"),
             tmp("never.safetensors"));
    rc = eu_probe(args, &out);
    eu_expect_fail("no image tensor", rc, out, (const char *[]){"text.safetensors", "'image'"}, 2);
    free(out);
    /* an image with 2 channels */
    write_random(tmp("two_channels.safetensors"), "image", 1, 2, 16, 16, 1);
    snprintf(args, sizeof args, "vae --model %s --in %s --out %s", MODEL, tmp("two_channels.safetensors"),
             tmp("never.safetensors"));
    rc = eu_probe(args, &out);
    eu_expect_fail("2-channel image", rc, out, (const char *[]){"two_channels.safetensors", "image"}, 2);
    free(out);
    /* a missing input file */
    snprintf(args, sizeof args, "unet --model %s --in %s --out %s", MODEL, tmp("absent.safetensors"),
             tmp("never.safetensors"));
    rc = eu_probe(args, &out);
    eu_expect_fail("missing input", rc, out, (const char *[]){"absent.safetensors"}, 1);
    free(out);
    /* stage1: a patch larger than the image */
    snprintf(args, sizeof args, "stage1 --model %s --in %s --out %s --patch 65 --stride 8", MODEL,
             golden("stage1.safetensors"), tmp("never.safetensors"));
    rc = eu_probe(args, &out);
    eu_expect_fail("patch 65 on 64x64", rc, out, (const char *[]){"patch 65"}, 1);
    free(out);
    /* usage errors */
    snprintf(args, sizeof args, "unet --model %s --out %s", MODEL, tmp("never.safetensors"));
    rc = eu_probe(args, &out);
    eu_expect_fail("no --in", rc, out, (const char *[]){"--in"}, 1);
    free(out);
    rc = eu_probe("transmogrify --model x", &out);
    eu_expect_fail("unknown probe", rc, out, (const char *[]){"transmogrify"}, 1);
    free(out);
    snprintf(args, sizeof args, "unet --precision f8 --model %s --in %s --out %s", MODEL, golden("unet.safetensors"),
             tmp("never.safetensors"));
    rc = eu_probe(args, &out);
    eu_expect_fail("bad precision", rc, out, (const char *[]){"--precision"}, 1);
    free(out);
    CHECK(!ddps_is_file(tmp("never.safetensors")));
}

/* The golden probes for one model given to --model (already quoted). */
static void golden_set(const char *label, const char *model_args, const char *set, int token_cases) {
    fprintf(stderr, "== %s\n", label);
    snprintf(MODEL, sizeof MODEL, "%s", model_args);
    GSET = set;
    N_TOKEN_CASES = token_cases;
    TEST(golden_text);
    TEST(golden_text_i64);
    TEST(golden_vae);
    TEST(golden_unet);
    TEST(golden_schedule);
    TEST(golden_stage1);
    TEST(golden_tokens);
}

/* Parts: "" every f32 probe; "bf16" the bf16 UNet of tiny-sd and of tiny-sd2
 * (skipped where the CPU has no bf16 path). */
int main(int argc, char **argv) {
    char model[4096], q1[2400], q2[2400], q3[2400], args[4800];
    snprintf(GOLDEN, sizeof GOLDEN, "%s", t_shared("golden"));
    snprintf(TMP, sizeof TMP, "%s", t_tmpdir("golden"));
    snprintf(model, sizeof model, "%s/tiny-sd-single.safetensors", GOLDEN);
    eu_quote(q1, sizeof q1, model);
    snprintf(model, sizeof model, "%s/tiny-sd", GOLDEN);
    eu_quote(q2, sizeof q2, model);
    snprintf(model, sizeof model, "%s/tiny-sd2", GOLDEN);
    eu_quote(q3, sizeof q3, model);
    if (strcmp(t_part(argc, argv), "bf16") == 0) {
        snprintf(MODEL, sizeof MODEL, "%s", q2);
        TEST(golden_unet_bf16);
        snprintf(MODEL, sizeof MODEL, "%s", q3);
        GSET = "golden-sd2/";
        TEST(golden_unet_bf16);
        return t_done();
    }
    /* The single-file checkpoint (original names, VAE attention as 1x1
     * convolutions, mixed dtypes) with the folder's configs: the same outputs. */
    snprintf(args, sizeof args, "%s --config %s", q1, q2);
    golden_set("single-file checkpoint + --config", args, "", 23);
    /* SD 2.x: linear projections, per-block heads, upcast attention, GELU
     * text encoder, pad token "!", v-prediction. */
    golden_set("SD 2.x (tiny-sd2 against golden-sd2)", q3, "golden-sd2/", 21);
    /* The diffusers folder, and the checks that only need it. */
    golden_set("diffusers folder", q2, "", 23);
    TEST(vae_odd_size);
    TEST(unet_shape_rule);
    TEST(unet_odd_latent);
    TEST(unet_max_blocks);
    TEST(probe_errors);
    return t_done();
}
