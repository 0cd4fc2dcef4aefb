/* Scale-out (issue 10): one scoring job over several processes gives the
 * store a single process writes, bit for bit.
 *
 *   - `mpirun -n 2` and `-n 3`: the merged store equals the single-process
 *     store (every image, candidate, score, feature, cluster and bad image),
 *     and `select` writes byte-identical images; rerunning a finished job
 *     changes nothing;
 *   - an MPI job with one rank killed by SIGKILL mid-run, rerun: the same;
 *   - `--shard K/3` for each share, one killed by SIGKILL mid-run and
 *     resumed, then `ddps merge`: the same;
 *   - `merge` refuses a missing shard, the same shard twice, a shard of other
 *     settings, an unfinished shard and corrupt shards: exit 1, one line
 *     naming the shard, nothing at --store.
 *
 * The dataset is made of links to imagewoof-mini images: classes of 2, 5
 * (one of them broken) and 3 images, batch groups of 2, so that with 2 and 3
 * processes one class spans two ranks and one rank holds two classes (see
 * pipeline/shard.h for the split).
 *
 * MPI runs under AddressSanitizer: Open MPI's own allocations are reported
 * as leaks at exit, so mpirun-launched children run with detect_leaks=0
 * (ASAN_OPTIONS passed with -x); everything else keeps leak checking. The
 * MPI cases are the part "mpi", a CTest test of its own (test_scale_mpi)
 * that reports a skip when mpirun is missing or ddps was built without MPI. */
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pipeline/shard.h"
#include "pipeline/store.h"
#include "testlib.h"

static char model[4096], data[4096], common[8192];
#define MPIRUN "env ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 mpirun --oversubscribe --allow-run-as-root -x ASAN_OPTIONS "

static void hash_bytes(uint64_t *h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) *h = (*h ^ b[i]) * 1099511628211ULL;
}

/* Every number a store holds about its classes, images, candidates, features,
 * clusters and bad images, as text (ids and timings left out); with_totals
 * adds the model-evaluation totals of its runs (not for killed runs: the
 * killed part of a run is not accounted). */
static char *store_digest_t(const char *path, int with_totals) {
    ddps_store *s;
    ddps_err err;
    if (ddps_store_open(path, 1, &s, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    buf[0] = 0;
#define OUT(...)                                                                  \
    do {                                                                          \
        if (len + 8192 > cap) buf = realloc(buf, cap *= 2);                       \
        len += (size_t)snprintf(buf + len, cap - len, __VA_ARGS__);               \
    } while (0)
    ddps_class_info *ci;
    int nc;
    if (ddps_store_list_classes(s, &ci, &nc, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        nc = 0, ci = NULL;
    }
    for (int i = 0; i < nc; i++) {
        OUT("class %s|%s|%s|%ld|%ld|%ld|%d|%d\n", ci[i].name, ci[i].prompt_name ? ci[i].prompt_name : "-",
            ci[i].prompt ? ci[i].prompt : "-", ci[i].n_images, ci[i].n_bad, ci[i].n_cand, ci[i].clustered,
            ci[i].clustered_k);
        ddps_class_data d;
        if (ddps_store_load_class(s, ci[i].id, 1, &d, &err) != 0) {
            fprintf(stderr, "%s\n", err.msg);
            OUT("unreadable\n");
            continue;
        }
        for (int k = 0; k < d.n_images; k++)
            OUT("image %s|%d|%d|%d|%d|%a\n", d.images[k].relpath, d.images[k].width, d.images[k].height,
                d.images[k].rw, d.images[k].rh, d.images[k].image_score);
        for (int k = 0; k < d.n_cand; k++) {
            const ddps_stored_cand *c = &d.cand[k];
            uint64_t h = 1469598103934665603ULL;
            hash_bytes(&h, d.features + (size_t)k * d.dim, (size_t)d.dim * sizeof(float));
            OUT("cand %s|%d|%a,%a,%a,%a|%d,%d,%d,%d|%a|%d|%d|%a|%016llx\n", d.images[c->image].relpath, c->idx, c->x0,
                c->y0, c->x1, c->y1, c->rx, c->ry, c->rw, c->rh, c->score, c->cluster, c->cluster_rank, c->dist,
                (unsigned long long)h);
        }
        for (int k = 0; k < d.n_clusters; k++)
            OUT("cluster %d|%d|%d|%a\n", d.clusters[k].cluster, d.clusters[k].size, d.clusters[k].rank,
                d.clusters[k].median_score);
        /* the Stage-I maps (reports) travel with their images */
        ddps_stored_map *maps = NULL;
        if (ddps_store_load_maps(s, &d, &maps, &err) == 0) {
            for (int k = 0; k < d.n_images; k++) {
                uint64_t h = 1469598103934665603ULL;
                if (maps[k].data) hash_bytes(&h, maps[k].data, (size_t)maps[k].h * maps[k].w * sizeof(float));
                OUT("map %s|%dx%d|%016llx\n", d.images[k].relpath, maps[k].w, maps[k].h, (unsigned long long)h);
            }
            ddps_store_free_maps(maps, d.n_images);
        } else {
            OUT("maps unreadable: %s\n", err.msg);
        }
        ddps_class_data_free(&d);
    }
    ddps_store_free_classes(ci, nc);
    ddps_bad_image *bad;
    int nb;
    if (ddps_store_list_bad(s, 0, &bad, &nb, &err) == 0) {
        for (int i = 0; i < nb; i++) OUT("bad %s|%s\n", bad[i].relpath, bad[i].reason ? bad[i].reason : "-");
        ddps_store_free_bad(bad, nb);
    }
    ddps_run_stats t;
    if (with_totals && ddps_store_totals(s, &t, &err) == 0)
        OUT("totals %ld|%ld|%ld|%ld\n", t.images_scored, t.images_bad, t.unet_latents, t.vae_images);
#undef OUT
    ddps_store_close(s);
    return buf;
}

static char *store_digest(const char *path) { return store_digest_t(path, 0); }

static char *ref_digest, *ref_digest_totals;
static char ref_store[4200], ref_out[4200];

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* Images committed to a store so far (0 while it does not exist yet). */
static long committed(const char *path) {
    if (!exists(path)) return 0;
    ddps_store *s;
    ddps_err err;
    if (ddps_store_open(path, 1, &s, &err) != 0) return 0;
    ddps_class_info *ci;
    int nc;
    long n = 0;
    if (ddps_store_list_classes(s, &ci, &nc, &err) == 0) {
        for (int i = 0; i < nc; i++) n += ci[i].n_images;
        ddps_store_free_classes(ci, nc);
    }
    ddps_store_close(s);
    return n;
}

/* Starts `sh -c "exec CMD"` in its own process group. */
static pid_t start(const char *cmd) {
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        char full[16384];
        snprintf(full, sizeof full, "exec %s >/dev/null 2>&1", cmd);
        execl("/bin/sh", "sh", "-c", full, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits for pid (at most seconds), then kills its group; returns its exit status. */
static int wait_for(pid_t pid, int seconds) {
    int st = 0;
    for (int i = 0; i < seconds * 50; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        sleep_ms(20);
    }
    fprintf(stderr, "pid %d did not end in %d s: killing its group\n", (int)pid, seconds);
    kill(-pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

/* Waits until store has at least one committed image (or pid ended). 1 when it has. */
static int wait_committed(pid_t pid, const char *store, int seconds) {
    for (int i = 0; i < seconds * 50; i++) {
        if (committed(store) >= 1) return 1;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) return -1; /* ended (reaped) */
        sleep_ms(20);
    }
    return 0;
}

static void make_dataset(void) {
    const char *root = t_tmpdir("scale_data");
    snprintf(data, sizeof data, "%s", root);
    const char *woof = t_shared("data/imagewoof-mini/train");
    char cmd[16384];
    /* alpha: 2 images, beta: 4 + 1 broken, gamma: 3 */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && mkdir alpha beta gamma && W='%s' && "
             "for f in $(ls $W/n02086240 | head -2); do ln -s $W/n02086240/$f alpha/$f; done && "
             "for f in $(ls $W/n02087394 | head -4); do ln -s $W/n02087394/$f beta/$f; done && "
             "head -c 2000 $W/n02087394/$(ls $W/n02087394 | tail -1) > beta/zz_truncated.jpg && "
             "for f in $(ls $W/n02088364 | head -3); do ln -s $W/n02088364/$f gamma/$f; done",
             root, woof);
    CHECK(t_run(cmd, NULL) == 0);
    snprintf(common, sizeof common,
             "--data %s --model %s --size 64 --patch 48 --stride 8 --timesteps 2 --dift-ensemble 2 "
             "--patches-per-image 2 --batch-images 2 --clusters 3 --threads 1",
             data, model);
}

static void reference(void) {
    const char *dir = t_tmpdir("scale_ref");
    snprintf(ref_store, sizeof ref_store, "%s/ref.sqlite", dir);
    snprintf(ref_out, sizeof ref_out, "%s/out", dir);
    CHECK(t_runv("%s score %s --store %s", DDPS_BIN, common, ref_store) == 0);
    CHECK(t_runv("%s select --store %s --out %s --ipc 1,2", DDPS_BIN, ref_store, ref_out) == 0);
    ref_digest = store_digest(ref_store);
    ref_digest_totals = store_digest_t(ref_store, 1);
    CHECK(ref_digest && strstr(ref_digest, "cluster ") && strstr(ref_digest, "bad beta/zz_truncated.jpg"));
    CHECK(ref_digest && strstr(ref_digest, "map ") && !strstr(ref_digest, "|0x0|")); /* every image has its map */
    CHECK(ref_digest_totals && strstr(ref_digest_totals, "totals 9|1|72|27"));
}

/* The store equals the reference, and select writes the same files. */
static void same_as_reference(const char *store, const char *label) {
    char *d = store_digest(store);
    CHECKF(d && ref_digest && strcmp(d, ref_digest) == 0, "%s: store differs from the single-process one:\n%s\n--- vs\n%s",
           label, d ? d : "(none)", ref_digest ? ref_digest : "(none)");
    free(d);
    char out[4300];
    snprintf(out, sizeof out, "%s.out", store);
    CHECK(t_runv("rm -rf %s && %s select --store %s --out %s --ipc 1,2", out, DDPS_BIN, store, out) == 0);
    CHECKF(t_runv("diff -r -x manifest.json %s %s", ref_out, out) == 0, "%s: select output differs", label);
}

static void mpi_job(int n) {
    char name[64], store[4200];
    snprintf(name, sizeof name, "scale_mpi%d", n);
    snprintf(store, sizeof store, "%s/m.sqlite", t_tmpdir(name));
    char *out = NULL, cmd[16384];
    snprintf(cmd, sizeof cmd, MPIRUN "-n %d %s score %s --store %s", n, DDPS_BIN, common, store);
    int rc = t_run(cmd, &out);
    CHECKF(rc == 0, "rc %d: %s", rc, out);
    /* rank 0 reports the merge; the other ranks are quiet */
    CHECKF(out && strstr(out, "merged") && !strstr(out, "rank 1"), "%s", out);
    free(out);
    for (int r = 0; r < n; r++) {
        char sp[4300];
        snprintf(sp, sizeof sp, "%s.shard-%d-of-%d", store, r, n);
        CHECKF(exists(sp), "%s missing", sp);
    }
    same_as_reference(store, name);
    char *dt = store_digest_t(store, 1);
    CHECKF(dt && ref_digest_totals && strcmp(dt, ref_digest_totals) == 0, "%s: model evaluations differ", name);
    free(dt);
    /* the same command again: everything is in the shards, the result is the same */
    CHECK(t_runv(MPIRUN "-n %d %s score %s --store %s", n, DDPS_BIN, common, store) == 0);
    char *d = store_digest(store);
    CHECK(d && ref_digest && strcmp(d, ref_digest) == 0);
    free(d);
}

static void mpi_2(void) { mpi_job(2); }
static void mpi_3(void) { mpi_job(3); }

/* One rank of a 3-process job is killed mid-run; the rerun resumes every shard. */
static void mpi_rank_killed(void) {
    char store[4200], shard1[4300], cmd[16384];
    snprintf(store, sizeof store, "%s/k.sqlite", t_tmpdir("scale_mpikill"));
    snprintf(shard1, sizeof shard1, "%s.shard-1-of-3", store);
    snprintf(cmd, sizeof cmd, MPIRUN "-n 3 %s score %s --store %s", DDPS_BIN, common, store);
    pid_t pid = start(cmd);
    int got = wait_committed(pid, shard1, 300);
    if (got == 1) {
        /* kill -9 the rank processes' first one (a child of mpirun) */
        char path[128], *kids = NULL, pc[128];
        snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
        snprintf(pc, sizeof pc, "cat %s", path);
        t_run(pc, &kids);
        int child = kids ? atoi(kids) : 0;
        free(kids);
        CHECKF(child > 0, "no rank process found under mpirun %d", (int)pid);
        if (child > 0) kill(child, SIGKILL);
        int rc = wait_for(pid, 120);
        CHECKF(rc != 0, "mpirun exited %d after a rank was killed", rc);
    } else if (got == 0) {
        CHECKF(0, "no image committed to %s", shard1);
        wait_for(pid, 1);
    } else {
        fprintf(stderr, "note: the job ended before a rank could be killed\n");
    }
    CHECKF(!exists(store) || got != 1, "%s exists after a killed job", store);
    CHECK(t_runv(MPIRUN "-n 3 %s score %s --store %s", DDPS_BIN, common, store) == 0);
    char *d = store_digest(store);
    CHECKF(d && ref_digest && strcmp(d, ref_digest) == 0, "resumed MPI job differs from the single-process store");
    free(d);
}

static char shard_store[4200];

static void shard_path(char *buf, size_t n, const char *store, int k) { snprintf(buf, n, "%s.shard-%d-of-3", store, k); }

/* A merge that must fail: exit 1, one line naming `needle`, nothing at OUT. */
static void merge_refused(const char *label, const char *shards, const char *needle) {
    char out[4300], cmd[16384], *txt = NULL;
    snprintf(out, sizeof out, "%s.refused.sqlite", shard_store);
    snprintf(cmd, sizeof cmd, "%s merge --store %s %s", DDPS_BIN, out, shards);
    int rc = t_run(cmd, &txt);
    int lines = 0;
    for (const char *p = txt; p && *p; p++) lines += *p == '\n';
    CHECKF(rc == 1 && lines == 1 && txt && strstr(txt, needle), "%s: rc %d, %d lines: %s", label, rc, lines, txt);
    char tmp[4400];
    snprintf(tmp, sizeof tmp, "%s.merging", out);
    CHECKF(!exists(out) && !exists(tmp), "%s: %s was written", label, out);
    free(txt);
}

static void shards_killed_resumed(void) {
    snprintf(shard_store, sizeof shard_store, "%s/s.sqlite", t_tmpdir("scale_shards"));
    char s[3][4400], cmd[16384];
    for (int k = 0; k < 3; k++) shard_path(s[k], sizeof s[k], shard_store, k);
    CHECK(t_runv("%s score %s --store %s --shard 0/3", DDPS_BIN, common, shard_store) == 0);
    /* share 1 (beta's last images, one broken) killed once it has committed something */
    snprintf(cmd, sizeof cmd, "%s score %s --store %s --shard 1/3", DDPS_BIN, common, shard_store);
    pid_t pid = start(cmd);
    int got = wait_committed(pid, s[1], 300);
    if (got == 1) {
        kill(pid, SIGKILL);
        CHECK(wait_for(pid, 60) == 128 + SIGKILL);
    } else {
        CHECKF(got != 0, "no image committed to %s", s[1]);
        if (got == 0) wait_for(pid, 1);
        fprintf(stderr, "note: shard 1 ended before it could be killed\n");
    }
    /* share 2 from a Slurm array task: the share comes from the environment */
    CHECK(t_runv("SLURM_ARRAY_TASK_ID=7 SLURM_ARRAY_TASK_MIN=5 SLURM_ARRAY_TASK_COUNT=3 %s score %s --store %s", DDPS_BIN,
              common, shard_store) == 0);
    CHECK(exists(s[2]));
    char list[16384];
    snprintf(list, sizeof list, "%s %s %s", s[0], s[1], s[2]);
    if (got == 1) merge_refused("unfinished shard", list, "shard 1/3 is not finished");
    CHECK(t_runv("%s score %s --store %s --shard 1/3", DDPS_BIN, common, shard_store) == 0);
    /* any order of the shards on the command line */
    CHECK(t_runv("%s merge --store %s %s %s %s", DDPS_BIN, shard_store, s[2], s[0], s[1]) == 0);
    same_as_reference(shard_store, "shards");
}

static void merge_errors(void) {
    char s[3][4400], list[16384], bad[4400], cmd[16384];
    for (int k = 0; k < 3; k++) shard_path(s[k], sizeof s[k], shard_store, k);
    snprintf(list, sizeof list, "%s %s", s[0], s[2]);
    merge_refused("missing shard", list, "1/3");
    snprintf(list, sizeof list, "%s %s %s %s", s[0], s[1], s[1], s[2]);
    merge_refused("duplicate shard", list, "same shard 1/3");
    /* a shard of other settings (--clusters 4) */
    char other[4400];
    snprintf(other, sizeof other, "%s.other", shard_store);
    CHECK(t_runv("%s score %s --store %s --shard 2/3 --clusters 4", DDPS_BIN, common, other) == 0);
    shard_path(bad, sizeof bad, other, 2);
    snprintf(list, sizeof list, "%s %s %s", s[0], s[1], bad);
    merge_refused("other settings", list, "clusters");
    /* corrupt shards: a damaged header, a truncated file */
    snprintf(bad, sizeof bad, "%s.hdr.shard-2-of-3", shard_store);
    snprintf(cmd, sizeof cmd, "cp %s %s && printf 'garbage garbage garbage' | dd of=%s conv=notrunc 2>/dev/null", s[2],
             bad, bad);
    CHECK(t_run(cmd, NULL) == 0);
    snprintf(list, sizeof list, "%s %s %s", s[0], s[1], bad);
    merge_refused("corrupt header", list, bad);
    snprintf(bad, sizeof bad, "%s.cut.shard-2-of-3", shard_store);
    snprintf(cmd, sizeof cmd, "head -c 8192 %s > %s", s[2], bad);
    CHECK(t_run(cmd, NULL) == 0);
    snprintf(list, sizeof list, "%s %s %s", s[0], s[1], bad);
    merge_refused("truncated shard", list, bad);
    /* not a shard at all: the single-process store */
    snprintf(list, sizeof list, "%s %s %s", s[0], s[1], ref_store);
    merge_refused("not a shard", list, "not a shard store");
    /* bad invocations: exit 2 */
    char *txt = NULL;
    snprintf(cmd, sizeof cmd, "%s merge --store /tmp/x.sqlite", DDPS_BIN);
    CHECK(t_run(cmd, &txt) == 2 && strstr(txt, "no shard"));
    free(txt);
    snprintf(cmd, sizeof cmd, "%s score %s --store /tmp/x.sqlite --shard 3/3", DDPS_BIN, common);
    CHECK(t_run(cmd, &txt) == 2 && strstr(txt, "--shard 3/3"));
    free(txt);
    /* a shard store is bound to its share */
    snprintf(cmd, sizeof cmd, "%s score %s --store %s --shard 1/3 --batch-images 1", DDPS_BIN, common, shard_store);
    CHECK(t_run(cmd, &txt) == 1 && strstr(txt, "split of the work"));
    free(txt);
}

/* The split itself: every item in exactly one share, shares contiguous in
 * dataset order and made of whole groups, image counts within one group of
 * total/N, the plan hash the same for every share and changed by G or N. */
static void split(void) {
    int sizes[] = {7, 1, 12, 5, 300, 2, 9};
    int nc = (int)(sizeof sizes / sizeof *sizes), total = 0;
    for (int c = 0; c < nc; c++) total += sizes[c];
    ddps_dataset ds = {0};
    ds.n_classes = nc;
    ds.classes = calloc((size_t)nc, sizeof *ds.classes);
    ds.items = calloc((size_t)total, sizeof *ds.items);
    char (*names)[32] = malloc((size_t)total * sizeof *names);
    for (int c = 0, i = 0; c < nc; c++) {
        ds.classes[c].first = i, ds.classes[c].count = sizes[c];
        for (int k = 0; k < sizes[c]; k++, i++) {
            snprintf(names[i], sizeof names[i], "c%d/%04d.jpg", c, k);
            ds.items[i].relpath = names[i];
            ds.items[i].class_idx = c;
        }
    }
    ds.n_items = total;
    int Gs[] = {1, 2, 3, 8}, Ns[] = {1, 2, 3, 5, 16, 400};
    char *in = malloc((size_t)total);
    int *owner = malloc((size_t)total * sizeof *owner);
    for (size_t gi = 0; gi < sizeof Gs / sizeof *Gs; gi++)
        for (size_t ni = 0; ni < sizeof Ns / sizeof *Ns; ni++) {
            int G = Gs[gi], N = Ns[ni], ok = 1;
            uint64_t plan0 = 0;
            for (int i = 0; i < total; i++) owner[i] = -1;
            for (int k = 0; k < N; k++) {
                uint64_t plan;
                long n = ddps_shard_select(&ds, G, k, N, in, &plan);
                if (k == 0) plan0 = plan;
                ok &= plan == plan0;
                long cnt = 0;
                for (int i = 0; i < total; i++)
                    if (in[i]) {
                        ok &= owner[i] == -1;
                        owner[i] = k;
                        cnt++;
                    }
                ok &= cnt == n;
                /* at most one group (G images) away from an even share */
                ok &= (double)n <= (double)total / N + G && (double)n >= (double)total / N - G;
            }
            for (int i = 0; i < total; i++) ok &= owner[i] >= 0 && (i == 0 || owner[i] >= owner[i - 1]);
            /* whole groups: the members of a group share an owner */
            for (int c = 0; c < nc; c++)
                for (int k = 0; k < sizes[c]; k++)
                    ok &= owner[ds.classes[c].first + k] == owner[ds.classes[c].first + k / G * G];
            CHECKF(ok, "split G=%d N=%d", G, N);
            uint64_t other;
            ddps_shard_select(&ds, G + 1, 0, N, in, &other);
            CHECK(other != plan0);
        }
    ddps_err err;
    int k, n;
    CHECK(ddps_shard_parse("2/5", &k, &n, &err) == 0 && k == 2 && n == 5);
    CHECK(ddps_shard_parse("5/5", &k, &n, &err) != 0 && strstr(err.msg, "5/5"));
    CHECK(ddps_shard_parse("-1/5", &k, &n, &err) != 0);
    CHECK(ddps_shard_parse("1/", &k, &n, &err) != 0);
    CHECK(ddps_shard_parse("1/2x", &k, &n, &err) != 0);
    free(in);
    free(owner);
    free(names);
    free(ds.classes);
    free(ds.items);
}

/* Parts: the default one (--shard, merge) and "mpi" (MPI jobs; skipped
 * when mpirun is missing or ddps was built without MPI). */
int main(int argc, char **argv) {
    snprintf(model, sizeof model, "%s", t_shared("golden/tiny-sd"));
    if (strcmp(t_part(argc, argv), "mpi") == 0) {
        char *out = NULL;
        if (t_run("mpirun --version", &out) != 0) {
            free(out);
            t_skip("mpirun not found");
            return t_done();
        }
        free(out);
        out = NULL;
        char cmd[8192];
        snprintf(cmd, sizeof cmd, MPIRUN "-n 2 %s score --data /nonexistent --model /nonexistent --store /tmp/x.sqlite",
                 DDPS_BIN);
        t_run(cmd, &out);
        int have_mpi = !(out && strstr(out, "MPI is unavailable"));
        free(out);
        if (!have_mpi) {
            t_skip("ddps was built without MPI");
            return t_done();
        }
        make_dataset();
        TEST(reference);
        TEST(mpi_2);
        TEST(mpi_3);
        TEST(mpi_rank_killed);
    } else {
        TEST(split);
        make_dataset();
        TEST(reference);
        TEST(shards_killed_resumed);
        TEST(merge_errors);
    }
    free(ref_digest);
    free(ref_digest_totals);
    return t_done();
}
