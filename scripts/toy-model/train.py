#!/usr/bin/python3
"""Trains the toy model (data/toy-sd) on the toy world with the reference
implementation: Debian's python3-torch 1.13 and diffusers 0.27.2's
UNet2DConditionModel. Run through scripts/toy-model/make.sh, which prepares
its inputs (the world, the prompts' text-encoder outputs from `ddps probe text`)
and its environment; this file only trains and writes.

The model: SD v1.5's structure at tiny widths. The VAE is --vae (trained by
train_vae.py; fixed here), the CLIP text encoder tiny-sd's
(../shared/golden/tiny-sd) fixed at random weights; the VAE's scaling factor
is set to 1 / std of the training latents (as SD's 0.18215 was chosen). The
UNet is trained on the epsilon objective with the scaled_linear schedule; 10%
of the captions are dropped to "", so that the null prompt means what it
means in Stable Diffusion.

Outputs in --out: unet/ (config.json, diffusion_pytorch_model.safetensors in
f16), vae/config.json (the scaling factor), loss.tsv (step, mean loss over the
last 50 steps, seconds).
"""
import argparse
import inspect
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
from PIL import Image

# ---- safetensors, read and written by hand (Debian has no python3-safetensors) ----

_DT = {"F32": (np.float32, 4), "F16": (np.float16, 2), "BF16": (None, 2), "I64": (np.int64, 8), "I32": (np.int32, 4)}


def st_read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        raw = data[a:b]
        if v["dtype"] == "BF16":
            u = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=_DT[v["dtype"]][0])
        out[k] = torch.from_numpy(arr.reshape(v["shape"]).astype(np.float32).copy())
    return out


def st_write(path, tensors, dtype=np.float16):
    """Writes tensors as safetensors, each converted to dtype (None: kept as it is)."""
    names = sorted(tensors)
    head, blobs, off = {}, [], 0
    tags = {np.dtype(t): k for k, (t, _) in _DT.items() if t is not None}
    for k in names:
        a = tensors[k].detach().cpu().numpy()
        a = np.ascontiguousarray(a if dtype is None else a.astype(dtype))
        b = a.tobytes()
        head[k] = {"dtype": tags[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(head, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(path + ".tmp", path)


def diffusers_model(cls, folder, weights=True):
    """A diffusers model of class cls from folder/config.json (keys that
    0.27.2 predates dropped), with folder's weights unless weights is False;
    returns the model and the config."""
    cfg = json.load(open(os.path.join(folder, "config.json")))
    known = inspect.signature(cls.__init__).parameters
    m = cls(**{k: v for k, v in cfg.items() if k in known})
    if weights:
        m.load_state_dict(st_read(os.path.join(folder, "diffusion_pytorch_model.safetensors")))
    return m, cfg


class Run:
    """What both trainings (this UNet's, train_vae.py's) share: the learning
    rate by step (linear warm-up over `warm` steps, then cosine down to
    floor x args.lr over args.steps or the args.minutes budget, whichever
    ends first), the optimiser step with the gradient norm clipped at 1, and
    the loss log: loss.tsv in args.out (step, the mean of the last 50 values
    as `name`, seconds) and a line printed every 50 steps."""

    def __init__(self, opt, params, args, warm, floor, name, digits, append=False):
        self.opt, self.params, self.args = opt, list(params), args
        self.warm, self.floor, self.name, self.digits = warm, floor, name, digits
        self.recent, self.t_start, self.lr = [], time.time(), 0.0
        self.log = open(os.path.join(args.out, "loss.tsv"), "a" if append else "w")
        if not append:
            self.log.write(f"step\t{name}\tseconds\n")

    def elapsed(self):
        return time.time() - self.t_start

    def over(self):
        return self.elapsed() > self.args.minutes * 60

    def set_lr(self, step):
        a = self.args
        frac = min(1.0, max(step / a.steps, self.elapsed() / (a.minutes * 60)))
        cosine = 0.5 * (1 + math.cos(math.pi * frac))
        self.lr = a.lr * min(1.0, step / self.warm) * (self.floor + (1 - self.floor) * cosine)
        for pg in self.opt.param_groups:
            pg["lr"] = self.lr

    def step(self, loss):
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()

    def record(self, step, value, extra=""):
        self.recent.append(value)
        if step % 50:
            return
        el = self.elapsed()
        m = sum(self.recent[-50:]) / len(self.recent[-50:])
        self.log.write(f"{step}\t{m:.5f}\t{el:.0f}\n")
        self.log.flush()
        print(f"step {step}/{self.args.steps} {self.name} {m:.{self.digits}f}{extra} lr {self.lr:.2e} "
              f"{el / step:.2f} s/step", flush=True)


# ---- data ----

def load_world(root, size):
    """Every image of root (an ImageFolder), resized as ddps does (shorter side
    `size`, PIL bilinear) and centre-cropped to size x size; class ids by
    sorted folder name."""
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    xs, ys = [], []
    for ci, c in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(root, c))):
            im = Image.open(os.path.join(root, c, f)).convert("RGB")
            w, h = im.size
            s = size / min(w, h)
            im = im.resize((max(size, int(w * s)), max(size, int(h * s))), Image.BILINEAR)
            w, h = im.size
            x0, y0 = (w - size) // 2, (h - size) // 2
            im = im.crop((x0, y0, x0 + size, y0 + size))
            xs.append(np.asarray(im, dtype=np.uint8))
            ys.append(ci)
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return classes, x, torch.tensor(ys)


def encode_latents(vae, x, batch=64):
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(vae.encode(x[i:i + batch]).latent_dist.mean)
    return torch.cat(out)


def unet_config(args):
    return dict(
        sample_size=args.size // 8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64, 64, 64),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=2, norm_num_groups=8)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--world", required=True, help="ImageFolder of training images")
    ap.add_argument("--text", required=True, help="safetensors (ddps probe text): last_hidden_state [C+1,77,32], rows 0..C-1 the class "
                    "prompts in sorted folder order, row C the null prompt")
    ap.add_argument("--vae", required=True, help="the VAE folder (config.json, diffusion_pytorch_model.safetensors)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--minutes", type=float, default=60, help="stop early after this much training time")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--null-fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: robust when other work shares the CPU)")
    ap.add_argument("--init", help="start from this unet folder's weights (a second phase) instead of random ones")
    ap.add_argument("--log-append", action="store_true", help="append to loss.tsv (a second phase)")
    ap.add_argument("--t-focus", type=int, default=0,
                    help="draw this share (--t-focus-share) of the timesteps from [t-focus, 999] instead of [0, 999]")
    ap.add_argument("--t-focus-share", type=float, default=0.0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    from diffusers import AutoencoderKL, UNet2DConditionModel

    # VAE: fixed while the UNet trains.
    vae, vcfg = diffusers_model(AutoencoderKL, args.vae)
    vae.eval()

    t0 = time.time()
    classes, x, y = load_world(args.world, args.size)
    z = encode_latents(vae, x)
    std = float(z.std())
    scale = 1.0 / std
    z = z * scale
    print(f"{len(classes)} classes, {len(x)} images, latents {tuple(z.shape)} std {std:.4f} -> scaling_factor "
          f"{scale:.5f} ({time.time() - t0:.0f} s)", flush=True)
    ctx_all = st_read(args.text)["last_hidden_state"]
    assert ctx_all.shape[0] == len(classes) + 1, "text rows must be the classes and the null prompt"

    unet = UNet2DConditionModel(**unet_config(args))
    if args.init:
        unet.load_state_dict(st_read(os.path.join(args.init, "diffusion_pytorch_model.safetensors")))
        print(f"starting from {args.init}", flush=True)
    nparam = sum(p.numel() for p in unet.parameters())
    print(f"unet: {nparam / 1e6:.2f} M parameters", flush=True)
    opt = torch.optim.AdamW(unet.parameters(), lr=args.lr, weight_decay=1e-2)
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    abar = torch.cumprod(1 - betas, 0).float()
    g = torch.Generator().manual_seed(args.seed)
    os.makedirs(os.path.join(args.out, "unet"), exist_ok=True)
    run = Run(opt, unet.parameters(), args, warm=200, floor=0.1, name="loss", digits=4, append=args.log_append)
    step = 0
    for step in range(1, args.steps + 1):
        run.set_lr(step)
        idx = torch.randint(0, len(z), (args.batch,), generator=g)
        z0 = z[idx]
        cond = y[idx].clone()
        cond[torch.rand(args.batch, generator=g) < args.null_fraction] = len(classes)
        t = torch.randint(0, 1000, (args.batch,), generator=g)
        if args.t_focus_share > 0:
            hi = torch.randint(args.t_focus, 1000, (args.batch,), generator=g)
            t = torch.where(torch.rand(args.batch, generator=g) < args.t_focus_share, hi, t)
        eps = torch.randn(z0.shape, generator=g)
        a = abar[t].view(-1, 1, 1, 1)
        zt = a.sqrt() * z0 + (1 - a).sqrt() * eps
        pred = unet(zt, t, encoder_hidden_states=ctx_all[cond]).sample
        loss = torch.nn.functional.mse_loss(pred, eps)
        run.step(loss)
        run.record(step, float(loss))
        if step % 500 == 0 or run.over():
            save(unet, args, scale, vcfg)
        if run.over():
            print(f"time budget reached at step {step}", flush=True)
            break
    save(unet, args, scale, vcfg)
    print(f"done: {step} steps in {run.elapsed():.0f} s", flush=True)


def save(unet, args, scale, vcfg):
    unet.save_config(os.path.join(args.out, "unet"))
    st_write(os.path.join(args.out, "unet", "diffusion_pytorch_model.safetensors"), unet.state_dict())
    os.makedirs(os.path.join(args.out, "vae"), exist_ok=True)
    v = dict(vcfg)
    v["scaling_factor"] = round(scale, 6)
    with open(os.path.join(args.out, "vae", "config.json"), "w") as f:
        json.dump(v, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
