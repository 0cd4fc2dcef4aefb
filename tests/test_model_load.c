/* The model folder loader (models/sd.h) and the single tensor list behind it.
 *
 * 1. The tensors the loader expects for SD v1.5's configs (a WS_DECLARE walk
 *    of each builder) are exactly diffusers' list: names, shapes, counts and
 *    parameter totals of golden/sd15_diffusers_shapes.txt.
 * 2. Hostile model folders (a copy of golden/tiny-sd with one thing broken)
 *    fail through `ddps probe` with a non-zero exit and one line naming the
 *    file or tensor, never a crash; harmless oddities (an extra tensor, a
 *    NaN weight) only warn.
 * 3. The layouts real checkpoints come in load and compute the same: sharded
 *    weights with an index, the ".fp16" variant file name, text encoder
 *    tensors prefixed "text_model.". */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_util.h"
#include "models/sd.h"

static char GOLDEN[2048];
static char MODEL[2048]; /* golden/tiny-sd */

/* ------------------------------------------------------------------ */
/* 1. The declared tensor list against diffusers' list                 */

typedef struct {
    char name[256];
    int ndim;
    int64_t shape[4];
} entry;

typedef struct {
    entry *e;
    int n, cap;
    long long params;
} entry_list;

static void list_add(entry_list *l, const char *name, int ndim, const int64_t *shape) {
    if (l->n == l->cap) l->e = ddps_realloc(l->e, (size_t)(l->cap = l->cap ? 2 * l->cap : 256) * sizeof *l->e);
    entry *e = &l->e[l->n++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->ndim = ndim;
    memset(e->shape, 0, sizeof e->shape);
    long long p = 1;
    for (int i = 0; i < ndim && i < 4; i++) e->shape[i] = shape[i], p *= shape[i];
    l->params += p;
}

static int entry_cmp(const void *a, const void *b) { return strcmp(((const entry *)a)->name, ((const entry *)b)->name); }

/* Reads the shapes file: "component/name 320x4x3x3" lines and
 * "# component: N tensors, P parameters" lines. */
static void read_shapes_file(const char *component, entry_list *l, int *count, long long *params) {
    char path[4096];
    snprintf(path, sizeof path, "%s/sd15_diffusers_shapes.txt", GOLDEN);
    FILE *f = fopen(path, "r");
    CHECKF(f != NULL, "cannot open %s", path);
    if (!f) return;
    char line[1024], prefix[64];
    size_t pl = (size_t)snprintf(prefix, sizeof prefix, "%s/", component);
    *count = -1, *params = -1;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0] == '#') {
            char comp[64];
            int n;
            long long p;
            if (sscanf(line, "# %63[^:]: %d tensors, %lld parameters", comp, &n, &p) == 3 && strcmp(comp, component) == 0)
                *count = n, *params = p;
            continue;
        }
        if (strncmp(line, prefix, pl) != 0) continue;
        char *sp = strchr(line, ' ');
        CHECKF(sp != NULL, "%s: bad line '%s'", path, line);
        if (!sp) continue;
        *sp = 0;
        int64_t shape[4];
        int nd = 0;
        for (char *p = sp + 1; *p && nd < 4;) {
            char *end;
            shape[nd++] = strtoll(p, &end, 10);
            CHECKF(end != p && (*end == 'x' || *end == 0), "%s: bad shape in '%s'", path, line);
            if (end == p) break;
            p = *end == 'x' ? end + 1 : end;
        }
        list_add(l, line + pl, nd, shape);
    }
    fclose(f);
}

static json_t *sd15_config(const char *component) {
    char path[4096];
    snprintf(path, sizeof path, "%s/sd15_configs.json", GOLDEN);
    json_t *root;
    ddps_err err;
    if (ddps_json_load(path, &root, &err) != 0) {
        CHECKF(0, "%s", err.msg);
        return NULL;
    }
    json_t *o = json_incref(json_object_get(root, component));
    json_decref(root);
    CHECKF(json_is_object(o), "sd15_configs.json: no object \"%s\"", component);
    return o;
}

static void compare_lists(const char *component, const ddps_wsrc *ws) {
    entry_list want = {0}, got = {0};
    int count = -1;
    long long params = -1;
    read_shapes_file(component, &want, &count, &params);
    for (int i = 0; i < ws->n; i++) list_add(&got, ws->list[i].name, ws->list[i].ndim, ws->list[i].shape);
    fprintf(stderr, "   %-12s declared %d tensors, %lld parameters; diffusers: %d (# line %d), %lld (# line %lld)\n",
            component, got.n, got.params, want.n, count, want.params, params);
    CHECKF(want.n == count && want.params == params, "%s: the shapes file disagrees with its own # line", component);
    CHECKF(got.n == count, "%s: %d tensors declared, diffusers has %d", component, got.n, count);
    CHECKF(got.params == params, "%s: %lld parameters declared, diffusers has %lld", component, got.params, params);
    qsort(want.e, (size_t)want.n, sizeof *want.e, entry_cmp);
    qsort(got.e, (size_t)got.n, sizeof *got.e, entry_cmp);
    int dups = 0;
    for (int i = 1; i < got.n; i++) dups += strcmp(got.e[i - 1].name, got.e[i].name) == 0;
    CHECKF(dups == 0, "%s: %d names declared twice", component, dups);
    /* A merge of the two sorted lists: every name in both, with one shape. */
    int i = 0, j = 0, missing = 0, extra = 0, shape = 0;
    while (i < want.n || j < got.n) {
        int c = i == want.n ? 1 : j == got.n ? -1 : strcmp(want.e[i].name, got.e[j].name);
        if (c < 0) {
            if (missing++ < 5) fprintf(stderr, "   %s: not declared: %s\n", component, want.e[i].name);
            i++;
        } else if (c > 0) {
            if (extra++ < 5) fprintf(stderr, "   %s: declared but not in diffusers: %s\n", component, got.e[j].name);
            j++;
        } else {
            const entry *a = &want.e[i], *b = &got.e[j];
            if (a->ndim != b->ndim || memcmp(a->shape, b->shape, sizeof a->shape) != 0) {
                if (shape++ < 5)
                    fprintf(stderr, "   %s: %s is %s in diffusers, declared %s\n", component, a->name,
                            eu_shape_str(a->ndim, a->shape), eu_shape_str(b->ndim, b->shape));
            }
            i++, j++;
        }
    }
    CHECKF(missing == 0 && extra == 0 && shape == 0, "%s: %d missing, %d extra, %d with another shape", component,
           missing, extra, shape);
    free(want.e);
    free(got.e);
}

static void sd15_tensor_lists(void) {
    ddps_err err = {{0}};
    ddps_unet_config uc, uc15;
    ddps_vae_config vc, vc15;
    ddps_clip_config cc, cc15;
    json_t *u = sd15_config("unet"), *v = sd15_config("vae"), *t = sd15_config("text_encoder");
    int ok_u = u && ddps_unet_config_parse("sd15 unet", u, &uc, &err) == 0;
    CHECKF(ok_u, "%s", err.msg);
    int ok_v = v && ddps_vae_config_parse("sd15 vae", v, &vc, &err) == 0;
    CHECKF(ok_v, "%s", err.msg);
    int ok_t = t && ddps_clip_config_parse("sd15 text_encoder", t, &cc, &err) == 0;
    CHECKF(ok_t, "%s", err.msg);
    json_decref(u), json_decref(v), json_decref(t);
    /* The built-in SD v1.5 configs (random-weight benchmarks, test_unet_full) are the real ones. */
    ddps_sd15_unet_config(&uc15);
    ddps_sd15_vae_config(&vc15);
    ddps_sd15_clip_config(&cc15);
    CHECK(!ok_u || memcmp(&uc, &uc15, sizeof uc) == 0);
    CHECK(!ok_v || memcmp(&vc, &vc15, sizeof vc) == 0);
    CHECK(!ok_t || memcmp(&cc, &cc15, sizeof cc) == 0);
    static const char *names[3] = {"unet", "vae", "text_encoder"};
    const void *cfgs[3] = {&uc, &vc, &cc};
    int oks[3] = {ok_u, ok_v, ok_t};
    for (int k = 0; k < 3; k++) {
        if (!oks[k]) continue;
        ddps_wsrc ws;
        CHECKF(ddps_sd_declare(names[k], cfgs[k], &ws, &err) == 0, "%s", err.msg);
        compare_lists(names[k], &ws);
        ddps_ws_free(&ws);
    }
    ddps_wsrc ws;
    CHECK(ddps_sd_declare("controlnet", &uc, &ws, &err) != 0 && strstr(err.msg, "controlnet"));
    ddps_ws_free(&ws);
}

/* ------------------------------------------------------------------ */
/* Model folders                                                        */

/* A writable copy of tiny-sd in a fresh folder (the golden files are
 * read-only); returns its path, which drop_model deletes and frees. */
static char *copy_model(const char *name) {
    char dir[2200];
    snprintf(dir, sizeof dir, "%s/m", t_tmpdir(name));
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s' && chmod -R u+w '%s'", MODEL, dir, dir);
    CHECKF(system(cmd) == 0, "%s failed", cmd);
    return ddps_strdup(dir);
}

static void drop_model(char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    free(dir);
}

static const char *path_in(const char *dir, const char *rel) {
    static char buf[4][4096];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 4096, "%s/%s", dir, rel);
    return b;
}

static void put_text(const char *dir, const char *rel, const char *text) {
    const char *p = path_in(dir, rel);
    unlink(p);
    t_write(p, text, strlen(text));
}

/* Edits a JSON config of the copy: sets key to the JSON value text (NULL deletes it). */
static void set_config_key(const char *dir, const char *rel, const char *key, const char *value) {
    const char *p = path_in(dir, rel);
    json_error_t je;
    json_t *root = json_load_file(p, 0, &je);
    CHECKF(root != NULL, "%s: %s", p, je.text);
    if (!root) return;
    if (value)
        json_object_set_new(root, key, json_loads(value, JSON_DECODE_ANY, &je));
    else
        json_object_del(root, key);
    char *text = json_dumps(root, JSON_INDENT(2));
    put_text(dir, rel, text);
    free(text);
    json_decref(root);
}

/* Runs the probe that loads `component` of model dir; output in *out. */
static int probe_component(const char *dir, const char *component, char **out) {
    char args[16384];
    const char *o = path_in(dir, "../out.safetensors");
    if (strcmp(component, "unet") == 0)
        snprintf(args, sizeof args, "unet --model '%s' --in '%s/unet.safetensors' --out '%s'", dir, GOLDEN, o);
    else if (strcmp(component, "vae") == 0)
        snprintf(args, sizeof args, "vae --model '%s' --in '%s/vae.safetensors' --out '%s'", dir, GOLDEN, o);
    else if (strcmp(component, "text_encoder") == 0)
        snprintf(args, sizeof args, "text --model '%s' --in '%s/text.safetensors' --out '%s'", dir, GOLDEN, o);
    else if (strcmp(component, "tokenizer") == 0)
        snprintf(args, sizeof args, "tokenize --model '%s' 'An image of tench.'", dir);
    else
        snprintf(args, sizeof args, "stage1 --model '%s' --in '%s/stage1.safetensors' --out '%s'", dir, GOLDEN, o);
    return eu_probe(args, out);
}

/* Probe must fail with one line containing every needle. */
static void expect_probe_fail(const char *label, const char *dir, const char *component, const char *const *needles,
                              int n) {
    char *out = NULL;
    int rc = probe_component(dir, component, &out);
    eu_expect_fail(label, rc, out, needles, n);
    fprintf(stderr, "   %-22s -> %s", label, out);
    free(out);
}

/* Probe must succeed; returns its output (caller frees). */
static char *expect_probe_ok(const char *label, const char *dir, const char *component) {
    char *out = NULL;
    int rc = probe_component(dir, component, &out);
    CHECKF(rc == 0 && eu_no_crash(rc, out), "%s: probe failed (rc %d): %s", label, rc, out);
    return out;
}

/* Golden outputs of the component's probe (written to dir/../out.safetensors). */
static void expect_golden(const char *label, const char *dir, const char *component) {
    const char *o = path_in(dir, "../out.safetensors");
    char ref[4096];
    if (strcmp(component, "unet") == 0) {
        snprintf(ref, sizeof ref, "%s/unet.safetensors", GOLDEN);
        eu_compare(label, o, ref, "eps", 1e-4);
        eu_compare(label, o, ref, "up1", 1e-4);
    } else if (strcmp(component, "vae") == 0) {
        snprintf(ref, sizeof ref, "%s/vae.safetensors", GOLDEN);
        eu_compare(label, o, ref, "mean", 1e-4);
    } else {
        snprintf(ref, sizeof ref, "%s/text.safetensors", GOLDEN);
        eu_compare(label, o, ref, "last_hidden_state", 1e-4);
    }
}

/* Rewrites a safetensors file with changes: tensors left out, a prefix on
 * every name, one tensor with a NaN, one with another shape, one extra. */
typedef struct {
    const char *const *drop;
    int ndrop;
    const char *prefix;
    const char *nan;       /* its first element becomes NaN */
    const char *transpose; /* a 4-d tensor written with dims 0 and 1 swapped (same size) */
    const char *halve;     /* a 1-d tensor written with half its length */
    const char *extra;     /* an extra [4] f32 tensor */
    const char *const (*rename)[2]; /* name substrings replaced: {from, to} */
    int nrename;
    const char *as_1x1;    /* a 2-d tensor written as [out, in, 1, 1] (its name after renaming) */
} st_edit;

/* name with the first matching {from, to} substitution applied (heap). */
static char *renamed(const st_edit *ed, const char *name) {
    size_t cap = strlen(name) + 256 + (ed->prefix ? strlen(ed->prefix) : 0);
    char *out = ddps_malloc(cap);
    snprintf(out, cap, "%s%s", ed->prefix ? ed->prefix : "", name);
    for (int k = 0; k < ed->nrename; k++) {
        const char *p = strstr(name, ed->rename[k][0]);
        if (!p) continue;
        snprintf(out, cap, "%s%.*s%s%s", ed->prefix ? ed->prefix : "", (int)(p - name), name, ed->rename[k][1],
                 p + strlen(ed->rename[k][0]));
        break;
    }
    return out;
}

static void rewrite(const char *path, const st_edit *ed) {
    st_file f;
    ddps_err err;
    if (ddps_st_open(&f, path, &err) != 0) {
        CHECKF(0, "%s", err.msg);
        return;
    }
    st_out *o = ddps_calloc((size_t)f.n + 1, sizeof *o);
    char **names = ddps_calloc((size_t)f.n + 1, sizeof *names);
    void *nan_copy = NULL;
    int n = 0, dropped = 0;
    for (int i = 0; i < f.n; i++) {
        const st_tensor *t = &f.t[i];
        int drop = 0;
        for (int k = 0; k < ed->ndrop; k++) drop |= strcmp(t->name, ed->drop[k]) == 0;
        if (drop) {
            dropped++;
            continue;
        }
        names[n] = renamed(ed, t->name);
        o[n] = (st_out){names[n], t->dtype, t->ndim, {0}, t->data};
        memcpy(o[n].shape, t->shape, sizeof o[n].shape);
        if (ed->as_1x1 && strcmp(names[n], ed->as_1x1) == 0 && t->ndim == 2) o[n].ndim = 4, o[n].shape[2] = o[n].shape[3] = 1;
        if (ed->nan && strcmp(t->name, ed->nan) == 0) {
            nan_copy = ddps_malloc(t->nbytes);
            memcpy(nan_copy, t->data, t->nbytes);
            if (t->dtype == ST_F16) ((uint16_t *)nan_copy)[0] = 0x7e00;
            if (t->dtype == ST_BF16) ((uint16_t *)nan_copy)[0] = 0x7fc0;
            if (t->dtype == ST_F32) ((float *)nan_copy)[0] = NAN;
            o[n].data = nan_copy;
        }
        if (ed->transpose && strcmp(t->name, ed->transpose) == 0 && t->ndim == 4)
            o[n].shape[0] = t->shape[1], o[n].shape[1] = t->shape[0];
        if (ed->halve && strcmp(t->name, ed->halve) == 0 && t->ndim == 1) o[n].shape[0] = t->shape[0] / 2;
        n++;
    }
    CHECKF(dropped == ed->ndrop, "%s: dropped %d of %d tensors", path, dropped, ed->ndrop);
    static const float four[4] = {1, 2, 3, 4};
    if (ed->extra) o[n++] = (st_out){ed->extra, ST_F32, 1, {4}, four};
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    CHECKF(ddps_st_write(tmp, o, n, &err) == 0, "%s", err.msg);
    ddps_st_close(&f);
    CHECK(rename(tmp, path) == 0);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    free(o);
    free(nan_copy);
}

#define NEEDLES(...) (const char *[]){__VA_ARGS__}, (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *))

static void broken_configs(void) {
    char *dir = copy_model("load_config");
    put_text(dir, "unet/config.json", "{\"in_channels\": 4, oops");
    expect_probe_fail("config not JSON", dir, "unet", NEEDLES("unet/config.json", "not valid JSON"));
    drop_model(dir);

    dir = copy_model("load_config");
    set_config_key(dir, "unet/config.json", "layers_per_block", "\"two\"");
    expect_probe_fail("config wrong type", dir, "unet", NEEDLES("unet/config.json", "layers_per_block"));
    set_config_key(dir, "unet/config.json", "layers_per_block", "2");
    set_config_key(dir, "unet/config.json", "block_out_channels", "{\"a\": 1}");
    expect_probe_fail("config not a list", dir, "unet", NEEDLES("unet/config.json", "block_out_channels"));
    drop_model(dir);

    dir = copy_model("load_config");
    set_config_key(dir, "unet/config.json", "class_embed_type", "\"timestep\"");
    expect_probe_fail("class_embed_type", dir, "unet", NEEDLES("unet/config.json", "class_embed_type"));
    drop_model(dir);

    dir = copy_model("load_config");
    set_config_key(dir, "unet/config.json", "down_block_types", "[\"CrossAttnDownBlock2D\", \"DownBlock2D\"]");
    expect_probe_fail("block count mismatch", dir, "unet", NEEDLES("unet/config.json", "down_block_types"));
    drop_model(dir);

    dir = copy_model("load_config");
    set_config_key(dir, "unet/config.json", "attention_head_dim", "[8, 8]");
    expect_probe_fail("heads list length", dir, "unet", NEEDLES("unet/config.json", "attention_head_dim"));
    drop_model(dir);

    dir = copy_model("load_config");
    set_config_key(dir, "vae/config.json", "down_block_types", "[\"DownEncoderBlock2D\", \"AttnDownEncoderBlock2D\", "
                                                               "\"DownEncoderBlock2D\", \"DownEncoderBlock2D\"]");
    expect_probe_fail("vae block type", dir, "vae", NEEDLES("vae/config.json", "AttnDownEncoderBlock2D"));
    drop_model(dir);

    dir = copy_model("load_config");
    set_config_key(dir, "text_encoder/config.json", "hidden_act", "\"relu\"");
    expect_probe_fail("text hidden_act", dir, "text_encoder", NEEDLES("text_encoder/config.json", "hidden_act"));
    set_config_key(dir, "text_encoder/config.json", "hidden_act", "\"quick_gelu\"");
    set_config_key(dir, "text_encoder/config.json", "num_attention_heads", "5");
    expect_probe_fail("text heads", dir, "text_encoder", NEEDLES("text_encoder/config.json", "5 heads"));
    drop_model(dir);

    dir = copy_model("load_config");
    /* epsilon and v_prediction are supported (v: SD 2.x, see test_golden); "sample" is not */
    set_config_key(dir, "scheduler/scheduler_config.json", "prediction_type", "\"sample\"");
    expect_probe_fail("prediction sample", dir, "unet", NEEDLES("scheduler_config.json", "prediction_type"));
    drop_model(dir);

    dir = copy_model("load_config");
    unlink(path_in(dir, "unet/config.json"));
    expect_probe_fail("no unet config", dir, "unet", NEEDLES("unet/config.json"));
    drop_model(dir);
}

static void broken_files(void) {
    char *dir = copy_model("load_files");
    unlink(path_in(dir, "model_index.json"));
    expect_probe_fail("no model_index.json", dir, "unet", NEEDLES("model_index.json"));
    drop_model(dir);

    dir = copy_model("load_files");
    unlink(path_in(dir, "unet/diffusion_pytorch_model.safetensors"));
    expect_probe_fail("no unet weights", dir, "unet", NEEDLES("unet", "diffusion_pytorch_model.safetensors"));
    drop_model(dir);

    /* weights cut in half: the header promises more than the file has */
    dir = copy_model("load_files");
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "truncate -s 3000000 '%s'", path_in(dir, "unet/diffusion_pytorch_model.safetensors"));
    CHECK(system(cmd) == 0);
    expect_probe_fail("truncated weights", dir, "unet", NEEDLES("unet/diffusion_pytorch_model.safetensors"));
    drop_model(dir);

    /* only a pickle checkpoint */
    dir = copy_model("load_files");
    CHECK(rename(path_in(dir, "unet/diffusion_pytorch_model.safetensors"),
                 path_in(dir, "unet/diffusion_pytorch_model.bin")) == 0);
    expect_probe_fail(".bin-only unet", dir, "unet", NEEDLES("unet", ".bin", "safetensors"));
    drop_model(dir);

    /* transformers names the text encoder's pickle pytorch_model.bin */
    dir = copy_model("load_files");
    CHECK(rename(path_in(dir, "text_encoder/model.safetensors"), path_in(dir, "text_encoder/pytorch_model.bin")) == 0);
    expect_probe_fail(".bin-only text encoder", dir, "text_encoder", NEEDLES("text_encoder", ".bin", "safetensors"));
    drop_model(dir);

    /* garbage tokenizer files */
    dir = copy_model("load_files");
    put_text(dir, "tokenizer/vocab.json", "\x89PNG garbage {{{");
    expect_probe_fail("garbage vocab.json", dir, "tokenizer", NEEDLES("vocab.json"));
    drop_model(dir);
    dir = copy_model("load_files");
    put_text(dir, "tokenizer/merges.txt", "#version: 0.2\n\xe2\x98\x83\xe2\x98\x83 \xe2\x98\x84\n");
    expect_probe_fail("garbage merges.txt", dir, "tokenizer", NEEDLES("merges.txt"));
    drop_model(dir);
    dir = copy_model("load_files");
    put_text(dir, "tokenizer/vocab.json", "[1, 2, 3]");
    expect_probe_fail("vocab.json a list", dir, "stage1", NEEDLES("vocab.json"));
    drop_model(dir);
}

static void broken_tensors(void) {
    /* three tensors missing: all named in one line */
    char *dir = copy_model("load_tensors");
    static const char *gone[] = {"conv_in.bias", "mid_block.attentions.0.proj_out.weight",
                                 "up_blocks.3.resnets.2.conv2.weight"};
    st_edit ed = {.drop = gone, .ndrop = 3};
    rewrite(path_in(dir, "unet/diffusion_pytorch_model.safetensors"), &ed);
    expect_probe_fail("3 tensors missing", dir, "unet", NEEDLES("3 tensors", gone[0], gone[1], gone[2], "missing"));
    /* the same through the library, without a backend (a check of the folder) */
    ddps_sd *sd = NULL;
    ddps_err err = {{0}};
    CHECK(ddps_sd_load(dir, NULL, DDPS_PART_UNET, &sd, &err) != 0 && sd == NULL);
    CHECKF(strstr(err.msg, gone[0]) && strstr(err.msg, gone[1]) && strstr(err.msg, gone[2]) && !strchr(err.msg, '\n'),
           "%s", err.msg);
    /* the other parts still load */
    CHECKF(ddps_sd_load(dir, NULL, DDPS_PART_VAE | DDPS_PART_TEXT | DDPS_PART_TOKENIZER, &sd, &err) == 0, "%s",
           err.msg);
    ddps_sd_free(NULL, sd);
    drop_model(dir);

    /* wrong shapes: the same element count transposed, and a short bias */
    dir = copy_model("load_tensors");
    st_edit ed2 = {.transpose = "conv_in.weight", .halve = "conv_out.bias"};
    rewrite(path_in(dir, "unet/diffusion_pytorch_model.safetensors"), &ed2);
    expect_probe_fail("wrong shapes", dir, "unet",
                      NEEDLES("conv_in.weight", "4x32x3x3", "32x4x3x3", "conv_out.bias", "shape 2,", "expected 4"));
    drop_model(dir);

    /* an extra tensor: a warning, and the model still computes the golden output */
    dir = copy_model("load_tensors");
    st_edit ed3 = {.extra = "some_adapter.lora_A.weight"};
    rewrite(path_in(dir, "unet/diffusion_pytorch_model.safetensors"), &ed3);
    char *out = expect_probe_ok("extra tensor", dir, "unet");
    CHECKF(strstr(out, "some_adapter.lora_A.weight") && strstr(out, "not used"), "no warning: %s", out);
    CHECKF(eu_count_lines(out) == 1, "expected one warning line: %s", out);
    free(out);
    expect_golden("extra", dir, "unet");
    drop_model(dir);

    /* a NaN in a weight: a warning naming it; loading succeeds */
    dir = copy_model("load_tensors");
    st_edit ed4 = {.nan = "down_blocks.1.resnets.0.conv1.weight"};
    rewrite(path_in(dir, "unet/diffusion_pytorch_model.safetensors"), &ed4);
    out = expect_probe_ok("NaN weight", dir, "unet");
    CHECKF(strstr(out, "down_blocks.1.resnets.0.conv1.weight") && strstr(out, "non-finite"), "no warning: %s", out);
    free(out);
    /* the load alone, in this process */
    ddps_backend *be = ddps_cpu_backend_new(DDPS_PREC_F32, 0, &err);
    CHECKF(be != NULL, "%s", err.msg);
    if (be) {
        eu_capture cap;
        eu_capture_start(&cap, path_in(dir, "../stderr.txt"));
        int rc = ddps_sd_load(dir, be, DDPS_PART_UNET, &sd, &err);
        char *warn = eu_capture_end(&cap);
        CHECKF(rc == 0, "%s", err.msg);
        CHECKF(strstr(warn, "down_blocks.1.resnets.0.conv1.weight") && strstr(warn, "non-finite") &&
                   eu_count_lines(warn) == 1,
               "expected one warning: %s", warn);
        free(warn);
        ddps_sd_free(be, sd);
        ddps_backend_free(be);
    }
    drop_model(dir);

    /* a tensor of an integer dtype */
    dir = copy_model("load_tensors");
    {
        st_file f;
        const char *p = path_in(dir, "vae/diffusion_pytorch_model.safetensors");
        CHECK(ddps_st_open(&f, p, &err) == 0);
        st_out *o = ddps_calloc((size_t)f.n, sizeof *o);
        int32_t zeros[64] = {0};
        for (int i = 0; i < f.n; i++) {
            o[i] = (st_out){f.t[i].name, f.t[i].dtype, f.t[i].ndim, {0}, f.t[i].data};
            memcpy(o[i].shape, f.t[i].shape, sizeof o[i].shape);
            if (strcmp(f.t[i].name, "quant_conv.bias") == 0) o[i].dtype = ST_I32, o[i].data = zeros;
        }
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s.new", p);
        CHECKF(ddps_st_write(tmp, o, f.n, &err) == 0, "%s", err.msg);
        ddps_st_close(&f);
        free(o);
        CHECK(rename(tmp, p) == 0);
    }
    expect_probe_fail("integer weight", dir, "vae", NEEDLES("quant_conv.bias", "dtype"));
    drop_model(dir);
}

/* Splits a weights file into two shards and an index, as save_pretrained does. */
static void shard(const char *dir, const char *base) {
    char src[4200], idx[4200];
    snprintf(src, sizeof src, "%s/%s.safetensors", dir, base);
    snprintf(idx, sizeof idx, "%s/%s.safetensors.index.json", dir, base);
    st_file f;
    ddps_err err;
    if (ddps_st_open(&f, src, &err) != 0) {
        CHECKF(0, "%s", err.msg);
        return;
    }
    st_out *o[2];
    int n[2] = {0, 0};
    json_t *map = json_object();
    for (int s = 0; s < 2; s++) o[s] = ddps_calloc((size_t)f.n, sizeof *o[s]);
    for (int i = 0; i < f.n; i++) {
        int s = i % 2; /* interleaved, so every block spans both files */
        st_out *t = &o[s][n[s]++];
        *t = (st_out){f.t[i].name, f.t[i].dtype, f.t[i].ndim, {0}, f.t[i].data};
        memcpy(t->shape, f.t[i].shape, sizeof t->shape);
        char fn[256];
        snprintf(fn, sizeof fn, "%s-%05d-of-00002.safetensors", base, s + 1);
        json_object_set_new(map, f.t[i].name, json_string(fn));
    }
    for (int s = 0; s < 2; s++) {
        char p[4400];
        snprintf(p, sizeof p, "%s/%s-%05d-of-00002.safetensors", dir, base, s + 1);
        CHECKF(ddps_st_write(p, o[s], n[s], &err) == 0, "%s", err.msg);
        free(o[s]);
    }
    ddps_st_close(&f);
    json_t *root = json_pack("{s:{s:i}, s:o}", "metadata", "total_size", 0, "weight_map", map);
    CHECK(json_dump_file(root, idx, JSON_INDENT(2)) == 0);
    json_decref(root);
    CHECK(unlink(src) == 0);
}

static void layouts(void) {
    /* the reference: the probe's own output on the untouched model */
    char *ref_dir = copy_model("load_ref");
    char ref_unet[4200], ref_text[4200];
    free(expect_probe_ok("reference unet", ref_dir, "unet"));
    snprintf(ref_unet, sizeof ref_unet, "%s", path_in(ref_dir, "../unet_ref.safetensors"));
    CHECK(rename(path_in(ref_dir, "../out.safetensors"), ref_unet) == 0);
    free(expect_probe_ok("reference text", ref_dir, "text_encoder"));
    snprintf(ref_text, sizeof ref_text, "%s", path_in(ref_dir, "../text_ref.safetensors"));
    CHECK(rename(path_in(ref_dir, "../out.safetensors"), ref_text) == 0);

    /* sharded unet and text encoder: the same outputs, bit for bit */
    char *dir = copy_model("load_sharded");
    shard(path_in(dir, "unet"), "diffusion_pytorch_model");
    shard(path_in(dir, "text_encoder"), "model");
    free(expect_probe_ok("sharded unet", dir, "unet"));
    expect_golden("sharded", dir, "unet");
    eu_compare("sharded", path_in(dir, "../out.safetensors"), ref_unet, "eps", 0);
    free(expect_probe_ok("sharded text", dir, "text_encoder"));
    eu_compare("sharded", path_in(dir, "../out.safetensors"), ref_text, "last_hidden_state", 0);
    /* an index that names a shard that is not there */
    char *out = NULL;
    CHECK(unlink(path_in(dir, "unet/diffusion_pytorch_model-00002-of-00002.safetensors")) == 0);
    expect_probe_fail("missing shard", dir, "unet", NEEDLES("diffusion_pytorch_model-00002-of-00002.safetensors"));
    /* an index that points outside the folder */
    put_text(dir, "unet/diffusion_pytorch_model.safetensors.index.json",
             "{\"weight_map\": {\"conv_in.weight\": \"../../text_encoder/model-00001-of-00002.safetensors\"}}");
    expect_probe_fail("shard outside folder", dir, "unet", NEEDLES("index.json", "conv_in.weight"));
    put_text(dir, "unet/diffusion_pytorch_model.safetensors.index.json", "{\"weight_map\": [1, 2]}");
    expect_probe_fail("index without map", dir, "unet", NEEDLES("index.json", "weight_map"));
    drop_model(dir);

    /* the .fp16 variant file name */
    dir = copy_model("load_fp16");
    CHECK(rename(path_in(dir, "unet/diffusion_pytorch_model.safetensors"),
                 path_in(dir, "unet/diffusion_pytorch_model.fp16.safetensors")) == 0);
    free(expect_probe_ok("fp16 variant", dir, "unet"));
    eu_compare("fp16 name", path_in(dir, "../out.safetensors"), ref_unet, "eps", 0);
    drop_model(dir);

    /* text encoder tensors under "text_model." (CLIPTextModel's state dict) */
    dir = copy_model("load_prefix");
    st_edit ed = {.prefix = "text_model."};
    rewrite(path_in(dir, "text_encoder/model.safetensors"), &ed);
    out = expect_probe_ok("text_model. prefix", dir, "text_encoder");
    CHECKF(eu_count_lines(out) == 0, "unexpected output: %s", out);
    free(out);
    expect_golden("prefixed", dir, "text_encoder");
    eu_compare("prefixed", path_in(dir, "../out.safetensors"), ref_text, "last_hidden_state", 0);
    drop_model(dir);

    /* old VAE checkpoints: mid-block attention as query/key/value/proj_attn, some as 1x1 convolutions */
    dir = copy_model("load_legacy_vae");
    static const char *const legacy[][2] = {
        {".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."}, {".to_out.0.", ".proj_attn."}};
    st_edit ed5 = {.rename = legacy, .nrename = 4, .as_1x1 = "encoder.mid_block.attentions.0.query.weight"};
    rewrite(path_in(dir, "vae/diffusion_pytorch_model.safetensors"), &ed5);
    {
        st_file f;
        ddps_err err;
        CHECK(ddps_st_open(&f, path_in(dir, "vae/diffusion_pytorch_model.safetensors"), &err) == 0);
        const st_tensor *q = ddps_st_find(&f, "encoder.mid_block.attentions.0.query.weight");
        CHECK(q && q->ndim == 4 && !ddps_st_find(&f, "encoder.mid_block.attentions.0.to_q.weight") &&
              ddps_st_find(&f, "decoder.mid_block.attentions.0.proj_attn.bias"));
        ddps_st_close(&f);
    }
    out = expect_probe_ok("legacy VAE names", dir, "vae");
    CHECKF(eu_count_lines(out) == 0, "unexpected output: %s", out);
    free(out);
    expect_golden("legacy vae", dir, "vae");
    drop_model(dir);
    drop_model(ref_dir);
}

/* ddps_sd_load itself: every part, the identity, check-only loads, not a folder. */
static void library_load(void) {
    ddps_err err = {{0}};
    ddps_backend *be = ddps_cpu_backend_new(DDPS_PREC_F32, 0, &err);
    CHECKF(be != NULL, "%s", err.msg);
    if (!be) return;
    ddps_sd *a = NULL, *b = NULL, *c = NULL;
    CHECKF(ddps_sd_load(MODEL, be, DDPS_PART_ALL, &a, &err) == 0, "%s", err.msg);
    if (a) {
        CHECK(a->tok && a->text && a->vae && a->unet && a->alphas_cumprod);
        CHECK(a->unet_cfg.n_blocks == 4 && a->unet_cfg.block_out_channels[0] == 32 && a->unet_cfg.heads[0] == 8);
        CHECK(a->vae_cfg.n_blocks == 4 && a->vae_cfg.latent_channels == 4 && a->vae_cfg.scaling_factor == 0.18215f);
        CHECK(a->clip_cfg.hidden_size == 32 && a->clip_cfg.num_hidden_layers == 2 && a->clip_cfg.quick_gelu);
        CHECK(a->sched_cfg.num_train_timesteps == 1000 && a->sched_cfg.scaled_linear);
        CHECK(strlen(a->identity_hex) == 16);
    }
    /* a check of the folder without a backend loads no weights */
    CHECKF(ddps_sd_load(MODEL, NULL, DDPS_PART_ALL, &b, &err) == 0, "%s", err.msg);
    if (b) CHECK(!b->text && !b->vae && !b->unet && b->tok);
    /* the identity depends on the content, not the path; a config change changes it */
    char *dir = copy_model("load_identity");
    CHECKF(ddps_sd_load(dir, NULL, DDPS_PART_ALL, &c, &err) == 0, "%s", err.msg);
    if (a && b && c) CHECK(a->identity == b->identity && a->identity == c->identity);
    ddps_sd_free(NULL, c), c = NULL;
    set_config_key(dir, "unet/config.json", "sample_size", "16");
    CHECKF(ddps_sd_load(dir, NULL, DDPS_PART_ALL, &c, &err) == 0, "%s", err.msg);
    if (a && c) CHECK(a->identity != c->identity);
    ddps_sd_free(NULL, c), c = NULL;
    drop_model(dir);
    ddps_sd_free(be, a);
    ddps_sd_free(NULL, b);
    /* not a model folder */
    CHECK(ddps_sd_load(t_shared("golden/unet.safetensors"), be, DDPS_PART_ALL, &c, &err) != 0 && c == NULL);
    CHECKF(strstr(err.msg, "unet.safetensors") && strstr(err.msg, "folder"), "%s", err.msg);
    ddps_release(be, 0);
    ddps_backend_free(be);
}

int main(void) {
    snprintf(GOLDEN, sizeof GOLDEN, "%s", t_shared("golden"));
    snprintf(MODEL, sizeof MODEL, "%s", t_shared("golden/tiny-sd"));
    TEST(sd15_tensor_lists);
    TEST(broken_configs);
    TEST(broken_files);
    TEST(broken_tensors);
    TEST(layouts);
    TEST(library_load);
    return t_done();
}
