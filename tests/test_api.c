/* The public library (include/ddps.h) through its own functions: error
 * categories and the CLI's exit codes for values out of range, hooks (log
 * lines and progress reach the host, nothing else), cancellation between
 * images and resuming, the store reader, and the engine scoring decoded
 * pixels to exactly the numbers `ddps score` stores (golden tiny model, 2
 * classes x 3 real imagewoof images). */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_fixture.h"
#include "ddps.h"
#include "io/image.h"
#include "testlib.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

static char model[4096], woof[4096], data[4096];

/* data/<class>/<file>: links to the first 3 images of 2 imagewoof classes. */
static void make_data(void) {
    snprintf(data, sizeof data, "%s", t_tmpdir("api_data"));
    api_fixture_data(data, woof, 3);
}

/* Small settings so the test stays short: 2 timesteps, DIFT ensemble 1. */
static void small_params(ddps_score_params *p) {
    ddps_score_params_init(p);
    p->n_timesteps = 2;
    p->dift_ensemble = 1;
    p->clusters = 2;
    p->threads = 2;
}

static void exit_codes(void) {
    static const struct {
        const char *flags;
        int code;
        const char *says;
    } cases[] = {
        {"--patch 300 --size 256", 2, "--patch 300"},
        {"--precision f8", 2, "--precision f8"},
        {"--device tpu", 2, "--device tpu"},
        {"--timesteps 100,1000", 2, "1000"},
        {"--dift-t 1000", 2, "--dift-t 1000"},
        {"--size 5", 2, "--size"},
    };
    char cmd[16384], *out;
    const char *store = t_tmpdir("api_exit");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(cmd, sizeof cmd, "%s score --data %s --model %s --store %s/s.db --threads 2 %s", DDPS_BIN, data, model,
                 store, cases[i].flags);
        int rc = t_run(cmd, &out);
        CHECKF(rc == cases[i].code && strstr(out, cases[i].says), "%s: exit %d: %s", cases[i].flags, rc, out);
        free(out);
        /* distill maps the same way */
        snprintf(cmd, sizeof cmd, "%s distill --data %s --model %s --out %s/d --ipc 1 --threads 2 %s", DDPS_BIN, data,
                 model, store, cases[i].flags);
        rc = t_run(cmd, &out);
        CHECKF(rc == cases[i].code, "distill %s: exit %d: %s", cases[i].flags, rc, out);
        free(out);
    }
    /* a bad model or store is a failure (1), not a usage error */
    snprintf(cmd, sizeof cmd, "%s score --data %s --model %s/none --store %s/s.db", DDPS_BIN, data, store, store);
    CHECK(t_run(cmd, &out) == 1);
    free(out);
    snprintf(cmd, sizeof cmd, "%s select --store %s/none.db --out %s/o --ipc 1", DDPS_BIN, store, store);
    CHECK(t_run(cmd, &out) == 1);
    free(out);
    /* the same through the API: category usage */
    ddps_score_params p;
    small_params(&p);
    ddps_error err;
    p.precision = "f8";
    char sp[4096];
    snprintf(sp, sizeof sp, "%s/api.db", store);
    CHECK(ddps_run_score(&p, data, model, sp, NULL, NULL, &err) == DDPS_ERR_USAGE && err.status == DDPS_ERR_USAGE &&
          strstr(err.message, "f8"));
    small_params(&p);
    p.dift_t = 1000;
    CHECK(ddps_run_score(&p, data, model, sp, NULL, NULL, &err) == DDPS_ERR_USAGE && strstr(err.message, "1000"));
    small_params(&p);
    CHECK(ddps_run_score(&p, data, "/nonexistent-model", sp, NULL, NULL, &err) == DDPS_ERR_DATA &&
          strstr(err.message, "/nonexistent-model"));
    CHECK(strcmp(ddps_status_name(DDPS_ERR_USAGE), "usage") == 0);
    ddps_db *db;
    CHECK(ddps_db_open("/nonexistent/x.db", &db, &err) != DDPS_OK && db == NULL && err.message[0]);
}

/* Host hooks: what the library said, and progress. */
typedef struct {
    int lines, progress_calls, cancel_after;
    long last_done, last_total;
    volatile int cancel;
} host;

static void on_log(void *user, int level, const char *line) {
    host *h = user;
    h->lines++;
    CHECK(level >= 1 && level <= 3 && line && !strchr(line, '\n'));
}

static int on_progress(void *user, const char *stage, long done, long total) {
    host *h = user;
    h->progress_calls++;
    h->last_done = done;
    h->last_total = total;
    if (h->cancel_after && done >= h->cancel_after) h->cancel = 1;
    return 0;
}

static char store_a[4096];

static void run_and_read(void) {
    const char *dir = t_tmpdir("api_run");
    snprintf(store_a, sizeof store_a, "%s/a.db", dir);
    ddps_score_params p;
    small_params(&p);
    host h;
    memset(&h, 0, sizeof h);
    h.cancel_after = 2;
    ddps_hooks hk;
    ddps_hooks_init(&hk);
    hk.log = on_log;
    hk.progress = on_progress;
    hk.user = &h;
    hk.cancel = &h.cancel;
    ddps_error err;
    ddps_run_totals tot;
    /* cancelled after 2 images: what is stored stays, a rerun continues */
    ddps_status st = ddps_run_score(&p, data, model, store_a, &hk, &tot, &err);
    CHECKF(st == DDPS_ERR_CANCELLED && err.status == DDPS_ERR_CANCELLED, "%d %s", st, err.message);
    CHECKF(tot.images_scored == 2, "%ld", tot.images_scored);
    CHECK(h.progress_calls >= 2 && h.last_total == 6);
    memset(&h, 0, sizeof h);
    st = ddps_run_score(&p, data, model, store_a, &hk, &tot, &err);
    CHECKF(st == DDPS_OK && tot.images_scored == 4, "%d %s %ld", st, err.message, tot.images_scored);
    CHECK(h.lines > 0 && h.last_done == 4 && h.last_total == 4);

    ddps_db *db;
    CHECK(ddps_db_open(store_a, &db, &err) == DDPS_OK);
    ddps_db_class *cls;
    int nc;
    CHECK(ddps_db_classes(db, &cls, &nc, &err) == DDPS_OK && nc == 2);
    char *mid;
    CHECK(ddps_db_meta(db, "model_id", &mid, &err) == DDPS_OK && mid && strlen(mid) == 16);
    ddps_free(mid);
    for (int c = 0; c < nc; c++) {
        CHECK(strcmp(cls[c].name, API_FIXTURE_CLASSES[c]) == 0 && cls[c].n_images == 3 && cls[c].n_cand == 3 && cls[c].clustered);
        ddps_db_class_data d;
        CHECK(ddps_db_load(db, cls[c].id, 1, 1, &d, &err) == DDPS_OK);
        CHECK(d.n_images == 3 && d.n_cand == 3 && d.dim > 0 && d.features && d.n_clusters >= 1);
        CHECK(d.images[0].map && d.images[0].map_h > 0);
        int picks[8], n_picks, n_out, per;
        unsigned char fill[8];
        CHECK(ddps_db_select(&d, 1, 10, 10, 0, picks, fill, &n_picks, &n_out, &per, &err) == DDPS_OK);
        /* ipc 1 wants a mosaic of 4; 3 candidates: one single-patch image */
        CHECK(n_picks == 3 && n_out == 1 && per == 1);
        CHECK(ddps_db_select(&d, 3, 10, 0, 0, picks, fill, &n_picks, &n_out, &per, &err) == DDPS_OK);
        CHECK(n_picks == 3 && n_out == 3 && per == 1 && fill[0] == 1); /* 3 < top clusters: all from the fill */
        /* clustering the stored features again gives the stored clusters' count */
        int assign[3], k_used;
        float dist[3];
        CHECK(ddps_cluster_features(d.features, d.n_cand, d.dim, 2, 1, assign, dist, &k_used, &err) == DDPS_OK &&
              k_used >= 1 && k_used <= 2);
        ddps_db_class_data_free(&d);
    }
    ddps_db_classes_free(cls, nc);
    ddps_db_close(db);
    /* select through the API */
    ddps_select_params sp;
    ddps_select_params_init(&sp);
    sp.threads = 2;
    int ipc[2] = {1, 2};
    char out[4096], f[8192];
    snprintf(out, sizeof out, "%s/out", dir);
    memset(&h, 0, sizeof h);
    CHECKF(ddps_run_select(store_a, out, ipc, 2, &sp, &hk, &err) == DDPS_OK, "%s", err.message);
    snprintf(f, sizeof f, "%s/ipc2/manifest.json", out);
    CHECK(access(f, R_OK) == 0 && h.lines > 0);
    sp.format = "gif";
    CHECK(ddps_run_select(store_a, out, ipc, 2, &sp, NULL, &err) == DDPS_ERR_USAGE);
}

/* The engine on decoded pixels gives what the store holds. */
static void engine_matches_store(void) {
    ddps_error err;
    ddps_engine_params ep;
    ddps_engine_params_init(&ep);
    ep.threads = 2;
    ddps_engine *en;
    CHECKF(ddps_engine_open(model, &ep, NULL, &en, &err) == DDPS_OK, "%s", err.message);
    if (!en) return;
    ddps_db *db;
    CHECK(ddps_db_open(store_a, &db, &err) == DDPS_OK);
    char *mid;
    CHECK(ddps_db_meta(db, "model_id", &mid, &err) == DDPS_OK && strcmp(mid, ddps_engine_model_id(en)) == 0);
    ddps_free(mid);
    ddps_db_class *cls;
    int nc;
    CHECK(ddps_db_classes(db, &cls, &nc, &err) == DDPS_OK && nc == 2);
    const char *prompts[3] = {"", cls[0].prompt, cls[1].prompt};
    int ids[3];
    CHECK(ddps_engine_encode_prompts(en, prompts, 3, ids, &err) == DDPS_OK && ids[0] == 0 && ids[2] == 2);
    int again;
    CHECK(ddps_engine_encode_prompts(en, &prompts[1], 1, &again, &err) == DDPS_OK && again == 1);
    ddps_score_params p;
    small_params(&p);
    for (int c = 0; c < nc; c++) {
        ddps_db_class_data d;
        CHECK(ddps_db_load(db, cls[c].id, 1, 1, &d, &err) == DDPS_OK);
        ddps_image imgs[3];
        ddps_image_in in[3];
        ddps_err ie = {{0}};
        for (int i = 0; i < 3; i++) {
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", data, d.images[i].relpath);
            CHECK(ddps_image_load(path, &imgs[i], &ie) == 0);
            in[i] = (ddps_image_in){imgs[i].px, imgs[i].w, imgs[i].h, d.images[i].relpath, ids[c + 1]};
        }
        ddps_image_scores s[3];
        CHECKF(ddps_engine_score(en, &p, ids[0], in, 3, s, &err) == DDPS_OK, "%s", err.message);
        for (int i = 0; i < 3; i++) {
            const ddps_db_image *im = &d.images[i];
            const ddps_db_cand *cd = &d.cand[i];
            CHECK(s[i].width == im->width && s[i].rw == im->rw && s[i].rh == im->rh);
            CHECKF(s[i].image_score == im->image_score, "%.9g %.9g", s[i].image_score, im->image_score);
            CHECK(s[i].n_cand == 1 && s[i].cand[0].rx == cd->rx && s[i].cand[0].ry == cd->ry);
            CHECK(s[i].cand[0].score == cd->score && s[i].cand[0].x0 == cd->x0 && s[i].cand[0].y1 == cd->y1);
            CHECK(s[i].dim == d.dim && memcmp(s[i].features, d.features + (size_t)i * d.dim, sizeof(float) * d.dim) == 0);
            CHECK(s[i].map_h == im->map_h && memcmp(s[i].map, im->map, sizeof(float) * im->map_h * im->map_w) == 0);
            CHECK(s[i].score_map && s[i].patch_scores && s[i].grid_h == (s[i].rh - 192) / 16 + 1);
            ddps_image_scores_free(&s[i]);
            ddps_image_free(&imgs[i]);
        }
        ddps_db_class_data_free(&d);
    }
    /* bad input is a usage error, not a crash */
    ddps_image_in bad = {NULL, 10, 10, "x", 1};
    ddps_image_scores s1;
    CHECK(ddps_engine_score(en, &p, 0, &bad, 1, &s1, &err) == DDPS_ERR_USAGE);
    ddps_db_classes_free(cls, nc);
    ddps_db_close(db);
    ddps_engine_close(en);
}

int main(void) {
    snprintf(model, sizeof model, "%s", t_shared("golden/tiny-sd"));
    snprintf(woof, sizeof woof, "%s", t_shared("data/imagewoof-mini/train"));
    if (access(model, R_OK) != 0 || access(woof, R_OK) != 0) {
        t_skip("%s or %s missing", model, woof);
        return t_done();
    }
    make_data();
    TEST(exit_codes);
    TEST(run_and_read);
    TEST(engine_matches_store);
    return t_done();
}
