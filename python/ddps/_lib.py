"""ctypes declarations of include/ddps.h and the search for libddps.so.

The library is looked for, in order: the file named by the environment
variable DDPS_LIBRARY; the library `cmake --install` installed before this
package was pip-installed (recorded in _installed.py by setup.py);
libddps.so next to this package; the build tree this package sits in
(../../build/libddps.so); pkg-config's libdir for ddps; the system loader
(libddps.so.0).
"""
import ctypes
import os
import subprocess

MAX_TIMESTEPS = 64

c_int, c_long, c_double, c_float, c_char_p, c_void_p = (
    ctypes.c_int, ctypes.c_long, ctypes.c_double, ctypes.c_float, ctypes.c_char_p, ctypes.c_void_p)
P = ctypes.POINTER


class Error(ctypes.Structure):
    _fields_ = [("status", c_int), ("message", ctypes.c_char * 2048)]


LOG_FN = ctypes.CFUNCTYPE(None, c_void_p, c_int, c_char_p)
PROGRESS_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_char_p, c_long, c_long)


class Hooks(ctypes.Structure):
    _fields_ = [("log", LOG_FN), ("progress", PROGRESS_FN), ("user", c_void_p), ("cancel", P(c_int))]


class ScoreParams(ctypes.Structure):
    _fields_ = [("prompt", c_char_p), ("null_prompt", c_char_p), ("n_timesteps", c_int),
                ("timesteps", c_int * MAX_TIMESTEPS), ("n_explicit", c_int), ("t_lo", c_double),
                ("t_hi", c_double), ("size", c_int), ("patch", c_int), ("stride", c_int),
                ("patches_per_image", c_int), ("dift_t", c_int), ("dift_ensemble", c_int), ("clusters", c_int),
                ("low_res", c_int), ("class_names", c_char_p), ("max_per_class", c_int),
                ("classes", P(c_char_p)), ("n_classes", c_int), ("seed", ctypes.c_uint64), ("threads", c_int),
                ("batch_images", c_int), ("device", c_char_p), ("precision", c_char_p),
                ("config_dir", c_char_p), ("shard_k", c_int), ("shard_n", c_int), ("mpi", c_int),
                ("command", c_char_p)]


class SelectParams(ctypes.Structure):
    _fields_ = [("top_clusters", c_int), ("mosaic_max_ipc", c_int), ("output_size", c_int), ("format", c_char_p),
                ("jpeg_quality", c_int), ("data_root", c_char_p), ("classes", P(c_char_p)), ("n_classes", c_int),
                ("threads", c_int), ("folder_names", c_char_p), ("command", c_char_p), ("baseline", c_char_p),
                ("seed", ctypes.c_ulonglong)]


class ReportParams(ctypes.Structure):
    _fields_ = [("data_root", c_char_p), ("ipc", c_int), ("thumb", c_int), ("threads", c_int)]


class DemoParams(ctypes.Structure):
    _fields_ = [("n_classes", c_int), ("per_class", c_int), ("threads", c_int), ("seed", ctypes.c_uint64)]


class RunTotals(ctypes.Structure):
    _fields_ = [("images_scored", c_long), ("images_bad", c_long), ("unet_latents", c_long),
                ("vae_images", c_long), ("text_prompts", c_long), ("seconds", c_double)]


class EngineParams(ctypes.Structure):
    _fields_ = [("device", c_char_p), ("precision", c_char_p), ("threads", c_int)]


class ImageIn(ctypes.Structure):
    _fields_ = [("pixels", c_void_p), ("width", c_int), ("height", c_int), ("key", c_char_p), ("prompt", c_int)]


class Window(ctypes.Structure):
    _fields_ = [("x0", c_double), ("y0", c_double), ("x1", c_double), ("y1", c_double), ("rx", c_int),
                ("ry", c_int), ("rw", c_int), ("rh", c_int), ("score", c_float)]


class ImageScores(ctypes.Structure):
    _fields_ = [("width", c_int), ("height", c_int), ("rw", c_int), ("rh", c_int), ("image_score", c_float),
                ("score_map", P(c_float)), ("grid_h", c_int), ("grid_w", c_int), ("patch_scores", P(c_float)),
                ("map_h", c_int), ("map_w", c_int), ("map", P(c_float)), ("n_cand", c_int), ("cand", P(Window)),
                ("dim", c_int), ("features", P(c_float))]


class DbClass(ctypes.Structure):
    _fields_ = [("id", c_int), ("name", c_char_p), ("prompt_name", c_char_p), ("prompt", c_char_p),
                ("n_images", c_long), ("n_bad", c_long), ("n_cand", c_long), ("clustered", c_int),
                ("clustered_k", c_int)]


class DbImage(ctypes.Structure):
    _fields_ = [("relpath", c_char_p), ("width", c_int), ("height", c_int), ("rw", c_int), ("rh", c_int),
                ("image_score", c_float), ("map_h", c_int), ("map_w", c_int), ("map", P(c_float))]


class DbCand(ctypes.Structure):
    _fields_ = [("image", c_int), ("idx", c_int), ("x0", c_double), ("y0", c_double), ("x1", c_double),
                ("y1", c_double), ("rx", c_int), ("ry", c_int), ("rw", c_int), ("rh", c_int), ("score", c_float),
                ("cluster", c_int), ("cluster_rank", c_int), ("dist", c_float)]


class DbCluster(ctypes.Structure):
    _fields_ = [("cluster", c_int), ("size", c_int), ("rank", c_int), ("median_score", c_float)]


class DbClassData(ctypes.Structure):
    _fields_ = [("class_id", c_int), ("n_images", c_int), ("images", P(DbImage)), ("n_cand", c_int),
                ("cand", P(DbCand)), ("dim", c_int), ("features", P(c_float)), ("n_clusters", c_int),
                ("clusters", P(DbCluster)), ("internal_", c_void_p)]


class TrainParams(ctypes.Structure):
    _fields_ = [("data", c_char_p), ("val", c_char_p), ("model", c_char_p), ("out", c_char_p), ("size", c_int),
                ("epochs", c_int), ("batch", c_int), ("opt", c_char_p), ("lr", c_double),
                ("weight_decay", c_double), ("momentum", c_double), ("nesterov", c_int), ("sched", c_char_p),
                ("warmup", c_int), ("label_smoothing", c_double), ("crop_scale", c_double),
                ("seed", ctypes.c_uint64), ("threads", c_int), ("checkpoint", c_char_p)]


class TrainResult(ctypes.Structure):
    _fields_ = [("epochs", c_int), ("classes", c_int), ("images", c_int), ("loss", c_double), ("top1", c_double),
                ("top5", c_double), ("seconds", c_double)]


EVAL_MAX_STUDENTS = 64


class EvalParams(ctypes.Structure):
    _fields_ = [("distilled", c_char_p), ("val", c_char_p), ("teacher", c_char_p), ("teacher_model", c_char_p),
                ("student", c_char_p), ("students", c_int), ("size", c_int), ("epochs", c_int), ("batch", c_int),
                ("lr", c_double), ("weight_decay", c_double), ("temperature", c_double), ("factor", c_int),
                ("min_scale", c_double), ("cutmix", c_int), ("eval_every", c_int), ("seed", ctypes.c_uint64),
                ("threads", c_int), ("out", c_char_p)]


class EvalResult(ctypes.Structure):
    _fields_ = [("students", c_int), ("top1_mean", c_double), ("top1_std", c_double), ("top5_mean", c_double),
                ("top1", c_double * EVAL_MAX_STUDENTS), ("best_top1", c_double * EVAL_MAX_STUDENTS),
                ("seconds", c_double)]


def _candidates():
    env = os.environ.get("DDPS_LIBRARY")
    if env:
        yield env
        return
    try:
        from ._installed import LIBRARY
        if LIBRARY:
            yield LIBRARY
    except ImportError:
        pass
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, "libddps.so")
    yield os.path.join(here, "..", "..", "build", "libddps.so")
    try:
        libdir = subprocess.run(["pkg-config", "--variable=libdir", "ddps"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        if libdir:
            yield os.path.join(libdir, "libddps.so")
    except (OSError, subprocess.SubprocessError):
        pass
    yield "libddps.so.0"
    yield "libddps.so"


def _load():
    tried = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append(path + " (missing)")
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
    raise ImportError("ddps: libddps.so not found; set DDPS_LIBRARY. Tried: " + "; ".join(tried))


lib, path = _load()  # path: the file or name the library was loaded from

_sigs = {
    "ddps_status_name": (c_char_p, [c_int]),
    "ddps_version": (c_char_p, []),
    "ddps_free": (None, [c_void_p]),
    "ddps_score_params_init": (None, [P(ScoreParams)]),
    "ddps_select_params_init": (None, [P(SelectParams)]),
    "ddps_engine_params_init": (None, [P(EngineParams)]),
    "ddps_report_params_init": (None, [P(ReportParams)]),
    "ddps_run_report": (c_int, [c_char_p, c_char_p, P(ReportParams), P(Hooks), P(Error)]),
    "ddps_run_distill": (c_int, [P(ScoreParams), P(SelectParams), c_char_p, c_char_p, c_char_p, c_char_p, P(c_int),
                                 c_int, c_int, P(Hooks), P(RunTotals), P(Error)]),
    "ddps_demo_params_init": (None, [P(DemoParams)]),
    "ddps_demo_write": (c_int, [c_char_p, P(DemoParams), P(Hooks), P(Error)]),
    "ddps_run_merge": (c_int, [c_char_p, P(c_char_p), c_int, P(Hooks), P(Error)]),
    "ddps_run_merge_flags": (c_int, [c_char_p, P(c_char_p), c_int, c_int, P(Hooks), P(Error)]),
    "ddps_run_score": (c_int, [P(ScoreParams), c_char_p, c_char_p, c_char_p, P(Hooks), P(RunTotals), P(Error)]),
    "ddps_run_select": (c_int, [c_char_p, c_char_p, P(c_int), c_int, P(SelectParams), P(Hooks), P(Error)]),
    "ddps_engine_open": (c_int, [c_char_p, P(EngineParams), P(Hooks), P(c_void_p), P(Error)]),
    "ddps_engine_close": (None, [c_void_p]),
    "ddps_engine_model_id": (c_char_p, [c_void_p]),
    "ddps_engine_feature_dim": (c_int, [c_void_p]),
    "ddps_engine_encode_prompts": (c_int, [c_void_p, P(c_char_p), c_int, P(c_int), P(Error)]),
    "ddps_engine_score": (c_int, [c_void_p, P(ScoreParams), c_int, P(ImageIn), c_int, P(ImageScores), P(Error)]),
    "ddps_image_scores_free": (None, [P(ImageScores)]),
    "ddps_db_open": (c_int, [c_char_p, P(c_void_p), P(Error)]),
    "ddps_db_close": (None, [c_void_p]),
    "ddps_db_meta": (c_int, [c_void_p, c_char_p, P(c_void_p), P(Error)]),
    "ddps_db_classes": (c_int, [c_void_p, P(P(DbClass)), P(c_int), P(Error)]),
    "ddps_db_classes_free": (None, [P(DbClass), c_int]),
    "ddps_db_load": (c_int, [c_void_p, c_int, c_int, c_int, P(DbClassData), P(Error)]),
    "ddps_db_class_data_free": (None, [P(DbClassData)]),
    "ddps_train_params_init": (None, [P(TrainParams)]),
    "ddps_train_params_check": (c_int, [P(TrainParams), P(Error)]),
    "ddps_run_train": (c_int, [P(TrainParams), P(Hooks), P(TrainResult), P(Error)]),
    "ddps_eval_params_init": (None, [P(EvalParams)]),
    "ddps_eval_params_check": (c_int, [P(EvalParams), P(Error)]),
    "ddps_run_eval": (c_int, [P(EvalParams), P(Hooks), P(EvalResult), P(Error)]),
}
for _name, (_res, _args) in _sigs.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args
