"""The Python package (python/ddps) against the CLI on the golden tiny model,
2 classes x 3 real imagewoof images: ddps.score and `ddps score` give stores
with identical numbers, ddps.select and `ddps select` identical files; errors
are ddps.Error with the category; the progress callback is called and can
cancel; Engine.score_images returns numpy arrays.
usage: api_python.py DDPS_BIN MODEL WOOF_TRAIN TMPDIR"""
import os
import subprocess
import sys

import numpy as np

import ddps

BIN, MODEL, WOOF, TMP = sys.argv[1:5]
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("CHECK failed:", what, file=sys.stderr)


data = os.path.join(TMP, "data")
for cls in ("n02086240", "n02087394"):
    os.makedirs(os.path.join(data, cls))
    for f in sorted(f for f in os.listdir(os.path.join(WOOF, cls)) if not f.startswith("."))[:3]:
        os.symlink(os.path.join(WOOF, cls, f), os.path.join(data, cls, f))

SMALL = dict(timesteps=2, dift_ensemble=1, clusters=2, threads=2)
CLI_SMALL = ["--timesteps", "2", "--dift-ensemble", "1", "--clusters", "2", "--threads", "2"]

# --- scoring: Python and the CLI ---
calls = []
sp, sc = os.path.join(TMP, "py.sqlite"), os.path.join(TMP, "cli.sqlite")
tot = ddps.score(data, MODEL, sp, progress=lambda stage, done, total: calls.append((stage, done, total)), **SMALL)
check(tot["images_scored"] == 6, "6 images scored: %r" % tot)
check(len(calls) >= 2 and calls[-1][1:] == (6, 6) and calls[0][0] == "scoring", "progress calls %r" % calls[:3])
r = subprocess.run([BIN, "score", "--data", data, "--model", MODEL, "--store", sc] + CLI_SMALL,
                   capture_output=True, text=True)
check(r.returncode == 0, "cli score: " + r.stderr)

a, b = ddps.Store(sp), ddps.Store(sc)
check(a.settings == b.settings and a.settings["timesteps"] and a.model_id == b.model_id, "settings / model")
check(len(a.classes) == 2 and [c["name"] for c in a.classes] == [c["name"] for c in b.classes], "classes")
for ca, cb in zip(a.classes, b.classes):
    for k in ("prompt", "n_images", "n_cand", "clustered", "clustered_k"):
        check(ca[k] == cb[k], "class %s %s" % (ca["name"], k))
    check(ca["n_images"] == 3 and ca["features"].shape == (3, ca["dim"]) and ca["features"].dtype == np.float32,
          "features shape")
    for ia, ib in zip(ca["images"], cb["images"]):
        for k in ("relpath", "width", "height", "rw", "rh", "image_score"):
            check(ia[k] == ib[k], "image %s %s" % (ia["relpath"], k))
        check(ia["map"] is not None and np.array_equal(ia["map"], ib["map"]), "map " + ia["relpath"])
    for k in ca["candidates"]:
        check(np.array_equal(ca["candidates"][k], cb["candidates"][k]), "candidates %s %s" % (ca["name"], k))
    check(np.array_equal(ca["features"], cb["features"]), "features " + ca["name"])
    check(ca["clusters"] == cb["clusters"], "clusters " + ca["name"])

# --- selection: Python and the CLI ---
op, oc = os.path.join(TMP, "out_py"), os.path.join(TMP, "out_cli")
ddps.select(sp, op, [1, 2], threads=2)
r = subprocess.run([BIN, "select", "--store", sc, "--out", oc, "--ipc", "1,2", "--threads", "2"],
                   capture_output=True, text=True)
check(r.returncode == 0, "cli select: " + r.stderr)
nfiles = 0
for root, _, files in os.walk(op):
    for f in files:
        rel = os.path.relpath(os.path.join(root, f), op)
        if f == "manifest.json":
            continue  # timings and the store path differ
        with open(os.path.join(op, rel), "rb") as x, open(os.path.join(oc, rel), "rb") as y:
            check(x.read() == y.read(), "select output differs: " + rel)
        nfiles += 1
check(nfiles >= 6, "select wrote %d files" % nfiles)

# --- report and merge through the library ---
rp = os.path.join(TMP, "report_py")
ddps.report(sp, rp, ipc=1, threads=2)
check(os.path.isfile(os.path.join(rp, "index.html")), "report wrote no index.html")
try:
    ddps.merge(os.path.join(TMP, "merged.sqlite"), [sp])
    check(False, "merging a store that is not a shard was accepted")
except ddps.Error as e:
    check(e.category != "ok" and "shard" in str(e), "merge error: " + str(e))
check(not os.path.exists(os.path.join(TMP, "merged.sqlite")), "a refused merge wrote its output")

# --- demo fixtures and distill through the library, against `ddps distill` ---
dd, dm = ddps.demo(os.path.join(TMP, "demo"), classes=2, per_class=3)
names = sorted(os.listdir(dd))
check(len(names) == 2 and all(len(os.listdir(os.path.join(dd, n))) == 3 for n in names), "demo data: %r" % names)
check(os.path.isfile(os.path.join(dm, "model_index.json")), "demo model: no model_index.json")
DEMO_SMALL = dict(size=128, patch=96, **SMALL)
dp, dc = os.path.join(TMP, "distill_py"), os.path.join(TMP, "distill_cli")
tot = ddps.distill(dd, dm, dp, [1], report=True, select=dict(threads=2), **DEMO_SMALL)
check(tot["images_scored"] == 6, "distill scored %r" % tot)
check(os.path.isfile(os.path.join(dp, "ddps.sqlite")) and os.path.isfile(os.path.join(dp, "report", "index.html")),
      "distill: no store or report in " + dp)
r = subprocess.run([BIN, "distill", "--data", dd, "--model", dm, "--out", dc, "--ipc", "1", "--size", "128",
                    "--patch", "96"] + CLI_SMALL, capture_output=True, text=True)
check(r.returncode == 0, "cli distill: " + r.stderr)
nfiles = 0
for root, _, files in os.walk(os.path.join(dp, "ipc1")):
    for f in files:
        rel = os.path.relpath(os.path.join(root, f), dp)
        if f == "manifest.json":
            continue
        with open(os.path.join(dp, rel), "rb") as x, open(os.path.join(dc, rel), "rb") as y:
            check(x.read() == y.read(), "distill output differs: " + rel)
        nfiles += 1
check(nfiles >= 3, "distill wrote %d files (2 images and manifest.csv expected)" % nfiles)

# --- errors become exceptions with the category ---
for kw, cat in ((dict(precision="f8"), "usage"), (dict(dift_t=1000), "usage"), (dict(patch=300), "usage")):
    try:
        ddps.score(data, MODEL, os.path.join(TMP, "bad.sqlite"), **kw)
        check(False, "no exception for %r" % kw)
    except ddps.Error as e:
        check(e.category == cat and str(e), "%r: %s %s" % (kw, e.category, e))
try:
    ddps.Store(os.path.join(TMP, "missing.sqlite"))
    check(False, "no exception for a missing store")
except ddps.Error as e:
    check("missing.sqlite" in str(e), str(e))
try:
    ddps.score(data, MODEL, sp, bogus=1)
    check(False, "unknown parameter accepted")
except ddps.Error as e:
    check(e.category == "usage", str(e))

# --- progress can cancel; an exception in a callback comes back ---
st3 = os.path.join(TMP, "cancel.sqlite")
try:
    ddps.score(data, MODEL, st3, progress=lambda s, d, t: d >= 1, **SMALL)
    check(False, "not cancelled")
except ddps.Error as e:
    check(e.category == "cancelled", "%s %s" % (e.category, e))
check(ddps.Store(st3).classes[0]["n_images"] == 1, "one image stored before the cancel")


class Boom(Exception):
    pass


def boom(stage, done, total):
    raise Boom()


try:
    ddps.score(data, MODEL, st3, progress=boom, **SMALL)
    check(False, "callback exception lost")
except Boom:
    pass

# --- the engine on numpy images ---
with ddps.Engine(MODEL, threads=2) as eng:
    check(eng.model_id == a.model_id, "engine model id")
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (260, 300, 3), dtype=np.uint8)
    res = eng.score_images([img, img], prompt="An image of a dog.", keys=["k", "k"], timesteps=2, dift_ensemble=1)
    check(len(res) == 2 and res[0]["rh"] == 256 and res[0]["score_map"].shape == (256, res[0]["rw"]), "engine shapes")
    check(res[0]["features"].shape == (1, eng.feature_dim) and np.array_equal(res[0]["features"], res[1]["features"]),
          "engine features deterministic per key")
    try:
        eng.score_images([np.zeros((10, 10), np.uint8)])
        check(False, "bad image shape accepted")
    except ddps.Error as e:
        check(e.category == "usage", str(e))

print("api_python: %d failures" % failures)
sys.exit(1 if failures else 0)
