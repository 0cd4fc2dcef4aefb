/* The public drivers beyond score and select (include/ddps.h): distill,
 * merge, report, and the checks the CLI makes before a run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api_internal.h"
#include "pipeline/params.h"
#include "pipeline/report.h"
#include "pipeline/scale_mpi.h"
#include "pipeline/shard.h"
#include "pipeline/store.h"
#include "util/fs.h"

DDPS_API ddps_status ddps_check_store_name(const char *path, ddps_error *err) {
    ddps_err e = {{0}};
    if (ddps_store_name_check(path, &e) != 0) {
        e.kind = DDPS_KIND_USAGE; /* a name the store cannot have: a bad invocation */
        return ddps_api_fail(err, &e);
    }
    return ddps_api_ok(err);
}

DDPS_API ddps_status ddps_parse_shard(const char *text, int *k, int *n, ddps_error *err) {
    ddps_err e = {{0}};
    *k = *n = 0;
    if (!text || ddps_shard_parse(text, k, n, &e) != 0) {
        if (!text) ddps_fail(&e, "--shard: no value");
        e.kind = DDPS_KIND_USAGE;
        *k = *n = 0;
        return ddps_api_fail(err, &e);
    }
    return ddps_api_ok(err);
}

DDPS_API char *ddps_shard_store_path(const char *store, int k, int n) {
    return store ? ddps_shard_path(store, k, n) : NULL;
}

DDPS_API int ddps_have_mpi(void) { return ddps_mpi_available(); }

DDPS_API ddps_status ddps_run_merge(const char *out, const char *const *shards, int n, const ddps_hooks *hooks,
                                    ddps_error *err) {
    return ddps_run_merge_flags(out, shards, n, 0, hooks, err);
}

DDPS_API ddps_status ddps_run_merge_flags(const char *out, const char *const *shards, int n, int flags,
                                          const ddps_hooks *hooks, ddps_error *err) {
    if (!out || !shards || n < 1)
        return ddps_api_failf(err, DDPS_ERR_USAGE, "ddps_run_merge: out and at least one shard store are required");
    if (flags & ~DDPS_MERGE_FORCE) return ddps_api_failf(err, DDPS_ERR_USAGE, "ddps_run_merge: unknown flags %#x", flags);
    ddps_err e = {{0}};
    ddps_api_enter(hooks);
    int rc = ddps_merge_run(out, (char *const *)shards, n, flags & DDPS_MERGE_FORCE, &e);
    ddps_api_leave();
    return rc != 0 ? ddps_api_fail(err, &e) : ddps_api_ok(err);
}

DDPS_API ddps_status ddps_run_report(const char *store_path, const char *out_dir, const ddps_report_params *p,
                                     const ddps_hooks *hooks, ddps_error *err) {
    if (!store_path || !out_dir)
        return ddps_api_failf(err, DDPS_ERR_USAGE, "ddps_run_report: store_path and out_dir are required");
    ddps_err e = {{0}};
    if (ddps_report_check(p, &e) != 0) return ddps_api_fail(err, &e);
    ddps_report_opts o;
    ddps_report_defaults(&o);
    o.p = *p;
    o.store_path = store_path;
    o.out_dir = out_dir;
    ddps_api_enter(hooks);
    int rc = ddps_report_run(&o, &e);
    ddps_api_leave();
    return rc != 0 ? ddps_api_fail(err, &e) : ddps_api_ok(err);
}

/* The select step's settings in distill: s with p's classes and threads. */
static void distill_select_params(const ddps_score_params *p, const ddps_select_params *s, ddps_select_params *sp) {
    *sp = *s;
    sp->classes = p->classes;
    sp->n_classes = p->n_classes;
    sp->threads = p->threads;
    sp->command = "distill";
}

/* The select and report steps of distill on the scored store. */
static ddps_status distill_outputs(const ddps_score_params *p, const ddps_select_params *s, const char *store,
                                   const char *out_dir, const int *ipc, int n_ipc, int report,
                                   const ddps_hooks *hooks, ddps_error *err) {
    ddps_select_params sp;
    distill_select_params(p, s, &sp);
    ddps_status st = ddps_run_select(store, out_dir, ipc, n_ipc, &sp, hooks, err);
    if (st != DDPS_OK || !report) return st;
    ddps_report_params rp;
    ddps_report_params_init(&rp);
    rp.ipc = ipc[0];
    rp.threads = p->threads;
    char *rdir = ddps_path_join(out_dir, "report");
    st = ddps_run_report(store, rdir, &rp, hooks, err);
    free(rdir);
    return st;
}

DDPS_API ddps_status ddps_run_distill(const ddps_score_params *p, const ddps_select_params *s, const char *data_dir,
                                      const char *model_dir, const char *out_dir, const char *store_path,
                                      const int *ipc, int n_ipc, int report, const ddps_hooks *hooks,
                                      ddps_run_totals *totals, ddps_error *err) {
    if (totals) memset(totals, 0, sizeof *totals);
    if (!p || !s || !data_dir || !model_dir || !out_dir || !ipc || n_ipc < 1)
        return ddps_api_failf(err, DDPS_ERR_USAGE,
                              "ddps_run_distill: params, data_dir, model_dir, out_dir and at least one ipc "
                              "are required");
    if (p->mpi || p->shard_n)
        return ddps_api_failf(err, DDPS_ERR_USAGE, "distill runs in one process: no mpi, no shards (use ddps_run_score)");
    /* Every setting checked before anything is scored: the select step's too. */
    ddps_select_params sel;
    distill_select_params(p, s, &sel);
    if (ddps_score_params_check(p, err) != DDPS_OK || ddps_select_params_check(&sel, ipc, n_ipc, err) != DDPS_OK)
        return DDPS_ERR_USAGE;
    if (store_path && ddps_check_store_name(store_path, err) != DDPS_OK) return DDPS_ERR_USAGE;
    int made_out = !ddps_is_dir(out_dir); /* removed again if the run fails and leaves it empty */
    ddps_err e = {{0}};
    if (ddps_mkdirs(out_dir, &e) != 0) return ddps_api_fail(err, &e);
    char *store_buf = store_path ? NULL : ddps_path_join(out_dir, "ddps.sqlite");
    const char *store = store_path ? store_path : store_buf;
    ddps_score_params sp = *p;
    sp.command = "distill";
    ddps_status st = ddps_run_score(&sp, data_dir, model_dir, store, hooks, totals, err);
    if (st == DDPS_OK) st = distill_outputs(p, s, store, out_dir, ipc, n_ipc, report, hooks, err);
    if (st != DDPS_OK && made_out) rmdir(out_dir); /* only succeeds when empty: nothing computed is lost */
    free(store_buf);
    return st;
}
