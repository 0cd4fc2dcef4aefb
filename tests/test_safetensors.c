/* safetensors reader: golden files open and read back; hostile files give
 * one clear error naming the file, never a crash. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "testlib.h"

static void golden_files_open(void) {
    st_file f;
    ddps_err err = {{0}};
    CHECKF(ddps_st_open(&f, t_shared("golden/unet.safetensors"), &err) == 0, "%s", err.msg);
    const st_tensor *t = ddps_st_find(&f, "sample");
    CHECK(t && t->dtype == ST_F32 && t->ndim == 4 && t->shape[0] == 3 && t->shape[1] == 4);
    const st_tensor *ts = ddps_st_find(&f, "timesteps");
    CHECK(ts && ts->dtype == ST_I32 && ts->numel == 3);
    int64_t v[3];
    CHECK(ddps_st_to_i64(&f, ts, 0, 999, v, &err) == 0);
    CHECK(ddps_st_find(&f, "nope") == NULL);
    ddps_st_close(&f);

    CHECKF(ddps_st_open(&f, t_shared("golden/tiny-sd/unet/diffusion_pytorch_model.safetensors"), &err) == 0, "%s",
           err.msg);
    t = ddps_st_find(&f, "conv_in.weight");
    CHECK(t && t->dtype == ST_F16 && t->numel == 32 * 4 * 9);
    float *buf = malloc(t->numel * sizeof(float));
    CHECK(ddps_st_to_f32(t, buf) == 0);
    double s = 0;
    for (size_t i = 0; i < t->numel; i++) s += fabs(buf[i]);
    CHECK(s > 0);
    ddps_st_release(&f, t);
    free(buf);
    ddps_st_close(&f);
}

static void conversions(void) {
    /* Exhaustive f16 round trip through f32. */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = ddps_st_f16_to_f32((uint16_t)h);
        if (isnan(f)) continue;
        if (ddps_st_f32_to_f16(f) != h) bad++;
    }
    CHECK(bad == 0);
    CHECK(ddps_st_f16_to_f32(0x3c00) == 1.0f);
    CHECK(ddps_st_f16_to_f32(0x0001) == ldexpf(1, -24));
    CHECK(ddps_st_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(ddps_st_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(ddps_st_f32_to_f16(65520.0f) == 0x7c00);
    CHECK(ddps_st_f32_to_f16(1e-8f) == 0);
}

static void round_trip(void) {
    const char *dir = t_tmpdir("st_round_trip");
    char path[4096];
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    float a[6] = {1, 2, 3, 4, 5, 6};
    int64_t ids[2] = {49406, -7};
    st_out o[2] = {{"a", ST_F32, 2, {2, 3}, a}, {"ids", ST_I64, 1, {2}, ids}};
    ddps_err err;
    CHECK(ddps_st_write(path, o, 2, &err) == 0);
    st_file f;
    CHECKF(ddps_st_open(&f, path, &err) == 0, "%s", err.msg);
    const st_tensor *t = ddps_st_find(&f, "a");
    float b[6];
    CHECK(t && ddps_st_to_f32(t, b) == 0 && memcmp(a, b, sizeof a) == 0);
    int64_t r[2];
    CHECK(ddps_st_to_i64(&f, ddps_st_find(&f, "ids"), -10, 50000, r, &err) == 0 && r[1] == -7);
    CHECK(ddps_st_to_i64(&f, ddps_st_find(&f, "ids"), 0, 50000, r, &err) != 0 && strstr(err.msg, "outside"));
    ddps_st_close(&f);
}

/* Writes an 8-byte length + header + data file. */
static const char *hostile(const char *dir, const char *name, const char *header, long declared_len, size_t data_len) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    size_t hl = strlen(header);
    uint64_t n = declared_len >= 0 ? (uint64_t)declared_len : hl;
    size_t total = 8 + hl + data_len;
    unsigned char *buf = calloc(1, total);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(n >> (8 * i));
    memcpy(buf + 8, header, hl);
    t_write(path, buf, total);
    free(buf);
    return path;
}

static void expect_error(const char *path, const char *what) {
    st_file f;
    ddps_err err = {{0}};
    int rc = ddps_st_open(&f, path, &err);
    CHECKF(rc != 0, "%s opened but should not", path);
    if (rc == 0) {
        ddps_st_close(&f);
        return;
    }
    CHECKF(strstr(err.msg, path) != NULL, "error does not name the file: %s", err.msg);
    CHECKF(strstr(err.msg, what) != NULL, "error '%s' lacks '%s'", err.msg, what);
    CHECK(strchr(err.msg, '\n') == NULL);
}

static void hostile_files(void) {
    const char *dir = t_tmpdir("st_hostile");
    char p[4096];
    snprintf(p, sizeof p, "%s/empty.safetensors", dir);
    t_write(p, "", 0);
    expect_error(p, "truncated");
    snprintf(p, sizeof p, "%s/short.safetensors", dir);
    t_write(p, "abc", 3);
    expect_error(p, "truncated");
    expect_error(hostile(dir, "len_beyond", "{}", 1000, 0), "beyond the end");
    expect_error(hostile(dir, "huge_len", "{}", (long)0x7fffffffffffffffLL, 0), "beyond the end");
    expect_error(hostile(dir, "not_json", "{\"a\": [", -1, 0), "not valid JSON");
    expect_error(hostile(dir, "not_object", "[1,2]", -1, 0), "not a JSON object");
    expect_error(hostile(dir, "dup", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                         -1, 8),
                 "not valid JSON");
    expect_error(hostile(dir, "dtype", "{\"a\":{\"dtype\":\"F8_E9\",\"shape\":[1],\"data_offsets\":[0,1]}}", -1, 1),
                 "unknown dtype 'F8_E9'");
    expect_error(hostile(dir, "range", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", -1, 8),
                 "outside the data area");
    expect_error(hostile(dir, "neg", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", -1, 8),
                 "outside the data area");
    expect_error(hostile(dir, "mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", -1, 8),
                 "need 12");
    expect_error(hostile(dir, "overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                          "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                         -1, 12),
                 "overlap");
    expect_error(hostile(dir, "shape_neg", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", -1, 4),
                 "non-negative");
    expect_error(hostile(dir, "shape_overflow",
                         "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}",
                         -1, 4),
                 "overflows");
    expect_error(hostile(dir, "meta", "{\"__metadata__\":{\"format\":1}}", -1, 0), "__metadata__");
    expect_error(hostile(dir, "noshape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", -1, 4), "shape");
    snprintf(p, sizeof p, "%s/missing.safetensors", dir);
    expect_error(p, "cannot open");
    expect_error(dir, "not a regular file");
}

int main(void) {
    TEST(golden_files_open);
    TEST(conversions);
    TEST(round_trip);
    TEST(hostile_files);
    return t_done();
}
