#include "tensor/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fs.h"

/* The backend for a device, guarded (tensor/backend.h); a backend that
 * failed while it was being set up is freed and its failure returned. */
ddps_backend *ddps_backend_new(const char *device, ddps_precision precision, int threads, ddps_err *err) {
    ddps_backend *be = NULL;
    if (!device || strcmp(device, "cpu") == 0) {
        if (precision == DDPS_PREC_F16)
            return ddps_fail_usage(err, "--precision f16: not available on the CPU (use f32 or bf16)"), NULL;
        be = ddps_cpu_backend_new(precision, threads, err);
    } else if (strcmp(device, "cuda") == 0 || strncmp(device, "cuda:", 5) == 0) {
#ifdef DDPS_HAVE_CUDA
        int dev = device[4] == ':' ? atoi(device + 5) : 0;
        be = ddps_cuda_backend_new(precision, dev, err);
#else
        return ddps_fail(err, "--device %s: this ddps was built without CUDA (configure with -DDDPS_CUDA=ON)",
                         device),
               NULL;
#endif
    } else {
        return ddps_fail_usage(err, "--device %s: unknown device (expected cpu or cuda)", device), NULL;
    }
    if (!be) return NULL;
    ddps_backend_guard(be);
    if (be->inner->poll) be->inner->poll(be);
    if (ddps_backend_error(be, err)) {
        ddps_backend_free(be);
        return NULL;
    }
    return be;
}

static void arena_drop(ddps_backend *be) {
    ddps_arena *a = &be->arena;
    for (int i = 0; i < a->n_extra; i++) be->ops->free(be, a->extra[i]);
    a->n_extra = 0;
    if (a->base) {
        if (a->reserved)
            be->ops->unreserve(be, a->base, a->size);
        else
            be->ops->free(be, a->base);
    }
    a->base = NULL;
    a->size = 0;
    a->reserved = 0;
}

void ddps_backend_free(ddps_backend *be) {
    if (!be) return;
    arena_drop(be);
    free(be->arena.extra);
    free(be->arena.extra_at);
    be->arena.extra = NULL;
    be->arena.extra_at = NULL;
    be->ops->destroy(be);
}

static size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* Bytes of an n x h x w x c tensor of elem-byte elements rounded up to
 * align; 0 when a dimension is negative or the size overflows. */
static size_t tensor_bytes(int n, int h, int w, int c, size_t elem, size_t align) {
    if (n < 0 || h < 0 || w < 0 || c < 0) return 0;
    size_t b = elem;
    if (ddps_mul_size((size_t)n, b, &b) || ddps_mul_size((size_t)h, b, &b) || ddps_mul_size((size_t)w, b, &b) ||
        ddps_mul_size((size_t)c, b, &b) || b > SIZE_MAX - align)
        return 0;
    return round_up(b ? b : 1, align);
}

/* A tensor from the arena. Out of memory (or a size beyond size_t) is a
 * sticky resource error on the backend: the tensor then has data == NULL
 * and takes no arena space. */
static ddps_tensor arena_new(ddps_backend *be, int n, int h, int w, int c, size_t elem) {
    ddps_tensor t = {NULL, n, h, w, c};
    ddps_arena *a = &be->arena;
    size_t bytes = tensor_bytes(n, h, w, c, elem, be->align);
    if (!bytes) {
        ddps_backend_fail(be, DDPS_KIND_RESOURCE, "out of %s memory: a [%d,%d,%d,%d] tensor is beyond any size",
                          be->ops->name, n, h, w, c);
        return t;
    }
    if (ddps_backend_alloc_fault(be)) {
        ddps_backend_fail(be, DDPS_KIND_RESOURCE,
                          "out of %s memory (%zu bytes for a [%d,%d,%d,%d] tensor; fault injection %s:%ld)",
                          be->ops->name, bytes, n, h, w, c, be->fault_op, be->fault_at);
        return t;
    }
    if (!a->base && be->ops->reserve) {
        a->base = be->ops->reserve(be, &a->size);
        a->reserved = a->base != NULL;
    }
    if (a->base && a->used <= a->size && bytes <= a->size - a->used) {
        t.data = a->base + a->used;
    } else {
        /* Peak not known yet: serve from a separate block, freed when the
         * arena is next released to zero and replaced by one block. */
        void *p = be->ops->alloc(be, bytes);
        if (!p) {
            ddps_backend_fail(be, DDPS_KIND_RESOURCE, "out of %s memory (%zu bytes for a [%d,%d,%d,%d] tensor)",
                              be->ops->name, bytes, n, h, w, c);
            return t;
        }
        if (a->n_extra == a->cap_extra) {
            a->cap_extra = a->cap_extra ? 2 * a->cap_extra : 64;
            a->extra = ddps_realloc(a->extra, (size_t)a->cap_extra * sizeof *a->extra);
            a->extra_at = ddps_realloc(a->extra_at, (size_t)a->cap_extra * sizeof *a->extra_at);
        }
        a->extra_at[a->n_extra] = a->used;
        a->extra[a->n_extra++] = p;
        t.data = p;
    }
    a->used += bytes;
    if (a->used > a->peak) a->peak = a->used;
    return t;
}

ddps_tensor ddps_new(ddps_backend *be, int n, int h, int w, int c) { return arena_new(be, n, h, w, c, be->act_size); }

ddps_tensor ddps_new_map(ddps_backend *be, int n, int h, int w, int c) {
    return arena_new(be, n, h, w, c, sizeof(float));
}

size_t ddps_mark(ddps_backend *be) { return be->arena.used; }

void ddps_backend_free_arena(ddps_backend *be) {
    be->arena.used = 0;
    be->arena.peak = 0;
    arena_drop(be);
}

void ddps_release(ddps_backend *be, size_t mark) {
    ddps_arena *a = &be->arena;
    a->used = mark;
    /* Extra blocks are allocated in arena order: free those past the mark. */
    while (a->n_extra > 0 && a->extra_at[a->n_extra - 1] >= mark) be->ops->free(be, a->extra[--a->n_extra]);
    if (mark == 0 && !a->reserved && a->peak > a->size) {
        size_t want = a->peak;
        arena_drop(be);
        a->base = be->ops->alloc(be, want);
        if (!a->base) {
            /* sticky; later tensors get blocks of their own again */
            ddps_backend_fail(be, DDPS_KIND_RESOURCE, "out of %s memory (%zu bytes of activations)", be->ops->name,
                              want);
            return;
        }
        a->size = want;
    }
}

ddps_tensor ddps_tensor_alloc(ddps_backend *be, int n, int h, int w, int c) {
    ddps_tensor t = {NULL, n, h, w, c};
    size_t bytes = tensor_bytes(n, h, w, c, be->act_size, be->align);
    if (bytes) t.data = be->ops->alloc(be, bytes);
    return t;
}

void ddps_tensor_free(ddps_backend *be, ddps_tensor *t) {
    if (t->data) be->ops->free(be, t->data);
    t->data = NULL;
}
