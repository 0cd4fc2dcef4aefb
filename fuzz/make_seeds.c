/* Writes the seed corpora of every harness into OUT/<harness>/ (usage:
 * make_seeds OUT). All seeds are small and made here, from ddps's own
 * encoders and writers, plus the golden model's configs and a few of the
 * test dataset's images when ../shared is present; nothing large is
 * committed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/image.h"
#include "io/safetensors.h"
#include "models/tokenizer.h"
#include "tools/demo.h"
#include "pipeline/store.h"
#include "util/fs.h"

static const char *g_out;

static void put(const char *harness, const char *name, const void *data, size_t len) {
    char dir[1024], path[1200];
    ddps_err err;
    snprintf(dir, sizeof dir, "%s/%s", g_out, harness);
    if (ddps_mkdirs(dir, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static void put_file(const char *harness, const char *name, const char *src) {
    char *buf;
    size_t len;
    ddps_err err;
    if (ddps_read_file(src, 1 << 20, &buf, &len, &err) != 0) return; /* optional (../shared) */
    put(harness, name, buf, len);
    free(buf);
}

static void pattern(ddps_image *img, int w, int h, int seed) {
    ddps_image_alloc(img, w, h);
    for (size_t i = 0; i < (size_t)w * h * 3; i++) img->px[i] = (uint8_t)(i * 13 + (size_t)seed * 71 + i / 7);
}

static void le16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void le32(uint8_t *p, uint32_t v) { le16(p, v & 0xffff), le16(p + 2, v >> 16); }

/* A bottom-up BMP, 24-bit or 8-bit with a 4-entry palette. */
static void bmp(const char *name, int w, int h, int bpp) {
    int row = ((w * bpp + 31) / 32) * 4, pal = bpp == 8 ? 4 * 4 : 0;
    size_t off = 14 + 40 + (size_t)pal, size = off + (size_t)row * h;
    uint8_t *b = calloc(1, size);
    b[0] = 'B', b[1] = 'M';
    le32(b + 2, (uint32_t)size);
    le32(b + 10, (uint32_t)off);
    le32(b + 14, 40);
    le32(b + 18, (uint32_t)w);
    le32(b + 22, (uint32_t)h);
    le16(b + 26, 1);
    le16(b + 28, (unsigned)bpp);
    if (bpp == 8) le32(b + 46, 4);
    for (int i = 0; i < pal; i++) b[54 + i] = (uint8_t)(i * 60);
    for (size_t i = off; i < size; i++) b[i] = (uint8_t)(bpp == 8 ? i % 4 : i * 5);
    uint8_t *s = malloc(size + 1);
    s[0] = 0; /* fuzz_bmp_pnm: even first byte = BMP */
    memcpy(s + 1, b, size);
    put("fuzz_bmp_pnm", name, s, size + 1);
    put("fuzz_image", name, b, size);
    free(s);
    free(b);
}

static void pnm(const char *name, const char *magic, int w, int h, int maxval) {
    char hdr[64];
    int n = maxval ? snprintf(hdr, sizeof hdr, "%s\n# c\n%d %d\n%d\n", magic, w, h, maxval)
                   : snprintf(hdr, sizeof hdr, "%s\n%d %d\n", magic, w, h);
    int ch = strcmp(magic, "P6") == 0 ? 3 : 1, bytes = maxval > 255 ? 2 : 1;
    size_t body = strcmp(magic, "P4") == 0 ? (size_t)((w + 7) / 8) * h : (size_t)w * h * ch * bytes;
    size_t size = (size_t)n + body;
    uint8_t *b = malloc(size + 1);
    b[0] = 1; /* odd first byte = PNM */
    memcpy(b + 1, hdr, (size_t)n);
    for (size_t i = 0; i < body; i++) b[1 + n + i] = (uint8_t)(i * 37);
    put("fuzz_bmp_pnm", name, b, size + 1);
    put("fuzz_image", name, b + 1, size);
    free(b);
}

static void images(void) {
    const int sizes[][2] = {{1, 1}, {7, 5}, {16, 16}, {33, 9}};
    for (int i = 0; i < 4; i++) {
        ddps_image img;
        ddps_err err;
        pattern(&img, sizes[i][0], sizes[i][1], i);
        uint8_t *buf;
        size_t len;
        char name[64];
        if (ddps_image_encode_png(&img, 6, &buf, &len, &err) == 0) {
            snprintf(name, sizeof name, "rgb%d.png", i);
            put("fuzz_png", name, buf, len);
            put("fuzz_image", name, buf, len);
            free(buf);
        }
        if (ddps_image_encode_jpeg(&img, 80, &buf, &len, &err) == 0) {
            snprintf(name, sizeof name, "rgb%d.jpg", i);
            put("fuzz_jpeg", name, buf, len);
            put("fuzz_image", name, buf, len);
            free(buf);
        }
        ddps_image_free(&img);
    }
    bmp("rgb24.bmp", 5, 3, 24);
    bmp("pal8.bmp", 6, 4, 8);
    pnm("rgb.ppm", "P6", 4, 3, 255);
    pnm("gray16.pgm", "P5", 3, 3, 65535);
    pnm("bits.pbm", "P4", 9, 2, 0);
    /* two real dataset images, when ../shared is there (small JPEGs) */
    put_file("fuzz_jpeg", "cifar0.jpg", DDPS_SHARED_DIR "/data/cifar10-mini/test/bird/0002.jpg");
    put_file("fuzz_image", "cifar0.jpg", DDPS_SHARED_DIR "/data/cifar10-mini/test/bird/0002.jpg");
    /* signatures of formats decoded elsewhere (WebP, TIFF once merged) */
    static const char webp[] = "RIFF\x1a\0\0\0WEBPVP8L\x0d\0\0\0\x2f\0\0\0\x10\x07\x10\x11\x11\x88\x88\xfe\x07";
    static const char tiff[] = "II*\0\x08\0\0\0\x01\0\0\x01\x03\0\x01\0\0\0\x01\0\0\0\0\0\0";
    put("fuzz_image", "webp.hdr", webp, sizeof webp);
    put("fuzz_image", "tiff.hdr", tiff, sizeof tiff);
}

static void safetensors(void) {
    char dir[] = "/tmp/ddps-seeds-XXXXXX";
    if (!mkdtemp(dir)) return;
    char path[128];
    snprintf(path, sizeof path, "%s/t.safetensors", dir);
    float f[6] = {1, -2, 0.5f, 3e38f, -0.0f, 7};
    uint16_t h[4] = {0x3c00, 0xc000, 0x7bff, 0x0001};
    int64_t q[3] = {1, -5, 1000};
    st_out t[4] = {{"a.weight", ST_F32, 2, {2, 3}, f},
                   {"b.bias", ST_F16, 1, {4}, h},
                   {"c", ST_BF16, 2, {2, 2}, h},
                   {"ids", ST_I64, 1, {3}, q}};
    ddps_err err;
    if (ddps_st_write(path, t, 4, &err) == 0) put_file("fuzz_safetensors", "small.safetensors", path);
    if (ddps_st_write(path, t, 1, &err) == 0) put_file("fuzz_safetensors", "one.safetensors", path);
    unlink(path);
    rmdir(dir);
}

static void configs(void) {
    const char *files[][2] = {{"model_index.json", "model_index.json"},
                              {"unet.json", "unet/config.json"},
                              {"vae.json", "vae/config.json"},
                              {"text_encoder.json", "text_encoder/config.json"},
                              {"scheduler.json", "scheduler/scheduler_config.json"},
                              {"tokenizer_config.json", "tokenizer/tokenizer_config.json"}};
    for (int i = 0; i < 6; i++) {
        char src[1024];
        snprintf(src, sizeof src, "%s/golden/tiny-sd/%s", DDPS_SHARED_DIR, files[i][1]);
        put_file("fuzz_config", files[i][0], src);
    }
    put("fuzz_config", "min.json", "{\"sample_size\": 8, \"block_out_channels\": [32, 64]}", 50);
}

static void tokenizer(void) {
    char dir[] = "/tmp/ddps-seeds-XXXXXX";
    if (!mkdtemp(dir)) return;
    const char *words[] = {"an", "image", "of", "tench", "dog", "caf\xc3\xa9"};
    int vs;
    ddps_err err;
    if (ddps_tokenizer_write_small(dir, words, 6, &vs, &err) == 0) {
        char vp[128], mp[128];
        snprintf(vp, sizeof vp, "%s/vocab.json", dir);
        snprintf(mp, sizeof mp, "%s/merges.txt", dir);
        char *v, *m;
        size_t vl, ml;
        if (ddps_read_file(vp, 1 << 20, &v, &vl, &err) == 0 && ddps_read_file(mp, 1 << 20, &m, &ml, &err) == 0) {
            const char *text = "An image of tench, CAF\xc3\x89 dog's 12   !";
            size_t tl = strlen(text);
            char *s = malloc(vl + ml + tl + 32);
            size_t n = 0;
            memcpy(s + n, v, vl), n += vl;
            memcpy(s + n, "\n==merges==\n", 12), n += 12;
            memcpy(s + n, m, ml), n += ml;
            memcpy(s + n, "\n==text==\n", 10), n += 10;
            memcpy(s + n, text, tl), n += tl;
            put("fuzz_tokenizer", "small", s, n);
            free(s);
            free(v);
            free(m);
        }
        unlink(vp);
        unlink(mp);
    }
    rmdir(dir);
}

static void class_names(void) {
    const char *loc = "n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n";
    const char *tsv = "wnid\tprompt_name\nn01440764\ttench\nn01443537\tgoldfish\n";
    const char *pairs = "tench\ta fish\ntwo words\tsomething else\n";
    put("fuzz_class_names", "loc.txt", loc, strlen(loc));
    put("fuzz_class_names", "wnid.tsv", tsv, strlen(tsv));
    put("fuzz_class_names", "pairs.tsv", pairs, strlen(pairs));
}

static void store(void) {
    char dir[] = "/tmp/ddps-seeds-XXXXXX";
    if (!mkdtemp(dir)) return;
    char path[128];
    snprintf(path, sizeof path, "%s/s.sqlite", dir);
    ddps_store *s;
    ddps_err err;
    if (ddps_store_open(path, 0, &s, &err) != 0) return;
    int rc = ddps_store_bind(s, "{\"low_res\": false, \"clusters\": 2, \"seed\": 1, \"patch\": 8}", "seed-model", &err);
    if (rc == 0) rc = ddps_store_set_meta(s, "data_root", "/data", &err);
    int cid = 0;
    if (rc == 0) rc = ddps_store_class_id(s, "tench", "tench", "An image of tench.", &cid, &err);
    float feat[3][4] = {{1, 0, 0, 0}, {0, 1, 0, 0}, {0.6f, 0.8f, 0, 0}};
    for (int i = 0; rc == 0 && i < 3; i++) {
        char rel[32];
        snprintf(rel, sizeof rel, "tench/%d.png", i);
        ddps_candidate c = {{1.5, 2, 10, 11, 0, 0, 8, 8, 0.25f * (float)i}, feat[i]};
        ddps_image_result r = {cid, rel, 12, 12, 12, 12, 0.5f, 1, &c, 4, 0.1};
        rc = ddps_store_put_image(s, &r, &err);
    }
    if (rc == 0) rc = ddps_store_put_bad(s, cid, "tench/bad.jpg", "tench/bad.jpg: not an image", &err);
    if (rc == 0) rc = ddps_store_cluster(s, cid, 2, 1, &err);
    ddps_run_stats run = {"score", 1.0, 3, 1, 30, 6, 2};
    if (rc == 0) rc = ddps_store_add_run(s, &run, &err);
    ddps_store_close(s);
    if (rc == 0) put_file("fuzz_store", "small.sqlite", path);
    else fprintf(stderr, "store seed: %s\n", err.msg);
    unlink(path);
    rmdir(dir);
}

static void options(void) {
    static const char a[] = "--data\0d\0--model\0m\0--store\0s.db\0--timesteps\0100,400,700\0--t-range\0""0.1,0.7";
    static const char b[] = "--ipc\0""1,10,50\0--classes\0a,b\0--format=jpg\0--output-size\0""224\0--mosaic-max-ipc=3";
    static const char c[] = "--seed\0""18446744073709551615\0--size\0""256\0--low-res\0--classes\0n01,n02\0--help";
    put("fuzz_options", "score", a, sizeof a - 1);
    put("fuzz_options", "select", b, sizeof b - 1);
    put("fuzz_options", "misc", c, sizeof c - 1);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds OUT\n");
        return 2;
    }
    g_out = argv[1];
    images();
    safetensors();
    configs();
    tokenizer();
    class_names();
    store();
    options();
    return 0;
}
