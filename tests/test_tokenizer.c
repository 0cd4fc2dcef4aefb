/* CLIP tokenizer: golden ids from transformers' CLIPTokenizer, edge cases of
 * the clean-up and pre-tokeniser, invalid UTF-8, truncation, speed, hostile
 * tokenizer folders and the demo tokenizer writer. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "models/tokenizer.h"
#include "tools/demo.h"
#include "testlib.h"
#include "util/fs.h"

static ddps_tokenizer *sd; /* the tiny-sd tokenizer (SD v1.5's vocabulary) */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int same_ids(const int32_t *a, const int32_t *b) {
    return memcmp(a, b, DDPS_CTX_LEN * sizeof *a) == 0;
}

/* Checks ids == [BOS, body..., EOS, PAD...]. */
static int framed_as(const ddps_tokenizer *t, const int32_t *ids, const int32_t *body, int n) {
    if (ids[0] != ddps_tokenizer_bos(t) || ids[n + 1] != ddps_tokenizer_eos(t)) return 0;
    for (int i = 0; i < n; i++)
        if (ids[i + 1] != body[i]) return 0;
    for (int i = n + 2; i < DDPS_CTX_LEN; i++)
        if (ids[i] != ddps_tokenizer_pad(t)) return 0;
    return 1;
}

/* Number of text tokens between BOS and EOS, for a text known not to be
 * truncated (pad == eos in SD, so count up to the first EOS). */
static int body_len(const ddps_tokenizer *t, const int32_t *ids) {
    int n = 0;
    while (n + 1 < DDPS_CTX_LEN && ids[n + 1] != ddps_tokenizer_eos(t)) n++;
    return n;
}

static void test_load_sd(void) {
    ddps_err err = {{0}};
    double t0 = now();
    int rc = ddps_tokenizer_load(t_shared("golden/tiny-sd/tokenizer"), &sd, &err);
    double dt = now() - t0;
    CHECKF(rc == 0 && sd, "%s", err.msg);
    if (!sd) exit(t_done());
    fprintf(stderr, "   load: %.1f ms\n", dt * 1e3);
    CHECK(ddps_tokenizer_vocab_size(sd) == 49408);
    CHECK(ddps_tokenizer_bos(sd) == 49406);
    CHECK(ddps_tokenizer_eos(sd) == 49407);
    CHECK(ddps_tokenizer_pad(sd) == 49407);
    CHECK(ddps_tokenizer_token(sd, 49406) && !strcmp(ddps_tokenizer_token(sd, 49406), "<|startoftext|>"));
    CHECK(ddps_tokenizer_token(sd, 1929) && !strcmp(ddps_tokenizer_token(sd, 1929), "dog</w>"));
    CHECK(ddps_tokenizer_token(sd, 0) && !strcmp(ddps_tokenizer_token(sd, 0), "!"));
    CHECK(ddps_tokenizer_token(sd, -1) == NULL);
    CHECK(ddps_tokenizer_token(sd, 49408) == NULL);
    CHECK(strlen(ddps_clip_unicode_version()) >= 5);
}

/* All cases of golden/tokens.json (made with transformers' CLIPTokenizer). */
static void test_golden(void) {
    json_error_t je;
    json_t *root = json_load_file(t_shared("golden/tokens.json"), 0, &je);
    CHECKF(root && json_is_array(root), "tokens.json: %s", je.text);
    if (!root) return;
    CHECK(json_array_size(root) == 23);
    size_t i;
    json_t *c;
    int matched = 0;
    json_array_foreach(root, i, c) {
        const char *text = json_string_value(json_object_get(c, "text"));
        json_t *ja = json_object_get(c, "ids");
        CHECK(text && json_array_size(ja) == DDPS_CTX_LEN);
        if (!text || json_array_size(ja) != DDPS_CTX_LEN) continue;
        int32_t want[DDPS_CTX_LEN], got[DDPS_CTX_LEN];
        for (int k = 0; k < DDPS_CTX_LEN; k++)
            want[k] = (int32_t)json_integer_value(json_array_get(ja, (size_t)k));
        int trunc = ddps_tokenize_truncated(sd, text, got);
        int ok = same_ids(got, want);
        matched += ok;
        CHECKF(ok, "golden case %zu \"%.60s\"", i, text);
        if (!ok)
            for (int k = 0; k < DDPS_CTX_LEN; k++)
                if (got[k] != want[k]) {
                    fprintf(stderr, "     first difference at %d: got %d want %d\n", k, got[k], want[k]);
                    break;
                }
        /* Only the "word0 word1 ..." case is longer than 75 tokens. */
        CHECKF(trunc == (strncmp(text, "word0 word1", 11) == 0), "case %zu truncation flag %d", i, trunc);
        int32_t again[DDPS_CTX_LEN];
        ddps_tokenize(sd, text, again);
        CHECK(same_ids(again, got));
    }
    CHECK(matched == 23);
    json_decref(root);
}

/* Expected ids from a Python restatement of CLIPTokenizer (regex module,
 * unicodedata) that agreed with the golden file and with this code on every
 * code point; each case pins one rule of tokenizer.h. */
static const struct {
    const char *text;
    int n;
    int32_t ids[40];
} TRICKY[] = {
    /* NFD input composes to the same ids as NFC */
    {"cafe\xcc\x81 au lait", 4, {15304, 2566, 572, 585}},
    {"caf\xc3\xa9 au lait", 4, {15304, 2566, 572, 585}},
    /* final sigma: word-final capital sigma lower-cases to U+03C2 */
    {"\xce\x9f\xce\x94\xce\x9f\xce\xa3 \xce\xa3\xce\x91 \xce\xa3 \xce\x91\xce\xa3'", 19,
     {138, 123, 138, 112, 138, 123, 139, 480, 139, 225, 138, 365, 139, 481, 138, 109, 139, 480, 262}},
    /* U+0130 lower-cases to two code points */
    {"\xc4\xb0stanbul I\xcc\x87", 5, {328, 16384, 11231, 328, 16384}},
    /* CJK ideographs become one word each, katakana does not */
    {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88", 10,
     {37156, 19277, 361, 34002, 508, 2429, 228, 47121, 32421, 486}},
    /* control and format characters vanish (joining the words around them) */
    {"tab\x01\x63trl\x7f\x64\x65l\xe2\x80\x8bzw\xc2\xadsoft", 7, {2648, 35602, 75, 1233, 89, 86, 3773}},
    /* upper-case specials still become specials (through the pattern) */
    {"<|STARTOFTEXT|>dog <|EndOfText|>", 3, {49406, 1929, 49407}},
    /* the exact special is split out before the symbol run could swallow it */
    {"!!<|endoftext|>!! <|startoftext|", 9, {748, 49407, 748, 27, 347, 993, 6659, 4160, 347}},
    /* U+017F matches 's' case-insensitively but is not the literal */
    {"a<|\xc5\xbftartoftext|> '\xc5\xbf", 13, {320, 27, 91, 129, 123, 2002, 6659, 18169, 91, 285, 6, 129, 379}},
    {"dog'S cat's it'LL", 6, {1929, 568, 2368, 568, 585, 1342}},
    /* U+0345 matches no alternative of the pattern and is skipped */
    {"\xcd\x85 x\xcd\x85y", 2, {343, 344}},
    /* Hangul: conjoining jamo compose to a syllable */
    {"\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4 \xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8", 8,
     {15197, 250, 31871, 255, 31625, 368, 21122, 479}},
    /* NFC, not NFKC: fullwidth letters stay fullwidth (lower-cased) */
    {"\xef\xbc\xa6\xef\xbd\x95\xef\xbd\x8c\xef\xbd\x8c\xef\xbd\x97\xef\xbd\x89\xef\xbd\x84\xef\xbd\x94"
     "\xef\xbd\x88 \xe2\x85\xa0\xe2\x85\xa1 \xc2\xbd",
     34, {171, 121, 228, 171, 121, 243, 171, 121, 234, 171, 121, 234, 171, 121, 245, 171, 121,
          231, 171, 121, 226, 171, 121, 242, 171, 121, 486, 158, 227, 364, 158, 227, 365, 33613}},
    /* line/paragraph separators, ideographic and no-break spaces split words */
    {"x\xe2\x80\xa8y\xe2\x80\xa9z\xe3\x80\x80w\xc2\xa0v", 5, {343, 344, 345, 342, 341}},
    /* ZWJ (a format character) is dropped from emoji sequences */
    {"\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7 \xe2\x9d\xa4\xef\xb8\x8f", 5,
     {18966, 18800, 964, 356, 1752}},
    {"don't we'll I'd you've they're I'm it's", 14,
     {847, 713, 649, 1342, 328, 1896, 592, 1200, 889, 982, 328, 880, 585, 568}},
};

static void test_tricky(void) {
    for (size_t i = 0; i < sizeof TRICKY / sizeof TRICKY[0]; i++) {
        int32_t ids[DDPS_CTX_LEN];
        int trunc = ddps_tokenize_truncated(sd, TRICKY[i].text, ids);
        CHECKF(!trunc && framed_as(sd, ids, TRICKY[i].ids, TRICKY[i].n), "tricky case %zu", i);
    }
}

static void test_normalize(void) {
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"  Hello\t\tWORLD \n", "hello world"},
        {"", ""},
        {" \t\r\n ", ""},
        {"A\xc2\xa0" "B\xe3\x80\x80" "C", "a b c"},          /* Zs -> space */
        {"x\xe2\x80\xa8y", "x y"},                         /* U+2028 splits */
        {"cafe\xcc\x81", "caf\xc3\xa9"},                   /* NFC */
        {"\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5 \xe6\x9c\xac"}, /* CJK spaced */
        {"a\x01" "b\x7f" "c\xe2\x80\x8b" "d", "abcd"},          /* controls dropped */
        {"\xce\xa3\xce\x91\xce\xa3", "\xcf\x83\xce\xb1\xcf\x82"}, /* sigma */
        /* canonical ordering: dot below (220) before circumflex (230) */
        {"a\xcc\x82\xcc\xa3", "\xe1\xba\xad"},
        {"a\xcc\xa3\xcc\x82", "\xe1\xba\xad"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = ddps_clip_normalize(cases[i].in);
        CHECKF(!strcmp(s, cases[i].out), "normalize case %zu gave \"%s\"", i, s);
        free(s);
    }
    char *s = ddps_clip_normalize(NULL);
    CHECK(s && s[0] == 0);
    free(s);
}

/* Invalid UTF-8: every ill-formed subsequence decodes to U+FFFD, which the
 * clean-up drops; valid characters around it survive. */
static void test_invalid_utf8(void) {
    static const struct {
        const char *bad, *same_as;
    } cases[] = {
        {"dog\x80" "cat", "dogcat"},                     /* lone continuation */
        {"dog \xbf\xbf\xbf cat", "dog cat"},
        {"caf\xc3", "caf"},                              /* truncated at the end */
        {"\xc3(dog", "(dog"},                            /* truncated, next byte kept */
        {"\xe2\x82 dog", " dog"},                        /* truncated 3-byte */
        {"\xf0\x9f\x90" "dog", "dog"},                   /* truncated 4-byte */
        {"\xc0\xaf" "dog", "dog"},                       /* overlong '/' */
        {"\xe0\x80\xaf" "dog", "dog"},                   /* overlong 3-byte */
        {"\xf0\x80\x80\xaf" "dog", "dog"},               /* overlong 4-byte */
        {"\xed\xa0\x80" "dog", "dog"},                   /* UTF-16 surrogate */
        {"\xf4\x90\x80\x80" "dog", "dog"},               /* above U+10FFFF */
        {"\xff\xfe" "dog\xff", "dog"},
        {"\xf5\xf8\xfc\xfd" "d\xc1og", "dog"},
        {"\xff", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t a[DDPS_CTX_LEN], b[DDPS_CTX_LEN], c[DDPS_CTX_LEN];
        ddps_tokenize(sd, cases[i].bad, a);
        ddps_tokenize(sd, cases[i].bad, b);
        ddps_tokenize(sd, cases[i].same_as, c);
        CHECKF(same_ids(a, b), "invalid case %zu not deterministic", i);
        CHECKF(same_ids(a, c), "invalid case %zu differs from its cleaned form", i);
        char *n1 = ddps_clip_normalize(cases[i].bad), *n2 = ddps_clip_normalize(cases[i].same_as);
        CHECKF(!strcmp(n1, n2), "invalid case %zu normalizes to \"%s\"", i, n1);
        free(n1);
        free(n2);
    }
    /* Every single byte and every byte pair: no crash, output well-formed. */
    int ok = 1;
    for (int x = 1; x < 256 && ok; x++)
        for (int y = 0; y < 256 && ok; y += (x < 0x80 ? 37 : 1)) {
            char s[4] = {(char)x, (char)y, 'a', 0};
            int32_t ids[DDPS_CTX_LEN];
            ddps_tokenize(sd, s, ids);
            ok = ids[0] == 49406 && ids[DDPS_CTX_LEN - 1] == 49407;
            for (int k = 0; k < DDPS_CTX_LEN; k++) ok &= ids[k] >= 0 && ids[k] < 49408;
        }
    CHECK(ok);
}

static void test_truncation(void) {
    int32_t ids[DDPS_CTX_LEN], dog = 1929;
    /* exactly 75 tokens fit; 76 do not */
    char text[8192] = "";
    for (int i = 0; i < 75; i++) strcat(text, "dog ");
    CHECK(ddps_tokenize_truncated(sd, text, ids) == 0);
    CHECK(ids[75] == dog && ids[76] == 49407);
    strcat(text, "cat");
    CHECK(ddps_tokenize_truncated(sd, text, ids) == 1);
    CHECK(ids[0] == 49406 && ids[75] == dog && ids[76] == 49407);

    /* 1 MB of text: truncates, fast, BOS/EOS in place */
    size_t big = 1 << 20;
    char *s = malloc(big + 1);
    for (size_t i = 0; i < big; i++) s[i] = "a photo of a dog, "[i % 18];
    s[big] = 0;
    double t0 = now();
    CHECK(ddps_tokenize_truncated(sd, s, ids) == 1);
    double dt = now() - t0;
    CHECK(ids[0] == 49406 && ids[1] == 320 && ids[2] == 1125 && ids[76] == 49407);
    fprintf(stderr, "   1 MB text: %.2f s\n", dt); /* speed is for ddps bench; a quadratic BPE hits the CTest timeout */

    /* one 200 kB word: BPE must stay O(n log n) */
    memset(s, 'a', 200000);
    s[200000] = 0;
    t0 = now();
    CHECK(ddps_tokenize_truncated(sd, s, ids) == 1);
    dt = now() - t0;
    fprintf(stderr, "   200 kB word: %.2f s\n", dt);
    int all_known = 1;
    for (int k = 1; k < 76; k++) all_known &= ids[k] != 49407 && ddps_tokenizer_token(sd, ids[k]) != NULL;
    CHECK(all_known);

    /* 100k combining marks after one letter: canonical ordering stays fast */
    size_t n = 0;
    s[n++] = 'e';
    for (int i = 0; i < 50000; i++) {
        memcpy(s + n, "\xcc\x81\xcc\xa3", 4); /* acute (230), dot below (220) */
        n += 4;
    }
    s[n] = 0;
    t0 = now();
    ddps_tokenize(sd, s, ids);
    dt = now() - t0;
    fprintf(stderr, "   combining run: %.2f s\n", dt);
    CHECK(ids[0] == 49406 && ids[76] == 49407);
    /* e + dot below + acute composes to U+1EB9 then keeps the marks */
    char *norm = ddps_clip_normalize(s);
    CHECK(!strncmp(norm, "\xe1\xba\xb9\xcc\xa3", 5));
    free(norm);
    free(s);

    /* NULL is the empty prompt */
    int32_t e[DDPS_CTX_LEN];
    ddps_tokenize(sd, NULL, ids);
    ddps_tokenize(sd, "", e);
    CHECK(same_ids(ids, e) && framed_as(sd, e, NULL, 0));
}

/* Compares ddps_clip_normalize with Python's unicodedata on every code point
 * below U+3400 and a sample above, alone and in context, and on random
 * sequences of marks, jamo and cased letters. The reference is transformers'
 * BasicTokenizer clean-up, restated. Skipped when python3 is absent or its
 * Unicode version differs from the tables'. */
static const char *PY_NORMALIZE =
    "import random, sys, unicodedata\n"
    "print(unicodedata.unidata_version)\n"
    "def cjk(c):\n"
    "    return any(a <= c <= b for a, b in ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF),\n"
    "        (0x2A700, 0x2B73F), (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))\n"
    "def norm(t):\n"
    "    o = []\n"
    "    for ch in t:\n"
    "        c = ord(ch); cat = unicodedata.category(ch)\n"
    "        if c == 0 or c == 0xFFFD or (ch not in '\\t\\n\\r' and cat[0] == 'C'): continue\n"
    "        if ch in ' \\t\\n\\r' or cat == 'Zs': o.append(' ')\n"
    "        elif cjk(c): o.append(' ' + ch + ' ')\n"
    "        else: o.append(ch)\n"
    "    t = unicodedata.normalize('NFC', ''.join(o))\n"
    "    return ' '.join(w.lower() for w in t.split())\n"
    "cps = [c for c in range(1, 0x3400)] + list(range(0x3400, 0x110000, 61))\n"
    "ins = [chr(c) for c in cps if not 0xD800 <= c < 0xE000]\n"
    "ins = ins + ['x' + c + 'y ' + c for c in ins]\n"
    "random.seed(5)\n"
    "pool = [chr(c) for c in (0x41, 0x61, 0x3A3, 0x391, 0x27, 0x2E, 0xAD, 0x300, 0x301, 0x302, 0x323,\n"
    "    0x327, 0x31B, 0x345, 0x344, 0x340, 0x1100, 0x1161, 0x11A8, 0xAC00, 0xAC01, 0x20, 0x2028,\n"
    "    0x130, 0x49, 0x307, 0x6F, 0x1EA0, 0x1B05, 0x1B35, 0x9C7, 0x9BE, 0x9D7, 0xFB1D, 0x5B4, 0x4E00)]\n"
    "for i in range(4000):\n"
    "    ins.append(''.join(random.choice(pool) for _ in range(random.randint(1, 9))))\n"
    "for s in ins:\n"
    "    print(s.encode().hex() + ' ' + norm(s).encode().hex())\n";

static int hexval(int c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }

static void test_normalize_vs_python(void) {
    char *out = NULL;
    if (t_run("/usr/bin/python3 -c 'import unicodedata'", &out) != 0) {
        t_skip("/usr/bin/python3 with unicodedata is not available");
        free(out);
        return;
    }
    free(out);
    const char *dir = t_tmpdir("tok_python");
    char *script = ddps_path_join(dir, "norm.py"), *result = ddps_path_join(dir, "norm.txt");
    t_write(script, PY_NORMALIZE, strlen(PY_NORMALIZE));
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' > '%s'", script, result);
    CHECK(t_run(cmd, NULL) == 0);
    char *buf = NULL;
    size_t len = 0;
    ddps_err err;
    CHECKF(ddps_read_file(result, (size_t)1 << 30, &buf, &len, &err) == 0, "%s", err.msg);
    if (!buf) goto done;
    char *line = buf, *nl = strchr(line, '\n');
    if (!nl) goto done;
    *nl = 0;
    if (strcmp(line, ddps_clip_unicode_version()) != 0) {
        t_skip("python3 has Unicode %s, the tables %s", line, ddps_clip_unicode_version());
        goto done;
    }
    size_t cap = 1 << 16, total = 0, bad = 0;
    char *in = malloc(cap), *want = malloc(cap);
    for (line = nl + 1; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl) break;
        *nl = 0;
        char *sp = strchr(line, ' ');
        if (!sp) break;
        size_t ni = 0, nw = 0;
        for (char *p = line; p + 1 < sp; p += 2) in[ni++] = (char)(hexval(p[0]) * 16 + hexval(p[1]));
        for (char *p = sp + 1; p + 1 < nl; p += 2) want[nw++] = (char)(hexval(p[0]) * 16 + hexval(p[1]));
        in[ni] = want[nw] = 0;
        char *got = ddps_clip_normalize(in);
        if (strcmp(got, want) != 0 && bad++ < 5)
            fprintf(stderr, "     mismatch for input %s\n", line);
        free(got);
        total++;
    }
    fprintf(stderr, "   %zu strings compared with python3\n", total);
    CHECK(total > 20000);
    CHECK(bad == 0);
    free(in);
    free(want);
done:
    free(buf);
    free(script);
    free(result);
}

/* ---- hostile tokenizer folders ---- */

static const char *BASE_VOCAB =
    "{\"a\": 0, \"b\": 1, \"ab\": 2, \"a</w>\": 3, \"b</w>\": 4, \"ab</w>\": 5,"
    " \"<|startoftext|>\": 6, \"<|endoftext|>\": 7}";
static const char *BASE_MERGES = "#version: 0.2\na b\na b</w>\n";

static void put(const char *dir, const char *name, const char *text) {
    char *p = ddps_path_join(dir, name);
    if (text) t_write(p, text, strlen(text));
    else remove(p);
    free(p);
}

/* Makes a folder from the base files with one replaced (NULL: removed). */
static const char *folder(const char *name, const char *vocab, const char *merges,
                          const char *map, const char *config) {
    const char *dir = t_tmpdir(name);
    put(dir, "vocab.json", vocab);
    put(dir, "merges.txt", merges);
    put(dir, "special_tokens_map.json", map);
    put(dir, "tokenizer_config.json", config);
    return dir;
}

static void expect_fail(const char *dir, const char *file, const char *words, int line) {
    ddps_tokenizer *t = (ddps_tokenizer *)1;
    ddps_err err = {{0}};
    int rc = ddps_tokenizer_load(dir, &t, &err);
    int ok = rc == -1 && t == NULL && strstr(err.msg, file) && strstr(err.msg, words) &&
             !strchr(err.msg, '\n');
    CHECKF(ok, "line %d: rc %d, message \"%s\" (want %s / %s)", line, rc, err.msg, file, words);
    if (rc == 0) ddps_tokenizer_free(t);
}

static void test_small_valid_folder(void) {
    const char *dir = folder("tok_base", BASE_VOCAB, BASE_MERGES, NULL, NULL);
    ddps_tokenizer *t = NULL;
    ddps_err err;
    CHECKF(ddps_tokenizer_load(dir, &t, &err) == 0, "%s", err.msg);
    if (!t) return;
    CHECK(ddps_tokenizer_vocab_size(t) == 8 && ddps_tokenizer_bos(t) == 6 &&
          ddps_tokenizer_eos(t) == 7 && ddps_tokenizer_pad(t) == 7);
    int32_t ids[DDPS_CTX_LEN];
    /* "ab" -> a, b</w> -> ab</w>; "abab" -> ab, ab</w>; "c" is not in the
     * vocabulary: unk, which defaults to <|endoftext|> */
    ddps_tokenize(t, "ab ABAB c", ids);
    CHECK(framed_as(t, ids, (int32_t[]){5, 2, 5, 7}, 4));
    ddps_tokenizer_free(t);

    /* specials as {"content": ...} objects; the map overrides the config;
     * a pad token of its own; the "no limit" model_max_length */
    dir = folder("tok_specials", BASE_VOCAB, BASE_MERGES,
                 "{\"bos_token\": {\"content\": \"<|startoftext|>\", \"lstrip\": false},"
                 " \"pad_token\": \"a\"}",
                 "{\"pad_token\": \"b\", \"eos_token\": \"<|endoftext|>\","
                 " \"model_max_length\": 1000000000000000019884624838656}");
    CHECKF(ddps_tokenizer_load(dir, &t, &err) == 0, "%s", err.msg);
    if (!t) return;
    CHECK(ddps_tokenizer_pad(t) == 0 && ddps_tokenizer_bos(t) == 6);
    /* the pad token "a" is also split out of the text as a special */
    ddps_tokenize(t, "b", ids);
    CHECK(framed_as(t, ids, (int32_t[]){4}, 1) && ids[3] == 0);
    ddps_tokenize(t, "ab", ids);
    CHECK(framed_as(t, ids, (int32_t[]){0, 4}, 2));
    ddps_tokenizer_free(t);

    /* merges.txt without the #version line, with CRLF, blank lines, extra spaces */
    dir = folder("tok_crlf", BASE_VOCAB, "\r\n  a   b\r\n\r\na b</w>\r\n", NULL, NULL);
    CHECKF(ddps_tokenizer_load(dir, &t, &err) == 0, "%s", err.msg);
    if (!t) return;
    ddps_tokenize(t, "ab", ids);
    CHECK(framed_as(t, ids, (int32_t[]){5}, 1));
    ddps_tokenizer_free(t);
}

static void test_hostile(void) {
    const char *V = BASE_VOCAB, *M = BASE_MERGES;
#define FAIL(name, v, m, map, cfg, file, words) \
    expect_fail(folder(name, v, m, map, cfg), file, words, __LINE__)
    expect_fail(t_shared("golden/no-such-folder"), "no-such-folder", "not a tokenizer folder", __LINE__);
    FAIL("h_novocab", NULL, M, NULL, NULL, "vocab.json", "cannot open");
    FAIL("h_vocab_empty", "", M, NULL, NULL, "vocab.json", "empty");
    FAIL("h_vocab_garbage", "this is not json", M, NULL, NULL, "vocab.json", "not valid JSON");
    FAIL("h_vocab_binary", "\x89PNG\r\n\x1a\n\x01\x02", M, NULL, NULL, "vocab.json", "not valid JSON");
    FAIL("h_vocab_trunc", "{\"a\": 0, \"b\":", M, NULL, NULL, "vocab.json", "not valid JSON");
    FAIL("h_vocab_array", "[\"a\", \"b\"]", M, NULL, NULL, "vocab.json", "JSON object");
    FAIL("h_vocab_noent", "{}", M, NULL, NULL, "vocab.json", "empty");
    FAIL("h_vocab_real", "{\"a\": 0, \"b\": 1.5}", M, NULL, NULL, "vocab.json", "not an integer");
    FAIL("h_vocab_str", "{\"a\": 0, \"b\": \"1\"}", M, NULL, NULL, "vocab.json", "not an integer");
    FAIL("h_vocab_null", "{\"a\": null}", M, NULL, NULL, "vocab.json", "not an integer");
    FAIL("h_vocab_neg", "{\"a\": -1}", M, NULL, NULL, "vocab.json", "outside");
    FAIL("h_vocab_big", "{\"a\": 0, \"b\": 99999999999}", M, NULL, NULL, "vocab.json", "outside");
    FAIL("h_vocab_huge", "{\"a\": 123456789012345678901234567890}", M, NULL, NULL, "vocab.json",
         "not valid JSON");
    FAIL("h_vocab_dupid", "{\"a\": 0, \"b\": 0}", M, NULL, NULL, "vocab.json", "used by both");
    FAIL("h_vocab_dupkey", "{\"a\": 0, \"a\": 1}", M, NULL, NULL, "vocab.json", "duplicate");
    FAIL("h_vocab_emptykey", "{\"\": 0}", M, NULL, NULL, "vocab.json", "non-empty");
    FAIL("h_nomerges", V, NULL, NULL, NULL, "merges.txt", "cannot open");
    FAIL("h_merges_empty", V, "", NULL, NULL, "merges.txt", "empty");
    FAIL("h_merges_blank", V, " \n\n \n", NULL, NULL, "merges.txt", "empty");
    FAIL("h_merges_one", V, "#version: 0.2\na b\nab\n", NULL, NULL, "merges.txt", "line 3: expected two");
    FAIL("h_merges_three", V, "#version: 0.2\na b b\n", NULL, NULL, "merges.txt", "expected two");
    FAIL("h_merges_unknown", V, "#version: 0.2\na z\n", NULL, NULL, "merges.txt", "\"z\" is not in vocab");
    FAIL("h_merges_result", V, "#version: 0.2\nb a\n", NULL, NULL, "merges.txt", "result \"ba\"");
    FAIL("h_merges_dup", V, "#version: 0.2\na b\na b\n", NULL, NULL, "merges.txt", "twice");
    {
        const char *dir = folder("h_merges_nulbytes", V, NULL, NULL, NULL);
        char *p = ddps_path_join(dir, "merges.txt");
        t_write(p, "a b\n\0\0\0\n", 8);
        free(p);
        expect_fail(dir, "merges.txt", "NUL", __LINE__);
    }
    FAIL("h_map_garbage", V, M, "{\"pad_token\": ", NULL, "special_tokens_map.json", "not valid JSON");
    FAIL("h_map_empty", V, M, "", NULL, "special_tokens_map.json", "empty");
    FAIL("h_map_array", V, M, "[]", NULL, "special_tokens_map.json", "JSON object");
    FAIL("h_map_pad", V, M, "{\"pad_token\": \"<pad>\"}", NULL, "special_tokens_map.json",
         "pad_token \"<pad>\" is not in vocab.json");
    FAIL("h_map_type", V, M, "{\"bos_token\": 5}", NULL, "special_tokens_map.json", "bos_token must be");
    FAIL("h_map_content", V, M, "{\"eos_token\": {\"lstrip\": true}}", NULL, "special_tokens_map.json",
         "eos_token must be");
    FAIL("h_cfg_garbage", V, M, NULL, "{{", "tokenizer_config.json", "not valid JSON");
    FAIL("h_cfg_len", V, M, NULL, "{\"model_max_length\": 64}", "tokenizer_config.json",
         "model_max_length is 64");
    FAIL("h_cfg_lentype", V, M, NULL, "{\"model_max_length\": \"77\"}", "tokenizer_config.json",
         "must be a number");
    FAIL("h_cfg_unk", V, M, NULL, "{\"unk_token\": \"<unk>\"}", "tokenizer_config.json",
         "unk_token \"<unk>\"");
    FAIL("h_no_bos", "{\"a\": 0, \"<|endoftext|>\": 1}", "#version: 0.2\n", NULL, NULL, "vocab.json",
         "has no \"<|startoftext|>\"");
#undef FAIL
}

/* ---- the demo tokenizer ---- */

/* Concatenated vocabulary strings of the text tokens of ids. */
static void joined(const ddps_tokenizer *t, const int32_t *ids, char *out, size_t cap) {
    out[0] = 0;
    for (int k = 1; k < DDPS_CTX_LEN && ids[k] != ddps_tokenizer_eos(t); k++) {
        const char *s = ddps_tokenizer_token(t, ids[k]);
        if (s && strlen(out) + strlen(s) < cap) strcat(out, s);
    }
}

static void test_write_small(void) {
    static const char *const words[] = {"tench",  "English springer", "Shih-Tzu", "jack-o'-lantern",
                                        "caf\xc3\xa9", "abc", "bc", "ab", "abcd", "b", "", "  ",
                                        NULL, "AN IMAGE OF"};
    static const struct {
        const char *text;
        int n;
        const char *tokens[6];
    } expect[] = {
        {"tench", 1, {"tench</w>"}},
        {"An image of English springer.", 6,
         {"an</w>", "image</w>", "of</w>", "english</w>", "springer</w>", ".</w>"}},
        {"shih-tzu", 3, {"shih</w>", "-</w>", "tzu</w>"}},
        {"Jack-o'-Lantern", 5, {"jack</w>", "-</w>", "o</w>", "'-</w>", "lantern</w>"}},
        {"CAF\xc3\x89", 1, {"caf\xc3\x83\xc2\xa9</w>"}}, /* byte-level form of "café" */
        {"abc bc ab abcd b", 5, {"abc</w>", "bc</w>", "ab</w>", "abcd</w>", "b</w>"}},
    };
    const char *dir = t_tmpdir("tok_small");
    char *sub = ddps_path_join(dir, "tokenizer");
    ddps_err err;
    int vs = -1;
    CHECKF(ddps_tokenizer_write_small(sub, words, (int)(sizeof words / sizeof words[0]), &vs, &err) == 0,
           "%s", err.msg);
    ddps_tokenizer *t = NULL;
    CHECKF(ddps_tokenizer_load(sub, &t, &err) == 0, "%s", err.msg);
    if (!t) {
        free(sub);
        return;
    }
    CHECK(vs > 514 && vs == ddps_tokenizer_vocab_size(t));
    CHECK(ddps_tokenizer_bos(t) == vs - 2 && ddps_tokenizer_eos(t) == vs - 1 &&
          ddps_tokenizer_pad(t) == vs - 1);
    CHECK(!strcmp(ddps_tokenizer_token(t, vs - 2), "<|startoftext|>"));
    /* ids are contiguous, and the 512 byte symbols sit where CLIP has them */
    int contiguous = 1, clip_order = 1;
    for (int i = 0; i < vs; i++) contiguous &= ddps_tokenizer_token(t, i) != NULL;
    for (int i = 0; i < 512; i++)
        clip_order &= !strcmp(ddps_tokenizer_token(t, i), ddps_tokenizer_token(sd, i));
    CHECK(contiguous);
    CHECK(clip_order);

    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        int32_t ids[DDPS_CTX_LEN];
        ddps_tokenize(t, expect[i].text, ids);
        int ok = body_len(t, ids) == expect[i].n;
        for (int k = 0; ok && k < expect[i].n; k++) {
            const char *s = ddps_tokenizer_token(t, ids[k + 1]);
            ok = s && !strcmp(s, expect[i].tokens[k]);
        }
        CHECKF(ok, "small tokenizer: \"%s\" is not %d single tokens", expect[i].text, expect[i].n);
    }
    /* Unseen text still tokenizes, into pieces that spell it. */
    int32_t ids[DDPS_CTX_LEN];
    char buf[512];
    ddps_tokenize(t, "Zebra! 42", ids);
    joined(t, ids, buf, sizeof buf);
    CHECKF(!strcmp(buf, "zebra</w>!</w>4</w>2</w>"), "got \"%s\"", buf);
    ddps_tokenizer_free(t);

    /* No words: the 512 symbols and the two specials. */
    char *sub2 = ddps_path_join(dir, "empty");
    CHECK(ddps_tokenizer_write_small(sub2, NULL, 0, &vs, &err) == 0 && vs == 514);
    CHECKF(ddps_tokenizer_load(sub2, &t, &err) == 0, "%s", err.msg);
    if (t) {
        ddps_tokenize(t, "ab", ids);
        CHECK(framed_as(t, ids, (int32_t[]){64, 321}, 2)); /* "a", "b</w>" */
        ddps_tokenizer_free(t);
    }

    /* Errors: a bad count, a folder that cannot be made. */
    CHECK(ddps_tokenizer_write_small(sub2, words, -1, &vs, &err) == -1 && strstr(err.msg, "word list"));
    char *file = ddps_path_join(dir, "plainfile");
    t_write(file, "x", 1);
    char *under = ddps_path_join(file, "tokenizer");
    CHECK(ddps_tokenizer_write_small(under, words, 2, &vs, &err) == -1 && strstr(err.msg, "plainfile"));
    free(file);
    free(under);
    free(sub2);
    free(sub);
}

/* Parts: "" everything but the Python comparison; "python" that comparison
 * (skipped without /usr/bin/python3 of the tables' Unicode version). */
int main(int argc, char **argv) {
    TEST(test_load_sd);
    if (strcmp(t_part(argc, argv), "python") == 0) {
        if (sd) TEST(test_normalize_vs_python);
        ddps_tokenizer_free(sd);
        return t_done();
    }
    TEST(test_golden);
    TEST(test_tricky);
    TEST(test_normalize);
    TEST(test_invalid_utf8);
    TEST(test_truncation);
    TEST(test_small_valid_folder);
    TEST(test_hostile);
    TEST(test_write_small);
    ddps_tokenizer_free(sd);
    return t_done();
}
