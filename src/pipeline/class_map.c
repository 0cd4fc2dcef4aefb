#include "pipeline/class_map.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/datadir.h"
#include "util/fs.h"

int ddps_is_wnid(const char *s) {
    if (!s || s[0] != 'n') return 0;
    for (int i = 1; i <= 8; i++)
        if (!isdigit((unsigned char)s[i])) return 0;
    return s[9] == 0;
}

void ddps_imagenet_free(ddps_imagenet *t) {
    if (!t) return;
    for (int i = 0; i < DDPS_IMAGENET_CLASSES; i++) free(t->prompt_name[i]);
    free(t);
}

int ddps_imagenet_load(const char *path, ddps_imagenet **out, ddps_err *err) {
    *out = NULL;
    char *p = path ? ddps_strdup(path) : ddps_data_path("imagenet-classes.tsv", err);
    if (!p) return -1;
    char *text;
    size_t len;
    if (ddps_read_file(p, 1u << 20, &text, &len, err) != 0) {
        free(p);
        return -1;
    }
    ddps_imagenet *t = ddps_calloc(1, sizeof *t);
    int n = 0, line = 0, rc = 0;
    for (char *s = text; rc == 0 && s && *s;) {
        char *e = strchr(s, '\n');
        if (e) *e = 0;
        line++;
        size_t l = strlen(s);
        if (l && s[l - 1] == '\r') s[--l] = 0;
        if (s[0] && s[0] != '#') {
            char *f[3] = {s, NULL, NULL};
            for (int k = 1; k < 3 && f[k - 1]; k++) {
                char *tab = strchr(f[k - 1], '\t');
                if (tab) *tab = 0, f[k] = tab + 1;
            }
            char *end;
            long idx = f[0] ? strtol(f[0], &end, 10) : -1;
            if (!f[2] || *end || idx != n || n >= DDPS_IMAGENET_CLASSES || !ddps_is_wnid(f[1])) {
                rc = ddps_fail_data(err, "%s:%d: expected index %d<TAB>wnid<TAB>prompt_name", p, line, n);
                break;
            }
            char *tab = strchr(f[2], '\t');
            if (tab) *tab = 0;
            snprintf(t->wnid[n], sizeof t->wnid[n], "%s", f[1]);
            t->prompt_name[n] = ddps_strdup(f[2]);
            for (int k = 0; k < n && rc == 0; k++)
                if (strcmp(t->wnid[k], t->wnid[n]) == 0) rc = ddps_fail_data(err, "%s:%d: %s listed twice", p, line, f[1]);
            n++;
        }
        s = e ? e + 1 : NULL;
    }
    if (rc == 0 && n != DDPS_IMAGENET_CLASSES) rc = ddps_fail_data(err, "%s: %d classes, expected %d", p, n, DDPS_IMAGENET_CLASSES);
    free(text);
    free(p);
    if (rc != 0) {
        ddps_imagenet_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

int ddps_imagenet_index(const ddps_imagenet *t, const char *wnid) {
    if (!ddps_is_wnid(wnid)) return -1;
    int lo = 0, hi = DDPS_IMAGENET_CLASSES - 1; /* the standard order is sorted by wnid */
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(t->wnid[mid], wnid);
        if (c == 0) return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    for (int i = 0; i < DDPS_IMAGENET_CLASSES; i++) /* a table in another order */
        if (strcmp(t->wnid[i], wnid) == 0) return i;
    return -1;
}

int ddps_index_folder(const ddps_imagenet *t, const char *class_name, char out[16], ddps_err *err) {
    int i = ddps_imagenet_index(t, class_name);
    if (i < 0)
        return ddps_fail_usage(err, "--folder-names index: class '%.200s' is not an ImageNet-1K WordNet id", class_name);
    snprintf(out, 16, "%05d", i);
    return 0;
}

/* Byte order of folder names: ImageFolder's sorted(). */
static int cmp_str(const void *a, const void *b) {
    const char *const *x = a, *const *y = b;
    return strcmp(*x, *y);
}

/* TSV fields: tabs and newlines would break the columns. */
static void tsv_put(FILE *f, const char *s) {
    for (; *s; s++) fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, f);
}

int ddps_class_map_write(const char *dir, int n, const char *const *folders, const char *const *classes,
                         const char *const *prompt_names, const ddps_imagenet *t, ddps_err *err) {
    for (int i = 0; i < n; i++)
        if (!ddps_is_wnid(classes[i])) return 0;
    /* ImageFolder order: folder names sorted. */
    const char **sorted = ddps_malloc((size_t)(n ? n : 1) * sizeof *sorted);
    for (int i = 0; i < n; i++) sorted[i] = folders[i];
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_str);
    json_t *root = json_object(), *c2i = json_object(), *i2n = json_array(), *list = json_array();
    char *tp = ddps_path_join(dir, "classes.txt");
    FILE *f = fopen(tp, "w");
    int rc = 0;
    if (!f) rc = ddps_fail_data(err, "%s: cannot write", tp);
    if (f) fputs("imagefolder_index\tfolder\twnid\timagenet_index\tprompt_name\n", f);
    for (int k = 0; k < n && rc == 0; k++) {
        int i = 0;
        while (strcmp(folders[i], sorted[k]) != 0) i++;
        int inet = ddps_imagenet_index(t, classes[i]);
        const char *pn = prompt_names && prompt_names[i] ? prompt_names[i] : inet >= 0 ? t->prompt_name[inet] : classes[i];
        json_object_set_new(c2i, folders[i], json_integer(k));
        json_array_append_new(i2n, inet >= 0 ? json_integer(inet) : json_null());
        json_t *e = json_object();
        json_object_set_new(e, "folder", json_string(folders[i]));
        json_object_set_new(e, "class", json_string(classes[i]));
        json_object_set_new(e, "wnid", json_string(classes[i]));
        json_t *pj = json_string(pn);
        json_object_set_new(e, "prompt_name", pj ? pj : json_null());
        json_object_set_new(e, "imagefolder_index", json_integer(k));
        json_object_set_new(e, "imagenet_index", inet >= 0 ? json_integer(inet) : json_null());
        json_array_append_new(list, e);
        fprintf(f, "%d\t", k);
        tsv_put(f, folders[i]);
        fprintf(f, "\t%s\t%d\t", classes[i], inet);
        tsv_put(f, pn);
        fputc('\n', f);
    }
    if (f && fclose(f) != 0 && rc == 0) rc = ddps_fail_data(err, "%s: cannot write", tp);
    json_object_set_new(root, "class_to_idx", c2i);
    json_object_set_new(root, "idx_to_imagenet", i2n);
    json_object_set_new(root, "classes", list);
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    char *jp = ddps_path_join(dir, "class_to_idx.json");
    if (rc == 0 && text) rc = ddps_write_file_atomic(jp, text, strlen(text), err);
    free(text);
    free(jp);
    free(tp);
    json_decref(root);
    free(sorted);
    return rc;
}
