/* The dataset fixture shared by the public-library tests (test_api.c,
 * test_api_consumer.c): a small ImageFolder of links to real imagewoof
 * images. Header-only (static functions) because every tests/test_*.c is
 * its own program. The outside program (api_consumer/consumer.c) does not
 * include it: it sees only the installed ddps.h. */
#ifndef DDPS_TESTS_API_FIXTURE_H
#define DDPS_TESTS_API_FIXTURE_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"

/* The two imagewoof classes the fixture uses, in folder order. */
static const char *const API_FIXTURE_CLASSES[2] = {"n02086240", "n02087394"};

/* data_dir/<class>/<file>: symlinks to the first `per` images (by name) of
 * each of the two classes under woof (an imagewoof train folder). Checks
 * every link and that each class got `per` images. */
static __attribute__((unused)) void api_fixture_data(const char *data_dir, const char *woof, int per) {
    for (int c = 0; c < 2; c++) {
        char dir[8192], src[8192];
        snprintf(dir, sizeof dir, "%s/%s", data_dir, API_FIXTURE_CLASSES[c]);
        mkdir(dir, 0755);
        snprintf(src, sizeof src, "%s/%s", woof, API_FIXTURE_CLASSES[c]);
        struct dirent **names;
        int n = scandir(src, &names, NULL, alphasort), k = 0;
        for (int i = 0; i < n; i++) {
            if (names[i]->d_name[0] != '.' && k < per) {
                char from[16384], to[16384];
                snprintf(from, sizeof from, "%s/%s", src, names[i]->d_name);
                snprintf(to, sizeof to, "%s/%s", dir, names[i]->d_name);
                CHECK(symlink(from, to) == 0);
                k++;
            }
            free(names[i]);
        }
        if (n >= 0) free(names);
        CHECKF(k == per, "%s: %d of %d images", src, k, per);
    }
}

#endif
