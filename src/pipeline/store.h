/* The store: one SQLite file with everything scoring produced, so that
 * `ddps select` for any IPC or class subset needs no model evaluation
 * (METHOD.md, "Outputs a user expects").
 *
 * Durability: WAL journal with synchronous=NORMAL. Every call that writes
 * commits before it returns, so committed data survives a kill -9 of the
 * process (a power cut may lose the last few commits, never corrupt the file).
 * One image and all of its candidates go in one transaction: a killed run
 * loses at most the image in flight, and a resumed run skips what is stored.
 *
 * Identity: a ddps store carries application_id 'DDPS' and a schema version
 * (PRAGMA user_version). A file that is not SQLite, an SQLite file of another
 * program and a store of a newer schema are refused with one clear line.
 *
 * Trust: the file may be corrupt or hand-edited. Everything read back is
 * checked (feature BLOB lengths, finite numbers, sizes, cluster ids and
 * ranks) and an inconsistency is an error naming the store and the row.
 *
 * Tables (schema 1):
 *   meta(key, value)                      settings, model_id, data_root, ...
 *   classes(id, name, prompt_name, prompt, clustered_n, clustered_k, clustered_seed)
 *   images(id, class_id, relpath, state, width, height, rw, rh, image_score,
 *          seconds, reason)               state 1 = scored, 2 = bad
 *   candidates(id, image_id, idx, x0, y0, x1, y1, rx, ry, rw, rh, score,
 *              cluster, dist)             idx 0 = the image's best window
 *   features(cand_id, vec)                vec: dim little-endian f32
 *   clusters(class_id, cluster, size, median_score, rank)   rank 1 = best
 *   runs(id, command, finished, seconds, images_scored, images_bad,
 *        unet_latents, vae_images, text_prompts)
 *   maps(image_id, h, w, data)            data: h*w little-endian f32, the
 *                                         channel mean of the Stage-I d at
 *                                         latent resolution (for reports)
 *
 * The maps table is an addition within schema 1: ddps creates it (IF NOT
 * EXISTS) whenever it opens a store for writing, older ddps versions ignore
 * it, and a store written before it existed simply has no maps (read-only
 * opens see ddps_store_has_maps() = 0; reports then say heatmaps are
 * unavailable). Since the bilinear upsampling and the channel mean are both
 * linear, D = upsample(map) and the patch scores of any window size and
 * stride follow from the map exactly (up to float rounding).
 *
 * Order: a class's candidates are always handled sorted by (relpath, idx) in
 * byte order, never by insertion order, so clustering gives the same result
 * for a single run, a resumed run and a sharded run.
 */
#ifndef DDPS_PIPELINE_STORE_H
#define DDPS_PIPELINE_STORE_H

#include <stdint.h>

#include "ddps.h"
#include "pipeline/cluster.h"
#include "pipeline/window.h"
#include "util/err.h"

#define DDPS_STORE_SCHEMA 1

typedef struct ddps_store ddps_store;

/* Opens or creates (readonly = 0) a store. WAL journal, synchronous=NORMAL
 * (committed data survives kill -9 of the process), 30 s busy timeout,
 * foreign keys on. readonly = 1 never creates: a missing file is an error.
 * A file that is not a ddps store (or a newer schema) is refused with a
 * clear message naming the path. */
int ddps_store_open(const char *path, int readonly, ddps_store **out, ddps_err *err);
void ddps_store_close(ddps_store *s);
/* Refuses names SQLite would not open as a plain file ("", ":memory:",
 * "file:..." URIs): results would silently vanish. ddps_store_open checks
 * it too; the commands call it early (a bad invocation, exit 2). */
int ddps_store_name_check(const char *path, ddps_err *err);
/* The path given to ddps_store_open (for messages). */
const char *ddps_store_path(const ddps_store *s);

/* Binds the store to the scoring settings (a JSON object text) and the model
 * identity. The first call records them; later calls must match exactly (key
 * by key, parsed with jansson), else the error names the store, the first
 * setting that differs (in key order) with both values, or "model differs",
 * and says to use a new --store. */
int ddps_store_bind(ddps_store *s, const char *settings_json, const char *model_id, ddps_err *err);
/* Reads a meta value ("settings", "model_id", "data_root", "ddps_version",
 * "feature_dim", ...); *value is heap (free it) or NULL when absent.
 * ddps_store_set_meta writes (replaces) one. */
int ddps_store_get_meta(ddps_store *s, const char *key, char **value, ddps_err *err);
int ddps_store_set_meta(ddps_store *s, const char *key, const char *value, ddps_err *err);

/* Class by folder name (non-empty); inserted if new. prompt_name/prompt
 * recorded (updated if changed; NULL leaves the stored value). */
int ddps_store_class_id(ddps_store *s, const char *name, const char *prompt_name, const char *prompt, int *id,
                        ddps_err *err);
/* 0 = not yet scored, 1 = scored, 2 = recorded as bad (skipped). */
int ddps_store_image_state(ddps_store *s, const char *relpath, int *state, ddps_err *err);

typedef struct {
    int class_id;
    const char *relpath; /* relative to the data root, '/'-separated */
    int width, height;   /* original image size (after EXIF orientation) */
    int rw, rh;          /* resized image size used by Stage I */
    float image_score;   /* mean of the score map (the whole-image score) */
    int n_cand;
    const ddps_candidate *cand; /* best first */
    int dim;                    /* feature length, same for the whole store */
    double seconds;             /* time spent scoring this image */
} ddps_image_result;

/* Image row + its candidates in ONE transaction (a kill -9 loses at most the
 * image in flight). Storing an image twice is an error (the caller checks
 * ddps_store_image_state first). Checked before writing: relpath is
 * relative and has no "." / ".." / empty component, sizes are positive,
 * scores and features finite, 0 <= x0 < x1 <= width (and y likewise, 0.5 px
 * of rounding allowed), and dim equals the store's feature_dim (the first
 * image with candidates sets it). */
int ddps_store_put_image(ddps_store *s, const ddps_image_result *r, ddps_err *err);
/* The same, with the image's Stage-I map in the same transaction: map_h x
 * map_w floats (1..4096 per side, finite), the channel mean of d at latent
 * resolution; map NULL stores none. */
int ddps_store_put_image_map(ddps_store *s, const ddps_image_result *r, const float *map, int map_h, int map_w,
                             ddps_err *err);
/* Records a skipped (unreadable/corrupt) image with its reason. */
int ddps_store_put_bad(ddps_store *s, int class_id, const char *relpath, const char *reason, ddps_err *err);
/* Clustering a stored class (store_cluster.c over pipeline/cluster.h):
 * ddps_store_cluster reads the class, runs k-means (k in
 * 1..DDPS_MAX_CLUSTERS, seed) and writes per candidate its cluster and
 * distance, per cluster its size, median score and rank; re-clustering
 * replaces the old result, and the class is marked clustered with the
 * candidate count, k and seed (a class without candidates: no clusters).
 * The same in two steps, so that k-means can run in another process than
 * the one that writes (ddps merge, MPI jobs): ddps_store_cluster_compute
 * reads and computes (its own read transaction), ddps_store_cluster_write
 * stores a computed ddps_clustering in one transaction after checking it
 * still fits the class (same candidate count, clusters and distances in
 * range). */
int ddps_store_cluster(ddps_store *s, int class_id, int k, uint64_t seed, ddps_err *err);
int ddps_store_cluster_compute(ddps_store *s, int class_id, int k, uint64_t seed, ddps_clustering *out, ddps_err *err);
int ddps_store_cluster_write(ddps_store *s, const ddps_clustering *c, ddps_err *err);
/* 1 when the class's clustering is missing or stale (candidates added since). */
int ddps_store_needs_clustering(ddps_store *s, int class_id, int *needs, ddps_err *err);

/* Accounting per command run (score, distill, select), shown in manifests. */
typedef struct {
    const char *command;
    double seconds;
    long images_scored, images_bad;
    long unet_latents; /* UNet evaluations, counted per latent */
    long vae_images;   /* VAE encoder evaluations, per image or patch */
    long text_prompts; /* text encoder evaluations, per prompt */
} ddps_run_stats;
int ddps_store_add_run(ddps_store *s, const ddps_run_stats *st, ddps_err *err);
/* Totals over all runs recorded so far (for the manifest's "model
 * evaluations"); sum->command is NULL. */
int ddps_store_totals(ddps_store *s, ddps_run_stats *sum, ddps_err *err);

/* ---- Reading back (select, reports) ---- */

/* A class as listed (the public ddps_db_class: id, name as stored (may be
 * hostile, even empty: sanitise before use as a path), prompt_name and
 * prompt (NULL when absent), images scored, recorded as bad, candidates,
 * clustered (1 when a clustering exists and is current) and clustered_k (k
 * of the last clustering, 0 = never)). */
typedef ddps_db_class ddps_class_info;

/* All classes sorted by name (byte order). Free with ddps_store_free_classes. */
int ddps_store_list_classes(ddps_store *s, ddps_class_info **out, int *n, ddps_err *err);
void ddps_store_free_classes(ddps_class_info *c, int n);

/* A scored image: the public ddps_db_image (relpath, original and resized
 * size, image score); its map fields stay empty in ddps_store_load_class
 * (the maps come from ddps_store_load_maps). */
typedef ddps_db_image ddps_stored_image;

/* A stored candidate and a cluster: the public ddps_db_cand (image: index
 * into ddps_class_data.images; idx: rank inside its image, 0 = best; box in
 * original and resized pixels; Stage-I score; cluster -1, cluster_rank 0
 * and dist 0 when not clustered) and ddps_db_cluster. */
typedef ddps_db_cand ddps_stored_cand;
typedef ddps_db_cluster ddps_stored_cluster;

typedef struct {
    int class_id;
    int n_images;
    ddps_stored_image *images; /* sorted by relpath */
    int n_cand;
    ddps_stored_cand *cand; /* sorted by (relpath, idx) */
    long long *cand_ids;    /* the candidates' row ids in the store */
    int dim;                /* feature length (0 when the store has none) */
    float *features;        /* n_cand * dim, only when asked for */
    int n_clusters;
    ddps_stored_cluster *clusters; /* sorted by rank */
} ddps_class_data;

/* Loads one class (scored images, candidates with their clustering, clusters
 * by rank), in one read transaction. with_features = 0 skips the feature
 * BLOBs (what select does: fast even for large stores). Every value is
 * validated; a corrupt row is an error naming the store and the image.
 * Free with ddps_class_data_free (also safe on a zeroed or failed result). */
int ddps_store_load_class(ddps_store *s, int class_id, int with_features, ddps_class_data *out, ddps_err *err);
void ddps_class_data_free(ddps_class_data *d);
/* A computed clustering put into a class loaded from the same store
 * (ddps_store_load_class), in memory only: what loading it back after
 * ddps_store_cluster_write would give (per candidate cluster, rank and
 * distance; clusters in rank order). DATA error when the candidate counts
 * differ. */
int ddps_class_apply_clustering(ddps_class_data *d, const ddps_clustering *c, ddps_err *err);

typedef struct {
    int class_id;
    char *relpath;
    char *reason;
} ddps_bad_image;

/* Images recorded as bad, of one class (class_id >= 1) or of all (0),
 * sorted by relpath. Free with ddps_store_free_bad. */
int ddps_store_list_bad(ddps_store *s, int class_id, ddps_bad_image **out, int *n, ddps_err *err);
void ddps_store_free_bad(ddps_bad_image *b, int n);

/* One row of the run log (reports). */
typedef struct {
    char *command;  /* "score", "distill", "select" */
    char *finished; /* UTC, ISO 8601 */
    ddps_run_stats st; /* st.command is NULL */
} ddps_stored_run;

/* Every recorded run, oldest first. Free with ddps_store_free_runs. */
int ddps_store_list_runs(ddps_store *s, ddps_stored_run **out, int *n, ddps_err *err);
void ddps_store_free_runs(ddps_stored_run *r, int n);

/* ---- Stage-I maps (reports) ---- */

/* *has = 1 when the store has a maps table (a store written by a ddps that
 * records maps, or opened for writing by one). */
int ddps_store_has_maps(ddps_store *s, int *has, ddps_err *err);

typedef struct {
    int h, w;    /* 0 when the image has no map */
    float *data; /* h * w, row-major; NULL when none */
} ddps_stored_map;

/* The maps of a loaded class's images: out[i] for d->images[i] (absent ones
 * zeroed). Sizes are checked (1..4096 per side, BLOB length h*w*4, finite
 * values). Without a maps table every entry is empty. Free with
 * ddps_store_free_maps(out, d->n_images). */
int ddps_store_load_maps(ddps_store *s, const ddps_class_data *d, ddps_stored_map **out, ddps_err *err);
void ddps_store_free_maps(ddps_stored_map *m, int n);

#endif
