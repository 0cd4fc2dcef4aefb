/* Student models (train/model.h): parameters, initialisation, safetensors
 * in and out, and the forward and backward of ResNet-18 and ConvNet-D. */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "models/hf_cache.h"
#include "train/model.h"
#include "util/fs.h"
#include "util/rng.h"

/* ---------- parameters ---------- */

static tr_param *add(tr_model *m, int buffer, int ndim, const int *shape, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static tr_param *add(tr_model *m, int buffer, int ndim, const int *shape, const char *fmt, ...) {
    tr_param *p = &m->p[m->np++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->name, sizeof p->name, fmt, ap);
    va_end(ap);
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) p->numel *= (size_t)(p->shape[i] = shape[i]);
    p->buffer = buffer;
    p->data = ddps_calloc(p->numel, sizeof(float));
    if (!buffer) p->grad = ddps_calloc(p->numel, sizeof(float));
    return p;
}

/* PyTorch's default initialisation: U(+-1/sqrt(fan_in)) for weights (kaiming_uniform_ with a = sqrt(5))
 * and biases of convolutions and linears; torchvision's ResNet overrides its convolutions with
 * kaiming_normal_(mode="fan_out", nonlinearity="relu"). Norms: weight 1, bias 0. */
static void init_uniform(ddps_rng *r, tr_param *p, int fan_in) {
    double b = 1.0 / sqrt((double)fan_in);
    for (size_t k = 0; k < p->numel; k++) p->data[k] = (float)((2 * ddps_rng_uniform(r) - 1) * b);
}

static void conv_make(tr_model *m, ddps_rng *r, tr_conv *l, int in, int out, int k, int stride, int pad, int bias,
                      const char *name) {
    *l = (tr_conv){in, out, k, stride, pad, add(m, 0, 4, (int[]){out, in, k, k}, "%s.weight", name), NULL};
    if (m->arch == TR_CONVNET) {
        init_uniform(r, l->w, in * k * k);
    } else {
        double sd = sqrt(2.0 / (out * k * k));
        for (size_t i = 0; i < l->w->numel; i++) l->w->data[i] = (float)(ddps_rng_normal(r) * sd);
    }
    if (bias) init_uniform(r, l->b = add(m, 0, 1, (int[]){out}, "%s.bias", name), in * k * k);
}

static void linear_make(tr_model *m, ddps_rng *r, int in, const char *name) {
    m->fc = (tr_linear){in, m->classes, add(m, 0, 2, (int[]){m->classes, in}, "%s.weight", name),
                        add(m, 0, 1, (int[]){m->classes}, "%s.bias", name)};
    init_uniform(r, m->fc.w, in);
    init_uniform(r, m->fc.b, in);
}

static void bn_make(tr_model *m, tr_bn *l, int c, const char *name) {
    int s[1] = {c};
    l->c = c;
    l->eps = 1e-5f;
    l->momentum = 0.1f;
    l->weight = add(m, 0, 1, s, "%s.weight", name);
    l->bias = add(m, 0, 1, s, "%s.bias", name);
    l->running_mean = add(m, 1, 1, s, "%s.running_mean", name);
    l->running_var = add(m, 1, 1, s, "%s.running_var", name);
    l->num_batches = add(m, 2, 0, s, "%s.num_batches_tracked", name);
    for (int i = 0; i < c; i++) l->weight->data[i] = l->running_var->data[i] = 1;
}

static void resnet_make(tr_model *m, ddps_rng *r) {
    int mod = m->arch == TR_RESNET18_MOD;
    conv_make(m, r, &m->conv1, 3, 64, mod ? 3 : 7, mod ? 1 : 2, mod ? 1 : 3, 0, "conv1");
    bn_make(m, &m->bn1, 64, "bn1");
    int in = 64;
    for (int L = 0; L < 4; L++)
        for (int j = 0; j < 2; j++) {
            tr_block *b = &m->blk[2 * L + j];
            int planes = 64 << L, stride = (L > 0 && j == 0) ? 2 : 1;
            char nm[64];
            snprintf(nm, sizeof nm, "layer%d.%d.conv1", L + 1, j);
            conv_make(m, r, &b->conv1, in, planes, 3, stride, 1, 0, nm);
            snprintf(nm, sizeof nm, "layer%d.%d.bn1", L + 1, j);
            bn_make(m, &b->bn1, planes, nm);
            snprintf(nm, sizeof nm, "layer%d.%d.conv2", L + 1, j);
            conv_make(m, r, &b->conv2, planes, planes, 3, 1, 1, 0, nm);
            snprintf(nm, sizeof nm, "layer%d.%d.bn2", L + 1, j);
            bn_make(m, &b->bn2, planes, nm);
            b->has_ds = stride != 1 || in != planes;
            if (b->has_ds) {
                snprintf(nm, sizeof nm, "layer%d.%d.downsample.0", L + 1, j);
                conv_make(m, r, &b->ds, in, planes, 1, stride, 0, 0, nm);
                snprintf(nm, sizeof nm, "layer%d.%d.downsample.1", L + 1, j);
                bn_make(m, &b->dsbn, planes, nm);
            }
            in = planes;
        }
    linear_make(m, r, 512, "fc");
}

static void convnet_make(tr_model *m, ddps_rng *r) {
    int in = 3, s = m->size;
    for (int d = 0; d < m->depth; d++) {
        tr_cn_layer *l = &m->cn[d];
        char nm[64];
        snprintf(nm, sizeof nm, "features.%d", 4 * d);
        conv_make(m, r, &l->conv, in, m->width, 3, 1, 1, 1, nm);
        l->nw = add(m, 0, 1, (int[]){m->width}, "features.%d.weight", 4 * d + 1);
        l->nb = add(m, 0, 1, (int[]){m->width}, "features.%d.bias", 4 * d + 1);
        for (int i = 0; i < m->width; i++) l->nw->data[i] = 1;
        in = m->width;
        s /= 2;
    }
    int feat = m->width * s * s;
    linear_make(m, r, feat, "classifier");
}

tr_model *ddps_tr_model_new(const char *arch, int classes, int size, uint64_t seed, ddps_err *err) {
    tr_model *m = ddps_calloc(1, sizeof *m);
    m->classes = classes;
    m->size = size;
    m->width = 128;
    if (strcmp(arch, "resnet18") == 0)
        m->arch = TR_RESNET18;
    else if (strcmp(arch, "resnet18-modified") == 0)
        m->arch = TR_RESNET18_MOD;
    else if (strncmp(arch, "convnet", 7) == 0 && arch[7] >= '1' && arch[7] <= '6' && !arch[8]) {
        m->arch = TR_CONVNET;
        m->depth = arch[7] - '0';
    } else {
        free(m);
        return ddps_fail_usage(err, "unknown model '%s' (resnet18, resnet18-modified, convnet3..convnet6)", arch),
               NULL;
    }
    if (classes < 1 || size < 1 || (m->arch == TR_CONVNET && (size >> m->depth) < 1)) {
        free(m);
        return ddps_fail_usage(err, "%s: %d classes at %d px is not a valid model", arch, classes, size), NULL;
    }
    ddps_rng r;
    ddps_rng_seed(&r, seed);
    if (m->arch == TR_CONVNET)
        convnet_make(m, &r);
    else
        resnet_make(m, &r);
    return m;
}

void ddps_tr_model_free(tr_model *m) {
    if (!m) return;
    for (int i = 0; i < m->np; i++) {
        free(m->p[i].data);
        free(m->p[i].grad);
        free(m->p[i].m);
        free(m->p[i].v);
    }
    free(m);
}

tr_param *ddps_tr_model_find(tr_model *m, const char *name) {
    for (int i = 0; i < m->np; i++)
        if (strcmp(m->p[i].name, name) == 0) return &m->p[i];
    return NULL;
}

/* ---------- safetensors ---------- */

static int load_one(const st_file *f, tr_param *p, ddps_err *err) {
    const st_tensor *t = ddps_st_find(f, p->name);
    if (!t) return ddps_fail_kind(err, DDPS_KIND_DATA, "%s: no tensor '%s'", f->path, p->name);
    if (p->buffer == 2) {
        int64_t v = 0;
        if (t->numel != 1 || ddps_st_to_i64(f, t, 0, INT64_MAX, &v, err)) return ddps_fail_prefix(err, "%s", p->name);
        p->data[0] = (float)v;
        return 0;
    }
    int same = t->ndim == p->ndim && t->numel == p->numel;
    for (int i = 0; same && i < p->ndim; i++) same = t->shape[i] == p->shape[i];
    if (!same)
        return ddps_fail_kind(err, DDPS_KIND_DATA, "%s: '%s' has %zu values, the model wants %zu in %d dims", f->path,
                              p->name, t->numel, p->numel, p->ndim);
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16)
        return ddps_fail_kind(err, DDPS_KIND_DATA, "%s: '%s' is %s, not a float", f->path, p->name,
                              ddps_st_dtype_name(t->dtype));
    if (ddps_st_to_f32(t, p->data) != 0)
        return ddps_fail_kind(err, DDPS_KIND_DATA, "%s: '%s' has non-finite values", f->path, p->name);
    return 0;
}

int ddps_tr_model_load(tr_model *m, const char *path, ddps_err *err) {
    st_file f;
    if (ddps_st_open(&f, path, err)) return -1;
    int rc = 0;
    for (int i = 0; i < m->np && !rc; i++) rc = load_one(&f, &m->p[i], err);
    ddps_st_close(&f);
    return rc;
}

/* The folder's model.safetensors, else its only *.safetensors. */
static char *folder_weights(const char *dir, const char *spec, ddps_err *err) {
    char *path = ddps_path_join(dir, "model.safetensors");
    if (ddps_is_file(path)) return path;
    free(path);
    path = NULL;
    int n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len <= 12 || e->d_name[0] == '.' || strcmp(e->d_name + len - 12, ".safetensors") != 0) continue;
        char *cand = ddps_path_join(dir, e->d_name);
        if (ddps_is_file(cand) && n++ == 0) path = cand;
        else free(cand);
    }
    if (d) closedir(d);
    if (n == 1) return path;
    free(path);
    ddps_fail_kind(err, DDPS_KIND_DATA, "%s: %s", spec,
                   n ? "several .safetensors files and no model.safetensors (name the file)" : "no .safetensors file in it");
    return NULL;
}

char *ddps_tr_weights_path(const char *spec, ddps_err *err) {
    if (!spec || !*spec) {
        ddps_fail_usage(err, "weights: no file, folder or Hugging Face cache id given");
        return NULL;
    }
    if (ddps_is_file(spec)) return ddps_strdup(spec);
    if (ddps_is_dir(spec)) return folder_weights(spec, spec, err);
    if (!ddps_hf_is_repo_id(spec)) {
        ddps_fail_usage(err, "%s: no such file or folder (nor a Hugging Face cache id such as timm/resnet18.tv_in1k)",
                        spec);
        return NULL;
    }
    char *dir = NULL;
    if (ddps_hf_resolve(spec, &dir, err) != 0) return NULL;
    char *path = folder_weights(dir, spec, err);
    free(dir);
    return path;
}

int ddps_tr_model_save(const tr_model *m, const char *path, ddps_err *err) {
    st_out *o = ddps_calloc((size_t)m->np, sizeof *o);
    int64_t *cnt = ddps_calloc((size_t)m->np, sizeof *cnt);
    for (int i = 0; i < m->np; i++) {
        const tr_param *p = &m->p[i];
        o[i].name = p->name;
        o[i].ndim = p->ndim;
        for (int k = 0; k < p->ndim; k++) o[i].shape[k] = p->shape[k];
        o[i].dtype = p->buffer == 2 ? ST_I64 : ST_F32;
        cnt[i] = (int64_t)p->data[0];
        o[i].data = p->buffer == 2 ? (const void *)&cnt[i] : (const void *)p->data;
    }
    int rc = ddps_st_write(path, o, m->np, err);
    free(o);
    free(cnt);
    return rc;
}

int ddps_tr_weights_classes(const char *path, ddps_err *err) {
    st_file f;
    if (ddps_st_open(&f, path, err)) return -1;
    const st_tensor *t = ddps_st_find(&f, "fc.weight");
    if (!t) t = ddps_st_find(&f, "classifier.weight");
    int K = t && t->ndim == 2 && t->shape[0] > 0 && t->shape[0] < (1 << 20) ? (int)t->shape[0] : -1;
    ddps_st_close(&f);
    if (K < 0) ddps_fail_kind(err, DDPS_KIND_DATA, "%s: no fc.weight or classifier.weight [K, features]", path);
    return K;
}
