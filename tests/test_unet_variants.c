/* UNet configurations beyond the golden model: linear projections in the
 * transformers (SD v2 style), per-block head counts, other block counts,
 * downsample padding 0, and config parsing of those forms. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/sd.h"
#include "testlib.h"
#include "util/rng.h"

static ddps_backend *be;

static void small_unet(ddps_unet_config *u) {
    ddps_sd15_unet_config(u);
    int ch[4] = {32, 64, 64, 64};
    for (int i = 0; i < 4; i++) u->block_out_channels[i] = ch[i], u->heads[i] = 4;
    u->cross_attention_dim = 24;
    u->norm_num_groups = 8;
    u->time_embed_dim = 128;
}

/* eps of a randomly initialised UNet (weights from the seed and tensor names). */
static float *run_unet(const ddps_unet_config *u, int n, int h, int w, uint64_t seed) {
    ddps_wsrc ws;
    ddps_ws_init_random(&ws, be, seed);
    ddps_unet *m = NULL;
    ddps_err err;
    int rc = ddps_unet_build(&ws, u, &m, &err);
    ddps_ws_free(&ws);
    CHECKF(rc == 0, "%s", err.msg);
    if (rc) return NULL;
    ddps_rng r;
    ddps_rng_seed(&r, 5);
    size_t mark = ddps_mark(be);
    ddps_tensor x = ddps_new(be, n, h, w, u->in_channels), c = ddps_new(be, n, 1, 77, u->cross_attention_dim),
                e = ddps_new(be, n, h, w, u->out_channels);
    float *hx = malloc(ddps_numel(&x) * sizeof(float)), *hc = malloc(ddps_numel(&c) * sizeof(float));
    ddps_rng_fill_normal(&r, hx, ddps_numel(&x));
    ddps_rng_fill_normal(&r, hc, ddps_numel(&c));
    be->ops->write(be, &x, hx);
    be->ops->write(be, &c, hc);
    float ts[8] = {10, 500, 999, 250, 1, 700, 300, 900};
    ddps_unet_forward(be, m, &x, ts, &c, &e, NULL);
    float *out = malloc(ddps_numel(&e) * sizeof(float));
    be->ops->read(be, out, &e);
    ddps_release(be, mark);
    ddps_unet_free(be, m);
    free(hx);
    free(hc);
    return out;
}

static int finite_nonzero(const float *p, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(p[i])) return 0;
        s += fabs(p[i]);
    }
    return s > 0;
}

static void linear_projection(void) {
    /* proj_in/proj_out as [C,C] linears or [C,C,1,1] convolutions hold the same
     * numbers (random values depend on name and size only): same result. */
    ddps_unet_config a, b;
    small_unet(&a);
    b = a;
    b.use_linear_projection = 1;
    float *ea = run_unet(&a, 2, 8, 6, 3), *eb = run_unet(&b, 2, 8, 6, 3);
    CHECK(ea && eb && memcmp(ea, eb, 2 * 8 * 6 * 4 * sizeof(float)) == 0);
    CHECK(ea && finite_nonzero(ea, 2 * 8 * 6 * 4));
    free(ea);
    free(eb);
    /* and the declared tensors differ exactly in those shapes */
    ddps_wsrc da, db;
    ddps_err err;
    CHECK(ddps_sd_declare("unet", &a, &da, &err) == 0 && ddps_sd_declare("unet", &b, &db, &err) == 0);
    int differ = 0;
    CHECK(da.n == db.n);
    for (int i = 0; i < da.n && i < db.n; i++) {
        CHECK(strcmp(da.list[i].name, db.list[i].name) == 0);
        if (da.list[i].ndim != db.list[i].ndim) {
            differ++;
            CHECK(strstr(da.list[i].name, "proj_in.weight") || strstr(da.list[i].name, "proj_out.weight"));
        }
    }
    CHECK(differ == 2 * 16); /* 16 transformers in SD v1 */
    ddps_ws_free(&da);
    ddps_ws_free(&db);
}

static void heads_and_blocks(void) {
    ddps_unet_config u;
    small_unet(&u);
    int heads[4] = {1, 2, 4, 8};
    for (int i = 0; i < 4; i++) u.heads[i] = heads[i];
    float *e = run_unet(&u, 1, 8, 8, 4);
    CHECK(e && finite_nonzero(e, 8 * 8 * 4));
    free(e);
    /* three blocks, the last one plain; odd latent size */
    ddps_unet_config t;
    small_unet(&t);
    t.n_blocks = 3;
    t.down_cross[2] = 0;
    t.up_cross[0] = 0;
    t.up_cross[1] = t.up_cross[2] = 1;
    e = run_unet(&t, 3, 7, 5, 5);
    CHECK(e && finite_nonzero(e, 3 * 7 * 5 * 4));
    free(e);
    /* downsample_padding 0: diffusers pads (0,1,0,1) */
    ddps_unet_config z;
    small_unet(&z);
    z.downsample_padding = 0;
    e = run_unet(&z, 1, 9, 8, 6);
    CHECK(e && finite_nonzero(e, 9 * 8 * 4));
    free(e);
}

static void config_forms(void) {
    ddps_err err;
    ddps_unet_config c;
    json_error_t je;
    /* SD 2.x style: per-block head list, linear projection, 1024-wide context */
    json_t *o = json_loads(
        "{\"block_out_channels\":[320,640,1280,1280],\"attention_head_dim\":[5,10,20,20],"
        "\"use_linear_projection\":true,\"cross_attention_dim\":1024,"
        "\"down_block_types\":[\"CrossAttnDownBlock2D\",\"CrossAttnDownBlock2D\",\"CrossAttnDownBlock2D\",\"DownBlock2D\"],"
        "\"up_block_types\":[\"UpBlock2D\",\"CrossAttnUpBlock2D\",\"CrossAttnUpBlock2D\",\"CrossAttnUpBlock2D\"]}",
        0, &je);
    CHECK(o && ddps_unet_config_parse("x.json", o, &c, &err) == 0);
    CHECK(c.heads[0] == 5 && c.heads[3] == 20 && c.use_linear_projection && c.cross_attention_dim == 1024);
    json_decref(o);
    /* num_attention_heads wins over attention_head_dim */
    o = json_loads("{\"block_out_channels\":[32,64],\"num_attention_heads\":2,\"attention_head_dim\":8,"
                   "\"down_block_types\":[\"CrossAttnDownBlock2D\",\"DownBlock2D\"],"
                   "\"up_block_types\":[\"UpBlock2D\",\"CrossAttnUpBlock2D\"],\"norm_num_groups\":8}",
                   0, &je);
    CHECK(o && ddps_unet_config_parse("x.json", o, &c, &err) == 0 && c.heads[0] == 2 && c.heads[1] == 2);
    json_decref(o);
    /* a head count that does not divide the channels */
    o = json_loads("{\"block_out_channels\":[30,60],\"attention_head_dim\":7,\"norm_num_groups\":3,"
                   "\"down_block_types\":[\"CrossAttnDownBlock2D\",\"DownBlock2D\"],"
                   "\"up_block_types\":[\"UpBlock2D\",\"CrossAttnUpBlock2D\"]}",
                   0, &je);
    CHECK(o && ddps_unet_config_parse("x.json", o, &c, &err) != 0 && strstr(err.msg, "heads"));
    json_decref(o);
}

int main(void) {
    ddps_err err;
    be = ddps_cpu_backend_new(DDPS_PREC_F32, 0, &err);
    if (!be) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    TEST(linear_projection);
    TEST(heads_and_blocks);
    TEST(config_forms);
    ddps_backend_free(be);
    return t_done();
}
