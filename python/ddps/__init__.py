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
"""
import ctypes
import json
import os

import numpy as np

from . import _lib
from ._lib import lib

__all__ = ["Error", "score", "select", "merge", "report", "Store", "Engine", "score_defaults", "select_defaults", "version"]


class Error(Exception):
    """A failed ddps call: str(e) is the library's message; e.category one of
    "usage", "data", "resource", "cancelled", "failure"; e.status the number."""

    def __init__(self, status, message):
        self.status = int(status)
        self.category = lib.ddps_status_name(self.status).decode()
        self.message = message
        super().__init__(message)


def version():
    return lib.ddps_version().decode()


def _check(status, err):
    if status != 0:
        raise Error(status, err.message.decode("utf-8", "replace"))


def _b(s):
    return None if s is None else (s.encode() if isinstance(s, str) else bytes(s))


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


def _names(keep, names):
    arr = (ctypes.c_char_p * len(names))(*[_b(n) for n in names])
    keep(arr)
    return ctypes.cast(arr, ctypes.POINTER(ctypes.c_char_p)), len(names)


def _score_params(keep, kw):
    p = _lib.ScoreParams()
    lib.ddps_score_params_init(ctypes.byref(p))
    fields = {name for name, _ in p._fields_}
    for k, v in kw.items():
        if k == "timesteps":
            if isinstance(v, int):
                p.n_timesteps = v
                p.n_explicit = 0
            else:
                v = list(v)
                if len(v) > _lib.MAX_TIMESTEPS:
                    raise Error(2, "timesteps: at most %d values" % _lib.MAX_TIMESTEPS)
                for i, t in enumerate(v):
                    p.timesteps[i] = int(t)
                p.n_explicit = len(v)
        elif k == "t_range":
            p.t_lo, p.t_hi = float(v[0]), float(v[1])
        elif k == "classes":
            if v is not None:
                p.classes, p.n_classes = _names(keep, list(v))
        elif k in fields and k not in ("n_classes", "n_explicit"):
            setattr(p, k, keep(_b(v)) if isinstance(v, str) else v)
        else:
            raise Error(2, "score: unknown parameter %r" % k)
    return p


def _select_params(keep, kw):
    p = _lib.SelectParams()
    lib.ddps_select_params_init(ctypes.byref(p))
    fields = {name for name, _ in p._fields_}
    for k, v in kw.items():
        if k == "classes":
            if v is not None:
                p.classes, p.n_classes = _names(keep, list(v))
        elif k in fields and k != "n_classes":
            setattr(p, k, keep(_b(v)) if isinstance(v, str) else v)
        else:
            raise Error(2, "select: unknown parameter %r" % k)
    return p


class _Hooks:
    """ddps_hooks over Python callables; an exception inside a callback
    cancels the run and is raised again afterwards."""

    def __init__(self, progress=None, log=None):
        self.progress, self.log, self.exc = progress, log, None
        self.cancel = ctypes.c_int(0)
        self.h = _lib.Hooks()
        self._log_c = _lib.LOG_FN(self._on_log)
        self._progress_c = _lib.PROGRESS_FN(self._on_progress)
        self.h.log = self._log_c
        self.h.progress = self._progress_c
        self.h.cancel = ctypes.pointer(self.cancel)

    def _on_log(self, user, level, line):
        if self.log and self.exc is None:
            try:
                self.log(int(level), line.decode("utf-8", "replace"))
            except BaseException as e:  # noqa: B902 - re-raised after the call
                self.exc = e
                self.cancel.value = 1

    def _on_progress(self, user, stage, done, total):
        if not self.progress or self.exc is not None:
            return 1 if self.exc is not None else 0
        try:
            return 1 if self.progress(stage.decode(), int(done), int(total)) else 0
        except BaseException as e:  # noqa: B902
            self.exc = e
            return 1

    def reraise(self):
        if self.exc is not None:
            raise self.exc


def score(data, model, store, progress=None, log=None, **params):
    """`ddps score --data data --model model --store store` with params named
    as ddps_score_params' fields (timesteps=5 or [100, 400], t_range=(lo, hi),
    patch=192, ..., classes=[...]). Returns this run's totals as a dict."""
    keep = _Keep()
    p = _score_params(keep, params)
    hooks = _Hooks(progress, log)
    tot = _lib.RunTotals()
    err = _lib.Error()
    st = lib.ddps_run_score(ctypes.byref(p), _b(str(data)), _b(str(model)), _b(str(store)), ctypes.byref(hooks.h),
                            ctypes.byref(tot), ctypes.byref(err))
    hooks.reraise()
    _check(st, err)
    return {name: getattr(tot, name) for name, _ in tot._fields_}


def select(store, out, ipc, progress=None, log=None, **params):
    """`ddps select --store store --out out --ipc ...`: writes out/ipc<N>/ for
    every N in ipc (an int or a list); params as ddps_select_params' fields."""
    keep = _Keep()
    ipcs = [ipc] if isinstance(ipc, int) else list(ipc)
    arr = (ctypes.c_int * len(ipcs))(*ipcs)
    p = _select_params(keep, params)
    hooks = _Hooks(progress, log)
    err = _lib.Error()
    st = lib.ddps_run_select(_b(str(store)), _b(str(out)), arr, len(ipcs), ctypes.byref(p), ctypes.byref(hooks.h),
                             ctypes.byref(err))
    hooks.reraise()
    _check(st, err)


def distill(data, model, out, ipc, store=None, report=False, progress=None, log=None, select=None, **params):
    """`ddps distill --data data --model model --out out --ipc ...`: score
    (params as in score()) into store (default out/ddps.sqlite), then write
    out/ipc<N>/ for every N (select: a dict of select() params), then, with
    report=True, out/report at the first IPC. Returns the scoring totals."""
    keep = _Keep()
    p = _score_params(keep, params)
    s = _select_params(keep, select or {})
    ipcs = [ipc] if isinstance(ipc, int) else list(ipc)
    arr = (ctypes.c_int * len(ipcs))(*ipcs)
    hooks = _Hooks(progress, log)
    tot = _lib.RunTotals()
    err = _lib.Error()
    st = lib.ddps_run_distill(ctypes.byref(p), ctypes.byref(s), _b(str(data)), _b(str(model)), _b(str(out)),
                              _b(str(store)) if store is not None else None, arr, len(ipcs), 1 if report else 0,
                              ctypes.byref(hooks.h), ctypes.byref(tot), ctypes.byref(err))
    hooks.reraise()
    _check(st, err)
    return {name: getattr(tot, name) for name, _ in tot._fields_}


def demo(dir, classes=10, per_class=30, log=None):
    """The demo's fixtures, made on the spot (nothing downloaded): dir/world,
    a split of the toy world (dir/world/test, an ImageFolder of objects on
    cluttered backgrounds, with the objects' boxes in dir/world/boxes.json and
    the prompt names in dir/world/classes.tsv), remade on every call, and
    dir/model, the toy model (SD v1.x's structure, trained on the toy world),
    kept when it exists. Returns (data_dir, model_dir) for score() or
    distill()."""
    p = _lib.DemoParams()
    lib.ddps_demo_params_init(ctypes.byref(p))
    p.n_classes, p.per_class = int(classes), int(per_class)
    hooks = _Hooks(None, log)
    err = _lib.Error()
    st = lib.ddps_demo_write(_b(str(dir)), ctypes.byref(p), ctypes.byref(hooks.h), ctypes.byref(err))
    hooks.reraise()
    _check(st, err)
    return os.path.join(str(dir), "world", "test"), os.path.join(str(dir), "model")


def merge(out, shards, log=None):
    """`ddps merge --store out shards...`: joins the shard stores of a
    sharded score job into out (written only when complete)."""
    keep = _Keep()
    names = [_b(str(s)) for s in shards]
    arr = keep((ctypes.c_char_p * max(len(names), 1))(*names))
    hooks = _Hooks(None, log)
    err = _lib.Error()
    st = lib.ddps_run_merge(_b(str(out)), arr, len(names), ctypes.byref(hooks.h), ctypes.byref(err))
    hooks.reraise()
    _check(st, err)


def report(store, out, progress=None, log=None, **params):
    """`ddps report --store store --out out`: the static HTML report;
    params as ddps_report_params' fields (data_root, ipc=10, thumb=160, threads)."""
    keep = _Keep()
    p = _lib.ReportParams()
    lib.ddps_report_params_init(ctypes.byref(p))
    fields = {name for name, _ in p._fields_}
    for k, v in params.items():
        if k not in fields:
            raise Error(2, "report: unknown parameter %r" % k)
        setattr(p, k, keep(_b(v)) if isinstance(v, str) else v)
    hooks = _Hooks(progress, log)
    err = _lib.Error()
    st = lib.ddps_run_report(_b(str(store)), _b(str(out)), ctypes.byref(p), ctypes.byref(hooks.h), ctypes.byref(err))
    hooks.reraise()
    _check(st, err)


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
        self.path = str(path)
        db = ctypes.c_void_p()
        err = _lib.Error()
        _check(lib.ddps_db_open(_b(self.path), ctypes.byref(db), ctypes.byref(err)), err)
        try:
            self.meta = {}
            for k in self.META_KEYS:
                v = ctypes.c_void_p()
                _check(lib.ddps_db_meta(db, _b(k), ctypes.byref(v), ctypes.byref(err)), err)
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
    (numpy uint8 arrays of shape (H, W, 3)) as `ddps score` does."""

    def __init__(self, model, device="cpu", precision="f32", threads=0, progress=None, log=None):
        p = _lib.EngineParams()
        lib.ddps_engine_params_init(ctypes.byref(p))
        self._keep = _Keep()
        p.device, p.precision, p.threads = self._keep(_b(device)), self._keep(_b(precision)), threads
        self._hooks = _Hooks(progress, log)
        self._e = ctypes.c_void_p()
        err = _lib.Error()
        _check(lib.ddps_engine_open(_b(str(model)), ctypes.byref(p), ctypes.byref(self._hooks.h),
                                    ctypes.byref(self._e), ctypes.byref(err)), err)
        self.model_id = lib.ddps_engine_model_id(self._e).decode()
        self.feature_dim = lib.ddps_engine_feature_dim(self._e)

    def close(self):
        if getattr(self, "_e", None):
            lib.ddps_engine_close(self._e)
            self._e = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def encode_prompts(self, prompts):
        """Ids of the prompts in the engine's cache (encoded when new)."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        arr = (ctypes.c_char_p * len(prompts))(*[_b(s) for s in prompts])
        ids = (ctypes.c_int * len(prompts))()
        err = _lib.Error()
        _check(lib.ddps_engine_encode_prompts(self._e, arr, len(prompts), ids, ctypes.byref(err)), err)
        return list(ids)

    def score_images(self, images, prompt="An image of {}.", null_prompt="", keys=None, **params):
        """Scores each image (uint8 (H, W, 3)) with the label prompt (one str,
        or one per image) and returns per image a dict: width, height, rw,
        rh, image_score, score_map [rh, rw], patch_scores [gh, gw], map
        [h, w], candidates (list of dicts box, rbox, score), features
        [n_cand, dim]. keys: the noise-stream key per image (in a dataset the
        path relative to its root, which reproduces `ddps score`'s numbers);
        default "0", "1", ... params: ddps_score_params' fields."""
        images = [np.ascontiguousarray(im, dtype=np.uint8) for im in images]
        for i, im in enumerate(images):
            if im.ndim != 3 or im.shape[2] != 3:
                raise Error(2, "image %d: expected an (H, W, 3) uint8 array, got shape %s" % (i, im.shape))
        n = len(images)
        prompts = [prompt] * n if isinstance(prompt, str) else list(prompt)
        if len(prompts) != n:
            raise Error(2, "score_images: %d prompts for %d images" % (len(prompts), n))
        keys = [str(i) for i in range(n)] if keys is None else [str(k) for k in keys]
        if len(keys) != n:
            raise Error(2, "score_images: %d keys for %d images" % (len(keys), n))
        ids = self.encode_prompts([null_prompt] + prompts) if n else self.encode_prompts([null_prompt])
        keep = _Keep()
        p = _score_params(keep, params)
        ins = (_lib.ImageIn * max(n, 1))()
        for i, im in enumerate(images):
            ins[i].pixels = im.ctypes.data
            ins[i].width, ins[i].height = im.shape[1], im.shape[0]
            ins[i].key = keep(_b(keys[i]))
            ins[i].prompt = ids[1 + i]
        outs = (_lib.ImageScores * max(n, 1))()
        err = _lib.Error()
        st = lib.ddps_engine_score(self._e, ctypes.byref(p), ids[0], ins, n, outs, ctypes.byref(err))
        try:
            self._hooks.reraise()
            _check(st, err)
            return [self._result(outs[i]) for i in range(n)]
        finally:
            for i in range(n):
                lib.ddps_image_scores_free(ctypes.byref(outs[i]))

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
