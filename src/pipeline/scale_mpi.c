/* The MPI scoring job (pipeline/scale_mpi.h). Built with Open MPI when CMake
 * finds it (DDPS_HAVE_MPI); otherwise a stub that says MPI is unavailable.
 *
 * Protocol, all point to point until every rank has finished scoring, so a
 * rank that fails early never leaves the others waiting in a collective:
 *   ranks > 0 send (done, to do) after each batch group (TAG_PROGRESS) and
 *   (status, done, to do) when their share is finished (TAG_FINAL);
 *   rank 0 scores its own share, showing the sum, then waits for every
 *   TAG_FINAL and broadcasts whether all shares are complete.
 * Then rank 0 checks and copies the shards (pipeline/shard.h) into
 * STORE.merging and broadcasts the class list; each rank clusters the
 * classes ddps_merge_assign gives it, reading STORE.merging read-only, and
 * sends the results to rank 0 (TAG_CLUSTER), which alone writes them and
 * renames the file to STORE. A final broadcast gives every rank the exit
 * status. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pipeline/scale_mpi.h"
#include "pipeline/shard.h"
#include "util/fs.h"
#include "util/progress.h"

int ddps_threads_for_local(int local_size) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online < 1) online = 1;
    int bound = (int)online;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) bound = CPU_COUNT(&set);
    if (bound >= 1 && bound < online) return bound;
    long t = online / (local_size > 0 ? local_size : 1);
    return t < 1 ? 1 : (int)t;
}

const char *ddps_device_for_local(const char *device, int local_rank, char *buf, size_t n) {
    if (!device || strcmp(device, "cuda") != 0) return device;
    const char *vis = getenv("CUDA_VISIBLE_DEVICES");
    int count = 0;
    if (vis && *vis) {
        count = 1;
        for (const char *p = vis; *p; p++) count += *p == ',';
    }
    snprintf(buf, n, "cuda:%d", count > 0 ? local_rank % count : local_rank);
    return buf;
}

#ifndef DDPS_HAVE_MPI

int ddps_mpi_available(void) { return 0; }

int ddps_mpi_score(const ddps_score_opts *o, ddps_run_stats *totals, ddps_err *err) {
    (void)o;
    if (totals) memset(totals, 0, sizeof *totals);
    return ddps_fail_usage(err, "MPI is unavailable in this build");
}

#else

#include <mpi.h>

#define TAG_PROGRESS 11
#define TAG_FINAL 12
#define TAG_CLUSTER 13

int ddps_mpi_available(void) { return 1; }

typedef struct {
    int rank, size;
    long *done, *todo;
    char *known, *final;
    int *status;
    int n_final;
    ddps_progress *prog;
} job;

/* Waiting without spinning: Open MPI's blocking calls poll at full speed,
 * and a rank that waits (for the others to finish, for the merge) must
 * leave its cores to the ranks still scoring on the same node. */
static void nap(void) {
    struct timespec ts = {0, 5 * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits (napping) until a message with tag is there; st gets its envelope. */
static void probe_poll(int tag, MPI_Status *st) {
    int flag = 0;
    for (;;) {
        MPI_Iprobe(MPI_ANY_SOURCE, tag, MPI_COMM_WORLD, &flag, st);
        if (flag) return;
        nap();
    }
}

/* MPI_Bcast from rank 0, napping while it is in flight. */
static void bcast_poll(void *buf, int count, MPI_Datatype type) {
    MPI_Request rq;
    int done = 0;
    MPI_Ibcast(buf, count, type, 0, MPI_COMM_WORLD, &rq);
    for (;;) {
        MPI_Test(&rq, &done, MPI_STATUS_IGNORE);
        if (done) return;
        nap();
    }
}

/* Rank 0: takes one message (blocking or only when one is waiting). */
static int take_message(job *j, int block) {
    MPI_Status st;
    int flag = 1;
    if (block)
        probe_poll(MPI_ANY_TAG, &st);
    else
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
    if (!flag) return 0;
    long m[3];
    int src = st.MPI_SOURCE;
    if (st.MPI_TAG == TAG_PROGRESS) {
        MPI_Recv(m, 2, MPI_LONG, src, TAG_PROGRESS, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        j->done[src] = m[0], j->todo[src] = m[1], j->known[src] = 1;
    } else if (st.MPI_TAG == TAG_FINAL) {
        MPI_Recv(m, 3, MPI_LONG, src, TAG_FINAL, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        j->status[src] = (int)m[0];
        if (m[0] == 0) j->done[src] = m[1], j->todo[src] = m[2];
        j->known[src] = 1;
        if (!j->final[src]) j->n_final++;
        j->final[src] = 1;
    } else {
        /* nothing else is sent while scoring; drop it */
        int count;
        MPI_Get_count(&st, MPI_BYTE, &count);
        char *b = ddps_malloc((size_t)count + 1);
        MPI_Recv(b, count, MPI_BYTE, src, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        free(b);
    }
    return 1;
}

/* Rank 0: the whole job's line, once every rank has said how much it has to do. */
static void show(job *j) {
    long done = 0, todo = 0;
    for (int r = 0; r < j->size; r++) {
        if (!j->known[r]) return;
        done += j->done[r], todo += j->todo[r];
    }
    if (!j->prog) {
        char label[64];
        snprintf(label, sizeof label, "scoring (%d processes)", j->size);
        j->prog = ddps_progress_start(label, todo, "img", 0); /* the host's progress hook draws it */
    }
    ddps_progress_update(j->prog, done);
}

/* ddps_score_opts.on_progress: ranks > 0 send (done, to do) to rank 0; rank 0 adds up and shows. */
static void on_progress(void *arg, long done, long todo) {
    job *j = arg;
    if (j->rank != 0) {
        long m[2] = {done, todo};
        j->done[0] = done, j->todo[0] = todo;
        MPI_Send(m, 2, MPI_LONG, 0, TAG_PROGRESS, MPI_COMM_WORLD);
        return;
    }
    j->done[0] = done, j->todo[0] = todo, j->known[0] = 1;
    while (take_message(j, 0)) {
    }
    show(j);
}

/* ---- clusterings as bytes ---- */

/* Bytes of a packed clustering. */
static size_t pack_size(const ddps_clustering *c) {
    return 6 * sizeof(int32_t) + sizeof(uint64_t) + (size_t)c->n_cand * (8 + 4 + 4) + (size_t)c->n_stats * 16;
}

/* Appends / reads n bytes at *p and advances it. */
static void put(unsigned char **p, const void *x, size_t n) {
    memcpy(*p, x, n);
    *p += n;
}
static void get(const unsigned char **p, void *x, size_t n) {
    memcpy(x, *p, n);
    *p += n;
}

/* ok = 1: the clustering; ok = 0: an error message instead. */
static unsigned char *pack(const ddps_clustering *c, const char *error, int *len) {
    size_t n = error ? 6 * sizeof(int32_t) + strlen(error) + 1 : pack_size(c);
    unsigned char *b = ddps_malloc(n), *p = b;
    int32_t h[6] = {error ? 0 : 1, c->class_id, c->k, c->n_cand, c->n_stats, 0};
    put(&p, h, sizeof h);
    if (error) {
        put(&p, error, strlen(error) + 1);
    } else {
        put(&p, &c->seed, sizeof c->seed);
        for (int i = 0; i < c->n_cand; i++) {
            int64_t id = c->cand_ids[i];
            int32_t a = c->assign[i];
            put(&p, &id, 8);
            put(&p, &a, 4);
            put(&p, &c->dist[i], 4);
        }
        for (int i = 0; i < c->n_stats; i++) {
            int32_t cl = c->stats[i].cluster, sz = c->stats[i].size;
            put(&p, &cl, 4);
            put(&p, &sz, 4);
            put(&p, &c->stats[i].median, 8);
        }
    }
    *len = (int)n;
    return b;
}

/* Unpacks what another rank sent; -1 with err on an error message or a bad size. */
static int unpack(const unsigned char *b, int len, int src, ddps_clustering *c, ddps_err *err) {
    memset(c, 0, sizeof *c);
    int32_t h[6];
    if (len < (int)sizeof h) return ddps_fail(err, "rank %d sent a truncated clustering", src);
    const unsigned char *p = b;
    get(&p, h, sizeof h);
    if (h[0] == 0) return ddps_fail(err, "rank %d: %.*s", src, len - (int)sizeof h, (const char *)p);
    c->class_id = h[1], c->k = h[2], c->n_cand = h[3], c->n_stats = h[4];
    if (c->n_cand < 0 || c->n_stats < 0) return ddps_fail(err, "rank %d sent a corrupt clustering", src);
    c->n_cand = h[3];
    if ((size_t)len != pack_size(c)) return ddps_fail(err, "rank %d sent a clustering of the wrong size", src);
    get(&p, &c->seed, sizeof c->seed);
    size_t nc = (size_t)(c->n_cand ? c->n_cand : 1), ns = (size_t)(c->n_stats ? c->n_stats : 1);
    c->cand_ids = ddps_malloc(nc * sizeof *c->cand_ids);
    c->assign = ddps_malloc(nc * sizeof *c->assign);
    c->dist = ddps_malloc(nc * sizeof *c->dist);
    c->stats = ddps_malloc(ns * sizeof *c->stats);
    for (int i = 0; i < c->n_cand; i++) {
        int64_t id;
        int32_t a;
        get(&p, &id, 8);
        get(&p, &a, 4);
        get(&p, &c->dist[i], 4);
        c->cand_ids[i] = id, c->assign[i] = a;
    }
    for (int i = 0; i < c->n_stats; i++) {
        int32_t cl, sz;
        get(&p, &cl, 4);
        get(&p, &sz, 4);
        get(&p, &c->stats[i].median, 8);
        c->stats[i].cluster = cl, c->stats[i].size = sz;
    }
    return 0;
}

/* Every rank: clusters its classes of the merge (read-only). Results go to
 * out[class index] on rank 0, to rank 0 by message elsewhere. */
static int cluster_share(const char *tmp, const ddps_merge *m, const int *owner, int rank, ddps_clustering *out,
                         ddps_err *err) {
    int mine = 0, rc = 0;
    for (int c = 0; c < m->n_classes; c++) mine += owner[c] == rank;
    ddps_clustering *res = ddps_calloc((size_t)m->n_classes + 1, sizeof *res);
    if (mine) {
        ddps_store *st = NULL;
        rc = ddps_store_open(tmp, 1, &st, err);
        for (int c = 0; rc == 0 && c < m->n_classes; c++)
            if (owner[c] == rank) rc = ddps_store_cluster_compute(st, m->classes[c].class_id, m->k, m->classes[c].seed,
                                                                  &res[c], err);
        ddps_store_close(st); /* closed before anything is sent: rank 0 writes once it has everything */
    }
    for (int c = 0; c < m->n_classes; c++) {
        if (owner[c] != rank) continue;
        if (rank == 0) {
            out[c] = res[c];
            memset(&res[c], 0, sizeof res[c]);
            continue;
        }
        int len;
        ddps_clustering empty = {0};
        unsigned char *b = rc == 0 ? pack(&res[c], NULL, &len) : pack(&empty, err->msg, &len);
        MPI_Send(b, len, MPI_BYTE, 0, TAG_CLUSTER, MPI_COMM_WORLD);
        free(b);
    }
    for (int c = 0; c < m->n_classes; c++) ddps_clustering_free(&res[c]);
    free(res);
    return rc;
}

/* This process in the job: world rank and size, rank and size on its node. */
typedef struct {
    int rank, size, local_rank, local_size;
} mpi_world;

/* MPI_Init and where this process is. */
static void world_init(mpi_world *w) {
    int provided;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &w->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &w->size);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, w->rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &w->local_rank);
    MPI_Comm_size(node, &w->local_size);
    MPI_Comm_free(&node);
}

/* Plan: this rank's share (its shard store, cores and GPU) as options so
 * for ddps_score_run, progress routed through j. Returns the shard path (heap). */
static char *plan_share(const ddps_score_opts *o, const mpi_world *w, job *j, ddps_score_opts *so, char *devbuf,
                        size_t ndev) {
    char *shard = ddps_shard_path(o->store_path, w->rank, w->size);
    *so = *o;
    so->store_path = shard;
    so->p.shard_k = w->rank, so->p.shard_n = w->size;
    so->p.mpi = 0; /* the share itself is a plain shard run */
    if (so->p.threads == 0) so->p.threads = ddps_threads_for_local(w->local_size);
    so->p.device = ddps_device_for_local(o->p.device, w->local_rank, devbuf, ndev);
    j->rank = w->rank, j->size = w->size;
    j->done = ddps_calloc((size_t)w->size, sizeof(long));
    j->todo = ddps_calloc((size_t)w->size, sizeof(long));
    j->known = ddps_calloc((size_t)w->size, 1);
    j->final = ddps_calloc((size_t)w->size, 1);
    j->status = ddps_calloc((size_t)w->size, sizeof(int));
    so->on_progress = on_progress;
    so->progress_arg = j;
    ddps_debug("rank %d of %d (local %d of %d): %s, %d threads, device %s", w->rank, w->size, w->local_rank,
               w->local_size, shard, so->p.threads, so->p.device);
    return shard;
}

/* Rank 0, after its own share: waits for every other rank's final word;
 * 1 when all shares are complete, else 0 with err naming the failed ranks
 * (err keeps rank 0's own failure when it failed itself). */
static int gather_finals(job *j, int own_rc, ddps_err *err) {
    j->status[0] = own_rc != 0;
    j->known[0] = 1;
    while (j->n_final < j->size - 1) {
        take_message(j, 1);
        show(j);
    }
    ddps_progress_end(j->prog);
    j->prog = NULL;
    char failed[256] = "";
    size_t len = 0;
    int all_ok = 1;
    for (int r = 0; r < j->size; r++)
        if (j->status[r]) {
            all_ok = 0;
            if (len < sizeof failed - 16)
                len += (size_t)snprintf(failed + len, sizeof failed - len, "%s%d", len ? ", " : "", r);
        }
    if (!all_ok && own_rc == 0)
        ddps_fail(err, "rank %s failed (see above); every shard keeps what it committed: rerun the same command to "
                  "resume", failed);
    return all_ok;
}

/* Execute: every rank scores its share; the job learns whether all are
 * complete (broadcast). 0, or -1 with err (this rank's failure, or the job's). */
static int score_shares(const ddps_score_opts *o, const mpi_world *w, job *j, ddps_run_stats *st, ddps_err *err) {
    ddps_score_opts so;
    char devbuf[32];
    char *shard = plan_share(o, w, j, &so, devbuf, sizeof devbuf);
    int rc = ddps_score_run(&so, st, err);
    if (rc != 0) ddps_fail_prefix(err, "rank %d (%s)", w->rank, shard);
    int all_ok = 0;
    if (w->rank != 0) {
        long m[3] = {rc != 0, j->done[0], j->todo[0]};
        MPI_Send(m, 3, MPI_LONG, 0, TAG_FINAL, MPI_COMM_WORLD);
    } else {
        all_ok = gather_finals(j, rc, err);
    }
    bcast_poll(&all_ok, 1, MPI_INT);
    free(shard);
    if (!all_ok && rc == 0 && w->rank != 0) ddps_fail(err, "rank %d: the job failed (rank 0 says why)", w->rank);
    return all_ok ? 0 : -1;
}

/* Rank 0 checks and copies the shards into STORE.merging; every rank gets
 * the class list (id, candidates, seed; k) in m. 0, or -1 with err. */
static int merge_begin_all(const char *store, const mpi_world *w, ddps_merge *m, ddps_err *err) {
    int ok = 1;
    if (w->rank == 0) {
        char **paths = ddps_malloc((size_t)w->size * sizeof *paths);
        for (int r = 0; r < w->size; r++) paths[r] = ddps_shard_path(store, r, w->size);
        if (ddps_merge_begin(store, paths, w->size, 0, m, err) != 0) {
            ddps_fail_prefix(err, "merging the shards");
            ok = 0;
        }
        for (int r = 0; r < w->size; r++) free(paths[r]);
        free(paths);
    }
    bcast_poll(&ok, 1, MPI_INT);
    if (!ok) return w->rank == 0 ? -1 : ddps_fail(err, "rank %d: merging failed (rank 0 says why)", w->rank);
    long long hdr[2] = {m->n_classes, m->k};
    bcast_poll(hdr, 2, MPI_LONG_LONG);
    int nc = (int)hdr[0];
    long long *cl = ddps_calloc((size_t)nc * 3 + 1, sizeof *cl);
    for (int c = 0; w->rank == 0 && c < nc; c++)
        cl[3 * c] = m->classes[c].class_id, cl[3 * c + 1] = m->classes[c].n_cand,
               cl[3 * c + 2] = (long long)m->classes[c].seed;
    bcast_poll(cl, nc * 3, MPI_LONG_LONG);
    if (w->rank != 0) {
        m->n_classes = nc, m->k = (int)hdr[1];
        m->classes = ddps_calloc((size_t)nc + 1, sizeof *m->classes);
        for (int c = 0; c < nc; c++)
            m->classes[c].class_id = (int)cl[3 * c], m->classes[c].n_cand = (long)cl[3 * c + 1],
            m->classes[c].seed = (uint64_t)cl[3 * c + 2];
    }
    free(cl);
    return 0;
}

/* Rank 0: receives the clusterings the other ranks computed into res[]
 * (by class index). 0, or -1 with err (a rank's error or a bad message). */
static int gather_clusterings(const ddps_merge *m, const int *owner, ddps_clustering *res, ddps_err *err) {
    int rc = 0;
    for (int c = 0; c < m->n_classes; c++) {
        if (owner[c] == 0) continue;
        MPI_Status ms;
        probe_poll(TAG_CLUSTER, &ms);
        int len;
        MPI_Get_count(&ms, MPI_BYTE, &len);
        unsigned char *b = ddps_malloc((size_t)len + 1);
        MPI_Recv(b, len, MPI_BYTE, ms.MPI_SOURCE, TAG_CLUSTER, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        ddps_clustering got;
        ddps_err e2 = {{0}};
        if (unpack(b, len, ms.MPI_SOURCE, &got, &e2) != 0) {
            if (rc == 0) rc = ddps_fail(err, "clustering: %s", e2.msg);
        } else {
            int at = -1;
            for (int x = 0; x < m->n_classes && at < 0; x++)
                if (m->classes[x].class_id == got.class_id && owner[x] == ms.MPI_SOURCE && !res[x].k) at = x;
            if (at < 0) {
                if (rc == 0)
                    rc = ddps_fail(err, "rank %d sent the clustering of an unexpected class %d", ms.MPI_SOURCE,
                                   got.class_id);
                ddps_clustering_free(&got);
            } else {
                res[at] = got;
            }
        }
        free(b);
    }
    return rc;
}

/* Rank 0: writes every clustering into STORE.merging and renames it to STORE. */
static int write_and_commit(ddps_merge *m, const char *tmp, const ddps_clustering *res, ddps_err *err) {
    ddps_store *out = NULL;
    int rc = ddps_store_open(tmp, 0, &out, err);
    for (int c = 0; rc == 0 && c < m->n_classes; c++) rc = ddps_store_cluster_write(out, &res[c], err);
    ddps_store_close(out);
    if (rc == 0) rc = ddps_merge_commit(m, err);
    if (rc != 0) ddps_fail_prefix(err, "merging the shards");
    return rc;
}

/* Merge: the classes are clustered by all ranks (ddps_merge_assign), rank 0
 * writes them and renames the result to STORE. 0, or -1 with err. */
static int merge_shards(const char *store, const mpi_world *w, ddps_err *err) {
    ddps_merge m;
    memset(&m, 0, sizeof m);
    if (merge_begin_all(store, w, &m, err) != 0) {
        if (w->rank == 0) ddps_merge_free(&m);
        return -1;
    }
    int nc = m.n_classes;
    int *owner = ddps_calloc((size_t)nc + 1, sizeof *owner);
    ddps_merge_assign(&m, w->size, owner);
    size_t tl = strlen(store) + 16;
    char *tmp = ddps_malloc(tl);
    snprintf(tmp, tl, "%s.merging", store);
    ddps_clustering *res = ddps_calloc((size_t)nc + 1, sizeof *res);
    int rc = cluster_share(tmp, &m, owner, w->rank, res, err);
    if (rc != 0) ddps_fail_prefix(err, "rank %d: clustering", w->rank);
    if (w->rank == 0) {
        ddps_err e2 = {{0}};
        int grc = gather_clusterings(&m, owner, res, rc == 0 ? err : &e2);
        if (rc == 0 && grc != 0) rc = -1;
        if (rc == 0) rc = write_and_commit(&m, tmp, res, err);
        if (rc == 0)
            ddps_info("%s: merged %d shards, %d class%s clustered over %d processes", store, w->size, nc,
                      nc == 1 ? "" : "es", w->size);
    }
    for (int c = 0; c < nc; c++) ddps_clustering_free(&res[c]);
    free(res);
    free(tmp);
    free(owner);
    int ok = rc == 0;
    bcast_poll(&ok, 1, MPI_INT);
    if (w->rank == 0)
        ddps_merge_free(&m);
    else
        free(m.classes);
    if (!ok && rc == 0) return ddps_fail(err, "rank %d: merging failed (rank 0 says why)", w->rank);
    return ok ? 0 : -1;
}

int ddps_mpi_score(const ddps_score_opts *o, ddps_run_stats *totals, ddps_err *err) {
    mpi_world w;
    world_init(&w);
    job j;
    memset(&j, 0, sizeof j);
    ddps_run_stats st;
    memset(&st, 0, sizeof st);
    int rc = score_shares(o, &w, &j, &st, err);
    if (rc == 0) rc = merge_shards(o->store_path, &w, err);
    if (totals) *totals = st;
    free(j.done), free(j.todo), free(j.known), free(j.final), free(j.status);
    MPI_Finalize();
    return rc;
}

#endif
