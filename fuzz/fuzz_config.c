/* Model configs: model_index.json and every component's config.json go
 * through ddps_json_load and each component parser (unet, vae, text
 * encoder, scheduler). */
#include <jansson.h>

#include "fz_util.h"
#include "models/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    const char *path = fz_path(0, "config.json");
    if (fz_write(path, data, len) != 0) return 0;
    json_t *root = NULL;
    ddps_err err;
    if (ddps_json_load(path, &root, &err) != 0) return 0;
    ddps_unet_config u;
    ddps_vae_config v;
    ddps_clip_config c;
    ddps_sched_config s;
    (void)ddps_unet_config_parse(path, root, &u, &err);
    (void)ddps_vae_config_parse(path, root, &v, &err);
    (void)ddps_clip_config_parse(path, root, &c, &err);
    (void)ddps_sched_config_parse(path, root, &s, &err);
    json_decref(root);
    return 0;
}
