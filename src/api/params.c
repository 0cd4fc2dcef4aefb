/* ddps.h's parameter defaults: ddps_score_params_init and
 * ddps_select_params_init copy exactly the command's defaults
 * (ddps_score_defaults, ddps_select_defaults). Apart from the drivers so
 * that the CLI's option tables link without the engine (fuzz_options). */
#include <string.h>

#include "api/api_internal.h"
#include "pipeline/score.h"
#include "pipeline/select.h"

DDPS_API void ddps_score_params_init(ddps_score_params *p) {
    ddps_score_opts o;
    ddps_score_defaults(&o);
    memset(p, 0, sizeof *p);
    p->prompt = o.prompt;
    p->null_prompt = o.null_prompt;
    p->n_timesteps = o.n_timesteps;
    p->n_explicit = o.n_explicit;
    p->t_lo = o.t_lo;
    p->t_hi = o.t_hi;
    p->size = o.size;
    p->patch = o.patch;
    p->stride = o.stride;
    p->patches_per_image = o.patches_per_image;
    p->dift_t = o.dift_t;
    p->dift_ensemble = o.dift_ensemble;
    p->clusters = o.clusters;
    p->low_res = o.low_res;
    p->class_names = o.class_names;
    p->max_per_class = o.max_per_class;
    p->seed = o.seed;
    p->threads = o.threads;
    p->batch_images = o.batch_images;
    p->device = o.device;
    p->precision = o.precision;
}

DDPS_API void ddps_select_params_init(ddps_select_params *p) {
    ddps_select_opts o;
    ddps_select_defaults(&o);
    memset(p, 0, sizeof *p);
    p->top_clusters = o.top_clusters;
    p->mosaic_max_ipc = o.mosaic_max_ipc;
    p->output_size = o.output_size;
    p->format = o.format;
    p->jpeg_quality = o.jpeg_quality;
    p->data_root = o.data_root;
    p->threads = o.threads;
}
