/* Prefetching image loader: worker threads decode and resize the next
 * images of a dataset while the caller (the model) works on the current one.
 *
 *     ddps_loader *l;
 *     if (ddps_loader_start(&ds, idx, n, 256, 0, 0, 4, 8, &l, &err)) ...;
 *     for (ddps_loaded *x; (x = ddps_loader_next(l)); ddps_loaded_free(x))
 *         if (x->ok) score(x->resized); else ddps_warn("%s", x->error);
 *     ddps_loader_free(l);
 *
 * Results come strictly in the order of `indices`, whatever order the
 * workers finish in. A file that cannot be decoded is a result with ok = 0
 * and a one-line reason, never a failure of the loader. Workers sleep on
 * condition variables (no polling) and at most `ahead` images are decoded
 * or buffered at any time, so memory stays bounded on huge datasets.
 */
#ifndef DDPS_PIPELINE_LOADER_H
#define DDPS_PIPELINE_LOADER_H

#include "io/image.h"
#include "pipeline/dataset.h"
#include "util/err.h"

typedef struct {
    int index;          /* item index in the dataset */
    int ok;             /* 0: failed, error holds "relpath: reason" */
    int decoded;        /* 1 when the file decoded (ok = 0 then: the aspect bound refused it) */
    char error[512];
    int orig_w, orig_h; /* after EXIF orientation */
    ddps_image resized; /* shorter side = size (ddps_resize_shorter_size + ddps_image_resize),
                           or exactly size x size when square (low-res mode) */
    ddps_image original; /* kept only when keep_original */
} ddps_loaded;

typedef struct ddps_loader ddps_loader;

/* Starts workers decoding items[indices[0..n)] of the dataset in that order,
 * at most `ahead` images buffered. threads >= 1, ahead >= 1, size >= 1;
 * every index must be an item of d (repeats are allowed). indices is
 * copied; d must stay alive until ddps_loader_free. n = 0 is allowed (next
 * returns NULL at once). */
/* The resized size of a w x h image as the loader makes it: size x size when
 * square (low-res mode), else the shorter side size within the aspect bound
 * of io/image.h (ddps_resize_check). -1 with the reason (no file name) for
 * an image too extreme. The public engine sizes its images here too. */
int ddps_loader_resized_size(int w, int h, int size, int square, int *rw, int *rh, ddps_err *err);
int ddps_loader_start(const ddps_dataset *d, const int *indices, int n, int size, int square, int keep_original,
                      int threads, int ahead, ddps_loader **out, ddps_err *err);
/* Next image in order (blocks until ready); returns NULL after the last one,
 * and at once when the calling thread's run was cancelled
 * (ddps_cancel_requested, util/progress.h).
 * The caller owns the result: free it with ddps_loaded_free. One consumer
 * thread only. */
ddps_loaded *ddps_loader_next(ddps_loader *l);
void ddps_loaded_free(ddps_loaded *x);
/* Stops workers (also when not all images were consumed) and frees
 * everything. An image being decoded at that moment is finished first. */
void ddps_loader_free(ddps_loader *l);

#endif
