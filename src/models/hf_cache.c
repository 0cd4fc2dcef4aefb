#include "models/hf_cache.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fs.h"

/* Characters allowed in hub names. */
static int name_char(int c) { return isalnum(c) || c == '-' || c == '_' || c == '.'; }

/* A name part: 1..96 allowed characters, not starting with '.', no "..". */
static int valid_part(const char *s, size_t n) {
    if (n == 0 || n > 96 || s[0] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        if (!name_char((unsigned char)s[i])) return 0;
        if (i && s[i] == '.' && s[i - 1] == '.') return 0;
    }
    return 1;
}

int ddps_hf_is_repo_id(const char *spec) {
    const char *slash = strchr(spec, '/');
    if (!slash || strchr(slash + 1, '/')) return 0;
    const char *at = strchr(slash + 1, '@');
    size_t name_len = at ? (size_t)(at - slash - 1) : strlen(slash + 1);
    if (!valid_part(spec, (size_t)(slash - spec)) || !valid_part(slash + 1, name_len)) return 0;
    if (at) {
        const char *r = at + 1;
        size_t n = strlen(r);
        if (n == 0 || n > 128 || r[0] == '.' || strstr(r, "..")) return 0;
        for (size_t i = 0; i < n; i++)
            if (!name_char((unsigned char)r[i]) && r[i] != '/') return 0;
    }
    return 1;
}

char *ddps_hf_cache_dir(void) {
    const char *v = getenv("HF_HUB_CACHE");
    if (v && *v) return ddps_strdup(v);
    v = getenv("HF_HOME");
    if (v && *v) return ddps_path_join(v, "hub");
    v = getenv("HOME");
    char *cache = ddps_path_join(v && *v ? v : ".", ".cache/huggingface/hub");
    return cache;
}

/* A full lower-case 40-hex commit id. */
static int is_commit(const char *s, size_t n) {
    if (n != 40) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) return 0;
    return 1;
}

int ddps_hf_resolve(const char *spec, char **dir, ddps_err *err) {
    *dir = NULL;
    if (!ddps_hf_is_repo_id(spec)) return ddps_fail_data(err, "%s: not a Hugging Face model id (org/name[@revision])", spec);
    char repo[256], rev[160] = "main";
    const char *slash = strchr(spec, '/'), *at = strchr(slash, '@');
    snprintf(repo, sizeof repo, "models--%.*s--%.*s", (int)(slash - spec), spec,
             (int)(at ? (size_t)(at - slash - 1) : strlen(slash + 1)), slash + 1);
    if (at) snprintf(rev, sizeof rev, "%s", at + 1);
    char id[256];
    snprintf(id, sizeof id, "%.*s", (int)(at ? (size_t)(at - spec) : strlen(spec)), spec);
    char *cache = ddps_hf_cache_dir(), *root = ddps_path_join(cache, repo);
    char commit[41] = "";
    int rc = -1;
    if (is_commit(rev, strlen(rev))) {
        memcpy(commit, rev, 40);
        commit[40] = 0;
    } else {
        char *refs = ddps_path_join(root, "refs"), *ref = ddps_path_join(refs, rev);
        char *text = NULL;
        size_t len = 0;
        ddps_err e;
        if (ddps_is_file(ref) && ddps_read_file(ref, 4096, &text, &len, &e) == 0) {
            while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ')) len--;
            if (is_commit(text, len)) {
                memcpy(commit, text, 40);
                commit[40] = 0;
            } else {
                ddps_fail_data(err, "%s: not a commit hash (the Hugging Face cache is damaged)", ref);
            }
        }
        int bad_ref = text && !commit[0];
        free(text);
        free(refs);
        free(ref);
        if (bad_ref) goto done;
    }
    if (commit[0]) {
        char *snaps = ddps_path_join(root, "snapshots"), *snap = ddps_path_join(snaps, commit);
        free(snaps);
        if (ddps_is_dir(snap)) {
            *dir = snap;
            rc = 0;
            goto done;
        }
        free(snap);
    }
    ddps_fail_data(err,
              "%s: not in the local Hugging Face cache (looked for %s, revision %s); ddps never downloads: fetch it "
              "with `huggingface-cli download %s%s%s` (or pass a local folder or .safetensors file)",
              spec, root, rev, id, at ? " --revision " : "", at ? rev : "");
done:
    free(cache);
    free(root);
    return rc;
}
