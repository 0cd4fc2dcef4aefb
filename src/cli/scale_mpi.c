/* The MPI scoring job (cli/scale.h). Built with Open MPI when CMake finds
 * it (DDPS_HAVE_MPI); otherwise a stub that says MPI is unavailable.
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
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/scale.h"
#include "pipeline/shard.h"
#include "util/fs.h"
#include "util/progress.h"

#ifndef DDPS_HAVE_MPI

int ddps_have_mpi(void) { return 0; }

int ddps_mpi_score(ddps_score_opts *o) {
    (void)o;
    fprintf(stderr, "ddps score: MPI is unavailable in this build\n");
    return 2;
}

#else

#include <mpi.h>

#define TAG_PROGRESS 11
#define TAG_FINAL 12
#define TAG_CLUSTER 13

int ddps_have_mpi(void) { return 1; }

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

static void probe_poll(int tag, MPI_Status *st) {
    int flag = 0;
    for (;;) {
        MPI_Iprobe(MPI_ANY_SOURCE, tag, MPI_COMM_WORLD, &flag, st);
        if (flag) return;
        nap();
    }
}

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

/* mpirun forwards rank 0's stderr through a pipe, so isatty(2) is always
 * false there; it gives stdout a pty, and the job keeps the controlling
 * terminal of the shell that started mpirun (none in a batch job). Both
 * together: mpirun was started from a terminal. */
static int launched_from_terminal(void) {
    if (isatty(STDERR_FILENO)) return 1;
    if (!isatty(STDOUT_FILENO)) return 0;
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return 0;
    close(fd);
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
        j->prog = ddps_progress_start(label, todo, "img", launched_from_terminal());
    }
    ddps_progress_update(j->prog, done);
}

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

static size_t pack_size(const ddps_clustering *c) {
    return 6 * sizeof(int32_t) + sizeof(uint64_t) + (size_t)c->n_cand * (8 + 4 + 4) + (size_t)c->n_stats * 16;
}

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

int ddps_mpi_score(ddps_score_opts *o) {
    int provided, rank, size, local_rank, local_size;
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &local_rank);
    MPI_Comm_size(node, &local_size);
    MPI_Comm_free(&node);
    if (rank > 0 && ddps_verbosity == 1) ddps_verbosity = 0; /* quiet unless -v */

    /* This rank's share: its own shard store, cores and GPU. */
    ddps_err err = {{0}};
    const char *store = o->store_path;
    char *shard = ddps_shard_path(store, rank, size), devbuf[32];
    ddps_score_opts so = *o;
    so.store_path = shard;
    so.shard_k = rank, so.shard_n = size;
    if (so.threads == 0) so.threads = ddps_threads_for_local(local_size);
    so.device = ddps_device_for_local(o->device, local_rank, devbuf, sizeof devbuf);
    job j = {rank, size, ddps_calloc((size_t)size, sizeof(long)), ddps_calloc((size_t)size, sizeof(long)),
             ddps_calloc((size_t)size, 1), ddps_calloc((size_t)size, 1), ddps_calloc((size_t)size, sizeof(int)), 0,
             NULL};
    so.on_progress = on_progress;
    so.progress_arg = &j;
    ddps_debug("rank %d of %d (local %d of %d): %s, %d threads, device %s", rank, size, local_rank, local_size, shard,
               so.threads, so.device);
    ddps_run_stats st;
    int rc = ddps_score_run(&so, &st, &err);
    if (rc != 0) fprintf(stderr, "ddps score: rank %d (%s): %s\n", rank, shard, err.msg);

    /* Every share finished? */
    int all_ok = 0;
    if (rank != 0) {
        long m[3] = {rc != 0, j.done[0], j.todo[0]};
        MPI_Send(m, 3, MPI_LONG, 0, TAG_FINAL, MPI_COMM_WORLD);
    } else {
        j.status[0] = rc != 0;
        j.known[0] = 1;
        while (j.n_final < size - 1) {
            take_message(&j, 1);
            show(&j);
        }
        ddps_progress_end(j.prog);
        all_ok = 1;
        char failed[256] = "";
        size_t len = 0;
        for (int r = 0; r < size; r++)
            if (j.status[r]) {
                all_ok = 0;
                if (len < sizeof failed - 16) len += (size_t)snprintf(failed + len, sizeof failed - len, "%s%d", len ? ", " : "", r);
            }
        if (!all_ok)
            fprintf(stderr,
                    "ddps score: rank %s failed (see above); every shard keeps what it committed: rerun the same "
                    "command to resume\n",
                    failed);
    }
    bcast_poll(&all_ok, 1, MPI_INT);
    int status = all_ok ? 0 : 1;

    /* Merge: rank 0 checks and copies; the classes are clustered by all. */
    ddps_merge m;
    memset(&m, 0, sizeof m);
    if (status == 0) {
        int ok = 1;
        if (rank == 0) {
            char **paths = ddps_malloc((size_t)size * sizeof *paths);
            for (int r = 0; r < size; r++) paths[r] = ddps_shard_path(store, r, size);
            if (ddps_merge_begin(store, paths, size, &m, &err) != 0) {
                fprintf(stderr, "ddps score: merging the shards: %s\n", err.msg);
                ok = 0;
            }
            for (int r = 0; r < size; r++) free(paths[r]);
            free(paths);
        }
        bcast_poll(&ok, 1, MPI_INT);
        if (!ok) status = 1;
    }
    if (status == 0) {
        /* the class list: (id, candidates, seed) each, and k */
        long long hdr[2] = {m.n_classes, m.k};
        bcast_poll(hdr, 2, MPI_LONG_LONG);
        int nc = (int)hdr[0];
        long long *cl = ddps_calloc((size_t)nc * 3 + 1, sizeof *cl);
        for (int c = 0; rank == 0 && c < nc; c++)
            cl[3 * c] = m.classes[c].class_id, cl[3 * c + 1] = m.classes[c].n_cand,
                   cl[3 * c + 2] = (long long)m.classes[c].seed;
        bcast_poll(cl, nc * 3, MPI_LONG_LONG);
        if (rank != 0) {
            m.n_classes = nc, m.k = (int)hdr[1];
            m.classes = ddps_calloc((size_t)nc + 1, sizeof *m.classes);
            for (int c = 0; c < nc; c++)
                m.classes[c].class_id = (int)cl[3 * c], m.classes[c].n_cand = (long)cl[3 * c + 1],
                m.classes[c].seed = (uint64_t)cl[3 * c + 2];
        }
        free(cl);
        int *owner = ddps_calloc((size_t)nc + 1, sizeof *owner);
        ddps_merge_assign(&m, size, owner);
        size_t tl = strlen(store) + 16;
        char *tmp = ddps_malloc(tl);
        snprintf(tmp, tl, "%s.merging", store);
        ddps_clustering *res = ddps_calloc((size_t)nc + 1, sizeof *res);
        int crc = cluster_share(tmp, &m, owner, rank, res, &err);
        int ok = crc == 0, reported = !ok;
        if (crc != 0) fprintf(stderr, "ddps score: rank %d: clustering: %s\n", rank, err.msg);
        if (rank == 0) {
            /* everything the others computed (or their errors) */
            for (int c = 0; c < nc; c++) {
                if (owner[c] == 0) continue;
                MPI_Status ms;
                probe_poll(TAG_CLUSTER, &ms);
                int len;
                MPI_Get_count(&ms, MPI_BYTE, &len);
                unsigned char *b = ddps_malloc((size_t)len + 1);
                MPI_Recv(b, len, MPI_BYTE, ms.MPI_SOURCE, TAG_CLUSTER, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                ddps_clustering got;
                ddps_err e2;
                if (unpack(b, len, ms.MPI_SOURCE, &got, &e2) != 0) {
                    if (!reported) fprintf(stderr, "ddps score: clustering: %s\n", e2.msg);
                    ok = 0, reported = 1;
                } else {
                    int at = -1;
                    for (int x = 0; x < nc && at < 0; x++)
                        if (m.classes[x].class_id == got.class_id && owner[x] == ms.MPI_SOURCE && !res[x].k) at = x;
                    if (at < 0) {
                        fprintf(stderr, "ddps score: rank %d sent the clustering of an unexpected class %d\n",
                                ms.MPI_SOURCE, got.class_id);
                        ok = 0, reported = 1;
                        ddps_clustering_free(&got);
                    } else {
                        res[at] = got;
                    }
                }
                free(b);
            }
            ddps_store *out = NULL;
            if (ok && ddps_store_open(tmp, 0, &out, &err) != 0) ok = 0;
            for (int c = 0; ok && c < nc; c++)
                if (ddps_store_cluster_write(out, &res[c], &err) != 0) ok = 0;
            ddps_store_close(out);
            if (ok && ddps_merge_commit(&m, &err) != 0) ok = 0;
            if (!ok && !reported) fprintf(stderr, "ddps score: merging the shards: %s\n", err.msg);
            if (ok && ddps_verbosity > 0)
                ddps_info("%s: merged %d shards, %d class%s clustered over %d processes", store, size, nc, nc == 1 ? "" : "es", size);
        }
        for (int c = 0; c < nc; c++) ddps_clustering_free(&res[c]);
        free(res);
        free(tmp);
        free(owner);
        bcast_poll(&ok, 1, MPI_INT);
        if (!ok) status = 1;
    }
    if (rank == 0) {
        ddps_merge_free(&m);
    } else {
        free(m.classes);
    }
    free(j.done), free(j.todo), free(j.known), free(j.final), free(j.status);
    free(shard);
    MPI_Finalize();
    return status;
}

#endif
