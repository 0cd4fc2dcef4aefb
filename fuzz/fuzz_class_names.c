/* Class-name mapping files (--class-names): LOC_synset_mapping.txt, TSV with
 * wnid/prompt_name columns, folder<TAB>name; parsed by ddps_dataset_scan
 * against a fixed small dataset of four class folders. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fz_util.h"
#include "pipeline/dataset.h"

static const char *root(void) {
    static char r[512];
    if (!r[0]) {
        snprintf(r, sizeof r, "%s/data", fz_dir());
        mkdir(r, 0700);
        const char *cls[] = {"n01440764", "n01443537", "tench", "two words"};
        for (int i = 0; i < 4; i++) {
            char p[700];
            snprintf(p, sizeof p, "%s/%s", r, cls[i]);
            mkdir(p, 0700);
            snprintf(p, sizeof p, "%s/%s/a.png", r, cls[i]);
            fz_write(p, "x", 1);
        }
    }
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    fz_quiet();
    const char *dir = root();
    const char *map = fz_path(0, "mapping.txt");
    if (fz_write(map, data, len) != 0) return 0;
    ddps_dataset_opts o = {0, 1, map, NULL, 0};
    ddps_dataset ds;
    ddps_err err;
    if (ddps_dataset_scan(dir, &o, &ds, &err) == 0) {
        for (int i = 0; i < ds.n_classes; i++) {
            char *p = ddps_prompt_format("An image of {}.", ds.classes[i].prompt_name);
            free(p);
        }
    }
    ddps_dataset_free(&ds);
    return 0;
}
