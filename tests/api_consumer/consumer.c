/* A program outside the ddps tree: it sees only the installed ddps.h and
 * libddps.so (built by test_api_consumer with pkg-config). It scores a
 * dataset into a store, reads the store back, and scores one image through
 * the engine.
 * usage: consumer MODEL DATA STORE; prints "classes N candidates M dim D". */
#include <ddps.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int progress_calls;

static int on_progress(void *user, const char *stage, long done, long total) {
    (void)user, (void)stage, (void)done, (void)total;
    progress_calls++;
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: consumer MODEL DATA STORE\n");
        return 2;
    }
    ddps_error err;
    ddps_score_params p;
    ddps_score_params_init(&p);
    p.n_timesteps = 2;
    p.dift_ensemble = 1;
    p.threads = 2;
    ddps_hooks h;
    ddps_hooks_init(&h);
    h.progress = on_progress;
    if (ddps_run_score(&p, argv[2], argv[1], argv[3], &h, NULL, &err) != DDPS_OK) {
        fprintf(stderr, "score: %s (%s)\n", err.message, ddps_status_name(err.status));
        return 1;
    }
    ddps_db *db;
    if (ddps_db_open(argv[3], &db, &err) != DDPS_OK) {
        fprintf(stderr, "open: %s\n", err.message);
        return 1;
    }
    ddps_db_class *cls;
    int nc;
    long ncand = 0;
    int dim = 0;
    if (ddps_db_classes(db, &cls, &nc, &err) != DDPS_OK) return 1;
    for (int i = 0; i < nc; i++) {
        ddps_db_class_data d;
        if (ddps_db_load(db, cls[i].id, 1, 0, &d, &err) != DDPS_OK) return 1;
        ncand += d.n_cand;
        dim = d.dim;
        ddps_db_class_data_free(&d);
    }
    ddps_db_classes_free(cls, nc);
    ddps_db_close(db);

    /* the engine on a gray 300x260 image */
    ddps_engine *en;
    if (ddps_engine_open(argv[1], NULL, NULL, &en, &err) != DDPS_OK) {
        fprintf(stderr, "engine: %s\n", err.message);
        return 1;
    }
    const char *prompts[2] = {"", "An image of a dog."};
    int ids[2];
    unsigned char *px = malloc(300 * 260 * 3);
    for (int i = 0; i < 300 * 260 * 3; i++) px[i] = (unsigned char)(i * 7);
    ddps_image_in in = {px, 300, 260, "gray.png", 0};
    ddps_image_scores s;
    if (ddps_engine_encode_prompts(en, prompts, 2, ids, &err) != DDPS_OK) return 1;
    in.prompt = ids[1];
    if (ddps_engine_score(en, &p, ids[0], &in, 1, &s, &err) != DDPS_OK) {
        fprintf(stderr, "engine score: %s\n", err.message);
        return 1;
    }
    int ok = s.n_cand == 1 && s.dim == dim && s.rh == 256 && s.cand[0].x1 <= 300;
    ddps_image_scores_free(&s);
    free(px);
    ddps_engine_close(en);
    printf("classes %d candidates %ld dim %d progress %d engine %s\n", nc, ncand, dim, progress_calls,
           ok ? "ok" : "bad");
    return ok && progress_calls > 0 ? 0 : 1;
}
