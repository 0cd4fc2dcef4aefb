/* Tokenizer files plus encoding. Input: vocab.json, then "\n==merges==\n",
 * merges.txt, then "\n==text==\n", the text to encode (absent parts: the
 * text is empty, merges are empty). */
#include <string.h>

#include "fz_util.h"
#include "models/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    const uint8_t *rest, *text;
    size_t vl, rl, ml, tl;
    fz_split(data, len, "\n==merges==\n", &rest, &vl, &rl);
    fz_split(rest, rl, "\n==text==\n", &text, &ml, &tl);
    const char *dir = fz_dir();
    if (fz_write(fz_path(0, "vocab.json"), data, vl) != 0 || fz_write(fz_path(1, "merges.txt"), rest, ml) != 0)
        return 0;
    ddps_tokenizer *tok = NULL;
    ddps_err err;
    if (ddps_tokenizer_load(dir, &tok, &err) != 0) return 0;
    char buf[4096];
    if (tl >= sizeof buf) tl = sizeof buf - 1;
    memcpy(buf, text, tl);
    buf[tl] = 0;
    int32_t ids[DDPS_CTX_LEN];
    ddps_tokenize(tok, buf, ids);
    (void)ddps_tokenize_truncated(tok, buf, ids);
    int n = ddps_tokenizer_vocab_size(tok);
    for (int i = 0; i < DDPS_CTX_LEN; i++)
        if (ids[i] >= 0 && ids[i] < n) (void)ddps_tokenizer_token(tok, ids[i]);
    ddps_tokenizer_free(tok);
    return 0;
}
