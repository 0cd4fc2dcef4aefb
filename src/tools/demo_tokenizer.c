/* The demo's tokenizer files: the small tokenizer ddps_tokenizer_build_small
 * makes, written as a CLIP tokenizer folder (see demo.h). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/tokenizer.h"
#include "tools/demo.h"
#include "util/fs.h"

/* Writes obj (consumed) to dir/name as JSON with flags and a final newline. */
static int write_json(const char *dir, const char *name, json_t *obj, size_t flags, ddps_err *err) {
    char *text = json_dumps(obj, flags);
    json_decref(obj);
    if (!text) return ddps_fail(err, "%s/%s: cannot encode JSON", dir, name);
    char *path = ddps_path_join(dir, name);
    size_t n = strlen(text);
    text = ddps_realloc(text, n + 2);
    text[n] = '\n';
    int rc = ddps_write_file_atomic(path, text, n + 1, err);
    free(text);
    free(path);
    return rc;
}

/* special_tokens_map.json (with_config 0) or tokenizer_config.json (1). */
static json_t *special_json(const char *bos, const char *eos, int with_config) {
    json_t *o = json_object();
    json_object_set_new(o, "bos_token", json_string(bos));
    json_object_set_new(o, "eos_token", json_string(eos));
    json_object_set_new(o, "pad_token", json_string(eos));
    json_object_set_new(o, "unk_token", json_string(eos));
    if (with_config) {
        json_object_set_new(o, "model_max_length", json_integer(DDPS_CTX_LEN));
        json_object_set_new(o, "do_lower_case", json_true());
        json_object_set_new(o, "tokenizer_class", json_string("CLIPTokenizer"));
    }
    return o;
}

/* merges.txt: "#version: 0.2" and one "a b" line per merge in rank order. */
static int write_merges(const char *dir, const ddps_tokenizer *t, ddps_err *err) {
    int32_t *a, *b;
    int n = ddps_tokenizer_merges(t, &a, &b);
    size_t len = 0, cap = 64;
    for (int r = 0; r < n; r++)
        cap += strlen(ddps_tokenizer_token(t, a[r])) + strlen(ddps_tokenizer_token(t, b[r])) + 2;
    char *merges = ddps_malloc(cap);
    len = (size_t)snprintf(merges, cap, "#version: 0.2\n");
    for (int r = 0; r < n; r++)
        len += (size_t)snprintf(merges + len, cap - len, "%s %s\n", ddps_tokenizer_token(t, a[r]),
                                ddps_tokenizer_token(t, b[r]));
    free(a);
    free(b);
    char *path = ddps_path_join(dir, "merges.txt");
    int rc = ddps_write_file_atomic(path, merges, len, err);
    free(path);
    free(merges);
    return rc;
}

int ddps_tokenizer_write_small(const char *dir, const char *const *words, int nwords, int *vocab_size,
                               ddps_err *err) {
    ddps_tokenizer *t;
    if (ddps_tokenizer_build_small(words, nwords, &t, err)) return -1;
    int n = ddps_tokenizer_vocab_size(t), rc = -1;
    /* BOS and EOS are the last two ids */
    const char *bos = ddps_tokenizer_token(t, n - 2), *eos = ddps_tokenizer_token(t, n - 1);
    if (ddps_mkdirs(dir, err)) goto done;
    json_t *vocab = json_object();
    for (int32_t id = 0; id < n; id++) {
        const char *tok = ddps_tokenizer_token(t, id);
        if (tok) json_object_set_new(vocab, tok, json_integer(id));
    }
    if (write_json(dir, "vocab.json", vocab, JSON_COMPACT, err)) goto done;
    if (write_merges(dir, t, err)) goto done;
    if (write_json(dir, "special_tokens_map.json", special_json(bos, eos, 0), JSON_INDENT(1), err)) goto done;
    if (write_json(dir, "tokenizer_config.json", special_json(bos, eos, 1), JSON_INDENT(1), err)) goto done;
    if (vocab_size) *vocab_size = n;
    rc = 0;
done:
    ddps_tokenizer_free(t);
    return rc;
}
