/* ddps.h's tools section (bench, probe, demo) through its own functions:
 * report lines reach the host's log at DDPS_LOG_OUTPUT and are what the CLI
 * prints; usage errors have status usage and name the tool and the flag;
 * the demo's fixtures are a real ImageFolder and a model whose tokenizer
 * knows the class names. Uses the golden tiny model (fast); the full-size
 * timing benches are programs, not tests. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ddps.h"
#include "io/safetensors.h"
#include "testlib.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

/* Report lines collected from the log hook; other levels counted apart. */
typedef struct {
    char text[65536];
    int n_out, n_other;
} lines;

static void collect(void *user, int level, const char *line) {
    lines *l = user;
    if (level != DDPS_LOG_OUTPUT) {
        l->n_other++;
        return;
    }
    size_t n = strlen(l->text);
    snprintf(l->text + n, sizeof l->text - n, "%s\n", line);
    l->n_out++;
}

static ddps_hooks hooks_for(lines *l) {
    ddps_hooks h;
    ddps_hooks_init(&h);
    memset(l, 0, sizeof *l);
    h.log = collect;
    h.user = l;
    return h;
}

static char MODEL[4096];

/* tokenize: one line of 77 ids per text, exactly what `ddps probe tokenize` prints. */
static void probe_tokenize_lines(void) {
    lines l;
    ddps_hooks h = hooks_for(&l);
    ddps_probe_params p;
    ddps_probe_params_init(&p);
    const char *texts[2] = {"An image of tench.", "a dog"};
    p.what = "tokenize", p.model = MODEL, p.texts = texts, p.n_texts = 2;
    ddps_error e;
    CHECKF(ddps_probe_run(&p, &h, &e) == DDPS_OK, "%s", e.message);
    CHECK(l.n_out == 2);
    int ids[77], n = 0;
    for (char *s = l.text; n < 77 && *s && *s != '\n'; n++) ids[n] = (int)strtol(s, &s, 10);
    CHECK(n == 77 && ids[0] == 49406 && ids[76] == 49407);
    char *out = NULL;
    int rc = t_runf(&out, "%s probe tokenize --model '%s' 'An image of tench.' 'a dog' 2>/dev/null", DDPS_BIN, MODEL);
    CHECKF(rc == 0 && out && strcmp(out, l.text) == 0, "CLI: %s\nAPI: %s", out ? out : "(none)", l.text);
    free(out);
    /* no hooks: the report is dropped, the call still works */
    CHECK(ddps_probe_run(&p, NULL, &e) == DDPS_OK);
}

/* schedule: alphas_cumprod [1000], decreasing in (0, 1). */
static void probe_schedule_file(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/sched.safetensors", t_tmpdir("ddps_tools_probe"));
    ddps_probe_params p;
    ddps_probe_params_init(&p);
    p.what = "schedule", p.model = MODEL, p.out = path;
    ddps_error e;
    CHECKF(ddps_probe_run(&p, NULL, &e) == DDPS_OK && e.status == DDPS_OK && !e.message[0], "%s", e.message);
    st_file f;
    ddps_err err;
    CHECKF(ddps_st_open(&f, path, &err) == 0, "%s", err.msg);
    const st_tensor *t = ddps_st_find(&f, "alphas_cumprod");
    CHECK(t && t->ndim == 1 && t->shape[0] == 1000);
    if (t && t->numel == 1000) {
        float a[1000];
        CHECK(ddps_st_to_f32(t, a) == 0);
        int ok = a[0] < 1 && a[999] > 0;
        for (int i = 1; i < 1000; i++) ok &= a[i] < a[i - 1];
        CHECK(ok);
    }
    ddps_st_close(&f);
}

/* Usage errors: status usage, one line naming the tool and the flag; a
 * failure while running: another status, naming the probe and the file. */
static void probe_errors(void) {
    ddps_probe_params p;
    ddps_error e;
    ddps_probe_params_init(&p);
    p.what = "transmogrify", p.model = MODEL;
    CHECK(ddps_probe_run(&p, NULL, &e) == DDPS_ERR_USAGE && strstr(e.message, "probe: transmogrify: unknown probe"));
    ddps_probe_params_init(&p);
    p.what = "text";
    CHECK(ddps_probe_run(&p, NULL, &e) == DDPS_ERR_USAGE && strcmp(e.message, "probe: --model: required") == 0);
    p.model = MODEL, p.out = "x.safetensors";
    CHECK(ddps_probe_run(&p, NULL, &e) == DDPS_ERR_USAGE && strcmp(e.message, "probe: --in: required") == 0);
    p.in = "/nonexistent/in.safetensors", p.precision = "f8";
    CHECK(ddps_probe_run(&p, NULL, &e) == DDPS_ERR_USAGE && strstr(e.message, "--precision f8"));
    p.precision = "f32";
    ddps_status st = ddps_probe_run(&p, NULL, &e);
    CHECKF(st != DDPS_OK && st != DDPS_ERR_USAGE && strncmp(e.message, "probe text: ", 12) == 0 &&
               strstr(e.message, "/nonexistent/in.safetensors"),
           "%s (%s)", e.message, ddps_status_name(st));
}

/* bench: every check that comes before building a model. */
static void bench_errors(void) {
    ddps_bench_params p;
    ddps_error e;
    ddps_bench_params_init(&p);
    CHECK(p.size == 256 && p.iters == 3 && p.images == 20 && strcmp(p.device, "cpu") == 0 && !p.precision);
    p.what = "foo";
    CHECK(ddps_bench_run(&p, NULL, &e) == DDPS_ERR_USAGE && strstr(e.message, "bench: foo: unknown benchmark"));
    p.what = "text", p.shapes = "sd99";
    CHECK(ddps_bench_run(&p, NULL, &e) == DDPS_ERR_USAGE && strstr(e.message, "--shapes sd99"));
    p.shapes = "sd15", p.size = 12;
    CHECK(ddps_bench_run(&p, NULL, &e) == DDPS_ERR_USAGE && strstr(e.message, "--size 12"));
    p.size = 256, p.precision = "f8";
    CHECK(ddps_bench_run(&p, NULL, &e) == DDPS_ERR_USAGE && strstr(e.message, "--precision f8"));
    p.what = "score", p.precision = NULL, p.batches[0] = 65, p.n_batches = 1;
    CHECK(ddps_bench_run(&p, NULL, &e) == DDPS_ERR_USAGE && strstr(e.message, "--batch 65"));
    p.what = "precision", p.n_batches = 0;
    CHECK(ddps_bench_run(&p, NULL, &e) == DDPS_ERR_USAGE && strstr(e.message, "bench precision: --precision f32"));
    p.precision = "bf16";
    CHECK(ddps_bench_run(&p, NULL, &e) == DDPS_ERR_USAGE && strstr(e.message, "--data DIR"));
    CHECK(ddps_bench_run(NULL, NULL, &e) == DDPS_ERR_USAGE);
}

/* bench load on the tiny model: two report lines and the JSON line. */
static void bench_load_report(void) {
    lines l;
    ddps_hooks h = hooks_for(&l);
    ddps_bench_params p;
    ddps_bench_params_init(&p);
    p.what = "load", p.model = MODEL, p.json = 1, p.threads = 1;
    ddps_error e;
    CHECKF(ddps_bench_run(&p, &h, &e) == DDPS_OK, "%s", e.message);
    CHECKF(l.n_out == 3, "%s", l.text);
    CHECK(strncmp(l.text, "ddps bench load: ", 17) == 0 && strstr(l.text, "precision f32\n"));
    CHECK(strstr(l.text, "\n  loaded weights: ") && strstr(l.text, "\n{\"bench\":\"load\",\"seconds\":"));
}

/* Counts the regular files in dir. */
static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *de; d && (de = readdir(d));) n += de->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

/* demo fixtures: 2 classes x 3 toy-world pictures, the toy model copied,
 * whose tokenizer is CLIP's; a second call remakes the world (other counts
 * take effect) and keeps the model; bad counts are usage errors. */
static void demo_fixtures(void) {
    char dir[4096], sub[8192];
    snprintf(dir, sizeof dir, "%s", t_tmpdir("tools_demo"));
    ddps_demo_params p;
    ddps_demo_params_init(&p);
    CHECK(p.n_classes == 10 && p.per_class == 30 && p.threads == 0 && p.seed == 2026);
    p.n_classes = 2, p.per_class = 3;
    lines l;
    ddps_hooks h = hooks_for(&l);
    ddps_error e;
    CHECKF(ddps_demo_write(dir, &p, &h, &e) == DDPS_OK, "%s", e.message);
    CHECK(l.n_other == 2 && l.n_out == 0); /* "making the toy world", "copying the toy model" */
    snprintf(sub, sizeof sub, "%s/world/test/red-disc", dir);
    CHECK(count_files(sub) == 3);
    snprintf(sub, sizeof sub, "%s/world/test/blue-square", dir);
    CHECK(count_files(sub) == 3);
    snprintf(sub, sizeof sub, "%s/world/test", dir);
    CHECK(count_files(sub) == 2);
    p.n_classes = 1, p.per_class = 4;
    CHECKF(ddps_demo_write(dir, &p, &h, &e) == DDPS_OK && l.n_other == 3, "the world is remade, the model kept");
    CHECK(count_files(sub) == 1);
    snprintf(sub, sizeof sub, "%s/world/test/red-disc", dir);
    CHECK(count_files(sub) == 4);
    snprintf(sub, sizeof sub, "%s/model", dir);
    ddps_probe_params pp;
    ddps_probe_params_init(&pp);
    const char *texts[1] = {"An image of red disc."};
    pp.what = "tokenize", pp.model = sub, pp.texts = texts, pp.n_texts = 1;
    ddps_hooks h2 = hooks_for(&l);
    CHECKF(ddps_probe_run(&pp, &h2, &e) == DDPS_OK, "%s", e.message);
    int ids[77], n = 0;
    for (char *s = l.text; n < 77 && *s && *s != '\n'; n++) ids[n] = (int)strtol(s, &s, 10);
    /* CLIP's ids (transformers' CLIPTokenizer gives the same): BOS an image of red disc . EOS... */
    static const int want[8] = {49406, 550, 2867, 539, 736, 10712, 269, 49407};
    int same = n == 77 && ids[76] == 49407;
    for (int i = 0; i < 8 && same; i++) same = ids[i] == want[i];
    CHECKF(same, "%s", l.text);
    p.n_classes = 11;
    CHECK(ddps_demo_write(dir, &p, NULL, &e) == DDPS_ERR_USAGE && strstr(e.message, "demo: --classes 11"));
    p.n_classes = 2, p.per_class = 0;
    CHECK(ddps_demo_write(dir, &p, NULL, &e) == DDPS_ERR_USAGE && strstr(e.message, "--per-class 0"));
}

int main(void) {
    snprintf(MODEL, sizeof MODEL, "%s", t_shared("golden/tiny-sd"));
    struct stat st;
    if (stat(MODEL, &st) != 0) {
        t_skip("no golden model at %s", MODEL);
        return t_done();
    }
    TEST(probe_tokenize_lines);
    TEST(probe_schedule_file);
    TEST(probe_errors);
    TEST(bench_errors);
    TEST(bench_load_report);
    TEST(demo_fixtures);
    return t_done();
}
