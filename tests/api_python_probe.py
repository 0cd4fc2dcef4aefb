"""What the new-user / hostile probe of the Python package found (issue 20),
on the golden tiny model: arguments checked before ctypes, an Engine shared
by threads, the CLI's image checks on the engine path, a spent engine,
Ctrl-C as KeyboardInterrupt.
usage: api_python_probe.py MODEL STORE DATA TMPDIR (STORE: a finished store of DATA)"""
import os
import signal
import subprocess
import sys
import threading

import numpy as np

import ddps

MODEL, STORE, DATA, TMP = sys.argv[1:5]
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("CHECK failed:", what, file=sys.stderr)


def raises(kind, words, fn, *args, **kw):
    """fn(*args, **kw) raises kind whose message contains every word."""
    try:
        fn(*args, **kw)
    except kind as e:
        check(all(w in str(e) for w in words), "%s: %r lacks %r" % (kind.__name__, str(e), words))
        check(isinstance(e, ddps.Error) and e.category == "usage", "%r is not a ddps usage error" % e)
        return
    except BaseException as e:  # noqa: B902
        check(False, "expected %s %r, got %s: %s" % (kind.__name__, words, type(e).__name__, e))
        return
    check(False, "expected %s %r, nothing raised" % (kind.__name__, words))


out = os.path.join(TMP, "probe_out")
bad = os.path.join(TMP, "probe_bad.sqlite")

# --- every argument is checked before ctypes ---
raises(TypeError, ["prompt"], ddps.score, DATA, MODEL, bad, prompt=12345)
raises(TypeError, ["format"], ddps.select, STORE, out, 1, format=7)
raises(ValueError, ["size", "4294967424"], ddps.score, DATA, MODEL, bad, size=2 ** 32 + 128)
raises(ValueError, ["ipc"], ddps.select, STORE, out, 2 ** 32 + 1)
raises(ValueError, ["timesteps[0]"], ddps.score, DATA, MODEL, bad, timesteps=[2 ** 33 + 100])
raises(TypeError, ["classes"], ddps.score, DATA, MODEL, bad, classes="circle")
raises(TypeError, ["classes"], ddps.select, STORE, out, 1, classes="circle")
raises(TypeError, ["seed"], ddps.score, DATA, MODEL, bad, seed=1.5)
raises(ValueError, ["seed"], ddps.score, DATA, MODEL, bad, seed=-1)
raises(TypeError, ["threads"], ddps.report, STORE, out, threads="2")
raises(TypeError, ["store"], ddps.select, 7, out, 1)
raises(TypeError, ["shards"], ddps.merge, bad, "a.sqlite.shard-0-of-1")
raises(TypeError, ["bogus"], ddps.score, DATA, MODEL, bad, bogus=1)
check(not os.path.exists(bad), "a refused call created its store")
# numpy integer scalars are integers
ddps.select(STORE, out, ipc=np.int64(1), threads=np.int32(2))
check(os.path.isdir(os.path.join(out, "ipc1")), "select with numpy integers wrote no ipc1")
ddps.select(STORE, out, ipc=[np.int64(1)])

# --- the engine: images and prompts ---
eng = ddps.Engine(MODEL, threads=2)
SMALL = dict(timesteps=2, dift_ensemble=1, size=64, patch=48)
rng = np.random.default_rng(0)
img = rng.integers(0, 256, (70, 80, 3), dtype=np.uint8)
raises(TypeError, ["prompt", "required"], eng.score_images, [img], **SMALL)
raises(ValueError, ["{}"], eng.score_images, [img], prompt="An image of {}.", **SMALL)
raises(TypeError, ["images[0]", "float"], eng.score_images, [img / 255.0], prompt="a dog", **SMALL)
raises(TypeError, ["images[0]", "uint8"], eng.score_images, [img.astype(np.int64)], prompt="a dog", **SMALL)
raises(TypeError, ["images"], eng.score_images, img, prompt="a dog", **SMALL)


def refused(im, words, **kw):
    try:
        eng.score_images([im], prompt="a dog", **dict(SMALL, **kw))
        check(False, "image %s accepted" % (im.shape,))
    except ddps.Error as e:
        check(e.category == "data" and all(w in str(e) for w in words), "image %s: %s %s" % (im.shape, e.category, e))


refused(np.zeros((1, 5000, 3), np.uint8), ["image 0", "aspect"])          # was: killed by the OOM killer
refused(np.zeros((20, 128, 3), np.uint8), ["image 0", "aspect"], size=128, patch=96)  # was: scored at 819x128
os.environ["DDPS_MEMORY_LIMIT_MB"] = "1"
refused(img, ["image 0", "memory"])
del os.environ["DDPS_MEMORY_LIMIT_MB"]
ref = eng.score_images([img], prompt="a dog", keys=["k"], **SMALL)[0]
check(np.isfinite(ref["image_score"]) and np.all(np.isfinite(ref["features"])), "reference is not finite")

# --- one Engine, several threads: same numbers as alone, no crash ---
results, errors = [], []


def worker():
    try:
        for _ in range(2):
            results.append(eng.score_images([img], prompt="a dog", keys=["k"], **SMALL)[0])
    except BaseException as e:  # noqa: B902
        errors.append(e)


threads = [threading.Thread(target=worker) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
check(not errors and len(results) == 8, "threads: %d results, errors %r" % (len(results), errors))
for r in results:
    check(r["image_score"] == ref["image_score"] and np.array_equal(r["features"], ref["features"]),
          "a thread's result differs from the single-thread one (%r vs %r)" % (r["image_score"], ref["image_score"]))

# --- close() from another thread during a score waits for it ---
started = threading.Event()
eng2 = ddps.Engine(MODEL, threads=2, progress=lambda stage, done, total: started.set())
got = []
t = threading.Thread(target=lambda: got.append(eng2.score_images([img] * 3, prompt="a dog", **SMALL)))
t.start()
started.wait(60)
eng2.close()
t.join()
check(len(got) == 1 and len(got[0]) == 3 and all(np.isfinite(r["image_score"]) for r in got[0]),
      "the call running while close() came did not finish")
raises(ValueError, ["closed"], eng2.score_images, [img], prompt="a dog", **SMALL)
eng2.close()

# --- a backend failure spends the engine, and the message says so ---
os.environ["DDPS_FAULT_INJECT"] = "conv2d:3"
eng3 = ddps.Engine(MODEL, threads=2)
del os.environ["DDPS_FAULT_INJECT"]
msgs = []
for _ in range(2):
    try:
        eng3.score_images([img], prompt="a dog", **SMALL)
    except ddps.Error as e:
        msgs.append(str(e))
check(len(msgs) == 2 and all("open a new one" in m for m in msgs), "spent engine messages: %r" % msgs)
eng3.close()
eng.close()

# --- Ctrl-C during score: KeyboardInterrupt, nothing on stderr from ctypes, the store consistent ---
child = r"""
import sys, ddps
store = sys.argv[3]
def progress(stage, done, total):
    if done == 1:
        print("go", flush=True)  # the parent's SIGINT then lands while the library scores image 2
try:
    ddps.score(sys.argv[1], sys.argv[2], store, progress=progress, timesteps=2, dift_ensemble=1, clusters=2)
    print("finished")
except KeyboardInterrupt:
    print("KeyboardInterrupt")
except ddps.Error as e:
    print("ddps.Error", e.category, e)
print(sum(c["n_images"] for c in ddps.Store(store).classes))
"""
st = os.path.join(TMP, "probe_int.sqlite")
p = subprocess.Popen([sys.executable, "-c", child, DATA, MODEL, st], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     text=True)
line = p.stdout.readline()
check(line.strip() == "go", "child: %r" % line)
p.send_signal(signal.SIGINT)
rest, err = p.communicate(timeout=600)
lines = rest.split()
check(rest.startswith("KeyboardInterrupt"), "Ctrl-C came back as %r (stderr %r)" % (rest, err[-500:]))
check("Exception ignored" not in err, "stderr: " + err[-500:])
check(len(lines) >= 2 and lines[-1].isdigit() and 1 <= int(lines[-1]) < 6, "stored after Ctrl-C: %r" % rest)

print("api_python_probe: %d failures" % failures)
sys.exit(1 if failures else 0)
