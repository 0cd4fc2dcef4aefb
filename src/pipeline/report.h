/* `ddps report`: a static HTML report of a store, readable from file:// with
 * no network, no external script or font.
 *
 * Layout of OUT:
 *   index.html            overview: model identity, settings, data root,
 *                         counts, skipped images with reasons, every run
 *                         (timings, model evaluations), one row per class
 *                         (filterable by name with a few lines of inline JS)
 *   style.css             the one stylesheet
 *   distilled/ipc<N>/     the distilled set exactly as `ddps select --ipc N`
 *                         writes it (it is written by ddps_select_run)
 *   c<k>/index.html       the page of the k-th class in name order (k from 1):
 *                         distilled images (each patch linked to its source),
 *                         clusters in rank order with member thumbnails,
 *                         score histogram (inline SVG), every scored image
 *                         with its Stage-I heatmap and candidate boxes, and
 *                         the skipped files with their reasons
 *   c<k>/src/<i>.jpg      thumbnail of the i-th scored image (relpath order,
 *                         from 0), longest side <= thumb pixels
 *   c<k>/map/<i>.png      its heatmap at half the thumbnail's size (shown
 *                         stretched over it): D, the
 *                         channel mean of the Stage-I d upsampled bilinearly
 *                         (align_corners = false) from the stored latent map,
 *                         normalised to the image's own min..max and coloured
 *                         with a "hot" palette whose R+G+B is 765 * t
 *                         (black = minimum, white = maximum)
 *   c<k>/patch/<j>.jpg    the j-th candidate of the class ((relpath, idx)
 *                         order), cut as select cuts it, 64 x 64
 * Images of stores without Stage-I maps have no heatmap; their pages say so.
 */
#ifndef DDPS_PIPELINE_REPORT_H
#define DDPS_PIPELINE_REPORT_H

#include "ddps.h"
#include "util/err.h"

/* One report run: the public settings (include/ddps.h; checked by
 * ddps_report_check, pipeline/params.h) and where it reads and writes. */
typedef struct {
    ddps_report_params p;
    const char *store_path;
    const char *out_dir;
} ddps_report_opts;

void ddps_report_defaults(ddps_report_opts *o);

/* Writes the report (see above). The distilled set is written first (select
 * clusters stale classes when the store is writable); the store is then read
 * without modification. Prints the writing time per class. */
int ddps_report_run(const ddps_report_opts *o, ddps_err *err);

/* Bilinear sample (align_corners = false, edges clamped) of an h x w map at
 * map coordinates (x, y) of pixel centres: D at a pixel of the resized image
 * is ddps_map_sample(map, h, w, (x + 0.5) * w / rw - 0.5, (y + 0.5) * h / rh - 0.5). */
double ddps_map_sample(const float *m, int h, int w, double x, double y);

#endif
