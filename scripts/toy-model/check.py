#!/usr/bin/python3
"""Checks that ddps runs the toy model exactly as diffusers does: the VAE's
posterior mean on real toy-world pictures and the UNet's epsilon on a noisy
latent batch with two prompts, ddps (`ddps probe vae|unet`) against
diffusers 0.27.2 on Debian's torch (the reference). Prints each relative L2
error; exits 1 when one exceeds 1e-5.

usage: PYTHONPATH=<diffusers>/src:<diffusers>/stubs check.py MODEL WORLD_DIR [DDPS]
  MODEL      the toy model folder (data/toy-sd)
  WORLD_DIR  an ImageFolder of toy-world pictures (its first two square ones are used)
  DDPS       the ddps binary (build/ddps)
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train import diffusers_model, st_read, st_write  # noqa: E402


def square_pictures(root, n):
    out = []
    for c in sorted(os.listdir(root)):
        for f in sorted(os.listdir(os.path.join(root, c))):
            im = Image.open(os.path.join(root, c, f)).convert("RGB")
            if im.size == (128, 128):
                out.append(np.asarray(im, dtype=np.float32) / 127.5 - 1)
                break
        if len(out) == n:
            break
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


def rel(a, b):
    return float((a - b).norm() / b.norm())


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    model, world = sys.argv[1], sys.argv[2]
    ddps = sys.argv[3] if len(sys.argv) > 3 else "build/ddps"
    from diffusers import AutoencoderKL, UNet2DConditionModel
    torch.set_num_threads(1)
    tmp = tempfile.mkdtemp(prefix="toy-check-")
    worst = 0.0

    vae = diffusers_model(AutoencoderKL, os.path.join(model, "vae"))[0].eval()
    x = square_pictures(world, 2)
    st_write(os.path.join(tmp, "vin.safetensors"), {"image": x}, dtype=np.float32)
    subprocess.check_call([ddps, "-q", "probe", "vae", "--model", model, "--in", os.path.join(tmp, "vin.safetensors"),
                           "--out", os.path.join(tmp, "vout.safetensors"), "--threads", "1"])
    with torch.no_grad():
        ref = vae.encode(x).latent_dist.mean
    e = rel(st_read(os.path.join(tmp, "vout.safetensors"))["mean"], ref)
    print(f"VAE posterior mean, 2 pictures 128 x 128: relative L2 {e:.2e}")
    worst = max(worst, e)

    unet = diffusers_model(UNet2DConditionModel, os.path.join(model, "unet"))[0].eval()
    g = torch.Generator().manual_seed(1)
    sample = torch.randn(2, 4, 16, 20, generator=g)
    ids = []
    for prompt in ("An image of red disc.", ""):
        out = subprocess.check_output([ddps, "probe", "tokenize", "--model", model, prompt], text=True)
        ids.append([int(v) for v in out.split()])
    st_write(os.path.join(tmp, "tin.safetensors"), {"input_ids": torch.tensor(ids, dtype=torch.int64)}, dtype=None)
    subprocess.check_call([ddps, "-q", "probe", "text", "--model", model, "--in", os.path.join(tmp, "tin.safetensors"),
                           "--out", os.path.join(tmp, "tout.safetensors"), "--threads", "1"])
    context = st_read(os.path.join(tmp, "tout.safetensors"))["last_hidden_state"]
    st_write(os.path.join(tmp, "uin.safetensors"), {"sample": sample, "timesteps": torch.tensor([250, 600]),
                                                    "context": context}, dtype=None)
    subprocess.check_call([ddps, "-q", "probe", "unet", "--model", model, "--in", os.path.join(tmp, "uin.safetensors"),
                           "--out", os.path.join(tmp, "uout.safetensors"), "--threads", "1"])
    with torch.no_grad():
        ref = unet(sample, torch.tensor([250, 600]), encoder_hidden_states=context).sample
    e = rel(st_read(os.path.join(tmp, "uout.safetensors"))["eps"], ref)
    print(f"UNet epsilon, 2 x 4 x 16 x 20 latents, label and null prompts: relative L2 {e:.2e}")
    worst = max(worst, e)
    return 0 if worst <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
