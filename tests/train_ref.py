#!/usr/bin/env python3
"""Golden references for training on the engine (tests/test_train_golden.c).

Runs one training step of torchvision's ResNet-18 (224 px ImageNet stem, and
RDED's modified 32 px stem) and the dataset-distillation ConvNet-3 in PyTorch
(Debian's python3-torch 1.13 and python3-torchvision 0.14) and writes what the
C test compares, one small safetensors file per model under tests/train_golden/:

  logits, loss                       the training-mode forward
  grad.<name>                        every parameter's gradient
  gradnorm.<name>                    its full L2 norm
  <name>                             batch-norm running_mean / running_var after the step
  adamw.<name>, sgd.<name>           every parameter after one AdamW step, and after one
                                     SGD (momentum, Nesterov) step, each from the initial weights
  cfg.*                              the step's settings (batch, size, classes, lr, ...)

Tensors over SAMPLE values are stored at SAMPLE evenly spread indices
j * numel // SAMPLE (NCHW / PyTorch order), which keeps the files small.

Weights, images and teacher logits are not stored: both sides make them
with the same integer hash (gen below; test_train_golden.c has its twin).

Usage: python3 tests/train_ref.py [outdir]
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

SAMPLE = 1024


def fnv1a(s):
    h = 2166136261
    for b in s.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def gen(name, n, scale, offset=0.0):
    """offset + scale * (2u - 1), u in [0, 1) from a 32-bit integer hash of (name, index)."""
    m = 0xFFFFFFFF
    x = (np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B1) + np.uint64(fnv1a(name))) & np.uint64(m)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & np.uint64(m)
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & np.uint64(m)
    x ^= x >> np.uint64(16)
    u = (x >> np.uint64(8)).astype(np.float64) / float(1 << 24)
    return (offset + scale * (2.0 * u - 1.0)).astype(np.float32)


def init_value(name, shape):
    n = int(np.prod(shape)) if shape else 1
    if name.endswith("num_batches_tracked"):
        return None
    if name.endswith("running_var"):
        return gen(name, n, 0.1, 1.0)
    if len(shape) > 1:
        fan_in = n // shape[0]
        return gen(name, n, (6.0 / fan_in) ** 0.5)
    if name.endswith(".weight"):  # norm weight
        return gen(name, n, 0.1, 1.0)
    return gen(name, n, 0.1)  # biases, running_mean


class ConvNet(nn.Module):
    """The dataset-distillation ConvNet-D (DC/DSA, DD-Ranking's ConvNet-3, RDED's conv3):
    depth x [conv3x3(width) - GroupNorm(width, width) - ReLU - AvgPool2d(2)] + Linear."""

    def __init__(self, classes, depth=3, width=128, size=32):
        super().__init__()
        layers, c = [], 3
        for _ in range(depth):
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.GroupNorm(width, width, affine=True),
                       nn.ReLU(inplace=True), nn.AvgPool2d(2, 2)]
            c, size = width, size // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width * size * size, classes)

    def forward(self, x):
        return self.classifier(self.features(x).view(x.shape[0], -1))


def make_model(arch, classes, size):
    if arch == "convnet3":
        return ConvNet(classes, 3, 128, size)
    m = torchvision.models.resnet18(num_classes=classes)
    if arch == "resnet18-modified":
        m.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        m.maxpool = nn.Identity()
    return m


def sample(a):
    a = a.reshape(-1)
    if a.size <= SAMPLE:
        return a.copy()
    return a[(np.arange(SAMPLE, dtype=np.int64) * a.size) // SAMPLE]


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        dt = {np.float32: "F32", np.int64: "I64"}[arr.dtype.type]
        b = arr.tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def one_case(arch, size, batch, classes, temperature, smoothing):
    torch.manual_seed(0)
    model = make_model(arch, classes, size)
    sd = model.state_dict()
    with torch.no_grad():
        for name, t in sd.items():
            v = init_value(name, list(t.shape))
            if v is None:
                t.zero_()
            else:
                t.copy_(torch.from_numpy(v).reshape(t.shape))
    init = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.from_numpy(gen("images", batch * 3 * size * size, 1.0)).reshape(batch, 3, size, size)
    labels = torch.tensor([(3 * i + 1) % classes for i in range(batch)], dtype=torch.int64)
    teacher = torch.from_numpy(gen("teacher", batch * classes, 3.0)).reshape(batch, classes)
    model.train()
    logits = model(x)
    if temperature > 0:
        loss = nn.KLDivLoss(reduction="batchmean")(F.log_softmax(logits / temperature, dim=1),
                                                   F.softmax(teacher / temperature, dim=1))
    else:
        loss = nn.CrossEntropyLoss(label_smoothing=smoothing)(logits, labels)
    loss.backward()
    out = {"logits": logits.detach().numpy(), "loss": np.array([loss.item()], dtype=np.float32)}
    params = dict(model.named_parameters())
    for name, p in params.items():
        g = p.grad.detach().numpy()
        out["grad." + name] = sample(g)
        out["gradnorm." + name] = np.array([np.linalg.norm(g.astype(np.float64))], dtype=np.float32)
    for name, t in model.state_dict().items():
        if name.endswith("running_mean") or name.endswith("running_var"):
            out[name] = t.numpy().copy()
    cfg = {"batch": batch, "size": size, "classes": classes, "temperature": temperature, "smoothing": smoothing,
           "lr_adamw": 1e-3, "wd_adamw": 0.01, "lr_sgd": 0.1, "momentum": 0.9, "wd_sgd": 5e-4}
    grads = {n: p.grad.clone() for n, p in params.items()}
    for kind in ("adamw", "sgd"):
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(init[n])
                p.grad = grads[n].clone()
        decay = [p for p in params.values() if p.dim() > 1]
        rest = [p for p in params.values() if p.dim() <= 1]
        if kind == "adamw":
            opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["wd_adamw"]},
                                     {"params": rest, "weight_decay": 0.0}], lr=cfg["lr_adamw"])
        else:
            opt = torch.optim.SGD([{"params": decay, "weight_decay": cfg["wd_sgd"]},
                                   {"params": rest, "weight_decay": 0.0}], lr=cfg["lr_sgd"],
                                  momentum=cfg["momentum"], nesterov=True)
        opt.step()
        for n, p in params.items():
            out[kind + "." + n] = sample(p.detach().numpy())
    for k, v in cfg.items():
        out["cfg." + k] = np.array([v], dtype=np.float32)
    return out


CASES = [
    # name, arch, size, batch, classes, temperature (0: cross-entropy), label smoothing
    ("convnet3-32", "convnet3", 32, 4, 10, 4.0, 0.0),
    ("resnet18-modified-32", "resnet18-modified", 32, 4, 10, 0.0, 0.1),
    ("resnet18-224", "resnet18", 224, 2, 10, 0.0, 0.0),
]


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                 "train_golden")
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(1)
    for name, arch, size, batch, classes, temperature, smoothing in CASES:
        out = one_case(arch, size, batch, classes, temperature, smoothing)
        path = os.path.join(outdir, name + ".safetensors")
        write_safetensors(path, out)
        print(f"{path}: loss {out['loss'][0]:.6f}, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
