/* Models as users have them.
 *   - SD v1.5's real single-file key list (golden/sd15_single_file_shapes.txt)
 *     maps one to one onto the tensors the loader expects, shapes included;
 *   - full files (EMA and plain UNet weights: the EMA ones are used, with a
 *     note) and EMA-only files give the golden outputs;
 *   - SD v1.x configurations are inferred from the tensors; anything else
 *     asks for --config; pickles are refused with the reason;
 *   - the tokenizer shipped with ddps tokenizes like the model's own;
 *   - an SD 2.x single file with an OpenCLIP text encoder (fused q/k/v
 *     in_proj, one more layer than diffusers keeps) gives golden-sd2's output;
 *   - Hugging Face cache ids resolve to snapshots (refs/main, @revision, a
 *     commit, $HF_HUB_CACHE or $HF_HOME/hub, symlinks into blobs/, the .fp16
 *     variant), a local path wins, and what is not cached says how to fetch it. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine_util.h"
#include "models/config.h"
#include "models/hf_cache.h"
#include "models/sd.h"
#include "models/single_file.h"
#include "models/weights.h"

static char GOLDEN[2048], TMP[2048];

static const char *gpath(const char *rel) {
    static char buf[4][4096];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 4096, "%s/%s", GOLDEN, rel);
    return b;
}

static const char *tpath(const char *rel) {
    static char buf[4][4096];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 4096, "%s/%s", TMP, rel);
    return b;
}

/* Shapes equal up to trailing 1x1 kernel dims (the VAE's 1x1-conv attention). */
static int same_shape(int na, const int64_t *a, int nb, const int64_t *b) {
    while (na > 2 && a[na - 1] == 1) na--;
    while (nb > 2 && b[nb - 1] == 1) nb--;
    if (na != nb) return 0;
    for (int i = 0; i < na; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

typedef struct {
    char name[256];
    int ndim, hits;
    int64_t shape[4];
} shape_row;

static shape_row *read_shapes(const char *path, int *n) {
    FILE *f = fopen(path, "r");
    CHECKF(f != NULL, "cannot read %s", path);
    *n = 0;
    if (!f) return NULL;
    shape_row *rows = ddps_calloc(2048, sizeof *rows);
    char line[512];
    while (fgets(line, sizeof line, f) && *n < 2048) {
        if (line[0] == '#' || line[0] == '\n') continue;
        shape_row *r = &rows[*n];
        char shp[128];
        if (sscanf(line, "%255s %127s", r->name, shp) != 2) continue;
        char *p = shp;
        while (*p && r->ndim < 4) {
            r->shape[r->ndim++] = strtoll(p, &p, 10);
            if (*p == 'x') p++;
        }
        (*n)++;
    }
    fclose(f);
    return rows;
}

/* Every tensor ddps declares for SD v1.5, mapped to its original name, is in
 * the real key list with its shape, and every listed key is hit exactly once. */
static void sd15_key_list(void) {
    int n;
    shape_row *rows = read_shapes(gpath("sd15_single_file_shapes.txt"), &n);
    if (!rows) return;
    CHECKF(n == 1130, "%d keys listed", n);
    ddps_unet_config u;
    ddps_vae_config v;
    ddps_clip_config c;
    ddps_sd15_unet_config(&u);
    ddps_sd15_vae_config(&v);
    ddps_sd15_clip_config(&c);
    const char *comp[3] = {"text_encoder", "vae", "unet"};
    const void *cfg[3] = {&c, &v, &u};
    int declared = 0, bad = 0;
    for (int k = 0; k < 3; k++) {
        ddps_wsrc ws;
        ddps_err err;
        CHECKF(ddps_sd_declare(comp[k], cfg[k], &ws, &err) == 0, "%s", err.msg);
        for (int i = 0; i < ws.n; i++, declared++) {
            char ldm[512];
            int ok = ddps_ldm_name(comp[k], cfg[k], ws.list[i].name, ldm, sizeof ldm) == 0;
            shape_row *hit = NULL;
            for (int r = 0; ok && r < n && !hit; r++)
                if (strcmp(rows[r].name, ldm) == 0) hit = &rows[r];
            if (hit) hit->hits++;
            if (!hit || !same_shape(hit->ndim, hit->shape, ws.list[i].ndim, ws.list[i].shape)) {
                if (bad++ < 5) fprintf(stderr, "   %s %s -> %s: %s\n", comp[k], ws.list[i].name, ok ? ldm : "(no name)",
                                       hit ? "shape differs" : "not in the key list");
            }
        }
        ddps_ws_free(&ws);
    }
    int once = 0;
    for (int r = 0; r < n; r++) {
        once += rows[r].hits == 1;
        if (rows[r].hits != 1 && bad++ < 10) fprintf(stderr, "   %s hit %d times\n", rows[r].name, rows[r].hits);
    }
    fprintf(stderr, "   %d declared tensors, %d keys listed, %d hit exactly once\n", declared, n, once);
    CHECK(bad == 0 && declared == n && once == n);
    char ema[512];
    ddps_ldm_ema_name("model.diffusion_model.input_blocks.0.0.weight", ema, sizeof ema);
    CHECKF(strcmp(ema, "model_ema.diffusion_modelinput_blocks00weight") == 0, "%s", ema);
    free(rows);
}

/* Copies the tensors of `src` to `dst`, renaming the UNet: keep_plain keeps
 * model.diffusion_model.* (zeroed when zero_plain), add_ema adds the
 * model_ema.* copy with the real values (and LitEma's decay/num_updates). */
static void write_ema_variant(const char *dst, int keep_plain, int zero_plain, int add_ema) {
    st_file f;
    ddps_err err;
    if (ddps_st_open(&f, gpath("tiny-sd-single.safetensors"), &err) != 0) {
        CHECKF(0, "%s", err.msg);
        return;
    }
    st_out *o = ddps_calloc((size_t)f.n * 2 + 2, sizeof *o);
    char **names = ddps_calloc((size_t)f.n * 2 + 2, sizeof *names);
    void **bufs = ddps_calloc((size_t)f.n + 1, sizeof *bufs);
    int n = 0, nn = 0;
    for (int i = 0; i < f.n; i++) {
        const st_tensor *t = &f.t[i];
        int unet = strncmp(t->name, "model.diffusion_model.", 22) == 0;
        st_out e = {t->name, t->dtype, t->ndim, {0}, t->data};
        memcpy(e.shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
        if (!unet) {
            o[n++] = e;
            continue;
        }
        if (add_ema) {
            names[nn] = ddps_malloc(512);
            ddps_ldm_ema_name(t->name, names[nn], 512);
            st_out m = e;
            m.name = names[nn++];
            o[n++] = m;
        }
        if (keep_plain) {
            if (zero_plain) {
                bufs[i] = ddps_calloc(t->nbytes + 1, 1);
                e.data = bufs[i];
            }
            o[n++] = e;
        }
    }
    float decay = 0.9999f;
    int32_t updates = 1000;
    if (add_ema) {
        o[n++] = (st_out){"model_ema.decay", ST_F32, 0, {0}, &decay};
        o[n++] = (st_out){"model_ema.num_updates", ST_I32, 0, {0}, &updates};
    }
    CHECKF(ddps_st_write(dst, o, n, &err) == 0, "%s", err.msg);
    for (int i = 0; i < nn; i++) free(names[i]);
    for (int i = 0; i < f.n; i++) free(bufs[i]);
    free(bufs);
    free(names);
    free(o);
    ddps_st_close(&f);
}

static void unet_probe_matches(const char *label, const char *model, const char *config, const char *must_say) {
    char args[8192], *out = NULL;
    snprintf(args, sizeof args, "unet --model '%s' --config '%s' --in '%s' --out '%s'", model, config,
             gpath("unet.safetensors"), tpath("unet_out.safetensors"));
    int rc = eu_probe(args, &out);
    CHECKF(rc == 0, "%s: probe failed: %s", label, out);
    if (must_say) CHECKF(strstr(out, must_say) != NULL, "%s: no '%s' in: %s", label, must_say, out);
    CHECKF(!strstr(out, "not used by ddps"), "%s: unexpected unused-tensor warning: %s", label, out);
    if (rc == 0) {
        eu_compare(label, tpath("unet_out.safetensors"), gpath("unet.safetensors"), "eps", 1e-4);
        eu_compare(label, tpath("unet_out.safetensors"), gpath("unet.safetensors"), "up3", 1e-4);
    }
    free(out);
}

/* A full file: plain UNet weights zeroed, the real ones as model_ema.*. The
 * golden output proves the EMA copy is used; the note says so. Then an
 * EMA-only file. */
static void ema_weights(void) {
    write_ema_variant(tpath("full.safetensors"), 1, 1, 1);
    unet_probe_matches("ema full", tpath("full.safetensors"), gpath("tiny-sd"), "EMA");
    write_ema_variant(tpath("ema_only.safetensors"), 0, 0, 1);
    unet_probe_matches("ema only", tpath("ema_only.safetensors"), gpath("tiny-sd"), NULL);
    /* the plain file itself: no note */
    char args[8192], *out = NULL;
    snprintf(args, sizeof args, "stage1 --model '%s' --config '%s' --in '%s' --out '%s' --patch 32 --stride 8",
             gpath("tiny-sd-single.safetensors"), gpath("tiny-sd"), gpath("stage1.safetensors"),
             tpath("s1.safetensors"));
    int rc = eu_probe(args, &out);
    CHECKF(rc == 0 && !strstr(out, "EMA") && !strstr(out, "warning"), "plain single file: rc %d: %s", rc, out);
    free(out);
}

/* The single file with --config gives bit for bit the folder's outputs. */
static void same_as_folder(void) {
    static const char *const probes[3][2] = {{"text", "text.safetensors"}, {"vae", "vae.safetensors"},
                                             {"unet", "unet.safetensors"}};
    for (int i = 0; i < 3; i++) {
        char args[8192], *out = NULL, *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        ddps_err err;
        snprintf(args, sizeof args, "%s --model '%s' --in '%s' --out '%s' --threads 1", probes[i][0], gpath("tiny-sd"),
                 gpath(probes[i][1]), tpath("from_folder.safetensors"));
        int rc = eu_probe(args, &out);
        free(out);
        snprintf(args, sizeof args, "%s --model '%s' --config '%s' --in '%s' --out '%s' --threads 1", probes[i][0],
                 gpath("tiny-sd-single.safetensors"), gpath("tiny-sd"), gpath(probes[i][1]),
                 tpath("from_single.safetensors"));
        rc |= eu_probe(args, &out);
        free(out);
        CHECKF(rc == 0, "%s probes failed", probes[i][0]);
        if (rc) continue;
        CHECK(ddps_read_file(tpath("from_folder.safetensors"), 1 << 26, &a, &na, &err) == 0);
        CHECK(ddps_read_file(tpath("from_single.safetensors"), 1 << 26, &b, &nb, &err) == 0);
        CHECKF(a && b && na == nb && memcmp(a, b, na) == 0, "%s: the single file's output differs from the folder's",
               probes[i][0]);
        fprintf(stderr, "   %-5s output of the single file == the folder's (%zu bytes)\n", probes[i][0], na);
        free(a);
        free(b);
    }
}

/* Writes a file with the given tensors (shape only matters; zero data). */
static void write_fake(const char *path, int n, const char *const *names, const int64_t (*shapes)[2]) {
    st_out o[8] = {{0}};
    void *bufs[8] = {0};
    for (int i = 0; i < n; i++) {
        bufs[i] = ddps_calloc((size_t)(shapes[i][0] * shapes[i][1]) * 2 + 2, 1);
        o[i] = (st_out){names[i], ST_F16, 2, {shapes[i][0], shapes[i][1]}, bufs[i]};
    }
    ddps_err err;
    CHECKF(ddps_st_write(path, o, n, &err) == 0, "%s", err.msg);
    for (int i = 0; i < n; i++) free(bufs[i]);
}

/* SD v1.x is recognised by its widths; an SD 2.x-like width needs --config;
 * the tiny model without --config is refused the same way. */
static void infer_sd1(void) {
    static const char *names[] = {"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
                                  "model.diffusion_model.input_blocks.1.0.in_layers.2.weight",
                                  "model.diffusion_model.input_blocks.4.0.in_layers.2.weight",
                                  "model.diffusion_model.input_blocks.7.0.in_layers.2.weight",
                                  "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"};
    int64_t shapes[5][2] = {{320, 768}, {320, 1}, {640, 1}, {1280, 1}, {16, 768}};
    write_fake(tpath("sd1_like.safetensors"), 5, names, (const int64_t(*)[2])shapes);
    ddps_single s;
    ddps_err err;
    ddps_unet_config u, ref;
    ddps_vae_config v;
    ddps_clip_config c;
    CHECKF(ddps_single_open(tpath("sd1_like.safetensors"), &s, &err) == 0, "%s", err.msg);
    CHECKF(ddps_single_infer_sd1(&s, &u, &v, &c, &err) == 0, "%s", err.msg);
    ddps_sd15_unet_config(&ref);
    CHECK(memcmp(&u, &ref, sizeof u) == 0 && c.hidden_size == 768 && c.num_hidden_layers == 12 && u.heads[0] == 8);
    ddps_single_close(&s);
    /* the check-only load lists what a real file would hold */
    ddps_sd *sd = NULL;
    CHECK(ddps_sd_load(tpath("sd1_like.safetensors"), NULL, DDPS_PART_UNET, &sd, &err) != 0 && sd == NULL);
    CHECKF(strstr(err.msg, "sd1_like.safetensors") && strstr(err.msg, "missing") &&
               strstr(err.msg, "model.diffusion_model.input_blocks.0.0."),
           "%s", err.msg);
    shapes[0][1] = 1024;
    write_fake(tpath("sd2_like.safetensors"), 5, names, (const int64_t(*)[2])shapes);
    CHECK(ddps_sd_load(tpath("sd2_like.safetensors"), NULL, DDPS_PART_UNET, &sd, &err) != 0);
    CHECKF(strstr(err.msg, "sd2_like.safetensors") && strstr(err.msg, "1024") && strstr(err.msg, "--config"), "%s",
           err.msg);
    char args[8192], *out = NULL;
    snprintf(args, sizeof args, "unet --model '%s' --in '%s' --out '%s'", gpath("tiny-sd-single.safetensors"),
             gpath("unet.safetensors"), tpath("never.safetensors"));
    int rc = eu_probe(args, &out);
    eu_expect_fail("tiny without --config", rc, out, (const char *[]){"tiny-sd-single.safetensors", "--config"}, 2);
    free(out);
    /* --config on a folder is a mistake */
    snprintf(args, sizeof args, "unet --model '%s' --config '%s' --in '%s' --out '%s'", gpath("tiny-sd"),
             gpath("tiny-sd"), gpath("unet.safetensors"), tpath("never.safetensors"));
    rc = eu_probe(args, &out);
    eu_expect_fail("--config with a folder", rc, out, (const char *[]){"--config"}, 1);
    free(out);
    CHECK(!ddps_is_file(tpath("never.safetensors")));
}

/* Pickles are never opened, whatever they hold. */
static void pickles_refused(void) {
    static const char *exts[] = {"ckpt", "pt", "pth", "bin"};
    for (int i = 0; i < 4; i++) {
        char name[64], args[8192], *out = NULL;
        snprintf(name, sizeof name, "model.%s", exts[i]);
        t_write(tpath(name), "\x80\x02}q\x00.", 6);
        snprintf(args, sizeof args, "unet --model '%s' --in '%s' --out '%s'", tpath(name), gpath("unet.safetensors"),
                 tpath("never.safetensors"));
        int rc = eu_probe(args, &out);
        eu_expect_fail(name, rc, out, (const char *[]){name, "pickle", "code", "safetensors"}, 4);
        CHECKF(rc == 1 && eu_count_lines(out) == 1, "%s: rc %d, %d lines", name, rc, eu_count_lines(out));
        free(out);
    }
}

/* The shipped CLIP vocabulary (a single file has none) gives the ids of
 * tokens.json. */
static void shipped_tokenizer(void) {
    json_error_t je;
    json_t *root = json_load_file(gpath("tokens.json"), 0, &je);
    CHECKF(json_is_array(root), "tokens.json: %s", je.text);
    if (!json_is_array(root)) return;
    char args[16384];
    size_t len = (size_t)snprintf(args, sizeof args, "tokenize --model '%s'", gpath("tiny-sd-single.safetensors"));
    size_t n = json_array_size(root) < 8 ? json_array_size(root) : 8;
    for (size_t i = 0; i < n; i++) {
        args[len++] = ' ';
        eu_quote(args + len, sizeof args - len, json_string_value(json_object_get(json_array_get(root, i), "text")));
        len += strlen(args + len);
    }
    char *out = NULL;
    int rc = eu_probe(args, &out);
    CHECKF(rc == 0, "tokenize: %s", out);
    const char *p = out;
    int exact = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_t *want = json_object_get(json_array_get(root, i), "ids");
        int same = 1;
        for (size_t k = 0; k < 77; k++) {
            char *end;
            long v = strtol(p, &end, 10);
            same &= end != p && v == json_integer_value(json_array_get(want, k));
            p = end;
        }
        exact += same;
        p = strchr(p, '\n');
        if (!p) break;
        p++;
    }
    fprintf(stderr, "   shipped tokenizer: %d of %zu cases exact\n", exact, n);
    CHECK(exact == (int)n);
    free(out);
    json_decref(root);
}

/* ---------- SD 2.x single file, OpenCLIP text encoder ---------- */

typedef struct {
    st_out *o;
    char **names;
    void **bufs;
    int n, nb;
} outs;

static void outs_add(outs *w, const char *name, st_dtype dt, int ndim, const int64_t *shape, const void *data) {
    w->o = ddps_realloc(w->o, (size_t)(w->n + 1) * sizeof *w->o);
    w->names = ddps_realloc(w->names, (size_t)(w->n + 1) * sizeof *w->names);
    w->names[w->n] = ddps_strdup(name);
    st_out e = {w->names[w->n], dt, ndim, {0}, data};
    memcpy(e.shape, shape, sizeof(int64_t) * (size_t)ndim);
    w->o[w->n++] = e;
}

static void *outs_buf(outs *w, size_t n) {
    w->bufs = ddps_realloc(w->bufs, (size_t)(w->nb + 1) * sizeof *w->bufs);
    return w->bufs[w->nb++] = ddps_calloc(n + 1, 1);
}

static void outs_free(outs *w) {
    for (int i = 0; i < w->n; i++) free(w->names[i]);
    for (int i = 0; i < w->nb; i++) free(w->bufs[i]);
    free(w->o), free(w->names), free(w->bufs);
}

/* A component's diffusers tensors under their original names. */
static void add_ldm(outs *w, const char *comp, const void *cfg, st_file *f) {
    for (int i = 0; i < f->n; i++) {
        char ldm[512];
        const st_tensor *t = &f->t[i];
        if (ddps_ldm_name(comp, cfg, t->name, ldm, sizeof ldm) == 0) outs_add(w, ldm, t->dtype, t->ndim, t->shape, t->data);
    }
}

static int load_cfg(const char *rel, json_t **root) {
    ddps_err err;
    int rc = ddps_json_load(gpath(rel), root, &err);
    CHECKF(rc == 0, "%s", err.msg);
    return rc;
}

static void sd2_openclip(void) {
    json_t *ju, *jv, *jc;
    if (load_cfg("tiny-sd2/unet/config.json", &ju) || load_cfg("tiny-sd2/vae/config.json", &jv) ||
        load_cfg("tiny-sd2/text_encoder/config.json", &jc))
        return;
    ddps_unet_config u;
    ddps_vae_config v;
    ddps_clip_config c;
    ddps_err err;
    CHECK(ddps_unet_config_parse("u", ju, &u, &err) == 0 && ddps_vae_config_parse("v", jv, &v, &err) == 0 &&
          ddps_clip_config_parse("c", jc, &c, &err) == 0);
    json_decref(ju), json_decref(jv), json_decref(jc);
    st_file fu, fv, ft;
    CHECK(ddps_st_open(&fu, gpath("tiny-sd2/unet/diffusion_pytorch_model.safetensors"), &err) == 0);
    CHECK(ddps_st_open(&fv, gpath("tiny-sd2/vae/diffusion_pytorch_model.safetensors"), &err) == 0);
    CHECK(ddps_st_open(&ft, gpath("tiny-sd2/text_encoder/model.safetensors"), &err) == 0);
    outs w = {0};
    add_ldm(&w, "unet", &u, &fu);
    add_ldm(&w, "vae", &v, &fv);
    const char *P = "cond_stage_model.model.";
    char nm[512], src[512];
    int H = c.hidden_size;
    static const char *const plain[][2] = {{"layer_norm1.", "ln_1."}, {"layer_norm2.", "ln_2."},
                                           {"mlp.fc1.", "mlp.c_fc."}, {"mlp.fc2.", "mlp.c_proj."},
                                           {"self_attn.out_proj.", "attn.out_proj."}};
    static const char *const wb[] = {"weight", "bias"};
    const st_tensor *t;
    /* layers: diffusers keeps num_hidden_layers; OpenCLIP has one more (SD 2.x uses the penultimate) */
    for (int l = 0; l <= c.num_hidden_layers; l++) {
        int src_l = l < c.num_hidden_layers ? l : 0;
        for (size_t m = 0; m < sizeof plain / sizeof *plain; m++)
            for (int k = 0; k < 2; k++) {
                snprintf(src, sizeof src, "text_model.encoder.layers.%d.%s%s", src_l, plain[m][0], wb[k]);
                snprintf(nm, sizeof nm, "%stransformer.resblocks.%d.%s%s", P, l, plain[m][1], wb[k]);
                t = ddps_st_find(&ft, src);
                CHECKF(t != NULL, "%s", src);
                if (t) outs_add(&w, nm, t->dtype, t->ndim, t->shape, t->data);
            }
        for (int k = 0; k < 2; k++) {
            static const char *const qkv[] = {"q_proj", "k_proj", "v_proj"};
            size_t part = 0;
            char *fused = NULL;
            st_dtype dt = ST_F32;
            for (int q = 0; q < 3; q++) {
                snprintf(src, sizeof src, "text_model.encoder.layers.%d.self_attn.%s.%s", src_l, qkv[q], wb[k]);
                t = ddps_st_find(&ft, src);
                CHECKF(t != NULL, "%s", src);
                if (!t) continue;
                if (!fused) fused = outs_buf(&w, 3 * t->nbytes), part = t->nbytes, dt = t->dtype;
                memcpy(fused + q * part, t->data, part);
            }
            snprintf(nm, sizeof nm, "%stransformer.resblocks.%d.attn.in_proj_%s", P, l, wb[k]);
            int64_t shape[2] = {3 * H, H};
            outs_add(&w, nm, dt, k ? 1 : 2, shape, fused);
        }
    }
    static const char *const top[][2] = {{"text_model.embeddings.token_embedding.weight", "token_embedding.weight"},
                                         {"text_model.embeddings.position_embedding.weight", "positional_embedding"},
                                         {"text_model.final_layer_norm.weight", "ln_final.weight"},
                                         {"text_model.final_layer_norm.bias", "ln_final.bias"}};
    for (size_t i = 0; i < sizeof top / sizeof *top; i++) {
        t = ddps_st_find(&ft, top[i][0]);
        CHECKF(t != NULL, "%s", top[i][0]);
        snprintf(nm, sizeof nm, "%s%s", P, top[i][1]);
        if (t) outs_add(&w, nm, t->dtype, t->ndim, t->shape, t->data);
    }
    float *proj = outs_buf(&w, (size_t)H * H * sizeof(float)), scale = 4.6f;
    int64_t ps[2] = {H, H}, s0[1] = {0};
    outs_add(&w, "cond_stage_model.model.text_projection", ST_F32, 2, ps, proj);
    outs_add(&w, "cond_stage_model.model.logit_scale", ST_F32, 0, s0, &scale);
    CHECKF(ddps_st_write(tpath("sd2_single.safetensors"), w.o, w.n, &err) == 0, "%s", err.msg);
    outs_free(&w);
    ddps_st_close(&fu), ddps_st_close(&fv), ddps_st_close(&ft);
    /* text and UNet through the single file with tiny-sd2's configs */
    char args[8192], *out = NULL;
    snprintf(args, sizeof args, "text --model '%s' --config '%s' --in '%s' --out '%s'", tpath("sd2_single.safetensors"),
             gpath("tiny-sd2"), gpath("golden-sd2/text.safetensors"), tpath("sd2_text.safetensors"));
    int rc = eu_probe(args, &out);
    CHECKF(rc == 0, "sd2 text: %s", out);
    if (rc == 0)
        eu_compare("sd2 1file", tpath("sd2_text.safetensors"), gpath("golden-sd2/text.safetensors"), "last_hidden_state",
                   1e-4);
    free(out);
    snprintf(args, sizeof args, "stage1 --model '%s' --config '%s' --in '%s' --out '%s' --patch 32 --stride 8",
             tpath("sd2_single.safetensors"), gpath("tiny-sd2"), gpath("golden-sd2/stage1.safetensors"),
             tpath("sd2_s1.safetensors"));
    rc = eu_probe(args, &out);
    CHECKF(rc == 0 && !strstr(out, "not used"), "sd2 stage1: %s", out);
    if (rc == 0)
        eu_compare("sd2 1file", tpath("sd2_s1.safetensors"), gpath("golden-sd2/stage1.safetensors"), "patch_scores",
                   1e-4);
    free(out);
}

/* ---------- Hugging Face cache ---------- */

#define COMMIT "0123456789abcdef0123456789abcdef01234567"
#define COMMIT2 "fedcba9876543210fedcba9876543210fedcba98"

static void sh(const char *cmd) { CHECKF(system(cmd) == 0, "%s", cmd); }

/* models--org--tiny in <hub>: every file of golden/tiny-sd as a blob, the
 * snapshot made of relative symlinks; the UNet weights named as the .fp16
 * variant (the only one present). */
static void make_cache(const char *hub, const char *commit) {
    char cmd[16384];
    snprintf(cmd, sizeof cmd,
             "set -e; R='%s/models--org--tiny'; mkdir -p \"$R/blobs\" \"$R/refs\" \"$R/snapshots/%s\"; "
             "cd '%s'; for f in $(find . -type f | sed 's|^./||'); do "
             "  b=$(sha256sum \"$f\" | cut -c1-64); cp \"$f\" \"$R/blobs/$b\"; "
             "  d=$(dirname \"$f\"); t=\"$f\"; "
             "  case \"$f\" in unet/diffusion_pytorch_model.safetensors) t=unet/diffusion_pytorch_model.fp16.safetensors;; "
             "esac; "
             "  mkdir -p \"$R/snapshots/%s/$d\"; up=$(echo \"$d\" | sed 's|[^/][^/]*|..|g'); "
             "  [ \"$d\" = . ] && rel=../../blobs/$b || rel=$up/../../blobs/$b; "
             "  ln -sf \"$rel\" \"$R/snapshots/%s/$t\"; done; printf '%s' > \"$R/refs/main\"",
             hub, commit, gpath("tiny-sd"), commit, commit, commit);
    sh(cmd);
}

static int text_probe(const char *env, const char *cwd, const char *model, char **out) {
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "cd '%s' && env -u HF_HUB_CACHE -u HF_HOME %s '%s' probe text --model '%s' --in '%s' --out '%s'",
             cwd, env, DDPS_BIN, model, gpath("text.safetensors"), tpath("hf_text.safetensors"));
    unlink(tpath("hf_text.safetensors"));
    return t_run(cmd, out);
}

static void hf_ok(const char *label, const char *env, const char *cwd, const char *model) {
    char *out = NULL;
    int rc = text_probe(env, cwd, model, &out);
    CHECKF(rc == 0, "%s: %s", label, out);
    if (rc == 0)
        eu_compare(label, tpath("hf_text.safetensors"), gpath("text.safetensors"), "last_hidden_state", 1e-4);
    free(out);
}

static void hf_cache(void) {
    CHECK(ddps_hf_is_repo_id("runwayml/stable-diffusion-v1-5"));
    CHECK(ddps_hf_is_repo_id("org/name@main") && ddps_hf_is_repo_id("org/name@" COMMIT));
    CHECK(!ddps_hf_is_repo_id("a/b/c") && !ddps_hf_is_repo_id("../x") && !ddps_hf_is_repo_id("org/..") &&
          !ddps_hf_is_repo_id("org/") && !ddps_hf_is_repo_id("/abs/path") && !ddps_hf_is_repo_id("org/n@") &&
          !ddps_hf_is_repo_id("org/n@../../x") && !ddps_hf_is_repo_id("plain"));
    char env[8192];
    make_cache(tpath("hub"), COMMIT);
    snprintf(env, sizeof env, "HF_HUB_CACHE='%s'", tpath("hub"));
    hf_ok("hf main", env, TMP, "org/tiny");
    hf_ok("hf commit", env, TMP, "org/tiny@" COMMIT);
    /* the UNet through the cache: only the .fp16 variant is there */
    char cmd[8192], *out = NULL;
    snprintf(cmd, sizeof cmd, "env -u HF_HOME %s '%s' probe unet --model org/tiny --in '%s' --out '%s'", env, DDPS_BIN,
             gpath("unet.safetensors"), tpath("hf_unet.safetensors"));
    int rc = t_run(cmd, &out);
    CHECKF(rc == 0, "hf unet: %s", out);
    if (rc == 0) eu_compare("hf unet", tpath("hf_unet.safetensors"), gpath("unet.safetensors"), "eps", 1e-4);
    free(out);
    /* a second revision by name */
    snprintf(cmd, sizeof cmd, "cd '%s/models--org--tiny' && cp -r snapshots/%s snapshots/%s && printf '%s\\n' > refs/v2",
             tpath("hub"), COMMIT, COMMIT2, COMMIT2);
    sh(cmd);
    hf_ok("hf @v2", env, TMP, "org/tiny@v2");
    /* $HF_HOME/hub */
    make_cache(tpath("home/hub"), COMMIT);
    snprintf(env, sizeof env, "HF_HOME='%s'", tpath("home"));
    hf_ok("hf HF_HOME", env, TMP, "org/tiny");
    /* ~/.cache/huggingface/hub */
    make_cache(tpath("user/.cache/huggingface/hub"), COMMIT);
    snprintf(env, sizeof env, "HOME='%s'", tpath("user"));
    hf_ok("hf HOME", env, TMP, "org/tiny");
    /* not cached: where it looked and how to fetch it */
    snprintf(env, sizeof env, "HF_HUB_CACHE='%s'", tpath("hub"));
    rc = text_probe(env, TMP, "org/absent", &out);
    eu_expect_fail("not cached", rc, out,
                   (const char *[]){"org/absent", "models--org--absent", "huggingface-cli download org/absent"}, 3);
    free(out);
    rc = text_probe(env, TMP, "org/tiny@nope", &out);
    eu_expect_fail("unknown revision", rc, out, (const char *[]){"nope", "--revision nope"}, 2);
    free(out);
    /* a damaged ref */
    snprintf(cmd, sizeof cmd, "printf 'not a hash' > '%s/models--org--tiny/refs/bad'", tpath("hub"));
    sh(cmd);
    rc = text_probe(env, TMP, "org/tiny@bad", &out);
    eu_expect_fail("damaged ref", rc, out, (const char *[]){"refs/bad", "commit"}, 2);
    free(out);
    /* a local folder named like an id wins */
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/local/org' && ln -sfn '%s' '%s/local/org/tiny'", TMP, gpath("tiny-sd"), TMP);
    sh(cmd);
    snprintf(env, sizeof env, "HF_HUB_CACHE='%s'", tpath("empty-hub"));
    hf_ok("local path wins", env, tpath("local"), "org/tiny");
    rc = text_probe(env, TMP, "org/tiny", &out);
    eu_expect_fail("empty cache", rc, out, (const char *[]){"empty-hub", "huggingface-cli download org/tiny"}, 2);
    free(out);
}

/* ddps distill end to end: a single file with --config, then the same model
 * from the Hugging Face cache (made by hf_cache) with RDED-style folders. */
static void distill_end_to_end(void) {
    char cmd[16384], *out = NULL;
    const char *woof = t_shared("data/imagewoof-mini/train");
    snprintf(cmd, sizeof cmd,
             "set -e; for c in n02086240 n02087394; do mkdir -p '%s/data/'$c; "
             "for f in $(ls '%s/'$c | head -3); do cp '%s/'$c/$f '%s/data/'$c/; done; done",
             TMP, woof, woof, TMP);
    if (system(cmd) != 0) {
        t_skip("no imagewoof-mini images in the shared folder");
        return;
    }
    snprintf(cmd, sizeof cmd,
             "'%s' distill --data '%s/data' --model '%s' --config '%s' --out '%s/e2e' --ipc 1 --size 64 --patch 32 "
             "--stride 16 --clusters 2 --dift-ensemble 1",
             DDPS_BIN, TMP, gpath("tiny-sd-single.safetensors"), gpath("tiny-sd"), TMP);
    int rc = t_run(cmd, &out);
    CHECKF(rc == 0, "distill (single file): %s", out);
    free(out);
    CHECK(ddps_is_file(tpath("e2e/ipc1/class_to_idx.json")) && ddps_is_file(tpath("e2e/ipc1/n02087394/n02087394_0000.png")));
    snprintf(cmd, sizeof cmd,
             "env -u HF_HOME HF_HUB_CACHE='%s/hub' '%s' distill --data '%s/data' --model org/tiny --out '%s/e2e_hf' "
             "--ipc 1 --size 64 --patch 32 --stride 16 --clusters 2 --dift-ensemble 1 --folder-names index",
             TMP, DDPS_BIN, TMP, TMP);
    rc = t_run(cmd, &out);
    CHECKF(rc == 0, "distill (HF cache): %s", out);
    free(out);
    CHECK(ddps_is_file(tpath("e2e_hf/ipc1/00155/00155_0000.png")) && ddps_is_file(tpath("e2e_hf/ipc1/00159/00159_0000.png")));
    char *text;
    size_t len;
    ddps_err err;
    CHECKF(ddps_read_file(tpath("e2e_hf/ipc1/classes.txt"), 1 << 16, &text, &len, &err) == 0, "%s", err.msg);
    /* no --class-names: the prompts used the folder names (ddps warned), and the table says so */
    CHECKF(strstr(text, "0\t00155\tn02086240\t155\tn02086240\n1\t00159\tn02087394\t159\tn02087394\n"),
           "%s", text);
    free(text);
}

/* ddps bench --shapes sd21: SD 2.1's tensors as the configs declare them. */
static void sd21_shapes(void) {
    ddps_unet_config u;
    ddps_clip_config c;
    ddps_sd21_unet_config(&u);
    ddps_sd21_clip_config(&c);
    for (int i = 0; i < u.n_blocks; i++) CHECK(u.block_out_channels[i] / u.heads[i] == 64);
    CHECK(u.cross_attention_dim == 1024 && u.use_linear_projection && u.upcast_attention);
    CHECK(c.hidden_size == 1024 && c.num_hidden_layers == 23 && c.hidden_size / c.num_attention_heads == 64 &&
          !c.quick_gelu);
    ddps_wsrc ws;
    ddps_err err;
    int found = 0;
    CHECK(ddps_sd_declare("unet", &u, &ws, &err) == 0);
    for (int i = 0; i < ws.n; i++) {
        const ddps_ws_entry *e = &ws.list[i];
        if (strcmp(e->name, "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight") == 0)
            found += e->ndim == 2 && e->shape[0] == 320 && e->shape[1] == 1024;
        if (strcmp(e->name, "down_blocks.0.attentions.0.proj_in.weight") == 0) found += e->ndim == 2;
    }
    ddps_ws_free(&ws);
    CHECK(ddps_sd_declare("text_encoder", &c, &ws, &err) == 0);
    for (int i = 0; i < ws.n; i++)
        if (strcmp(ws.list[i].name, "encoder.layers.22.mlp.fc1.weight") == 0)
            found += ws.list[i].shape[0] == 4096 && ws.list[i].shape[1] == 1024;
    ddps_ws_free(&ws);
    CHECK(found == 3);
}

int main(void) {
    snprintf(GOLDEN, sizeof GOLDEN, "%s", t_shared("golden"));
    snprintf(TMP, sizeof TMP, "%s", t_tmpdir("single_file"));
    TEST(sd15_key_list);
    TEST(same_as_folder);
    TEST(ema_weights);
    TEST(infer_sd1);
    TEST(pickles_refused);
    TEST(shipped_tokenizer);
    TEST(sd2_openclip);
    TEST(hf_cache);
    TEST(distill_end_to_end);
    TEST(sd21_shapes);
    return t_done();
}
