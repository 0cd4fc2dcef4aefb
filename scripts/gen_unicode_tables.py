#!/usr/bin/env python3
"""Generates src/models/unicode_tables.h, the Unicode data the CLIP tokenizer needs.

    python3 scripts/gen_unicode_tables.py > src/models/unicode_tables.h

Everything comes from the running Python's `unicodedata` module and its str
methods, because the reference tokenizer (transformers' CLIPTokenizer without
ftfy) is itself Python: its clean-up uses unicodedata.category, its
normalisation unicodedata.normalize("NFC"), its lower-casing str.lower().
Taking the data from the same place makes the C port agree with it character
for character (for the Unicode version printed in the header).

Tables (all sorted, searched by binary search in tokenizer.c):
  class runs      general-category classes: letter, number, control (C*),
                  space separator (Zs), line/paragraph separator (Zl, Zp), other
  lower ranges    str.lower() for characters that map to one character
  lower specials  str.lower() for characters that map to several
  cased, ignor.   Cased / Case_Ignorable, for the final-sigma rule of str.lower()
  ccc runs        canonical combining classes (non-zero only)
  decomp          one-level canonical decompositions (Hangul is algorithmic)
  comp            primary composites: (first, second) -> composite
"""
import sys
import unicodedata

MAXCP = 0x110000
SURR = range(0xD800, 0xE000)

CLASS_OTHER, CLASS_LETTER, CLASS_NUMBER, CLASS_CONTROL, CLASS_SPACE, CLASS_LINESEP = range(6)


def char_class(c):
    cat = unicodedata.category(c)
    if cat[0] == "L":
        return CLASS_LETTER
    if cat[0] == "N":
        return CLASS_NUMBER
    if cat[0] == "C":
        return CLASS_CONTROL
    if cat == "Zs":
        return CLASS_SPACE
    if cat in ("Zl", "Zp"):
        return CLASS_LINESEP
    return CLASS_OTHER


def class_runs():
    runs = []
    prev = None
    for cp in range(MAXCP):
        k = char_class(chr(cp))
        if k != prev:
            runs.append((cp, k))
            prev = k
    # The C code relies on str.split() whitespace being covered by the classes
    # it already treats as whitespace or drops (Cc, Zs, Zl, Zp).
    for cp in range(MAXCP):
        c = chr(cp)
        if c.isspace():
            assert unicodedata.category(c) in ("Cc", "Zs", "Zl", "Zp"), hex(cp)
    return runs


def lower_tables():
    single = []  # (cp, lower cp)
    multi = []  # (cp, [cps])
    for cp in range(MAXCP):
        if cp in SURR or cp == 0x03A3:  # capital sigma: context rule in C
            continue
        lo = chr(cp).lower()
        if lo == chr(cp):
            continue
        if len(lo) == 1:
            single.append((cp, ord(lo)))
        else:
            assert len(lo) <= 3
            multi.append((cp, [ord(x) for x in lo]))
    # Group into (lo, hi, stride, delta): cp in [lo, hi], (cp - lo) % stride == 0.
    ranges = []
    i = 0
    while i < len(single):
        cp, m = single[i]
        delta = m - cp
        best_stride, best_count = 1, 1
        for stride in (1, 2):
            j = i
            while (j + 1 < len(single) and single[j + 1][0] == single[j][0] + stride
                   and single[j + 1][1] - single[j + 1][0] == delta):
                j += 1
            if j - i + 1 > best_count:
                best_stride, best_count = stride, j - i + 1
        stride, count = best_stride, best_count
        ranges.append((cp, cp + stride * (count - 1), stride, delta))
        i += count
    return ranges, multi


def sigma_props():
    """Cased and Case_Ignorable as str.lower() sees them, found by asking it.

    str.lower() maps capital sigma to final sigma when it follows a cased
    character (skipping case-ignorable ones) and no cased character follows
    (again skipping case-ignorable ones). Probing that rule with each
    character gives exactly the property values Python uses."""
    cased, ignorable = [], []
    for cp in range(MAXCP):
        if cp in SURR:
            continue
        c = chr(cp)
        before = (c + "\u03a3").lower()[-1] == "\u03c2"  # not ignorable and cased
        between = ("A" + c + "\u03a3").lower()[-1] == "\u03c2"  # ignorable or cased
        ign = (not before) and between
        if ign:
            ignorable.append(cp)
        elif before:
            cased.append(cp)
    return cased, ignorable


def to_runs(cps):
    runs = []
    for cp in cps:
        if runs and runs[-1][1] == cp - 1:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp])
    return runs


def ccc_runs():
    runs = []
    for cp in range(MAXCP):
        k = unicodedata.combining(chr(cp))
        if k == 0:
            continue
        if runs and runs[-1][1] == cp - 1 and runs[-1][2] == k:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp, k])
    return runs


def decomp_tables():
    decomp = []
    comp = []
    for cp in range(MAXCP):
        if cp in SURR:
            continue
        d = unicodedata.decomposition(chr(cp))
        if not d or d.startswith("<"):
            continue
        parts = [int(x, 16) for x in d.split()]
        assert 1 <= len(parts) <= 2, hex(cp)
        decomp.append((cp, parts[0], parts[1] if len(parts) == 2 else 0))
        # A primary composite is a two-part decomposition that NFC keeps
        # (composition exclusions and non-starter decompositions do not).
        if len(parts) == 2 and unicodedata.normalize("NFC", chr(cp)) == chr(cp):
            comp.append((parts[0], parts[1], cp))
    comp.sort()
    for cp in range(0xAC00, 0xAC00 + 11172):
        assert unicodedata.decomposition(chr(cp)) == ""
    return decomp, comp


def nfc_safe_below(ccc, comp):
    """Largest bound B such that any string of characters below B is NFC already."""
    b = min([r[0] for r in ccc] + [c[1] for c in comp])
    b = min(b, 0x1100)  # Hangul jamo compose algorithmically
    for cp in range(b):
        if unicodedata.normalize("NFC", chr(cp)) != chr(cp):
            b = cp
            break
    # Pairs cannot interact below the bound (checked, not assumed).
    chars = [chr(cp) for cp in range(0x20, b)]
    for a in chars:
        for c in chars:
            s = a + c
            assert unicodedata.normalize("NFC", s) == s, (a, c)
    return b


def emit_u32_pairs(out, name, rows, fmt):
    out.append(f"static const {name}[{len(rows)}] = {{")
    line = "   "
    for r in rows:
        item = " " + fmt(r) + ","
        if len(line) + len(item) > 96:
            out.append(line)
            line = "   "
        line += item
    out.append(line)
    out.append("};")


def main():
    runs = class_runs()
    lranges, lmulti = lower_tables()
    cased, ignorable = sigma_props()
    ccc = ccc_runs()
    decomp, comp = decomp_tables()
    safe = nfc_safe_below(ccc, comp)

    o = []
    o.append("/* Generated by scripts/gen_unicode_tables.py from Python %s's unicodedata"
             % sys.version.split()[0])
    o.append(" * (Unicode %s). Do not edit: rerun the script. Included by tokenizer.c only. */"
             % unicodedata.unidata_version)
    o.append("#ifndef DDPS_MODELS_UNICODE_TABLES_H")
    o.append("#define DDPS_MODELS_UNICODE_TABLES_H")
    o.append("")
    o.append("#include <stdint.h>")
    o.append("")
    o.append('#define DDPS_UC_VERSION "%s"' % unicodedata.unidata_version)
    o.append("enum { UC_OTHER, UC_LETTER, UC_NUMBER, UC_CONTROL, UC_SPACE, UC_LINESEP };")
    o.append("/* Strings made only of code points below this are already NFC. */")
    o.append("#define DDPS_UC_NFC_SAFE_BELOW 0x%X" % safe)
    o.append("")
    o.append("/* Class runs: (first code point << 3) | class; a run lasts until the next. */")
    emit_u32_pairs(o, "uint32_t uc_class_runs", runs, lambda r: "0x%X" % ((r[0] << 3) | r[1]))
    o.append("")
    o.append("/* str.lower() to one character: cp in [lo, hi] with (cp - lo) % stride == 0")
    o.append(" * maps to cp + delta. */")
    o.append("typedef struct { uint32_t lo, hi; int32_t delta; uint32_t stride; } uc_lower_range;")
    emit_u32_pairs(o, "uc_lower_range uc_lower_ranges", lranges,
                   lambda r: "{0x%X, 0x%X, %d, %d}" % (r[0], r[1], r[3], r[2]))
    o.append("")
    o.append("/* str.lower() to several characters (0 ends a short mapping). */")
    o.append("typedef struct { uint32_t cp, to[3]; } uc_lower_multi;")
    emit_u32_pairs(o, "uc_lower_multi uc_lower_multis", lmulti,
                   lambda r: "{0x%X, {%s}}" % (r[0], ", ".join("0x%X" % x for x in r[1] + [0] * (3 - len(r[1])))))
    o.append("")
    o.append("/* Inclusive ranges [lo, hi]. Cased excludes Case_Ignorable characters:")
    o.append(" * the final-sigma rule tests ignorability first. */")
    o.append("typedef struct { uint32_t lo, hi; } uc_range;")
    emit_u32_pairs(o, "uc_range uc_cased", to_runs(cased), lambda r: "{0x%X, 0x%X}" % (r[0], r[1]))
    emit_u32_pairs(o, "uc_range uc_case_ignorable", to_runs(ignorable),
                   lambda r: "{0x%X, 0x%X}" % (r[0], r[1]))
    o.append("")
    o.append("/* Canonical combining class runs (non-zero classes only). */")
    o.append("typedef struct { uint32_t lo, hi, ccc; } uc_ccc_run;")
    emit_u32_pairs(o, "uc_ccc_run uc_ccc_runs", ccc, lambda r: "{0x%X, 0x%X, %d}" % (r[0], r[1], r[2]))
    o.append("")
    o.append("/* One-level canonical decompositions: cp -> a (b == 0) or a b. */")
    o.append("typedef struct { uint32_t cp, a, b; } uc_decomp;")
    emit_u32_pairs(o, "uc_decomp uc_decomps", decomp, lambda r: "{0x%X, 0x%X, 0x%X}" % r)
    o.append("")
    o.append("/* Primary composites, sorted by (a, b): a b -> cp. */")
    o.append("typedef struct { uint32_t a, b, cp; } uc_comp;")
    emit_u32_pairs(o, "uc_comp uc_comps", comp, lambda r: "{0x%X, 0x%X, 0x%X}" % r)
    o.append("")
    o.append("#endif")
    sys.stdout.write("\n".join(o) + "\n")


if __name__ == "__main__":
    main()
