/* Unit tests of small pure functions: candidate window picking, the
 * timestep list, the UTF-8 decoder, the clocks, the RNG's known answers (checked against an independent
 * Python restatement, tests/rng_ref.py) and README's table of defaults
 * against the library's _init functions.
 *
 * Parts: "" everything that needs nothing but the library; "python" the
 * check that tests/rng_ref.py prints exactly the RNG literals used here. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ddps.h"
#include "pipeline/params.h"
#include "pipeline/score.h"
#include "testlib.h"
#include "util/clock.h"
#include "util/rng.h"
#include "util/utf8.h"

/* ---------- ddps_pick_windows ----------
 * The rule (score.h): windows are taken best score first; ties go in raster
 * order (smaller i, then smaller j); a window whose IoU with an already
 * chosen one is > 0.5 is skipped (exactly 0.5 is kept) while non-overlapping
 * ones remain; then the count is filled from the skipped ones, again best
 * first. The result is in the order the windows were chosen, and has
 * min(k, ph*pw) entries, all distinct. */

/* Calls ddps_pick_windows and checks it returned want_n pairs equal to want. */
static void check_pick(const float *s, int ph, int pw, int patch, int stride, int k, const int *want, int want_n,
                       int line) {
    int ij[2 * 64];
    for (int i = 0; i < 2 * 64; i++) ij[i] = -7;
    int n = ddps_pick_windows(s, ph, pw, patch, stride, k, ij);
    CHECKF(n == want_n, "line %d: %d windows, expected %d", line, n, want_n);
    for (int a = 0; a < n && a < want_n; a++)
        CHECKF(ij[2 * a] == want[2 * a] && ij[2 * a + 1] == want[2 * a + 1],
               "line %d: window %d is (%d,%d), expected (%d,%d)", line, a, ij[2 * a], ij[2 * a + 1], want[2 * a],
               want[2 * a + 1]);
    CHECKF(ij[2 * want_n] == -7, "line %d: wrote past the %d windows", line, want_n);
}

/* k = 1: the best window wins wherever it is, including the last one. */
static void test_pick_best(void) {
    float s[12] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.0f, 2.5f, -1.0f, 0.9f};
    check_pick(s, 3, 4, 192, 16, 1, (const int[]){2, 1}, 1, __LINE__);
    float e[12] = {0};
    e[11] = 1;
    check_pick(e, 3, 4, 192, 16, 1, (const int[]){2, 3}, 1, __LINE__); /* bottom-right corner */
    e[11] = 0;
    e[0] = 1;
    check_pick(e, 3, 4, 192, 16, 1, (const int[]){0, 0}, 1, __LINE__); /* top-left corner */
    float neg[4] = {-3, -2, -5, -4};
    check_pick(neg, 2, 2, 192, 16, 1, (const int[]){0, 1}, 1, __LINE__); /* all negative */
}

/* Equal scores: raster order, first (0, 0). */
static void test_pick_ties(void) {
    float s[6] = {1, 1, 1, 1, 1, 1};
    /* patch 4, stride 4: no window overlaps another, so k = 3 is the raster order. */
    check_pick(s, 2, 3, 4, 4, 3, (const int[]){0, 0, 0, 1, 0, 2}, 3, __LINE__);
    /* patch 4, stride 1 in one row: neighbours overlap by IoU 0.6, windows two
     * apart by 1/3, so ties give every other window. */
    check_pick(s, 1, 6, 4, 1, 3, (const int[]){0, 0, 0, 2, 0, 4}, 3, __LINE__);
    float t[3] = {2, 5, 5};
    check_pick(t, 1, 3, 4, 4, 2, (const int[]){0, 1, 0, 2}, 2, __LINE__);
}

/* k > 1 with overlap suppression, then filling from the suppressed ones. */
static void test_pick_overlap(void) {
    /* One row, patch 4, stride 1: IoU of windows d apart is (4-d)/(4+d):
     * d = 1: 0.6 (suppressed), d = 2: 1/3, d = 3: 1/7, d >= 4: 0. */
    float s[6] = {1, 5, 4, 3, 2, 0};
    check_pick(s, 1, 6, 4, 1, 1, (const int[]){0, 1}, 1, __LINE__);
    /* 1 first; 2 overlaps 1; 3 is taken; 4 overlaps 3; 0 overlaps 1; 5 is taken. */
    check_pick(s, 1, 6, 4, 1, 3, (const int[]){0, 1, 0, 3, 0, 5}, 3, __LINE__);
    /* A fourth comes from the suppressed ones, best first: 2, then 4, then 0. */
    check_pick(s, 1, 6, 4, 1, 4, (const int[]){0, 1, 0, 3, 0, 5, 0, 2}, 4, __LINE__);
    check_pick(s, 1, 6, 4, 1, 6, (const int[]){0, 1, 0, 3, 0, 5, 0, 2, 0, 4, 0, 0}, 6, __LINE__);
    /* 2-D, patch 4, stride 1: a vertical neighbour overlaps by 0.6, a
     * diagonal one by 9/23 (kept). */
    float g[9] = {7, 8, 0, 0, 9, 0, 0, 0, 0};
    check_pick(g, 3, 3, 4, 1, 2, (const int[]){1, 1, 0, 0}, 2, __LINE__);
    /* Exactly IoU 0.5 (patch 3, stride 1, neighbours) is not "> 0.5": kept. */
    float h[3] = {3, 2, 1};
    check_pick(h, 1, 3, 3, 1, 2, (const int[]){0, 0, 0, 1}, 2, __LINE__);
}

/* The stride sets the overlap: the same scores pick neighbours once windows
 * are far enough apart. */
static void test_pick_stride(void) {
    float s[6] = {1, 5, 4, 3, 2, 0};
    /* stride 2, patch 4: neighbours overlap by 1/3 only. */
    check_pick(s, 1, 6, 4, 2, 3, (const int[]){0, 1, 0, 2, 0, 3}, 3, __LINE__);
    /* The defaults (192, 16): windows 4 strides apart are the nearest kept
     * ((192-64)/(192+64) = 0.5). */
    float r[8] = {9, 8, 7, 6, 5, 4, 3, 2};
    check_pick(r, 1, 8, 192, 16, 2, (const int[]){0, 0, 0, 4}, 2, __LINE__);
    check_pick(r, 1, 8, 192, 16, 3, (const int[]){0, 0, 0, 4, 0, 1}, 3, __LINE__);
}

/* k larger than the grid: every window once; k <= 0: none. */
static void test_pick_k_large(void) {
    float s[4] = {0.5f, 0.25f, 1.0f, 0.75f};
    check_pick(s, 2, 2, 192, 16, 10, (const int[]){1, 0, 1, 1, 0, 0, 0, 1}, 4, __LINE__);
    check_pick(s, 1, 1, 192, 16, 5, (const int[]){0, 0}, 1, __LINE__);
    check_pick(s, 2, 2, 192, 16, 0, NULL, 0, __LINE__);
}

/* ---------- ddps_score_timesteps ---------- */

/* Default: METHOD.md's K = 5 evenly spaced integers in [0.1 T, 0.7 T], for
 * T = 1000 {100, 250, 400, 550, 700}. */
static void test_timesteps_default(void) {
    ddps_score_opts o;
    ddps_score_defaults(&o);
    ddps_err err = {{0}};
    int ts[DDPS_MAX_TIMESTEPS];
    int want[5] = {100, 250, 400, 550, 700};
    int n = ddps_score_timesteps(&o.p, 1000, ts, &err);
    CHECKF(n == 5, "%d timesteps: %s", n, err.msg);
    for (int i = 0; i < 5 && n == 5; i++) CHECKF(ts[i] == want[i], "ts[%d] = %d, expected %d", i, ts[i], want[i]);
    /* K = 1: the middle of the range. K = 4 over [0, 1]: rounded, and
     * t_hi * T = T is clamped to T - 1. */
    o.p.n_timesteps = 1;
    n = ddps_score_timesteps(&o.p, 1000, ts, &err);
    CHECK(n == 1 && ts[0] == 400);
    o.p.n_timesteps = 4;
    o.p.t_lo = 0;
    o.p.t_hi = 1;
    n = ddps_score_timesteps(&o.p, 1000, ts, &err);
    CHECK(n == 4 && ts[0] == 0 && ts[1] == 333 && ts[2] == 667 && ts[3] == 999);
    /* Another T: 5 steps in [0.1, 0.7] of 20. */
    ddps_score_defaults(&o);
    n = ddps_score_timesteps(&o.p, 20, ts, &err);
    CHECK(n == 5 && ts[0] == 2 && ts[1] == 5 && ts[2] == 8 && ts[3] == 11 && ts[4] == 14);
}

/* An explicit list is used as given (order kept); 0 and T-1 are in range. */
static void test_timesteps_explicit(void) {
    ddps_score_opts o;
    ddps_score_defaults(&o);
    ddps_err err = {{0}};
    int ts[DDPS_MAX_TIMESTEPS];
    int list[4] = {700, 0, 999, 400};
    memcpy(o.p.timesteps, list, sizeof list);
    o.p.n_explicit = 4;
    int n = ddps_score_timesteps(&o.p, 1000, ts, &err);
    CHECKF(n == 4, "%d: %s", n, err.msg);
    for (int i = 0; i < 4 && n == 4; i++) CHECK(ts[i] == list[i]);
}

/* Runs ddps_score_timesteps on o and checks it fails with a usage-kind
 * error whose message contains needle. */
static void check_timesteps_usage(const ddps_score_opts *o, int T, const char *needle, int line) {
    ddps_err err = {{0}};
    int ts[DDPS_MAX_TIMESTEPS];
    int n = ddps_score_timesteps(&o->p, T, ts, &err);
    CHECKF(n == -1, "line %d: returned %d", line, n);
    CHECKF(err.kind == DDPS_KIND_USAGE, "line %d: kind %d (%s)", line, err.kind, err.msg);
    CHECKF(strstr(err.msg, needle) != NULL, "line %d: message \"%s\" lacks \"%s\"", line, err.msg, needle);
}

/* Out of range: T itself, negatives, a bad count, a bad or reversed range. */
static void test_timesteps_rejected(void) {
    ddps_score_opts o;
    ddps_score_defaults(&o);
    o.p.timesteps[0] = 100;
    o.p.timesteps[1] = 1000;
    o.p.n_explicit = 2;
    check_timesteps_usage(&o, 1000, "1000 is outside 0..999", __LINE__);
    o.p.timesteps[1] = -1;
    check_timesteps_usage(&o, 1000, "-1 is outside", __LINE__);
    ddps_score_defaults(&o);
    o.p.n_timesteps = 0;
    check_timesteps_usage(&o, 1000, "--timesteps 0", __LINE__);
    o.p.n_timesteps = DDPS_MAX_TIMESTEPS + 1;
    check_timesteps_usage(&o, 1000, "--timesteps 65", __LINE__);
    ddps_score_defaults(&o);
    o.p.t_lo = 0.8;
    check_timesteps_usage(&o, 1000, "--t-range 0.8,0.7", __LINE__);
    o.p.t_lo = -0.1;
    check_timesteps_usage(&o, 1000, "--t-range", __LINE__);
    o.p.t_lo = 0.1;
    o.p.t_hi = 1.5;
    check_timesteps_usage(&o, 1000, "--t-range", __LINE__);
}

/* ---------- UTF-8 (util/utf8.h) ---------- */

/* Checks ddps_utf8_next on the bytes of s (len bytes) returns want with code
 * point want_cp, and ddps_utf8_len on them (NUL-terminated) the valid length or 0. */
static void check_utf8(const char *s, size_t len, int want, uint32_t want_cp, int line) {
    uint32_t cp = 0;
    int n = ddps_utf8_next((const unsigned char *)s, len, &cp);
    CHECKF(n == want && cp == want_cp, "line %d: %d U+%04X, expected %d U+%04X", line, n, (unsigned)cp, want,
           (unsigned)want_cp);
    int l = ddps_utf8_len((const unsigned char *)s);
    CHECKF(l == (want > 0 ? want : 0), "line %d: ddps_utf8_len %d", line, l);
}

/* Valid forms at every length and boundary; each kind of ill-formed input
 * with its maximal subpart length (what one U+FFFD replaces). */
static void test_utf8_sequences(void) {
    check_utf8("A", 1, 1, 'A', __LINE__);
    check_utf8("\x7f", 1, 1, 0x7f, __LINE__);
    check_utf8("\xc2\x80", 2, 2, 0x80, __LINE__);
    check_utf8("\xdf\xbf", 2, 2, 0x7ff, __LINE__);
    check_utf8("\xe0\xa0\x80", 3, 3, 0x800, __LINE__);
    check_utf8("\xed\x9f\xbf", 3, 3, 0xd7ff, __LINE__);
    check_utf8("\xef\xbf\xbd", 3, 3, 0xfffd, __LINE__);
    check_utf8("\xf0\x90\x80\x80", 4, 4, 0x10000, __LINE__);
    check_utf8("\xf4\x8f\xbf\xbf", 4, 4, 0x10ffff, __LINE__);
    check_utf8("\x80", 1, -1, 0xfffd, __LINE__);             /* stray continuation */
    check_utf8("\xc0\xaf", 2, -1, 0xfffd, __LINE__);         /* overlong lead */
    check_utf8("\xc1\xbf", 2, -1, 0xfffd, __LINE__);
    check_utf8("\xe0\x9f\xbf", 3, -1, 0xfffd, __LINE__);     /* overlong 3-byte */
    check_utf8("\xed\xa0\x80", 3, -1, 0xfffd, __LINE__);     /* surrogate U+D800 */
    check_utf8("\xf0\x8f\xbf\xbf", 4, -1, 0xfffd, __LINE__); /* overlong 4-byte */
    check_utf8("\xf4\x90\x80\x80", 4, -1, 0xfffd, __LINE__); /* above U+10FFFF */
    check_utf8("\xf5\x80\x80\x80", 4, -1, 0xfffd, __LINE__);
    check_utf8("\xff", 1, -1, 0xfffd, __LINE__);
    check_utf8("\xe2\x82", 2, -2, 0xfffd, __LINE__);          /* cut short by the end */
    check_utf8("\xe2\x82X", 3, -2, 0xfffd, __LINE__);         /* cut short by ASCII */
    check_utf8("\xf0\x9f\x98", 3, -3, 0xfffd, __LINE__);
    check_utf8("\xf0\x9f\x98\xc3", 4, -3, 0xfffd, __LINE__);
    /* len limits the look-ahead even when more bytes follow. */
    uint32_t cp;
    CHECK(ddps_utf8_next((const unsigned char *)"\xc3\xa9", 1, &cp) == -1 && cp == 0xfffd);
}

/* Every scalar value round-trips through ddps_utf8_put and ddps_utf8_next. */
static void test_utf8_roundtrip(void) {
    long bad = 0;
    for (uint32_t c = 1; c <= 0x10ffff; c++) {
        if (c >= 0xd800 && c <= 0xdfff) continue;
        char b[5] = {0};
        size_t n = ddps_utf8_put(c, b);
        uint32_t back = 0;
        int m = ddps_utf8_next((const unsigned char *)b, n, &back);
        size_t want = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
        if (n != want || m != (int)n || back != c || ddps_utf8_len((const unsigned char *)b) != (int)n) bad++;
    }
    CHECKF(bad == 0, "%ld code points do not round-trip", bad);
}

/* ---------- clocks (util/clock.h) ---------- */

/* Wall time advances across a sleep while CPU time hardly does; CPU time
 * advances while the process computes. */
static void test_clocks(void) {
    double w0 = ddps_seconds(), c0 = ddps_cpu_seconds();
    struct timespec nap = {0, 50 * 1000000L};
    nanosleep(&nap, NULL);
    double w1 = ddps_seconds(), c1 = ddps_cpu_seconds();
    CHECKF(w1 - w0 >= 0.045 && w1 - w0 < 30, "wall %.4f s across a 50 ms sleep", w1 - w0);
    CHECKF(c1 >= c0 && c1 - c0 < 0.04, "cpu %.4f s across a 50 ms sleep", c1 - c0);
    volatile double x = 0;
    double c2 = c1, w2 = w1;
    while (c2 - c1 < 0.02 && w2 - w1 < 20) {
        for (int i = 0; i < 100000; i++) x += 1e-9 * i;
        c2 = ddps_cpu_seconds();
        w2 = ddps_seconds();
    }
    CHECKF(c2 - c1 >= 0.02, "cpu time did not advance: %.4f s in %.1f s of work", c2 - c1, w2 - w1);
    double prev = ddps_seconds();
    int back = 0;
    for (int i = 0; i < 10000; i++) {
        double t = ddps_seconds();
        back += t < prev;
        prev = t;
    }
    CHECK(back == 0);
}

/* ---------- README's table of defaults ----------
 * README.md's "main options" table must state exactly what
 * ddps_score_params_init and ddps_select_params_init set. Every row must name
 * options this test knows, and every option it knows must have a row. */

/* The README text of option opt's default as the _init functions set it, or
 * NULL for an option this test does not know. buf: room for the text. */
static const char *default_text(const char *opt, const ddps_score_params *p, const ddps_select_params *s, char *buf,
                                size_t n) {
    if (!strcmp(opt, "--prompt")) return p->prompt;
    if (!strcmp(opt, "--null-prompt")) return p->null_prompt && !*p->null_prompt ? "\"\"" : p->null_prompt;
    if (!strcmp(opt, "--timesteps")) snprintf(buf, n, "%d", p->n_explicit ? -1 : p->n_timesteps);
    else if (!strcmp(opt, "--t-range")) snprintf(buf, n, "%g,%g", p->t_lo, p->t_hi);
    else if (!strcmp(opt, "--size")) snprintf(buf, n, "%d", p->size);
    else if (!strcmp(opt, "--patch")) snprintf(buf, n, "%d", p->patch);
    else if (!strcmp(opt, "--stride")) snprintf(buf, n, "%d", p->stride);
    else if (!strcmp(opt, "--patches-per-image")) snprintf(buf, n, "%d", p->patches_per_image);
    else if (!strcmp(opt, "--dift-t")) snprintf(buf, n, "%d", p->dift_t);
    else if (!strcmp(opt, "--dift-ensemble")) snprintf(buf, n, "%d", p->dift_ensemble);
    else if (!strcmp(opt, "--clusters")) snprintf(buf, n, "%d", p->clusters);
    else if (!strcmp(opt, "--top-clusters")) snprintf(buf, n, "%d", s->top_clusters);
    else if (!strcmp(opt, "--mosaic-max-ipc")) snprintf(buf, n, "%d", s->mosaic_max_ipc);
    else if (!strcmp(opt, "--output-size")) snprintf(buf, n, "%d", s->output_size);
    else if (!strcmp(opt, "--format")) return s->format;
    else if (!strcmp(opt, "--low-res")) return p->low_res ? "on" : "off";
    else if (!strcmp(opt, "--class-names")) return p->class_names ? p->class_names : "folder names";
    else if (!strcmp(opt, "--max-per-class")) p->max_per_class ? snprintf(buf, n, "%d", p->max_per_class)
                                                                : snprintf(buf, n, "all");
    else if (!strcmp(opt, "--seed")) snprintf(buf, n, "%" PRIu64, p->seed);
    else if (!strcmp(opt, "--threads")) {
        if (p->threads != s->threads) return "(score and select differ)";
        p->threads ? snprintf(buf, n, "%d", p->threads) : snprintf(buf, n, "all cores");
    } else if (!strcmp(opt, "--batch-images")) /* 0 = auto: cpu 1, cuda 8 (score.h) */
        p->batch_images ? snprintf(buf, n, "%d", p->batch_images) : snprintf(buf, n, "cpu 1, cuda 8");
    else if (!strcmp(opt, "--device")) return p->device;
    else if (!strcmp(opt, "--precision")) return p->precision;
    else return NULL;
    return buf;
}

static const char *const KNOWN_OPTIONS[] = {
    "--prompt", "--null-prompt", "--timesteps", "--t-range", "--size", "--patch", "--stride",
    "--patches-per-image", "--dift-t", "--dift-ensemble", "--clusters", "--top-clusters", "--mosaic-max-ipc",
    "--output-size", "--format", "--low-res", "--class-names", "--max-per-class", "--seed", "--threads",
    "--batch-images", "--device", "--precision"};
#define N_KNOWN_OPTIONS (int)(sizeof KNOWN_OPTIONS / sizeof KNOWN_OPTIONS[0])

/* Copies s[0..n) into out (size cap) without backticks and outer blanks. */
static void cell_text(const char *s, size_t n, char *out, size_t cap) {
    while (n && *s == ' ') s++, n--;
    while (n && s[n - 1] == ' ') n--;
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++)
        if (s[i] != '`') out[o++] = s[i];
    out[o] = 0;
}

/* Splits cell at ", " into up to max parts (each cap bytes); returns the count. */
static int split_cell(const char *cell, char parts[][128], int max) {
    int k = 0;
    const char *p = cell;
    while (k < max) {
        const char *c = strstr(p, ", ");
        size_t n = c ? (size_t)(c - p) : strlen(p);
        cell_text(p, n, parts[k++], 128);
        if (!c) break;
        p = c + 2;
    }
    return k;
}

/* One table row "| options | defaults | meaning |": checks each option's
 * default; marks the options seen. Returns the number of options on the row. */
static int check_readme_row(const char *row, int lineno, const ddps_score_params *p, const ddps_select_params *s,
                            int *seen) {
    const char *c1 = strchr(row + 1, '|'), *c2 = c1 ? strchr(c1 + 1, '|') : NULL;
    if (!c1 || !c2) {
        CHECKF(0, "README.md:%d: not a three-column row", lineno);
        return 0;
    }
    char opts[256], defs[256], names[8][128], vals[8][128];
    cell_text(row + 1, (size_t)(c1 - row - 1), opts, sizeof opts);
    cell_text(c1 + 1, (size_t)(c2 - c1 - 1), defs, sizeof defs);
    int no = split_cell(opts, names, 8);
    /* One option: the whole cell is its default ("0.1,0.7", "cpu 1, cuda 8"). */
    int nd = no == 1 ? (snprintf(vals[0], sizeof vals[0], "%s", defs), 1) : split_cell(defs, vals, 8);
    CHECKF(nd == no, "README.md:%d: %d options, %d defaults", lineno, no, nd);
    for (int i = 0; i < no && i < nd; i++) {
        char *sp = strchr(names[i], ' '); /* "--class-names FILE" */
        if (sp) *sp = 0;
        char buf[128];
        const char *want = default_text(names[i], p, s, buf, sizeof buf);
        CHECKF(want != NULL, "README.md:%d: option %s is not known to test_units", lineno, names[i]);
        if (!want) continue;
        CHECKF(strcmp(vals[i], want) == 0, "README.md:%d: %s default \"%s\", the library's is \"%s\"", lineno,
               names[i], vals[i], want);
        for (int k = 0; k < N_KNOWN_OPTIONS; k++)
            if (!strcmp(KNOWN_OPTIONS[k], names[i])) seen[k]++;
    }
    return no;
}

/* README.md's table against the _init functions, both ways. */
static void test_readme_defaults(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/README.md", DDPS_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    CHECKF(f != NULL, "%s: cannot open", path);
    if (!f) return;
    ddps_score_params p;
    ddps_select_params s;
    ddps_score_params_init(&p);
    ddps_select_params_init(&s);
    int seen[N_KNOWN_OPTIONS] = {0}, in_table = 0, rows = 0, lineno = 0;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\n")] = 0;
        if (!in_table) {
            in_table = strncmp(line, "| option | default |", 20) == 0;
            continue;
        }
        if (line[0] != '|') break;
        if (strncmp(line, "| ---", 5) == 0) continue;
        rows += check_readme_row(line, lineno, &p, &s, seen) > 0;
    }
    fclose(f);
    CHECKF(in_table && rows >= 10, "README.md: options table not found (%d rows)", rows);
    for (int k = 0; k < N_KNOWN_OPTIONS; k++)
        CHECKF(seen[k] == 1, "README.md: option %s appears %d times in the table, expected once", KNOWN_OPTIONS[k],
               seen[k]);
}

/* ---------- RNG known answers ----------
 * Every literal below is what tests/rng_ref.py (an independent Python
 * restatement of rng.h's algorithm) prints; the "python" part checks that it
 * still does. Normals compare exactly too: they go through libm's log, sqrt,
 * sin and cos, and rng.h promises the same draws on every machine. */

typedef struct {
    const char *what; /* "u64", "uniform", "normal", "below", "seed_mix" */
    uint64_t seed, i; /* seed and draw index; for seed_mix the two inputs */
    uint64_t u;       /* u64, below, seed_mix */
    double d;         /* uniform, normal */
} rng_answer;

static const rng_answer RNG_ANSWERS[] = {
    {"u64", 0, 0, 0x99ec5f36cb75f2b4ULL, 0},
    {"u64", 0, 1, 0xbf6e1f784956452aULL, 0},
    {"u64", 0, 2, 0x1a5f849d4933e6e0ULL, 0},
    {"u64", 0, 3, 0x6aa594f1262d2d2cULL, 0},
    {"uniform", 0, 0, 0, 0.6012629994179048},
    {"uniform", 0, 1, 0, 0.7477740925472398},
    {"uniform", 0, 2, 0, 0.10301998939503632},
    {"normal", 0, 0, 0, -0.01410679738124918},
    {"normal", 0, 1, 0, -1.0085864725210538},
    {"normal", 0, 2, 0, -1.8458950876958273},
    {"normal", 0, 3, 0, 1.0669282078900475},
    {"below", 0, 0, 420, 0},
    {"below", 0, 1, 82, 0},
    {"below", 0, 2, 768, 0},
    {"u64", 20240601, 0, 0x59761096949c683dULL, 0},
    {"u64", 20240601, 1, 0x7e436068556fab29ULL, 0},
    {"u64", 20240601, 2, 0xe6a51fbfd60edd06ULL, 0},
    {"u64", 20240601, 3, 0x938809d8706c1c30ULL, 0},
    {"uniform", 20240601, 0, 0, 0.34945777584344884},
    {"uniform", 20240601, 1, 0, 0.4932155852051766},
    {"uniform", 20240601, 2, 0, 0.9009570926046381},
    {"normal", 20240601, 0, 0, -1.4487672141993837},
    {"normal", 20240601, 1, 0, 0.06179509971795119},
    {"normal", 20240601, 2, 0, -0.4052426144003876},
    {"normal", 20240601, 3, 0, -0.21065068817910623},
    {"below", 20240601, 0, 797, 0},
    {"below", 20240601, 1, 841, 0},
    {"below", 20240601, 2, 422, 0},
    {"seed_mix", 0, 0, 0x6e789e6aa1b965f4ULL, 0},
    {"seed_mix", 7, 12345, 0x8e9f30c831c6e1a6ULL, 0},
};
#define N_RNG_ANSWERS (int)(sizeof RNG_ANSWERS / sizeof RNG_ANSWERS[0])

/* The C draw the answer a names (from a freshly seeded generator); integer
 * results in *u, real ones in *d. */
static void rng_draw(const rng_answer *a, uint64_t *u, double *d) {
    ddps_rng r;
    *u = 0;
    *d = 0;
    if (strcmp(a->what, "seed_mix") == 0) {
        *u = ddps_seed_mix(a->seed, a->i);
        return;
    }
    ddps_rng_seed(&r, a->seed);
    for (uint64_t k = 0; k <= a->i; k++) {
        if (strcmp(a->what, "u64") == 0) *u = ddps_rng_u64(&r);
        else if (strcmp(a->what, "uniform") == 0) *d = ddps_rng_uniform(&r);
        else if (strcmp(a->what, "normal") == 0) *d = ddps_rng_normal(&r);
        else *u = ddps_rng_below(&r, 1000);
    }
}

/* The C generator reproduces every literal bit for bit. */
static void test_rng_known_answers(void) {
    for (int k = 0; k < N_RNG_ANSWERS; k++) {
        const rng_answer *a = &RNG_ANSWERS[k];
        uint64_t u;
        double d;
        rng_draw(a, &u, &d);
        CHECKF(u == a->u && d == a->d, "%s seed %" PRIu64 " #%" PRIu64 ": 0x%016" PRIx64 " %.17g, expected 0x%016" PRIx64
               " %.17g", a->what, a->seed, a->i, u, d, a->u, a->d);
    }
    /* fill_normal is the normals rounded to float, in order. */
    ddps_rng r;
    float x[4];
    ddps_rng_seed(&r, 0);
    ddps_rng_fill_normal(&r, x, 4);
    CHECK(x[0] == (float)-0.01410679738124918 && x[3] == (float)1.0669282078900475);
}

/* tests/rng_ref.py prints exactly the literals above, one per line. */
static void test_rng_python(void) {
    char *out = NULL;
    if (t_run("/usr/bin/python3 -c 'import math'", &out) != 0) {
        free(out);
        t_skip("/usr/bin/python3 is not available");
        return;
    }
    free(out);
    out = NULL;
    int rc = t_runf(&out, "/usr/bin/python3 '%s/tests/rng_ref.py'", DDPS_SOURCE_DIR);
    CHECKF(rc == 0, "rng_ref.py exited %d: %s", rc, out ? out : "");
    int lines = 0;
    for (char *line = out ? strtok(out, "\n") : NULL; line; line = strtok(NULL, "\n"), lines++) {
        char what[16], val[64];
        uint64_t seed, i;
        if (sscanf(line, "%15s %" SCNu64 " %" SCNu64 " %63s", what, &seed, &i, val) != 4) {
            CHECKF(0, "unreadable line \"%s\"", line);
            continue;
        }
        const rng_answer *a = NULL;
        for (int k = 0; k < N_RNG_ANSWERS && !a; k++)
            if (strcmp(RNG_ANSWERS[k].what, what) == 0 && RNG_ANSWERS[k].seed == seed && RNG_ANSWERS[k].i == i)
                a = &RNG_ANSWERS[k];
        CHECKF(a != NULL, "no literal for \"%s\"", line);
        if (!a) continue;
        int real = strcmp(what, "uniform") == 0 || strcmp(what, "normal") == 0;
        if (real) CHECKF(strtod(val, NULL) == a->d, "python: %s, literal %.17g", line, a->d);
        else CHECKF(strtoull(val, NULL, 0) == a->u, "python: %s, literal 0x%016" PRIx64, line, a->u);
    }
    CHECKF(lines == N_RNG_ANSWERS, "python printed %d lines, %d literals", lines, N_RNG_ANSWERS);
    free(out);
}

/* Parts: "" the unit tests; "python" the RNG literals against rng_ref.py. */
int main(int argc, char **argv) {
    if (strcmp(t_part(argc, argv), "python") == 0) {
        TEST(test_rng_python);
        return t_done();
    }
    TEST(test_pick_best);
    TEST(test_pick_ties);
    TEST(test_pick_overlap);
    TEST(test_pick_stride);
    TEST(test_pick_k_large);
    TEST(test_timesteps_default);
    TEST(test_timesteps_explicit);
    TEST(test_timesteps_rejected);
    TEST(test_rng_known_answers);
    TEST(test_utf8_sequences);
    TEST(test_utf8_roundtrip);
    TEST(test_clocks);
    TEST(test_readme_defaults);
    return t_done();
}
