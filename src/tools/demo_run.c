/* `ddps demo` (ddps_demo_write, ddps_demo_run): the whole product on a fresh
 * machine with nothing downloaded, on a world whose truth is known. Writes a
 * toy-world split and the toy model (data/toy-sd: SD v1.x's structure,
 * trained on the toy world; see data/toy-sd/README.md), distills them, writes
 * the report, and measures the selection against the objects' boxes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/sd.h"
#include "pipeline/report.h"
#include "pipeline/score.h"
#include "pipeline/select.h"
#include "tools/demo.h"
#include "tools/tools.h"
#include "tools/world.h"
#include "util/datadir.h"
#include "util/fs.h"

/* The files of a diffusers model folder that the toy model has. */
static const char *const toy_files[] = {
    "model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
    "text_encoder/model.safetensors", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json", "tokenizer/vocab.json", "unet/config.json",
    "unet/diffusion_pytorch_model.safetensors", "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
};

/* Copies the shipped toy model (data/toy-sd) into model. */
static int copy_toy_model(const char *model, ddps_err *err) {
    char *src = ddps_data_path("toy-sd/model_index.json", err);
    if (!src) return -1;
    src[strlen(src) - strlen("/model_index.json")] = 0;
    int rc = 0;
    for (size_t i = 0; i < sizeof toy_files / sizeof *toy_files && rc == 0; i++) {
        char *from = ddps_path_join(src, toy_files[i]), *to = ddps_path_join(model, toy_files[i]);
        char *dir = ddps_strdup(to), *buf = NULL;
        *strrchr(dir, '/') = 0;
        size_t len = 0;
        rc = ddps_mkdirs(dir, err);
        if (rc == 0) rc = ddps_read_file(from, (size_t)1 << 30, &buf, &len, err);
        if (rc == 0) rc = ddps_write_file_atomic(to, buf, len, err);
        free(buf);
        free(dir);
        free(from);
        free(to);
    }
    free(src);
    return rc;
}

/* Checks p and makes the fixtures that are missing (errors without the "demo: " prefix). */
static int demo_write(const char *dir, const ddps_demo_params *p, ddps_err *err) {
    if (!dir || !*dir) return ddps_fail_usage(err, "--out: an output folder is required");
    if (p->n_classes < 1 || p->n_classes > DDPS_WORLD_CLASSES)
        return ddps_fail_usage(err, "--classes %d: expected 1..%d", p->n_classes, DDPS_WORLD_CLASSES);
    if (p->per_class < 1 || p->per_class > 10000)
        return ddps_fail_usage(err, "--per-class %d: expected 1..10000", p->per_class);
    char *world = ddps_path_join(dir, "world"), *model = ddps_path_join(dir, "model");
    int rc = ddps_mkdirs(dir, err);
    if (rc == 0) {
        /* The world is rewritten whole each time: classes or counts may differ from the last demo. */
        ddps_info("making the toy world: %d classes x %d pictures in %s/test", p->n_classes, p->per_class, world);
        rc = ddps_remove_tree(world, err);
        if (rc == 0) rc = ddps_world_generate(world, p->seed, p->n_classes, 0, 0, p->per_class, 128, err);
    }
    if (rc == 0 && !ddps_is_dir(model)) {
        ddps_info("copying the toy model (SD v1.x's structure, trained on the toy world) to %s", model);
        rc = copy_toy_model(model, err);
    }
    free(world);
    free(model);
    return rc;
}

/* Scores dir/world/test with dir/model into store with the toy world's settings. */
static int demo_score(const char *dir, const char *store, int threads, ddps_err *err) {
    char *data = ddps_path_join(dir, "world/test"), *model = ddps_path_join(dir, "model");
    char *names = ddps_path_join(dir, "world/classes.tsv");
    ddps_score_opts o;
    ddps_score_defaults(&o);
    o.data_dir = data;
    o.model_dir = model;
    o.p.class_names = names;
    /* The toy model's scale: 128-px pictures, objects 1/5 to 1/2 of the side. */
    o.p.size = DDPS_DEMO_SIZE;
    o.p.patch = DDPS_DEMO_PATCH;
    o.p.stride = DDPS_DEMO_STRIDE;
    o.p.patches_per_image = 2;
    o.p.threads = threads;
    o.p.command = "distill";
    o.store_path = store;
    ddps_run_stats st = {0};
    int rc = ddps_score_run(&o, &st, err);
    free(names);
    free(data);
    free(model);
    return rc;
}

/* Writes dist/ipc1 and dist/ipc10 from store. */
static int demo_select(const char *store, const char *dist, int threads, ddps_err *err) {
    ddps_select_opts so;
    ddps_select_defaults(&so);
    int ipcs[2] = {1, 10};
    so.store_path = store;
    so.out_dir = dist;
    so.ipc = ipcs;
    so.n_ipc = 2;
    so.p.threads = threads;
    so.p.command = "distill";
    return ddps_select_run(&so, err);
}

/* The report in dir/report, then the selection measured against the boxes. */
static int demo_measure(const char *dir, const char *store, int threads, const ddps_hooks *h, ddps_err *err) {
    char *report = ddps_path_join(dir, "report"), *world = ddps_path_join(dir, "world");
    ddps_report_opts ro;
    ddps_report_defaults(&ro);
    ro.store_path = store;
    ro.out_dir = report;
    ro.p.threads = threads;
    int rc = ddps_report_run(&ro, err);
    ddps_world_eval_params wp;
    ddps_world_eval_params_init(&wp);
    wp.store = store;
    wp.world = world;
    ddps_world_eval_result r;
    if (rc == 0) rc = ddps_tools_world_eval(&wp, &r, h, err);
    if (rc == 0)
        ddps_tools_out(h, "\npointing game: the maximum of the Stage-I map lies inside the object's box for %.1f%% of "
                       "%d unseen pictures (chance: %.1f%%)", 100 * r.pointing, r.n_images, 100 * r.pointing_chance);
    free(report);
    free(world);
    return rc;
}

int ddps_tools_demo_write(const char *dir, const ddps_demo_params *p, ddps_err *err) {
    return demo_write(dir, p, err) == 0 ? 0 : ddps_fail_prefix(err, "demo");
}

int ddps_tools_demo_run(const char *dir, const ddps_demo_params *p, const ddps_hooks *h, ddps_err *err) {
    if (demo_write(dir, p, err) != 0) return ddps_fail_prefix(err, "demo");
    char *dist = ddps_path_join(dir, "distilled"), *store = ddps_path_join(dir, "ddps.sqlite");
    /* A new world each run: the old store's images are gone. */
    int rc = ddps_remove_tree(dist, err);
    if (rc == 0) {
        char *side[3] = {ddps_path_join(dir, "ddps.sqlite-wal"), ddps_path_join(dir, "ddps.sqlite-shm"), store};
        for (int i = 0; i < 3; i++) remove(side[i]);
        free(side[0]);
        free(side[1]);
    }
    if (rc == 0) rc = ddps_mkdirs(dist, err);
    if (rc == 0) rc = demo_score(dir, store, p->threads, err);
    if (rc == 0) rc = demo_select(store, dist, p->threads, err);
    if (rc == 0) rc = demo_measure(dir, store, p->threads, h, err);
    free(dist);
    free(store);
    return rc == 0 ? 0 : ddps_fail_prefix(err, "demo");
}
