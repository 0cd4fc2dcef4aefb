#!/usr/bin/python3
"""PyTorch anchor of `ddps bench train` (issue 18's "Speed").

The same figures as `ddps bench train` for the same student in PyTorch
(Debian's python3-torch 1.13 and python3-torchvision 0.14, CPU, f32):

  train    images/s of forward (training mode) + cross-entropy + backward +
           AdamW step (weight decay 0.01 on tensors with more than one
           dimension) on one batch of random images with random labels,
           timed over --steps steps after --warmup steps
  teacher  images/s of the forward alone in eval mode under torch.no_grad()
  memory   peak RSS: VmHWM of /proc/self/status read after the timed training
           steps (the process's high-water mark, torch's libraries included);
           the RSS before the model is made is printed beside it

Models: torchvision's resnet18 (ImageNet stem), RDED's resnet18-modified
(conv1 3x3/1, no max pool) and the dataset-distillation ConvNet-D
(convnet3..convnet6: conv3x3 width 128 with bias, GroupNorm(128, 128), ReLU,
AvgPool2d(2, 2); Linear on the flatten).

Settings tried (--threads, --channels-last, --no-mkldnn) are printed; --json
prints one JSON object as the last line (the fields of ddps's, impl "torch").

Usage: /usr/bin/python3 scripts/bench-train-torch.py --model resnet18 --size 224 --batch 64
       [--steps 10] [--warmup 2] [--threads T] [--classes K] [--channels-last] [--no-mkldnn] [--json]
"""
import argparse
import json
import os
import platform
import sys
import time


def fail(msg, code=1):
    print(f"bench-train-torch.py: {msg}", file=sys.stderr)
    sys.exit(code)


def proc_status_mb(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    ap = argparse.ArgumentParser(description="PyTorch anchor of `ddps bench train`")
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--size", type=int, default=0)
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--classes", type=int, default=0)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: all cores)")
    ap.add_argument("--channels-last", action="store_true", help="model and input in channels_last")
    ap.add_argument("--no-mkldnn", action="store_true", help="torch.backends.mkldnn.enabled = False")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    resnet = a.model == "resnet18"
    size = a.size or (224 if resnet else 32)
    batch = a.batch or (64 if resnet else 256)
    classes = a.classes or (1000 if resnet else 10)
    if a.steps < 1 or a.warmup < 0 or batch < 1 or size < 8:
        fail("--steps >= 1, --warmup >= 0, --batch >= 1 and --size >= 8 expected", 2)
    if a.model not in ("resnet18", "resnet18-modified") and not (
            a.model.startswith("convnet") and a.model[7:] in ("3", "4", "5", "6")):
        fail(f"--model {a.model}: expected resnet18, resnet18-modified or convnet3..convnet6", 2)

    rss0 = proc_status_mb("VmRSS")
    import torch
    import torch.nn as nn
    import torchvision

    threads = a.threads or os.cpu_count()
    torch.set_num_threads(threads)
    torch.backends.mkldnn.enabled = not a.no_mkldnn
    torch.manual_seed(1234)
    if resnet or a.model == "resnet18-modified":
        m = torchvision.models.resnet18(num_classes=classes)
        if a.model == "resnet18-modified":
            m.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            m.maxpool = nn.Identity()
    else:
        depth, width, s, layers, c = int(a.model[7:]), 128, size, [], 3
        for _ in range(depth):
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.GroupNorm(width, width, affine=True),
                       nn.ReLU(inplace=True), nn.AvgPool2d(2, 2)]
            c, s = width, s // 2

        class ConvNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(*layers)
                self.classifier = nn.Linear(width * s * s, classes)

            def forward(self, x):
                return self.classifier(self.features(x).reshape(x.shape[0], -1))

        m = ConvNet()
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    m = m.to(memory_format=fmt)
    g = torch.Generator().manual_seed(7)
    x = (torch.rand(batch, 3, size, size, generator=g) * 4 - 2).contiguous(memory_format=fmt)
    y = torch.randint(0, classes, (batch,), generator=g)
    params = list(m.parameters())
    opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() > 1], "weight_decay": 0.01},
                             {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0}], lr=1e-3)
    crit = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = crit(m(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    m.train()
    loss0 = loss = float("nan")
    for i in range(a.warmup):
        v = step()
        if i == 0:
            loss0 = v
    t0, u0 = time.perf_counter(), time.process_time()
    for _ in range(a.steps):
        loss = step()
    t_train, u_train = time.perf_counter() - t0, time.process_time() - u0
    rss_train = proc_status_mb("VmHWM")
    m.eval()
    with torch.no_grad():
        for _ in range(a.warmup):
            m(x)
        t0, u0 = time.perf_counter(), time.process_time()
        for _ in range(a.steps):
            m(x)
        t_eval, u_eval = time.perf_counter() - t0, time.process_time() - u0
    rss_all = proc_status_mb("VmHWM")
    if not (loss == loss):
        fail(f"training diverged (loss {loss})")
    tr_ips, ev_ips = a.steps * batch / t_train, a.steps * batch / t_eval
    tr_cpu, ev_cpu = a.steps * batch / u_train, a.steps * batch / u_eval
    setting = (f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
               f"{'channels_last' if a.channels_last else 'NCHW'}, mkldnn {'off' if a.no_mkldnn else 'on'}")
    print(f"torch bench train: {a.model}, {size} px, batch {batch}, {classes} classes, f32, {threads} threads, "
          f"{cpu_name()}; {setting}")
    print(f"  train   (forward + backward + AdamW): {tr_ips:8.1f} images/s  {1e3 * t_train / a.steps:8.1f} ms/step"
          f"  {tr_cpu:8.1f} images/CPU-s  ({a.steps} steps after {a.warmup} warm-up; loss {loss0:.3f} -> {loss:.3f})")
    print(f"  teacher (eval-mode forward):          {ev_ips:8.1f} images/s  {1e3 * t_eval / a.steps:8.1f} ms/batch "
          f"{ev_cpu:8.1f} images/CPU-s")
    print(f"  peak RSS (VmHWM) after training {rss_train:.0f} MB, after the teacher forward {rss_all:.0f} MB; "
          f"{rss0:.0f} MB before importing torch")
    if a.json:
        print(json.dumps({"bench": "train", "impl": "torch", "model": a.model, "size": size, "batch": batch,
                          "classes": classes, "precision": "f32", "threads": threads, "steps": a.steps,
                          "warmup": a.warmup, "channels_last": a.channels_last, "mkldnn": not a.no_mkldnn,
                          "train_images_per_s": round(tr_ips, 3), "teacher_images_per_s": round(ev_ips, 3),
                          "train_ms_per_step": round(1e3 * t_train / a.steps, 3),
                          "train_images_per_cpu_s": round(tr_cpu, 3), "teacher_images_per_cpu_s": round(ev_cpu, 3), "peak_rss_mb": round(rss_train, 1),
                          "peak_rss_all_mb": round(rss_all, 1), "rss_before_mb": round(rss0, 1),
                          "loss_first": round(loss0, 5), "loss_last": round(loss, 5)}, separators=(",", ":")))


if __name__ == "__main__":
    main()
