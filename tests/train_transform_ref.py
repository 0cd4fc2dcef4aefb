#!/usr/bin/python3
"""torchvision references for tests/test_train_data.c (run with /usr/bin/python3,
torchvision 0.14).

  train_transform_ref.py rrc
      Prints C initialisers of RandomResizedCrop.get_params cases: for seeds
      and image sizes, torchvision's own box, and the draws it consumed
      (re-drawn from the same seed in the documented order: scale, log-ratio
      per try, then top and left on success), so the C side can replay them.
  train_transform_ref.py center SRC DST SIDE:CROP...
      torchvision Resize(SIDE) + CenterCrop(CROP) on the PIL image SRC for
      each pair, written to DST-<i>.raw (i from 0) as raw (width, height as
      little-endian uint32, then RGB).
"""
import math
import struct
import sys

import torch
from PIL import Image
from torchvision import transforms as T


def replay(w, h, scale, ratio):
    area = w * h
    lr = (math.log(ratio[0]), math.log(ratio[1]))
    tries = []
    for _ in range(10):
        s = torch.empty(1).uniform_(scale[0], scale[1]).item()
        r = torch.empty(1).uniform_(lr[0], lr[1]).item()
        tries.append((s, r))
        cw = int(round(math.sqrt(area * s * math.exp(r))))
        ch = int(round(math.sqrt(area * s / math.exp(r))))
        if 0 < cw <= w and 0 < ch <= h:
            torch.randint(0, h - ch + 1, size=(1,))
            torch.randint(0, w - cw + 1, size=(1,))
            return tries
    return tries


def rrc():
    sizes = [(32, 32), (64, 48), (20, 90), (200, 30), (128, 128), (7, 5)]
    scales = [(0.08, 1.0), (0.5, 1.0), (0.9, 1.0)]
    ratios = [(3 / 4, 4 / 3), (1.0, 1.0), (2.5, 3.0)]
    for seed in range(12):
        w, h = sizes[seed % len(sizes)]
        sc = scales[seed % 3]
        ra = ratios[(seed // 3) % 3]
        img = Image.new("RGB", (w, h))
        torch.manual_seed(seed)
        i, j, ch, cw = T.RandomResizedCrop.get_params(img, list(sc), list(ra))
        torch.manual_seed(seed)
        tries = replay(w, h, sc, ra)
        ds = ", ".join("{%.17g, %.17g}" % t for t in tries)
        print("{%d, %d, {%.17g, %.17g, %.17g, %.17g}, %d, {%s}, {%d, %d, %d, %d}}," %
              (w, h, sc[0], sc[1], ra[0], ra[1], len(tries), ds, j, i, cw, ch))


def center(src, dst, *pairs):
    im = Image.open(src).convert("RGB")
    for i, pair in enumerate(pairs):
        side, crop = (int(v) for v in pair.split(":"))
        out = T.CenterCrop(crop)(T.Resize(side)(im))
        with open("%s-%d.raw" % (dst, i), "wb") as f:
            f.write(struct.pack("<II", out.width, out.height))
            f.write(out.tobytes())


if __name__ == "__main__":
    if sys.argv[1] == "rrc":
        rrc()
    else:
        center(*sys.argv[2:])
