/* The C side of test_pylayout: every struct of include/ddps.h with its size
 * and each field's offset and size, one line each ("S type size", "F type
 * field offset size"), which tests/pylayout.py compares with the ctypes
 * declarations of python/ddps/_lib.py. pylayout.py also checks these lists
 * against the header's own declarations, so that they cannot go stale.
 * Skipped (77) when /usr/bin/python3 is missing. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ddps.h"
#include "testlib.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define S fprintf(f, "S %s %zu\n", STR(T), sizeof(T))
#define F(m) fprintf(f, "F %s %s %zu %zu\n", STR(T), #m, offsetof(T, m), sizeof(((T *)0)->m))

static void write_layout(FILE *f) {
#define T ddps_error
    S; F(status); F(message);
#undef T
#define T ddps_hooks
    S; F(log); F(progress); F(user); F(cancel);
#undef T
#define T ddps_score_params
    S; F(prompt); F(null_prompt); F(n_timesteps); F(timesteps); F(n_explicit); F(t_lo); F(t_hi); F(size);
    F(patch); F(stride); F(patches_per_image); F(dift_t); F(dift_ensemble); F(clusters); F(low_res);
    F(class_names); F(max_per_class); F(classes); F(n_classes); F(seed); F(threads); F(batch_images); F(device);
    F(precision); F(config_dir); F(shard_k); F(shard_n); F(mpi); F(command);
#undef T
#define T ddps_select_params
    S; F(top_clusters); F(mosaic_max_ipc); F(output_size); F(format); F(jpeg_quality); F(data_root); F(classes);
    F(n_classes); F(threads); F(folder_names); F(command); F(baseline); F(seed);
#undef T
#define T ddps_run_totals
    S; F(images_scored); F(images_bad); F(unet_latents); F(vae_images); F(text_prompts); F(seconds);
#undef T
#define T ddps_report_params
    S; F(data_root); F(ipc); F(thumb); F(threads);
#undef T
#define T ddps_engine_params
    S; F(device); F(precision); F(threads);
#undef T
#define T ddps_image_in
    S; F(pixels); F(width); F(height); F(key); F(prompt);
#undef T
#define T ddps_window
    S; F(x0); F(y0); F(x1); F(y1); F(rx); F(ry); F(rw); F(rh); F(score);
#undef T
#define T ddps_image_scores
    S; F(width); F(height); F(rw); F(rh); F(image_score); F(score_map); F(grid_h); F(grid_w); F(patch_scores);
    F(map_h); F(map_w); F(map); F(n_cand); F(cand); F(dim); F(features);
#undef T
#define T ddps_db_class
    S; F(id); F(name); F(prompt_name); F(prompt); F(n_images); F(n_bad); F(n_cand); F(clustered);
    F(clustered_k);
#undef T
#define T ddps_db_image
    S; F(relpath); F(width); F(height); F(rw); F(rh); F(image_score); F(map_h); F(map_w); F(map);
#undef T
#define T ddps_db_cand
    S; F(image); F(idx); F(x0); F(y0); F(x1); F(y1); F(rx); F(ry); F(rw); F(rh); F(score); F(cluster);
    F(cluster_rank); F(dist);
#undef T
#define T ddps_db_cluster
    S; F(cluster); F(size); F(rank); F(median_score);
#undef T
#define T ddps_db_class_data
    S; F(class_id); F(n_images); F(images); F(n_cand); F(cand); F(dim); F(features); F(n_clusters); F(clusters);
    F(internal_);
#undef T
#define T ddps_bench_params
    S; F(what); F(device); F(precision); F(threads); F(batches); F(n_batches); F(size); F(iters); F(json);
    F(profile); F(model); F(data); F(images); F(shapes);
#undef T
#define T ddps_probe_params
    S; F(what); F(model); F(config); F(in); F(out); F(device); F(precision); F(threads); F(prompt);
    F(null_prompt); F(patch); F(stride); F(texts); F(n_texts);
#undef T
#define T ddps_demo_params
    S; F(n_classes); F(per_class); F(threads); F(seed);
#undef T
#define T ddps_world_params
    S; F(seed); F(n_classes); F(train); F(val); F(test); F(size);
#undef T
#define T ddps_world_eval_params
    S; F(store); F(world); F(split); F(ipc); F(n_ipc); F(top_clusters); F(mosaic_max_ipc); F(seed); F(json);
#undef T
#define T ddps_world_eval_result
    S; F(n_images); F(pointing); F(pointing_chance); F(iou); F(iou_random); F(ari); F(ari_random); F(purity);
    F(purity_random); F(ari_store); F(ari_store_random); F(n_ipc); F(ipc); F(contain); F(contain_top);
    F(contain_random);
#undef T
#define T ddps_probe_train_params
    S; F(model); F(weights); F(in); F(out); F(threads);
#undef T
#define T ddps_train_params
    S; F(data); F(val); F(model); F(out); F(size); F(epochs); F(batch); F(opt); F(lr); F(weight_decay);
    F(momentum); F(nesterov); F(sched); F(warmup); F(label_smoothing); F(crop_scale); F(seed); F(threads);
    F(checkpoint);
#undef T
#define T ddps_train_result
    S; F(epochs); F(classes); F(images); F(loss); F(top1); F(top5); F(seconds);
#undef T
#define T ddps_eval_params
    S; F(distilled); F(val); F(teacher); F(teacher_model); F(student); F(students); F(size); F(epochs); F(batch);
    F(lr); F(weight_decay); F(temperature); F(factor); F(min_scale); F(cutmix); F(eval_every); F(seed);
    F(threads); F(out);
#undef T
#define T ddps_eval_result
    S; F(students); F(top1_mean); F(top1_std); F(top5_mean); F(top1); F(best_top1); F(seconds);
#undef T
}

int main(void) {
    char *out = NULL;
    if (access("/usr/bin/python3", X_OK) != 0) {
        t_skip("/usr/bin/python3 is not installed");
        return t_done();
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/layout.txt", t_tmpdir("pylayout"));
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (!f) return t_done();
    write_layout(f);
    fclose(f);
    int rc = t_runf(&out, "/usr/bin/python3 %s/tests/pylayout.py %s/include/ddps.h %s/python/ddps/_lib.py %s",
                    DDPS_SOURCE_DIR, DDPS_SOURCE_DIR, DDPS_SOURCE_DIR, path);
    fprintf(stderr, "%s", out ? out : "");
    CHECKF(rc == 0, "pylayout.py exited %d", rc);
    free(out);
    return t_done();
}
