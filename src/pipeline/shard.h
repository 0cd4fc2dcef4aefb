/* Sharded scoring: one scoring job split over N processes (an MPI job, a
 * Slurm job array, a shell loop), each filling its own shard store, then
 * merged into the one store a single process would have written.
 *
 * Shares: the work units are the fixed batch groups of scoring (each class's
 * images in dataset order, cut into groups of G = --batch-images). The
 * groups, in dataset order, are cut into N contiguous runs of about equal
 * image count (a group goes to share floor((2 * images before it + its size)
 * * N / (2 * total))), so a share is a contiguous range of the dataset: one
 * class may span several shares and one share may hold several classes.
 * Every image is scored exactly as in a single run (its noise comes from
 * (seed, relpath), its batch is its group), so the merged store holds the
 * same numbers bit for bit (same machine kind, --threads, --batch-images).
 *
 * A shard store records meta "shard" = "K/N", "shard_plan" (a hash of N, G
 * and every image path of the dataset, so all shards of a merge cut the same
 * listing the same way), "shard_images" (images in its share) and
 * "shard_complete" = "1" once its share is done. Clustering needs every
 * candidate of a class, so shards are not clustered: the merge does it.
 *
 * Merging checks the shards (same settings and model, same plan, each share
 * once, none missing, each complete and holding exactly its share), copies
 * them into "OUT.merging" through the validating store API, clusters every
 * class there and renames it to OUT: OUT appears only complete, and a
 * failed merge leaves nothing at OUT. Only the merging process writes.
 */
#ifndef DDPS_PIPELINE_SHARD_H
#define DDPS_PIPELINE_SHARD_H

#include <stdint.h>

#include "pipeline/dataset.h"
#include "pipeline/store.h"
#include "util/err.h"

/* "STORE.shard-K-of-N" (heap): where share K of N of a job whose final store
 * is STORE is kept. */
char *ddps_shard_path(const char *store, int k, int n);
/* Parses "K/N" (0 <= K < N, 1 <= N <= 100000); -1 with err naming what. */
int ddps_shard_parse(const char *text, int *k, int *n, ddps_err *err);

/* Marks in in_share[i] (ds->n_items entries) the items of share k of n with
 * groups of G images; returns how many; *plan gets the plan hash. */
long ddps_shard_select(const ddps_dataset *ds, int G, int k, int n, char *in_share, uint64_t *plan);

/* Called by ddps_score_run on a shard store after binding its settings:
 * fills in_share as ddps_shard_select does and records (first run) or
 * checks (later runs) the shard meta. A store of another share, another
 * plan (other --batch-images or dataset listing) or a store that is not a
 * shard is refused, naming the store. */
int ddps_shard_bind(ddps_store *st, const ddps_dataset *ds, int G, int k, int n, char *in_share, ddps_err *err);

/* One class of a merge, for spreading the clustering over processes. */
typedef struct {
    int class_id;
    char *name;
    long n_cand;
    uint64_t seed; /* the class's k-means seed, as a single run uses */
} ddps_merge_class;

typedef struct {
    char *out, *tmp; /* OUT and OUT.merging */
    int k;           /* --clusters of the shards */
    int n_classes;
    ddps_merge_class *classes; /* sorted by name */
} ddps_merge;

/* Checks the n shard stores (read-only; the first problem is one line
 * naming the shard and what is wrong or missing) and copies them into
 * m->tmp (unclustered), then closes it. Nothing is created when a check
 * fails; on any failure m->tmp is removed. An existing out is refused
 * unless it is a finished store of the same job (not a shard, same settings
 * and model, no score writing to it) or force is set. The shards' -wal/-shm
 * left by the read-only reads are removed (ddps_store_tidy_wal). */
int ddps_merge_begin(const char *out, char *const *shards, int n, int force, ddps_merge *m, ddps_err *err);
/* Which process clusters class i of a merge over `size` processes: the
 * largest classes first, each to the least loaded process (deterministic,
 * every process computes the same). owner gets m->n_classes entries. */
void ddps_merge_assign(const ddps_merge *m, int size, int *owner);
/* Renames m->tmp to m->out (replacing an older OUT). */
int ddps_merge_commit(ddps_merge *m, ddps_err *err);
/* Removes m->tmp (and its -wal/-shm) if present; frees m. */
void ddps_merge_free(ddps_merge *m);

/* The whole merge in one process: begin, cluster every class, commit. */
int ddps_merge_run(const char *out, char *const *shards, int n, int force, ddps_err *err);

#endif
