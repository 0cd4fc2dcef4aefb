"""ddps: diffusion-driven patch selection (Python bindings of libddps).

Pure Python over the shared library through ctypes: nothing is compiled at
install time. Numpy arrays in and out.

    import ddps
    ddps.score("imagewoof/train", "stable-diffusion-v1-5", "woof.sqlite",
               progress=lambda stage, done, total: print(done, total))
    ddps.select("woof.sqlite", "distilled", ipc=[1, 10])
    store = ddps.Store("woof.sqlite")       # classes, images, candidates, features
    eng = ddps.Engine("stable-diffusion-v1-5")
    res = eng.score_images([rgb_uint8_hxwx3], prompt="An image of a dog.")

Defaults are the `ddps` command's. Failures raise ddps.Error, which carries
the library's one-line message and its category ("usage", "data",
"resource", "cancelled", "failure"). Progress callbacks get (stage, done,
total) and may return True to cancel (what is stored stays stored); log
callbacks get (level, line) with level 1 warning, 2 info, 3 debug.

Arguments are checked before anything reaches the library: a wrong type
raises TypeError, a value out of range ValueError, both naming the argument
(they are also ddps.Error with category "usage"). Integers may be numpy
integers; images must be uint8 (float pixels are refused, never cast).
Ctrl-C during a call stops it at the next image (what is stored stays
stored) and raises KeyboardInterrupt. An Engine may be shared by threads:
its calls run one at a time, and close() waits for a running call.
"""
import contextlib
import ctypes
import json
import os
import signal
import threading

import numpy as np

from . import _args as A
from . import _lib
from ._args import ArgTypeError, ArgValueError, Error
from ._lib import lib

__all__ = ["Error", "ArgTypeError", "ArgValueError", "score", "select", "merge", "report", "train", "eval", "Store", "Engine", "score_defaults", "select_defaults", "version"]


def version():
    return lib.ddps_version().decode()


def _check(status, err):
    if status != 0:
        raise Error(status, err.message.decode("utf-8", "replace"))


def score_defaults():
    """The scoring defaults (those of `ddps score`) as a dict."""
    p = _lib.ScoreParams()
    lib.ddps_score_params_init(ctypes.byref(p))
    return {name: _value(getattr(p, name)) for name, _ in p._fields_ if name not in ("timesteps", "classes")}


def select_defaults():
    """The selection defaults (those of `ddps select`) as a dict."""
    p = _lib.SelectParams()
    lib.ddps_select_params_init(ctypes.byref(p))
    return {name: _value(getattr(p, name)) for name, _ in p._fields_ if name != "classes"}


def _value(v):
    return v.decode() if isinstance(v, bytes) else v


class _Keep:
    """Keeps the ctypes objects a call's structs point to alive."""

    def __init__(self):
        self.objs = []

    def __call__(self, o):
        self.objs.append(o)
        return o


def _names(keep, name, v):
    v = A.names(name, v)
    arr = keep((ctypes.c_char_p * max(len(v), 1))(*v))
    return ctypes.cast(arr, ctypes.POINTER(ctypes.c_char_p)), len(v)


# fields the package sets from another keyword (classes=, timesteps=), never directly
_HIDDEN = ("n_classes", "n_explicit", "timesteps", "classes")
# char * fields that are file names (os.PathLike accepted)
_PATHS = ("class_names", "config_dir", "data_root", "data", "val", "out", "checkpoint", "distilled", "teacher")


def _set_fields(keep, p, what, kw):
    """Sets p's plain fields from kw, each checked for its C type."""
    types = {name: t for name, t in p._fields_ if name not in _HIDDEN}
    for k, v in kw.items():
        if k not in types:
            raise ArgTypeError("%s: unknown parameter %r" % (what, k))
        if types[k] is ctypes.c_char_p and k in _PATHS and v is not None:
            v = A.path(k, v)
        setattr(p, k, keep(A.field(k, types[k], v)))


def _score_params(keep, kw):
    p = _lib.ScoreParams()
    lib.ddps_score_params_init(ctypes.byref(p))
    kw = dict(kw)
    if "timesteps" in kw:
        v = kw.pop("timesteps")
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            p.n_timesteps, p.n_explicit = A.integer("timesteps", v, 1, _lib.MAX_TIMESTEPS), 0
        else:
            v = A.ints("timesteps", v, 0, A.INT_MAX)
            if len(v) > _lib.MAX_TIMESTEPS:
                raise ArgValueError("timesteps: at most %d values" % _lib.MAX_TIMESTEPS)
            for i, t in enumerate(v):
                p.timesteps[i] = t
            p.n_explicit = len(v)
    if "t_range" in kw:
        v = A.sequence("t_range", kw.pop("t_range"))
        if len(v) != 2:
            raise ArgValueError("t_range: expected (lo, hi), got %d values" % len(v))
        p.t_lo, p.t_hi = A.real("t_range[0]", v[0]), A.real("t_range[1]", v[1])
    classes = kw.pop("classes", None)
    if classes is not None:
        p.classes, p.n_classes = _names(keep, "classes", classes)
    _set_fields(keep, p, "score", kw)
    return p


def _select_params(keep, kw):
    p = _lib.SelectParams()
    lib.ddps_select_params_init(ctypes.byref(p))
    kw = dict(kw)
    classes = kw.pop("classes", None)
    if classes is not None:
        p.classes, p.n_classes = _names(keep, "classes", classes)
    _set_fields(keep, p, "select", kw)
    return p


def _ipcs(keep, ipc):
    v = A.ints("ipc", ipc)
    return keep((ctypes.c_int * len(v))(*v)), len(v)


class _Hooks:
    """ddps_hooks over Python callables; an exception inside a callback
    (KeyboardInterrupt included) cancels the run and is raised again
    afterwards."""

    def __init__(self, progress=None, log=None):
        if progress is not None and not callable(progress):
            raise ArgTypeError("progress: expected a callable, got %s" % type(progress).__name__)
        if log is not None and not callable(log):
            raise ArgTypeError("log: expected a callable, got %s" % type(log).__name__)
        self.progress, self.log, self.exc = progress, log, None
        self.cancel = ctypes.c_int(0)
        self.h = _lib.Hooks()
        self._log_c = _lib.LOG_FN(self._on_log)
        self._progress_c = _lib.PROGRESS_FN(self._on_progress)
        self.h.log = self._log_c
        self.h.progress = self._progress_c
        self.h.cancel = ctypes.pointer(self.cancel)

    def _failed(self, e):
        if self.exc is None:
            self.exc = e
        self.cancel.value = 1

    def _on_log(self, user, level, line):
        try:
            if self.log and self.exc is None:
                self.log(int(level), line.decode("utf-8", "replace"))
        except BaseException as e:  # noqa: B902 - re-raised after the call
            self._failed(e)

    def _on_progress(self, user, stage, done, total):
        try:
            if self.progress and self.exc is None and self.progress(stage.decode(), int(done), int(total)):
                return 1
        except BaseException as e:  # noqa: B902
            self._failed(e)
        return 1 if self.exc is not None or self.cancel.value else 0

    def call(self, fn, *args):
        """fn(*args) with a SIGINT handler (main thread, where Python's own
        is installed) that cancels the call between images; the interrupt
        and a callback's exception are raised once the call has returned."""
        self.exc, self.cancel.value = None, 0
        old = None
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            old = signal.signal(signal.SIGINT, lambda signum, frame: self._failed(KeyboardInterrupt()))
        try:
            st = fn(*args)
        finally:
            if old is not None:
                signal.signal(signal.SIGINT, old)
            self.cancel.value = 0
        if self.exc is not None:
            e, self.exc = self.exc, None
            raise e
        return st


def _run(hooks, fn, *args):
    """hooks.call, then ddps.Error for a failed status."""
    err = _lib.Error()
    _check(hooks.call(fn, *(args + (ctypes.byref(err),))), err)


def score(data, model, store, progress=None, log=None, **params):
    """`ddps score --data data --model model --store store` with params named
    as ddps_score_params' fields (timesteps=5 or [100, 400], t_range=(lo, hi),
    patch=192, ..., classes=[...]). Returns this run's totals as a dict."""
    keep = _Keep()
    args = (A.path("data", data), A.path("model", model), A.path("store", store))
    p = _score_params(keep, params)
    hooks = _Hooks(progress, log)
    tot = _lib.RunTotals()
    _run(hooks, lib.ddps_run_score, ctypes.byref(p), *args, ctypes.byref(hooks.h), ctypes.byref(tot))
    return {name: getattr(tot, name) for name, _ in tot._fields_}


def select(store, out, ipc, progress=None, log=None, **params):
    """`ddps select --store store --out out --ipc ...`: writes out/ipc<N>/ for
    every N in ipc (an int or a list); params as ddps_select_params' fields."""
    keep = _Keep()
    args = (A.path("store", store), A.path("out", out))
    arr, n = _ipcs(keep, ipc)
    p = _select_params(keep, params)
    hooks = _Hooks(progress, log)
    _run(hooks, lib.ddps_run_select, *args, arr, n, ctypes.byref(p), ctypes.byref(hooks.h))


def distill(data, model, out, ipc, store=None, report=False, progress=None, log=None, select=None, **params):
    """`ddps distill --data data --model model --out out --ipc ...`: score
    (params as in score()) into store (default out/ddps.sqlite), then write
    out/ipc<N>/ for every N (select: a dict of select() params), then, with
    report=True, out/report at the first IPC. Returns the scoring totals."""
    keep = _Keep()
    args = (A.path("data", data), A.path("model", model), A.path("out", out),
            None if store is None else A.path("store", store))
    if not isinstance(report, (bool, np.bool_)):
        raise ArgTypeError("report: expected True or False, got %s" % type(report).__name__)
    if select is not None and not isinstance(select, dict):
        raise ArgTypeError("select: expected a dict of select() parameters, got %s" % type(select).__name__)
    p = _score_params(keep, params)
    s = _select_params(keep, select or {})
    arr, n = _ipcs(keep, ipc)
    hooks = _Hooks(progress, log)
    tot = _lib.RunTotals()
    _run(hooks, lib.ddps_run_distill, ctypes.byref(p), ctypes.byref(s), *args, arr, n, 1 if report else 0,
         ctypes.byref(hooks.h), ctypes.byref(tot))
    return {name: getattr(tot, name) for name, _ in tot._fields_}


def demo(dir, classes=10, per_class=30, log=None):
    """The demo's fixtures, made on the spot (nothing downloaded): dir/world,
    a split of the toy world (dir/world/test, an ImageFolder of objects on
    cluttered backgrounds, with the objects' boxes in dir/world/boxes.json and
    the prompt names in dir/world/classes.tsv), remade on every call, and
    dir/model, the toy model (SD v1.x's structure, trained on the toy world),
    kept when it exists. Returns (data_dir, model_dir) for score() or
    distill()."""
    d = A.path("dir", dir)
    p = _lib.DemoParams()
    lib.ddps_demo_params_init(ctypes.byref(p))
    p.n_classes, p.per_class = A.integer("classes", classes), A.integer("per_class", per_class)
    hooks = _Hooks(None, log)
    _run(hooks, lib.ddps_demo_write, d, ctypes.byref(p), ctypes.byref(hooks.h))
    return os.path.join(os.fsdecode(d), "world", "test"), os.path.join(os.fsdecode(d), "model")


def merge(out, shards, log=None, force=False):
    """`ddps merge --store out shards...`: joins the shard stores of a
    sharded score job into out (written only when complete). An existing
    out that is not a finished store of the same job is refused unless
    force=True."""
    keep = _Keep()
    o = A.path("out", out)
    names = [A.path("shards[%d]" % i, x) for i, x in enumerate(A.sequence("shards", shards))]
    arr = keep((ctypes.c_char_p * max(len(names), 1))(*names))
    hooks = _Hooks(None, log)
    if not isinstance(force, (bool, np.bool_)):
        raise ArgTypeError("force: expected True or False, got %s" % type(force).__name__)
    _run(hooks, lib.ddps_run_merge_flags, o, arr, len(names), 1 if force else 0, ctypes.byref(hooks.h))


def report(store, out, progress=None, log=None, **params):
    """`ddps report --store store --out out`: the static HTML report;
    params as ddps_report_params' fields (data_root, ipc=10, thumb=160, threads)."""
    keep = _Keep()
    args = (A.path("store", store), A.path("out", out))
    p = _lib.ReportParams()
    lib.ddps_report_params_init(ctypes.byref(p))
    _set_fields(keep, p, "report", params)
    hooks = _Hooks(progress, log)
    _run(hooks, lib.ddps_run_report, *args, ctypes.byref(p), ctypes.byref(hooks.h))


def train(data, out, val=None, progress=None, log=None, **params):
    """`ddps train --data data --out out [--val val]`: a classifier from
    scratch with hard labels; params as ddps_train_params' fields (model=
    "resnet18-modified", size=32, epochs=30, batch=64, opt="sgd", lr,
    weight_decay, momentum, nesterov, sched="cosine", warmup, label_smoothing,
    crop_scale, seed, threads, checkpoint). Checked as the CLI checks
    (ddps_train_params_check). Writes out and its .json; returns the last
    epoch's figures as a dict (top1/top5 -1 without val)."""
    keep = _Keep()
    p = _lib.TrainParams()
    lib.ddps_train_params_init(ctypes.byref(p))
    _set_fields(keep, p, "train", dict(params, data=data, out=out, val=val))
    err = _lib.Error()
    _check(lib.ddps_train_params_check(ctypes.byref(p), ctypes.byref(err)), err)
    hooks = _Hooks(progress, log)
    res = _lib.TrainResult()
    _run(hooks, lib.ddps_run_train, ctypes.byref(p), ctypes.byref(hooks.h), ctypes.byref(res))
    return {name: getattr(res, name) for name, _ in res._fields_}


def eval(distilled, val, teacher, progress=None, log=None, **params):
    """`ddps eval --distilled distilled --val val --teacher teacher`: RDED's
    evaluation protocol; params as ddps_eval_params' fields (teacher_model=
    "resnet18", student="resnet18", students=5, size, epochs=300, batch, lr=1e-3,
    weight_decay=0.01, temperature=20, factor=2, min_scale, cutmix=1,
    eval_every=10, seed, threads, out). Writes eval.json (or out); returns
    {"students", "top1_mean", "top1_std", "top5_mean", "top1": [...],
    "best_top1": [...], "seconds"}."""
    keep = _Keep()
    p = _lib.EvalParams()
    lib.ddps_eval_params_init(ctypes.byref(p))
    _set_fields(keep, p, "eval", dict(params, distilled=distilled, val=val, teacher=teacher))
    err = _lib.Error()
    _check(lib.ddps_eval_params_check(ctypes.byref(p), ctypes.byref(err)), err)
    hooks = _Hooks(progress, log)
    res = _lib.EvalResult()
    _run(hooks, lib.ddps_run_eval, ctypes.byref(p), ctypes.byref(hooks.h), ctypes.byref(res))
    n = res.students
    return {"students": n, "top1_mean": res.top1_mean, "top1_std": res.top1_std, "top5_mean": res.top5_mean,
            "top1": list(res.top1[:n]), "best_top1": list(res.best_top1[:n]), "seconds": res.seconds}


def _floats(ptr, shape):
    n = int(np.prod(shape))
    if n == 0 or not ptr:
        return np.zeros(shape, np.float32)
    return np.ctypeslib.as_array(ptr, shape=(n,)).reshape(shape).copy()


class Store:
    """A store read into plain structures (read-only; the file is closed at
    the end of the constructor).

    store.meta: dict of the meta table's known keys; store.settings: the
    scoring settings (dict); store.model_id; store.classes: list of dicts with
    id, name, prompt_name, prompt, n_images, n_bad, n_cand, clustered,
    clustered_k, and
      images:     list of dicts relpath, width, height, rw, rh, image_score,
                  map (float32 [h, w] or None)
      candidates: dict of numpy arrays, one row per candidate sorted by
                  (relpath, idx): image, idx, box (float64 [n, 4]: x0 y0 x1 y1
                  in original pixels), rbox (int32 [n, 4]: rx ry rw rh),
                  score, cluster, cluster_rank, dist
      features:   float32 [n_cand, dim] (with_features=True)
      clusters:   list of dicts cluster, size, rank, median_score (by rank)
    """

    META_KEYS = ("settings", "model_id", "data_root", "ddps_version", "feature_dim", "model_dir")

    def __init__(self, path, with_features=True, with_maps=True):
        name = A.path("path", path)
        self.path = os.fsdecode(name)
        db = ctypes.c_void_p()
        err = _lib.Error()
        _check(lib.ddps_db_open(name, ctypes.byref(db), ctypes.byref(err)), err)
        try:
            self.meta = {}
            for k in self.META_KEYS:
                v = ctypes.c_void_p()
                _check(lib.ddps_db_meta(db, k.encode(), ctypes.byref(v), ctypes.byref(err)), err)
                if v.value:
                    self.meta[k] = ctypes.string_at(v.value).decode("utf-8", "replace")
                    lib.ddps_free(v)
            self.settings = json.loads(self.meta["settings"]) if "settings" in self.meta else {}
            self.model_id = self.meta.get("model_id")
            self.classes = self._classes(db, with_features, with_maps, err)
        finally:
            lib.ddps_db_close(db)

    @staticmethod
    def _classes(db, with_features, with_maps, err):
        cp = ctypes.POINTER(_lib.DbClass)()
        n = ctypes.c_int()
        _check(lib.ddps_db_classes(db, ctypes.byref(cp), ctypes.byref(n), ctypes.byref(err)), err)
        out = []
        try:
            for i in range(n.value):
                c = cp[i]
                d = {"id": c.id, "name": _value(c.name), "prompt_name": _value(c.prompt_name),
                     "prompt": _value(c.prompt), "n_images": c.n_images, "n_bad": c.n_bad, "n_cand": c.n_cand,
                     "clustered": bool(c.clustered), "clustered_k": c.clustered_k}
                data = _lib.DbClassData()
                _check(lib.ddps_db_load(db, c.id, int(with_features), int(with_maps), ctypes.byref(data),
                                        ctypes.byref(err)), err)
                try:
                    d.update(Store._class_data(data))
                finally:
                    lib.ddps_db_class_data_free(ctypes.byref(data))
                out.append(d)
        finally:
            lib.ddps_db_classes_free(cp, n.value)
        return out

    @staticmethod
    def _class_data(data):
        images = []
        for i in range(data.n_images):
            im = data.images[i]
            images.append({"relpath": _value(im.relpath), "width": im.width, "height": im.height, "rw": im.rw,
                           "rh": im.rh, "image_score": float(np.float32(im.image_score)),
                           "map": _floats(im.map, (im.map_h, im.map_w)) if im.map else None})
        n = data.n_cand
        cands = [data.cand[i] for i in range(n)]
        cand = {
            "image": np.array([c.image for c in cands], np.int32),
            "idx": np.array([c.idx for c in cands], np.int32),
            "box": np.array([[c.x0, c.y0, c.x1, c.y1] for c in cands], np.float64).reshape(n, 4),
            "rbox": np.array([[c.rx, c.ry, c.rw, c.rh] for c in cands], np.int32).reshape(n, 4),
            "score": np.array([c.score for c in cands], np.float32),
            "cluster": np.array([c.cluster for c in cands], np.int32),
            "cluster_rank": np.array([c.cluster_rank for c in cands], np.int32),
            "dist": np.array([c.dist for c in cands], np.float32),
        }
        clusters = [{"cluster": data.clusters[i].cluster, "size": data.clusters[i].size,
                     "rank": data.clusters[i].rank, "median_score": data.clusters[i].median_score}
                    for i in range(data.n_clusters)]
        feats = _floats(data.features, (n, data.dim)) if data.features else None
        return {"images": images, "candidates": cand, "features": feats, "dim": data.dim, "clusters": clusters}


class Engine:
    """A model on a backend with a prompt cache: scores decoded images
    (numpy uint8 arrays of shape (H, W, 3)) as `ddps score` does, with the
    same checks (aspect ratio up to 4:1, memory pre-flight: such an image is
    refused with ddps.Error naming it).

    The C engine is used by one thread at a time: calls from several
    threads wait for each other (a lock per Engine), and close() waits for
    a running call. After a failure of the backend (out of memory, a
    device error) every call fails saying the engine must be reopened."""

    def __init__(self, model, device="cpu", precision="f32", threads=0, progress=None, log=None):
        name = A.path("model", model)
        p = _lib.EngineParams()
        lib.ddps_engine_params_init(ctypes.byref(p))
        self._keep = _Keep()
        p.device = self._keep(A.text("device", device))
        p.precision = self._keep(A.text("precision", precision))
        p.threads = A.integer("threads", threads, 0, 4096)
        self._lock, self._owner, self._e = threading.Lock(), None, None
        self._hooks = _Hooks(progress, log)
        e = ctypes.c_void_p()
        _run(self._hooks, lib.ddps_engine_open, name, ctypes.byref(p), ctypes.byref(self._hooks.h), ctypes.byref(e))
        self._e = e
        self.model_id = lib.ddps_engine_model_id(self._e).decode()
        self.feature_dim = lib.ddps_engine_feature_dim(self._e)

    @contextlib.contextmanager
    def _use(self, what):
        """The engine for one call: waits for another thread's call; refuses
        a call from this engine's own callback (it would deadlock) and a
        closed engine."""
        if self._owner == threading.get_ident():
            raise RuntimeError("Engine.%s: called from inside a call on the same engine (a callback)" % what)
        with self._lock:
            if not self._e:
                raise ArgValueError("Engine.%s: the engine is closed" % what)
            self._owner = threading.get_ident()
            try:
                yield self._e
            finally:
                self._owner = None

    def close(self):
        """Frees the engine; waits for a call running in another thread."""
        if getattr(self, "_e", None) is None:
            return
        if self._owner == threading.get_ident():
            raise RuntimeError("Engine.close: called from inside a call on the same engine (a callback)")
        with self._lock:
            if self._e:
                lib.ddps_engine_close(self._e)
                self._e = None

    def __del__(self):
        if getattr(self, "_e", None):
            lib.ddps_engine_close(self._e)
            self._e = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def encode_prompts(self, prompts):
        """Ids of the prompts in the engine's cache (encoded when new)."""
        prompts = [A.text("prompts", prompts)] if isinstance(prompts, str) else A.names("prompts", prompts)
        with self._use("encode_prompts") as e:
            return self._encode(e, prompts)

    def _encode(self, e, prompts):
        arr = (ctypes.c_char_p * max(len(prompts), 1))(*prompts)
        ids = (ctypes.c_int * max(len(prompts), 1))()
        _run(self._hooks, lib.ddps_engine_encode_prompts, e, arr, len(prompts), ids)
        return list(ids)[:len(prompts)]

    def score_images(self, images, prompt=None, null_prompt="", keys=None, **params):
        """Scores each image (uint8 (H, W, 3)) with the label prompt (one str,
        or one per image; required: the full text, e.g. "An image of a
        dog.", since there is no class name to put for "{}") and returns per
        image a dict: width, height, rw, rh, image_score, score_map [rh, rw],
        patch_scores [gh, gw], map [h, w], candidates (list of dicts box,
        rbox, score), features [n_cand, dim]. keys: the noise-stream key per
        image (in a dataset the path relative to its root, which reproduces
        `ddps score`'s numbers); default "0", "1", ... params:
        ddps_score_params' fields."""
        if isinstance(images, np.ndarray) and images.ndim != 4:
            raise ArgTypeError("images: expected a list of (H, W, 3) arrays (or one (N, H, W, 3) array), got an "
                               "array of shape %s" % (images.shape,))
        images = [A.image("images[%d]" % i, im) for i, im in enumerate(A.sequence("images", images))]
        n = len(images)
        prompts = self._prompts(prompt, n)
        null = A.text("null_prompt", null_prompt)
        keys = [str(i).encode() for i in range(n)] if keys is None else \
            [A.text("keys[%d]" % i, k) for i, k in enumerate(A.sequence("keys", keys))]
        if len(keys) != n:
            raise ArgValueError("keys: %d keys for %d images" % (len(keys), n))
        keep = _Keep()
        p = _score_params(keep, params)
        with self._use("score_images") as e:
            ids = self._encode(e, [null] + prompts)
            ins = (_lib.ImageIn * max(n, 1))()
            for i, im in enumerate(images):
                ins[i].pixels = im.ctypes.data
                ins[i].width, ins[i].height = im.shape[1], im.shape[0]
                ins[i].key = keep(keys[i])
                ins[i].prompt = ids[1 + i]
            outs = (_lib.ImageScores * max(n, 1))()
            try:
                _run(self._hooks, lib.ddps_engine_score, e, ctypes.byref(p), ids[0], ins, n, outs)
                return [self._result(outs[i]) for i in range(n)]
            finally:
                for i in range(n):
                    lib.ddps_image_scores_free(ctypes.byref(outs[i]))

    @staticmethod
    def _prompts(prompt, n):
        if prompt is None:
            raise ArgTypeError("prompt: required (the label prompt's full text, e.g. \"An image of a dog.\")")
        prompts = [prompt] * n if isinstance(prompt, (str, bytes)) else A.sequence("prompt", prompt)
        if len(prompts) != n:
            raise ArgValueError("prompt: %d prompts for %d images" % (len(prompts), n))
        out = [A.text("prompt" if isinstance(prompt, (str, bytes)) else "prompt[%d]" % i, t)
               for i, t in enumerate(prompts)]
        for i, t in enumerate(out):
            if b"{}" in t:
                raise ArgValueError("prompt: %r has \"{}\" but the engine has no class name to put there: "
                                    "give the full text" % t.decode("utf-8", "replace"))
        return out

    @staticmethod
    def _result(s):
        cands = [{"box": (s.cand[q].x0, s.cand[q].y0, s.cand[q].x1, s.cand[q].y1),
                  "rbox": (s.cand[q].rx, s.cand[q].ry, s.cand[q].rw, s.cand[q].rh),
                  "score": float(np.float32(s.cand[q].score))} for q in range(s.n_cand)]
        return {"width": s.width, "height": s.height, "rw": s.rw, "rh": s.rh,
                "image_score": float(np.float32(s.image_score)),
                "score_map": _floats(s.score_map, (s.rh, s.rw)),
                "patch_scores": _floats(s.patch_scores, (s.grid_h, s.grid_w)),
                "map": _floats(s.map, (s.map_h, s.map_w)),
                "candidates": cands,
                "features": _floats(s.features, (s.n_cand, s.dim))}
