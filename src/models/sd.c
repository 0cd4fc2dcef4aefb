#include "models/sd.h"

#include <math.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "models/scheduler.h"
#include "models/hf_cache.h"
#include "models/single_file.h"
#include "util/datadir.h"
#include "util/fs.h"
#include "util/rng.h"

/* ---------- weight files of one component ---------- */

typedef struct {
    st_file *files;
    int n;
} st_set;

static void st_set_close(st_set *s) {
    for (int i = 0; i < s->n; i++) ddps_st_close(&s->files[i]);
    free(s->files);
    s->files = NULL;
    s->n = 0;
}

static int st_set_add(st_set *s, const char *path, ddps_err *err) {
    s->files = ddps_realloc(s->files, (size_t)(s->n + 1) * sizeof *s->files);
    if (ddps_st_open(&s->files[s->n], path, err) != 0) return -1;
    s->n++;
    return 0;
}

/* A sharded checkpoint: <base>.safetensors.index.json {"weight_map": {tensor: file}}. */
static int open_sharded(const char *dir, const char *index, st_set *s, ddps_err *err) {
    json_t *root;
    if (ddps_json_load(index, &root, err) != 0) return -1;
    json_t *map = json_object_get(root, "weight_map");
    if (!json_is_object(map)) {
        json_decref(root);
        return ddps_fail_data(err, "%s: no \"weight_map\" object", index);
    }
    /* unique file names, each a plain name inside dir */
    const char *key;
    json_t *v;
    char **names = NULL;
    int nn = 0, rc = 0;
    json_object_foreach(map, key, v) {
        const char *f = json_string_value(v);
        if (!f || !*f || strchr(f, '/') || strcmp(f, "..") == 0 || strcmp(f, ".") == 0) {
            rc = ddps_fail_data(err, "%s: tensor '%s' names an invalid shard file", index, key);
            break;
        }
        int seen = 0;
        for (int i = 0; i < nn; i++) seen |= strcmp(names[i], f) == 0;
        if (!seen) {
            names = ddps_realloc(names, (size_t)(nn + 1) * sizeof *names);
            names[nn++] = ddps_strdup(f);
        }
    }
    for (int i = 0; rc == 0 && i < nn; i++) {
        char *p = ddps_path_join(dir, names[i]);
        rc = st_set_add(s, p, err);
        free(p);
    }
    for (int i = 0; i < nn; i++) free(names[i]);
    free(names);
    json_decref(root);
    return rc;
}

static int open_weights(const char *dir, const char *base, st_set *s, ddps_err *err) {
    static const char *suffix[] = {".safetensors", ".fp16.safetensors"};
    memset(s, 0, sizeof *s);
    char name[256];
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, "%s%s", base, suffix[i]);
        char *p = ddps_path_join(dir, name);
        int ok = ddps_is_file(p);
        int rc = ok ? st_set_add(s, p, err) : 0;
        free(p);
        if (ok) return rc;
    }
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, "%s%s.index.json", base, suffix[i]);
        char *p = ddps_path_join(dir, name);
        int ok = ddps_is_file(p);
        int rc = ok ? open_sharded(dir, p, s, err) : 0;
        free(p);
        if (ok) return rc;
    }
    /* diffusers names pickles <base>.bin, transformers pytorch_model.bin */
    static const char *pickles[] = {"%s.bin", "pytorch_%s.bin", "%s.fp16.bin"};
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, pickles[i], base);
        char *p = ddps_path_join(dir, name);
        int bin = ddps_is_file(p);
        free(p);
        if (bin)
            return ddps_fail_data(err,
                             "%s: only %s (a pickle checkpoint): ddps reads safetensors only (convert it, e.g. with "
                             "diffusers' or transformers' save_pretrained(..., safe_serialization=True))",
                             dir, name);
    }
    return ddps_fail_data(err, "%s: no %s.safetensors", dir, base);
}

/* ---------- identity ---------- */

static uint64_t hash_file(uint64_t h, const char *path) {
    char *text;
    size_t len;
    ddps_err e;
    if (ddps_read_file(path, 64u << 20, &text, &len, &e) != 0) return ddps_fnv1a(h, path, strlen(path));
    h = ddps_fnv1a(h, text, len);
    free(text);
    return h;
}

static uint64_t hash_headers(uint64_t h, const st_set *s) {
    for (int i = 0; i < s->n; i++) h = ddps_fnv1a(h, (const char *)s->files[i].map + 8, s->files[i].data_start - 8);
    return h;
}

/* ---------- components ---------- */

int ddps_sd_declare(const char *component, const void *cfg, ddps_wsrc *ws, ddps_err *err) {
    ddps_ws_init_declare(ws);
    if (strcmp(component, "unet") == 0) {
        ddps_unet *m;
        if (ddps_unet_build(ws, cfg, &m, err) != 0) return -1;
        ddps_unet_free(NULL, m);
    } else if (strcmp(component, "vae") == 0) {
        ddps_vae *m;
        if (ddps_vae_build(ws, cfg, &m, err) != 0) return -1;
        ddps_vae_free(NULL, m);
    } else if (strcmp(component, "text_encoder") == 0) {
        ddps_clip *m;
        if (ddps_clip_build(ws, cfg, &m, err) != 0) return -1;
        ddps_clip_free(NULL, m);
    } else {
        return ddps_fail_usage(err, "unknown component %s", component);
    }
    return 0;
}

typedef int (*build_fn)(ddps_wsrc *, const void *, void **, ddps_err *);

static int build_unet(ddps_wsrc *ws, const void *c, void **m, ddps_err *e) { return ddps_unet_build(ws, c, (ddps_unet **)m, e); }
static int build_vae(ddps_wsrc *ws, const void *c, void **m, ddps_err *e) { return ddps_vae_build(ws, c, (ddps_vae **)m, e); }
static int build_clip(ddps_wsrc *ws, const void *c, void **m, ddps_err *e) { return ddps_clip_build(ws, c, (ddps_clip **)m, e); }

/* Adds a loaded component's non-finite weights to the model's tally (reported
 * in one line by finish()). */
static void tally_nonfinite(ddps_sd *sd, const char *sub, const ddps_wsrc *ws) {
    if (ws->nonfinite_tensors && sd->nonfinite_tensors == 0)
        snprintf(sd->nonfinite_first, sizeof sd->nonfinite_first, "%s/%s", sub, ws->nonfinite_first);
    sd->nonfinite += ws->nonfinite;
    sd->nonfinite_tensors += ws->nonfinite_tensors;
}

/* Checks a component's files against its declared tensors and, with a
 * backend, loads it. */
static int load_component(ddps_sd *sd, ddps_backend *be, const char *sub, const char *base, const void *cfg,
                          const char *alt_prefix, build_fn build, void **model, ddps_err *err) {
    char *dir = ddps_path_join(sd->dir, sub);
    st_set s;
    int rc = open_weights(dir, base, &s, err);
    ddps_wsrc decl;
    memset(&decl, 0, sizeof decl);
    if (rc == 0) rc = ddps_sd_declare(sub, cfg, &decl, err);
    if (rc == 0) rc = ddps_ws_check(&decl, s.files, s.n, alt_prefix, dir, err);
    if (rc == 0) sd->identity = hash_headers(sd->identity, &s);
    if (rc == 0 && be) {
        ddps_wsrc ws;
        ddps_ws_init_file(&ws, be, s.files, s.n, alt_prefix);
        rc = build(&ws, cfg, model, err);
        if (rc != 0) ddps_fail_prefix(err, "%s", dir);
        tally_nonfinite(sd, sub, &ws);
        ddps_ws_free(&ws);
    }
    ddps_ws_free(&decl);
    st_set_close(&s);
    free(dir);
    return rc;
}

static int read_config(ddps_sd *sd, const char *root_dir, const char *sub, const char *file, json_t **root,
                       ddps_err *err) {
    char *d = ddps_path_join(root_dir, sub), *p = ddps_path_join(d, file);
    int rc = ddps_json_load(p, root, err);
    if (rc == 0) sd->identity = hash_file(sd->identity, p);
    free(d);
    free(p);
    return rc;
}

/* The configs of the requested parts from a diffusers-layout folder (a model
 * folder, or --config's folder for a single file): a broken config is
 * reported before any weight is read. */
static int load_configs(ddps_sd *sd, const char *cdir, unsigned parts, ddps_err *err) {
    json_t *root = NULL;
    int rc = 0;
    if (rc == 0 && (parts & DDPS_PART_UNET)) {
        rc = read_config(sd, cdir, "unet", "config.json", &root, err);
        if (rc == 0) rc = ddps_unet_config_parse("unet/config.json", root, &sd->unet_cfg, err);
        if (rc != 0 && root) ddps_fail_prefix(err, "%s", cdir);
        if (root) json_decref(root), root = NULL;
    }
    if (rc == 0 && (parts & DDPS_PART_VAE)) {
        rc = read_config(sd, cdir, "vae", "config.json", &root, err);
        if (rc == 0) rc = ddps_vae_config_parse("vae/config.json", root, &sd->vae_cfg, err);
        if (rc != 0 && root) ddps_fail_prefix(err, "%s", cdir);
        if (root) json_decref(root), root = NULL;
    }
    if (rc == 0 && (parts & DDPS_PART_TEXT)) {
        rc = read_config(sd, cdir, "text_encoder", "config.json", &root, err);
        if (rc == 0) rc = ddps_clip_config_parse("text_encoder/config.json", root, &sd->clip_cfg, err);
        if (rc != 0 && root) ddps_fail_prefix(err, "%s", cdir);
        if (root) json_decref(root), root = NULL;
    }
    if (rc == 0 && (parts & DDPS_PART_SCHEDULER)) {
        rc = read_config(sd, cdir, "scheduler", "scheduler_config.json", &root, err);
        if (rc == 0) rc = ddps_sched_config_parse("scheduler/scheduler_config.json", root, &sd->sched_cfg, err);
        if (rc != 0 && root) ddps_fail_prefix(err, "%s", cdir);
        if (root) json_decref(root), root = NULL;
    }
    return rc;
}

/* alphas_cumprod from the scheduler configuration. */
static void make_schedule(ddps_sd *sd) {
    sd->alphas_cumprod = ddps_malloc((size_t)sd->sched_cfg.num_train_timesteps * sizeof(float));
    ddps_alphas_cumprod(&sd->sched_cfg, sd->alphas_cumprod);
}

/* The tokenizer from folder td (hashed into the identity), checked against
 * the text encoder's vocabulary when that is loaded too. */
static int load_tokenizer(ddps_sd *sd, const char *td, unsigned parts, ddps_err *err) {
    int rc = ddps_tokenizer_load(td, &sd->tok, err);
    if (rc == 0) {
        char *v = ddps_path_join(td, "vocab.json"), *m = ddps_path_join(td, "merges.txt");
        sd->identity = hash_file(hash_file(sd->identity, v), m);
        free(v);
        free(m);
    }
    if (rc == 0 && (parts & DDPS_PART_TEXT) && ddps_tokenizer_vocab_size(sd->tok) > sd->clip_cfg.vocab_size)
        rc = ddps_fail_data(err, "%s: the tokenizer has %d tokens but the text encoder only %d", sd->dir,
                       ddps_tokenizer_vocab_size(sd->tok), sd->clip_cfg.vocab_size);
    return rc;
}

/* An empty model record for dir (identity seeded). */
static ddps_sd *sd_new(const char *dir, unsigned parts) {
    ddps_sd *sd = ddps_calloc(1, sizeof *sd);
    sd->dir = ddps_strdup(dir);
    sd->parts = parts;
    sd->identity = DDPS_FNV_INIT;
    return sd;
}

/* Hands a loaded model out (identity text set; non-finite weights reported
 * in one line), or frees it when rc != 0. */
static int finish(ddps_sd *sd, ddps_backend *be, int rc, ddps_sd **out) {
    if (rc != 0) {
        ddps_sd_free(be, sd);
        return -1;
    }
    if (sd->nonfinite_tensors)
        ddps_warn("%s: %zu non-finite weight values (NaN or Inf) in %d tensor%s (first: %s)", sd->dir, sd->nonfinite,
                  sd->nonfinite_tensors, sd->nonfinite_tensors > 1 ? "s" : "", sd->nonfinite_first);
    snprintf(sd->identity_hex, sizeof sd->identity_hex, "%016llx", (unsigned long long)sd->identity);
    *out = sd;
    return 0;
}

/* A diffusers model folder. */
static int load_folder(const char *dir, ddps_backend *be, unsigned parts, ddps_sd **out, ddps_err *err) {
    ddps_sd *sd = sd_new(dir, parts);
    json_t *root = NULL;
    char *path = ddps_path_join(dir, "model_index.json");
    int rc = ddps_json_load(path, &root, err);
    free(path);
    if (root) json_decref(root);
    if (rc == 0) rc = load_configs(sd, dir, parts, err);
    if (rc == 0 && (parts & DDPS_PART_SCHEDULER)) make_schedule(sd);
    if (rc == 0 && (parts & DDPS_PART_TOKENIZER)) {
        char *td = ddps_path_join(dir, "tokenizer");
        rc = load_tokenizer(sd, td, parts, err);
        free(td);
    }
    if (rc == 0 && (parts & DDPS_PART_TEXT))
        rc = load_component(sd, be, "text_encoder", "model", &sd->clip_cfg, "text_model.", build_clip,
                            (void **)&sd->text, err);
    if (rc == 0 && (parts & DDPS_PART_VAE))
        rc = load_component(sd, be, "vae", "diffusion_pytorch_model", &sd->vae_cfg, NULL, build_vae,
                            (void **)&sd->vae, err);
    if (rc == 0 && (parts & DDPS_PART_UNET))
        rc = load_component(sd, be, "unet", "diffusion_pytorch_model", &sd->unet_cfg, NULL, build_unet,
                            (void **)&sd->unet, err);
    return finish(sd, be, rc, out);
}

/* One component of a single-file checkpoint: its view checked against the
 * declared tensors and, with a backend, loaded. */
static int load_single_component(ddps_sd *sd, ddps_single *s, ddps_backend *be, const char *sub, const void *cfg,
                                 build_fn build, void **model, ddps_err *err) {
    st_file view;
    char what[4096];
    snprintf(what, sizeof what, "%s (%s)", s->file.path, sub);
    int rc = ddps_single_view(s, sub, cfg, &view, err);
    ddps_wsrc decl;
    memset(&decl, 0, sizeof decl);
    if (rc == 0) rc = ddps_sd_declare(sub, cfg, &decl, err);
    if (rc == 0) rc = ddps_single_check_missing(s, sub, cfg, &view, what, err);
    if (rc == 0) rc = ddps_ws_check(&decl, &view, 1, NULL, what, err);
    if (rc == 0 && be) {
        ddps_wsrc ws;
        ddps_ws_init_file(&ws, be, &view, 1, NULL);
        rc = build(&ws, cfg, model, err);
        if (rc != 0) ddps_fail_prefix(err, "%s", what);
        tally_nonfinite(sd, sub, &ws);
        ddps_ws_free(&ws);
    }
    ddps_ws_free(&decl);
    ddps_single_view_free(&view);
    return rc;
}

/* A single-file checkpoint; configs from config_dir or inferred (SD v1.x). */
static int load_single(const char *file, const char *config_dir, ddps_backend *be, unsigned parts, ddps_sd **out,
                       ddps_err *err) {
    ddps_single s;
    if (ddps_single_open(file, &s, err) != 0) return -1;
    ddps_sd *sd = sd_new(file, parts);
    int rc = 0;
    if (config_dir) {
        if (!ddps_is_dir(config_dir))
            rc = ddps_fail_usage(err, "--config %s: not a folder (expected a diffusers-layout folder with the configs)",
                           config_dir);
        unsigned cparts = parts & (DDPS_PART_UNET | DDPS_PART_VAE | DDPS_PART_TEXT);
        char *sc = ddps_path_join(config_dir, "scheduler/scheduler_config.json");
        if (ddps_is_file(sc)) cparts |= parts & DDPS_PART_SCHEDULER;
        free(sc);
        if (rc == 0) rc = load_configs(sd, config_dir, cparts, err);
        if (rc == 0)
            rc = ddps_single_check_configs(&s, config_dir, (cparts & DDPS_PART_UNET) ? &sd->unet_cfg : NULL,
                                           (cparts & DDPS_PART_TEXT) ? &sd->clip_cfg : NULL, err);
        if (rc == 0 && (parts & DDPS_PART_SCHEDULER) && !(cparts & DDPS_PART_SCHEDULER))
            sd->sched_cfg = (ddps_sched_config){1000, 0.00085f, 0.012f, 1, 0};
    } else {
        if (parts & (DDPS_PART_UNET | DDPS_PART_VAE | DDPS_PART_TEXT))
            rc = ddps_single_infer_sd1(&s, &sd->unet_cfg, &sd->vae_cfg, &sd->clip_cfg, err);
        else
            ddps_sd15_clip_config(&sd->clip_cfg);
        sd->sched_cfg = (ddps_sched_config){1000, 0.00085f, 0.012f, 1, 0};
        if (rc == 0) {
            char *j[4] = {ddps_unet_config_json(&sd->unet_cfg), ddps_vae_config_json(&sd->vae_cfg),
                          ddps_clip_config_json(&sd->clip_cfg), ddps_sched_config_json(&sd->sched_cfg)};
            for (int i = 0; i < 4; i++) {
                sd->identity = ddps_fnv1a(sd->identity, j[i], strlen(j[i]));
                free(j[i]);
            }
        }
    }
    sd->identity = ddps_fnv1a(sd->identity, (const char *)s.file.map + 8, s.file.data_start - 8);
    if (rc == 0 && (parts & DDPS_PART_SCHEDULER)) {
        make_schedule(sd);
        int n = sd->sched_cfg.num_train_timesteps;
        float *fa = ddps_malloc((size_t)n * sizeof(float));
        if (ddps_single_alphas_cumprod(&s, n, fa) == 0) {
            double worst = 0;
            for (int i = 0; i < n; i++) {
                double d = fabs((double)fa[i] - sd->alphas_cumprod[i]) / sd->alphas_cumprod[i];
                if (d > worst) worst = d;
            }
            if (worst > 1e-3)
                ddps_warn("%s: its alphas_cumprod buffer differs from the scheduler configuration (relative %.2g): "
                          "using the configuration's",
                          file, worst);
        }
        free(fa);
    }
    if (rc == 0 && (parts & DDPS_PART_TOKENIZER)) {
        char *td = config_dir ? ddps_path_join(config_dir, "tokenizer") : NULL, *vj = NULL;
        if (td) vj = ddps_path_join(td, "vocab.json");
        if (!td || !ddps_is_file(vj)) {
            free(td);
            char *v = ddps_data_path("clip-tokenizer/vocab.json", err);
            td = v ? ddps_strdup(v) : NULL;
            if (td) *strrchr(td, '/') = 0;
            free(v);
        }
        free(vj);
        rc = td ? load_tokenizer(sd, td, parts, err) : -1;
        free(td);
    }
    if (rc == 0 && (parts & DDPS_PART_TEXT))
        rc = load_single_component(sd, &s, be, "text_encoder", &sd->clip_cfg, build_clip, (void **)&sd->text, err);
    if (rc == 0 && (parts & DDPS_PART_VAE))
        rc = load_single_component(sd, &s, be, "vae", &sd->vae_cfg, build_vae, (void **)&sd->vae, err);
    if (rc == 0 && (parts & DDPS_PART_UNET))
        rc = load_single_component(sd, &s, be, "unet", &sd->unet_cfg, build_unet, (void **)&sd->unet, err);
    if (rc == 0 && (parts & (DDPS_PART_TEXT | DDPS_PART_VAE | DDPS_PART_UNET)) ==
                       (DDPS_PART_TEXT | DDPS_PART_VAE | DDPS_PART_UNET))
        ddps_single_warn_unused(&s);
    ddps_single_close(&s);
    return finish(sd, be, rc, out);
}

/* path ends with ext (case-insensitive). */
static int has_ext(const char *path, const char *ext) {
    size_t n = strlen(path), e = strlen(ext);
    return n > e && strcasecmp(path + n - e, ext) == 0;
}

int ddps_sd_load(const char *model, ddps_backend *be, unsigned parts, ddps_sd **out, ddps_err *err) {
    return ddps_sd_load_ex(model, NULL, be, parts, out, err);
}

int ddps_sd_load_ex(const char *model, const char *config_dir, ddps_backend *be, unsigned parts, ddps_sd **out,
                    ddps_err *err) {
    *out = NULL;
    /* A local path that exists always wins over an org/name reading. */
    if (ddps_is_dir(model)) {
        if (config_dir)
            return ddps_fail_usage(err, "--config: %s is a model folder with its own configs (--config is for single-file "
                                  "checkpoints)",
                             model);
        return load_folder(model, be, parts, out, err);
    }
    if (ddps_is_file(model)) {
        static const char *pickles[] = {".ckpt", ".pt", ".pth", ".bin", ".pkl"};
        for (size_t i = 0; i < sizeof pickles / sizeof *pickles; i++)
            if (has_ext(model, pickles[i]))
                return ddps_fail_data(err,
                                 "%s: a Python pickle checkpoint, which ddps never loads (unpickling can run arbitrary "
                                 "code); convert it to safetensors first, e.g. in Python: "
                                 "safetensors.torch.save_file(torch.load(f, weights_only=True)[\"state_dict\"], "
                                 "\"model.safetensors\")",
                                 model);
        return load_single(model, config_dir, be, parts, out, err);
    }
    if (ddps_hf_is_repo_id(model)) {
        char *dir;
        if (ddps_hf_resolve(model, &dir, err) != 0) return -1;
        int rc = ddps_sd_load_ex(dir, config_dir, be, parts, out, err);
        if (rc != 0) ddps_fail_prefix(err, "%s", model);
        free(dir);
        return rc;
    }
    return ddps_fail_data(err,
                     "%s: no such folder or file (expected a diffusers model folder, a .safetensors single-file "
                     "checkpoint, or a Hugging Face id org/name in the local cache)",
                     model);
}

void ddps_sd_free(ddps_backend *be, ddps_sd *sd) {
    if (!sd) return;
    if (sd->text) ddps_clip_free(be, sd->text);
    if (sd->vae) ddps_vae_free(be, sd->vae);
    if (sd->unet) ddps_unet_free(be, sd->unet);
    if (sd->tok) ddps_tokenizer_free(sd->tok);
    free(sd->alphas_cumprod);
    free(sd->dir);
    free(sd);
}

int ddps_sd15_random(ddps_backend *be, unsigned parts, uint64_t seed, ddps_sd **out, ddps_err *err) {
    return ddps_sd_random(be, 15, parts, seed, out, err);
}

int ddps_sd_random(ddps_backend *be, int version, unsigned parts, uint64_t seed, ddps_sd **out, ddps_err *err) {
    if (version != 15 && version != 21) return ddps_fail_usage(err, "no built-in shapes for SD version %d (15 or 21)", version);
    ddps_sd *sd = ddps_calloc(1, sizeof *sd);
    sd->dir = ddps_strdup(version == 21 ? "(random SD 2.1)" : "(random SD v1.5)");
    sd->parts = parts;
    if (version == 21) {
        ddps_sd21_unet_config(&sd->unet_cfg);
        ddps_sd21_clip_config(&sd->clip_cfg);
    } else {
        ddps_sd15_unet_config(&sd->unet_cfg);
        ddps_sd15_clip_config(&sd->clip_cfg);
    }
    ddps_sd15_vae_config(&sd->vae_cfg);
    sd->sched_cfg = (ddps_sched_config){1000, 0.00085f, 0.012f, 1, version == 21};
    sd->alphas_cumprod = ddps_malloc(1000 * sizeof(float));
    ddps_alphas_cumprod(&sd->sched_cfg, sd->alphas_cumprod);
    int rc = 0;
    ddps_wsrc ws;
    if (parts & DDPS_PART_TEXT) {
        ddps_ws_init_random(&ws, be, seed);
        rc = ddps_clip_build(&ws, &sd->clip_cfg, &sd->text, err);
        ddps_ws_free(&ws);
    }
    if (rc == 0 && (parts & DDPS_PART_VAE)) {
        ddps_ws_init_random(&ws, be, seed);
        rc = ddps_vae_build(&ws, &sd->vae_cfg, &sd->vae, err);
        ddps_ws_free(&ws);
    }
    if (rc == 0 && (parts & DDPS_PART_UNET)) {
        ddps_ws_init_random(&ws, be, seed);
        rc = ddps_unet_build(&ws, &sd->unet_cfg, &sd->unet, err);
        ddps_ws_free(&ws);
    }
    if (rc != 0) {
        ddps_sd_free(be, sd);
        return -1;
    }
    sd->identity = ddps_seed_mix(version == 21 ? 0x5d21 : 0x5d15, seed);
    snprintf(sd->identity_hex, sizeof sd->identity_hex, "%016llx", (unsigned long long)sd->identity);
    *out = sd;
    return 0;
}

void ddps_sd_to_noise_pred(ddps_backend *be, const ddps_sd *sd, ddps_tensor *e, const ddps_tensor *x_t,
                           const float *ts) {
    if (!sd->sched_cfg.v_prediction) return;
    for (int i = 0; i < e->n; i++) {
        float a, b;
        ddps_noise_coefs(sd->alphas_cumprod, (int)ts[i], &a, &b);
        ddps_tensor ei = ddps_slice(be, e, i, 1), xi = ddps_slice(be, x_t, i, 1);
        be->ops->axpby(be, &ei, a, &ei, b, &xi);
    }
}
