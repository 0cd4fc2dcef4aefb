#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"

/* A header larger than this is not a tensor index: refuse it before parsing. */
#define ST_MAX_HEADER (256u << 20)

static const struct {
    const char *name;
    st_dtype dt;
    size_t size;
} dtypes[] = {
    {"F32", ST_F32, 4}, {"F16", ST_F16, 2}, {"BF16", ST_BF16, 2}, {"I32", ST_I32, 4},
    {"I64", ST_I64, 8}, {"F64", ST_F64, 8}, {"I8", ST_I8, 1},     {"U8", ST_U8, 1},
    {"I16", ST_I16, 2}, {"BOOL", ST_BOOL, 1},
};

size_t ddps_st_dtype_size(st_dtype dt) {
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
        if (dtypes[i].dt == dt) return dtypes[i].size;
    return 0;
}

const char *ddps_st_dtype_name(st_dtype dt) {
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
        if (dtypes[i].dt == dt) return dtypes[i].name;
    return "?";
}

static int parse_dtype(const char *s, st_dtype *dt) {
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
        if (strcmp(dtypes[i].name, s) == 0) {
            *dt = dtypes[i].dt;
            return 0;
        }
    return -1;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

static int cmp_offset(const void *a, const void *b) {
    const st_tensor *x = *(st_tensor *const *)a, *y = *(st_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

/* Parses one tensor entry; returns -1 with err set. */
static int parse_entry(const char *path, const char *name, json_t *v, size_t data_size, st_tensor *t,
                       ddps_err *err) {
    if (!json_is_object(v)) return ddps_fail_data(err, "%s: tensor '%s': entry is not an object", path, name);
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
           *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd)) return ddps_fail_data(err, "%s: tensor '%s': missing dtype", path, name);
    if (parse_dtype(json_string_value(jd), &t->dtype) != 0)
        return ddps_fail_data(err, "%s: tensor '%s': unknown dtype '%s'", path, name, json_string_value(jd));
    if (!json_is_array(js)) return ddps_fail_data(err, "%s: tensor '%s': missing shape", path, name);
    size_t nd = json_array_size(js);
    if (nd > ST_MAX_DIMS)
        return ddps_fail_data(err, "%s: tensor '%s': %zu dimensions (at most %d)", path, name, nd, ST_MAX_DIMS);
    t->ndim = (int)nd;
    size_t numel = 1;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return ddps_fail_data(err, "%s: tensor '%s': shape must be non-negative integers", path, name);
        t->shape[i] = json_integer_value(d);
        if (ddps_mul_size(numel, (size_t)t->shape[i], &numel) != 0)
            return ddps_fail_data(err, "%s: tensor '%s': shape overflows", path, name);
    }
    t->numel = numel;
    if (ddps_mul_size(numel, ddps_st_dtype_size(t->dtype), &t->nbytes) != 0)
        return ddps_fail_data(err, "%s: tensor '%s': shape overflows", path, name);
    if (!json_is_array(jo) || json_array_size(jo) != 2 || !json_is_integer(json_array_get(jo, 0)) ||
        !json_is_integer(json_array_get(jo, 1)))
        return ddps_fail_data(err, "%s: tensor '%s': data_offsets must be [begin, end]", path, name);
    json_int_t b = json_integer_value(json_array_get(jo, 0)), e = json_integer_value(json_array_get(jo, 1));
    if (b < 0 || e < b || (uint64_t)e > data_size)
        return ddps_fail_data(err, "%s: tensor '%s': data_offsets [%lld, %lld] outside the data area (%zu bytes)",
                         path, name, (long long)b, (long long)e, data_size);
    if ((uint64_t)(e - b) != t->nbytes)
        return ddps_fail_data(err,
                         "%s: tensor '%s': %lld bytes of data but shape and dtype %s need %zu", path, name,
                         (long long)(e - b), ddps_st_dtype_name(t->dtype), t->nbytes);
    t->offset = (size_t)b;
    return 0;
}

/* Opens and maps path into f (fd, map, map_size) and checks the 8-byte
 * header length against the file: *hlen gets it. Returns 0 or -1 with err
 * (f is left for ddps_st_close). */
static int st_map(st_file *f, const char *path, uint64_t *hlen, ddps_err *err) {
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) return ddps_fail_data(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode)) return ddps_fail_data(err, "%s: not a regular file", path);
    size_t size = (size_t)st.st_size;
    if (size < 8)
        return ddps_fail_data(err, "%s: truncated: %zu bytes, a safetensors file starts with an 8-byte header length", path,
                         size);
    f->map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, f->fd, 0);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        return ddps_fail_data(err, "%s: cannot map: %s", path, strerror(errno));
    }
    f->map_size = size;
    const unsigned char *p = f->map;
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = (h << 8) | p[i];
    if (h > size - 8)
        return ddps_fail_data(err,
                         "%s: header length %llu goes beyond the end of the file (%zu bytes): truncated or not safetensors",
                         path, (unsigned long long)h, size);
    if (h > ST_MAX_HEADER || h < 2) return ddps_fail_data(err, "%s: implausible header length %llu", path, (unsigned long long)h);
    *hlen = h;
    return 0;
}

/* Every tensor entry of the parsed header root into f->t (unsorted);
 * __metadata__ must map names to strings. */
static int st_entries(st_file *f, const char *path, json_t *root, ddps_err *err) {
    size_t data_size = f->map_size - f->data_start, cap = json_object_size(root);
    const unsigned char *p = f->map;
    f->t = ddps_calloc(cap ? cap : 1, sizeof *f->t);
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            const char *mk;
            json_t *mv;
            if (!json_is_object(val)) return ddps_fail_data(err, "%s: __metadata__ is not an object", path);
            json_object_foreach(val, mk, mv) {
                if (!json_is_string(mv)) return ddps_fail_data(err, "%s: __metadata__ value '%s' is not a string", path, mk);
            }
            continue;
        }
        if (!key[0]) return ddps_fail_data(err, "%s: tensor with an empty name", path);
        st_tensor *t = &f->t[f->n];
        if (parse_entry(path, key, val, data_size, t, err) != 0) return -1;
        t->name = ddps_strdup(key);
        t->data = p + f->data_start + t->offset;
        f->n++;
    }
    return 0;
}

/* Refuses tensors whose byte ranges overlap (offsets sorted by position). */
static int st_check_overlap(const st_file *f, const char *path, ddps_err *err) {
    if (f->n < 2) return 0;
    int rc = 0;
    st_tensor **order = ddps_malloc((size_t)f->n * sizeof *order);
    for (int i = 0; i < f->n; i++) order[i] = &f->t[i];
    qsort(order, (size_t)f->n, sizeof *order, cmp_offset);
    for (int i = 1; i < f->n && rc == 0; i++) {
        const st_tensor *a = order[i - 1], *b = order[i];
        if (b->nbytes && a->nbytes && b->offset < a->offset + a->nbytes)
            rc = ddps_fail_data(err, "%s: tensors '%s' and '%s' overlap in the data area", path, a->name, b->name);
    }
    free(order);
    return rc;
}

int ddps_st_open(st_file *f, const char *path, ddps_err *err) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->path = ddps_strdup(path);
    json_t *root = NULL;
    uint64_t hlen = 0;
    if (st_map(f, path, &hlen, err) != 0) goto fail;
    f->data_start = 8 + (size_t)hlen;
    json_error_t jerr;
    root = json_loadb((const char *)f->map + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        ddps_fail_data(err, "%s: header is not valid JSON (%s at byte %d)", path, jerr.text, jerr.position);
        goto fail;
    }
    if (!json_is_object(root)) {
        ddps_fail_data(err, "%s: header is not a JSON object", path);
        goto fail;
    }
    if (st_entries(f, path, root, err) != 0 || st_check_overlap(f, path, err) != 0) goto fail;
    qsort(f->t, (size_t)f->n, sizeof *f->t, cmp_name);
    json_decref(root);
    return 0;

fail:
    if (root) json_decref(root);
    ddps_st_close(f);
    return -1;
}

void ddps_st_close(st_file *f) {
    if (f->t)
        for (int i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    if (f->map) munmap(f->map, f->map_size);
    if (f->fd >= 0) close(f->fd);
    free(f->path);
    memset(f, 0, sizeof *f);
    f->fd = -1;
}

const st_tensor *ddps_st_find(const st_file *f, const char *name) {
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(f->t[mid].name, name);
        if (c == 0) return &f->t[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

float ddps_st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float ddps_st_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t ddps_st_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

uint16_t ddps_st_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00);
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to inf */
    if (ax < 0x38800000u) {                                   /* subnormal or zero in f16 */
        if (ax < 0x33000000u) return (uint16_t)sign;
        uint32_t e = ax >> 23, m = (ax & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* 14 + (112 - e) + ... */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((ax >> 13) - (112u << 10));
    uint32_t rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

size_t ddps_st_to_f32(const st_tensor *t, float *dst) {
    const unsigned char *p = t->data;
    size_t bad = 0;
    for (size_t i = 0; i < t->numel; i++) {
        float v;
        switch (t->dtype) {
        case ST_F32: memcpy(&v, p + 4 * i, 4); break;
        case ST_F16: {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            v = ddps_st_f16_to_f32(h);
            break;
        }
        case ST_BF16: {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            v = ddps_st_bf16_to_f32(h);
            break;
        }
        case ST_F64: {
            double d;
            memcpy(&d, p + 8 * i, 8);
            v = (float)d;
            break;
        }
        case ST_I32: {
            int32_t x;
            memcpy(&x, p + 4 * i, 4);
            v = (float)x;
            break;
        }
        case ST_I64: {
            int64_t x;
            memcpy(&x, p + 8 * i, 8);
            v = (float)x;
            break;
        }
        case ST_I16: {
            int16_t x;
            memcpy(&x, p + 2 * i, 2);
            v = (float)x;
            break;
        }
        case ST_I8: v = (float)(int8_t)p[i]; break;
        case ST_U8:
        case ST_BOOL: v = (float)p[i]; break;
        default: v = 0; break;
        }
        if (!isfinite(v)) bad++;
        dst[i] = v;
    }
    return bad;
}

int ddps_st_to_i64(const st_file *f, const st_tensor *t, int64_t lo, int64_t hi, int64_t *dst, ddps_err *err) {
    const unsigned char *p = t->data;
    if (t->dtype != ST_I32 && t->dtype != ST_I64)
        return ddps_fail_data(err, "%s: tensor '%s' has dtype %s, expected I32 or I64", f->path, t->name,
                         ddps_st_dtype_name(t->dtype));
    for (size_t i = 0; i < t->numel; i++) {
        int64_t v;
        if (t->dtype == ST_I32) {
            int32_t x;
            memcpy(&x, p + 4 * i, 4);
            v = x;
        } else {
            memcpy(&v, p + 8 * i, 8);
        }
        if (v < lo || v > hi)
            return ddps_fail_data(err, "%s: tensor '%s' element %zu is %lld, outside [%lld, %lld]", f->path, t->name, i,
                             (long long)v, (long long)lo, (long long)hi);
        dst[i] = v;
    }
    return 0;
}

void ddps_st_release(const st_file *f, const st_tensor *t) {
    if (!t->nbytes) return;
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)t->data & ~(uintptr_t)(page - 1);
    uintptr_t e = (uintptr_t)t->data + t->nbytes;
    madvise((void *)a, e - a, MADV_DONTNEED);
    (void)f;
}

int ddps_st_write(const char *path, const st_out *t, int n, ddps_err *err) {
    json_t *root = json_object();
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        json_t *shape = json_array();
        for (int d = 0; d < t[i].ndim; d++) {
            numel *= (size_t)t[i].shape[d];
            json_array_append_new(shape, json_integer(t[i].shape[d]));
        }
        size_t nb = numel * ddps_st_dtype_size(t[i].dtype);
        json_t *e = json_object();
        json_object_set_new(e, "dtype", json_string(ddps_st_dtype_name(t[i].dtype)));
        json_object_set_new(e, "shape", shape);
        json_object_set_new(e, "data_offsets", json_pack("[II]", (json_int_t)off, (json_int_t)(off + nb)));
        json_object_set_new(root, t[i].name, e);
        off += nb;
    }
    char *hdr = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!hdr) return ddps_fail_data(err, "%s: cannot encode header", path);
    size_t hl = strlen(hdr), padded = (hl + 7) & ~(size_t)7;
    size_t total = 8 + padded + off;
    unsigned char *buf = ddps_malloc(total);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, hdr, hl);
    memset(buf + 8 + hl, ' ', padded - hl);
    free(hdr);
    size_t pos = 8 + padded;
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= (size_t)t[i].shape[d];
        size_t nb = numel * ddps_st_dtype_size(t[i].dtype);
        if (nb) memcpy(buf + pos, t[i].data, nb);
        pos += nb;
    }
    int rc = ddps_write_file_atomic(path, buf, total, err);
    free(buf);
    return rc;
}
