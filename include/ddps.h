/* ddps.h: the public C library of ddps (diffusion-driven patch selection).
 *
 * WHAT IT DOES
 *   ddps distills an image dataset into a few images per class with a
 *   Stable Diffusion model: v1.x or 2.x (v_prediction too), as a diffusers
 *   folder, one single-file checkpoint (original layout), or a Hugging Face
 *   cache id; weights in f32, f16 or bf16 safetensors. Scoring runs the model
 *   once per image: Stage I (which windows the class prompt explains better
 *   than the null prompt: a score map and candidate windows) and Stage II
 *   (DIFT features of the candidates, k-means per class). Everything goes
 *   into one SQLite store; selection then writes distilled sets for any
 *   images-per-class (IPC) from the store without the model. This header
 *   is the whole library: the `ddps` command is built on the same code and
 *   the defaults below are the command's defaults.
 *
 *   Stages a caller composes:
 *     engine   ddps_engine_open (backend + model), ddps_engine_encode_prompts
 *              (prompt cache), ddps_engine_score (decoded pixels in: score
 *              map, candidates, DIFT features out)
 *     cluster  ddps_cluster_features (k-means as the store does it)
 *     select   ddps_db_select (the selection rule on a loaded class)
 *     store    ddps_db_open / ddps_db_classes / ddps_db_load (read a store)
 *     drivers  ddps_run_score (= `ddps score`, also sharded or as an MPI job),
 *              ddps_run_select (= `ddps select`), ddps_run_distill (= `ddps
 *              distill`), ddps_run_merge (= `ddps merge`), ddps_run_report
 *              (= `ddps report`); ddps_check_store_name, ddps_parse_shard,
 *              ddps_shard_store_path, ddps_have_mpi as the CLI uses them
 *     tools    ddps_bench_run, ddps_probe_run, ddps_demo_run (= `ddps bench`,
 *              `ddps probe`, `ddps demo`; their reports go to the log hook);
 *              ddps_world_write (the toy world: pictures with known object
 *              boxes) and ddps_world_eval (= `ddps world-eval`: a store
 *              measured against those boxes)
 *
 * EXAMPLE
 *     ddps_error err;
 *     ddps_score_params p;
 *     ddps_score_params_init(&p);                     // the CLI's defaults
 *     if (ddps_run_score(&p, "data/train", "sd-v1-5", "ds.sqlite", NULL, NULL, &err))
 *         fprintf(stderr, "%s (%s)\n", err.message, ddps_status_name(err.status));
 *     ddps_select_params s;
 *     ddps_select_params_init(&s);
 *     int ipc[] = {1, 10};
 *     if (ddps_run_select("ds.sqlite", "out", ipc, 2, &s, NULL, &err)) ...
 *
 * ERRORS
 *   Every call that can fail returns a ddps_status: DDPS_OK (0) or the
 *   category of the failure, and fills the caller's ddps_error (may be NULL)
 *   with the same status and one line naming the file or parameter and what
 *   is wrong. DDPS_ERR_USAGE: a parameter out of range (the CLI exits 2);
 *   DDPS_ERR_DATA: a bad model, store, image or mapping file (also a store
 *   that does not fit the run: other settings, a read-only store select
 *   would have to cluster); DDPS_ERR_RESOURCE: memory, disk, device or I/O;
 *   DDPS_ERR_CANCELLED: the host's cancel flag or progress callback asked to
 *   stop; DDPS_ERR_FAILURE: an internal error (a bug, or a call the library
 *   does not expect). On failure, out-parameters are left empty (NULL /
 *   zero), safe to free.
 *
 * OUTPUT AND HOOKS
 *   The library prints nothing through this API unless asked: warning,
 *   info and debug lines all go to ddps_hooks.log with their level, and the
 *   host filters (NULL: dropped; ddps_log_stderr prints every line as the
 *   CLI does at -v); progress goes only to ddps_hooks.progress (stage, count
 *   of images done of total; return non-zero to cancel; the library draws
 *   nothing, the CLI draws its own line on a terminal), and a long run stops between images
 *   once *ddps_hooks.cancel is non-zero (what is stored stays stored: rerun
 *   to continue). Hooks are called on the thread that made the call (the
 *   library logs only from it); an engine keeps the hooks given to
 *   ddps_engine_open for all its calls. Nothing ends the process: an op that
 *   fails (out of memory, a oneDNN or CUDA error, an internal error) makes
 *   the call that started the work return DDPS_ERR_RESOURCE or
 *   DDPS_ERR_FAILURE with a line naming the op, and the engine's later
 *   scoring calls return the same error (open a new engine to go on).
 *   The one exception: when the C library's own malloc fails for host-side
 *   bookkeeping (names, lists, a decoded image's pixels), the process ends
 *   with one line on stderr. Model weights, activations and workspaces, the
 *   memory that can run out, come from the backend and fail as above.
 *
 * THREAD SAFETY
 *   A handle (engine, db) is used by one thread at a time. Separate db
 *   handles may be used from separate threads. Scoring uses all cores
 *   (OpenMP, oneDNN) by itself: run one scoring call at a time per process.
 *
 * OWNERSHIP
 *   Every pointer returned in a struct belongs to the caller and is freed
 *   with the matching *_free function named at the struct (strings with
 *   ddps_free). Pointers passed in are only read during the call (except
 *   ddps_hooks.cancel, read until the call returns).
 *
 * LINKING
 *   pkg-config ddps: cc app.c $(pkg-config --cflags --libs ddps). The shared
 *   library exports exactly the DDPS_API functions below.
 */
#ifndef DDPS_H
#define DDPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define DDPS_API __attribute__((visibility("default")))
#else
#define DDPS_API
#endif

/* ---------------- errors ---------------- */

typedef enum {
    DDPS_OK = 0,
    DDPS_ERR_FAILURE = 1,  /* anything not below */
    DDPS_ERR_USAGE = 2,    /* a parameter out of range, a bad combination */
    DDPS_ERR_DATA = 3,     /* a bad input file */
    DDPS_ERR_RESOURCE = 4, /* memory, device, I/O */
    DDPS_ERR_CANCELLED = 5 /* the host asked to stop */
} ddps_status;

typedef struct {
    ddps_status status;
    char message[2048]; /* one line, no newline; "" when status is DDPS_OK */
} ddps_error;

/* "ok", "failure", "usage", "data", "resource", "cancelled" (static). */
DDPS_API const char *ddps_status_name(ddps_status s);
/* The library's version, "0.1.0" (static). */
DDPS_API const char *ddps_version(void);
/* Frees memory the library returned (strings). NULL is a no-op. */
DDPS_API void ddps_free(void *p);

/* ---------------- host hooks ---------------- */

/* level: 1 warning, 2 info, 3 debug (0, DDPS_LOG_OUTPUT: a tool's report
 * line, see the tools section); line without newline. Every level is
 * passed: the host filters (the CLI shows 1 and 2 by default, 3 with -v). */
typedef void (*ddps_log_fn)(void *user, int level, const char *line);
/* stage: "scoring", ...; done of total units (total <= 0: unknown).
 * Non-zero return: cancel the run (it stops before the next image). */
typedef int (*ddps_progress_fn)(void *user, const char *stage, long done, long total);

typedef struct {
    ddps_log_fn log;           /* NULL: lines are dropped */
    ddps_progress_fn progress; /* NULL: none */
    void *user;                /* passed to both */
    const volatile int *cancel; /* non-zero: stop between images (NULL: never) */
} ddps_hooks;

DDPS_API void ddps_hooks_init(ddps_hooks *h); /* all NULL */
/* A ddps_log_fn that prints "ddps: [warning: |debug: ]line" on stderr, every
 * level (the CLI's output; filter levels in a wrapper). It first ends an
 * open ddps_progress_stderr line, so the two can be used together. */
DDPS_API void ddps_log_stderr(void *user, int level, const char *line);
/* A ddps_progress_fn that draws progress as the CLI does, on stderr, only
 * when stderr is a terminal (or always when user points to a non-zero int,
 * e.g. rank 0 of an MPI job whose launcher pipes stderr):
 *     scoring 1200/9025  14.2 img/s  ETA 9:10
 * redrawn in place at most 4 times a second, then, when done reaches
 * total, "scoring 9025/9025 img in 10:37 (14.2 img/s)" and a newline. A new
 * stage starts a new line. Never cancels (returns 0). Not thread-safe: one
 * line per process, reported from the thread running the call. */
DDPS_API int ddps_progress_stderr(void *user, const char *stage, long done, long total);

/* ---------------- parameters ---------------- */

#define DDPS_MAX_TIMESTEPS_API 64

/* Scoring settings: ddps_score_params_init sets exactly `ddps score`'s defaults. */
typedef struct {
    const char *prompt;      /* "An image of {}." ("{}" = class name) */
    const char *null_prompt; /* "" */
    int n_timesteps;         /* 5, evenly spaced in [t_lo, t_hi] * T ... */
    int timesteps[DDPS_MAX_TIMESTEPS_API]; /* ... or this list when n_explicit > 0 */
    int n_explicit;          /* 0 */
    double t_lo, t_hi;       /* 0.1, 0.7 */
    int size;                /* 256: shorter side for Stage I */
    int patch, stride;       /* 192, 16 */
    int patches_per_image;   /* 1 */
    int dift_t, dift_ensemble; /* 160, 4 */
    int clusters;            /* 32 */
    int low_res;             /* 0; 1: whole images are the candidates */
    const char *class_names; /* NULL; mapping file (LOC_synset_mapping.txt, TSV) */
    int max_per_class;       /* 0 = all */
    const char *const *classes; /* NULL = all class folders; else n_classes names */
    int n_classes;
    uint64_t seed;           /* 0 */
    int threads;             /* 0 = all cores */
    int batch_images;        /* 0 = auto (cpu 1, cuda 8) */
    const char *device;      /* "cpu" */
    const char *precision;   /* "f32" */
    /* What `ddps score` needs beyond the stages (0.1.0 ends above): */
    const char *config_dir;  /* NULL; configs (diffusers layout) for a single-file model that is not SD v1.x */
    int shard_k, shard_n;    /* 0, 0 (whole dataset); shard_n > 0: score share shard_k of shard_n
                                into STORE.shard-K-of-N (ddps_shard_store_path), no clustering (ddps_run_merge) */
    int mpi;                 /* 0; 1: this process is one rank of an MPI job (mpirun/srun; ddps_have_mpi):
                                every rank scores its share into its shard, then the ranks merge and
                                cluster into STORE; progress (the whole job's) is reported on rank 0 only */
    const char *command;     /* NULL = "score"; "distill": the store's run log names that command */
} ddps_score_params;
DDPS_API void ddps_score_params_init(ddps_score_params *p);

/* Selection settings: ddps_select_params_init sets `ddps select`'s defaults. */
typedef struct {
    int top_clusters;      /* 10 */
    int mosaic_max_ipc;    /* 10: 2x2 mosaics when ipc <= this */
    int output_size;       /* 224 */
    const char *format;    /* "png" or "jpg" */
    int jpeg_quality;      /* 95 */
    const char *data_root; /* NULL: as scored */
    const char *const *classes; /* NULL = all; else n_classes folder names */
    int n_classes;
    int threads;           /* 0 = all cores */
    /* (0.1.0 ends above) */
    const char *folder_names; /* NULL or "class": class folders named by class; "index": ImageNet-1K
                                 index 00000.. (RDED style; every class must be a WordNet id) */
    const char *command;   /* NULL = "select"; "distill": the manifests name that command */
    /* The paper's comparison rows, written like a distilled set (same layout, manifests, class
       maps) so that `ddps eval` measures them with the same protocol. top_clusters = 0 is
       "w/o clusters" (the highest Stage-I scores alone). */
    const char *baseline;  /* NULL or "ddps": the selection rule; "random-windows": windows of the
                              scored patch size at uniform random positions in pictures of the class
                              (each picture once before any twice, in random order), laid out as ddps
                              lays out its patches; "random-images": whole pictures at random (their
                              centre square; never mosaics), the usual "random real" baseline */
    unsigned long long seed; /* the baselines' random choices (0); the class name is mixed in */
} ddps_select_params;
DDPS_API void ddps_select_params_init(ddps_select_params *p);

/* One check per command's parameters, the same the CLI, the drivers and
 * the engine make: DDPS_OK, or DDPS_ERR_USAGE with a line naming the first
 * value out of range as the CLI spells it ("--clusters 70000: must be
 * between 1 and 65536"). Only what can be checked before anything is
 * opened (a timestep below the model's T is checked at the model). ipc[n_ipc]:
 * the IPCs of a select run (n_ipc >= 1). ddps_report_params is below. */
DDPS_API ddps_status ddps_score_params_check(const ddps_score_params *p, ddps_error *err);
DDPS_API ddps_status ddps_select_params_check(const ddps_select_params *p, const int *ipc, int n_ipc,
                                              ddps_error *err);
/* The bounds of a command's integer option as the checks apply them:
 * command "score", "select" or "report", option as the CLI spells it
 * ("--clusters"); 0 with *lo, *hi set (either may be NULL), or -1 when the
 * command has no such bounded option. The CLI's options take their ranges
 * from here. */
DDPS_API int ddps_param_range(const char *command, const char *option, long *lo, long *hi);

/* ---------------- drivers (what the CLI does) ---------------- */

typedef struct {
    long images_scored, images_bad, unet_latents, vae_images, text_prompts;
    double seconds;
} ddps_run_totals;

/* `ddps score --data data_dir --model model_dir --store store_path`: scores
 * every image not yet in the store (resumable, deterministic), then clusters
 * every class. hooks and totals may be NULL. */
DDPS_API ddps_status ddps_run_score(const ddps_score_params *p, const char *data_dir, const char *model_dir,
                                    const char *store_path, const ddps_hooks *hooks, ddps_run_totals *totals,
                                    ddps_error *err);
/* `ddps select --store store_path --out out_dir --ipc ...`: writes
 * out_dir/ipc<N>/ for every N (no model evaluation). */
DDPS_API ddps_status ddps_run_select(const char *store_path, const char *out_dir, const int *ipc, int n_ipc,
                                     const ddps_select_params *p, const ddps_hooks *hooks, ddps_error *err);

/* `ddps distill`: ddps_run_score into store_path (NULL: out_dir/ddps.sqlite;
 * out_dir is created), then ddps_run_select into out_dir for every ipc with
 * p's classes and threads, then (report non-zero) ddps_run_report into
 * out_dir/report at ipc[0]. A failure leaves what was computed in the store;
 * an out_dir this call created is removed again when it stays empty. p->mpi
 * and shards are refused (usage). totals may be NULL. */
DDPS_API ddps_status ddps_run_distill(const ddps_score_params *p, const ddps_select_params *s, const char *data_dir,
                                      const char *model_dir, const char *out_dir, const char *store_path,
                                      const int *ipc, int n_ipc, int report, const ddps_hooks *hooks,
                                      ddps_run_totals *totals, ddps_error *err);

/* `ddps merge --store out shards...`: checks the n shard stores of one job
 * (same settings and model, every share once and complete), copies them,
 * clusters every class and writes out (renamed into place only when
 * complete; nothing is written there on any problem). An existing out is
 * replaced only when it is a finished store of the same job (not a shard,
 * same settings and model); anything else is refused (data). */
DDPS_API ddps_status ddps_run_merge(const char *out, const char *const *shards, int n, const ddps_hooks *hooks,
                                    ddps_error *err);
/* ddps_run_merge with flags: DDPS_MERGE_FORCE replaces any existing out
 * (`ddps merge --force`). */
#define DDPS_MERGE_FORCE 1
DDPS_API ddps_status ddps_run_merge_flags(const char *out, const char *const *shards, int n, int flags,
                                          const ddps_hooks *hooks, ddps_error *err);

/* Report settings: ddps_report_params_init sets `ddps report`'s defaults. */
typedef struct {
    const char *data_root; /* NULL: as scored */
    int ipc;               /* 10: the distilled set shown */
    int thumb;             /* 160: longest side of image thumbnails */
    int threads;           /* 0 = all cores */
} ddps_report_params;
DDPS_API void ddps_report_params_init(ddps_report_params *p);
DDPS_API ddps_status ddps_report_params_check(const ddps_report_params *p, ddps_error *err);
/* `ddps report --store store_path --out out_dir`: a static HTML report
 * (out_dir/index.html, one page per class) that opens from file://. The
 * overview shows `ddps eval`'s results when out_dir/../ipc<N>/eval.json or
 * out_dir/../distilled/ipc<N>/eval.json exists. */
DDPS_API ddps_status ddps_run_report(const char *store_path, const char *out_dir, const ddps_report_params *p,
                                     const ddps_hooks *hooks, ddps_error *err);

/* Checks that path can name a store (not a shard's or a temporary file's
 * name, a usable file name); status usage otherwise. */
DDPS_API ddps_status ddps_check_store_name(const char *path, ddps_error *err);
/* Parses "K/N" (0 <= K < N) as `--shard` does; status usage with the text otherwise. */
DDPS_API ddps_status ddps_parse_shard(const char *text, int *k, int *n, ddps_error *err);
/* The shard store of share k of n: "STORE.shard-K-of-N" (ddps_free it). */
DDPS_API char *ddps_shard_store_path(const char *store, int k, int n);
/* 1 when the library was built with MPI (ddps_score_params.mpi works), else 0. */
DDPS_API int ddps_have_mpi(void);

/* ---------------- engine: scoring decoded images ---------------- */

typedef struct ddps_engine ddps_engine;

typedef struct {
    const char *device;    /* "cpu" */
    const char *precision; /* "f32" */
    int threads;           /* 0 = all cores */
} ddps_engine_params;
DDPS_API void ddps_engine_params_init(ddps_engine_params *p);

/* Loads a model folder (all weights checked) on a new backend. */
DDPS_API ddps_status ddps_engine_open(const char *model_dir, const ddps_engine_params *p, const ddps_hooks *hooks,
                                      ddps_engine **out, ddps_error *err);
DDPS_API void ddps_engine_close(ddps_engine *e); /* NULL is a no-op */
/* The model identity the store records (16 hex digits; valid while e lives). */
DDPS_API const char *ddps_engine_model_id(const ddps_engine *e);
/* DIFT feature length; T (scheduler's num_train_timesteps). */
DDPS_API int ddps_engine_feature_dim(const ddps_engine *e);
DDPS_API int ddps_engine_num_timesteps(const ddps_engine *e);

/* Encodes n prompts with the text encoder in one batch and caches them:
 * ids[i] (caller's array of n) gets the id of prompts[i]. A prompt already
 * in the cache keeps its id (no evaluation). Longer than 75 tokens: cut, with
 * a warning. */
DDPS_API ddps_status ddps_engine_encode_prompts(ddps_engine *e, const char *const *prompts, int n, int *ids,
                                                ddps_error *err);

/* One image to score: 8-bit RGB, height x width x 3, row-major, no padding. */
typedef struct {
    const uint8_t *pixels;
    int width, height;
    const char *key;  /* noise stream key: in a dataset the path relative to
                         the data root ("class/file.jpg"), which gives the
                         numbers `ddps score` stores */
    int prompt;       /* label prompt id (ddps_engine_encode_prompts) */
} ddps_image_in;

typedef struct {
    double x0, y0, x1, y1; /* box in the input image's pixels */
    int rx, ry, rw, rh;    /* the box in the resized image */
    float score;           /* Stage-I patch score */
} ddps_window;

/* What scoring one image gives. Free with ddps_image_scores_free. */
typedef struct {
    int width, height;    /* input size */
    int rw, rh;           /* resized (Stage-I) size */
    float image_score;    /* mean of score_map */
    float *score_map;     /* [rh][rw]: D, the Stage-I difference upsampled */
    int grid_h, grid_w;   /* patch score grid */
    float *patch_scores;  /* [grid_h][grid_w], window (i, j) at (j*stride, i*stride) */
    int map_h, map_w;
    float *map;           /* [map_h][map_w]: channel mean of d at latent resolution (the store's map) */
    int n_cand;
    ddps_window *cand;    /* best first */
    int dim;
    float *features;      /* [n_cand][dim], L2-normalised DIFT features */
} ddps_image_scores;
DDPS_API void ddps_image_scores_free(ddps_image_scores *s);

/* Scores n images one after another with the null prompt id null_prompt:
 * out[i] (caller's array of n) for images[i]. Uses p's Stage-I, DIFT,
 * low_res and seed fields (the rest is ignored). Stops between images when
 * cancelled (out[] of the scored ones is filled, the rest zeroed; status
 * DDPS_ERR_CANCELLED). */
DDPS_API ddps_status ddps_engine_score(ddps_engine *e, const ddps_score_params *p, int null_prompt,
                                       const ddps_image_in *images, int n, ddps_image_scores *out, ddps_error *err);

/* ---------------- clustering ---------------- */

/* k-means (k-means++ seeding, at most 300 Lloyd iterations, deterministic)
 * of n feature rows of dim floats, as the store clusters a class. assign[n]
 * and dist[n] (caller's arrays) get each row's cluster in [0, *k_used) and
 * its distance to the centroid. */
DDPS_API ddps_status ddps_cluster_features(const float *x, int n, int dim, int k, uint64_t seed, int *assign,
                                           float *dist, int *k_used, ddps_error *err);

/* ---------------- reading a store ---------------- */

typedef struct ddps_db ddps_db;

/* Opens a store read-only (never creates or writes it). */
DDPS_API ddps_status ddps_db_open(const char *path, ddps_db **out, ddps_error *err);
DDPS_API void ddps_db_close(ddps_db *db); /* NULL is a no-op */
/* A meta value ("settings" JSON, "model_id", "data_root", "ddps_version",
 * "feature_dim"); *value: ddps_free it; NULL when absent. */
DDPS_API ddps_status ddps_db_meta(ddps_db *db, const char *key, char **value, ddps_error *err);

typedef struct {
    int id;
    char *name;        /* folder name (untrusted: sanitise before using as a path) */
    char *prompt_name; /* NULL when absent */
    char *prompt;      /* NULL when absent */
    long n_images, n_bad, n_cand;
    int clustered, clustered_k;
} ddps_db_class;
/* All classes sorted by name. Free with ddps_db_classes_free(*out, *n). */
DDPS_API ddps_status ddps_db_classes(ddps_db *db, ddps_db_class **out, int *n, ddps_error *err);
DDPS_API void ddps_db_classes_free(ddps_db_class *c, int n);

typedef struct {
    char *relpath;
    int width, height, rw, rh;
    float image_score;
    int map_h, map_w; /* 0 when the store has no map for it */
    float *map;       /* [map_h][map_w] or NULL */
} ddps_db_image;

typedef struct {
    int image;             /* index into images */
    int idx;               /* window rank inside its image (0 = best) */
    double x0, y0, x1, y1; /* box in original pixels */
    int rx, ry, rw, rh;    /* box in the resized image */
    float score;
    int cluster;      /* -1 when not clustered */
    int cluster_rank; /* 1 = best; 0 when not clustered */
    float dist;
} ddps_db_cand;

typedef struct {
    int cluster, size, rank;
    float median_score;
} ddps_db_cluster;

/* One class as stored. Free with ddps_db_class_data_free. */
typedef struct {
    int class_id;
    int n_images;
    ddps_db_image *images; /* sorted by relpath */
    int n_cand;
    ddps_db_cand *cand;    /* sorted by (relpath, idx) */
    int dim;               /* feature length */
    float *features;       /* [n_cand][dim] when asked for, else NULL */
    int n_clusters;
    ddps_db_cluster *clusters; /* by rank */
    void *internal_;       /* the library's copy (selection) */
} ddps_db_class_data;

/* Loads a class (with_features: the DIFT vectors too; with_maps: the
 * Stage-I maps). Every value read is validated. */
DDPS_API ddps_status ddps_db_load(ddps_db *db, int class_id, int with_features, int with_maps,
                                  ddps_db_class_data *out, ddps_error *err);
DDPS_API void ddps_db_class_data_free(ddps_db_class_data *d);

/* The selection rule of `ddps select` for one class and IPC: picks
 * (caller's array, room for 4 * ipc) gets candidate indices in output order,
 * fill (same room, may be NULL) 1 where a pick came from the score fill;
 * *n_picks, and the layout: *n_outputs images of *per_image patches each
 * (patch j of output i is picks[i + j * n_outputs]). mosaic_max_ipc as in
 * ddps_select_params; low_res stores: pass low_res = 1 (no mosaics). */
DDPS_API ddps_status ddps_db_select(const ddps_db_class_data *d, int ipc, int top_clusters, int mosaic_max_ipc,
                                    int low_res, int *picks, unsigned char *fill, int *n_picks, int *n_outputs,
                                    int *per_image, ddps_error *err);

/* ---------------- tools: bench, probe, demo ---------------- */

/* The library side of the CLI's developer commands (`ddps bench`, `ddps
 * probe`, `ddps demo`). A tool's report (bench tables, probe's token ids,
 * the JSON line of --json) goes to ddps_hooks.log line by line at level
 * DDPS_LOG_OUTPUT; the CLI prints those lines on stdout as they come and
 * the other levels as usual. Error messages start with the tool's name
 * ("bench load: ...", "probe text: ..."): the CLI prints "ddps <message>".
 * Usage errors (a bad name, a value out of range, a missing file argument)
 * have status DDPS_ERR_USAGE. */
#define DDPS_LOG_OUTPUT 0

/* `ddps bench WHAT`: speed (or precision) of the engine with full-size
 * shapes and random weights built in memory. ddps_bench_params_init sets
 * the CLI's defaults. */
typedef struct {
    const char *what;      /* "text", "vae", "unet", "score", "precision" or "load" (NULL: usage error) */
    const char *device;    /* "cpu" */
    const char *precision; /* NULL: f32 (unet on the CPU: f32 and bf16 both timed and compared);
                              precision: the reduced one to compare, required */
    int threads;           /* 0 = all cores */
    int batches[16];       /* batch sizes ("score": only batches[0], 1..64) ... */
    int n_batches;         /* ... 0: unet 1,8; the others 1 */
    int size;              /* 256: image side in pixels (a multiple of 8 for text, vae, unet) */
    int iters;             /* 3: timed runs after one warm-up */
    int json;              /* 0; 1: one JSON object as the last report line */
    int profile;           /* 0; 1: time every op kind (text, vae, unet) */
    const char *model;     /* NULL; precision, load: a model folder (NULL: random SD v1.5) */
    const char *data;      /* NULL; precision: an ImageFolder of real images (required) */
    int images;            /* 20: precision: images compared */
    const char *shapes;    /* "sd15" or "sd21" (text, vae, unet) */
} ddps_bench_params;
DDPS_API void ddps_bench_params_init(ddps_bench_params *p);
/* Runs one benchmark and reports it through hooks (may be NULL: the report
 * is dropped). "load" without a model writes a full-size random model to a
 * temporary folder under /tmp (by a child process) and removes it. */
DDPS_API ddps_status ddps_bench_run(const ddps_bench_params *p, const ddps_hooks *hooks, ddps_error *err);

/* `ddps probe WHAT`: one model component on inputs from a safetensors file,
 * outputs written to another in PyTorch's NCHW layout and tensor names
 * (compare with diffusers/transformers). ddps_probe_params_init sets the
 * CLI's defaults. */
typedef struct {
    const char *what;        /* "tokenize", "text", "vae", "unet", "schedule" or "stage1" */
    const char *model;       /* required: diffusers folder, single .safetensors file or org/name */
    const char *config;      /* NULL; configs (diffusers layout) for a single-file model */
    const char *in, *out;    /* input / output safetensors (tokenize: none; schedule: no in) */
    const char *device;      /* "cpu" */
    const char *precision;   /* "f32" */
    int threads;             /* 0 = all cores */
    const char *prompt;      /* stage1: "An image of tench." */
    const char *null_prompt; /* stage1: "" */
    int patch, stride;       /* stage1: 32, 8 */
    const char *const *texts; /* tokenize: the texts, one report line of 77 ids each; */
    int n_texts;              /* the others: must be 0 */
} ddps_probe_params;
DDPS_API void ddps_probe_params_init(ddps_probe_params *p);
DDPS_API ddps_status ddps_probe_run(const ddps_probe_params *p, const ddps_hooks *hooks, ddps_error *err);

/* `ddps demo`: the product on the toy world, nothing downloaded. */
#define DDPS_DEMO_MAX_CLASSES 10
typedef struct {
    int n_classes; /* 10: toy-world classes, 1..DDPS_DEMO_MAX_CLASSES */
    int per_class; /* 30: pictures per class, 1..10000 */
    int threads;   /* 0 = all cores (ddps_demo_run) */
    uint64_t seed; /* 2026: the world's seed (the toy model was trained on seed 1000's) */
} ddps_demo_params;
DDPS_API void ddps_demo_params_init(ddps_demo_params *p);
/* Makes dir/world (a toy-world split, dir/world/test, with boxes.json and
 * classes.tsv; see ddps_world_write), rewritten on every call, and
 * dir/model (a copy of the toy model data/toy-sd: SD v1.x's structure,
 * trained on the toy world) when that folder does not exist yet; says what
 * it makes through hooks at info level. */
DDPS_API ddps_status ddps_demo_write(const char *dir, const ddps_demo_params *p, const ddps_hooks *hooks,
                                     ddps_error *err);
/* What `ddps demo` does: ddps_demo_write, then distills dir/world/test into
 * dir/distilled/ipc1 and ipc10 through the store dir/ddps.sqlite (both
 * replaced) with the toy world's settings (size 128, patch 80, stride 8, 2
 * patches per image), writes the report dir/report, and measures the result
 * against the boxes (ddps_world_eval's table, then a pointing-game line, at
 * DDPS_LOG_OUTPUT). */
DDPS_API ddps_status ddps_demo_run(const char *dir, const ddps_demo_params *p, const ddps_hooks *hooks,
                                   ddps_error *err);

/* The toy world (`ddps demo --world-only`): labelled pictures whose truth is
 * known. Ten classes of flat objects (red disc, blue square, ..., pink
 * heart; two or three variants each) at random places and scales on
 * cluttered backgrounds, mostly size x size. Writes dir/train, dir/val and
 * dir/test (ImageFolders; the splits draw from different seeds),
 * dir/classes.tsv (folder<TAB>prompt name, for --class-names) and
 * dir/boxes.json: {"train/red-disc/0000.png": {"class": "red-disc",
 * "variant": "solid", "box": [x0, y0, x1, y1]}, ...} in file pixels (x1, y1
 * exclusive). The same parameters give byte-identical files. */
typedef struct {
    uint64_t seed;            /* 0 */
    int n_classes;            /* 10: the first n of the ten classes */
    int train, val, test;     /* 100, 20, 30: images per class in each split (0..100000) */
    int size;                 /* 128: base image size (16..2048) */
} ddps_world_params;
DDPS_API void ddps_world_params_init(ddps_world_params *p);
DDPS_API ddps_status ddps_world_write(const char *dir, const ddps_world_params *p, const ddps_hooks *hooks,
                                      ddps_error *err);

/* `ddps world-eval`: the method measured against the toy world's truth, on a
 * store scored on one split of a world (ddps score --data DIR/test
 * --class-names DIR/classes.tsv ...). Per class and overall: the pointing
 * game (the maximum of the Stage-I map D inside the object's box, against
 * the box's share of the image), the best window's IoU with the box
 * (against a window of the same size anywhere), DIFT clusters against the
 * object variants (k-means with k = variants: adjusted Rand index and
 * purity, against a random assignment; also the store's own clusters), and
 * for each IPC the share of `select`'s patches that contain the whole object
 * (against the top-scoring candidates alone, "w/o clusters", and random
 * windows). The table goes to the log hook at DDPS_LOG_OUTPUT, with one
 * JSON line last when json is set; *out (may be NULL) gets the figures. */
#define DDPS_WORLD_EVAL_MAX_IPC 8
typedef struct {
    const char *store;   /* required */
    const char *world;   /* required: the folder with boxes.json */
    const char *split;   /* NULL: the last component of the store's data root ("test") */
    int ipc[DDPS_WORLD_EVAL_MAX_IPC]; /* 1, 10, 50 */
    int n_ipc;           /* 3 */
    int top_clusters, mosaic_max_ipc; /* 10, 10: as ddps_select_params */
    uint64_t seed;       /* 0: clustering and random baselines */
    int json;            /* 0 */
} ddps_world_eval_params;
typedef struct {
    int n_images;
    double pointing, pointing_chance; /* shares of images */
    double iou, iou_random;           /* means over images */
    double ari, ari_random, purity, purity_random, ari_store, ari_store_random; /* means over classes */
    int n_ipc, ipc[DDPS_WORLD_EVAL_MAX_IPC];
    double contain[DDPS_WORLD_EVAL_MAX_IPC], contain_top[DDPS_WORLD_EVAL_MAX_IPC],
        contain_random[DDPS_WORLD_EVAL_MAX_IPC]; /* shares of selected patches */
} ddps_world_eval_result;
DDPS_API void ddps_world_eval_params_init(ddps_world_eval_params *p);
DDPS_API ddps_status ddps_world_eval(const ddps_world_eval_params *p, ddps_world_eval_result *out,
                                     const ddps_hooks *hooks, ddps_error *err);

/* ---------------- training on the engine ---------------- */

/* `ddps probe train`: one training step of a student (torchvision names)
 * on a batch, everything written out for comparison with PyTorch. model:
 * "resnet18", "resnet18-modified" (3x3 stride-1 stem, no max pool) or
 * "convnet3".."convnet6"; weights: safetensors with torchvision's names (the
 * class count from fc.weight or classifier.weight); in: `images` [N,3,H,W]
 * f32 and either `labels` [N] (int; cross-entropy, scalar `label_smoothing`
 * optional) or `teacher_logits` [N,K] f32 with scalar `temperature`
 * (KLDivLoss(batchmean) of log_softmax(s/T) against softmax(t/T)); scalars
 * `lr` and `weight_decay` for one AdamW step (decay on weights with more
 * than one dimension). The model runs in training mode. out: `logits`,
 * `loss`, `grad.<name>` for every parameter, batch-norm running_mean /
 * running_var (and num_batches_tracked) by name after the step, and
 * `param.<name>` after the AdamW step. CPU, f32. */
typedef struct {
    const char *model, *weights, *in, *out; /* all required */
    int threads;                            /* 0 = all cores */
} ddps_probe_train_params;
DDPS_API void ddps_probe_train_params_init(ddps_probe_train_params *p);
DDPS_API ddps_status ddps_probe_train(const ddps_probe_train_params *p, const ddps_hooks *hooks, ddps_error *err);

/* `ddps train`: trains a classifier (the teacher of `ddps eval`) from
 * scratch on an ImageFolder with hard labels: every epoch the training
 * images in a shuffled order, each through RandomResizedCrop(size,
 * scale=(crop_scale, 1)) and a horizontal flip (p = 0.5), ImageNet
 * normalisation; cross-entropy (label_smoothing); SGD (momentum, Nesterov)
 * or AdamW; the learning rate per epoch (linear warm-up, then constant,
 * linear or cosine to 0); top-1 / top-5 on val (Resize(size / 7 * 8) +
 * CenterCrop(size)) after every epoch. Writes out (safetensors, torchvision
 * names) and out's .json sibling (out without ".safetensors", plus ".json"):
 * classes, settings, per-epoch loss and top-1 / top-5. A checkpoint
 * (checkpoint, default out + ".ckpt") is written atomically after every
 * epoch and removed at the end: a run killed at any point continues from
 * its last finished epoch and gives the same bytes (same machine and
 * threads). ddps_train_params_init sets the CLI's defaults. */
typedef struct {
    const char *data;       /* required: training ImageFolder */
    const char *val;        /* NULL: no validation */
    const char *model;      /* "resnet18-modified": resnet18, resnet18-modified, convnet3..convnet6 */
    const char *out;        /* required: .safetensors */
    int size;               /* 32: input side in pixels (8..1024) */
    int epochs;             /* 30 */
    int batch;              /* 64 */
    const char *opt;        /* "sgd" or "adamw" */
    double lr;              /* 0: 0.1 (sgd) or 1e-3 (adamw) */
    double weight_decay;    /* -1: 5e-4 (sgd) or 0.01 (adamw); on weights of more than one dimension */
    double momentum;        /* 0.9 (sgd) */
    int nesterov;           /* 1 (sgd) */
    const char *sched;      /* "cosine": constant, linear, cosine */
    int warmup;             /* 0: warm-up epochs */
    double label_smoothing; /* 0 */
    double crop_scale;      /* 0: 0.08 at size >= 128, else 0.35 (RandomResizedCrop's smallest area) */
    uint64_t seed;          /* 0 */
    int threads;            /* 0 = all cores */
    const char *checkpoint; /* NULL: out + ".ckpt" */
} ddps_train_params;
typedef struct {
    int epochs, classes, images;
    double loss, top1, top5; /* the last epoch's; top-k -1 without val */
    double seconds;          /* this call's wall time */
} ddps_train_result;
DDPS_API void ddps_train_params_init(ddps_train_params *p);
/* Every check made before any work (usage): what `ddps train` refuses with exit 2. */
DDPS_API ddps_status ddps_train_params_check(const ddps_train_params *p, ddps_error *err);
/* out may be NULL. */
DDPS_API ddps_status ddps_run_train(const ddps_train_params *p, const ddps_hooks *hooks, ddps_train_result *out,
                                    ddps_error *err);

/* `ddps eval`: RDED's evaluation of a distilled set. For each of `students`
 * students (seed + i): a model trained from scratch on the distilled images,
 * each image through RDED's ShufflePatches(factor), RandomResizedCrop(size,
 * scale=(min_scale, 1)), a horizontal flip and ImageNet normalisation;
 * CutMix on every batch (lam ~ Beta(1, 1)); the teacher (eval mode) labels
 * the mixed batch; loss KL(batchmean) of log_softmax(s/T) against
 * softmax(teacher/T); AdamW (betas 0.9, 0.999; weight decay on weights of
 * more than one dimension), lr * 0.5 (1 + cos(pi epoch / epochs / 2)) per
 * epoch; top-1 / top-5 on val (Resize(size / 7 * 8) + CenterCrop(size))
 * every eval_every epochs in the last 20% and after the last. Classes: the
 * distilled set's (class_to_idx.json when present, else its folders) must
 * equal val's folders (usage error naming the first difference); the
 * teacher's rows are mapped by class name (teacher's .json sibling from
 * `ddps train`), by idx_to_imagenet for a 1000-class teacher, or one to one
 * when the counts agree. Checkpoints per student under DISTILLED/.ddps-eval
 * (after an epoch once 20 s have passed since the last one, and after the
 * last; removed at the end): a killed run continues from the last one, bit
 * for bit. Writes out (DISTILLED/eval.json): per student seed, best and final
 * top-1 / top-5, epochs, seconds; mean and std of the final top-1; the
 * settings and the ddps version; a table at DDPS_LOG_OUTPUT. */
#define DDPS_EVAL_MAX_STUDENTS 64
typedef struct {
    const char *distilled;     /* required: the distilled ImageFolder */
    const char *val;           /* required */
    const char *teacher;       /* required: safetensors */
    const char *teacher_model; /* "resnet18" */
    const char *student;       /* "resnet18" */
    int students;              /* 5 */
    int size;                  /* 0: the first distilled image's width */
    int epochs;                /* 300 */
    int batch;                 /* 0: 10 / 50 / 100 for IPC <= 1 / <= 10 / more, doubled at >= 100 classes,
                                  at most the set's size */
    double lr;                 /* 1e-3 */
    double weight_decay;       /* 0.01 */
    double temperature;        /* 20 */
    int factor;                /* 2 (ShufflePatches; 1: off) */
    double min_scale;          /* 0: 1 / factor */
    int cutmix;                /* 1 */
    int eval_every;            /* 10 */
    uint64_t seed;             /* 0: student i has seed + i */
    int threads;               /* 0 = all cores */
    const char *out;           /* NULL: DISTILLED/eval.json */
} ddps_eval_params;
typedef struct {
    int students;
    double top1_mean, top1_std, top5_mean; /* final top-1 over students (std: population) */
    double top1[DDPS_EVAL_MAX_STUDENTS], best_top1[DDPS_EVAL_MAX_STUDENTS];
    double seconds;
} ddps_eval_result;
DDPS_API void ddps_eval_params_init(ddps_eval_params *p);
/* Every check made before any work (usage), class mismatch included. */
DDPS_API ddps_status ddps_eval_params_check(const ddps_eval_params *p, ddps_error *err);
/* out may be NULL. */
DDPS_API ddps_status ddps_run_eval(const ddps_eval_params *p, const ddps_hooks *hooks, ddps_eval_result *out,
                                   ddps_error *err);

#ifdef __cplusplus
}
#endif

#endif
