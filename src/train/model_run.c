/* Forward and backward of the student models (train/model.h). Every
 * activation comes from the backend's arena and is kept in the model for
 * the backward; the caller releases the arena after the step. */
#include "train/model.h"

static ddps_tensor new_like(ddps_backend *be, const ddps_tensor *t) { return ddps_new(be, t->n, t->h, t->w, t->c); }

/* ---------- ResNet basic block ---------- */

/* x [n,h,w,in] -> out [n,h/s,w/s,planes] = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)),
 * shortcut = bn(conv1x1/s(x)) when the shape changes, else x. */
static ddps_tensor block_forward(tr_ctx *c, tr_block *b, const ddps_tensor *x, int tr) {
    ddps_backend *be = c->be;
    int s = b->conv1.stride, pl = b->conv1.out, ho = (x->h - 1) / s + 1, wo = (x->w - 1) / s + 1;
    b->x = *x;
    b->c1 = ddps_new(be, x->n, ho, wo, pl);
    ddps_tr_conv_forward(c, &b->conv1, &b->c1, x);
    b->m1 = ddps_new(be, 1, 1, 1, pl), b->v1 = ddps_new(be, 1, 1, 1, pl), b->b1 = new_like(be, &b->c1);
    ddps_tr_bn_forward(c, &b->bn1, &b->b1, &b->c1, &b->m1, &b->v1, tr);
    b->r1 = b->b1; /* in place: the backward's mask comes from the output */
    ddps_tr_relu_forward(c, &b->r1, &b->b1);
    b->c2 = new_like(be, &b->c1);
    ddps_tr_conv_forward(c, &b->conv2, &b->c2, &b->r1);
    b->m2 = ddps_new(be, 1, 1, 1, pl), b->v2 = ddps_new(be, 1, 1, 1, pl), b->b2 = new_like(be, &b->c1);
    ddps_tr_bn_forward(c, &b->bn2, &b->b2, &b->c2, &b->m2, &b->v2, tr);
    const ddps_tensor *sc = x;
    if (b->has_ds) {
        b->dc = new_like(be, &b->c1);
        ddps_tr_conv_forward(c, &b->ds, &b->dc, x);
        b->dm = ddps_new(be, 1, 1, 1, pl), b->dv = ddps_new(be, 1, 1, 1, pl), b->db = new_like(be, &b->c1);
        ddps_tr_bn_forward(c, &b->dsbn, &b->db, &b->dc, &b->dm, &b->dv, tr);
        sc = &b->db;
    }
    b->sum = b->b2; /* in place, as torchvision's out += identity; relu(out): bn2's backward needs c2, not b2 */
    ddps_tr_add(c, &b->sum, &b->b2, sc);
    b->out = b->sum;
    ddps_tr_relu_forward(c, &b->out, &b->sum);
    return b->out;
}

/* dout [n,ho,wo,planes] -> dx [n,h,w,in] (the caller's, not dout's memory) and every parameter gradient of
 * the block; the temporaries are released before returning. */
static void block_backward(tr_ctx *c, tr_block *b, const ddps_tensor *dout, ddps_tensor *dxp) {
    ddps_backend *be = c->be;
    size_t mark = ddps_mark(be);
    ddps_tensor dx = *dxp;
    ddps_tensor dsum = new_like(be, dout), t1 = new_like(be, dout), t2 = new_like(be, dout);
    ddps_tr_relu_backward(c, &dsum, dout, &b->sum);
    ddps_tr_bn_backward(c, &b->bn2, &t1, &dsum, &b->c2, &b->m2, &b->v2); /* t1 = dc2 */
    ddps_tr_conv_backward(c, &b->conv2, &t2, &t1, &b->r1);              /* t2 = dr1 */
    ddps_tr_relu_backward(c, &t2, &t2, &b->b1);                          /* t2 = db1 */
    ddps_tr_bn_backward(c, &b->bn1, &t1, &t2, &b->c1, &b->m1, &b->v1);  /* t1 = dc1 */
    ddps_tr_conv_backward(c, &b->conv1, &dx, &t1, &b->x);
    if (b->has_ds) {
        ddps_tensor dxs = new_like(be, &b->x);
        ddps_tr_bn_backward(c, &b->dsbn, &t1, &dsum, &b->dc, &b->dm, &b->dv);
        ddps_tr_conv_backward(c, &b->ds, &dxs, &t1, &b->x);
        ddps_tr_add(c, &dx, &dx, &dxs);
    } else {
        ddps_tr_add(c, &dx, &dx, &dsum);
    }
    ddps_release(be, mark);
}

/* A tensor of shape's shape over buf's memory. */
static ddps_tensor view(const ddps_tensor *buf, const ddps_tensor *shape) {
    ddps_tensor t = *shape;
    t.data = buf->data;
    return t;
}

/* ---------- ResNet-18 ---------- */

/* x [n,s,s,3] -> logits [n,1,1,K]: stem (conv1, bn1, relu, max pool 3/2/1 unless modified),
 * layer1..layer4 (2 blocks each), global average pool, fc. */
static ddps_tensor resnet_forward(tr_ctx *c, tr_model *m, const ddps_tensor *x, int tr) {
    ddps_backend *be = c->be;
    const tr_conv *k = &m->conv1;
    int h = (x->h + 2 * k->pad - k->k) / k->stride + 1, w = (x->w + 2 * k->pad - k->k) / k->stride + 1;
    m->x = *x;
    m->c1 = ddps_new(be, x->n, h, w, 64);
    ddps_tr_conv_forward(c, k, &m->c1, x);
    m->m1 = ddps_new(be, 1, 1, 1, 64), m->v1 = ddps_new(be, 1, 1, 1, 64), m->b1 = new_like(be, &m->c1);
    ddps_tr_bn_forward(c, &m->bn1, &m->b1, &m->c1, &m->m1, &m->v1, tr);
    m->r1 = m->b1; /* in place */
    ddps_tr_relu_forward(c, &m->r1, &m->b1);
    ddps_tensor cur = m->r1;
    if (m->arch == TR_RESNET18) {
        m->mp = ddps_new(be, x->n, (h - 1) / 2 + 1, (w - 1) / 2 + 1, 64);
        ddps_tr_pool_forward(c, 1, 3, 2, 1, &m->mp, &m->r1, &m->ws);
        cur = m->mp;
    }
    for (int i = 0; i < 8; i++) cur = block_forward(c, &m->blk[i], &cur, tr);
    m->feat = cur;
    m->pooled = ddps_new(be, x->n, 1, 1, 512);
    ddps_tr_adaptive_avg_forward(c, &m->pooled, &cur);
    m->logits = ddps_new(be, x->n, 1, 1, m->classes);
    ddps_tr_linear_forward(c, &m->fc, &m->logits, &m->pooled);
    return m->logits;
}

static void resnet_backward(tr_ctx *c, tr_model *m, const ddps_tensor *dlogits) {
    ddps_backend *be = c->be;
    /* the gradient between blocks goes back and forth between two buffers of the largest block input */
    size_t most = ddps_numel(&m->feat);
    for (int i = 0; i < 8; i++)
        if (ddps_numel(&m->blk[i].x) > most) most = ddps_numel(&m->blk[i].x);
    ddps_tensor g[2] = {ddps_new(be, 1, 1, 1, (int)most), ddps_new(be, 1, 1, 1, (int)most)};
    ddps_tensor dp = new_like(be, &m->pooled), d = view(&g[0], &m->feat);
    ddps_tr_linear_backward(c, &m->fc, &dp, dlogits, &m->pooled);
    ddps_tr_adaptive_avg_backward(c, &d, &dp);
    for (int i = 7; i >= 0; i--) {
        ddps_tensor dx = view(&g[(8 - i) % 2], &m->blk[i].x);
        block_backward(c, &m->blk[i], &d, &dx);
        d = dx;
    }
    /* the stem's gradient in one buffer: ReLU and batch norm backward in place (the largest
     * activations are the stem's, so a second buffer would set the step's peak memory) */
    ddps_tensor dr = d;
    if (m->arch == TR_RESNET18) {
        dr = new_like(be, &m->r1);
        ddps_tr_pool_backward(c, 1, 3, 2, 1, &dr, &d, &m->ws);
    }
    ddps_tr_relu_backward(c, &dr, &dr, &m->b1);
    ddps_tr_bn_backward(c, &m->bn1, &dr, &dr, &m->c1, &m->m1, &m->v1);
    ddps_tr_conv_backward(c, &m->conv1, NULL, &dr, &m->x);
}

/* ---------- ConvNet-D ---------- */

/* x [n,s,s,3] -> logits [n,1,1,K]: D x (conv 3x3 -> instance norm -> relu -> avg pool 2/2)
 * [n,s/2^D,s/2^D,128], classifier over PyTorch's NCHW flatten. */
static ddps_tensor convnet_forward(tr_ctx *c, tr_model *m, const ddps_tensor *x) {
    ddps_backend *be = c->be;
    ddps_tensor cur = *x;
    for (int d = 0; d < m->depth; d++) {
        tr_cn_layer *l = &m->cn[d];
        l->x = cur;
        l->c = ddps_new(be, cur.n, cur.h, cur.w, m->width);
        ddps_tr_conv_forward(c, &l->conv, &l->c, &cur);
        l->mean = ddps_new(be, 1, 1, cur.n, m->width), l->rstd = ddps_new(be, 1, 1, cur.n, m->width);
        l->nrm = new_like(be, &l->c);
        ddps_tr_group_norm_relu_forward(c, m->width, 1e-5f, l->nw, l->nb, &l->nrm, &l->c, &l->mean, &l->rstd);
        l->r = l->nrm; /* norm and ReLU in one pass */
        l->out = ddps_new(be, cur.n, cur.h / 2, cur.w / 2, m->width);
        ddps_tr_pool_forward(c, 0, 2, 2, 0, &l->out, &l->r, NULL);
        cur = l->out;
    }
    m->feat = cur;
    m->logits = ddps_new(be, x->n, 1, 1, m->classes);
    ddps_tr_linear_forward(c, &m->fc, &m->logits, &cur);
    return m->logits;
}

static void convnet_backward(tr_ctx *c, tr_model *m, const ddps_tensor *dlogits) {
    ddps_backend *be = c->be;
    ddps_tensor d = new_like(be, &m->feat);
    ddps_tr_linear_backward(c, &m->fc, &d, dlogits, &m->feat);
    for (int i = m->depth - 1; i >= 0; i--) {
        tr_cn_layer *l = &m->cn[i];
        ddps_tensor t1 = new_like(be, &l->c);
        ddps_tr_pool_backward(c, 0, 2, 2, 0, &t1, &d, NULL);
        ddps_tr_group_norm_relu_backward(c, m->width, l->nw, l->nb, &t1, &t1, &l->c, &l->r, &l->mean, &l->rstd);
        ddps_tensor dx = i > 0 ? new_like(be, &l->x) : (ddps_tensor){0};
        ddps_tr_conv_backward(c, &l->conv, i > 0 ? &dx : NULL, &t1, &l->x);
        d = dx;
    }
}

ddps_tensor ddps_tr_model_forward(tr_ctx *c, tr_model *m, const ddps_tensor *x, int training) {
    if (x->c != 3 || (m->arch == TR_CONVNET && (x->h != m->size || x->w != m->size))) {
        ddps_backend_fail(c->be, DDPS_KIND_USAGE, "the model takes [n,%d,%d,3] images, not [%d,%d,%d,%d]", m->size,
                          m->size, x->n, x->h, x->w, x->c);
        return (ddps_tensor){0};
    }
    m->trained_forward = training;
    return m->arch == TR_CONVNET ? convnet_forward(c, m, x) : resnet_forward(c, m, x, training);
}

void ddps_tr_model_backward(tr_ctx *c, tr_model *m, const ddps_tensor *dlogits) {
    if (!m->trained_forward) {
        ddps_backend_fail(c->be, DDPS_KIND_FAILURE, "internal error: backward without a training forward");
        return;
    }
    if (m->arch == TR_CONVNET)
        convnet_backward(c, m, dlogits);
    else
        resnet_backward(c, m, dlogits);
}
