#!/usr/bin/python3
"""ddps.train and ddps.eval through the Python package (tests/test_train_run.c, part "python").

  api_python_train.py WORLD TMP
WORLD: a toy world (train/, val/); TMP: a scratch folder. Prints "ok" last.
"""
import ctypes
import os
import sys

import ddps
from ddps import _lib


def check(cond, what):
    if not cond:
        print("FAILED:", what)
        sys.exit(1)


def defaults():
    # The struct layouts of _lib.py against the C defaults: a shifted field reads garbage.
    p = _lib.TrainParams()
    _lib.lib.ddps_train_params_init(ctypes.byref(p))
    check((p.model, p.size, p.epochs, p.batch, p.opt, p.weight_decay, p.momentum, p.nesterov, p.sched,
           p.checkpoint) == (b"resnet18-modified", 32, 30, 64, b"sgd", -1.0, 0.9, 1, b"cosine", None),
          "train defaults read through _lib.TrainParams")
    e = _lib.EvalParams()
    _lib.lib.ddps_eval_params_init(ctypes.byref(e))
    check((e.teacher_model, e.student, e.students, e.epochs, e.lr, e.weight_decay, e.temperature, e.factor,
           e.cutmix, e.eval_every, e.out) == (b"resnet18", b"resnet18", 5, 300, 1e-3, 0.01, 20.0, 2, 1, 10, None),
          "eval defaults read through _lib.EvalParams")


def refusals(world, tmp):
    for kw, words in (({"model": "vgg"}, "--model vgg"), ({"batch": 1}, "--batch 1")):
        try:
            ddps.train(os.path.join(world, "train"), os.path.join(tmp, "x.safetensors"), **kw)
            check(False, "train(%r) accepted" % kw)
        except ddps.Error as e:
            check(e.category == "usage" and words in str(e), "train(%r): %s %s" % (kw, e.category, e))
    try:
        ddps.train(os.path.join(world, "train"), os.path.join(tmp, "x.safetensors"), epochs="3")
        check(False, "epochs='3' accepted")
    except ddps.ArgTypeError:
        pass


def main():
    world, tmp = sys.argv[1], sys.argv[2]
    defaults()
    refusals(world, tmp)
    t = os.path.join(tmp, "py-teacher.safetensors")
    r = ddps.train(os.path.join(world, "train"), t, val=os.path.join(world, "val"), model="convnet3", size=16,
                   epochs=2, batch=8, opt="adamw", threads=2)
    check(r["epochs"] == 2 and r["classes"] == 4 and 0 <= r["top1"] <= 1 and os.path.exists(t[:-12] + ".json"),
          "train result %r" % r)
    lines = []
    r = ddps.eval(os.path.join(world, "train"), os.path.join(world, "val"), t, teacher_model="convnet3",
                  student="convnet3", students=2, epochs=2, size=16, threads=2, out=os.path.join(tmp, "py-eval.json"),
                  log=lambda level, line: lines.append(line))
    check(r["students"] == 2 and len(r["top1"]) == 2 and all(0 <= v <= 1 for v in r["top1"]), "eval result %r" % r)
    check(any("mean +- std of 2 students" in l for l in lines), "the table went to the log hook: %r" % lines)
    check(os.path.exists(os.path.join(tmp, "py-eval.json")), "eval.json written")
    print("ok")


main()
