#include "pipeline/dataset.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/escape.h"
#include "util/fs.h"
#include "util/utf8.h"
#include "util/rng.h"

/* A mapping file larger than this is not a class-name list. */
#define MAP_MAX_BYTES (64u << 20)
/* Longer "names" are garbage, not class names (the text encoder reads 77 tokens). */
#define NAME_MAX_BYTES 1000

/* ---------------------------------------------------------------- lists */

typedef struct {
    char **v;
    int n, cap;
} strlist;

/* Takes ownership of s. */
static void strlist_push(strlist *l, char *s) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->v = ddps_realloc(l->v, (size_t)l->cap * sizeof *l->v);
    }
    l->v[l->n++] = s;
}

static void strlist_free(strlist *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) {
    /* strcmp compares as unsigned char: byte order, which for UTF-8 is code
     * point order, i.e. what Python's sorted() gives torchvision. */
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...) {
    char small[256];
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0, small[0] = 0;
    char *s = ddps_malloc((size_t)n + 1);
    if ((size_t)n < sizeof small)
        memcpy(s, small, (size_t)n + 1);
    else
        vsnprintf(s, (size_t)n + 1, fmt, again);
    va_end(again);
    return s;
}

/* Control bytes become \xNN so that one entry stays one line on a terminal. */
char *ddps_display_name(const char *s) { return ddps_escape_bytes(s); }

/* Adds "cls/name: reason" (or "name: reason" when cls is NULL, "cls/: reason"
 * when name is NULL) to the skipped list. */
static void add_skip(strlist *sk, const char *cls, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add_skip(strlist *sk, const char *cls, const char *name, const char *fmt, ...) {
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    char *c = cls ? ddps_display_name(cls) : NULL, *f = name ? ddps_display_name(name) : NULL;
    if (c && f)
        strlist_push(sk, str_printf("%s/%s: %s", c, f, reason));
    else if (c)
        strlist_push(sk, str_printf("%s/: %s", c, reason));
    else
        strlist_push(sk, str_printf("%s: %s", f ? f : "", reason));
    free(c);
    free(f);
}

/* ------------------------------------------------------- file names */

static int has_image_ext(const char *name) {
    static const char *const exts[] = {"jpg", "jpeg", "png", "ppm", "bmp", "pgm", "tif", "tiff", "webp"};
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name) return 0;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (strcasecmp(dot + 1, exts[i]) == 0) return 1;
    return 0;
}

/* Reads the entry names of an open folder (without "." and ".."), sorted.
 * Returns 0, or an errno value. */
static int read_names(DIR *dir, strlist *out) {
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(dir);
        if (!e) return errno;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        strlist_push(out, ddps_strdup(e->d_name));
    }
}

/* ---------------------------------------------------- class-name mapping */

typedef struct {
    char *key, *name;
    int line;
} map_entry;

typedef struct {
    map_entry *e;
    int n, cap;
} mapping;

static void mapping_free(mapping *m) {
    for (int i = 0; i < m->n; i++) {
        free(m->e[i].key);
        free(m->e[i].name);
    }
    free(m->e);
    memset(m, 0, sizeof *m);
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
    return s;
}

/* A class name goes into a prompt: printable UTF-8 text of sane length. */
static int check_text(const char *path, int line, const char *what, const char *s, ddps_err *err) {
    if (!*s) return ddps_fail_data(err, "%s: line %d: empty %s", path, line, what);
    if (strlen(s) > NAME_MAX_BYTES)
        return ddps_fail_data(err, "%s: line %d: %s longer than %d bytes", path, line, what, NAME_MAX_BYTES);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p < 0x20 || *p == 0x7f)
            return ddps_fail_data(err, "%s: line %d: control character 0x%02x in %s", path, line, *p, what);
        int n = ddps_utf8_len(p);
        if (!n) return ddps_fail_data(err, "%s: line %d: %s is not valid UTF-8", path, line, what);
        p += n;
    }
    return 0;
}

static int mapping_add(mapping *m, const char *path, int line, const char *key, const char *name, ddps_err *err) {
    if (check_text(path, line, "folder name", key, err) || check_text(path, line, "class name", name, err))
        return -1;
    if (m->n == INT_MAX) return ddps_fail_data(err, "%s: line %d: too many entries", path, line);
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 64;
        m->e = ddps_realloc(m->e, (size_t)m->cap * sizeof *m->e);
    }
    m->e[m->n++] = (map_entry){ddps_strdup(key), ddps_strdup(name), line};
    return 0;
}

/* Splits a line at tabs in place; returns the number of fields (at most max). */
static int split_tabs(char *s, char **f, int max) {
    int n = 0;
    f[n++] = s;
    for (char *p = s; *p && n < max; p++) {
        if (*p == '\t') {
            *p = 0;
            f[n++] = p + 1;
        }
    }
    return n;
}

static int count_fields(const char *s) {
    int n = 1;
    for (; *s; s++) n += *s == '\t';
    return n;
}

static int cmp_entry(const void *a, const void *b) {
    const map_entry *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

enum { FMT_NONE, FMT_LOC, FMT_TSV, FMT_TWO };

/* Parses one non-empty line in the detected format. */
static int parse_line(mapping *m, const char *path, int lineno, char *s, int fmt, int kcol, int vcol, ddps_err *err) {
    if (fmt == FMT_LOC) {
        /* "n01440764 tench, Tinca tinca": key, whitespace, names separated by commas. */
        char *sp = s + strcspn(s, " \t");
        if (!*sp || sp == s)
            return ddps_fail_data(err, "%s: line %d: expected '<folder> <name>[, <other names>]'", path, lineno);
        *sp = 0;
        char *name = sp + 1;
        name[strcspn(name, ",")] = 0;
        return mapping_add(m, path, lineno, s, trim(name), err);
    }
    int nf = count_fields(s);
    if (fmt == FMT_TWO) {
        if (nf != 2)
            return ddps_fail_data(err, "%s: line %d: expected 'folder<TAB>name' (2 columns), found %d column%s", path,
                             lineno, nf, nf == 1 ? "" : "s");
        char *f[2] = {s, s};
        split_tabs(s, f, 2);
        return mapping_add(m, path, lineno, f[0], trim(f[1]), err);
    }
    int need = (kcol > vcol ? kcol : vcol) + 1;
    if (nf < need)
        return ddps_fail_data(err, "%s: line %d: expected at least %d tab-separated columns (wnid, prompt_name), found %d",
                         path, lineno, need, nf);
    char **f = ddps_malloc((size_t)nf * sizeof *f);
    split_tabs(s, f, nf);
    int rc = mapping_add(m, path, lineno, trim(f[kcol]), trim(f[vcol]), err);
    free(f);
    return rc;
}

/* Looks at the first non-empty line: a header with wnid and prompt_name
 * columns, a tab-separated pair, or an ImageNet LOC line. */
static int detect_format(const char *path, char *line, int lineno, int *kcol, int *vcol, ddps_err *err) {
    int nf = count_fields(line);
    if (nf == 1) return FMT_LOC;
    char *copy = ddps_strdup(line);
    char **f = ddps_malloc((size_t)nf * sizeof *f);
    split_tabs(copy, f, nf);
    *kcol = *vcol = -1;
    for (int i = 0; i < nf; i++) {
        char *name = f[i];
        if (i == 0 && name[0] == '#') name++; /* "# index" in imagenet-classes.tsv */
        name = trim(name);
        if (strcmp(name, "wnid") == 0 && *kcol < 0) *kcol = i;
        if (strcmp(name, "prompt_name") == 0 && *vcol < 0) *vcol = i;
    }
    free(f);
    free(copy);
    if (*kcol >= 0 && *vcol >= 0) return FMT_TSV;
    if (*kcol >= 0 || *vcol >= 0) {
        ddps_fail_data(err, "%s: line %d: header needs both a 'wnid' and a 'prompt_name' column", path, lineno);
        return FMT_NONE;
    }
    return FMT_TWO;
}

static int mapping_load(const char *path, mapping *m, ddps_err *err) {
    char *buf;
    size_t len;
    if (ddps_read_file(path, MAP_MAX_BYTES, &buf, &len, err)) return ddps_fail_prefix(err, "--class-names");
    const char *nul = memchr(buf, 0, len);
    if (nul) {
        int line = 1;
        for (const char *p = buf; p < nul; p++) line += *p == '\n';
        free(buf);
        return ddps_fail_data(err, "%s: line %d: NUL byte (not a text file)", path, line);
    }
    char *s = buf;
    if (len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) s += 3; /* UTF-8 byte-order mark */
    int fmt = FMT_NONE, kcol = 0, vcol = 0, lineno = 0, rc = 0;
    while (*s && rc == 0) {
        char *nl = strchr(s, '\n'), *line = s;
        if (nl) *nl = 0;
        s = nl ? nl + 1 : s + strlen(s);
        lineno++;
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r') line[--n] = 0; /* CRLF files */
        if (line[strspn(line, " \t")] == 0) continue; /* blank line */
        if (fmt == FMT_NONE) {
            fmt = detect_format(path, line, lineno, &kcol, &vcol, err);
            if (fmt == FMT_NONE) {
                rc = -1;
                break;
            }
            if (fmt == FMT_TSV) continue; /* the header is not an entry */
        }
        rc = parse_line(m, path, lineno, line, fmt, kcol, vcol, err);
    }
    free(buf);
    if (rc) return -1;
    if (m->n == 0) return ddps_fail_data(err, "%s: no class names in the file", path);
    if (m->n > 1) qsort(m->e, (size_t)m->n, sizeof *m->e, cmp_entry);
    for (int i = 1; i < m->n; i++) {
        if (strcmp(m->e[i].key, m->e[i - 1].key) == 0)
            return ddps_fail_data(err, "%s: line %d: folder '%s' is already mapped on line %d", path, m->e[i].line,
                             m->e[i].key, m->e[i - 1].line);
    }
    return 0;
}

static int cmp_entry_key(const void *key, const void *e) {
    return strcmp(key, ((const map_entry *)e)->key);
}

static const char *mapping_find(const mapping *m, const char *key) {
    const map_entry *e = m->n ? bsearch(key, m->e, (size_t)m->n, sizeof *m->e, cmp_entry_key) : NULL;
    return e ? e->name : NULL;
}

/* Sets every class's prompt_name from the mapping (or its folder name). */
static void apply_mapping(ddps_dataset *d, const mapping *m, const char *path) {
    int missing = 0, example = -1;
    for (int c = 0; c < d->n_classes; c++) {
        const char *name = m ? mapping_find(m, d->classes[c].name) : NULL;
        if (m && !name) {
            missing++;
            if (example < 0) example = c;
        }
        d->classes[c].prompt_name = ddps_strdup(name ? name : d->classes[c].name);
    }
    if (missing) {
        char *ex = ddps_display_name(d->classes[example].name);
        ddps_warn("%s: %d of %d class folders are not in the mapping and keep their folder name (first: '%s')",
                  path, missing, d->n_classes, ex);
        free(ex);
    }
}

/* ------------------------------------------------------------- scanning */

/* Keeps a random subset of m of the n sorted names, still sorted; frees the rest. */
static void keep_subset(strlist *files, int m, uint64_t seed, const char *cls) {
    int n = files->n;
    int *perm = ddps_malloc((size_t)n * sizeof *perm);
    for (int i = 0; i < n; i++) perm[i] = i;
    ddps_rng rng;
    ddps_rng_seed(&rng, ddps_seed_mix(seed, ddps_fnv1a(DDPS_FNV_INIT, cls, strlen(cls))));
    /* Partial Fisher-Yates: perm[0..m) is a uniform random m-subset. */
    for (int i = 0; i < m; i++) {
        int j = i + (int)ddps_rng_below(&rng, (uint64_t)(n - i));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    char *keep = ddps_calloc((size_t)n, 1);
    for (int i = 0; i < m; i++) keep[perm[i]] = 1;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (keep[i]) files->v[k++] = files->v[i];
        else free(files->v[i]);
    }
    files->n = k;
    free(keep);
    free(perm);
}

/* Lists the usable images of one class folder into files (sorted); problems
 * go to sk. */
static void scan_class(int rootfd, const char *cls, strlist *files, strlist *sk) {
    int fd = openat(rootfd, cls, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dir) {
        add_skip(sk, cls, NULL, "cannot open class folder: %s", strerror(errno));
        if (fd >= 0) close(fd);
        return;
    }
    strlist names = {0};
    int e = read_names(dir, &names);
    if (e) add_skip(sk, cls, NULL, "error while listing the folder (some files may be missing): %s", strerror(e));
    if (names.n > 1) qsort(names.v, (size_t)names.n, sizeof *names.v, cmp_str);
    int dfd = dirfd(dir);
    for (int i = 0; i < names.n; i++) {
        const char *nm = names.v[i];
        struct stat st;
        if (nm[0] == '.') {
            add_skip(sk, cls, nm, "hidden entry");
        } else if (fstatat(dfd, nm, &st, 0) != 0) {
            int why = errno;
            struct stat lst;
            if (fstatat(dfd, nm, &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode))
                add_skip(sk, cls, nm, "broken link: %s", strerror(why));
            else
                add_skip(sk, cls, nm, "cannot stat: %s", strerror(why));
        } else if (S_ISDIR(st.st_mode)) {
            add_skip(sk, cls, nm, "sub-folder inside a class folder (not scanned: images belong in ROOT/<class>/)");
        } else if (!S_ISREG(st.st_mode)) {
            add_skip(sk, cls, nm, "not a regular file");
        } else if (!has_image_ext(nm)) {
            add_skip(sk, cls, nm, "not an image file extension");
        } else if (faccessat(dfd, nm, R_OK, 0) != 0) {
            add_skip(sk, cls, nm, "not readable: %s", strerror(errno));
        } else if (st.st_size == 0) {
            add_skip(sk, cls, nm, "empty file (0 bytes)");
        } else {
            strlist_push(files, names.v[i]);
            names.v[i] = NULL; /* moved */
        }
    }
    strlist_free(&names);
    closedir(dir);
}

static int wanted(const ddps_dataset_opts *o, const char *cls) {
    if (!o || o->n_only <= 0) return 1;
    for (int i = 0; i < o->n_only; i++)
        if (o->only_classes[i] && strcmp(o->only_classes[i], cls) == 0) return 1;
    return 0;
}

/* Lists the class folders under the open root (sorted, only_classes applied);
 * files at the root go to sk. */
static int scan_root(DIR *dir, const char *root, const ddps_dataset_opts *o, strlist *classes, strlist *sk,
                     ddps_err *err) {
    strlist names = {0};
    int e = read_names(dir, &names);
    if (e) {
        strlist_free(&names);
        return ddps_fail_resource(err, "%s: cannot list the folder: %s", root, strerror(e));
    }
    if (names.n > 1) qsort(names.v, (size_t)names.n, sizeof *names.v, cmp_str);
    int dfd = dirfd(dir);
    for (int i = 0; i < names.n; i++) {
        const char *nm = names.v[i];
        struct stat st;
        if (nm[0] == '.') {
            add_skip(sk, NULL, nm, "hidden entry at the dataset root");
        } else if (fstatat(dfd, nm, &st, 0) != 0) {
            add_skip(sk, NULL, nm, "cannot stat: %s", strerror(errno));
        } else if (!S_ISDIR(st.st_mode)) {
            add_skip(sk, NULL, nm, "not a class folder (files directly under the root are ignored)");
        } else if (wanted(o, nm)) {
            strlist_push(classes, names.v[i]);
            names.v[i] = NULL;
        }
    }
    strlist_free(&names);
    for (int i = 0; o && i < o->n_only; i++) {
        const char *want = o->only_classes[i];
        if (!want) return ddps_fail_usage(err, "%s: class subset has a NULL name", root);
        if (classes->n == 0 || !bsearch(&want, classes->v, (size_t)classes->n, sizeof *classes->v, cmp_str)) {
            char *w = ddps_display_name(want);
            ddps_fail_usage(err, "--classes: %s: no class folder named '%s'", root, w);
            free(w);
            return -1;
        }
    }
    return 0;
}

/* Appends one class and its files (ownership moves) to d. */
static int add_class(ddps_dataset *d, size_t *cap_c, size_t *cap_i, char *cls, strlist *files, ddps_err *err) {
    if (files->n > INT_MAX - d->n_items) return ddps_fail_data(err, "%s: more than %d images", d->root, INT_MAX);
    if ((size_t)d->n_classes == *cap_c) {
        *cap_c = *cap_c ? 2 * *cap_c : 16;
        d->classes = ddps_realloc(d->classes, *cap_c * sizeof *d->classes);
    }
    size_t need = (size_t)d->n_items + (size_t)files->n;
    if (need > *cap_i) {
        *cap_i = need > 2 * *cap_i ? need : 2 * *cap_i;
        d->items = ddps_realloc(d->items, *cap_i * sizeof *d->items);
    }
    int c = d->n_classes++;
    d->classes[c] = (ddps_class){cls, NULL, d->n_items, files->n};
    for (int i = 0; i < files->n; i++) {
        d->items[d->n_items++] = (ddps_item){str_printf("%s/%s", cls, files->v[i]), c};
        free(files->v[i]);
    }
    files->n = 0;
    return 0;
}

int ddps_dataset_scan(const char *root, const ddps_dataset_opts *opt, ddps_dataset *out, ddps_err *err) {
    memset(out, 0, sizeof *out);
    if (opt && (opt->max_per_class < 0 || opt->n_only < 0 || (opt->n_only > 0 && !opt->only_classes)))
        return ddps_fail_usage(err, "%s: invalid scan options (max_per_class %d, %d class names)", root,
                         opt->max_per_class, opt->n_only);
    mapping map = {0};
    const char *map_path = opt ? opt->class_names_file : NULL;
    /* The mapping first: a bad file should fail before a long scan. */
    if (map_path && mapping_load(map_path, &map, err)) {
        mapping_free(&map);
        return -1;
    }
    ddps_dataset d = {0};
    strlist classes = {0}, sk = {0}, files = {0};
    DIR *dir = NULL;
    int rc = -1;
    d.root = realpath(root, NULL);
    if (!d.root) {
        ddps_fail_data(err, "%s: dataset folder not found: %s", root, strerror(errno));
        goto done;
    }
    if (!ddps_is_dir(d.root)) {
        ddps_fail_data(err, "%s: not a folder (expected an ImageFolder root: ROOT/<class>/<image>)", root);
        goto done;
    }
    dir = opendir(d.root);
    if (!dir) {
        ddps_fail_data(err, "%s: cannot open: %s", root, strerror(errno));
        goto done;
    }
    if (scan_root(dir, root, opt, &classes, &sk, err)) goto done;
    size_t cap_c = 0, cap_i = 0;
    for (int c = 0; c < classes.n; c++) {
        scan_class(dirfd(dir), classes.v[c], &files, &sk);
        if (files.n == 0) {
            add_skip(&sk, classes.v[c], NULL, "class folder without images: class left out");
            continue;
        }
        if (opt && opt->max_per_class > 0 && files.n > opt->max_per_class)
            keep_subset(&files, opt->max_per_class, opt->seed, classes.v[c]);
        if (add_class(&d, &cap_c, &cap_i, classes.v[c], &files, err)) goto done;
        classes.v[c] = NULL; /* owned by d now */
    }
    if (d.n_classes == 0) {
        char *first = sk.n ? sk.v[0] : NULL;
        ddps_fail_data(err, "%s: no class folder with images (expected ROOT/<class>/<image>; %d entr%s skipped%s%s)", root,
                  sk.n, sk.n == 1 ? "y" : "ies", first ? ", first: " : "", first ? first : "");
        goto done;
    }
    apply_mapping(&d, map_path ? &map : NULL, map_path);
    d.n_skipped = sk.n;
    d.skipped = sk.v;
    sk = (strlist){0};
    *out = d;
    d = (ddps_dataset){0};
    rc = 0;
done:
    if (dir) closedir(dir);
    strlist_free(&classes);
    strlist_free(&files);
    strlist_free(&sk);
    mapping_free(&map);
    ddps_dataset_free(&d);
    return rc;
}

void ddps_dataset_free(ddps_dataset *d) {
    if (!d) return;
    for (int c = 0; c < d->n_classes; c++) {
        free(d->classes[c].name);
        free(d->classes[c].prompt_name);
    }
    for (int i = 0; i < d->n_items; i++) free(d->items[i].relpath);
    for (int i = 0; i < d->n_skipped; i++) free(d->skipped[i]);
    free(d->classes);
    free(d->items);
    free(d->skipped);
    free(d->root);
    memset(d, 0, sizeof *d);
}

static int cmp_class_key(const void *key, const void *c) {
    return strcmp(key, ((const ddps_class *)c)->name);
}

int ddps_dataset_find_class(const ddps_dataset *d, const char *name) {
    const ddps_class *c =
        d->n_classes ? bsearch(name, d->classes, (size_t)d->n_classes, sizeof *d->classes, cmp_class_key) : NULL;
    return c ? (int)(c - d->classes) : -1;
}

/* Length of the placeholder starting at p, or 0. */
static size_t placeholder(const char *p) {
    if (strncmp(p, "{}", 2) == 0) return 2;
    if (strncmp(p, "{name}", 6) == 0) return 6;
    return 0;
}

char *ddps_prompt_format(const char *tmpl, const char *name) {
    if (!name) name = "";
    size_t ln = strlen(name), n = 0, k;
    for (const char *p = tmpl; *p; p += k ? k : 1) {
        k = placeholder(p);
        n += k ? ln : 1;
    }
    char *out = ddps_malloc(n + 1), *q = out;
    for (const char *p = tmpl; *p; p += k ? k : 1) {
        k = placeholder(p);
        if (k) {
            memcpy(q, name, ln);
            q += ln;
        } else {
            *q++ = *p;
        }
    }
    *q = 0;
    return out;
}
