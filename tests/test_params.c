/* One check per command (issue 22): the CLI's option tables (src/cli/options.c,
 * compiled in) take every integer range from the library, and every value
 * the CLI accepts the library's check accepts, at both ends of each range;
 * one past either end the CLI refuses. Then the drivers make the same check
 * before opening anything: `ddps score --clusters 70000` (once accepted by the
 * CLI and refused only by k-means after a whole class was scored) is refused
 * at the start with exit 2 and no store; `distill` refuses a bad select
 * setting before scoring; select and distill agree on --format. Errors
 * carry their category: bad files data, bad values usage. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/options.h"
#include "testlib.h"

enum { SCORE, SELECT, REPORT };
static const char *const CMD[] = {"score", "select", "report"};

/* Values for one command's options: the tables bound to them. */
typedef struct {
    score_args sa;
    ddps_select_params sp;
    ddps_report_params rp;
    const char *store, *out;
    char help[SCORE_ARGS_MAX][192];
    cli_opt opts[SCORE_ARGS_MAX + 8];
    int n;
} cmd_vals;

static void vals_init(cmd_vals *v, int cmd) {
    memset(v, 0, sizeof *v);
    score_args_init(&v->sa);
    ddps_select_params_init(&v->sp);
    ddps_report_params_init(&v->rp);
    if (cmd == SCORE) v->n = score_args_table(&v->sa, v->opts);
    if (cmd == SELECT) v->n = select_args_table(&v->sp, v->opts, v->help);
    if (cmd == REPORT) v->n = report_args_table(&v->rp, &v->store, &v->out, v->opts, v->help);
}

/* Parses "NAME VALUE" (plus extra, NULL-terminated pairs) through cmd's
 * table, then the library's check; *parsed gets the parser's result.
 * Returns the check's status (or -1 when the parse failed). */
static int try_value(int cmd, const char *name, long value, const char *const *extra, int *parsed, ddps_error *err) {
    cmd_vals v;
    vals_init(&v, cmd);
    char num[32];
    snprintf(num, sizeof num, "%ld", value);
    char *argv[16] = {"cmd", (char *)name, num};
    int argc = 3;
    for (int i = 0; extra && extra[i]; i++) argv[argc++] = (char *)extra[i];
    argv[argc] = NULL;
    char *pos[16];
    int npos = 0;
    cli_error_clear(err);
    *parsed = cli_args_parse("usage", v.opts, v.n, argc, argv, pos, &npos, err);
    int st = -1;
    if (*parsed == 0) {
        int ipc = 1;
        if (cmd == SCORE) {
            v.sa.data_dir = "d", v.sa.model_dir = "m";
            st = score_args_finish(&v.sa, err) == 0 ? DDPS_OK : (int)err->status;
        }
        if (cmd == SELECT) st = ddps_select_params_check(&v.sp, &ipc, 1, err);
        if (cmd == REPORT) st = ddps_report_params_check(&v.rp, err);
    }
    score_args_free(&v.sa);
    return st;
}

/* Every integer option of every command: the library bounds it, the table
 * has exactly those bounds, both ends pass the library's check, one past
 * either end is refused by the parser. */
static void cli_ranges_are_library_ranges(void) {
    /* a combination (not a range) the library also checks: --patch <= --size */
    static const char *const patch_extra[] = {"--size", "4096", NULL}, *const size_extra[] = {"--patch", "8", NULL};
    int n_int = 0;
    for (int cmd = SCORE; cmd <= REPORT; cmd++) {
        cmd_vals v;
        vals_init(&v, cmd);
        for (int i = 0; i < v.n; i++) {
            const cli_opt *o = &v.opts[i];
            if (o->type != CLI_OPT_INT) continue;
            n_int++;
            long lo, hi;
            int known = ddps_param_range(CMD[cmd], o->name, &lo, &hi) == 0;
            CHECKF(known, "%s %s: an integer option the library does not bound", CMD[cmd], o->name);
            if (!known) continue;
            CHECKF(o->lo == (double)lo && o->hi == (double)hi, "%s %s: CLI %g..%g, library %ld..%ld", CMD[cmd],
                   o->name, o->lo, o->hi, lo, hi);
            const char *const *extra = strcmp(o->name, "--patch") == 0  ? patch_extra
                                       : strcmp(o->name, "--size") == 0 ? size_extra
                                                                        : NULL;
            long ends[2] = {lo, hi};
            for (int e = 0; e < 2; e++) {
                ddps_error err;
                int parsed, st = try_value(cmd, o->name, ends[e], extra, &parsed, &err);
                CHECKF(parsed == 0 && st == DDPS_OK, "%s %s %ld: parse %d, library check %d (%s)", CMD[cmd], o->name,
                       ends[e], parsed, st, err.message);
            }
            long outside[2] = {lo - 1, hi + 1};
            for (int e = 0; e < 2; e++) {
                ddps_error err;
                int parsed;
                try_value(cmd, o->name, outside[e], extra, &parsed, &err);
                CHECKF(parsed == -1 && err.status == DDPS_ERR_USAGE, "%s %s %ld: accepted by the CLI", CMD[cmd],
                       o->name, outside[e]);
            }
        }
    }
    CHECKF(n_int >= 17, "%d integer options", n_int);
    /* the defaults pass */
    ddps_score_params sp;
    ddps_score_params_init(&sp);
    ddps_select_params sel;
    ddps_select_params_init(&sel);
    ddps_report_params rp;
    ddps_report_params_init(&rp);
    int ipc = 10;
    CHECK(ddps_score_params_check(&sp, NULL) == DDPS_OK && ddps_select_params_check(&sel, &ipc, 1, NULL) == DDPS_OK &&
          ddps_report_params_check(&rp, NULL) == DDPS_OK);
}

/* The --clusters bound is k-means's, and the list options use the same ranges. */
static void clusters_and_lists(void) {
    long lo, hi;
    CHECK(ddps_param_range("score", "--clusters", &lo, &hi) == 0 && lo == 1 && hi == 65536);
    CHECK(ddps_param_range("score", "--no-such", &lo, &hi) == -1 && ddps_param_range("nope", "--ipc", NULL, NULL) == -1);
    ddps_score_params p;
    ddps_score_params_init(&p);
    p.clusters = 70000;
    ddps_error err;
    CHECK(ddps_score_params_check(&p, &err) == DDPS_ERR_USAGE && strstr(err.message, "--clusters 70000"));
    int ipcs[2];
    CHECK(ddps_param_range("select", "--ipc", &lo, &hi) == 0);
    char s[64];
    snprintf(s, sizeof s, "1,%ld", hi);
    CHECK(cli_parse_ipc_list("select", s, ipcs, 2, &err) == 2 && ipcs[1] == hi);
    snprintf(s, sizeof s, "1,%ld", hi + 1);
    CHECK(cli_parse_ipc_list("select", s, ipcs, 2, &err) == -1 && err.status == DDPS_ERR_USAGE);
    /* one format rule: png, jpg and jpeg, for select and distill alike (the same check) */
    ddps_select_params sel;
    ddps_select_params_init(&sel);
    int one = 1;
    const char *ok[] = {"png", "jpg", "jpeg"};
    for (int i = 0; i < 3; i++) {
        sel.format = ok[i];
        CHECKF(ddps_select_params_check(&sel, &one, 1, &err) == DDPS_OK, "%s", ok[i]);
    }
    sel.format = "gif";
    CHECK(ddps_select_params_check(&sel, &one, 1, &err) == DDPS_ERR_USAGE && strstr(err.message, "--format gif"));
}

/* The library drivers refuse before opening anything. */
static void drivers_check_first(void) {
    const char *dir = t_tmpdir("params");
    char store[512], out[512];
    snprintf(store, sizeof store, "%s/s.sqlite", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    ddps_score_params p;
    ddps_score_params_init(&p);
    p.clusters = 70000;
    ddps_error err;
    CHECK(ddps_run_score(&p, dir, dir, store, NULL, NULL, &err) == DDPS_ERR_USAGE && strstr(err.message, "--clusters"));
    CHECK(access(store, F_OK) != 0);
    ddps_score_params_init(&p);
    ddps_select_params s;
    ddps_select_params_init(&s);
    s.top_clusters = -1;
    int ipc = 1;
    /* distill: the select step's settings are refused before scoring (nothing created) */
    CHECK(ddps_run_distill(&p, &s, dir, dir, out, NULL, &ipc, 1, 0, NULL, NULL, &err) == DDPS_ERR_USAGE &&
          strstr(err.message, "--top-clusters -1"));
    CHECK(access(out, F_OK) != 0);
    CHECK(ddps_run_select(store, out, &ipc, 1, &s, NULL, &err) == DDPS_ERR_USAGE);
    ddps_report_params rp;
    ddps_report_params_init(&rp);
    rp.thumb = 8;
    CHECK(ddps_run_report(store, out, &rp, NULL, &err) == DDPS_ERR_USAGE && strstr(err.message, "--thumb 8"));
    CHECK(access(out, F_OK) != 0);
}

/* The command: exit 2 at the start, no store written. */
static void cli_clusters_refused(void) {
    const char *dir = t_tmpdir("params-cli");
    char *out = NULL;
    int rc = t_runf(&out, "%s score --data %s --model %s --store %s/s.sqlite --clusters 70000 2>&1", DDPS_BIN, dir, dir,
                    dir);
    CHECKF(rc == 2 && out && strstr(out, "--clusters 70000: must be between 1 and 65536"), "rc %d: %s", rc,
           out ? out : "");
    free(out);
    char path[512];
    snprintf(path, sizeof path, "%s/s.sqlite", dir);
    CHECK(access(path, F_OK) != 0);
    rc = t_runf(&out, "%s score --data %s --model %s --store %s/s.sqlite --clusters 65537 2>&1", DDPS_BIN, dir, dir, dir);
    CHECKF(rc == 2, "rc %d", rc);
    free(out);
}

/* The categories a host sees: a bad file is data, a value out of range
 * usage, a full disk or memory resource (not the catch-all failure). */
static void error_categories(void) {
    const char *dir = t_tmpdir("params-kinds");
    char junk[512], out[512];
    snprintf(junk, sizeof junk, "%s/junk.sqlite", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    static const char text[] = "this is not a database, only some text long enough to be looked at";
    t_write(junk, text, sizeof text - 1);
    ddps_error err;
    ddps_db *db = NULL;
    CHECKF(ddps_db_open(junk, &db, &err) == DDPS_ERR_DATA && !db, "status %d: %s", (int)err.status, err.message);
    ddps_select_params s;
    ddps_select_params_init(&s);
    int ipc = 1;
    CHECKF(ddps_run_select(junk, out, &ipc, 1, &s, NULL, &err) == DDPS_ERR_DATA, "status %d: %s", (int)err.status,
           err.message);
    ddps_score_params p;
    ddps_score_params_init(&p);
    char missing[600];
    snprintf(missing, sizeof missing, "%s/no-such-dataset", dir);
    CHECKF(ddps_run_score(&p, missing, dir, junk, NULL, NULL, &err) == DDPS_ERR_DATA, "status %d: %s",
           (int)err.status, err.message);
    /* a non-finite feature: k-means refuses the data */
    float x[4] = {0, 1, NAN, 2};
    int assign[2], k_used;
    float dist[2];
    CHECK(ddps_cluster_features(x, 2, 2, 1, 0, assign, dist, &k_used, &err) == DDPS_ERR_DATA);
    CHECK(ddps_cluster_features(x, 2, 2, 0, 0, assign, dist, &k_used, &err) == DDPS_ERR_USAGE);
}

int main(void) {
    TEST(cli_ranges_are_library_ranges);
    TEST(clusters_and_lists);
    TEST(drivers_check_first);
    TEST(cli_clusters_refused);
    TEST(error_categories);
    return t_done();
}
