#include "pipeline/loader.h"

#include "util/progress.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fs.h"

/* Sanity bounds: more threads than this only thrash the disk; a larger
 * target size is a typo, not a diffusion-model input. */
#define MAX_THREADS 256
#define MAX_SIZE 16384

/* The queue is a window over positions [next_out, next_claim) of the index
 * list, at most `ahead` wide. A worker claims position next_claim, decodes
 * it without the lock, and stores the result in slots[pos % ahead]; the
 * consumer takes slots[next_out % ahead] once it is filled. Positions in the
 * window are distinct modulo `ahead`, so slots never collide, and because
 * positions are claimed in order the consumer's next image is always
 * claimed by someone: no deadlock whatever the thread count. */
struct ddps_loader {
    const ddps_dataset *d;
    int *indices, n;
    int size, square, keep_original, ahead;
    pthread_mutex_t mu;
    pthread_cond_t can_claim; /* workers wait here: the window is full */
    pthread_cond_t ready;     /* the consumer waits here: its image is not done */
    ddps_loaded **slots;
    int next_claim, next_out, stop;
    pthread_t *tids;
    int n_threads;
};

/* "relpath: reason", where the decoder's message "<full path>: reason" loses
 * its (long, absolute) path prefix. */
static void set_error(ddps_loaded *x, const char *rel, const char *path, const char *msg) {
    size_t lp = strlen(path);
    if (strncmp(msg, path, lp) == 0 && msg[lp] == ':') msg += lp + 1 + (msg[lp + 1] == ' ');
    char *shown = ddps_display_name(rel);
    int k = snprintf(x->error, sizeof x->error, "%s: %s", shown, msg);
    if (k >= (int)sizeof x->error) memcpy(x->error + sizeof x->error - 4, "...", 4); /* show the cut */
    free(shown);
}

int ddps_loader_resized_size(int w, int h, int size, int square, int *rw, int *rh, ddps_err *err) {
    *rw = size, *rh = size;
    return square ? 0 : ddps_resize_check(w, h, size, rw, rh, err);
}

/* Decodes and resizes one item; never fails as a whole (ok = 0 instead). */
static ddps_loaded *load_one(const ddps_loader *l, int index) {
    ddps_loaded *x = ddps_calloc(1, sizeof *x);
    x->index = index;
    const char *rel = l->d->items[index].relpath;
    char *path = ddps_path_join(l->d->root, rel);
    ddps_image img = {0};
    ddps_err err = {{0}};
    if (ddps_image_load(path, &img, &err) == 0) {
        x->decoded = 1;
        x->orig_w = img.w;
        x->orig_h = img.h;
        int w, h;
        if (ddps_loader_resized_size(img.w, img.h, l->size, l->square, &w, &h, &err) == 0)
            x->ok = ddps_image_resize(&img, w, h, &x->resized, &err) == 0;
    }
    if (!x->ok) {
        set_error(x, rel, path, err.msg);
        ddps_image_free(&x->resized);
    }
    if (x->ok && l->keep_original)
        x->original = img; /* moved */
    else
        ddps_image_free(&img);
    free(path);
    return x;
}

static void *worker(void *arg) {
    ddps_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && l->next_claim < l->n && l->next_claim - l->next_out >= l->ahead)
            pthread_cond_wait(&l->can_claim, &l->mu);
        if (l->stop || l->next_claim >= l->n) break;
        int pos = l->next_claim++;
        pthread_mutex_unlock(&l->mu);
        ddps_loaded *x = load_one(l, l->indices[pos]);
        pthread_mutex_lock(&l->mu);
        if (l->stop) {
            ddps_loaded_free(x); /* nobody will take it */
            break;
        }
        l->slots[pos % l->ahead] = x;
        if (pos == l->next_out) pthread_cond_signal(&l->ready);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* Stops and joins the workers started so far. */
static void stop_workers(ddps_loader *l) {
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->can_claim);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->n_threads; i++) pthread_join(l->tids[i], NULL);
    l->n_threads = 0;
}

int ddps_loader_start(const ddps_dataset *d, const int *indices, int n, int size, int square, int keep_original,
                      int threads, int ahead, ddps_loader **out, ddps_err *err) {
    *out = NULL;
    if (!d || n < 0 || (n > 0 && !indices))
        return ddps_fail(err, "loader: no dataset or index list (%d images asked for)", n);
    if (size < 1 || size > MAX_SIZE) return ddps_fail(err, "loader: image size must be 1..%d, got %d", MAX_SIZE, size);
    if (threads < 1 || threads > MAX_THREADS)
        return ddps_fail(err, "loader: thread count must be 1..%d, got %d", MAX_THREADS, threads);
    if (ahead < 1) return ddps_fail(err, "loader: images ahead must be >= 1, got %d", ahead);
    for (int i = 0; i < n; i++)
        if (indices[i] < 0 || indices[i] >= d->n_items)
            return ddps_fail(err, "loader: entry %d of the index list is %d, outside the dataset's %d images", i,
                             indices[i], d->n_items);
    ddps_loader *l = ddps_calloc(1, sizeof *l);
    l->d = d;
    l->n = n;
    l->size = size;
    l->square = square;
    l->keep_original = keep_original;
    /* A window wider than the list or more workers than images buy nothing. */
    l->ahead = ahead < n ? ahead : (n > 0 ? n : 1);
    if (threads > n) threads = n;
    l->indices = ddps_malloc((size_t)(n > 0 ? n : 1) * sizeof *l->indices);
    if (n > 0) memcpy(l->indices, indices, (size_t)n * sizeof *indices);
    l->slots = ddps_calloc((size_t)l->ahead, sizeof *l->slots);
    l->tids = ddps_calloc((size_t)(threads > 0 ? threads : 1), sizeof *l->tids);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->can_claim, NULL);
    pthread_cond_init(&l->ready, NULL);
    for (int i = 0; i < threads; i++) {
        int rc = pthread_create(&l->tids[i], NULL, worker, l);
        if (rc != 0) {
            ddps_loader_free(l);
            return ddps_fail(err, "loader: cannot start worker thread %d of %d: %s", i + 1, threads, strerror(rc));
        }
        l->n_threads++;
    }
    *out = l;
    return 0;
}

ddps_loaded *ddps_loader_next(ddps_loader *l) {
    if (!l) return NULL;
    if (ddps_cancel_requested()) return NULL; /* the host asked to stop: as if the list ended here */
    pthread_mutex_lock(&l->mu);
    if (l->next_out >= l->n) {
        pthread_mutex_unlock(&l->mu);
        return NULL;
    }
    int s = l->next_out % l->ahead;
    while (!l->slots[s]) pthread_cond_wait(&l->ready, &l->mu);
    ddps_loaded *x = l->slots[s];
    l->slots[s] = NULL;
    l->next_out++;
    /* One slot freed: one more position may be claimed. */
    pthread_cond_signal(&l->can_claim);
    pthread_mutex_unlock(&l->mu);
    return x;
}

void ddps_loaded_free(ddps_loaded *x) {
    if (!x) return;
    ddps_image_free(&x->resized);
    ddps_image_free(&x->original);
    free(x);
}

void ddps_loader_free(ddps_loader *l) {
    if (!l) return;
    stop_workers(l);
    for (int i = 0; i < l->ahead; i++) ddps_loaded_free(l->slots[i]);
    pthread_cond_destroy(&l->ready);
    pthread_cond_destroy(&l->can_claim);
    pthread_mutex_destroy(&l->mu);
    free(l->slots);
    free(l->tids);
    free(l->indices);
    free(l);
}
