/* ImageFolder scanning, class-name mapping files, subsets, prompt templates. */
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline/dataset.h"
#include "testlib.h"
#include "util/fs.h"

static char *join(const char *a, const char *b) { return ddps_path_join(a, b); }

static void write_str(const char *dir, const char *name, const char *text) {
    char *p = join(dir, name);
    t_write(p, text, strlen(text));
    free(p);
}

static void make_dir(const char *dir, const char *name) {
    char *p = join(dir, name);
    CHECKF(mkdir(p, 0755) == 0, "mkdir %s", p);
    free(p);
}

/* "cls/file" lines as Python lists the folder with torchvision's extension
 * rule: an oracle independent of dataset.c. */
static char *python_listing(const char *root) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import os,sys\n"
             "r=sys.argv[1]\n"
             "E=('.jpg','.jpeg','.png','.ppm','.bmp','.pgm','.tif','.tiff','.webp')\n"
             "for c in sorted(e.name for e in os.scandir(r) if e.is_dir()):\n"
             "  for f in sorted(os.listdir(os.path.join(r,c))):\n"
             "    if f.lower().endswith(E): print(c+'/'+f)\" '%s'",
             root);
    char *out = NULL;
    int rc = t_run(cmd, &out);
    CHECKF(rc == 0, "python listing failed: %s", out ? out : "");
    return out;
}

static char *our_listing(const ddps_dataset *d) {
    size_t n = 1;
    for (int i = 0; i < d->n_items; i++) n += strlen(d->items[i].relpath) + 1;
    char *s = ddps_malloc(n), *q = s;
    for (int i = 0; i < d->n_items; i++) {
        size_t k = strlen(d->items[i].relpath);
        memcpy(q, d->items[i].relpath, k);
        q[k] = '\n';
        q += k + 1;
    }
    *q = 0;
    return s;
}

/* Structural invariants every scan result must satisfy. */
static void check_invariants(const ddps_dataset *d) {
    CHECK(d->root && d->root[0] == '/');
    char *canon = realpath(d->root, NULL);
    CHECK(canon && strcmp(canon, d->root) == 0);
    free(canon);
    int expect_first = 0;
    for (int c = 0; c < d->n_classes; c++) {
        const ddps_class *k = &d->classes[c];
        if (c) CHECKF(strcmp(d->classes[c - 1].name, k->name) < 0, "classes not sorted at %d", c);
        CHECK(k->first == expect_first && k->count > 0);
        CHECK(k->prompt_name && k->prompt_name[0]);
        expect_first += k->count;
        size_t ln = strlen(k->name);
        for (int i = k->first; i < k->first + k->count; i++) {
            CHECK(d->items[i].class_idx == c);
            CHECKF(strncmp(d->items[i].relpath, k->name, ln) == 0 && d->items[i].relpath[ln] == '/', "%s",
                   d->items[i].relpath);
            if (i > k->first) CHECKF(strcmp(d->items[i - 1].relpath, d->items[i].relpath) < 0, "items not sorted");
        }
        CHECK(ddps_dataset_find_class(d, k->name) == c);
    }
    CHECK(expect_first == d->n_items);
    CHECK(ddps_dataset_find_class(d, "no such class") == -1);
}

static int one_line(const char *s) { return strchr(s, '\n') == NULL && s[0] != 0; }

static void test_imagewoof(void) {
    const char *root = t_shared("data/imagewoof-mini/train");
    ddps_dataset d;
    ddps_err err = {{0}};
    CHECKF(ddps_dataset_scan(root, NULL, &d, &err) == 0, "%s", err.msg);
    check_invariants(&d);
    CHECK(d.n_classes == 10 && d.n_items == 240 && d.n_skipped == 0);
    for (int c = 0; c < d.n_classes; c++) {
        CHECK(d.classes[c].count == 24);
        CHECK(strcmp(d.classes[c].prompt_name, d.classes[c].name) == 0); /* no mapping: folder names */
    }
    CHECK(strcmp(d.classes[0].name, "n02086240") == 0 && strcmp(d.classes[9].name, "n02115641") == 0);
    char *want = python_listing(root), *got = our_listing(&d);
    CHECKF(want && strcmp(want, got) == 0, "listing differs from Python's");
    free(want);
    free(got);
    ddps_dataset_free(&d);
    CHECK(d.n_items == 0 && d.items == NULL && d.root == NULL);
    ddps_dataset_free(&d); /* twice is harmless */
    ddps_dataset_free(NULL);
}

static void test_cifar(void) {
    static const char *names[] = {"airplane", "automobile", "bird", "cat", "deer",
                                  "dog",      "frog",       "horse", "ship", "truck"};
    const char *splits[] = {"data/cifar10-mini/train", "data/cifar10-mini/test"};
    int per[] = {40, 10};
    for (int s = 0; s < 2; s++) {
        ddps_dataset d;
        ddps_err err = {{0}};
        const char *root = t_shared(splits[s]);
        CHECKF(ddps_dataset_scan(root, NULL, &d, &err) == 0, "%s", err.msg);
        check_invariants(&d);
        CHECK(d.n_classes == 10 && d.n_items == 10 * per[s] && d.n_skipped == 0);
        for (int c = 0; c < d.n_classes && c < 10; c++) {
            CHECK(strcmp(d.classes[c].name, names[c]) == 0);
            CHECK(d.classes[c].count == per[s]);
        }
        char *want = python_listing(root), *got = our_listing(&d);
        CHECK(want && strcmp(want, got) == 0);
        free(want);
        free(got);
        ddps_dataset_free(&d);
    }
}

static const char *prompt_of(const ddps_dataset *d, const char *folder) {
    int c = ddps_dataset_find_class(d, folder);
    return c >= 0 ? d->classes[c].prompt_name : "(missing class)";
}

static void test_tsv_mapping(void) {
    char tsv[4096]; /* t_shared's buffer is reused by the next call */
    snprintf(tsv, sizeof tsv, "%s", t_shared("imagenet-classes.tsv"));
    ddps_dataset_opts o = {0};
    o.class_names_file = tsv;
    ddps_dataset d;
    ddps_err err = {{0}};
    CHECKF(ddps_dataset_scan(t_shared("data/imagewoof-mini/train"), &o, &d, &err) == 0, "%s", err.msg);
    check_invariants(&d);
    CHECK(d.n_classes == 10);
    /* The prompt_name column ("Shih Tzu"), not the WordNet synonyms column ("Shih-Tzu"). */
    CHECKF(strcmp(prompt_of(&d, "n02086240"), "Shih Tzu") == 0, "%s", prompt_of(&d, "n02086240"));
    CHECK(strcmp(prompt_of(&d, "n02087394"), "Rhodesian Ridgeback") == 0);
    CHECK(strcmp(prompt_of(&d, "n02099601"), "Golden Retriever") == 0);
    CHECK(strcmp(prompt_of(&d, "n02115641"), "dingo") == 0);
    for (int c = 0; c < d.n_classes; c++) CHECK(strcmp(d.classes[c].prompt_name, d.classes[c].name) != 0);
    ddps_dataset_free(&d);
}

static void test_loc_mapping(void) {
    const char *dir = t_tmpdir("dataset_loc");
    /* ImageNet's LOC_synset_mapping.txt format, covering 3 of the 10 folders,
     * plus a class that is not in the dataset. CRLF line ends and a BOM must
     * not matter. */
    write_str(dir, "loc.txt",
              "\xef\xbb\xbfn01440764 tench, Tinca tinca\r\n"
              "n02086240 Shih-Tzu\r\n"
              "\r\n"
              "n02088364 beagle\r\n"
              "n02115641  dingo, warrigal, warragal, Canis dingo  \r\n");
    char *path = join(dir, "loc.txt");
    ddps_dataset_opts o = {0};
    o.class_names_file = path;
    ddps_dataset d;
    ddps_err err = {{0}};
    CHECKF(ddps_dataset_scan(t_shared("data/imagewoof-mini/train"), &o, &d, &err) == 0, "%s", err.msg);
    CHECK(strcmp(prompt_of(&d, "n02086240"), "Shih-Tzu") == 0);
    CHECK(strcmp(prompt_of(&d, "n02088364"), "beagle") == 0);
    CHECKF(strcmp(prompt_of(&d, "n02115641"), "dingo") == 0, "'%s'", prompt_of(&d, "n02115641"));
    /* Not in the file: keeps the folder name (with one warning). */
    CHECK(strcmp(prompt_of(&d, "n02099601"), "n02099601") == 0);
    ddps_dataset_free(&d);
    free(path);

    /* Two-column "folder<TAB>name", no header, on cifar10 (names with spaces and UTF-8). */
    write_str(dir, "two.tsv", "airplane\tan airplane\ncat\t  chat \xc3\xa0 poils  \ntruck\tlorry\n");
    path = join(dir, "two.tsv");
    o.class_names_file = path;
    CHECKF(ddps_dataset_scan(t_shared("data/cifar10-mini/train"), &o, &d, &err) == 0, "%s", err.msg);
    CHECK(strcmp(prompt_of(&d, "airplane"), "an airplane") == 0);
    CHECK(strcmp(prompt_of(&d, "cat"), "chat \xc3\xa0 poils") == 0);
    CHECK(strcmp(prompt_of(&d, "truck"), "lorry") == 0);
    CHECK(strcmp(prompt_of(&d, "dog"), "dog") == 0);
    ddps_dataset_free(&d);
    free(path);
}

/* A mapping file that must be refused with an error naming it and, where
 * given, the line. */
static void expect_bad_mapping(const char *dir, const char *name, const void *data, size_t len, const char *want) {
    char *path = join(dir, name);
    t_write(path, data, len);
    ddps_dataset_opts o = {0};
    o.class_names_file = path;
    ddps_dataset d;
    ddps_err err = {{0}};
    int rc = ddps_dataset_scan(t_shared("data/cifar10-mini/test"), &o, &d, &err);
    CHECKF(rc == -1, "%s was accepted", name);
    CHECKF(strstr(err.msg, path) != NULL, "error does not name the file: %s", err.msg);
    CHECKF(strstr(err.msg, want) != NULL, "%s: want '%s' in: %s", name, want, err.msg);
    CHECK(one_line(err.msg));
    CHECK(d.n_classes == 0 && d.classes == NULL && d.root == NULL); /* left empty */
    ddps_dataset_free(&d);
    free(path);
}

/* For string literals: the length includes embedded NULs. */
#define BAD(name, lit, want) expect_bad_mapping(dir, name, lit, sizeof(lit) - 1, want)

static void test_hostile_mappings(void) {
    const char *dir = t_tmpdir("dataset_badmap");
    BAD("empty.txt", "", "no class names");
    BAD("blank.txt", "\n  \n\t\n", "no class names");
    BAD("nul.txt", "cat\tkitty\ndog\tpuppy\nfr\0g\tx\n", "line 3: NUL byte");
    BAD("loc_noname.txt", "n01440764 tench\nn01443537\n", "line 2: expected '<folder> <name>");
    BAD("loc_empty.txt", "n01440764 , Tinca tinca\n", "line 1: empty class name");
    BAD("two_cols.txt", "cat\tkitty\ndog\tpuppy\tyoung dog\n", "line 2: expected 'folder<TAB>name'");
    BAD("two_missing.txt", "cat\tkitty\n\ndog\n", "line 3: expected 'folder<TAB>name'");
    BAD("two_empty.txt", "cat\tkitty\ndog\t   \n", "line 2: empty class name");
    const char *tsv = "# index\twnid\tprompt_name\n0\tn01440764\ttench\n1\tn01443537\n";
    expect_bad_mapping(dir, "tsv_short.tsv", tsv, strlen(tsv), "line 3: expected at least 3");
    const char *hdr = "index\twnid\tname\n0\tn01440764\ttench\n";
    expect_bad_mapping(dir, "tsv_header.tsv", hdr, strlen(hdr), "line 1: header needs both");
    const char *dup = "cat\tkitty\ndog\tpuppy\n\ncat\tmoggy\n";
    expect_bad_mapping(dir, "dup.txt", dup, strlen(dup), "line 4: folder 'cat' is already mapped on line 1");
    BAD("ctrl.txt", "cat\tki\x1btty\n", "line 1: control character 0x1b in class name");
    BAD("utf8.txt", "cat\tkitty\ndog\tp\xffppy\n", "line 2: class name is not valid UTF-8");
    BAD("overlong.txt", "cat\t\xc0\xafx\n", "not valid UTF-8");
    BAD("surrogate.txt", "cat\t\xed\xa0\x80x\n", "not valid UTF-8");
    BAD("truncated.txt", "cat\tab\xe2\x82", "not valid UTF-8");
    char big[3000];
    memcpy(big, "cat\t", 4);
    memset(big + 4, 'a', sizeof big - 5);
    big[sizeof big - 1] = '\n';
    expect_bad_mapping(dir, "long.txt", big, sizeof big, "line 1: class name longer than");

    /* Not a file / missing file: the flag and the path are named. */
    ddps_dataset_opts o = {0};
    ddps_dataset d;
    ddps_err err = {{0}};
    o.class_names_file = dir;
    CHECK(ddps_dataset_scan(t_shared("data/cifar10-mini/test"), &o, &d, &err) == -1);
    CHECKF(strstr(err.msg, "--class-names") && strstr(err.msg, dir), "%s", err.msg);
    char *missing = join(dir, "nope.txt");
    o.class_names_file = missing;
    CHECK(ddps_dataset_scan(t_shared("data/cifar10-mini/test"), &o, &d, &err) == -1);
    CHECKF(strstr(err.msg, "--class-names") && strstr(err.msg, "nope.txt") && strstr(err.msg, "No such file"), "%s",
           err.msg);
    free(missing);
}

static int has_skip(const ddps_dataset *d, const char *prefix, const char *reason) {
    size_t n = strlen(prefix);
    for (int i = 0; i < d->n_skipped; i++)
        if (strncmp(d->skipped[i], prefix, n) == 0 && strstr(d->skipped[i] + n, reason)) return 1;
    return 0;
}

static void test_broken_dataset(void) {
    const char *tmp = t_tmpdir("dataset_broken");
    char *root = join(tmp, "root");
    CHECK(mkdir(root, 0755) == 0);
    make_dir(root, "a");
    make_dir(root, "b");
    make_dir(root, "empty");
    make_dir(root, "onlytxt");
    make_dir(root, ".git");
    make_dir(root, "space class \xc3\xa9");
    make_dir(root, "a/nested");
    write_str(root, "a/1.jpg", "not decoded at scan time");
    write_str(root, "a/2.PNG", "x");
    write_str(root, "a/notes.txt", "x");
    write_str(root, "a/.hidden.jpg", "x");
    write_str(root, "a/nested/x.jpg", "x");
    write_str(root, "a/empty.jpg", "");
    write_str(root, "a/noext", "x");
    write_str(root, "b/3.jpeg", "x");
    write_str(root, "b/odd name \xc3\xbc\x01.webp", "x");
    write_str(root, "b/bad\x02.txt", "x");
    write_str(root, "onlytxt/readme.md", "x");
    write_str(root, "readme.txt", "x");
    write_str(root, "top.jpg", "x");
    write_str(root, "space class \xc3\xa9/x.TIFF", "x");
    char *p = join(root, "a/link.jpg");
    CHECK(symlink("../b/3.jpeg", p) == 0);
    free(p);
    p = join(root, "a/broken.jpg");
    CHECK(symlink("../b/nothing.jpg", p) == 0);
    free(p);
    p = join(root, "linkclass");
    CHECK(symlink("b", p) == 0);
    free(p);
    int as_root = geteuid() == 0;
    write_str(root, "a/unreadable.jpg", "x");
    p = join(root, "a/unreadable.jpg");
    CHECK(chmod(p, 0) == 0);
    free(p);

    ddps_dataset d;
    ddps_err err = {{0}};
    /* A trailing slash and a "./" in the path: root comes back canonical. */
    char *messy = ddps_malloc(strlen(root) + 8);
    sprintf(messy, "%s/./", root);
    CHECKF(ddps_dataset_scan(messy, NULL, &d, &err) == 0, "%s", err.msg);
    free(messy);
    check_invariants(&d);
    CHECKF(d.root && strcmp(d.root, root) == 0, "root %s", d.root);
    CHECK(d.n_classes == 4);
    if (d.n_classes == 4) {
        CHECK(strcmp(d.classes[0].name, "a") == 0);
        CHECK(strcmp(d.classes[1].name, "b") == 0);
        CHECK(strcmp(d.classes[2].name, "linkclass") == 0); /* link to a folder: followed */
        CHECK(strcmp(d.classes[3].name, "space class \xc3\xa9") == 0);
        CHECK(d.classes[0].count == (as_root ? 4 : 3));
        CHECK(d.classes[1].count == 2 && d.classes[2].count == 2 && d.classes[3].count == 1);
        const ddps_item *it = d.items;
        CHECK(strcmp(it[0].relpath, "a/1.jpg") == 0);
        CHECK(strcmp(it[1].relpath, "a/2.PNG") == 0);   /* extensions are case-insensitive */
        CHECK(strcmp(it[2].relpath, "a/link.jpg") == 0); /* link to a file: followed */
        int b = d.classes[1].first;
        CHECK(strcmp(it[b].relpath, "b/3.jpeg") == 0);
        CHECK(strcmp(it[b + 1].relpath, "b/odd name \xc3\xbc\x01.webp") == 0); /* raw bytes kept */
        CHECK(strcmp(it[d.classes[3].first].relpath, "space class \xc3\xa9/x.TIFF") == 0);
    }
    CHECK(has_skip(&d, "a/notes.txt: ", "not an image"));
    CHECK(has_skip(&d, "a/noext: ", "not an image"));
    CHECK(has_skip(&d, "a/.hidden.jpg: ", "hidden"));
    CHECK(has_skip(&d, "a/nested: ", "sub-folder"));
    CHECK(has_skip(&d, "a/empty.jpg: ", "empty file"));
    CHECK(has_skip(&d, "a/broken.jpg: ", "broken link"));
    CHECK(has_skip(&d, "b/bad\\x02.txt: ", "not an image")); /* control byte escaped for display */
    CHECK(has_skip(&d, "empty/: ", "without images"));
    CHECK(has_skip(&d, "onlytxt/readme.md: ", "not an image"));
    CHECK(has_skip(&d, "onlytxt/: ", "without images"));
    CHECK(has_skip(&d, "readme.txt: ", "not a class folder"));
    CHECK(has_skip(&d, "top.jpg: ", "not a class folder"));
    CHECK(has_skip(&d, ".git: ", "hidden"));
    if (!as_root) CHECK(has_skip(&d, "a/unreadable.jpg: ", "not readable"));
    /* (as root the file is read: the part "unreadable" checks the skip as nobody) */
    CHECK(has_skip(&d, "linkclass/bad\\x02.txt: ", "not an image")); /* seen through the link too */
    CHECKF(d.n_skipped == (as_root ? 14 : 15), "%d skipped", d.n_skipped);
    for (int i = 0; i < d.n_skipped; i++) CHECKF(one_line(d.skipped[i]), "%s", d.skipped[i]);
    /* Nothing from inside the nested folder, from hidden or skipped entries. */
    for (int i = 0; i < d.n_items; i++) {
        CHECK(strstr(d.items[i].relpath, "nested") == NULL && strstr(d.items[i].relpath, ".txt") == NULL);
        CHECK(strstr(d.items[i].relpath, "hidden") == NULL && strstr(d.items[i].relpath, "empty") == NULL);
    }
    ddps_dataset_free(&d);

    /* A mapping for a folder name with a space and UTF-8. */
    write_str(tmp, "names.tsv", "space class \xc3\xa9\tcaf\xc3\xa9 scene\nb\tbee\n");
    char *map = join(tmp, "names.tsv");
    ddps_dataset_opts o = {0};
    o.class_names_file = map;
    CHECKF(ddps_dataset_scan(root, &o, &d, &err) == 0, "%s", err.msg);
    CHECK(strcmp(prompt_of(&d, "space class \xc3\xa9"), "caf\xc3\xa9 scene") == 0);
    CHECK(strcmp(prompt_of(&d, "b"), "bee") == 0 && strcmp(prompt_of(&d, "a"), "a") == 0);
    ddps_dataset_free(&d);
    free(map);
    free(root);
}

/* Byte order, as Python's sorted() on UTF-8 names: upper case before lower
 * case, '_' between them, non-ASCII last. */
static void test_byte_order(void) {
    const char *root = t_tmpdir("dataset_order");
    const char *dirs[] = {"a", "B", "_c", "\xc3\xa4"};
    for (int i = 0; i < 4; i++) {
        make_dir(root, dirs[i]);
        char *sub = join(root, dirs[i]);
        write_str(sub, "b.jpg", "x");
        write_str(sub, "A.jpg", "x");
        write_str(sub, "_x.jpg", "x");
        write_str(sub, "\xc3\xa9.jpg", "x");
        free(sub);
    }
    ddps_dataset d;
    ddps_err err = {{0}};
    CHECKF(ddps_dataset_scan(root, NULL, &d, &err) == 0, "%s", err.msg);
    check_invariants(&d);
    const char *want_c[] = {"B", "_c", "a", "\xc3\xa4"};
    const char *want_f[] = {"A.jpg", "_x.jpg", "b.jpg", "\xc3\xa9.jpg"};
    CHECK(d.n_classes == 4 && d.n_items == 16);
    for (int c = 0; c < 4 && d.n_classes == 4; c++) {
        CHECKF(strcmp(d.classes[c].name, want_c[c]) == 0, "class %d is %s", c, d.classes[c].name);
        for (int i = 0; i < 4; i++) {
            const char *rp = d.items[d.classes[c].first + i].relpath;
            const char *slash = strchr(rp, '/');
            CHECKF(slash && strcmp(slash + 1, want_f[i]) == 0, "item %d of %s is %s", i, want_c[c], rp);
        }
    }
    char *want = python_listing(root), *got = our_listing(&d);
    CHECK(want && strcmp(want, got) == 0);
    free(want);
    free(got);
    ddps_dataset_free(&d);
}

static void expect_scan_error(const char *root, const ddps_dataset_opts *o, const char *want) {
    ddps_dataset d;
    ddps_err err = {{0}};
    CHECKF(ddps_dataset_scan(root, o, &d, &err) == -1, "%s accepted", root);
    CHECKF(strstr(err.msg, want) != NULL, "want '%s' in: %s", want, err.msg);
    CHECK(one_line(err.msg));
    CHECK(d.n_classes == 0 && d.n_items == 0 && d.root == NULL && d.skipped == NULL);
    ddps_dataset_free(&d);
}

static void test_scan_errors(void) {
    const char *tmp = t_tmpdir("dataset_errors");
    char *missing = join(tmp, "nope");
    expect_scan_error(missing, NULL, "dataset folder not found");
    free(missing);
    write_str(tmp, "file", "x");
    char *file = join(tmp, "file");
    expect_scan_error(file, NULL, "not a folder");
    free(file);
    /* Only files at the root, an empty class folder, a class of text files. */
    char *root = join(tmp, "root");
    CHECK(mkdir(root, 0755) == 0);
    make_dir(root, "empty");
    make_dir(root, "txt");
    write_str(root, "txt/a.txt", "x");
    write_str(root, "img.jpg", "x");
    expect_scan_error(root, NULL, "no class folder with images");
    /* Nothing at all. */
    char *bare = join(tmp, "bare");
    CHECK(mkdir(bare, 0755) == 0);
    expect_scan_error(bare, NULL, "no class folder with images");
    free(bare);
    free(root);

    /* A class subset naming a folder that does not exist. */
    const char *only[] = {"cat", "unicorn"};
    ddps_dataset_opts o = {0};
    o.only_classes = only;
    o.n_only = 2;
    expect_scan_error(t_shared("data/cifar10-mini/test"), &o, "no class folder named 'unicorn'");
    o.n_only = -1;
    expect_scan_error(t_shared("data/cifar10-mini/test"), &o, "invalid scan options");
    o.n_only = 0;
    o.max_per_class = -3;
    expect_scan_error(t_shared("data/cifar10-mini/test"), &o, "invalid scan options");
}

static int same_items(const ddps_dataset *a, const ddps_dataset *b) {
    if (a->n_items != b->n_items) return 0;
    for (int i = 0; i < a->n_items; i++)
        if (strcmp(a->items[i].relpath, b->items[i].relpath) != 0) return 0;
    return 1;
}

/* Position of relpath among the items of class k, or -1. */
static int position_in(const ddps_dataset *d, int k, const char *relpath) {
    for (int j = 0; j < d->classes[k].count; j++)
        if (strcmp(d->items[d->classes[k].first + j].relpath, relpath) == 0) return j;
    return -1;
}

static void test_max_per_class(void) {
    const char *root = t_shared("data/imagewoof-mini/train");
    ddps_dataset full, a, b, c, one;
    ddps_err err = {{0}};
    ddps_dataset_opts o = {0};
    CHECK(ddps_dataset_scan(root, NULL, &full, &err) == 0);
    o.max_per_class = 5;
    o.seed = 1;
    CHECKF(ddps_dataset_scan(root, &o, &a, &err) == 0, "%s", err.msg);
    CHECKF(ddps_dataset_scan(root, &o, &b, &err) == 0, "%s", err.msg);
    o.seed = 2;
    CHECKF(ddps_dataset_scan(root, &o, &c, &err) == 0, "%s", err.msg);
    check_invariants(&a);
    CHECK(a.n_classes == 10 && a.n_items == 50);
    CHECK(same_items(&a, &b));  /* deterministic */
    CHECK(!same_items(&a, &c)); /* seed-dependent */
    int first_five = 0, differs_per_class = 0;
    for (int k = 0; k < a.n_classes; k++) {
        CHECK(a.classes[k].count == 5);
        /* A subset of the class's images, sorted (check_invariants), not just the first five. */
        int prefix = 1;
        for (int i = 0; i < 5; i++) {
            const char *rp = a.items[a.classes[k].first + i].relpath;
            int found = 0;
            for (int j = 0; j < full.classes[k].count; j++)
                found |= strcmp(full.items[full.classes[k].first + j].relpath, rp) == 0;
            CHECKF(found, "%s not in the class", rp);
            prefix &= strcmp(full.items[full.classes[k].first + i].relpath, rp) == 0;
        }
        first_five += prefix;
        int same = 1;
        for (int i = 0; i < 5; i++)
            same &= strcmp(a.items[a.classes[k].first + i].relpath, c.items[c.classes[k].first + i].relpath) == 0;
        differs_per_class += !same;
    }
    CHECK(first_five < 2);
    CHECK(differs_per_class >= 8);
    /* The seed is mixed with the class name: classes of equal size do not all
     * keep the same positions. */
    int same_positions = 0;
    for (int k = 1; k < a.n_classes; k++) {
        int same = 1;
        for (int i = 0; i < 5; i++)
            same &= position_in(&full, k, a.items[a.classes[k].first + i].relpath) ==
                    position_in(&full, 0, a.items[a.classes[0].first + i].relpath);
        same_positions += same;
    }
    CHECKF(same_positions < 3, "%d classes keep the positions of class 0", same_positions);
    /* The subset of one class does not depend on which other classes are scanned. */
    const char *only[] = {"n02099601"};
    o.seed = 1;
    o.only_classes = only;
    o.n_only = 1;
    CHECKF(ddps_dataset_scan(root, &o, &one, &err) == 0, "%s", err.msg);
    CHECK(one.n_classes == 1 && one.n_items == 5);
    int k = ddps_dataset_find_class(&a, "n02099601");
    for (int i = 0; i < 5 && k >= 0 && one.n_items == 5; i++)
        CHECK(strcmp(one.items[i].relpath, a.items[a.classes[k].first + i].relpath) == 0);
    ddps_dataset_free(&one);
    /* A limit at or above the class size keeps everything. */
    o.only_classes = NULL;
    o.n_only = 0;
    o.max_per_class = 24;
    CHECK(ddps_dataset_scan(root, &o, &one, &err) == 0);
    CHECK(same_items(&one, &full));
    ddps_dataset_free(&one);
    ddps_dataset_free(&full);
    ddps_dataset_free(&a);
    ddps_dataset_free(&b);
    ddps_dataset_free(&c);
}

static void test_only_classes(void) {
    const char *only[] = {"n02115641", "n02086240", "n02115641"};
    ddps_dataset_opts o = {0};
    o.only_classes = only;
    o.n_only = 3;
    ddps_dataset d;
    ddps_err err = {{0}};
    CHECKF(ddps_dataset_scan(t_shared("data/imagewoof-mini/train"), &o, &d, &err) == 0, "%s", err.msg);
    check_invariants(&d);
    CHECK(d.n_classes == 2 && d.n_items == 48 && d.n_skipped == 0);
    CHECK(d.n_classes == 2 && strcmp(d.classes[0].name, "n02086240") == 0 &&
          strcmp(d.classes[1].name, "n02115641") == 0);
    ddps_dataset_free(&d);
}

static void check_prompt(const char *tmpl, const char *name, const char *want) {
    char *s = ddps_prompt_format(tmpl, name);
    CHECKF(s && strcmp(s, want) == 0, "'%s' + '%s' -> '%s', want '%s'", tmpl, name ? name : "(null)", s, want);
    free(s);
}

static void test_prompt_format(void) {
    check_prompt("An image of {}.", "tench", "An image of tench.");
    check_prompt("An image of {name}.", "Shih Tzu", "An image of Shih Tzu.");
    check_prompt("An image.", "tench", "An image.");
    check_prompt("", "tench", "");
    check_prompt("{}", "", "");
    check_prompt("{}, {} and {}", "x", "x, x and x");
    check_prompt("{ } {nam} { {", "x", "{ } {nam} { {");
    check_prompt("{{}}", "x", "{x}");
    check_prompt("a {}", NULL, "a ");
    check_prompt("caf\xc3\xa9 {}", "\xc3\xa9t\xc3\xa9", "caf\xc3\xa9 \xc3\xa9t\xc3\xa9");
}

/* A file the user cannot read is skipped as "not readable" (the part
 * "unreadable", a CTest test of its own). Root reads every file, so as root
 * (CI runs as root) the part runs itself again as nobody (uid 65534) through
 * setpriv, or runuser; skipped only when neither is installed. */
static void unreadable_file(void) {
    char tmpl[] = "/tmp/ddps-unreadable-XXXXXX";
    char *tmp = mkdtemp(tmpl);
    CHECK(tmp != NULL);
    if (!tmp) return;
    char *root = join(tmp, "root");
    CHECK(mkdir(root, 0755) == 0);
    make_dir(root, "a");
    write_str(root, "a/1.jpg", "x");
    write_str(root, "a/unreadable.jpg", "x");
    char *p = join(root, "a/unreadable.jpg");
    CHECK(chmod(p, 0) == 0);
    CHECKF(access(p, R_OK) != 0, "uid %d can read a mode-0 file", (int)geteuid());
    ddps_dataset d;
    ddps_err err = {{0}};
    CHECKF(ddps_dataset_scan(root, NULL, &d, &err) == 0, "%s", err.msg);
    CHECK(d.n_classes == 1 && d.n_items == 1 && d.n_skipped == 1);
    CHECK(has_skip(&d, "a/unreadable.jpg: ", "not readable"));
    ddps_dataset_free(&d);
    chmod(p, 0644);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0);
    free(p);
    free(root);
}

/* The part "unreadable": unreadable_file here, or as nobody when root. */
static int unreadable_part(void) {
    if (geteuid() != 0) {
        TEST(unreadable_file);
        return t_done();
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(n > 0);
    if (n <= 0) return t_done();
    self[n] = 0;
    char cmd[PATH_MAX + 200], *out = NULL;
    if (access("/usr/bin/setpriv", X_OK) == 0)
        snprintf(cmd, sizeof cmd, "/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups '%s' unreadable", self);
    else if (access("/usr/sbin/runuser", X_OK) == 0)
        snprintf(cmd, sizeof cmd, "/usr/sbin/runuser -u nobody -- '%s' unreadable", self);
    else {
        t_skip("running as root, and neither setpriv nor runuser is installed to run as nobody");
        return t_done();
    }
    fprintf(stderr, "   as root: %s\n", cmd);
    int rc = t_run(cmd, &out);
    fprintf(stderr, "%s", out ? out : "");
    free(out);
    CHECKF(rc == 0, "as nobody: exit %d (the build tree must be readable by uid 65534)", rc);
    return t_done();
}

int main(int argc, char **argv) {
    if (strcmp(t_part(argc, argv), "unreadable") == 0) return unreadable_part();
    TEST(test_imagewoof);
    TEST(test_cifar);
    TEST(test_tsv_mapping);
    TEST(test_loc_mapping);
    TEST(test_hostile_mappings);
    TEST(test_broken_dataset);
    TEST(test_byte_order);
    TEST(test_scan_errors);
    TEST(test_max_per_class);
    TEST(test_only_classes);
    TEST(test_prompt_format);
    return t_done();
}
