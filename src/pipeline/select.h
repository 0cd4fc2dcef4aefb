/* Selection: distilled sets for any IPC and any class subset, from a store,
 * with no model evaluation (METHOD.md, "Selection" and "Outputs a user
 * expects").
 *
 * Per class and IPC:
 *   - mosaic mode when ipc <= mosaic_max_ipc: 4 * ipc patches are needed and
 *     every output is a 2x2 mosaic; otherwise ipc patches, one per output;
 *   - clusters are ranked by median Stage-I score (descending, from the
 *     store); the top N = top_clusters clusters give needed / N patches each,
 *     nearest to the centroid first (a cluster with too few gives all it
 *     has); what is still missing is filled with the highest-scoring unused
 *     candidates of the class;
 *     top_clusters = 0 takes the highest-scoring candidates alone (the
 *     paper's "w/o Cluster" row);
 *   - the selected list is ordered cluster by cluster (rank order, each
 *     cluster's picks by distance), then the fill (by score); mosaic i holds
 *     patches i, n+i, 2n+i, 3n+i (n = number of mosaics), so each mosaic
 *     mixes clusters. Ties: candidate order, i.e. (source path, window index);
 *   - a class with too few candidates gets what it has: as many full mosaics
 *     as the patches allow (patches beyond 4n are left out), single-patch
 *     images when fewer than 4 exist; the shortfall is a warning per class and
 *     is recorded in the manifest;
 *   - low-resolution stores (settings "low_res": true): no crop and no mosaic;
 *     every output is a whole source image, decoded and re-encoded in the
 *     output format at its original size.
 * Patches are cut from the ORIGINAL image: the stored box rounded to integer
 * pixels and clamped inside the image, resized with ddps_image_resize (PIL
 * bilinear) to output_size (single) or to the mosaic cell (output_size / 2;
 * the right column and bottom row get the odd pixel when output_size is odd).
 * Mosaic cells, row-major: patch 0 top-left, 1 top-right, 2 bottom-left,
 * 3 bottom-right.
 *
 * Output, per IPC:
 *   OUT/ipc<N>/<folder>/<folder>_<index:04d>.<png|jpg>   (torchvision ImageFolder)
 *   OUT/ipc<N>/manifest.csv   one row per patch: class, folder, file, image
 *                             index, slot, source, x0, y0, x1, y1 (the integer
 *                             crop box in original pixels), score, cluster,
 *                             cluster_rank, dist, fill
 *   OUT/ipc<N>/manifest.json  the same per image, plus per class the counts
 *                             and shortfall, and per run: settings and model
 *                             identity from the store, ddps version, command,
 *                             counts, timings (load, selection, writing) and
 *                             model evaluations (zero for selection, and the
 *                             store's scoring totals).
 * <folder> is the class name made safe: '/', '\', control bytes and invalid
 * UTF-8 become '_', leading dots become '_', an empty name becomes "_", long
 * names are cut to 200 bytes, and a name that collides with an earlier
 * class's folder (classes in name order) gets "_2", "_3", ... appended. No
 * class name can make ddps write outside OUT.
 * WordNet-id classes also get OUT/ipc<N>/class_to_idx.json and classes.txt
 * (pipeline/class_map.h): ImageFolder index, folder, wnid, ImageNet-1K index.
 * An existing OUT/ipc<N> is replaced only when the new one is complete: the
 * set is written to OUT/.ipc<N>.tmp-<pid> and swapped in by rename.
 *
 * Baselines (ddps_select_params.baseline; include/ddps.h): the candidates
 * are replaced by random windows or whole random pictures, taken in their
 * random order, with the layout, manifests and class maps above (the
 * manifest's "baseline" and "seed" say which); score 0 and cluster -1 in
 * the manifests. random-images never makes mosaics and writes at most one
 * output per picture (a class with fewer pictures than the IPC is short);
 * random-windows is refused on a low-res store.
 *
 * Clustering (not for baselines or top_clusters = 0, which do not use it):
 * a class whose clustering is missing or stale (candidates added since: a
 * score stopped before it clustered) is clustered in memory, exactly as
 * score would cluster it (k-means with the store's "clusters" and "seed"
 * settings, no model evaluation); select never writes a clustering, so
 * read-only stores work. The store records the select run (its run log)
 * when it is writable.
 */
#ifndef DDPS_PIPELINE_SELECT_H
#define DDPS_PIPELINE_SELECT_H

#include "ddps.h"
#include "pipeline/store.h"
#include "util/err.h"

/* One selection run: the public settings (include/ddps.h; checked with the
 * IPCs by ddps_select_check, pipeline/params.h) and where it reads and writes. */
typedef struct {
    ddps_select_params p;
    const char *store_path;
    const char *out_dir;
    const int *ipc; /* e.g. {1, 10, 50} */
    int n_ipc;
} ddps_select_opts;

/* Zeroes o and sets o->p to ddps_select_params_init's defaults. */
void ddps_select_defaults(ddps_select_opts *o);

/* Writes OUT/ipc<N> for every N in o->ipc. With command "select" (or NULL)
 * the run is recorded in the store (zero model evaluations) when the store
 * is writable; "distill" leaves the accounting to its caller. Prints one
 * line per IPC with the timing split (load, selection, writing). */
int ddps_select_run(const ddps_select_opts *o, ddps_err *err);

/* ---- The selection rule alone (no I/O), for tests and planners ---- */

/* Picks up to `needed` candidates of a loaded class (ddps_store_load_class)
 * by the rule above. picks[] and fill[] (room for min(needed, d->n_cand))
 * get candidate indices in selected-list order and 1 where the pick came
 * from the score fill. Returns the number picked: min(needed, d->n_cand). */
/* Integer crop box [x0, y0, x1, y1) inside a w x h image from a stored
 * candidate's box: rounded, clamped, at least one pixel (what select cuts
 * and the report outlines). */
void ddps_crop_box(const ddps_stored_cand *c, int w, int h, int box[4]);
int ddps_select_patches(const ddps_class_data *d, int needed, int top_clusters, int *picks, unsigned char *fill);

typedef struct {
    int mosaic;    /* 1: 2x2 mosaics of 4 patches */
    int n_images;  /* outputs */
    int per_image; /* patches per output: 4 or 1 */
} ddps_layout;

/* How n_picks selected patches become outputs for ipc (mosaic_mode: ipc <=
 * mosaic_max_ipc and not low-res). Patch j of output i is
 * picks[i + j * n_images]. */
ddps_layout ddps_select_layout(int ipc, int n_picks, int mosaic_mode);

/* One class's selection for one IPC: patch j of output i is candidate
 * picks[i + j * lay.n_images] of the class's data; fill[k] is 1 where pick
 * k came from the score fill. */
typedef struct {
    int needed, n_picks;
    int *picks;
    unsigned char *fill;
    ddps_layout lay;
} ddps_class_plan;

/* A selection for one IPC, in memory (what the files and manifests of
 * OUT/ipc<N> say, and what the report shows): per class, in name order,
 * the stored name, the output folder, the class's data as selection used
 * it (clustered; a baseline's candidates) and its plan. */
typedef struct {
    int ipc, low_res, mosaic;
    int n_cls;
    char **names, **folders;
    ddps_class_data *data;
    ddps_class_plan *plans;
} ddps_select_plan;
void ddps_select_plan_free(ddps_select_plan *p);

/* ddps_select_run for one IPC (o->n_ipc == 1) that also hands back the
 * plan it wrote (free with ddps_select_plan_free; zeroed on failure). */
int ddps_select_run_plan(const ddps_select_opts *o, ddps_select_plan *plan, ddps_err *err);

/* The manifests' "mode": "low_res", "mosaic" or "single". */
const char *ddps_select_mode_name(int low_res, int mosaic);

/* Output i's path relative to OUT/ipc<N>: "<folder>/<folder>_<i:04d>.<ext>".
 * Heap string. */
char *ddps_select_output_name(const char *folder, int i, const char *ext);

/* The folder name for a class name (see above, without the collision
 * suffix). Heap string. */
char *ddps_class_folder(const char *name);

#endif
