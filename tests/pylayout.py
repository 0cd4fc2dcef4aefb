"""test_pylayout's comparison: python/ddps/_lib.py's ctypes structs against
the C structs of include/ddps.h.

    pylayout.py DDPS_H LIB_PY LAYOUT_TXT

LAYOUT_TXT is what test_pylayout.c printed (sizes and offsets from the
compiler). Checks, for every struct: the C program lists exactly the
header's fields in order (so its table cannot go stale); for every struct
_lib.py declares: the same field names in the same order, the same offsets
and field sizes, the same total size. _lib.py is executed with a stand-in
for the shared library (nothing is loaded). Exit 0 pass, 1 with the
differences on stderr.
"""
import ctypes
import importlib.util
import os
import re
import sys

# _lib.py class -> C struct
NAMES = {
    "Error": "ddps_error", "Hooks": "ddps_hooks", "ScoreParams": "ddps_score_params",
    "SelectParams": "ddps_select_params", "ReportParams": "ddps_report_params", "DemoParams": "ddps_demo_params",
    "RunTotals": "ddps_run_totals", "EngineParams": "ddps_engine_params", "ImageIn": "ddps_image_in",
    "Window": "ddps_window", "ImageScores": "ddps_image_scores", "DbClass": "ddps_db_class",
    "DbImage": "ddps_db_image", "DbCand": "ddps_db_cand", "DbCluster": "ddps_db_cluster",
    "DbClassData": "ddps_db_class_data", "TrainParams": "ddps_train_params", "TrainResult": "ddps_train_result",
    "EvalParams": "ddps_eval_params", "EvalResult": "ddps_eval_result",
}


def header_fields(text):
    """{struct: [field, ...]} from the typedef structs of ddps.h."""
    out = {}
    for m in re.finditer(r"typedef struct \{(.*?)\} (\w+);", text, re.S):
        body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
        fields = []
        for decl in body.split(";"):
            decl = decl.strip()
            if not decl:
                continue
            decl = re.sub(r"\[[^\]]*\]", "", decl)
            decl = re.sub(r"\(\*(\w+)\)\(.*\)", r"\1", decl, flags=re.S)
            parts = [p.strip() for p in decl.split(",")]
            fields.append(parts[0].split()[-1].lstrip("*"))
            fields += [p.lstrip("*") for p in parts[1:]]
        out[m.group(2)] = fields
    return out


def c_layout(path):
    """{struct: (size, [(field, offset, size), ...])} from test_pylayout's output."""
    out = {}
    for line in open(path):
        w = line.split()
        if w[0] == "S":
            out[w[1]] = (int(w[2]), [])
        else:
            out[w[1]][1].append((w[2], int(w[3]), int(w[4])))
    return out


class _NoLibrary:
    """Stands in for ctypes.CDLL: attributes accept restype/argtypes."""

    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        f = type("fn", (), {})()
        self.__dict__[name] = f
        return f


def load_lib(path):
    real = ctypes.CDLL
    ctypes.CDLL = _NoLibrary
    os.environ["DDPS_LIBRARY"] = "no-library"
    try:
        spec = importlib.util.spec_from_file_location("ddps_lib_layout", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        ctypes.CDLL = real
    return mod


def main():
    hdr = header_fields(open(sys.argv[1]).read())
    lib = load_lib(sys.argv[2])
    c = c_layout(sys.argv[3])
    bad = []
    for s, fields in hdr.items():
        listed = [f for f, _, _ in c.get(s, (0, []))[1]]
        if listed != fields:
            bad.append("%s: test_pylayout.c lists %s, the header declares %s" % (s, listed, fields))
    py = {n: getattr(lib, n) for n in dir(lib)
          if isinstance(getattr(lib, n), type) and issubclass(getattr(lib, n), ctypes.Structure)}
    for n in sorted(py):
        if n not in NAMES:
            bad.append("_lib.%s: no C struct named for it in pylayout.py" % n)
            continue
        s = NAMES[n]
        if s not in c:
            bad.append("_lib.%s: %s is not in ddps.h" % (n, s))
            continue
        size, fields = c[s]
        cls = py[n]
        names = [f[0] for f in cls._fields_]
        if names != [f for f, _, _ in fields]:
            bad.append("_lib.%s fields %s, %s has %s" % (n, names, s, [f for f, _, _ in fields]))
        for f, off, fsize in fields:
            d = getattr(cls, f, None)
            if d is None:
                continue
            if d.offset != off or d.size != fsize:
                bad.append("_lib.%s.%s at %d (%d bytes), C %s.%s at %d (%d bytes)" % (n, f, d.offset, d.size, s, f, off,
                                                                                      fsize))
        if ctypes.sizeof(cls) != size:
            bad.append("_lib.%s is %d bytes, C %s %d" % (n, ctypes.sizeof(cls), s, size))
    for line in bad:
        print("pylayout: " + line, file=sys.stderr)
    print("pylayout: %d C structs, %d ctypes structs compared, %d differences" % (len(hdr), len(py), len(bad)),
          file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
