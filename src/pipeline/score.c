#include "pipeline/score.h"
#include "pipeline/params.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/image.h"
#include "models/sd.h"
#include "pipeline/dataset.h"
#include "pipeline/kmeans.h"
#include "pipeline/loader.h"
#include "pipeline/shard.h"
#include "pipeline/memcheck.h"
#include "pipeline/score_batch.h"
#include "pipeline/stage1.h"
#include "pipeline/store_guard.h"
#include "util/fs.h"
#include "util/progress.h"
#include "util/rng.h"

/* ---------- settings ---------- */

void ddps_score_defaults(ddps_score_opts *o) {
    memset(o, 0, sizeof *o);
    ddps_score_params_defaults(&o->p);
}

static char *settings_json(const ddps_score_opts *o, const int *ts, int K, const char *root) {
    json_t *s = json_object(), *t = json_array();
    for (int i = 0; i < K; i++) json_array_append_new(t, json_integer(ts[i]));
    json_object_set_new(s, "data_root", json_string(root));
    json_object_set_new(s, "prompt", json_string(o->p.prompt));
    json_object_set_new(s, "null_prompt", json_string(o->p.null_prompt));
    json_object_set_new(s, "timesteps", t);
    json_object_set_new(s, "size", json_integer(o->p.size));
    json_object_set_new(s, "patch", json_integer(o->p.low_res ? 0 : o->p.patch));
    json_object_set_new(s, "stride", json_integer(o->p.low_res ? 0 : o->p.stride));
    json_object_set_new(s, "patches_per_image", json_integer(o->p.low_res ? 1 : o->p.patches_per_image));
    json_object_set_new(s, "dift_t", json_integer(o->p.dift_t));
    json_object_set_new(s, "dift_ensemble", json_integer(o->p.dift_ensemble));
    json_object_set_new(s, "clusters", json_integer(o->p.clusters));
    json_object_set_new(s, "low_res", json_boolean(o->p.low_res));
    json_object_set_new(s, "max_per_class", json_integer(o->p.max_per_class));
    json_object_set_new(s, "seed", json_integer((json_int_t)o->p.seed));
    json_object_set_new(s, "precision", json_string(o->p.precision));
    char *text = json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(s);
    return text;
}

static int looks_like_wnid(const char *s) {
    if (s[0] != 'n' || strlen(s) != 9) return 0;
    for (int i = 1; i < 9; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* ---------- the run ---------- */

/* Everything one ddps_score_run holds: the open resources, the plan and the
 * counters of the final report. */
typedef struct {
    const ddps_score_opts *o;
    double t_start;
    ddps_dataset ds;
    char **skipped; /* everything skipped in this run, repeated in the final summary */
    long n_extreme, n_memory; /* of stats.images_bad: beyond the aspect bound, too large for memory */
    int n_skipped;
    ddps_backend *be;
    ddps_sd *sd;
    ddps_store *st;
    int lock_fd;
    char *settings;
    ddps_tensor ctx; /* [nc+1,1,77,C]: row 0 the null prompt, row c+1 class c's */
    ddps_tensor ctx_null;
    ddps_scorer sc;
    int ts[DDPS_MAX_TIMESTEPS];
    ddps_run_stats stats;
    int nc;
    int *class_ids;
    char **prompts;
    /* the plan (run_plan) */
    int G;          /* images per group */
    char *in_shard; /* per item: in this shard's share; NULL: not sharded */
    int *load;      /* items to decode, in order */
    int nload;
    char *is_todo;  /* per item: not in the store yet */
    int ntodo;
    long already;
    int *left;      /* per class: images still to score */
    double t_decode, t_cluster;
} score_run;

/* The option checks made before anything is opened (ddps_score_check);
 * *prec gets the parsed precision. */
static int check_opts(const ddps_score_opts *o, ddps_precision *prec, ddps_err *err) {
    if (ddps_score_check(&o->p, err) != 0) return -1;
    *prec = DDPS_PREC_F32;
    return o->p.precision ? ddps_precision_parse(o->p.precision, prec) : 0; /* checked: 0 */
}

/* Scans the data folder into r->ds, warns about what it skipped and starts
 * the run's list of skipped files. */
static int run_dataset(score_run *r, ddps_err *err) {
    const ddps_score_opts *o = r->o;
    ddps_dataset *ds = &r->ds;
    ddps_dataset_opts dopt = {o->p.max_per_class, o->p.seed, o->p.class_names, o->p.classes, o->p.n_classes};
    if (ddps_dataset_scan(o->data_dir, &dopt, ds, err) != 0) return -1;
    if (!o->p.class_names && ds->n_classes > 0 && looks_like_wnid(ds->classes[0].name))
        ddps_warn("class folders look like WordNet ids (%s ...): prompts will say \"%s\"; pass --class-names with "
                  "ImageNet's LOC_synset_mapping.txt or a wnid/prompt_name TSV to use class names",
                  ds->classes[0].name, ds->classes[0].name);
    for (int i = 0; i < ds->n_skipped; i++) ddps_warn("skipped %s", ds->skipped[i]);
    r->skipped = ddps_calloc((size_t)ds->n_skipped + (size_t)ds->n_items + 1, sizeof *r->skipped);
    for (int i = 0; i < ds->n_skipped; i++) r->skipped[r->n_skipped++] = ddps_strdup(ds->skipped[i]);
    return 0;
}

/* Opens the backend, the model and the store, and binds the store to the
 * settings and model (a store made otherwise is refused). */
static int run_open(score_run *r, ddps_precision prec, ddps_err *err) {
    const ddps_score_opts *o = r->o;
    int rc = 0;
    r->be = ddps_backend_new(o->p.device, prec, o->p.threads, err);
    if (!r->be) rc = -1;
    if (rc == 0) rc = ddps_sd_load_ex(o->model_dir, o->p.config_dir, r->be, DDPS_PART_ALL, &r->sd, err);
    if (rc == 0) {
        int T = r->sd->sched_cfg.num_train_timesteps;
        r->sc.be = r->be;
        r->sc.sd = r->sd;
        r->sc.dim = ddps_dift_dim(&r->sd->unet_cfg);
        r->sc.K = ddps_score_timesteps(&o->p, T, r->ts, err);
        if (r->sc.K < 0) rc = -1;
        if (rc == 0 && (o->p.dift_t < 0 || o->p.dift_t >= T))
            rc = ddps_fail_usage(err, "--dift-t %d: outside 0..%d", o->p.dift_t, T - 1);
    }
    if (rc == 0) rc = ddps_store_open(o->store_path, 0, &r->st, err);
    if (rc == 0) rc = ddps_store_lock(o->store_path, &r->lock_fd, err); /* one writer (store_guard.h) */
    if (rc == 0) {
        r->settings = settings_json(o, r->ts, r->sc.K, r->ds.root);
        rc = ddps_store_bind(r->st, r->settings, r->sd->identity_hex, err);
    }
    if (rc == 0) rc = ddps_store_verify(r->st, err); /* what select would refuse, refused now */
    if (rc == 0) rc = ddps_store_set_meta(r->st, "data_root", r->ds.root, err);
    if (rc == 0) rc = ddps_store_set_meta(r->st, "ddps_version", DDPS_VERSION, err);
    if (rc == 0) rc = ddps_store_set_meta(r->st, "model_dir", o->model_dir, err);
    return rc;
}

/* Class ids and prompts (row 0 the null prompt); then the text encoder
 * once for all of them, into r->ctx. */
static int run_prompts(score_run *r, ddps_err *err) {
    const ddps_score_opts *o = r->o;
    int nc = r->nc = r->ds.n_classes, rc = 0;
    r->class_ids = ddps_calloc((size_t)nc + 1, sizeof *r->class_ids);
    r->prompts = ddps_calloc((size_t)nc + 1, sizeof *r->prompts);
    for (int i = 0; i < nc; i++) {
        const ddps_class *cls = &r->ds.classes[i];
        r->prompts[i + 1] = ddps_prompt_format(o->p.prompt, cls->prompt_name);
        rc = ddps_store_class_id(r->st, cls->name, cls->prompt_name, r->prompts[i + 1], &r->class_ids[i], err);
        if (rc != 0) return rc;
    }
    r->prompts[0] = ddps_strdup(o->p.null_prompt);
    int32_t *ids = ddps_malloc((size_t)(nc + 1) * DDPS_CLIP_LEN * sizeof(int32_t));
    for (int i = 0; i <= nc; i++) {
        if (ddps_tokenize_truncated(r->sd->tok, r->prompts[i], ids + (size_t)i * DDPS_CLIP_LEN))
            ddps_warn("prompt \"%s\" is longer than 75 tokens and was truncated", r->prompts[i]);
    }
    r->ctx = ddps_tensor_alloc(r->be, nc + 1, 1, DDPS_CLIP_LEN, r->sd->clip_cfg.hidden_size);
    if (!r->ctx.data) rc = ddps_fail_resource(err, "out of memory for the prompt embeddings");
    if (rc == 0 && ddps_clip_forward(r->be, r->sd->text, ids, &r->ctx) != 0) rc = ddps_backend_error(r->be, err);
    if (rc == 0) r->ctx_null = ddps_slice(r->be, &r->ctx, 0, 1);
    free(ids);
    r->stats.text_prompts += nc + 1;
    return rc;
}

/* The plan, in fixed groups: each class's images, in dataset order, are cut
 * into groups of G (--batch-images); the images of a group that share a
 * resized size are scored as one batch. A group with anything left to do is
 * computed whole (already stored members are not stored again), so a
 * resumed run forms exactly the batches an uninterrupted run forms and
 * stores the same numbers. Fills load, is_todo, left and the counts. */
static int run_plan(score_run *r, ddps_err *err) {
    const ddps_score_opts *o = r->o;
    const ddps_dataset *ds = &r->ds;
    int rc = 0;
    /* Auto: on the CPU a batch of one image's 2K latents already keeps the
     * cores busy (batching two full-size images measured no faster, and
     * costs memory); a GPU wants many latents per call. */
    int G = r->G = o->p.batch_images > 0 ? o->p.batch_images : strcmp(o->p.device ? o->p.device : "cpu", "cpu") == 0 ? 1 : 8;
    /* A shard scores only its share of the groups (pipeline/shard.h). */
    if (o->p.shard_n > 0) {
        r->in_shard = ddps_calloc((size_t)ds->n_items + 1, 1);
        rc = ddps_shard_bind(r->st, ds, G, o->p.shard_k, o->p.shard_n, r->in_shard, err);
    }
    r->load = ddps_malloc((size_t)(ds->n_items > 0 ? ds->n_items : 1) * sizeof *r->load);
    r->is_todo = ddps_calloc((size_t)ds->n_items + 1, 1);
    r->left = ddps_calloc((size_t)r->nc + 1, sizeof *r->left);
    for (int c = 0; rc == 0 && c < r->nc; c++) {
        const ddps_class *cls = &ds->classes[c];
        for (int g = 0; rc == 0 && g < cls->count; g += G) {
            int end = g + G < cls->count ? g + G : cls->count, any = 0;
            if (r->in_shard && !r->in_shard[cls->first + g]) continue;
            for (int i = cls->first + g; rc == 0 && i < cls->first + end; i++) {
                int state;
                rc = ddps_store_image_state(r->st, ds->items[i].relpath, &state, err);
                r->is_todo[i] = state == 0;
                any |= state == 0;
                r->ntodo += state == 0;
                r->already += state != 0;
                r->left[c] += state == 0;
            }
            if (any)
                for (int i = cls->first + g; i < cls->first + end; i++) r->load[r->nload++] = i;
        }
    }
    if (rc == 0 && r->already)
        ddps_info("%s: %ld of %d images already scored, %d to go", o->store_path, r->already, ds->n_items, r->ntodo);
    /* unfinished until run_execute ends: what select and report warn about */
    int classes_todo = 0;
    for (int c = 0; c < r->nc; c++) classes_todo += r->left[c] > 0;
    char todo[96];
    snprintf(todo, sizeof todo, "%d image%s in %d class%s", r->ntodo, r->ntodo == 1 ? "" : "s", classes_todo,
             classes_todo == 1 ? "" : "es");
    if (rc == 0) rc = ddps_store_set_meta(r->st, "score_todo", todo, err);
    if (rc == 0) rc = ddps_store_set_meta(r->st, "score_complete", "0", err);
    return rc;
}

/* k-means of class ci's candidates, seeded from (seed, class folder name). */
static int run_cluster(score_run *r, int ci, ddps_err *err) {
    const char *name = r->ds.classes[ci].name;
    return ddps_store_cluster(r->st, r->class_ids[ci], r->o->p.clusters, ddps_class_cluster_seed(r->o->p.seed, name), err);
}

/* Marks a group's members that are unreadable or too large for this
 * machine; the ones still to do are recorded as bad in the store (and in
 * the run's skipped list). */
static int group_record_bad(score_run *r, ddps_loaded **group, int gn, int ci, ddps_err *err) {
    int rc = 0;
    for (int a = 0; rc == 0 && a < gn; a++) {
        const ddps_item *it = &r->ds.items[group[a]->index];
        ddps_err me;
        int rh = group[a]->resized.h, rw = group[a]->resized.w;
        int memory = 0;
        if (group[a]->ok && ddps_scorer_memory_check(&r->sc, rw, rh, &me) != 0) {
            memory = 1;
            /* too large for this machine: a bad image, not an abort of the run (memcheck.h) */
            group[a]->ok = 0;
            char *shown = ddps_display_name(it->relpath);
            snprintf(group[a]->error, sizeof group[a]->error, "%.250s: %.250s", shown, me.msg);
            free(shown);
        }
        if (!group[a]->ok && r->is_todo[group[a]->index]) {
            ddps_warn("skipped %s", group[a]->error);
            r->skipped[r->n_skipped++] = ddps_strdup(group[a]->error);
            rc = ddps_store_put_bad(r->st, r->class_ids[ci], it->relpath, group[a]->error, err);
            r->stats.images_bad++;
            r->n_memory += memory;
            r->n_extreme += !memory && group[a]->decoded;
        }
    }
    return rc;
}

/* Scores one batch (items[nb] of class ci, started at tg) and stores the
 * members the plan marked todo[b] (not in the store when the run started;
 * the store lock keeps it so), with their share of the group's time. */
static int batch_store(score_run *r, ddps_scored *items, const char *todo, int nb, int ci, double tg, ddps_err *err) {
    ddps_tensor cl = ddps_slice(r->be, &r->ctx, ci + 1, 1);
    for (int b = 0; b < nb; b++) items[b].cond = &cl;
    int rc = ddps_score_batch(&r->sc, items, nb, &r->ctx_null, 0, err);
    for (int b = 0; b < nb; b++) {
        ddps_scored *it = &items[b];
        if (rc == 0 && todo[b]) {
            ddps_image_result res;
            memset(&res, 0, sizeof res);
            res.class_id = r->class_ids[ci];
            res.relpath = it->key;
            res.width = it->orig_w, res.height = it->orig_h;
            res.rw = it->img->w, res.rh = it->img->h;
            res.image_score = it->image_score;
            res.n_cand = it->n_cand;
            res.cand = it->cand;
            res.dim = r->sc.dim;
            res.seconds = (ddps_now(r->be) - tg) / (nb > 0 ? nb : 1);
            rc = ddps_store_put_image_map(r->st, &res, it->map, it->map_h, it->map_w, err);
            if (rc == 0) r->stats.images_scored++;
        }
        ddps_scored_free(it);
    }
    return rc;
}

/* Batches of a group: the good members sharing a resized size, in order of
 * first appearance, each scored and stored. items: scratch for gn. */
static int group_batches(score_run *r, ddps_loaded **group, int gn, int ci, double tg, ddps_scored *items,
                         ddps_err *err) {
    int rc = 0;
    char *taken = ddps_calloc((size_t)gn, 1), *todo = ddps_calloc((size_t)gn, 1);
    for (int a = 0; rc == 0 && a < gn; a++) {
        if (taken[a] || !group[a]->ok) continue;
        int nb = 0;
        for (int b = a; b < gn; b++) {
            if (taken[b] || !group[b]->ok || group[b]->resized.w != group[a]->resized.w ||
                group[b]->resized.h != group[a]->resized.h)
                continue;
            taken[b] = 1;
            ddps_scored *it = &items[nb++];
            memset(it, 0, sizeof *it);
            it->img = &group[b]->resized;
            it->orig_w = group[b]->orig_w, it->orig_h = group[b]->orig_h;
            it->key = r->ds.items[group[b]->index].relpath;
            todo[nb - 1] = r->is_todo[group[b]->index];
        }
        rc = batch_store(r, items, todo, nb, ci, tg, err);
    }
    free(taken);
    free(todo);
    return rc;
}

/* Takes the next group from the loader: consecutive loaded items of one
 * class, at most G, of the same group index. Returns its size (0: none). */
static int next_group(score_run *r, ddps_loader *ld, int *gi, ddps_loaded **group) {
    const ddps_item *first = &r->ds.items[r->load[*gi]];
    const ddps_class *cls = &r->ds.classes[first->class_idx];
    int gstart = (r->load[*gi] - cls->first) / r->G * r->G + cls->first, gn = 0;
    while (*gi < r->nload && r->load[*gi] < gstart + r->G && r->ds.items[r->load[*gi]].class_idx == first->class_idx) {
        ddps_loaded *x = ddps_loader_next(ld);
        if (!x) break; /* cannot happen: the loader delivers every index it was given */
        group[gn++] = x;
        (*gi)++;
    }
    return gn;
}

/* Decodes, scores and stores the planned groups; a class is clustered as
 * soon as its last image is in. */
static int run_groups(score_run *r, ddps_loader *ld, ddps_progress *prog, ddps_err *err) {
    const ddps_score_opts *o = r->o;
    int G = r->G, rc = 0;
    long done = 0;
    ddps_loaded **group = ddps_calloc((size_t)G, sizeof *group);
    ddps_scored *items = ddps_calloc((size_t)G, sizeof *items);
    for (int gi = 0; rc == 0 && gi < r->nload;) {
        double t0 = ddps_now(NULL);
        int first = r->load[gi], gn = next_group(r, ld, &gi, group);
        if (gn == 0) break;
        r->t_decode += ddps_now(NULL) - t0;
        int ci = r->ds.items[first].class_idx;
        const ddps_class *cls = &r->ds.classes[ci];
        int gstart = (first - cls->first) / G * G + cls->first;
        double tg = ddps_now(NULL);
        rc = group_record_bad(r, group, gn, ci, err); /* bad members are recorded (when new) and left out */
        if (rc == 0) rc = group_batches(r, group, gn, ci, tg, items, err);
        for (int a = 0; a < gn; a++) {
            done += r->is_todo[group[a]->index];
            ddps_loaded_free(group[a]);
            group[a] = NULL;
        }
        ddps_progress_update(prog, done);
        if (o->on_progress) o->on_progress(o->progress_arg, done, r->ntodo);
        for (int i = gstart; i < gstart + G && i < cls->first + cls->count; i++) r->left[ci] -= r->is_todo[i];
        if (rc == 0 && r->left[ci] == 0 && !r->in_shard) {
            double tc = ddps_now(NULL);
            rc = run_cluster(r, ci, err);
            r->t_cluster += ddps_now(NULL) - tc;
        }
    }
    for (int a = 0; a < G; a++)
        if (group[a]) ddps_loaded_free(group[a]);
    free(group);
    free(items);
    return rc;
}

/* Executes the plan: the loader, the progress display and the groups; then
 * the classes with nothing new that still need (re)clustering (an
 * interrupted run), or the shard's completion mark. */
static int run_execute(score_run *r, ddps_err *err) {
    const ddps_score_opts *o = r->o;
    ddps_loader *ld = NULL;
    int rc = ddps_loader_start(&r->ds, r->load, r->nload, o->p.size, o->p.low_res, 0, 1, 2 * r->G + 2, &ld, err);
    ddps_progress *prog = rc == 0 && !o->on_progress ? ddps_progress_start("scoring", r->ntodo, "img", 0) : NULL;
    if (rc == 0 && o->on_progress) o->on_progress(o->progress_arg, 0, r->ntodo);
    if (rc == 0) rc = run_groups(r, ld, prog, err);
    ddps_progress_end(prog);
    if (ld) ddps_loader_free(ld);
    for (int i = 0; rc == 0 && !r->in_shard && i < r->nc; i++) {
        int needs;
        rc = ddps_store_needs_clustering(r->st, r->class_ids[i], &needs, err);
        if (rc == 0 && needs) rc = run_cluster(r, i, err);
    }
    if (rc == 0 && r->in_shard) rc = ddps_store_set_meta(r->st, "shard_complete", "1", err);
    if (rc == 0) rc = ddps_store_set_meta(r->st, "score_complete", "1", err);
    return rc;
}

/* The run's log row in the store (when it did anything) and the summary
 * lines; returns rc, or -1 when the log row fails on a good run. */
static int run_report(score_run *r, int rc, ddps_err *err) {
    r->stats.vae_images = r->sc.vae_images;
    r->stats.unet_latents = r->sc.unet_latents;
    r->stats.seconds = ddps_now(NULL) - r->t_start;
    const ddps_run_stats *s = &r->stats;
    if (r->st && (s->images_scored || s->images_bad)) {
        ddps_err e2;
        if (ddps_store_add_run(r->st, s, &e2) != 0 && rc == 0) {
            *err = e2;
            rc = -1;
        }
    }
    if (rc == 0) {
        char dur[32];
        ddps_format_duration(s->seconds, dur, sizeof dur);
        ddps_info("scored %ld images (%ld skipped: %ld unreadable, %ld beyond the %d:1 aspect bound, %ld too large for "
                  "memory) in %s: decode wait %.1f s, VAE %.1f s, UNet %.1f s, DIFT %.1f s, clustering %.1f s; %ld UNet "
                  "latents, %ld VAE encodes",
                  s->images_scored, s->images_bad, s->images_bad - r->n_extreme - r->n_memory, r->n_extreme,
                  DDPS_RESIZE_MAX_ASPECT, r->n_memory, dur, r->t_decode, r->sc.t_vae, r->sc.t_unet, r->sc.t_dift,
                  r->t_cluster, s->unet_latents, s->vae_images);
    }
    if (r->n_skipped) {
        ddps_info("%d file%s skipped:", r->n_skipped, r->n_skipped > 1 ? "s" : "");
        for (int i = 0; i < r->n_skipped; i++) ddps_info("  %s", r->skipped[i]);
    }
    return rc;
}

/* Frees everything the run holds (closing the store releases the lock). */
static void run_free(score_run *r) {
    for (int i = 0; i < r->n_skipped; i++) free(r->skipped[i]);
    free(r->skipped);
    free(r->in_shard);
    free(r->is_todo);
    free(r->left);
    free(r->load);
    for (int i = 0; r->prompts && i <= r->nc; i++) free(r->prompts[i]);
    free(r->prompts);
    free(r->class_ids);
    free(r->settings);
    if (r->ctx.data) ddps_tensor_free(r->be, &r->ctx);
    if (r->st) ddps_store_close(r->st);
    ddps_store_unlock(r->lock_fd);
    if (r->be) ddps_release(r->be, 0);
    ddps_sd_free(r->be, r->sd);
    ddps_backend_free(r->be);
    ddps_dataset_free(&r->ds);
}

int ddps_score_run(const ddps_score_opts *o, ddps_run_stats *totals, ddps_err *err) {
    score_run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.t_start = ddps_now(NULL);
    r.lock_fd = -1;
    r.sc.p = &o->p;
    r.sc.ts = r.ts;
    r.stats.command = o->p.command ? o->p.command : "score";
    ddps_precision prec;
    if (check_opts(o, &prec, err) != 0) return -1;
    if (run_dataset(&r, err) != 0) return -1;
    int rc = run_open(&r, prec, err);
    if (rc == 0) rc = run_prompts(&r, err);
    if (rc == 0) rc = run_plan(&r, err);
    if (rc == 0) rc = run_execute(&r, err);
    if (rc != 0 && r.st && err && err->kind == DDPS_KIND_RESOURCE && strstr(err->msg, "disk full")) {
        /* what the user needs to know: nothing stored is lost, a rerun continues */
        size_t n = strlen(err->msg);
        long stored = r.already + r.stats.images_scored;
        snprintf(err->msg + n, sizeof err->msg - n, "; %ld image%s stored (%ld in this run): free some space and "
                 "rerun the same command to continue", stored, stored == 1 ? " is" : "s are", r.stats.images_scored);
    }
    rc = run_report(&r, rc, err);
    if (totals) *totals = r.stats;
    run_free(&r);
    return rc;
}
