/* CLIP byte-level BPE tokenizer. The rules are documented in tokenizer.h;
 * this file follows them in order: special-token split, clean-up and
 * normalisation, pre-tokenisation, BPE, framing. Text is handled as arrays
 * of code points (uint32_t) until BPE, which works on UTF-8 bytes.
 *
 * Data structures: the vocabulary is a string pool indexed by id plus an
 * open-addressing hash table from string to id; merges are an
 * open-addressing table from the id pair (a, b) to (rank, id of "ab").
 * Working on ids makes BPE string-free: a merge's result id is looked up
 * once, at load time. */
#include "models/tokenizer.h"

#include "models/config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/unicode_tables.h"
#include "util/fs.h"
#include "util/utf8.h"

/* CLIPTokenizer reads merges.txt lines [1 : 49152 - 256 - 2 + 1]. */
#define CLIP_MAX_MERGES (49152 - 256 - 2)
#define VOCAB_FILE_LIMIT ((size_t)64 << 20)
#define CONFIG_FILE_LIMIT ((size_t)1 << 20)
#define NO_OFF UINT32_MAX
#define SOT_LITERAL "<|startoftext|>"
#define EOT_LITERAL "<|endoftext|>"

typedef struct {
    uint32_t *cp; /* the token string as code points */
    size_t len;
    int32_t id;
} special_tok;

struct ddps_tokenizer {
    /* Vocabulary strings, NUL-terminated, in one pool; tok_off[id] is the
     * offset of id's string or NO_OFF when no entry has that id. */
    char *pool;
    size_t pool_len, pool_cap;
    uint32_t *tok_off, *tok_len;
    int32_t id_cap, max_id, nvocab;
    int32_t *vslot; /* hash slots holding ids, -1 = empty */
    uint32_t vmask;
    /* Merges: key (a << 32 | b) -> rank, result id. Key 0 is never a
     * valid pair key with mrank -1 marking empty slots. */
    uint64_t *mkey;
    int32_t *mrank, *mres;
    uint32_t mmask;
    int32_t nmerges;
    /* Byte-level symbols: id of the stand-in character of each byte, and of
     * the same followed by "</w>"; -1 when the vocabulary lacks it. */
    int32_t byte_id[256], byte_id_w[256];
    int32_t bos, eos, unk, pad;
    int32_t lit_sot, lit_eot; /* ids of the two literal pieces, -1 if absent */
    special_tok special[4];
    int nspecial;
};

/* ------------------------------------------------------------------ */
/* Growable code point buffer                                          */

typedef struct {
    uint32_t *v;
    size_t n, cap;
} cpbuf;

static void cp_reserve(cpbuf *b, size_t need) {
    if (need <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    b->v = ddps_realloc(b->v, cap * sizeof *b->v);
    b->cap = cap;
}

static void cp_push(cpbuf *b, uint32_t c) {
    if (b->n == b->cap) cp_reserve(b, b->n + 1);
    b->v[b->n++] = c;
}

/* ------------------------------------------------------------------ */
/* UTF-8                                                               */

/* Decodes s[0..len) into out (util/utf8.h): each maximal ill-formed
 * subsequence becomes one U+FFFD (the "maximal subpart" practice of Unicode
 * ch. 3, which is also what Python's decode(errors="replace") does) and
 * decoding resumes at the byte that broke the sequence. */
static void utf8_decode(const unsigned char *s, size_t len, cpbuf *out) {
    cp_reserve(out, out->n + len);
    for (size_t i = 0; i < len;) {
        int n = ddps_utf8_next(s + i, len - i, &out->v[out->n++]);
        i += (size_t)(n < 0 ? -n : n);
    }
}

/* ------------------------------------------------------------------ */
/* Unicode properties (tables from scripts/gen_unicode_tables.py)      */

static int uc_class(uint32_t c) {
    size_t lo = 0, hi = sizeof uc_class_runs / sizeof uc_class_runs[0];
    while (hi - lo > 1) { /* last run starting at or before c */
        size_t mid = (lo + hi) / 2;
        if ((uc_class_runs[mid] >> 3) <= c) lo = mid;
        else hi = mid;
    }
    return (int)(uc_class_runs[lo] & 7);
}

static int in_ranges(const uc_range *r, size_t n, uint32_t c) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < r[mid].lo) hi = mid;
        else if (c > r[mid].hi) lo = mid + 1;
        else return 1;
    }
    return 0;
}

static int is_cased(uint32_t c) {
    return in_ranges(uc_cased, sizeof uc_cased / sizeof uc_cased[0], c);
}

static int is_case_ignorable(uint32_t c) {
    return in_ranges(uc_case_ignorable, sizeof uc_case_ignorable / sizeof uc_case_ignorable[0], c);
}

static uint32_t ccc_of(uint32_t c) {
    if (c < 0x300) return 0;
    size_t lo = 0, hi = sizeof uc_ccc_runs / sizeof uc_ccc_runs[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < uc_ccc_runs[mid].lo) hi = mid;
        else if (c > uc_ccc_runs[mid].hi) lo = mid + 1;
        else return uc_ccc_runs[mid].ccc;
    }
    return 0;
}

/* BasicTokenizer._is_chinese_char: the CJK ideograph blocks it spaces out. */
static int is_cjk(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* ------------------------------------------------------------------ */
/* NFC (UAX #15: canonical decomposition, canonical ordering, composition) */

enum {
    HANGUL_S = 0xAC00, HANGUL_L = 0x1100, HANGUL_V = 0x1161, HANGUL_T = 0x11A7,
    HANGUL_LCOUNT = 19, HANGUL_VCOUNT = 21, HANGUL_TCOUNT = 28,
    HANGUL_NCOUNT = HANGUL_VCOUNT * HANGUL_TCOUNT, HANGUL_SCOUNT = HANGUL_LCOUNT * HANGUL_NCOUNT
};

static void decompose(uint32_t c, cpbuf *out, int depth) {
    if (c >= HANGUL_S && c < HANGUL_S + HANGUL_SCOUNT) {
        uint32_t s = c - HANGUL_S, t = s % HANGUL_TCOUNT;
        cp_push(out, HANGUL_L + s / HANGUL_NCOUNT);
        cp_push(out, HANGUL_V + (s % HANGUL_NCOUNT) / HANGUL_TCOUNT);
        if (t) cp_push(out, HANGUL_T + t);
        return;
    }
    if (c >= 0xC0 && depth < 8) { /* nothing below U+00C0 decomposes */
        size_t lo = 0, hi = sizeof uc_decomps / sizeof uc_decomps[0];
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (c < uc_decomps[mid].cp) hi = mid;
            else if (c > uc_decomps[mid].cp) lo = mid + 1;
            else {
                decompose(uc_decomps[mid].a, out, depth + 1);
                if (uc_decomps[mid].b) decompose(uc_decomps[mid].b, out, depth + 1);
                return;
            }
        }
    }
    cp_push(out, c);
}

static int compose(uint32_t a, uint32_t b, uint32_t *out) {
    if (a >= HANGUL_L && a < HANGUL_L + HANGUL_LCOUNT && b >= HANGUL_V &&
        b < HANGUL_V + HANGUL_VCOUNT) {
        *out = HANGUL_S + ((a - HANGUL_L) * HANGUL_VCOUNT + (b - HANGUL_V)) * HANGUL_TCOUNT;
        return 1;
    }
    if (a >= HANGUL_S && a < HANGUL_S + HANGUL_SCOUNT && (a - HANGUL_S) % HANGUL_TCOUNT == 0 &&
        b > HANGUL_T && b < HANGUL_T + HANGUL_TCOUNT) {
        *out = a + (b - HANGUL_T);
        return 1;
    }
    size_t lo = 0, hi = sizeof uc_comps / sizeof uc_comps[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const uc_comp *e = &uc_comps[mid];
        if (a < e->a || (a == e->a && b < e->b)) hi = mid;
        else if (a > e->a || b > e->b) lo = mid + 1;
        else {
            *out = e->cp;
            return 1;
        }
    }
    return 0;
}

static int cmp_u64(const void *x, const void *y) {
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* Stable sort of a run of non-starters by combining class. Short runs (the
 * only ones real text has) use insertion sort; long ones sort (ccc, index)
 * keys so that adversarial input stays O(n log n). */
static void sort_marks(uint32_t *v, size_t n) {
    if (n <= 32) {
        for (size_t i = 1; i < n; i++) {
            uint32_t c = v[i], k = ccc_of(c);
            size_t j = i;
            while (j > 0 && ccc_of(v[j - 1]) > k) {
                v[j] = v[j - 1];
                j--;
            }
            v[j] = c;
        }
        return;
    }
    uint64_t *key = ddps_malloc(n * sizeof *key);
    uint32_t *copy = ddps_malloc(n * sizeof *copy);
    for (size_t i = 0; i < n; i++) {
        key[i] = ((uint64_t)ccc_of(v[i]) << 32) | i;
        copy[i] = v[i];
    }
    qsort(key, n, sizeof *key, cmp_u64);
    for (size_t i = 0; i < n; i++) v[i] = copy[key[i] & 0xFFFFFFFFu];
    free(key);
    free(copy);
}

/* In place: buf becomes NFC(buf). tmp is scratch. */
static void nfc(cpbuf *buf, cpbuf *tmp) {
    size_t i;
    for (i = 0; i < buf->n; i++)
        if (buf->v[i] >= DDPS_UC_NFC_SAFE_BELOW) break;
    if (i == buf->n) return; /* the common case: nothing can change */
    tmp->n = 0;
    for (i = 0; i < buf->n; i++) decompose(buf->v[i], tmp, 0);
    for (i = 0; i < tmp->n;) {
        if (ccc_of(tmp->v[i]) == 0) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < tmp->n && ccc_of(tmp->v[j]) != 0) j++;
        if (j - i > 1) sort_marks(tmp->v + i, j - i);
        i = j;
    }
    /* Composition: each character joins the last starter unless blocked by
     * an uncomposed character in between of class 0 or of class >= its own. */
    uint32_t *v = tmp->v;
    size_t w = 0, starter = SIZE_MAX;
    int last = -1; /* class of the last character kept after the starter, -1: none */
    for (i = 0; i < tmp->n; i++) {
        uint32_t c = v[i], comp;
        int cc = (int)ccc_of(c);
        if (starter != SIZE_MAX && (last == -1 || (last != 0 && last < cc)) &&
            compose(v[starter], c, &comp)) {
            v[starter] = comp;
            continue;
        }
        if (cc == 0) {
            starter = w;
            last = -1;
        } else {
            last = cc;
        }
        v[w++] = c;
    }
    tmp->n = w;
    cpbuf t = *buf; /* swap: the result lives in buf */
    *buf = *tmp;
    *tmp = t;
}

/* ------------------------------------------------------------------ */
/* Lower-casing as Python's str.lower()                                */

static void lower_char(uint32_t c, cpbuf *out) {
    if (c < 0x80) {
        cp_push(out, c >= 'A' && c <= 'Z' ? c + 32 : c);
        return;
    }
    for (size_t k = 0; k < sizeof uc_lower_multis / sizeof uc_lower_multis[0]; k++)
        if (uc_lower_multis[k].cp == c) {
            for (int j = 0; j < 3 && uc_lower_multis[k].to[j]; j++)
                cp_push(out, uc_lower_multis[k].to[j]);
            return;
        }
    size_t lo = 0, hi = sizeof uc_lower_ranges / sizeof uc_lower_ranges[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const uc_lower_range *r = &uc_lower_ranges[mid];
        if (c < r->lo) hi = mid;
        else if (c > r->hi) lo = mid + 1;
        else {
            if ((c - r->lo) % r->stride == 0) c = (uint32_t)((int32_t)c + r->delta);
            break;
        }
    }
    cp_push(out, c);
}

/* Capital sigma lower-cases to final sigma when a cased character precedes
 * it and none follows, case-ignorable characters skipped on both sides. */
static int final_sigma(const uint32_t *v, size_t n, size_t i) {
    size_t j = i;
    while (j > 0 && is_case_ignorable(v[j - 1])) j--;
    if (j == 0 || !is_cased(v[j - 1])) return 0;
    for (j = i + 1; j < n && is_case_ignorable(v[j]); j++) {
    }
    return j == n || !is_cased(v[j]);
}

/* ------------------------------------------------------------------ */
/* Clean-up (rules of tokenizer.h step 2)                              */

/* in[0..n) -> out (cleared first): the normalised text, single spaces, no
 * leading or trailing space. tmp is scratch. */
static void clip_normalize_cps(const uint32_t *in, size_t n, cpbuf *out, cpbuf *tmp) {
    cpbuf a = {0};
    cp_reserve(&a, n + 16);
    for (size_t i = 0; i < n; i++) {
        uint32_t c = in[i];
        if (c == 0 || c == 0xFFFD) continue;
        if (c == '\t' || c == '\n' || c == '\r') {
            cp_push(&a, ' ');
            continue;
        }
        int k = uc_class(c);
        if (k == UC_CONTROL) continue;
        if (k == UC_SPACE) {
            cp_push(&a, ' ');
        } else if (is_cjk(c)) {
            cp_push(&a, ' ');
            cp_push(&a, c);
            cp_push(&a, ' ');
        } else {
            cp_push(&a, c);
        }
    }
    nfc(&a, tmp);
    tmp->n = 0;
    for (size_t i = 0; i < a.n; i++) {
        if (a.v[i] == 0x3A3) cp_push(tmp, final_sigma(a.v, a.n, i) ? 0x3C2 : 0x3C3);
        else lower_char(a.v[i], tmp);
    }
    free(a.v);
    /* str.split() + " ".join(): Zl/Zp are the only whitespace left besides
     * the spaces made above. */
    out->n = 0;
    cp_reserve(out, tmp->n);
    for (size_t i = 0; i < tmp->n; i++) {
        uint32_t c = tmp->v[i];
        int space = c == ' ' || (c >= 0x80 && uc_class(c) == UC_LINESEP);
        if (space) {
            if (out->n && out->v[out->n - 1] != ' ') out->v[out->n++] = ' ';
        } else {
            out->v[out->n++] = c;
        }
    }
    if (out->n && out->v[out->n - 1] == ' ') out->n--;
}

/* ------------------------------------------------------------------ */
/* Pre-tokenisation (step 3)                                           */

/* U+0345 case-folds to a Greek letter but is a mark: under the reference's
 * case-insensitive matching none of the pattern's classes accepts it, so it
 * is skipped like whitespace. */
#define YPOGEGRAMMENI 0x345

/* Matches an ASCII literal at v[i..n); 's' also matches U+017F LONG S, its
 * case-insensitive equivalent (the text is lower-case already). */
static size_t match_literal(const uint32_t *v, size_t n, size_t i, const char *lit) {
    size_t k = 0;
    for (; lit[k]; k++) {
        if (i + k >= n) return 0;
        uint32_t c = v[i + k];
        if (c != (unsigned char)lit[k] && !(lit[k] == 's' && c == 0x17F)) return 0;
    }
    return k;
}

/* Finds the next piece at or after *pos: sets [*s, *e) and returns 1, or
 * returns 0 at the end. */
static int next_piece(const uint32_t *v, size_t n, size_t *pos, size_t *s, size_t *e) {
    static const char *const lits[] = {SOT_LITERAL, EOT_LITERAL, "'s", "'t", "'re", "'ve",
                                       "'m", "'ll", "'d"};
    size_t i = *pos;
    while (i < n && (v[i] == ' ' || v[i] == YPOGEGRAMMENI)) i++;
    if (i >= n) {
        *pos = n;
        return 0;
    }
    size_t j = i;
    if (v[i] == '<' || v[i] == '\'') {
        for (size_t k = 0; k < sizeof lits / sizeof lits[0]; k++) {
            size_t m = match_literal(v, n, i, lits[k]);
            if (m) {
                j = i + m;
                break;
            }
        }
    }
    if (j == i) {
        int k = uc_class(v[i]);
        j = i + 1;
        if (k == UC_LETTER) {
            while (j < n && uc_class(v[j]) == UC_LETTER) j++;
        } else if (k != UC_NUMBER) {
            while (j < n && v[j] != ' ' && v[j] != YPOGEGRAMMENI) {
                int kj = uc_class(v[j]);
                if (kj == UC_LETTER || kj == UC_NUMBER) break;
                j++;
            }
        }
    }
    *s = i;
    *e = j;
    *pos = j;
    return 1;
}

/* ------------------------------------------------------------------ */
/* Vocabulary and merge tables                                         */

static uint32_t hash_bytes(const char *s, size_t n) {
    uint64_t h = ddps_fnv1a(DDPS_FNV_INIT, s, n);
    return (uint32_t)(h ^ (h >> 32));
}

static uint32_t hash_pair(uint64_t key) {
    key *= 0x9E3779B97F4A7C15ULL;
    return (uint32_t)(key >> 32);
}

static int32_t vocab_find(const ddps_tokenizer *t, const char *s, size_t n) {
    if (!t->vslot) return -1;
    for (uint32_t h = hash_bytes(s, n) & t->vmask;; h = (h + 1) & t->vmask) {
        int32_t id = t->vslot[h];
        if (id < 0) return -1;
        if (t->tok_len[id] == n && memcmp(t->pool + t->tok_off[id], s, n) == 0) return id;
    }
}

static void vocab_rehash(ddps_tokenizer *t, uint32_t cap) {
    free(t->vslot);
    t->vslot = ddps_malloc(cap * sizeof *t->vslot);
    memset(t->vslot, 0xFF, cap * sizeof *t->vslot);
    t->vmask = cap - 1;
    for (int32_t id = 0; id <= t->max_id; id++) {
        if (t->tok_off[id] == NO_OFF) continue;
        uint32_t h = hash_bytes(t->pool + t->tok_off[id], t->tok_len[id]) & t->vmask;
        while (t->vslot[h] >= 0) h = (h + 1) & t->vmask;
        t->vslot[h] = id;
    }
}

/* Adds s[0..n) with the given id. The caller has checked that neither the
 * string nor the id is present and that id <= DDPS_TOKENIZER_MAX_ID. */
static void vocab_add(ddps_tokenizer *t, const char *s, size_t n, int32_t id) {
    if (id >= t->id_cap) {
        int32_t cap = t->id_cap ? t->id_cap : 1024;
        while (cap <= id) cap *= 2;
        t->tok_off = ddps_realloc(t->tok_off, (size_t)cap * sizeof *t->tok_off);
        t->tok_len = ddps_realloc(t->tok_len, (size_t)cap * sizeof *t->tok_len);
        for (int32_t k = t->id_cap; k < cap; k++) {
            t->tok_off[k] = NO_OFF;
            t->tok_len[k] = 0;
        }
        t->id_cap = cap;
    }
    if (t->pool_len + n + 1 > t->pool_cap) {
        size_t cap = t->pool_cap ? t->pool_cap : 4096;
        while (cap < t->pool_len + n + 1) cap *= 2;
        t->pool = ddps_realloc(t->pool, cap);
        t->pool_cap = cap;
    }
    memcpy(t->pool + t->pool_len, s, n);
    t->pool[t->pool_len + n] = 0;
    t->tok_off[id] = (uint32_t)t->pool_len;
    t->tok_len[id] = (uint32_t)n;
    t->pool_len += n + 1;
    t->nvocab++;
    if (id > t->max_id) t->max_id = id;
    if (!t->vslot || (uint32_t)t->nvocab * 2 > t->vmask + 1) {
        uint32_t cap = t->vslot ? (t->vmask + 1) * 2 : 1024;
        while ((uint32_t)t->nvocab * 2 > cap) cap *= 2;
        vocab_rehash(t, cap);
    } else {
        uint32_t h = hash_bytes(s, n) & t->vmask;
        while (t->vslot[h] >= 0) h = (h + 1) & t->vmask;
        t->vslot[h] = id;
    }
}

static uint64_t pair_key(int32_t a, int32_t b) {
    return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
}

/* Slot of the pair (a, b): holds it, or is the empty slot to put it in. */
static uint32_t merge_slot(const ddps_tokenizer *t, uint64_t key) {
    uint32_t h = hash_pair(key) & t->mmask;
    while (t->mrank[h] >= 0 && t->mkey[h] != key) h = (h + 1) & t->mmask;
    return h;
}

static int merge_find(const ddps_tokenizer *t, int32_t a, int32_t b, int32_t *rank, int32_t *res) {
    if (!t->mrank || a < 0 || b < 0) return 0;
    uint32_t h = merge_slot(t, pair_key(a, b));
    if (t->mrank[h] < 0) return 0;
    *rank = t->mrank[h];
    *res = t->mres[h];
    return 1;
}

static void merge_table_alloc(ddps_tokenizer *t, uint32_t cap) {
    uint64_t *okey = t->mkey;
    int32_t *orank = t->mrank, *ores = t->mres;
    uint32_t ocap = t->mrank ? t->mmask + 1 : 0;
    t->mkey = ddps_malloc(cap * sizeof *t->mkey);
    t->mrank = ddps_malloc(cap * sizeof *t->mrank);
    t->mres = ddps_malloc(cap * sizeof *t->mres);
    memset(t->mrank, 0xFF, cap * sizeof *t->mrank);
    t->mmask = cap - 1;
    for (uint32_t k = 0; k < ocap; k++) {
        if (orank[k] < 0) continue;
        uint32_t h = merge_slot(t, okey[k]);
        t->mkey[h] = okey[k];
        t->mrank[h] = orank[k];
        t->mres[h] = ores[k];
    }
    free(okey);
    free(orank);
    free(ores);
}

/* Adds merge (a, b) -> res with the next rank. Returns -1 if the pair is
 * already there. */
static int merge_add(ddps_tokenizer *t, int32_t a, int32_t b, int32_t res) {
    if (!t->mrank || (uint32_t)(t->nmerges + 1) * 2 > t->mmask + 1) {
        uint32_t cap = t->mrank ? (t->mmask + 1) * 2 : 1024;
        merge_table_alloc(t, cap);
    }
    uint64_t key = pair_key(a, b);
    uint32_t h = merge_slot(t, key);
    if (t->mrank[h] >= 0) return -1;
    t->mkey[h] = key;
    t->mrank[h] = t->nmerges++;
    t->mres[h] = res;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Byte-level BPE (step 4)                                             */

/* GPT-2's byte -> stand-in character map: printable Latin-1 bytes stand for
 * themselves, the other 68 get U+0100.. in byte order. */
static uint32_t byte_char(unsigned b) {
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return b;
    uint32_t n = 0;
    for (unsigned k = 0; k < b; k++)
        if (!((k >= '!' && k <= '~') || (k >= 0xA1 && k <= 0xAC) || (k >= 0xAE && k <= 0xFF))) n++;
    return 256 + n;
}

/* Vocabulary string of byte b's symbol, with "</w>" if w: returns length. */
static size_t byte_symbol(unsigned b, int w, char *out) {
    size_t n = ddps_utf8_put(byte_char(b), out);
    if (w) {
        memcpy(out + n, "</w>", 4);
        n += 4;
    }
    return n;
}

static void set_byte_ids(ddps_tokenizer *t) {
    char buf[16];
    for (unsigned b = 0; b < 256; b++) {
        t->byte_id[b] = vocab_find(t, buf, byte_symbol(b, 0, buf));
        t->byte_id_w[b] = vocab_find(t, buf, byte_symbol(b, 1, buf));
    }
}

typedef struct {
    int32_t rank, pos, a, b;
} bpe_cand;

typedef struct {
    int32_t *id, *next, *prev;
    bpe_cand *heap, *batch;
    size_t cap, hcap, nheap;
} bpe_work;

static void bpe_work_free(bpe_work *w) {
    free(w->id);
    free(w->next);
    free(w->prev);
    free(w->heap);
    free(w->batch);
}

static int cand_less(const bpe_cand *x, const bpe_cand *y) {
    return x->rank < y->rank || (x->rank == y->rank && x->pos < y->pos);
}

static void heap_push(bpe_work *w, bpe_cand c) {
    if (w->nheap == w->hcap) {
        w->hcap = w->hcap ? w->hcap * 2 : 64;
        w->heap = ddps_realloc(w->heap, w->hcap * sizeof *w->heap);
    }
    size_t i = w->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&c, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = c;
}

static bpe_cand heap_pop(bpe_work *w) {
    bpe_cand top = w->heap[0], last = w->heap[--w->nheap];
    size_t i = 0, n = w->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && cand_less(&w->heap[c + 1], &w->heap[c])) c++;
        if (!cand_less(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

static void push_pair(const ddps_tokenizer *t, bpe_work *w, int32_t pos) {
    int32_t nx = w->next[pos], rank, res;
    if (nx < 0) return;
    if (merge_find(t, w->id[pos], w->id[nx], &rank, &res))
        heap_push(w, (bpe_cand){rank, pos, w->id[pos], w->id[nx]});
}

static int cand_valid(const bpe_work *w, const bpe_cand *c) {
    int32_t nx = w->next[c->pos];
    return w->id[c->pos] == c->a && nx >= 0 && w->id[nx] == c->b;
}

/* BPE of one piece's bytes. Symbols are ids (-1: not in the vocabulary).
 * CLIPTokenizer repeatedly takes the lowest-ranked pair present and merges
 * all its occurrences left to right; a heap of (rank, position) candidates
 * does the same in O(n log n): it pops every candidate of the lowest rank
 * before merging any, so pairs created by those merges wait for the next
 * round exactly as in the reference. Stale candidates are skipped when the
 * symbols at their position no longer form their pair. Returns the symbol
 * count; the symbols are read by following next[] from 0. */
static size_t bpe_word(const ddps_tokenizer *t, const unsigned char *s, size_t n, bpe_work *w) {
    if (n > w->cap) {
        w->cap = n;
        w->id = ddps_realloc(w->id, n * sizeof *w->id);
        w->next = ddps_realloc(w->next, n * sizeof *w->next);
        w->prev = ddps_realloc(w->prev, n * sizeof *w->prev);
        w->batch = ddps_realloc(w->batch, n * sizeof *w->batch);
    }
    for (size_t i = 0; i < n; i++) {
        w->id[i] = i + 1 == n ? t->byte_id_w[s[i]] : t->byte_id[s[i]];
        w->next[i] = i + 1 < n ? (int32_t)(i + 1) : -1;
        w->prev[i] = (int32_t)i - 1;
    }
    w->nheap = 0;
    for (size_t i = 0; i + 1 < n; i++) push_pair(t, w, (int32_t)i);
    size_t count = n;
    while (w->nheap) {
        bpe_cand c = heap_pop(w);
        if (!cand_valid(w, &c)) continue;
        size_t nb = 0;
        w->batch[nb++] = c;
        while (w->nheap && w->heap[0].rank == c.rank) {
            bpe_cand d = heap_pop(w);
            /* A (rank, position) is pushed at most once: a position's symbol
             * only grows, so it never forms the same pair again. Hence at
             * most n - 1 candidates share a rank; the test is a guard. */
            if (nb < n) w->batch[nb++] = d;
        }
        int32_t rank = -1, res = -1;
        merge_find(t, c.a, c.b, &rank, &res);
        for (size_t k = 0; k < nb; k++) { /* ascending positions */
            bpe_cand *d = &w->batch[k];
            if (!cand_valid(w, d)) continue; /* overlapped by the previous one */
            int32_t p = d->pos, q = w->next[p];
            w->id[p] = res;
            w->next[p] = w->next[q];
            if (w->next[q] >= 0) w->prev[w->next[q]] = p;
            w->id[q] = -2; /* dead: never equal to a pair member */
            count--;
            if (w->prev[p] >= 0) push_pair(t, w, w->prev[p]);
            push_pair(t, w, p);
        }
    }
    return count;
}

/* ------------------------------------------------------------------ */
/* Tokenizing                                                          */

#define MAX_TEXT_TOKENS (DDPS_CTX_LEN - 2)

typedef struct {
    int32_t ids[MAX_TEXT_TOKENS + 1]; /* one extra: detects truncation */
    int n;
} tok_out;

static int emit(tok_out *o, int32_t id) {
    if (o->n <= MAX_TEXT_TOKENS) o->ids[o->n++] = id;
    return o->n > MAX_TEXT_TOKENS; /* 1: full, stop */
}

static int piece_is(const uint32_t *v, size_t n, const char *lit) {
    size_t k = 0;
    for (; lit[k]; k++)
        if (k >= n || v[k] != (unsigned char)lit[k]) return 0;
    return k == n;
}

typedef struct {
    cpbuf norm, tmp;
    char *bytes;
    size_t bcap;
    bpe_work bpe;
} scratch;

static void scratch_free(scratch *sc) {
    free(sc->norm.v);
    free(sc->tmp.v);
    free(sc->bytes);
    bpe_work_free(&sc->bpe);
}

/* Pieces of v[s..e) as UTF-8 bytes in sc->bytes; returns the byte count. */
static size_t piece_bytes(scratch *sc, const uint32_t *v, size_t s, size_t e) {
    size_t need = (e - s) * 4;
    if (need > sc->bcap) {
        sc->bcap = need;
        sc->bytes = ddps_realloc(sc->bytes, need);
    }
    size_t nb = 0;
    for (size_t i = s; i < e; i++) nb += ddps_utf8_put(v[i], sc->bytes + nb);
    return nb;
}

/* Steps 2-4 for one text segment. Returns 1 when the output is full. */
static int tokenize_segment(const ddps_tokenizer *t, const uint32_t *v, size_t n, scratch *sc,
                            tok_out *o) {
    clip_normalize_cps(v, n, &sc->norm, &sc->tmp);
    const uint32_t *b = sc->norm.v;
    size_t pos = 0, s, e;
    while (next_piece(b, sc->norm.n, &pos, &s, &e)) {
        if (piece_is(b + s, e - s, SOT_LITERAL) || piece_is(b + s, e - s, EOT_LITERAL)) {
            int32_t id = e - s == strlen(SOT_LITERAL) ? t->lit_sot : t->lit_eot;
            if (emit(o, id >= 0 ? id : t->unk)) return 1;
            continue;
        }
        size_t nb = piece_bytes(sc, b, s, e);
        bpe_word(t, (const unsigned char *)sc->bytes, nb, &sc->bpe);
        for (int32_t p = 0; p >= 0; p = sc->bpe.next[p]) {
            int32_t id = sc->bpe.id[p];
            if (emit(o, id >= 0 ? id : t->unk)) return 1;
        }
    }
    return 0;
}

/* Step 1: the earliest special-token match at or after i, longest first. */
static int find_special(const ddps_tokenizer *t, const uint32_t *v, size_t n, size_t i,
                        size_t *at, int *which) {
    for (; i < n; i++) {
        int best = -1;
        for (int k = 0; k < t->nspecial; k++) {
            const special_tok *sp = &t->special[k];
            if (sp->len > n - i || (best >= 0 && sp->len <= t->special[best].len)) continue;
            if (memcmp(v + i, sp->cp, sp->len * sizeof *v) == 0) best = k;
        }
        if (best >= 0) {
            *at = i;
            *which = best;
            return 1;
        }
    }
    return 0;
}

int ddps_tokenize_truncated(const ddps_tokenizer *t, const char *text, int32_t ids[DDPS_CTX_LEN]) {
    if (!text) text = "";
    cpbuf in = {0};
    utf8_decode((const unsigned char *)text, strnlen(text, DDPS_TOKENIZER_MAX_TEXT), &in);
    scratch sc = {0};
    tok_out o = {.n = 0};
    size_t i = 0, at;
    int which = 0, full = 0;
    while (!full && i < in.n) {
        if (!find_special(t, in.v, in.n, i, &at, &which)) at = in.n;
        if (at > i) full = tokenize_segment(t, in.v + i, at - i, &sc, &o);
        if (full || at == in.n) break;
        full = emit(&o, t->special[which].id);
        i = at + t->special[which].len;
    }
    free(in.v);
    scratch_free(&sc);
    int truncated = o.n > MAX_TEXT_TOKENS;
    int n = truncated ? MAX_TEXT_TOKENS : o.n, k = 0;
    ids[k++] = t->bos;
    for (int j = 0; j < n; j++) ids[k++] = o.ids[j];
    ids[k++] = t->eos;
    while (k < DDPS_CTX_LEN) ids[k++] = t->pad;
    return truncated;
}

void ddps_tokenize(const ddps_tokenizer *tok, const char *text, int32_t ids[DDPS_CTX_LEN]) {
    (void)ddps_tokenize_truncated(tok, text, ids);
}

char *ddps_clip_normalize(const char *text) {
    if (!text) text = "";
    cpbuf in = {0}, out = {0}, tmp = {0};
    utf8_decode((const unsigned char *)text, strlen(text), &in);
    clip_normalize_cps(in.v, in.n, &out, &tmp);
    char *s = ddps_malloc(out.n * 4 + 1);
    size_t nb = 0;
    for (size_t i = 0; i < out.n; i++) nb += ddps_utf8_put(out.v[i], s + nb);
    s[nb] = 0;
    free(in.v);
    free(out.v);
    free(tmp.v);
    return s;
}

const char *ddps_clip_unicode_version(void) { return DDPS_UC_VERSION; }

int ddps_tokenizer_vocab_size(const ddps_tokenizer *t) { return t->max_id + 1; }
int32_t ddps_tokenizer_bos(const ddps_tokenizer *t) { return t->bos; }
int32_t ddps_tokenizer_eos(const ddps_tokenizer *t) { return t->eos; }
int32_t ddps_tokenizer_pad(const ddps_tokenizer *t) { return t->pad; }

const char *ddps_tokenizer_token(const ddps_tokenizer *t, int32_t id) {
    if (id < 0 || id > t->max_id || t->tok_off[id] == NO_OFF) return NULL;
    return t->pool + t->tok_off[id];
}

void ddps_tokenizer_free(ddps_tokenizer *t) {
    if (!t) return;
    free(t->pool);
    free(t->tok_off);
    free(t->tok_len);
    free(t->vslot);
    free(t->mkey);
    free(t->mrank);
    free(t->mres);
    for (int k = 0; k < t->nspecial; k++) free(t->special[k].cp);
    free(t);
}

static ddps_tokenizer *tokenizer_new(void) {
    ddps_tokenizer *t = ddps_calloc(1, sizeof *t);
    t->max_id = -1;
    t->bos = t->eos = t->unk = t->pad = -1;
    t->lit_sot = t->lit_eot = -1;
    return t;
}

/* ------------------------------------------------------------------ */
/* Loading                                                             */

static int load_vocab(ddps_tokenizer *t, const char *path, ddps_err *err) {
    json_t *root;
    if (ddps_json_load_ex(path, VOCAB_FILE_LIMIT, JSON_REJECT_DUPLICATES, &root, err)) return -1;
    int rc = -1;
    if (json_object_size(root) == 0) {
        ddps_fail_data(err, "%s: the vocabulary is empty", path);
        goto done;
    }
    uint32_t cap = 1024; /* size the hash table once */
    while (cap < json_object_size(root) * 2) cap *= 2;
    vocab_rehash(t, cap);
    for (void *it = json_object_iter(root); it; it = json_object_iter_next(root, it)) {
        const char *key = json_object_iter_key(it);
        size_t klen = json_object_iter_key_len(it);
        json_t *val = json_object_iter_value(it);
        if (klen == 0 || strlen(key) != klen) {
            ddps_fail_data(err, "%s: token strings must be non-empty and contain no NUL", path);
            goto done;
        }
        if (!json_is_integer(val)) {
            ddps_fail_data(err, "%s: the id of token \"%.64s\" is not an integer", path, key);
            goto done;
        }
        json_int_t id = json_integer_value(val);
        if (id < 0 || id > DDPS_TOKENIZER_MAX_ID) {
            ddps_fail_data(err, "%s: token \"%.64s\" has id %lld, outside 0..%d", path, key,
                      (long long)id, DDPS_TOKENIZER_MAX_ID);
            goto done;
        }
        if (id < t->id_cap && t->tok_off[id] != NO_OFF) {
            ddps_fail_data(err, "%s: id %lld is used by both \"%.64s\" and \"%.64s\"", path,
                      (long long)id, t->pool + t->tok_off[id], key);
            goto done;
        }
        vocab_add(t, key, klen, (int32_t)id);
    }
    rc = 0;
done:
    json_decref(root);
    return rc;
}

static int is_hspace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

static int load_merges(ddps_tokenizer *t, const char *path, ddps_err *err) {
    char *buf;
    size_t len;
    if (ddps_read_file(path, VOCAB_FILE_LIMIT, &buf, &len, err)) return -1;
    size_t p = 0;
    while (p < len && (is_hspace(buf[p]) || buf[p] == '\n')) p++;
    if (p == len) {
        free(buf);
        return ddps_fail_data(err, "%s: empty file", path);
    }
    if (memchr(buf, 0, len)) {
        free(buf);
        return ddps_fail_data(err, "%s: contains NUL bytes; not a merges file", path);
    }
    /* Table sized for the final count up front: at most one merge a line. */
    size_t lines = 1;
    for (size_t k = p; k < len; k++) lines += buf[k] == '\n';
    if (lines > CLIP_MAX_MERGES + 1) lines = CLIP_MAX_MERGES + 1;
    uint32_t cap = 1024;
    while (cap < lines * 2) cap *= 2;
    merge_table_alloc(t, cap);

    int rc = -1, lineno = 0, used = 0;
    /* Line numbers count from the start of the file, as an editor does. */
    for (size_t k = 0; k < p; k++) lineno += buf[k] == '\n';
    int first = 1;
    char cat[1024];
    while (p < len && used < CLIP_MAX_MERGES) {
        size_t e = p;
        while (e < len && buf[e] != '\n') e++;
        lineno++;
        char *line = buf + p;
        size_t ll = e - p;
        p = e + 1;
        if (first && ll >= 8 && memcmp(line, "#version", 8) == 0) {
            first = 0;
            continue;
        }
        first = 0;
        used++; /* CLIPTokenizer's slice counts every line, blank or not */
        /* Split into whitespace-separated fields. */
        const char *f[3];
        size_t fl[3];
        int nf = 0;
        for (size_t k = 0; k < ll;) {
            while (k < ll && is_hspace(line[k])) k++;
            if (k == ll) break;
            size_t s = k;
            while (k < ll && !is_hspace(line[k])) k++;
            if (nf < 3) {
                f[nf] = line + s;
                fl[nf] = k - s;
            }
            nf++;
        }
        if (nf == 0) continue;
        if (nf != 2) {
            ddps_fail_data(err, "%s: line %d: expected two symbols \"a b\", found %d", path, lineno, nf);
            goto done;
        }
        int32_t a = vocab_find(t, f[0], fl[0]), b = vocab_find(t, f[1], fl[1]);
        if (a < 0 || b < 0) {
            int bad = a < 0 ? 0 : 1;
            ddps_fail_data(err, "%s: line %d: symbol \"%.*s\" is not in vocab.json", path, lineno,
                      (int)(fl[bad] > 64 ? 64 : fl[bad]), f[bad]);
            goto done;
        }
        if (fl[0] + fl[1] > sizeof cat) {
            ddps_fail_data(err, "%s: line %d: merge result longer than %zu bytes", path, lineno,
                      sizeof cat);
            goto done;
        }
        memcpy(cat, f[0], fl[0]);
        memcpy(cat + fl[0], f[1], fl[1]);
        int32_t r = vocab_find(t, cat, fl[0] + fl[1]);
        if (r < 0) {
            ddps_fail_data(err, "%s: line %d: merge result \"%.*s\" is not in vocab.json", path, lineno,
                      (int)(fl[0] + fl[1] > 64 ? 64 : fl[0] + fl[1]), cat);
            goto done;
        }
        if (merge_add(t, a, b, r)) {
            ddps_fail_data(err, "%s: line %d: merge \"%.*s %.*s\" appears twice", path, lineno,
                      (int)(fl[0] > 64 ? 64 : fl[0]), f[0], (int)(fl[1] > 64 ? 64 : fl[1]), f[1]);
            goto done;
        }
    }
    rc = 0;
done:
    free(buf);
    return rc;
}

/* Reads the special-token names of one config file into names[4] (bos, eos,
 * unk, pad), setting from[k] to path for each one it sets; a missing file is
 * fine. Checks model_max_length if asked. */
static const char *const SPECIAL_KEYS[4] = {"bos_token", "eos_token", "unk_token", "pad_token"};

static int load_special_config(const char *path, char *names[4], const char *from[4],
                               int check_len, ddps_err *err) {
    if (!ddps_is_file(path)) return 0;
    json_t *root;
    /* As reals, so that the huge "no limit" model_max_length parses. */
    if (ddps_json_load_ex(path, CONFIG_FILE_LIMIT, JSON_DECODE_INT_AS_REAL, &root, err)) return -1;
    int rc = -1;
    for (int k = 0; k < 4; k++) {
        json_t *v = json_object_get(root, SPECIAL_KEYS[k]);
        if (!v || json_is_null(v)) continue; /* keep the default */
        if (json_is_object(v)) v = json_object_get(v, "content");
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            strlen(json_string_value(v)) != json_string_length(v)) {
            ddps_fail_data(err, "%s: %s must be a non-empty string or {\"content\": string}", path,
                      SPECIAL_KEYS[k]);
            goto done;
        }
        free(names[k]);
        names[k] = ddps_strdup(json_string_value(v));
        from[k] = path;
    }
    if (check_len) {
        json_t *v = json_object_get(root, "model_max_length");
        if (v && !json_is_null(v)) {
            if (!json_is_number(v)) {
                ddps_fail_data(err, "%s: model_max_length must be a number", path);
                goto done;
            }
            /* transformers writes ~1e30 for "no limit"; anything real must be 77. */
            double m = json_number_value(v);
            if (m < 1e15 && m != DDPS_CTX_LEN) {
                ddps_fail_data(err, "%s: model_max_length is %g; the CLIP text encoder takes %d tokens",
                          path, m, DDPS_CTX_LEN);
                goto done;
            }
        }
    }
    rc = 0;
done:
    json_decref(root);
    return rc;
}

static void add_split_special(ddps_tokenizer *t, const char *name, int32_t id) {
    for (int k = 0; k < t->nspecial; k++)
        if (t->special[k].id == id) return; /* same string (ids are unique) */
    special_tok *sp = &t->special[t->nspecial++];
    cpbuf b = {0};
    utf8_decode((const unsigned char *)name, strlen(name), &b);
    sp->cp = b.v;
    sp->len = b.n;
    sp->id = id;
}

/* Special tokens: defaults, then tokenizer_config.json, then
 * special_tokens_map.json (transformers lets the map override the config). */
static int setup_specials(ddps_tokenizer *t, const char *dir, ddps_err *err) {
    char *names[4] = {ddps_strdup(SOT_LITERAL), ddps_strdup(EOT_LITERAL), ddps_strdup(EOT_LITERAL),
                      NULL};
    const char *from[4] = {NULL, NULL, NULL, NULL};
    char *cfg = ddps_path_join(dir, "tokenizer_config.json");
    char *map = ddps_path_join(dir, "special_tokens_map.json");
    int rc = -1;
    if (load_special_config(cfg, names, from, 1, err)) goto done;
    if (load_special_config(map, names, from, 0, err)) goto done;
    if (!names[3]) { /* pad defaults to eos */
        names[3] = ddps_strdup(names[1]);
        from[3] = from[1];
    }
    int32_t ids[4];
    for (int k = 0; k < 4; k++) {
        ids[k] = vocab_find(t, names[k], strlen(names[k]));
        if (ids[k] >= 0) continue;
        if (from[k])
            ddps_fail_data(err, "%s: %s \"%.64s\" is not in vocab.json", from[k], SPECIAL_KEYS[k],
                      names[k]);
        else
            ddps_fail_data(err, "%s/vocab.json: has no \"%.64s\" entry (the default %s)", dir, names[k],
                      SPECIAL_KEYS[k]);
        goto done;
    }
    t->bos = ids[0];
    t->eos = ids[1];
    t->unk = ids[2];
    t->pad = ids[3];
    for (int k = 0; k < 4; k++) add_split_special(t, names[k], ids[k]);
    t->lit_sot = vocab_find(t, SOT_LITERAL, strlen(SOT_LITERAL));
    t->lit_eot = vocab_find(t, EOT_LITERAL, strlen(EOT_LITERAL));
    rc = 0;
done:
    for (int k = 0; k < 4; k++) free(names[k]);
    free(cfg);
    free(map);
    return rc;
}

int ddps_tokenizer_load(const char *dir, ddps_tokenizer **out, ddps_err *err) {
    *out = NULL;
    if (!ddps_is_dir(dir)) return ddps_fail_data(err, "%s: not a tokenizer folder", dir);
    ddps_tokenizer *t = tokenizer_new();
    char *vpath = ddps_path_join(dir, "vocab.json");
    char *mpath = ddps_path_join(dir, "merges.txt");
    int rc = -1;
    if (load_vocab(t, vpath, err)) goto done;
    if (load_merges(t, mpath, err)) goto done;
    if (setup_specials(t, dir, err)) goto done;
    set_byte_ids(t);
    rc = 0;
done:
    free(vpath);
    free(mpath);
    if (rc) ddps_tokenizer_free(t);
    else *out = t;
    return rc;
}

/* ------------------------------------------------------------------ */
/* A small tokenizer for the demo                                      */

/* Makes every pre-tokenizer piece of word a single token: while BPE leaves
 * a piece in k > 1 symbols, add the merge of its first two with the worst
 * rank yet. A worst-ranked merge only applies once no other does, so BPE
 * runs as before up to that end state and then goes further; pieces made
 * single earlier stay single (they end with no pair left to merge). */
static int small_add_word(ddps_tokenizer *t, const char *word, scratch *sc, ddps_err *err) {
    cpbuf in = {0};
    utf8_decode((const unsigned char *)word, strlen(word), &in);
    clip_normalize_cps(in.v, in.n, &sc->norm, &sc->tmp);
    free(in.v);
    const uint32_t *b = sc->norm.v;
    size_t pos = 0, s, e;
    char cat[2048];
    while (next_piece(b, sc->norm.n, &pos, &s, &e)) {
        if (piece_is(b + s, e - s, SOT_LITERAL) || piece_is(b + s, e - s, EOT_LITERAL)) continue;
        size_t nb = piece_bytes(sc, b, s, e);
        if (nb + 4 > sizeof cat)
            return ddps_fail_data(err, "word \"%.64s\": a piece longer than %zu bytes", word,
                             sizeof cat - 4);
        for (;;) {
            if (bpe_word(t, (const unsigned char *)sc->bytes, nb, &sc->bpe) == 1) break;
            if (t->nmerges >= CLIP_MAX_MERGES)
                return ddps_fail_data(err, "too many words for a CLIP tokenizer (more than %d merges)",
                                 CLIP_MAX_MERGES);
            int32_t a = sc->bpe.id[0], c = sc->bpe.id[sc->bpe.next[0]];
            size_t la = t->tok_len[a], lc = t->tok_len[c];
            memcpy(cat, t->pool + t->tok_off[a], la);
            memcpy(cat + la, t->pool + t->tok_off[c], lc);
            int32_t r = vocab_find(t, cat, la + lc);
            if (r < 0) {
                r = t->max_id + 1;
                vocab_add(t, cat, la + lc, r);
            }
            if (merge_add(t, a, c, r)) /* cannot happen: the pair had no rank */
                return ddps_fail(err, "word \"%.64s\": internal merge conflict", word);
        }
    }
    return 0;
}

int ddps_tokenizer_build_small(const char *const *words, int nwords, ddps_tokenizer **out, ddps_err *err) {
    *out = NULL;
    if (nwords < 0 || (nwords > 0 && !words))
        return ddps_fail_data(err, "tokenizer word list: invalid (%d words)", nwords);
    ddps_tokenizer *t = tokenizer_new();
    scratch sc = {0};
    char buf[16];
    /* CLIP's order: the byte symbols in the order of GPT-2's table (the
     * printable bytes first), then the same with "</w>". */
    unsigned order[256], n = 0;
    for (unsigned b = 0; b < 256; b++)
        if (byte_char(b) == b) order[n++] = b;
    for (unsigned b = 0; b < 256; b++)
        if (byte_char(b) != b) order[n++] = b;
    for (int w = 0; w < 2; w++)
        for (unsigned k = 0; k < 256; k++)
            vocab_add(t, buf, byte_symbol(order[k], w, buf), (int32_t)(w * 256 + k));
    merge_table_alloc(t, 1024);
    set_byte_ids(t);
    for (int k = 0; k < nwords; k++) {
        if (words[k] && small_add_word(t, words[k], &sc, err)) {
            scratch_free(&sc);
            ddps_tokenizer_free(t);
            return -1;
        }
    }
    vocab_add(t, SOT_LITERAL, strlen(SOT_LITERAL), t->max_id + 1);
    vocab_add(t, EOT_LITERAL, strlen(EOT_LITERAL), t->max_id + 1);
    scratch_free(&sc);
    *out = t;
    return 0;
}

int ddps_tokenizer_merges(const ddps_tokenizer *t, int32_t **a, int32_t **b) {
    *a = ddps_malloc(((size_t)t->nmerges + 1) * sizeof **a);
    *b = ddps_malloc(((size_t)t->nmerges + 1) * sizeof **b);
    for (uint32_t h = 0; h <= t->mmask; h++) {
        if (t->mrank[h] < 0) continue;
        (*a)[t->mrank[h]] = (int32_t)(t->mkey[h] >> 32);
        (*b)[t->mrank[h]] = (int32_t)(t->mkey[h] & 0xFFFFFFFFu);
    }
    return (int)t->nmerges;
}
