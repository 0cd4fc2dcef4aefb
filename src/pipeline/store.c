#include "pipeline/store.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/fs.h"

#define APP_ID 0x44445053 /* "DDPS" */
#define MAX_DIM 65536
#define MAX_SIDE 1000000
#define MAX_K DDPS_MAX_CLUSTERS
#define KMEANS_ITERS 300
#define BOX_SLACK 0.5 /* pixels of rounding allowed outside the image */
#define MAX_MAP_SIDE 4096

/* Stage-I maps (see store.h): added within schema 1, created on every writable open. */
static const char *MAPS_SQL = "CREATE TABLE IF NOT EXISTS maps(image_id INTEGER PRIMARY KEY REFERENCES images(id),"
                              " h INTEGER NOT NULL, w INTEGER NOT NULL, data BLOB NOT NULL)";

struct ddps_store {
    sqlite3 *db;
    char *path;
    int readonly;
};

const char *ddps_store_path(const ddps_store *s) { return s->path; }

/* ---- SQLite helpers: every failure becomes one line naming the store ---- */

static int db_fail(ddps_store *s, ddps_err *err, const char *what) {
    int code = sqlite3_errcode(s->db) & 0xff;
    if (code == SQLITE_NOTADB) return ddps_fail_data(err, "%s: not a ddps store (not an SQLite database)", s->path);
    if (code == SQLITE_CORRUPT)
        return ddps_fail_data(err, "%s: store is corrupt (%s%s%s)", s->path, what ? what : "", what ? ": " : "",
                         sqlite3_errmsg(s->db));
    if (code == SQLITE_FULL)
        return ddps_fail_kind(err, DDPS_KIND_RESOURCE, "%s: %s%sdisk full (%s)", s->path, what ? what : "",
                              what ? ": " : "", sqlite3_errmsg(s->db));
    if (!what) return ddps_fail_resource(err, "%s: %s", s->path, sqlite3_errmsg(s->db));
    return ddps_fail_resource(err, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

static int exec(ddps_store *s, const char *sql, ddps_err *err) {
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) return db_fail(s, err, NULL);
    return 0;
}

static int prepare(ddps_store *s, const char *sql, sqlite3_stmt **st, ddps_err *err) {
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return db_fail(s, err, NULL);
    }
    return 0;
}

/* Steps a statement that returns no row (INSERT/UPDATE/DELETE). */
static int step_done(ddps_store *s, sqlite3_stmt *st, ddps_err *err) {
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) return db_fail(s, err, NULL);
    return 0;
}

static int begin_write(ddps_store *s, ddps_err *err) { return exec(s, "BEGIN IMMEDIATE", err); }
static int begin_read(ddps_store *s, ddps_err *err) { return exec(s, "BEGIN", err); }
static int commit(ddps_store *s, ddps_err *err) { return exec(s, "COMMIT", err); }
static void rollback(ddps_store *s) {
    if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Reads a single integer (PRAGMA or COUNT); 0 when no row. */
static int query_int(ddps_store *s, const char *sql, long long *v, ddps_err *err) {
    sqlite3_stmt *st;
    if (prepare(s, sql, &st, err) != 0) return -1;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        db_fail(s, err, NULL);
        sqlite3_finalize(st);
        return -1;
    }
    *v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return 0;
}

/* A text column as a heap string; NULL column gives NULL. Text with an
 * embedded NUL byte (possible in a hand-edited file) is refused. */
static int column_str(sqlite3_stmt *st, int col, char **out) {
    *out = NULL;
    if (sqlite3_column_type(st, col) == SQLITE_NULL) return 0;
    const unsigned char *t = sqlite3_column_text(st, col);
    int nb = sqlite3_column_bytes(st, col);
    if (!t || nb < 0 || strlen((const char *)t) != (size_t)nb) return -1;
    *out = ddps_strdup((const char *)t);
    return 0;
}

static int column_is_number(sqlite3_stmt *st, int col) {
    int t = sqlite3_column_type(st, col);
    return t == SQLITE_INTEGER || t == SQLITE_FLOAT;
}

/* Integer column within [lo, hi]; NULL or text is refused. */
static int column_int_in(sqlite3_stmt *st, int col, long long lo, long long hi, long long *v) {
    if (sqlite3_column_type(st, col) != SQLITE_INTEGER) return -1;
    *v = sqlite3_column_int64(st, col);
    return *v >= lo && *v <= hi ? 0 : -1;
}

static int column_finite(sqlite3_stmt *st, int col, double *v) {
    if (!column_is_number(st, col)) return -1;
    *v = sqlite3_column_double(st, col);
    return isfinite(*v) ? 0 : -1;
}

/* ---- opening ---- */

static const char *SCHEMA_SQL =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE classes(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, prompt_name TEXT, prompt TEXT,"
    " clustered_n INTEGER, clustered_k INTEGER, clustered_seed INTEGER);"
    "CREATE TABLE images(id INTEGER PRIMARY KEY, class_id INTEGER NOT NULL REFERENCES classes(id),"
    " relpath TEXT NOT NULL UNIQUE, state INTEGER NOT NULL, width INTEGER, height INTEGER, rw INTEGER,"
    " rh INTEGER, image_score REAL, seconds REAL, reason TEXT);"
    "CREATE INDEX images_class ON images(class_id, state, relpath);"
    "CREATE TABLE candidates(id INTEGER PRIMARY KEY, image_id INTEGER NOT NULL REFERENCES images(id),"
    " idx INTEGER NOT NULL, x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,"
    " rx INTEGER, ry INTEGER, rw INTEGER, rh INTEGER, score REAL NOT NULL, cluster INTEGER, dist REAL,"
    " UNIQUE(image_id, idx));"
    "CREATE TABLE features(cand_id INTEGER PRIMARY KEY REFERENCES candidates(id), vec BLOB NOT NULL);"
    "CREATE TABLE clusters(class_id INTEGER NOT NULL REFERENCES classes(id), cluster INTEGER NOT NULL,"
    " size INTEGER NOT NULL, median_score REAL NOT NULL, rank INTEGER NOT NULL, PRIMARY KEY(class_id, cluster));"
    "CREATE TABLE runs(id INTEGER PRIMARY KEY, command TEXT NOT NULL, finished TEXT NOT NULL, seconds REAL,"
    " images_scored INTEGER, images_bad INTEGER, unet_latents INTEGER, vae_images INTEGER,"
    " text_prompts INTEGER);";

/* Reads the identity of the open file: application id, schema version and
 * whether it holds any table at all. The first read of the header is where
 * a non-SQLite file shows up (SQLITE_NOTADB). */
static int read_identity(ddps_store *s, long long *app, long long *ver, long long *objects, ddps_err *err) {
    if (query_int(s, "PRAGMA application_id", app, err) != 0) return -1;
    if (query_int(s, "PRAGMA user_version", ver, err) != 0) return -1;
    return query_int(s, "SELECT COUNT(*) FROM sqlite_master", objects, err);
}

static int check_identity(ddps_store *s, long long app, long long ver, ddps_err *err) {
    if (app != APP_ID) return ddps_fail_data(err, "%s: not a ddps store (an SQLite database of another program)", s->path);
    if (ver > DDPS_STORE_SCHEMA)
        return ddps_fail_data(err, "%s: store schema %lld is newer than this ddps reads (%d); use a newer ddps", s->path,
                         ver, DDPS_STORE_SCHEMA);
    if (ver < 1) return ddps_fail_data(err, "%s: store has an invalid schema version (%lld)", s->path, ver);
    return 0;
}

static int create_schema(ddps_store *s, ddps_err *err) {
    if (begin_write(s, err) != 0) return -1;
    long long app, ver, objects;
    /* Re-read inside the write lock: another process may have just created it. */
    if (read_identity(s, &app, &ver, &objects, err) != 0) goto fail;
    if (app != 0 || ver != 0 || objects != 0) {
        rollback(s);
        return check_identity(s, app, ver, err);
    }
    char pragmas[128];
    snprintf(pragmas, sizeof pragmas, "PRAGMA application_id = %d; PRAGMA user_version = %d;", APP_ID,
             DDPS_STORE_SCHEMA);
    if (exec(s, SCHEMA_SQL, err) != 0 || exec(s, pragmas, err) != 0) goto fail;
    if (exec(s,
             "INSERT INTO meta VALUES('ddps_version', '" DDPS_VERSION "');"
             "INSERT INTO meta VALUES('created', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));",
             err) != 0)
        goto fail;
    return commit(s, err);
fail:
    rollback(s);
    return -1;
}

/* Names SQLite would not treat as a plain file: "" (a temporary database),
 * ":memory:" and "file:" URIs (where the library enables them). Results
 * written there would silently vanish. */
int ddps_store_name_check(const char *path, ddps_err *err) {
    if (!path || !*path) return ddps_fail_usage(err, "--store: empty file name");
    if (strcmp(path, ":memory:") == 0)
        return ddps_fail_data(err, "%s: refused: SQLite would keep the store in memory (use ./:memory: for a file of that name)",
                         path);
    if (strncmp(path, "file:", 5) == 0)
        return ddps_fail_data(err, "%s: refused: SQLite could read it as a URI (use ./%s for a file of that name)", path,
                         path);
    return 0;
}

/* file:<path>?immutable=1 (file://<path> when absolute), the path
 * percent-encoded (RFC 3986 unreserved and '/' kept). */
static char *immutable_uri(const char *path) {
    size_t n = strlen(path);
    char *u = ddps_malloc(3 * n + 32), *q = u;
    /* an absolute path gets an empty authority ("file:///..."), so "//x" cannot become a host */
    q += sprintf(q, path[0] == '/' ? "file://" : "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-._~/", *p))
            *q++ = (char)*p;
        else
            q += sprintf(q, "%%%02X", *p);
    }
    strcpy(q, "?immutable=1");
    return u;
}

/* A read-only open of a WAL store whose folder (or file system) does not
 * let SQLite create the -shm index: reopen as immutable, which reads the
 * main file without any locking or -shm. Only sound when no -wal file with
 * content exists (its commits would be invisible): that case is refused. */
static int reopen_immutable(ddps_store *s, ddps_err *err) {
    size_t n = strlen(s->path);
    char *wal = ddps_malloc(n + 5);
    memcpy(wal, s->path, n);
    memcpy(wal + n, "-wal", 5);
    struct stat st;
    int has_wal = stat(wal, &st) == 0 && st.st_size > 0;
    free(wal);
    if (has_wal)
        return ddps_fail_data(err, "%s: cannot read the store read-only: its write-ahead log %s-wal holds commits and the "
                              "folder is not writable (open it once where it is writable)",
                         s->path, s->path);
    sqlite3_close_v2(s->db);
    s->db = NULL;
    char *uri = immutable_uri(s->path);
    int rc = sqlite3_open_v2(uri, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    free(uri);
    if (rc != SQLITE_OK)
        return ddps_fail_data(err, "%s: cannot open store: %s", s->path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
    sqlite3_extended_result_codes(s->db, 1);
    return 0;
}

int ddps_store_open(const char *path, int readonly, ddps_store **out, ddps_err *err) {
    *out = NULL;
    if (ddps_store_name_check(path, err) != 0) return -1;
    struct stat stt;
    if (stat(path, &stt) == 0) {
        if (!S_ISREG(stt.st_mode)) return ddps_fail_data(err, "%s: not a ddps store (not a regular file)", path);
    } else if (readonly) {
        return ddps_fail_data(err, "%s: cannot open store: %s", path, strerror(errno));
    }
    ddps_store *s = ddps_calloc(1, sizeof *s);
    s->path = ddps_strdup(path);
    s->readonly = readonly;
    int flags = readonly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        ddps_fail_data(err, "%s: cannot open store: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
        ddps_store_close(s);
        return -1;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 30000);
    long long app, ver, objects;
    if (read_identity(s, &app, &ver, &objects, err) != 0) {
        int code = sqlite3_extended_errcode(s->db);
        if (!readonly || ((code & 0xff) != SQLITE_CANTOPEN && (code & 0xff) != SQLITE_READONLY)) goto fail;
        if (reopen_immutable(s, err) != 0 || read_identity(s, &app, &ver, &objects, err) != 0) goto fail;
    }
    if (app == 0 && ver == 0 && objects == 0) {
        if (readonly) {
            ddps_fail_data(err, "%s: not a ddps store (empty database)", path);
            goto fail;
        }
        /* WAL must be chosen outside a transaction; it is persistent. */
        if (exec(s, "PRAGMA journal_mode = WAL", err) != 0 || create_schema(s, err) != 0) goto fail;
    } else if (check_identity(s, app, ver, err) != 0) {
        goto fail;
    } else if (!readonly && exec(s, "PRAGMA journal_mode = WAL", err) != 0) {
        goto fail;
    }
    if (exec(s, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", err) != 0) goto fail;
    if (!readonly && exec(s, MAPS_SQL, err) != 0) goto fail;
    *out = s;
    return 0;
fail:
    ddps_store_close(s);
    return -1;
}

void ddps_store_close(ddps_store *s) {
    if (!s) return;
    if (s->db) sqlite3_close_v2(s->db);
    free(s->path);
    free(s);
}

/* ---- meta ---- */

int ddps_store_get_meta(ddps_store *s, const char *key, char **value, ddps_err *err) {
    *value = NULL;
    sqlite3_stmt *st;
    if (prepare(s, "SELECT value FROM meta WHERE key = ?", &st, err) != 0) return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), ret = 0;
    if (rc == SQLITE_ROW) {
        if (column_str(st, 0, value) != 0 || !*value)
            ret = ddps_fail_data(err, "%s: store is corrupt (meta value '%s' is not text)", s->path, key);
    } else if (rc != SQLITE_DONE) {
        ret = db_fail(s, err, "reading meta");
    }
    sqlite3_finalize(st);
    return ret;
}

int ddps_store_set_meta(ddps_store *s, const char *key, const char *value, ddps_err *err) {
    sqlite3_stmt *st;
    if (prepare(s, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", &st, err) != 0) return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    int ret = step_done(s, st, err);
    sqlite3_finalize(st);
    return ret;
}

/* ---- bind ---- */

static char *json_text(const json_t *v) {
    if (!v) return ddps_strdup("(absent)");
    char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
    if (!t) return ddps_strdup("?");
    char *r = ddps_strdup(t);
    free(t);
    return r;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* The first key (in byte order, over both objects) whose values differ; NULL if equal. */
static const char *first_difference(json_t *a, json_t *b) {
    size_t n = json_object_size(a) + json_object_size(b), m = 0;
    const char **keys = ddps_malloc((n ? n : 1) * sizeof *keys);
    const char *k;
    json_t *v;
    json_object_foreach(a, k, v) keys[m++] = k;
    json_object_foreach(b, k, v) keys[m++] = k;
    qsort(keys, m, sizeof *keys, cmp_str);
    const char *diff = NULL;
    for (size_t i = 0; i < m && !diff; i++)
        if (!json_equal(json_object_get(a, keys[i]), json_object_get(b, keys[i]))) diff = keys[i];
    free(keys);
    return diff;
}

int ddps_store_bind(ddps_store *s, const char *settings_json, const char *model_id, ddps_err *err) {
    json_error_t je;
    json_t *now = json_loads(settings_json, 0, &je);
    if (!now || !json_is_object(now)) {
        json_decref(now);
        return ddps_fail(err, "%s: settings to bind are not a JSON object (%s)", s->path, now ? "" : je.text);
    }
    if (!model_id || !*model_id) {
        json_decref(now);
        return ddps_fail(err, "%s: empty model identity", s->path);
    }
    char *old_settings = NULL, *old_model = NULL;
    json_t *old = NULL;
    int ret = -1;
    if (begin_write(s, err) != 0) goto done;
    if (ddps_store_get_meta(s, "settings", &old_settings, err) != 0 ||
        ddps_store_get_meta(s, "model_id", &old_model, err) != 0)
        goto done;
    if (!old_settings) {
        /* First bind: record canonical JSON (sorted keys) and the model. */
        char *canon = json_dumps(now, JSON_COMPACT | JSON_SORT_KEYS);
        int rc = canon ? ddps_store_set_meta(s, "settings", canon, err) : ddps_fail_resource(err, "out of memory");
        free(canon);
        if (rc != 0 || ddps_store_set_meta(s, "model_id", model_id, err) != 0) goto done;
        ret = commit(s, err);
        goto done;
    }
    old = json_loads(old_settings, 0, &je);
    if (!old || !json_is_object(old)) {
        ddps_fail_data(err, "%s: store is corrupt (its settings are not a JSON object)", s->path);
        goto done;
    }
    const char *key = first_difference(old, now);
    if (key) {
        char *a = json_text(json_object_get(old, key)), *b = json_text(json_object_get(now, key));
        ddps_fail_data(err, "%s: scored with %s=%s, this run has %s=%s; use a new --store for other settings", s->path, key,
                  a, key, b);
        free(a);
        free(b);
        goto done;
    }
    if (!old_model || strcmp(old_model, model_id) != 0) {
        ddps_fail_data(err, "%s: model differs (store: %s, this run: %s); use a new --store for another model", s->path,
                  old_model ? old_model : "(none)", model_id);
        goto done;
    }
    ret = commit(s, err);
done:
    if (ret != 0) rollback(s);
    json_decref(now);
    json_decref(old);
    free(old_settings);
    free(old_model);
    return ret;
}

/* ---- classes and images ---- */

int ddps_store_class_id(ddps_store *s, const char *name, const char *prompt_name, const char *prompt, int *id,
                        ddps_err *err) {
    *id = 0;
    if (!name || !*name) return ddps_fail(err, "%s: empty class name", s->path);
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (begin_write(s, err) != 0) return -1;
    if (prepare(s, "INSERT OR IGNORE INTO classes(name) VALUES(?)", &st, err) != 0) goto done;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (step_done(s, st, err) != 0) goto done;
    sqlite3_finalize(st);
    if (prepare(s,
                "UPDATE classes SET prompt_name = coalesce(?2, prompt_name), prompt = coalesce(?3, prompt)"
                " WHERE name = ?1 RETURNING id",
                &st, err) != 0)
        goto done;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, prompt_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, prompt, -1, SQLITE_STATIC);
    long long v;
    if (sqlite3_step(st) != SQLITE_ROW) {
        db_fail(s, err, "recording class");
        goto done;
    }
    if (column_int_in(st, 0, 1, INT_MAX, &v) != 0) {
        ddps_fail_data(err, "%s: store is corrupt (class id out of range)", s->path);
        goto done;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (commit(s, err) != 0) goto done;
    *id = (int)v;
    ret = 0;
done:
    sqlite3_finalize(st);
    if (ret != 0) rollback(s);
    return ret;
}

int ddps_store_image_state(ddps_store *s, const char *relpath, int *state, ddps_err *err) {
    *state = 0;
    sqlite3_stmt *st;
    if (prepare(s, "SELECT state FROM images WHERE relpath = ?", &st, err) != 0) return -1;
    sqlite3_bind_text(st, 1, relpath, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), ret = 0;
    long long v;
    if (rc == SQLITE_ROW) {
        if (column_int_in(st, 0, 1, 2, &v) != 0)
            ret = ddps_fail_data(err, "%s: store is corrupt (state of %s)", s->path, relpath);
        else
            *state = (int)v;
    } else if (rc != SQLITE_DONE) {
        ret = db_fail(s, err, "reading image state");
    }
    sqlite3_finalize(st);
    return ret;
}

/* A relative '/'-separated path without empty, "." or ".." components: it
 * can never point outside the data root. */
static int relpath_ok(const char *p) {
    if (!p || !*p || *p == '/') return 0;
    const char *c = p;
    while (1) {
        const char *e = strchr(c, '/');
        size_t n = e ? (size_t)(e - c) : strlen(c);
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.')) return 0;
        if (!e) return 1;
        c = e + 1;
    }
}

static int class_exists(ddps_store *s, int class_id, ddps_err *err) {
    sqlite3_stmt *st;
    if (prepare(s, "SELECT 1 FROM classes WHERE id = ?", &st, err) != 0) return -1;
    sqlite3_bind_int(st, 1, class_id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW) return 0;
    if (rc == SQLITE_DONE) return ddps_fail(err, "%s: no class with id %d", s->path, class_id);
    return db_fail(s, err, "reading classes");
}

/* Refuses a second row for relpath (scored or bad). Call inside the transaction. */
static int check_new_image(ddps_store *s, const char *relpath, ddps_err *err) {
    int state;
    if (ddps_store_image_state(s, relpath, &state, err) != 0) return -1;
    if (state)
        return ddps_fail(err, "%s: %s is already in the store (%s)", s->path, relpath,
                         state == 1 ? "scored" : "recorded as bad");
    return 0;
}

static int box_ok(double a0, double a1, int size) {
    return isfinite(a0) && isfinite(a1) && a0 < a1 && a0 >= -BOX_SLACK && a1 <= size + BOX_SLACK;
}

static int check_result(ddps_store *s, const ddps_image_result *r, ddps_err *err) {
    const char *p = r->relpath ? r->relpath : "(null)";
    if (!relpath_ok(r->relpath)) return ddps_fail_data(err, "%s: image path '%s' is not a plain relative path", s->path, p);
    if (r->width < 1 || r->height < 1 || r->width > MAX_SIDE || r->height > MAX_SIDE || r->rw < 1 || r->rh < 1 ||
        r->rw > MAX_SIDE || r->rh > MAX_SIDE)
        return ddps_fail_data(err, "%s: %s: invalid image size %dx%d (resized %dx%d)", s->path, p, r->width, r->height,
                         r->rw, r->rh);
    if (!isfinite(r->image_score)) return ddps_fail_data(err, "%s: %s: image score is not finite", s->path, p);
    if (r->n_cand < 0 || (r->n_cand > 0 && !r->cand))
        return ddps_fail_data(err, "%s: %s: invalid candidate list", s->path, p);
    if (r->n_cand > 0 && (r->dim < 1 || r->dim > MAX_DIM))
        return ddps_fail_data(err, "%s: %s: feature length %d outside 1..%d", s->path, p, r->dim, MAX_DIM);
    for (int i = 0; i < r->n_cand; i++) {
        const ddps_candidate *c = &r->cand[i];
        if (!box_ok(c->w.x0, c->w.x1, r->width) || !box_ok(c->w.y0, c->w.y1, r->height))
            return ddps_fail_data(err, "%s: %s: candidate %d box (%g,%g)-(%g,%g) is not inside the %dx%d image", s->path, p,
                             i, c->w.x0, c->w.y0, c->w.x1, c->w.y1, r->width, r->height);
        if (!isfinite(c->w.score)) return ddps_fail_data(err, "%s: %s: candidate %d score is not finite", s->path, p, i);
        if (!c->feature) return ddps_fail_data(err, "%s: %s: candidate %d has no feature", s->path, p, i);
        for (int d = 0; d < r->dim; d++)
            if (!isfinite(c->feature[d]))
                return ddps_fail_data(err, "%s: %s: candidate %d feature has non-finite values", s->path, p, i);
    }
    return 0;
}

/* Little-endian f32, whatever the host order. */
static void put_f32le(unsigned char *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    b[0] = (unsigned char)u;
    b[1] = (unsigned char)(u >> 8);
    b[2] = (unsigned char)(u >> 16);
    b[3] = (unsigned char)(u >> 24);
}

static float get_f32le(const unsigned char *b) {
    uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* The store's feature length: 0 when not set yet. */
static int feature_dim(ddps_store *s, int *dim, ddps_err *err) {
    char *v = NULL;
    *dim = 0;
    if (ddps_store_get_meta(s, "feature_dim", &v, err) != 0) return -1;
    if (!v) return 0;
    char *end;
    long d = strtol(v, &end, 10);
    int bad = !*v || *end || d < 1 || d > MAX_DIM;
    free(v);
    if (bad) return ddps_fail_data(err, "%s: store is corrupt (meta feature_dim is not 1..%d)", s->path, MAX_DIM);
    *dim = (int)d;
    return 0;
}

static int put_candidates(ddps_store *s, const ddps_image_result *r, long long image_id, ddps_err *err) {
    sqlite3_stmt *c = NULL, *f = NULL;
    unsigned char *blob = ddps_malloc((size_t)r->dim * 4);
    int ret = -1;
    if (prepare(s,
                "INSERT INTO candidates(image_id, idx, x0, y0, x1, y1, rx, ry, rw, rh, score)"
                " VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                &c, err) != 0 ||
        prepare(s, "INSERT INTO features(cand_id, vec) VALUES(?, ?)", &f, err) != 0)
        goto done;
    for (int i = 0; i < r->n_cand; i++) {
        const ddps_candidate *k = &r->cand[i];
        sqlite3_reset(c);
        sqlite3_bind_int64(c, 1, image_id);
        sqlite3_bind_int(c, 2, i);
        sqlite3_bind_double(c, 3, k->w.x0);
        sqlite3_bind_double(c, 4, k->w.y0);
        sqlite3_bind_double(c, 5, k->w.x1);
        sqlite3_bind_double(c, 6, k->w.y1);
        sqlite3_bind_int(c, 7, k->w.rx);
        sqlite3_bind_int(c, 8, k->w.ry);
        sqlite3_bind_int(c, 9, k->w.rw);
        sqlite3_bind_int(c, 10, k->w.rh);
        sqlite3_bind_double(c, 11, k->w.score);
        if (step_done(s, c, err) != 0) goto done;
        for (int d = 0; d < r->dim; d++) put_f32le(blob + 4 * (size_t)d, k->feature[d]);
        sqlite3_reset(f);
        sqlite3_bind_int64(f, 1, sqlite3_last_insert_rowid(s->db));
        sqlite3_bind_blob(f, 2, blob, r->dim * 4, SQLITE_STATIC);
        if (step_done(s, f, err) != 0) goto done;
    }
    ret = 0;
done:
    sqlite3_finalize(c);
    sqlite3_finalize(f);
    free(blob);
    return ret;
}

/* The image's Stage-I map, inside put_image's transaction. */
static int put_map(ddps_store *s, const float *map, int mh, int mw, long long image_id, ddps_err *err) {
    size_t n = (size_t)mh * (size_t)mw;
    unsigned char *blob = ddps_malloc(n * 4);
    for (size_t i = 0; i < n; i++) put_f32le(blob + 4 * i, map[i]);
    sqlite3_stmt *st;
    int ret = -1;
    if (prepare(s, "INSERT INTO maps(image_id, h, w, data) VALUES(?, ?, ?, ?)", &st, err) == 0) {
        sqlite3_bind_int64(st, 1, image_id);
        sqlite3_bind_int(st, 2, mh);
        sqlite3_bind_int(st, 3, mw);
        sqlite3_bind_blob(st, 4, blob, (int)(n * 4), SQLITE_STATIC);
        ret = step_done(s, st, err);
        sqlite3_finalize(st);
    }
    free(blob);
    return ret;
}

int ddps_store_put_image(ddps_store *s, const ddps_image_result *r, ddps_err *err) {
    return ddps_store_put_image_map(s, r, NULL, 0, 0, err);
}

int ddps_store_put_image_map(ddps_store *s, const ddps_image_result *r, const float *map, int map_h, int map_w,
                             ddps_err *err) {
    if (check_result(s, r, err) != 0) return -1;
    if (map) {
        if (map_h < 1 || map_w < 1 || map_h > MAX_MAP_SIDE || map_w > MAX_MAP_SIDE)
            return ddps_fail_data(err, "%s: %s: invalid map size %dx%d", s->path, r->relpath, map_w, map_h);
        for (long i = 0; i < (long)map_h * map_w; i++)
            if (!isfinite(map[i])) return ddps_fail_data(err, "%s: %s: map has non-finite values", s->path, r->relpath);
    }
    if (begin_write(s, err) != 0) return -1;
    sqlite3_stmt *st = NULL;
    int ret = -1, dim;
    if (class_exists(s, r->class_id, err) != 0 || check_new_image(s, r->relpath, err) != 0) goto done;
    if (r->n_cand > 0) {
        if (feature_dim(s, &dim, err) != 0) goto done;
        if (dim == 0) {
            char v[16];
            snprintf(v, sizeof v, "%d", r->dim);
            if (ddps_store_set_meta(s, "feature_dim", v, err) != 0) goto done;
        } else if (dim != r->dim) {
            ddps_fail_data(err, "%s: %s: feature length %d, the store holds length %d", s->path, r->relpath, r->dim, dim);
            goto done;
        }
    }
    if (prepare(s,
                "INSERT INTO images(class_id, relpath, state, width, height, rw, rh, image_score, seconds)"
                " VALUES(?, ?, 1, ?, ?, ?, ?, ?, ?)",
                &st, err) != 0)
        goto done;
    sqlite3_bind_int(st, 1, r->class_id);
    sqlite3_bind_text(st, 2, r->relpath, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, r->width);
    sqlite3_bind_int(st, 4, r->height);
    sqlite3_bind_int(st, 5, r->rw);
    sqlite3_bind_int(st, 6, r->rh);
    sqlite3_bind_double(st, 7, r->image_score);
    sqlite3_bind_double(st, 8, isfinite(r->seconds) ? r->seconds : 0.0);
    if (step_done(s, st, err) != 0) goto done;
    long long image_id = sqlite3_last_insert_rowid(s->db);
    if (r->n_cand > 0 && put_candidates(s, r, image_id, err) != 0) goto done;
    if (map && put_map(s, map, map_h, map_w, image_id, err) != 0) goto done;
    ret = commit(s, err);
done:
    sqlite3_finalize(st);
    if (ret != 0) rollback(s);
    return ret;
}

int ddps_store_put_bad(ddps_store *s, int class_id, const char *relpath, const char *reason, ddps_err *err) {
    if (!relpath_ok(relpath))
        return ddps_fail_data(err, "%s: image path '%s' is not a plain relative path", s->path,
                         relpath ? relpath : "(null)");
    if (begin_write(s, err) != 0) return -1;
    sqlite3_stmt *st = NULL;
    int ret = -1;
    if (class_exists(s, class_id, err) != 0 || check_new_image(s, relpath, err) != 0) goto done;
    if (prepare(s, "INSERT INTO images(class_id, relpath, state, reason) VALUES(?, ?, 2, ?)", &st, err) != 0) goto done;
    sqlite3_bind_int(st, 1, class_id);
    sqlite3_bind_text(st, 2, relpath, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, reason ? reason : "", -1, SQLITE_STATIC);
    if (step_done(s, st, err) != 0) goto done;
    ret = commit(s, err);
done:
    sqlite3_finalize(st);
    if (ret != 0) rollback(s);
    return ret;
}

/* ---- reading a class ---- */

void ddps_class_data_free(ddps_class_data *d) {
    if (!d) return;
    for (int i = 0; i < d->n_images; i++) free(d->images[i].relpath);
    free(d->images);
    free(d->cand);
    free(d->cand_ids);
    free(d->features);
    free(d->clusters);
    memset(d, 0, sizeof *d);
}

static int load_images(ddps_store *s, int class_id, ddps_class_data *d, long long **ids, ddps_err *err) {
    sqlite3_stmt *st;
    if (prepare(s,
                "SELECT id, relpath, width, height, rw, rh, image_score FROM images"
                " WHERE class_id = ? AND state = 1 ORDER BY relpath",
                &st, err) != 0)
        return -1;
    sqlite3_bind_int(st, 1, class_id);
    int cap = 0, rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (d->n_images == cap) {
            if (cap > INT_MAX / 4) {
                ret = ddps_fail_data(err, "%s: too many images in class %d", s->path, class_id);
                break;
            }
            cap = cap ? 2 * cap : 64;
            d->images = ddps_realloc(d->images, (size_t)cap * sizeof *d->images);
            *ids = ddps_realloc(*ids, (size_t)cap * sizeof **ids);
        }
        ddps_stored_image *im = &d->images[d->n_images];
        memset(im, 0, sizeof *im);
        long long w, h, rw, rh;
        double sc;
        (*ids)[d->n_images] = sqlite3_column_int64(st, 0);
        if (column_str(st, 1, &im->relpath) != 0 || !im->relpath) {
            ret = ddps_fail_data(err, "%s: store is corrupt (image row %lld has no path)", s->path, (*ids)[d->n_images]);
            break;
        }
        d->n_images++;
        if (!relpath_ok(im->relpath)) {
            ret = ddps_fail_data(err, "%s: store is corrupt (image path '%s' is not a plain relative path)", s->path,
                            im->relpath);
            break;
        }
        if (column_int_in(st, 2, 1, MAX_SIDE, &w) || column_int_in(st, 3, 1, MAX_SIDE, &h) ||
            column_int_in(st, 4, 1, MAX_SIDE, &rw) || column_int_in(st, 5, 1, MAX_SIDE, &rh) ||
            column_finite(st, 6, &sc)) {
            ret = ddps_fail_data(err, "%s: store is corrupt (sizes or score of %s)", s->path, im->relpath);
            break;
        }
        im->width = (int)w;
        im->height = (int)h;
        im->rw = (int)rw;
        im->rh = (int)rh;
        im->image_score = (float)sc;
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = db_fail(s, err, "reading images");
    sqlite3_finalize(st);
    return ret;
}

/* Candidates in (relpath, idx) order; image index found by walking the
 * image list, which has the same order. */
static int load_cands(ddps_store *s, int class_id, int with_features, int dim, int clustered_k, ddps_class_data *d,
                      const long long *image_ids, ddps_err *err) {
    sqlite3_stmt *st;
    const char *sql = with_features
                          ? "SELECT c.id, c.image_id, c.idx, c.x0, c.y0, c.x1, c.y1, c.rx, c.ry, c.rw, c.rh,"
                            " c.score, c.cluster, c.dist, f.vec FROM candidates c JOIN images i ON c.image_id = i.id"
                            " LEFT JOIN features f ON f.cand_id = c.id"
                            " WHERE i.class_id = ? AND i.state = 1 ORDER BY i.relpath, c.idx"
                          : "SELECT c.id, c.image_id, c.idx, c.x0, c.y0, c.x1, c.y1, c.rx, c.ry, c.rw, c.rh,"
                            " c.score, c.cluster, c.dist FROM candidates c JOIN images i ON c.image_id = i.id"
                            " WHERE i.class_id = ? AND i.state = 1 ORDER BY i.relpath, c.idx";
    if (prepare(s, sql, &st, err) != 0) return -1;
    sqlite3_bind_int(st, 1, class_id);
    int cap = 0, rc, ret = 0, img = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        long long id = sqlite3_column_int64(st, 0), image_id = sqlite3_column_int64(st, 1);
        if (d->n_cand == cap) {
            if (cap > INT_MAX / 4) {
                ret = ddps_fail_data(err, "%s: too many candidates in class %d", s->path, class_id);
                break;
            }
            cap = cap ? 2 * cap : 256;
            d->cand = ddps_realloc(d->cand, (size_t)cap * sizeof *d->cand);
            d->cand_ids = ddps_realloc(d->cand_ids, (size_t)cap * sizeof *d->cand_ids);
            if (with_features) {
                size_t bytes;
                if (ddps_mul_size((size_t)cap * (size_t)dim, sizeof(float), &bytes) != 0) {
                    ret = ddps_fail_data(err, "%s: class %d features too large", s->path, class_id);
                    break;
                }
                d->features = ddps_realloc(d->features, bytes);
            }
        }
        while (img < d->n_images && image_ids[img] != image_id) img++;
        if (img == d->n_images) {
            ret = ddps_fail_data(err, "%s: store is corrupt (candidate %lld out of order or of an unknown image)", s->path,
                            id);
            break;
        }
        const char *rel = d->images[img].relpath;
        ddps_stored_cand *c = &d->cand[d->n_cand];
        long long idx, rx, ry, rw, rh, cl = -1;
        double sc, dist = 0;
        if (column_int_in(st, 2, 0, 1000000, &idx) || column_finite(st, 3, &c->x0) || column_finite(st, 4, &c->y0) ||
            column_finite(st, 5, &c->x1) || column_finite(st, 6, &c->y1) ||
            column_int_in(st, 7, -MAX_SIDE, MAX_SIDE, &rx) || column_int_in(st, 8, -MAX_SIDE, MAX_SIDE, &ry) ||
            column_int_in(st, 9, 0, MAX_SIDE, &rw) || column_int_in(st, 10, 0, MAX_SIDE, &rh) ||
            column_finite(st, 11, &sc) || !box_ok(c->x0, c->x1, d->images[img].width) ||
            !box_ok(c->y0, c->y1, d->images[img].height)) {
            ret = ddps_fail_data(err, "%s: store is corrupt (candidate %lld of %s: bad box, index or score)", s->path, id,
                            rel);
            break;
        }
        if (sqlite3_column_type(st, 12) != SQLITE_NULL) {
            if (column_int_in(st, 12, 0, clustered_k - 1, &cl) || column_finite(st, 13, &dist) || dist < 0) {
                ret = ddps_fail_data(err, "%s: store is corrupt (candidate %lld of %s: cluster or distance)", s->path, id,
                                rel);
                break;
            }
        }
        c->image = img;
        c->idx = (int)idx;
        c->rx = (int)rx;
        c->ry = (int)ry;
        c->rw = (int)rw;
        c->rh = (int)rh;
        c->score = (float)sc;
        c->cluster = (int)cl;
        c->cluster_rank = 0;
        c->dist = (float)dist;
        d->cand_ids[d->n_cand] = id;
        if (with_features) {
            int nb = sqlite3_column_bytes(st, 14);
            const unsigned char *b = sqlite3_column_blob(st, 14);
            if (sqlite3_column_type(st, 14) != SQLITE_BLOB || !b || (long long)nb != 4LL * dim) {
                ret = ddps_fail_data(err, "%s: store is corrupt (feature of candidate %lld of %s is %d bytes, expected %d)",
                                s->path, id, rel, nb, 4 * dim);
                break;
            }
            float *out = d->features + (size_t)d->n_cand * dim;
            for (int k = 0; k < dim; k++) {
                out[k] = get_f32le(b + 4 * (size_t)k);
                if (!isfinite(out[k])) {
                    ret = ddps_fail_data(err, "%s: store is corrupt (feature of candidate %lld of %s is not finite)",
                                    s->path, id, rel);
                    break;
                }
            }
            if (ret) break;
        }
        d->n_cand++;
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = db_fail(s, err, "reading candidates");
    sqlite3_finalize(st);
    return ret;
}

/* Clusters by rank; checks they match the candidates (ids in range, ranks
 * 1..n without gaps, sizes equal the member counts) and fills cluster_rank. */
static int load_clusters(ddps_store *s, int class_id, int clustered_k, ddps_class_data *d, ddps_err *err) {
    sqlite3_stmt *st;
    if (prepare(s, "SELECT cluster, size, median_score, rank FROM clusters WHERE class_id = ? ORDER BY rank, cluster",
                &st, err) != 0)
        return -1;
    sqlite3_bind_int(st, 1, class_id);
    int rc, ret = 0;
    int kmax = clustered_k > 0 ? clustered_k : 0;
    d->clusters = ddps_malloc((size_t)(kmax ? kmax : 1) * sizeof *d->clusters);
    int *rank_of = ddps_calloc((size_t)(kmax ? kmax : 1), sizeof *rank_of);
    long *members = ddps_calloc((size_t)(kmax ? kmax : 1), sizeof *members);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        long long cl, size, rank;
        double med;
        if (d->n_clusters == kmax || column_int_in(st, 0, 0, kmax - 1, &cl) ||
            column_int_in(st, 1, 0, INT_MAX, &size) || column_finite(st, 2, &med) ||
            column_int_in(st, 3, d->n_clusters + 1, d->n_clusters + 1, &rank) || rank_of[cl] != 0) {
            ret = ddps_fail_data(err, "%s: store is corrupt (cluster table of class %d)", s->path, class_id);
            break;
        }
        ddps_stored_cluster *c = &d->clusters[d->n_clusters++];
        c->cluster = (int)cl;
        c->size = (int)size;
        c->rank = (int)rank;
        c->median_score = (float)med;
        rank_of[cl] = (int)rank;
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = db_fail(s, err, "reading clusters");
    sqlite3_finalize(st);
    for (int i = 0; ret == 0 && i < d->n_cand; i++) {
        int cl = d->cand[i].cluster;
        if (cl < 0) continue;
        if (rank_of[cl] == 0) {
            ret = ddps_fail_data(err, "%s: store is corrupt (candidate of %s in cluster %d, which is not recorded)", s->path,
                            d->images[d->cand[i].image].relpath, cl);
            break;
        }
        d->cand[i].cluster_rank = rank_of[cl];
        members[cl]++;
    }
    for (int j = 0; ret == 0 && j < d->n_clusters; j++)
        if (members[d->clusters[j].cluster] != d->clusters[j].size)
            ret = ddps_fail_data(err, "%s: store is corrupt (cluster %d of class %d records %d members, %ld found)", s->path,
                            d->clusters[j].cluster, class_id, d->clusters[j].size, members[d->clusters[j].cluster]);
    free(rank_of);
    free(members);
    return ret;
}

/* The class row's clustering record; k = 0 when never clustered. */
static int class_clustering(ddps_store *s, int class_id, long long *n, long long *k, ddps_err *err) {
    sqlite3_stmt *st;
    if (prepare(s, "SELECT clustered_n, clustered_k FROM classes WHERE id = ?", &st, err) != 0) return -1;
    sqlite3_bind_int(st, 1, class_id);
    int rc = sqlite3_step(st), ret = 0;
    *n = -1;
    *k = 0;
    if (rc == SQLITE_ROW) {
        if (sqlite3_column_type(st, 1) != SQLITE_NULL &&
            (column_int_in(st, 0, 0, INT_MAX, n) || column_int_in(st, 1, 1, MAX_K, k)))
            ret = ddps_fail_data(err, "%s: store is corrupt (clustering record of class %d)", s->path, class_id);
    } else if (rc == SQLITE_DONE) {
        ret = ddps_fail(err, "%s: no class with id %d", s->path, class_id);
    } else {
        ret = db_fail(s, err, "reading classes");
    }
    sqlite3_finalize(st);
    return ret;
}

/* Loads inside the caller's transaction. */
static int load_class_locked(ddps_store *s, int class_id, int with_features, ddps_class_data *out, ddps_err *err) {
    memset(out, 0, sizeof *out);
    out->class_id = class_id;
    long long *image_ids = NULL, cn, ck;
    int dim = 0;
    if (class_clustering(s, class_id, &cn, &ck, err) != 0 || feature_dim(s, &dim, err) != 0) goto fail;
    out->dim = dim;
    if (load_images(s, class_id, out, &image_ids, err) != 0) goto fail;
    if (load_cands(s, class_id, with_features && dim > 0, dim, (int)ck, out, image_ids, err) != 0) goto fail;
    if (with_features && out->n_cand > 0 && dim == 0) {
        ddps_fail_data(err, "%s: store is corrupt (candidates but no feature_dim)", s->path);
        goto fail;
    }
    if (load_clusters(s, class_id, (int)ck, out, err) != 0) goto fail;
    free(image_ids);
    return 0;
fail:
    free(image_ids);
    ddps_class_data_free(out);
    return -1;
}

int ddps_store_load_class(ddps_store *s, int class_id, int with_features, ddps_class_data *out, ddps_err *err) {
    memset(out, 0, sizeof *out);
    if (begin_read(s, err) != 0) return -1;
    int ret = load_class_locked(s, class_id, with_features, out, err);
    if (ret == 0) ret = commit(s, err);
    if (ret != 0) {
        rollback(s);
        ddps_class_data_free(out);
    }
    return ret;
}

/* ---- clustering ---- */

typedef ddps_cluster_stat cl_stat;

static int write_clustering(ddps_store *s, int class_id, int n_cand, const long long *cand_ids, const int *assign,
                            const float *dist, const cl_stat *st, int m, int k, uint64_t seed, ddps_err *err) {
    sqlite3_stmt *q = NULL;
    int ret = -1;
    if (prepare(s, "DELETE FROM clusters WHERE class_id = ?", &q, err) != 0) goto done;
    sqlite3_bind_int(q, 1, class_id);
    if (step_done(s, q, err) != 0) goto done;
    sqlite3_finalize(q);
    if (prepare(s, "UPDATE candidates SET cluster = ?, dist = ? WHERE id = ?", &q, err) != 0) goto done;
    for (int i = 0; i < n_cand; i++) {
        sqlite3_reset(q);
        sqlite3_bind_int(q, 1, assign[i]);
        sqlite3_bind_double(q, 2, dist[i]);
        sqlite3_bind_int64(q, 3, cand_ids[i]);
        if (step_done(s, q, err) != 0) goto done;
    }
    sqlite3_finalize(q);
    if (prepare(s, "INSERT INTO clusters(class_id, cluster, size, median_score, rank) VALUES(?,?,?,?,?)", &q, err) != 0)
        goto done;
    for (int j = 0; j < m; j++) {
        sqlite3_reset(q);
        sqlite3_bind_int(q, 1, class_id);
        sqlite3_bind_int(q, 2, st[j].cluster);
        sqlite3_bind_int(q, 3, st[j].size);
        sqlite3_bind_double(q, 4, st[j].median);
        sqlite3_bind_int(q, 5, j + 1);
        if (step_done(s, q, err) != 0) goto done;
    }
    sqlite3_finalize(q);
    if (prepare(s, "UPDATE classes SET clustered_n = ?, clustered_k = ?, clustered_seed = ? WHERE id = ?", &q, err) !=
        0)
        goto done;
    sqlite3_bind_int(q, 1, n_cand);
    sqlite3_bind_int(q, 2, k);
    sqlite3_bind_int64(q, 3, (sqlite3_int64)seed);
    sqlite3_bind_int(q, 4, class_id);
    if (step_done(s, q, err) != 0) goto done;
    ret = 0;
done:
    sqlite3_finalize(q);
    return ret;
}

static int count_cands(ddps_store *s, int class_id, long long *n, long long *unclustered, ddps_err *err);

int ddps_store_cluster_write(ddps_store *s, const ddps_clustering *c, ddps_err *err) {
    if (c->k < 1 || c->k > MAX_K) return ddps_fail(err, "%s: number of clusters %d outside 1..%d", s->path, c->k, MAX_K);
    if (begin_write(s, err) != 0) return -1;
    long long n = 0, un = 0;
    int ret = count_cands(s, c->class_id, &n, &un, err);
    if (ret == 0 && n != c->n_cand)
        ret = ddps_fail(err, "%s: clustering of class %d was computed on %d candidates, the store has %lld", s->path,
                        c->class_id, c->n_cand, n);
    for (int i = 0; ret == 0 && i < c->n_stats; i++)
        if (c->stats[i].cluster < 0 || c->stats[i].cluster >= c->k || c->stats[i].size < 1)
            ret = ddps_fail(err, "%s: invalid clustering of class %d", s->path, c->class_id);
    for (int i = 0; ret == 0 && i < c->n_cand; i++)
        if (c->assign[i] < 0 || c->assign[i] >= c->k || !isfinite(c->dist[i]))
            ret = ddps_fail(err, "%s: invalid clustering of class %d", s->path, c->class_id);
    if (ret == 0)
        ret = write_clustering(s, c->class_id, c->n_cand, c->cand_ids, c->assign, c->dist, c->stats, c->n_stats, c->k,
                               c->seed, err);
    if (ret == 0) ret = commit(s, err);
    if (ret != 0) rollback(s);
    return ret;
}

/* Candidates of the class (of scored images) and how many lack a cluster. */
static int count_cands(ddps_store *s, int class_id, long long *n, long long *unclustered, ddps_err *err) {
    sqlite3_stmt *st;
    if (prepare(s,
                "SELECT COUNT(*), COUNT(*) - COUNT(c.cluster) FROM candidates c JOIN images i ON c.image_id = i.id"
                " WHERE i.class_id = ? AND i.state = 1",
                &st, err) != 0)
        return -1;
    sqlite3_bind_int(st, 1, class_id);
    int ret = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *n = sqlite3_column_int64(st, 0);
        *unclustered = sqlite3_column_int64(st, 1);
    } else {
        ret = db_fail(s, err, "counting candidates");
    }
    sqlite3_finalize(st);
    return ret;
}

int ddps_store_needs_clustering(ddps_store *s, int class_id, int *needs, ddps_err *err) {
    *needs = 1;
    long long cn, ck, n = 0, un = 0;
    if (begin_read(s, err) != 0) return -1;
    if (class_clustering(s, class_id, &cn, &ck, err) != 0 || count_cands(s, class_id, &n, &un, err) != 0) {
        rollback(s);
        return -1;
    }
    if (commit(s, err) != 0) return -1;
    *needs = !(ck > 0 && cn == n && un == 0);
    return 0;
}

/* ---- runs ---- */

int ddps_store_add_run(ddps_store *s, const ddps_run_stats *r, ddps_err *err) {
    sqlite3_stmt *st;
    if (prepare(s,
                "INSERT INTO runs(command, finished, seconds, images_scored, images_bad, unet_latents, vae_images,"
                " text_prompts) VALUES(?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), ?, ?, ?, ?, ?, ?)",
                &st, err) != 0)
        return -1;
    sqlite3_bind_text(st, 1, r->command ? r->command : "?", -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 2, isfinite(r->seconds) ? r->seconds : 0.0);
    sqlite3_bind_int64(st, 3, r->images_scored);
    sqlite3_bind_int64(st, 4, r->images_bad);
    sqlite3_bind_int64(st, 5, r->unet_latents);
    sqlite3_bind_int64(st, 6, r->vae_images);
    sqlite3_bind_int64(st, 7, r->text_prompts);
    int ret = step_done(s, st, err);
    sqlite3_finalize(st);
    return ret;
}

int ddps_store_totals(ddps_store *s, ddps_run_stats *sum, ddps_err *err) {
    memset(sum, 0, sizeof *sum);
    sqlite3_stmt *st;
    if (prepare(s,
                "SELECT total(seconds), total(images_scored), total(images_bad), total(unet_latents),"
                " total(vae_images), total(text_prompts) FROM runs",
                &st, err) != 0)
        return -1;
    int ret = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        double v[6];
        for (int i = 0; i < 6; i++) {
            v[i] = sqlite3_column_double(st, i);
            if (!isfinite(v[i]) || (i > 0 && (v[i] < 0 || v[i] > 9e18))) ret = -1;
        }
        if (ret) {
            ddps_fail_data(err, "%s: store is corrupt (run totals)", s->path);
        } else {
            sum->seconds = v[0];
            sum->images_scored = (long)v[1];
            sum->images_bad = (long)v[2];
            sum->unet_latents = (long)v[3];
            sum->vae_images = (long)v[4];
            sum->text_prompts = (long)v[5];
        }
    } else {
        ret = db_fail(s, err, "reading runs");
    }
    sqlite3_finalize(st);
    return ret;
}

/* ---- listings ---- */

void ddps_store_free_classes(ddps_class_info *c, int n) {
    for (int i = 0; c && i < n; i++) {
        free(c[i].name);
        free(c[i].prompt_name);
        free(c[i].prompt);
    }
    free(c);
}

int ddps_store_list_classes(ddps_store *s, ddps_class_info **out, int *n, ddps_err *err) {
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (begin_read(s, err) != 0) return -1;
    if (prepare(s,
                "SELECT k.id, k.name, k.prompt_name, k.prompt, k.clustered_n, k.clustered_k,"
                " (SELECT COUNT(*) FROM images i WHERE i.class_id = k.id AND i.state = 1),"
                " (SELECT COUNT(*) FROM images i WHERE i.class_id = k.id AND i.state = 2),"
                " (SELECT COUNT(*) FROM candidates c JOIN images i ON c.image_id = i.id"
                "   WHERE i.class_id = k.id AND i.state = 1),"
                " (SELECT COUNT(*) FROM candidates c JOIN images i ON c.image_id = i.id"
                "   WHERE i.class_id = k.id AND i.state = 1 AND c.cluster IS NULL)"
                " FROM classes k ORDER BY k.name",
                &st, err) != 0) {
        rollback(s);
        return -1;
    }
    ddps_class_info *c = NULL;
    int cap = 0, m = 0, rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (m == cap) {
            if (cap > INT_MAX / 4) {
                ret = ddps_fail_data(err, "%s: too many classes", s->path);
                break;
            }
            cap = cap ? 2 * cap : 64;
            c = ddps_realloc(c, (size_t)cap * sizeof *c);
        }
        ddps_class_info *ci = &c[m];
        memset(ci, 0, sizeof *ci);
        long long id = 0, cn = -1, ck = 0;
        int bad = column_int_in(st, 0, 1, INT_MAX, &id) != 0;
        bad |= column_str(st, 1, &ci->name) != 0;
        bad |= column_str(st, 2, &ci->prompt_name) != 0;
        bad |= column_str(st, 3, &ci->prompt) != 0;
        m++;
        if (!bad && sqlite3_column_type(st, 5) != SQLITE_NULL)
            bad |= column_int_in(st, 4, 0, INT_MAX, &cn) != 0 || column_int_in(st, 5, 1, MAX_K, &ck) != 0;
        if (bad || !ci->name) {
            ret = ddps_fail_data(err, "%s: store is corrupt (class row %d)", s->path, m);
            break;
        }
        ci->id = (int)id;
        ci->n_images = (long)sqlite3_column_int64(st, 6);
        ci->n_bad = (long)sqlite3_column_int64(st, 7);
        ci->n_cand = (long)sqlite3_column_int64(st, 8);
        ci->clustered_k = (int)ck;
        ci->clustered = ck > 0 && cn == ci->n_cand && sqlite3_column_int64(st, 9) == 0;
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = db_fail(s, err, "reading classes");
    sqlite3_finalize(st);
    if (ret == 0) ret = commit(s, err);
    if (ret != 0) {
        rollback(s);
        ddps_store_free_classes(c, m);
        return -1;
    }
    *out = c;
    *n = m;
    return 0;
}

void ddps_store_free_bad(ddps_bad_image *b, int n) {
    for (int i = 0; b && i < n; i++) {
        free(b[i].relpath);
        free(b[i].reason);
    }
    free(b);
}

int ddps_store_list_bad(ddps_store *s, int class_id, ddps_bad_image **out, int *n, ddps_err *err) {
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (prepare(s,
                "SELECT class_id, relpath, reason FROM images WHERE state = 2 AND (?1 = 0 OR class_id = ?1)"
                " ORDER BY relpath",
                &st, err) != 0)
        return -1;
    sqlite3_bind_int(st, 1, class_id);
    ddps_bad_image *b = NULL;
    int cap = 0, m = 0, rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (m == cap) {
            if (cap > INT_MAX / 4) {
                ret = ddps_fail_data(err, "%s: too many bad images", s->path);
                break;
            }
            cap = cap ? 2 * cap : 16;
            b = ddps_realloc(b, (size_t)cap * sizeof *b);
        }
        ddps_bad_image *bi = &b[m++];
        memset(bi, 0, sizeof *bi);
        long long cid;
        if (column_int_in(st, 0, 1, INT_MAX, &cid) || column_str(st, 1, &bi->relpath) || !bi->relpath ||
            column_str(st, 2, &bi->reason)) {
            ret = ddps_fail_data(err, "%s: store is corrupt (bad image row %d)", s->path, m);
            break;
        }
        bi->class_id = (int)cid;
        if (!bi->reason) bi->reason = ddps_strdup("");
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = db_fail(s, err, "reading bad images");
    sqlite3_finalize(st);
    if (ret != 0) {
        ddps_store_free_bad(b, m);
        return -1;
    }
    *out = b;
    *n = m;
    return 0;
}

/* ---- Stage-I maps ---- */

int ddps_store_has_maps(ddps_store *s, int *has, ddps_err *err) {
    long long v = 0;
    *has = 0;
    if (query_int(s, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'maps'", &v, err) != 0)
        return -1;
    *has = v > 0;
    return 0;
}

void ddps_store_free_maps(ddps_stored_map *m, int n) {
    for (int i = 0; m && i < n; i++) free(m[i].data);
    free(m);
}

int ddps_store_load_maps(ddps_store *s, const ddps_class_data *d, ddps_stored_map **out, ddps_err *err) {
    *out = NULL;
    ddps_stored_map *m = ddps_calloc((size_t)(d->n_images ? d->n_images : 1), sizeof *m);
    int has;
    if (ddps_store_has_maps(s, &has, err) != 0) {
        free(m);
        return -1;
    }
    if (!has) {
        *out = m;
        return 0;
    }
    sqlite3_stmt *st;
    if (prepare(s,
                "SELECT i.relpath, m.h, m.w, m.data FROM maps m JOIN images i ON m.image_id = i.id"
                " WHERE i.class_id = ? AND i.state = 1 ORDER BY i.relpath",
                &st, err) != 0) {
        free(m);
        return -1;
    }
    sqlite3_bind_int(st, 1, d->class_id);
    int rc, ret = 0, img = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *rel = sqlite3_column_text(st, 0);
        while (rel && img < d->n_images && strcmp(d->images[img].relpath, (const char *)rel) < 0) img++;
        if (!rel || img == d->n_images || strcmp(d->images[img].relpath, (const char *)rel) != 0) continue;
        long long h, w;
        int nb = sqlite3_column_bytes(st, 3);
        const unsigned char *b = sqlite3_column_blob(st, 3);
        if (column_int_in(st, 1, 1, MAX_MAP_SIDE, &h) || column_int_in(st, 2, 1, MAX_MAP_SIDE, &w) ||
            sqlite3_column_type(st, 3) != SQLITE_BLOB || !b || (long long)nb != 4 * h * w) {
            ret = ddps_fail_data(err, "%s: store is corrupt (Stage-I map of %s)", s->path, d->images[img].relpath);
            break;
        }
        float *v = ddps_malloc((size_t)(h * w) * sizeof *v);
        for (long long i = 0; i < h * w && ret == 0; i++) {
            v[i] = get_f32le(b + 4 * i);
            if (!isfinite(v[i]))
                ret = ddps_fail_data(err, "%s: store is corrupt (Stage-I map of %s is not finite)", s->path,
                                d->images[img].relpath);
        }
        if (ret) {
            free(v);
            break;
        }
        m[img].h = (int)h;
        m[img].w = (int)w;
        m[img].data = v;
        img++;
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = db_fail(s, err, "reading maps");
    sqlite3_finalize(st);
    if (ret != 0) {
        ddps_store_free_maps(m, d->n_images);
        return -1;
    }
    *out = m;
    return 0;
}

/* ---- run log ---- */

void ddps_store_free_runs(ddps_stored_run *r, int n) {
    for (int i = 0; r && i < n; i++) {
        free(r[i].command);
        free(r[i].finished);
    }
    free(r);
}

int ddps_store_list_runs(ddps_store *s, ddps_stored_run **out, int *n, ddps_err *err) {
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (prepare(s,
                "SELECT command, finished, seconds, images_scored, images_bad, unet_latents, vae_images, text_prompts"
                " FROM runs ORDER BY id",
                &st, err) != 0)
        return -1;
    ddps_stored_run *r = NULL;
    int cap = 0, m = 0, rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (m == cap) {
            if (cap > INT_MAX / 4) {
                ret = ddps_fail_data(err, "%s: too many runs", s->path);
                break;
            }
            cap = cap ? 2 * cap : 16;
            r = ddps_realloc(r, (size_t)cap * sizeof *r);
        }
        ddps_stored_run *x = &r[m++];
        memset(x, 0, sizeof *x);
        double sec = 0;
        long long v[5] = {0};
        int bad = column_str(st, 0, &x->command) != 0 || !x->command || column_str(st, 1, &x->finished) != 0 ||
                  !x->finished;
        if (!bad && sqlite3_column_type(st, 2) != SQLITE_NULL) bad = column_finite(st, 2, &sec) != 0;
        for (int k = 0; k < 5 && !bad; k++)
            if (sqlite3_column_type(st, 3 + k) != SQLITE_NULL) bad = column_int_in(st, 3 + k, 0, LLONG_MAX, &v[k]);
        if (bad) {
            ret = ddps_fail_data(err, "%s: store is corrupt (run row %d)", s->path, m);
            break;
        }
        x->st.seconds = sec;
        x->st.images_scored = (long)v[0];
        x->st.images_bad = (long)v[1];
        x->st.unet_latents = (long)v[2];
        x->st.vae_images = (long)v[3];
        x->st.text_prompts = (long)v[4];
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = db_fail(s, err, "reading runs");
    sqlite3_finalize(st);
    if (ret != 0) {
        ddps_store_free_runs(r, m);
        return -1;
    }
    *out = r;
    *n = m;
    return 0;
}
