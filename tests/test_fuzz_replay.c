/* Replays the committed fuzz inputs (fuzz/regress/HARNESS/FILE: every crash,
 * leak or stall a fuzzer found, plus hand-made hostile inputs) through the
 * same harness code, compiled here with the product's compiler and flags.
 * In the sanitizer build a regression is an ASan/UBSan/LSan report; in both
 * builds a stall trips the CTest timeout. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "testlib.h"
#include "util/fs.h"

#define LLVMFuzzerTestOneInput fz_run_safetensors
#include "../fuzz/fuzz_safetensors.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_run_config
#include "../fuzz/fuzz_config.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_run_tokenizer
#include "../fuzz/fuzz_tokenizer.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_run_image
#include "../fuzz/fuzz_image.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_run_jpeg
#include "../fuzz/fuzz_jpeg.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_run_png
#include "../fuzz/fuzz_png.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_run_bmp_pnm
#include "../fuzz/fuzz_bmp_pnm.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_run_class_names
#include "../fuzz/fuzz_class_names.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_run_store
#include "../fuzz/fuzz_store.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fz_run_options
#include "../fuzz/fuzz_options.c"
#undef LLVMFuzzerTestOneInput
#include "../fuzz/fz_util.c"
/* the option parser lives with the ddps executable, not in ddps_core */
#include "../src/cli/args.c"
#include "../src/cli/options.c"

typedef struct {
    const char *name;
    int (*run)(const uint8_t *, size_t);
} harness;

static const harness H[] = {
    {"fuzz_safetensors", fz_run_safetensors}, {"fuzz_config", fz_run_config},   {"fuzz_tokenizer", fz_run_tokenizer},
    {"fuzz_image", fz_run_image},             {"fuzz_jpeg", fz_run_jpeg},       {"fuzz_png", fz_run_png},
    {"fuzz_bmp_pnm", fz_run_bmp_pnm},         {"fuzz_class_names", fz_run_class_names},
    {"fuzz_store", fz_run_store},             {"fuzz_options", fz_run_options},
};

static char g_fuzz_dir[4096];

static int replay_dir(const harness *h, const char *sub) {
    char dir[4600];
    snprintf(dir, sizeof dir, "%s/%s/%s", g_fuzz_dir, sub, h->name);
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[5000];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *buf = NULL;
        size_t len = 0;
        ddps_err err;
        CHECKF(ddps_read_file(path, 1 << 24, &buf, &len, &err) == 0, "%s", err.msg);
        fprintf(stderr, "   %s < %s/%s\n", h->name, sub, e->d_name);
        h->run((const uint8_t *)buf, len);
        free(buf);
        n++;
    }
    closedir(d);
    return n;
}

static void replay_all(void) {
    int total = 0;
    for (size_t i = 0; i < sizeof H / sizeof H[0]; i++) total += replay_dir(&H[i], "regress");
    CHECK(total >= 1);
    fprintf(stderr, "   %d committed inputs replayed\n", total);
}

/* Findings whose regression is not a sanitizer report: the input must be refused early. */
static void refused_early(void) {
    char path[4600];
    snprintf(path, sizeof path, "%s/regress/fuzz_png/bomb-1x167772161-valid-crc.png", g_fuzz_dir);
    char *buf = NULL;
    size_t len = 0;
    ddps_err err;
    CHECKF(ddps_read_file(path, 1 << 20, &buf, &len, &err) == 0, "%s", err.msg);
    ddps_image img;
    /* 68 valid bytes (CRCs right) claiming 1 x 167772161 pixels: refused before the 500 MB image and 1.3 GB row table */
    CHECK(buf && ddps_image_decode(buf, len, "bomb.png", &img, &err) == -1 && strstr(err.msg, "cannot fit"));
    free(buf);
}

int main(void) {
    snprintf(g_fuzz_dir, sizeof g_fuzz_dir, "%s", __FILE__);
    char *slash = strrchr(g_fuzz_dir, '/');
    if (!slash) {
        fprintf(stderr, "skipped: cannot locate the source tree from %s\n", __FILE__);
        return 77;
    }
    snprintf(slash, sizeof g_fuzz_dir - (size_t)(slash - g_fuzz_dir), "/../fuzz");
    TEST(replay_all);
    TEST(refused_early);
    return t_done();
}
