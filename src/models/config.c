#include "models/config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/fs.h"

/* Integer key: absent/null -> dflt (or an error when required). */
static int get_int(const char *path, json_t *o, const char *key, int dflt, int required, int lo, int hi, int *out,
                   ddps_err *err) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (required) return ddps_fail_data(err, "%s: missing \"%s\"", path, key);
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v)) return ddps_fail_data(err, "%s: \"%s\" must be an integer", path, key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi) return ddps_fail_data(err, "%s: \"%s\" = %lld is outside %d..%d", path, key, (long long)x, lo, hi);
    *out = (int)x;
    return 0;
}

static int get_num(const char *path, json_t *o, const char *key, double dflt, int required, double lo, double hi,
                   float *out, ddps_err *err) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (required) return ddps_fail_data(err, "%s: missing \"%s\"", path, key);
        *out = (float)dflt;
        return 0;
    }
    if (!json_is_number(v)) return ddps_fail_data(err, "%s: \"%s\" must be a number", path, key);
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi)) return ddps_fail_data(err, "%s: \"%s\" = %g is outside %g..%g", path, key, x, lo, hi);
    *out = (float)x;
    return 0;
}

static int get_bool(const char *path, json_t *o, const char *key, int dflt, int *out, ddps_err *err) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v)) return ddps_fail_data(err, "%s: \"%s\" must be true or false", path, key);
    *out = json_is_true(v);
    return 0;
}

static const char *get_str(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Keys that, when set, would change the architecture beyond SD v1/v2. */
static int refuse_if_set(const char *path, json_t *o, const char *key, ddps_err *err) {
    json_t *v = json_object_get(o, key);
    if (v && !json_is_null(v) && !json_is_false(v))
        return ddps_fail_data(err, "%s: \"%s\" is set: not supported (ddps runs the Stable Diffusion v1.x/v2.x UNet)",
                         path, key);
    return 0;
}

static int refuse_unless(const char *path, json_t *o, const char *key, const char *allowed, ddps_err *err) {
    const char *s = get_str(o, key);
    if (s && strcmp(s, allowed) != 0)
        return ddps_fail_data(err, "%s: \"%s\" = \"%s\" is not supported (expected \"%s\")", path, key, s, allowed);
    return 0;
}

static int get_int_list(const char *path, json_t *o, const char *key, int *out, int *n, int lo, int hi, ddps_err *err) {
    json_t *v = json_object_get(o, key);
    if (!json_is_array(v) || json_array_size(v) < 1 || json_array_size(v) > DDPS_MAX_BLOCKS)
        return ddps_fail_data(err, "%s: \"%s\" must be a list of 1..%d integers", path, key, DDPS_MAX_BLOCKS);
    *n = (int)json_array_size(v);
    for (int i = 0; i < *n; i++) {
        json_t *e = json_array_get(v, (size_t)i);
        if (!json_is_integer(e) || json_integer_value(e) < lo || json_integer_value(e) > hi)
            return ddps_fail_data(err, "%s: \"%s\"[%d] must be an integer in %d..%d", path, key, i, lo, hi);
        out[i] = (int)json_integer_value(e);
    }
    return 0;
}

int ddps_unet_config_parse(const char *path, json_t *o, ddps_unet_config *c, ddps_err *err) {
    memset(c, 0, sizeof *c);
    int n;
    if (get_int(path, o, "in_channels", 4, 0, 1, 64, &c->in_channels, err) ||
        get_int(path, o, "out_channels", 4, 0, 1, 64, &c->out_channels, err) ||
        get_int_list(path, o, "block_out_channels", c->block_out_channels, &c->n_blocks, 1, 8192, err) ||
        get_int(path, o, "layers_per_block", 2, 0, 1, 8, &c->layers_per_block, err) ||
        get_int(path, o, "cross_attention_dim", 768, 0, 1, 8192, &c->cross_attention_dim, err) ||
        get_int(path, o, "norm_num_groups", 32, 0, 1, 1024, &c->norm_num_groups, err) ||
        get_num(path, o, "norm_eps", 1e-5, 0, 0, 1, &c->norm_eps, err) ||
        get_bool(path, o, "flip_sin_to_cos", 1, &c->flip_sin_to_cos, err) ||
        get_num(path, o, "freq_shift", 0, 0, -1e6, 1e6, &c->freq_shift, err) ||
        get_bool(path, o, "use_linear_projection", 0, &c->use_linear_projection, err) ||
        get_bool(path, o, "upcast_attention", 0, &c->upcast_attention, err) ||
        get_int(path, o, "downsample_padding", 1, 0, 0, 4, &c->downsample_padding, err))
        return -1;
    static const char *unsupported[] = {"class_embed_type", "addition_embed_type", "time_cond_proj_dim",
                                        "encoder_hid_dim", "encoder_hid_dim_type", "dual_cross_attention",
                                        "only_cross_attention", "num_class_embeds", "class_embeddings_concat",
                                        "mid_block_only_cross_attention", "time_embedding_dim",
                                        "time_embedding_act_fn", "timestep_post_act", "cross_attention_norm",
                                        "reverse_transformer_layers_per_block"};
    for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++)
        if (refuse_if_set(path, o, unsupported[i], err)) return -1;
    if (refuse_unless(path, o, "act_fn", "silu", err) || refuse_unless(path, o, "resnet_time_scale_shift", "default", err) ||
        refuse_unless(path, o, "time_embedding_type", "positional", err) ||
        refuse_unless(path, o, "mid_block_type", "UNetMidBlock2DCrossAttn", err) ||
        refuse_unless(path, o, "attention_type", "default", err))
        return -1;
    int k;
    if (get_int(path, o, "conv_in_kernel", 3, 0, 3, 3, &k, err) || get_int(path, o, "conv_out_kernel", 3, 0, 3, 3, &k, err))
        return -1;
    json_t *tl = json_object_get(o, "transformer_layers_per_block");
    if (tl && !json_is_null(tl) && !(json_is_integer(tl) && json_integer_value(tl) == 1))
        return ddps_fail_data(err, "%s: \"transformer_layers_per_block\" other than 1 is not supported", path);
    float f;
    if (get_num(path, o, "mid_block_scale_factor", 1, 0, 1, 1, &f, err) ||
        get_num(path, o, "resnet_out_scale_factor", 1, 0, 1, 1, &f, err))
        return -1;
    json_t *down = json_object_get(o, "down_block_types"), *up = json_object_get(o, "up_block_types");
    if (!json_is_array(down) || (int)json_array_size(down) != c->n_blocks || !json_is_array(up) ||
        (int)json_array_size(up) != c->n_blocks)
        return ddps_fail_data(err, "%s: \"down_block_types\" and \"up_block_types\" must list %d blocks", path, c->n_blocks);
    for (int i = 0; i < c->n_blocks; i++) {
        const char *d = json_string_value(json_array_get(down, (size_t)i)), *u = json_string_value(json_array_get(up, (size_t)i));
        if (!d || (strcmp(d, "CrossAttnDownBlock2D") && strcmp(d, "DownBlock2D")))
            return ddps_fail_data(err, "%s: down block type \"%s\" is not supported", path, d ? d : "?");
        if (!u || (strcmp(u, "CrossAttnUpBlock2D") && strcmp(u, "UpBlock2D")))
            return ddps_fail_data(err, "%s: up block type \"%s\" is not supported", path, u ? u : "?");
        c->down_cross[i] = strcmp(d, "CrossAttnDownBlock2D") == 0;
        c->up_cross[i] = strcmp(u, "CrossAttnUpBlock2D") == 0;
    }
    /* Heads: num_attention_heads if given, else attention_head_dim (which SD
     * v1.x configs use to mean the number of heads); an int or a list. */
    json_t *h = json_object_get(o, "num_attention_heads");
    const char *hkey = "num_attention_heads";
    if (!h || json_is_null(h)) {
        h = json_object_get(o, "attention_head_dim");
        hkey = "attention_head_dim";
    }
    if (!h || json_is_null(h)) {
        for (int i = 0; i < c->n_blocks; i++) c->heads[i] = 8;
    } else if (json_is_integer(h)) {
        for (int i = 0; i < c->n_blocks; i++) c->heads[i] = (int)json_integer_value(h);
    } else {
        if (get_int_list(path, o, hkey, c->heads, &n, 1, 4096, err)) return -1;
        if (n != c->n_blocks) return ddps_fail_data(err, "%s: \"%s\" must have %d entries", path, hkey, c->n_blocks);
    }
    for (int i = 0; i < c->n_blocks; i++) {
        if (c->heads[i] < 1 || c->block_out_channels[i] % c->heads[i])
            return ddps_fail_data(err, "%s: %d channels cannot be split into %d attention heads", path,
                             c->block_out_channels[i], c->heads[i]);
        if (c->block_out_channels[i] % c->norm_num_groups)
            return ddps_fail_data(err, "%s: %d channels cannot be split into %d norm groups", path, c->block_out_channels[i],
                             c->norm_num_groups);
    }
    c->time_embed_dim = 4 * c->block_out_channels[0];
    return 0;
}

int ddps_vae_config_parse(const char *path, json_t *o, ddps_vae_config *c, ddps_err *err) {
    memset(c, 0, sizeof *c);
    if (get_int(path, o, "in_channels", 3, 0, 1, 64, &c->in_channels, err) ||
        get_int(path, o, "out_channels", 3, 0, 1, 64, &c->out_channels, err) ||
        get_int(path, o, "latent_channels", 4, 0, 1, 64, &c->latent_channels, err) ||
        get_int_list(path, o, "block_out_channels", c->block_out_channels, &c->n_blocks, 1, 8192, err) ||
        get_int(path, o, "layers_per_block", 2, 0, 1, 8, &c->layers_per_block, err) ||
        get_int(path, o, "norm_num_groups", 32, 0, 1, 1024, &c->norm_num_groups, err) ||
        get_bool(path, o, "use_quant_conv", 1, &c->use_quant_conv, err) ||
        get_bool(path, o, "use_post_quant_conv", 1, &c->use_post_quant_conv, err) ||
        get_bool(path, o, "mid_block_add_attention", 1, &c->mid_block_add_attention, err) ||
        get_num(path, o, "scaling_factor", 0.18215, 0, 1e-6, 1e6, &c->scaling_factor, err) ||
        get_num(path, o, "shift_factor", 0, 0, -1e6, 1e6, &c->shift_factor, err))
        return -1;
    if (refuse_unless(path, o, "act_fn", "silu", err)) return -1;
    if (!c->use_quant_conv) return ddps_fail_data(err, "%s: \"use_quant_conv\" false is not supported", path);
    json_t *down = json_object_get(o, "down_block_types");
    if (down && (!json_is_array(down) || (int)json_array_size(down) != c->n_blocks))
        return ddps_fail_data(err, "%s: \"down_block_types\" must list %d blocks", path, c->n_blocks);
    for (int i = 0; down && i < c->n_blocks; i++) {
        const char *d = json_string_value(json_array_get(down, (size_t)i));
        if (!d || strcmp(d, "DownEncoderBlock2D"))
            return ddps_fail_data(err, "%s: down block type \"%s\" is not supported", path, d ? d : "?");
    }
    for (int i = 0; i < c->n_blocks; i++)
        if (c->block_out_channels[i] % c->norm_num_groups)
            return ddps_fail_data(err, "%s: %d channels cannot be split into %d norm groups", path, c->block_out_channels[i],
                             c->norm_num_groups);
    return 0;
}

int ddps_clip_config_parse(const char *path, json_t *o, ddps_clip_config *c, ddps_err *err) {
    memset(c, 0, sizeof *c);
    /* A full CLIPConfig nests the text part under "text_config". */
    json_t *tc = json_object_get(o, "text_config");
    if (json_is_object(tc)) o = tc;
    if (get_int(path, o, "vocab_size", 49408, 0, 1, 1 << 24, &c->vocab_size, err) ||
        get_int(path, o, "hidden_size", 512, 0, 1, 65536, &c->hidden_size, err) ||
        get_int(path, o, "intermediate_size", 2048, 0, 1, 1 << 20, &c->intermediate_size, err) ||
        get_int(path, o, "num_hidden_layers", 12, 0, 1, 256, &c->num_hidden_layers, err) ||
        get_int(path, o, "num_attention_heads", 8, 0, 1, 1024, &c->num_attention_heads, err) ||
        get_int(path, o, "max_position_embeddings", 77, 0, 77, 1 << 16, &c->max_position_embeddings, err) ||
        get_num(path, o, "layer_norm_eps", 1e-5, 0, 0, 1, &c->layer_norm_eps, err))
        return -1;
    const char *act = get_str(o, "hidden_act");
    if (!act || strcmp(act, "quick_gelu") == 0)
        c->quick_gelu = 1;
    else if (strcmp(act, "gelu") == 0)
        c->quick_gelu = 0;
    else
        return ddps_fail_data(err, "%s: \"hidden_act\" = \"%s\" is not supported (quick_gelu or gelu)", path, act);
    if (c->hidden_size % c->num_attention_heads)
        return ddps_fail_data(err, "%s: hidden_size %d cannot be split into %d heads", path, c->hidden_size,
                         c->num_attention_heads);
    return 0;
}

int ddps_sched_config_parse(const char *path, json_t *o, ddps_sched_config *c, ddps_err *err) {
    memset(c, 0, sizeof *c);
    if (get_int(path, o, "num_train_timesteps", 1000, 0, 2, 100000, &c->num_train_timesteps, err) ||
        get_num(path, o, "beta_start", 0.0001, 0, 0, 1, &c->beta_start, err) ||
        get_num(path, o, "beta_end", 0.02, 0, 0, 1, &c->beta_end, err))
        return -1;
    const char *s = get_str(o, "beta_schedule");
    if (!s || strcmp(s, "linear") == 0)
        c->scaled_linear = 0;
    else if (strcmp(s, "scaled_linear") == 0)
        c->scaled_linear = 1;
    else
        return ddps_fail_data(err, "%s: \"beta_schedule\" = \"%s\" is not supported (linear or scaled_linear)", path, s);
    const char *pt = get_str(o, "prediction_type");
    if (!pt || strcmp(pt, "epsilon") == 0)
        c->v_prediction = 0;
    else if (strcmp(pt, "v_prediction") == 0)
        c->v_prediction = 1;
    else
        return ddps_fail_data(err, "%s: \"prediction_type\" = \"%s\" is not supported (epsilon or v_prediction)", path, pt);
    if (refuse_if_set(path, o, "trained_betas", err) ||
        refuse_if_set(path, o, "rescale_betas_zero_snr", err))
        return -1;
    if (!(c->beta_end > c->beta_start)) return ddps_fail_data(err, "%s: beta_end must exceed beta_start", path);
    return 0;
}

void ddps_sd15_unet_config(ddps_unet_config *c) {
    memset(c, 0, sizeof *c);
    c->in_channels = c->out_channels = 4;
    c->n_blocks = 4;
    int ch[4] = {320, 640, 1280, 1280};
    for (int i = 0; i < 4; i++) {
        c->block_out_channels[i] = ch[i];
        c->heads[i] = 8;
        c->down_cross[i] = i < 3;
        c->up_cross[i] = i > 0;
    }
    c->layers_per_block = 2;
    c->cross_attention_dim = 768;
    c->norm_num_groups = 32;
    c->norm_eps = 1e-5f;
    c->flip_sin_to_cos = 1;
    c->freq_shift = 0;
    c->downsample_padding = 1;
    c->time_embed_dim = 1280;
}

void ddps_sd15_vae_config(ddps_vae_config *c) {
    memset(c, 0, sizeof *c);
    c->in_channels = c->out_channels = 3;
    c->latent_channels = 4;
    c->n_blocks = 4;
    int ch[4] = {128, 256, 512, 512};
    for (int i = 0; i < 4; i++) c->block_out_channels[i] = ch[i];
    c->layers_per_block = 2;
    c->norm_num_groups = 32;
    c->use_quant_conv = c->use_post_quant_conv = 1;
    c->mid_block_add_attention = 1;
    c->scaling_factor = 0.18215f;
}

void ddps_sd15_clip_config(ddps_clip_config *c) {
    memset(c, 0, sizeof *c);
    c->vocab_size = 49408;
    c->hidden_size = 768;
    c->intermediate_size = 3072;
    c->num_hidden_layers = 12;
    c->num_attention_heads = 12;
    c->max_position_embeddings = 77;
    c->quick_gelu = 1;
    c->layer_norm_eps = 1e-5f;
}

void ddps_sd21_unet_config(ddps_unet_config *c) {
    ddps_sd15_unet_config(c);
    static const int heads[4] = {5, 10, 20, 20}; /* head width 64 everywhere */
    for (int i = 0; i < 4; i++) c->heads[i] = heads[i];
    c->cross_attention_dim = 1024;
    c->use_linear_projection = 1;
    c->upcast_attention = 1;
}

void ddps_sd21_clip_config(ddps_clip_config *c) {
    ddps_sd15_clip_config(c);
    c->hidden_size = 1024;
    c->intermediate_size = 4096;
    c->num_hidden_layers = 23; /* OpenCLIP ViT-H/14's 24, less the last (SD 2.x uses the penultimate) */
    c->num_attention_heads = 16;
    c->quick_gelu = 0;
}

static json_t *int_list(const int *v, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_integer(v[i]));
    return a;
}

static char *dump(json_t *o) {
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

char *ddps_unet_config_json(const ddps_unet_config *c) {
    json_t *o = json_object(), *down = json_array(), *up = json_array();
    for (int i = 0; i < c->n_blocks; i++) {
        json_array_append_new(down, json_string(c->down_cross[i] ? "CrossAttnDownBlock2D" : "DownBlock2D"));
        json_array_append_new(up, json_string(c->up_cross[i] ? "CrossAttnUpBlock2D" : "UpBlock2D"));
    }
    json_object_set_new(o, "_class_name", json_string("UNet2DConditionModel"));
    json_object_set_new(o, "in_channels", json_integer(c->in_channels));
    json_object_set_new(o, "out_channels", json_integer(c->out_channels));
    json_object_set_new(o, "block_out_channels", int_list(c->block_out_channels, c->n_blocks));
    json_object_set_new(o, "down_block_types", down);
    json_object_set_new(o, "up_block_types", up);
    json_object_set_new(o, "mid_block_type", json_string("UNetMidBlock2DCrossAttn"));
    json_object_set_new(o, "attention_head_dim", int_list(c->heads, c->n_blocks));
    json_object_set_new(o, "layers_per_block", json_integer(c->layers_per_block));
    json_object_set_new(o, "cross_attention_dim", json_integer(c->cross_attention_dim));
    json_object_set_new(o, "norm_num_groups", json_integer(c->norm_num_groups));
    json_object_set_new(o, "norm_eps", json_real(c->norm_eps));
    json_object_set_new(o, "flip_sin_to_cos", json_boolean(c->flip_sin_to_cos));
    json_object_set_new(o, "freq_shift", json_integer((json_int_t)c->freq_shift));
    json_object_set_new(o, "use_linear_projection", json_boolean(c->use_linear_projection));
    json_object_set_new(o, "upcast_attention", json_boolean(c->upcast_attention));
    json_object_set_new(o, "downsample_padding", json_integer(c->downsample_padding));
    json_object_set_new(o, "act_fn", json_string("silu"));
    return dump(o);
}

char *ddps_vae_config_json(const ddps_vae_config *c) {
    json_t *o = json_object(), *down = json_array(), *up = json_array();
    for (int i = 0; i < c->n_blocks; i++) {
        json_array_append_new(down, json_string("DownEncoderBlock2D"));
        json_array_append_new(up, json_string("UpDecoderBlock2D"));
    }
    json_object_set_new(o, "_class_name", json_string("AutoencoderKL"));
    json_object_set_new(o, "in_channels", json_integer(c->in_channels));
    json_object_set_new(o, "out_channels", json_integer(c->out_channels));
    json_object_set_new(o, "latent_channels", json_integer(c->latent_channels));
    json_object_set_new(o, "block_out_channels", int_list(c->block_out_channels, c->n_blocks));
    json_object_set_new(o, "down_block_types", down);
    json_object_set_new(o, "up_block_types", up);
    json_object_set_new(o, "layers_per_block", json_integer(c->layers_per_block));
    json_object_set_new(o, "norm_num_groups", json_integer(c->norm_num_groups));
    json_object_set_new(o, "act_fn", json_string("silu"));
    json_object_set_new(o, "scaling_factor", json_real(c->scaling_factor));
    return dump(o);
}

char *ddps_clip_config_json(const ddps_clip_config *c) {
    json_t *o = json_object();
    json_object_set_new(o, "architectures", json_pack("[s]", "CLIPTextModel"));
    json_object_set_new(o, "model_type", json_string("clip_text_model"));
    json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(o, "hidden_size", json_integer(c->hidden_size));
    json_object_set_new(o, "intermediate_size", json_integer(c->intermediate_size));
    json_object_set_new(o, "num_hidden_layers", json_integer(c->num_hidden_layers));
    json_object_set_new(o, "num_attention_heads", json_integer(c->num_attention_heads));
    json_object_set_new(o, "max_position_embeddings", json_integer(c->max_position_embeddings));
    json_object_set_new(o, "hidden_act", json_string(c->quick_gelu ? "quick_gelu" : "gelu"));
    json_object_set_new(o, "layer_norm_eps", json_real(c->layer_norm_eps));
    return dump(o);
}

char *ddps_sched_config_json(const ddps_sched_config *c) {
    json_t *o = json_object();
    json_object_set_new(o, "_class_name", json_string("DDPMScheduler"));
    json_object_set_new(o, "num_train_timesteps", json_integer(c->num_train_timesteps));
    json_object_set_new(o, "beta_start", json_real(c->beta_start));
    json_object_set_new(o, "beta_end", json_real(c->beta_end));
    json_object_set_new(o, "beta_schedule", json_string(c->scaled_linear ? "scaled_linear" : "linear"));
    json_object_set_new(o, "prediction_type", json_string(c->v_prediction ? "v_prediction" : "epsilon"));
    return dump(o);
}
