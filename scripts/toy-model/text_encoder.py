#!/usr/bin/python3
"""The toy model's fixed random text encoder: tiny-sd's CLIP text encoder (random weights, the real
CLIP tokenizer) with the q, k, v and out projections of its attention scaled by a factor, so that
the attention mixes each prompt's words into the positions after them and the class prompts'
contexts differ more (EVALUATION.md, "The text encoder"). Weights stay random and fixed.

usage: text_encoder.py TINY_SD_TEXT_ENCODER_DIR OUT_DIR SCALE
"""
import json
import os
import shutil
import struct
import sys

import numpy as np


def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    out = {}
    for name, v in head.items():
        if name == "__metadata__":
            continue
        if v["dtype"] != "F32":
            raise SystemExit("%s: %s is %s, expected F32" % (path, name, v["dtype"]))
        s, e = v["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + s:8 + n + e], dtype=np.float32).reshape(v["shape"]).copy()
    return out


def save(path, tensors):
    head, blobs, off = {}, [], 0
    for name in sorted(tensors):
        b = np.ascontiguousarray(tensors[name], dtype=np.float32).tobytes()
        head[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    hb = json.dumps(head).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + b"".join(blobs))


def main():
    src, out, scale = sys.argv[1], sys.argv[2], float(sys.argv[3])
    os.makedirs(out, exist_ok=True)
    shutil.copy(os.path.join(src, "config.json"), os.path.join(out, "config.json"))
    if scale == 1:  # the encoder as it is, byte for byte
        shutil.copy(os.path.join(src, "model.safetensors"), os.path.join(out, "model.safetensors"))
        return
    t = load(os.path.join(src, "model.safetensors"))
    for name in t:
        if name.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight", "out_proj.weight")):
            t[name] *= scale
    save(os.path.join(out, "model.safetensors"), t)


if __name__ == "__main__":
    main()
