/* CLIP byte-level BPE tokenizer, as Stable Diffusion v1.x uses it.
 *
 * Reproduces Hugging Face transformers' CLIPTokenizer (the slow Python class
 * that diffusers' StableDiffusionPipeline loads, in its usual set-up without
 * the optional ftfy package) id for id:
 *
 *   1. Special tokens. The text is split on the literal special-token strings
 *      (bos, eos, unk and pad as configured; for SD "<|startoftext|>" and
 *      "<|endoftext|>"), earliest match first, longest match at a position.
 *      Each match becomes that token's id; the pieces between go on to 2.
 *   2. Clean-up (transformers' BasicTokenizer with strip_accents=False and no
 *      punctuation splitting): U+0000, U+FFFD and every character of a
 *      general category C* except TAB, LF and CR are dropped; TAB, LF, CR and
 *      space separators (Zs) become spaces; CJK ideographs get a space on both
 *      sides; the text is put in Unicode NFC; it is lower-cased as Python's
 *      str.lower() does (full mappings, final sigma); runs of whitespace
 *      (including U+2028/U+2029) become one space, ends are stripped.
 *   3. Pre-tokenisation with CLIP's pattern (case-insensitive, first
 *      alternative that matches wins, characters matching none are skipped):
 *      <|startoftext|> | <|endoftext|> | 's | 't | 're | 've | 'm | 'll | 'd
 *      | \p{L}+ | \p{N} | [^\s\p{L}\p{N}]+
 *      A piece that is exactly "<|startoftext|>" or "<|endoftext|>" becomes
 *      that vocabulary entry (this is how upper-case or otherwise disguised
 *      specials that step 1 missed still turn into special ids).
 *   4. Byte-level BPE. Each piece's UTF-8 bytes are mapped to GPT-2's 256
 *      printable stand-in characters; "</w>" is appended to the last one;
 *      adjacent pairs are merged by merges.txt rank, lowest rank first, all
 *      occurrences of the chosen pair left to right, until no pair has a rank.
 *      Symbols missing from vocab.json become the unk token.
 *   5. Framing: BOS, at most 75 tokens (the rest is dropped), EOS, then the
 *      pad token up to DDPS_CTX_LEN (77).
 *
 * Invalid UTF-8 in the text: each maximal ill-formed subsequence (a stray
 * continuation byte, a truncated sequence, an overlong form, an encoded
 * surrogate, a code point above U+10FFFF, bytes 0xC0/0xC1/0xF5..0xFF) is
 * decoded as U+FFFD, as Python's bytes.decode("utf-8", "replace") does, and
 * step 2 then drops it. Tokenizing never fails and is deterministic.
 *
 * Known differences from the reference, all on text SD prompts do not contain:
 * Unicode data is Python's unicodedata of the version named in
 * unicode_tables.h (DDPS_UC_VERSION); a merges.txt whose first line is not a
 * "#version" comment keeps that line as a merge (CLIPTokenizer drops it);
 * added tokens other than bos/eos/unk/pad (tokenizer_config.json's
 * "added_tokens_decoder", added_tokens.json) are not read. CLIPTokenizerFast
 * differs from both on control characters and CJK text (it keeps them), on
 * final sigma and on upper-case special-token strings.
 *
 * Cost: loading SD's 49k-entry vocabulary and 48k merges takes about 0.1 s
 * (JSON parsing dominates); a prompt tokenizes in a few microseconds. Only
 * the first DDPS_TOKENIZER_MAX_TEXT bytes of a text are read: beyond that
 * any real text has long passed 75 tokens.
 *
 * A loaded tokenizer is immutable: ddps_tokenize may run on one tokenizer
 * from several threads at once.
 */
#ifndef DDPS_MODELS_TOKENIZER_H
#define DDPS_MODELS_TOKENIZER_H

#include <stdint.h>

#include "util/err.h"

/* Sequence length of the CLIP text encoder: BOS + 75 tokens + EOS. */
#define DDPS_CTX_LEN 77
/* Token ids must lie in [0, DDPS_TOKENIZER_MAX_ID]. */
#define DDPS_TOKENIZER_MAX_ID ((1 << 21) - 1)
/* Bytes of a text that ddps_tokenize reads at most. */
#define DDPS_TOKENIZER_MAX_TEXT ((size_t)64 << 20)

typedef struct ddps_tokenizer ddps_tokenizer;

/* Loads a diffusers `tokenizer/` folder:
 *   vocab.json    JSON object token -> id; ids non-negative, unique, at most
 *                 DDPS_TOKENIZER_MAX_ID; tokens non-empty and unique.
 *   merges.txt    optional "#version" first line, then one merge "a b" per
 *                 line by rank (first is applied first); a, b and "ab" must be
 *                 in vocab.json, no merge twice; blank lines are skipped. As
 *                 in CLIPTokenizer, only the 48894 lines after the first count
 *                 (SD's file has exactly that many merges).
 *   tokenizer_config.json, special_tokens_map.json (both optional; the
 *                 second overrides the first): bos_token, eos_token,
 *                 unk_token, pad_token as a string or {"content": ...}
 *                 (defaults <|startoftext|>, <|endoftext|> and <|endoftext|>
 *                 for the other two); each must be in vocab.json.
 *                 model_max_length, when given and below 1e15, must be 77.
 * On error returns -1 with one line naming the file and the problem. */
int ddps_tokenizer_load(const char *dir, ddps_tokenizer **out, ddps_err *err);
void ddps_tokenizer_free(ddps_tokenizer *tok);

/* UTF-8 text (NULL means "") -> exactly DDPS_CTX_LEN ids: BOS, tokens, EOS,
 * padding. Never fails; see the top of this file for the exact rules. */
void ddps_tokenize(const ddps_tokenizer *tok, const char *text, int32_t ids[DDPS_CTX_LEN]);
/* The same, and returns 1 when the text had more than DDPS_CTX_LEN - 2 tokens
 * and the rest was dropped (Stable Diffusion does so silently; a caller may
 * warn), otherwise 0. */
int ddps_tokenize_truncated(const ddps_tokenizer *tok, const char *text,
                            int32_t ids[DDPS_CTX_LEN]);

int ddps_tokenizer_vocab_size(const ddps_tokenizer *tok); /* largest id + 1 */
int32_t ddps_tokenizer_bos(const ddps_tokenizer *tok);
int32_t ddps_tokenizer_eos(const ddps_tokenizer *tok);
int32_t ddps_tokenizer_pad(const ddps_tokenizer *tok);
/* The vocabulary string of an id (byte-level form, e.g. "dog</w>"), or NULL
 * for an id no entry has. Valid while the tokenizer lives. */
const char *ddps_tokenizer_token(const ddps_tokenizer *tok, int32_t id);

/* Step 2 alone: the text as the pre-tokenizer sees it (cleaned, NFC,
 * lower-cased, single spaces, stripped; no special-token handling). Returns a
 * heap UTF-8 string the caller frees. For diagnostics and tests. */
char *ddps_clip_normalize(const char *text);
/* Unicode version of the character tables, e.g. "14.0.0". */
const char *ddps_clip_unicode_version(void);

/* Builds in memory the small CLIP-style tokenizer of the demo (written to
 * files by ddps_tokenizer_write_small, tools/demo.h). Vocabulary, in CLIP's
 * order: the 256 byte-level symbols, their "</w>" forms, one entry per merge
 * result, then <|startoftext|> and <|endoftext|> (BOS and EOS, the last two
 * ids). Merges make each of the given words a single token: precisely, each
 * pre-tokenizer piece of a word (after the clean-up of step 2, so
 * lower-cased; "Shih-Tzu" gives "shih", "-" and "tzu"). *out: free with
 * ddps_tokenizer_free. Returns 0 or -1 with err (*out NULL). */
int ddps_tokenizer_build_small(const char *const *words, int nwords, ddps_tokenizer **out, ddps_err *err);
/* The merges in rank order: (*a)[r] and (*b)[r] are the ids of rank r's pair
 * (heap arrays, the caller frees both); returns the count. */
int ddps_tokenizer_merges(const ddps_tokenizer *tok, int32_t **a, int32_t **b);

#endif
