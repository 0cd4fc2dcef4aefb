/* Outputs that evaluate right: for WordNet-id classes every ipc<N> folder
 * gets class_to_idx.json and classes.txt (ImageFolder index = sorted folder
 * names, wnid, ImageNet-1K index from the shipped table, prompt name);
 * --folder-names index writes RDED-style 00000 folders in ImageNet-1K order;
 * other class names get no mapping, and index naming refuses them. The
 * shipped table is the standard ImageNet-1K order and is checked on load. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "pipeline/class_map.h"
#include "pipeline/select.h"
#include "pipeline/store.h"
#include "testlib.h"
#include "util/fs.h"

#define DIM 8

/* A store at dir/s.db with the given classes, 6 images each (2 candidates). */
static void build_store(const char *dir, const char *const *names, const char *const *prompts, int nc) {
    char data[4096], spath[4096];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(spath, sizeof spath, "%s/s.db", dir);
    ddps_store *s;
    ddps_err err = {{0}};
    CHECKF(ddps_store_open(spath, 0, &s, &err) == 0, "%s", err.msg);
    CHECK(ddps_store_bind(s, "{\"low_res\": false, \"clusters\": 2, \"seed\": 3, \"patch\": 16}", "fake", &err) == 0);
    CHECK(ddps_store_set_meta(s, "data_root", data, &err) == 0);
    for (int c = 0; c < nc; c++) {
        int cid;
        CHECK(ddps_store_class_id(s, names[c], prompts[c], NULL, &cid, &err) == 0);
        char folder[4096];
        snprintf(folder, sizeof folder, "%s/%s", data, names[c]);
        CHECK(ddps_mkdirs(folder, &err) == 0);
        for (int i = 0; i < 6; i++) {
            char rel[256], full[4096];
            snprintf(rel, sizeof rel, "%s/img%d.png", names[c], i);
            snprintf(full, sizeof full, "%s/%s", data, rel);
            ddps_image img;
            CHECK(ddps_image_alloc(&img, 32, 32) == 0);
            memset(img.px, 40 * c + i, 32 * 32 * 3);
            CHECK(ddps_image_save(full, &img, 95, &err) == 0);
            ddps_image_free(&img);
            float feat[2][DIM];
            ddps_candidate cand[2];
            for (int k = 0; k < 2; k++) {
                for (int d = 0; d < DIM; d++) feat[k][d] = (float)((d == (i + k) % DIM) + 0.01 * (c + k));
                cand[k] = (ddps_candidate){.w = {.x0 = 2 * k, .y0 = 0, .x1 = 16 + 2 * k, .y1 = 16}, .feature = feat[k]};
                cand[k].w.score = (float)(i * 2 + k) / 12.0f;
            }
            ddps_image_result r = {cid, rel, 32, 32, 32, 32, 0.5f, 2, cand, DIM, 0.1};
            CHECKF(ddps_store_put_image(s, &r, &err) == 0, "%s", err.msg);
        }
        CHECK(ddps_store_cluster(s, cid, 2, 3, &err) == 0);
    }
    ddps_store_close(s);
}

static int run(const char *dir, const char *out, const char *folder_names, ddps_err *err) {
    ddps_select_opts o;
    ddps_select_defaults(&o);
    char spath[4096];
    snprintf(spath, sizeof spath, "%s/s.db", dir);
    int ipc[1] = {1};
    o.store_path = spath;
    o.out_dir = out;
    o.ipc = ipc;
    o.n_ipc = 1;
    o.p.output_size = 16;
    o.p.threads = 1;
    o.p.folder_names = folder_names;
    return ddps_select_run(&o, err);
}

static const char *pj(const char *a, const char *b) {
    static char buf[4][4096];
    static int k;
    char *p = buf[k++ & 3];
    snprintf(p, 4096, "%s/%s", a, b);
    return p;
}

static const char *const WN[3] = {"n03000684", "n02102040", "n01440764"};
static const char *const PROMPT[3] = {NULL, "springer", NULL};

/* Checks class_to_idx.json and classes.txt of one ipc folder against the
 * expected folders (ImageFolder order). */
static void check_map(const char *ipcdir, const char *const *folders, const int *inet, const char *const *prompt) {
    json_error_t je;
    json_t *j = json_load_file(pj(ipcdir, "class_to_idx.json"), 0, &je);
    CHECKF(j != NULL, "class_to_idx.json: %s", je.text);
    if (!j) return;
    json_t *c2i = json_object_get(j, "class_to_idx"), *i2n = json_object_get(j, "idx_to_imagenet"),
           *cl = json_object_get(j, "classes");
    CHECK(json_object_size(c2i) == 3 && json_array_size(i2n) == 3 && json_array_size(cl) == 3);
    for (int i = 0; i < 3; i++) {
        CHECKF(json_integer_value(json_object_get(c2i, folders[i])) == i, "%s", folders[i]);
        CHECK(json_integer_value(json_array_get(i2n, (size_t)i)) == inet[i]);
        json_t *e = json_array_get(cl, (size_t)i);
        CHECK(strcmp(json_string_value(json_object_get(e, "folder")), folders[i]) == 0);
        CHECK(json_integer_value(json_object_get(e, "imagenet_index")) == inet[i]);
        CHECKF(strcmp(json_string_value(json_object_get(e, "prompt_name")), prompt[i]) == 0, "%s",
               json_string_value(json_object_get(e, "prompt_name")));
    }
    json_decref(j);
    char *text;
    size_t len;
    ddps_err err;
    CHECKF(ddps_read_file(pj(ipcdir, "classes.txt"), 1 << 20, &text, &len, &err) == 0, "%s", err.msg);
    char want[1024];
    size_t o = (size_t)snprintf(want, sizeof want, "imagefolder_index\tfolder\twnid\timagenet_index\tprompt_name\n");
    static const char *const wn_sorted[3] = {"n01440764", "n02102040", "n03000684"};
    for (int i = 0; i < 3; i++)
        o += (size_t)snprintf(want + o, sizeof want - o, "%d\t%s\t%s\t%d\t%s\n", i, folders[i], wn_sorted[i], inet[i],
                              prompt[i]);
    CHECKF(strcmp(text, want) == 0, "classes.txt:\n%s\nexpected:\n%s", text, want);
    free(text);
}

static void wnid_classes(void) {
    const char *dir0 = t_tmpdir("class_map");
    char dir[4096], out[4096];
    snprintf(dir, sizeof dir, "%s", dir0);
    snprintf(out, sizeof out, "%s/out", dir);
    build_store(dir, WN, PROMPT, 3);
    ddps_err err = {{0}};
    CHECKF(run(dir, out, NULL, &err) == 0, "%s", err.msg);
    static const char *const folders[3] = {"n01440764", "n02102040", "n03000684"};
    static const int inet[3] = {0, 217, 491};
    static const char *const prompt[3] = {"tench", "springer", "chainsaw"};
    check_map(pj(out, "ipc1"), folders, inet, prompt);
    CHECK(ddps_is_file(pj(out, "ipc1/n02102040/n02102040_0000.png")));
    /* RDED-style index folders */
    CHECKF(run(dir, out, "index", &err) == 0, "%s", err.msg);
    static const char *const ifolders[3] = {"00000", "00217", "00491"};
    check_map(pj(out, "ipc1"), ifolders, inet, prompt);
    CHECK(ddps_is_file(pj(out, "ipc1/00217/00217_0000.png")) && !ddps_is_dir(pj(out, "ipc1/n02102040")));
    json_error_t je;
    json_t *m = json_load_file(pj(out, "ipc1/manifest.json"), 0, &je);
    CHECKF(m != NULL, "%s", je.text);
    json_decref(m);
}

static void other_classes(void) {
    const char *dir0 = t_tmpdir("class_map_other");
    char dir[4096], out[4096];
    snprintf(dir, sizeof dir, "%s", dir0);
    snprintf(out, sizeof out, "%s/out", dir);
    static const char *const names[3] = {"cat", "dog", "n01440764"};
    static const char *const none[3] = {NULL, NULL, NULL};
    build_store(dir, names, none, 3);
    ddps_err err = {{0}};
    CHECKF(run(dir, out, NULL, &err) == 0, "%s", err.msg);
    CHECK(!ddps_is_file(pj(out, "ipc1/class_to_idx.json")) && !ddps_is_file(pj(out, "ipc1/classes.txt")));
    CHECK(run(dir, out, "index", &err) != 0);
    CHECKF(strstr(err.msg, "--folder-names index") && strstr(err.msg, "'cat'"), "%s", err.msg);
    CHECK(ddps_is_file(pj(out, "ipc1/cat/cat_0000.png"))); /* the earlier set is untouched */
    CHECK(run(dir, out, "numbers", &err) != 0 && strstr(err.msg, "--folder-names"));
    /* the CLI: a bad value is a usage error */
    char cmd[8192], *o = NULL;
    snprintf(cmd, sizeof cmd, "%s select --store '%s/s.db' --out '%s' --ipc 1 --folder-names numbers", DDPS_BIN, dir,
             out);
    int rc = t_run(cmd, &o);
    CHECKF(rc == 2 && strstr(o, "--folder-names"), "rc %d: %s", rc, o);
    free(o);
}

static void shipped_table(void) {
    ddps_imagenet *t;
    ddps_err err;
    CHECKF(ddps_imagenet_load(NULL, &t, &err) == 0, "%s", err.msg);
    if (t) {
        CHECK(strcmp(t->wnid[0], "n01440764") == 0 && strcmp(t->wnid[999], "n15075141") == 0);
        for (int i = 1; i < DDPS_IMAGENET_CLASSES; i++) CHECK(strcmp(t->wnid[i - 1], t->wnid[i]) < 0);
        CHECK(ddps_imagenet_index(t, "n02102040") == 217 && ddps_imagenet_index(t, "n99999999") == -1 &&
              ddps_imagenet_index(t, "cat") == -1);
        char f[16];
        CHECK(ddps_index_folder(t, "n15075141", f, &err) == 0 && strcmp(f, "00999") == 0);
        ddps_imagenet_free(t);
    }
    const char *dir = t_tmpdir("class_map_table");
    char p[4096];
    snprintf(p, sizeof p, "%s/bad.tsv", dir);
    t_write(p, "# index\twnid\tprompt_name\n0\tn01440764\ttench\n2\tn01443537\tgoldfish\n", 64);
    CHECK(ddps_imagenet_load(p, &t, &err) != 0);
    CHECKF(strstr(err.msg, "bad.tsv:3"), "%s", err.msg);
    t_write(p, "0\tn01440764\ttench\n", 18);
    CHECK(ddps_imagenet_load(p, &t, &err) != 0 && strstr(err.msg, "1 classes"));
    CHECK(ddps_is_wnid("n01440764") && !ddps_is_wnid("n0144076") && !ddps_is_wnid("n014407640") &&
          !ddps_is_wnid("x01440764"));
}

int main(void) {
    TEST(shipped_table);
    TEST(wnid_classes);
    TEST(other_classes);
    return t_done();
}
