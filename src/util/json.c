#include "util/json.h"

#include <stdlib.h>

#include "util/fs.h"

int ddps_json_load(const char *path, json_t **out, ddps_err *err) {
    return ddps_json_load_ex(path, 16u << 20, JSON_REJECT_DUPLICATES, out, err);
}

int ddps_json_load_ex(const char *path, size_t max_bytes, size_t flags, json_t **out, ddps_err *err) {
    char *text;
    size_t len;
    *out = NULL;
    if (ddps_read_file(path, max_bytes, &text, &len, err) != 0) return -1;
    json_error_t je;
    *out = json_loadb(text, len, flags, &je);
    free(text);
    if (!*out && len == 0) return ddps_fail_data(err, "%s: empty file", path);
    if (!*out)
        return ddps_fail_data(err, "%s: not valid JSON (line %d, column %d: %s)", path, je.line, je.column, je.text);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return ddps_fail_data(err, "%s: not a JSON object", path);
    }
    return 0;
}
