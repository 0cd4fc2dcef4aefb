#!/usr/bin/python3
"""PyTorch reference of the evaluation protocol (issue 19's correctness anchor).

Trains students on a distilled ImageFolder with a teacher's soft labels,
following RDED's validation/ code (LINs-lab/RDED, validation/main.py and
utils.py), re-implemented for Debian's python3-torch 1.13 and
python3-torchvision 0.14 on the CPU. `ddps eval` is compared against this
script; scripts/eval-ref/README.md says what is compared and how.

Per student (seed s: random.seed(s), numpy.random.seed(s), torch.manual_seed(s),
then the student is made with PyTorch's default initialisation, or loaded
from --init-dir):
  data       every image of every class folder of --distilled (classes: sorted
             folder names, checked against --val and class_to_idx.json), kept
             in memory; a DataLoader with shuffle=True, batch --batch (default
             10/50/100 for IPC 1/<=10/>10, doubled for >= 100 classes, never
             above the set size), num_workers 0, the last batch kept
  transform  ToTensor; RDED's ShufflePatches(factor 2): the image's column
             strips (width // 2 each, the last strip from 1*tw on) shuffled
             with Python's random.shuffle, then the row strips the same way;
             RandomResizedCrop(size, scale=(1/2, 1), antialias=True);
             RandomHorizontalFlip; Normalize(ImageNet mean, std)
  batch      CutMix on every batch, in place (RDED's cutmix): rand_index =
             torch.randperm(n), lam = numpy.random.beta(1, 1), RDED's rand_bbox
             (cut ratio sqrt(1 - lam), centre numpy.random.randint over
             dim 2 then dim 3, clipped), the box copied from the permuted
             batch; the teacher (eval mode) labels the mixed batch
             p = softmax(teacher(x) / T); for students with batch norm, RDED's
             extra no-grad training-mode forward of the mixed batch (it moves
             the running statistics) comes before the teacher, as in RDED
  loss       KLDivLoss(reduction="batchmean")(log_softmax(student(x) / T), p),
             T = 20
  optimiser  AdamW lr 1e-3, betas (0.9, 0.999), weight decay 0.01 on parameters
             with more than one dimension (none on biases and norm weights)
  schedule   LambdaLR stepped per epoch: lr = 1e-3 * 0.5 (1 + cos(pi e / E / 2))
             at epoch e = 0..E-1
  validate   --val ImageFolder: Resize(size // 7 * 8, antialias) (RDED's; see
             --val-resize), CenterCrop(size), ToTensor, Normalize; top-1/top-5
             after epoch e (0-based) when (e % 10 == 9 or e == E - 1) and
             e > 0.8 E, as RDED's main loop (and after the last epoch when E <= 5,
             where RDED evaluates never)
The per-epoch loss is RDED's: the mean over the epoch's images of the batch
losses (each batch weighted by its size).

--train-teacher trains a teacher with hard labels instead (cross-entropy,
SGD or AdamW, cosine schedule, RandomResizedCrop + flip) and writes it as
safetensors with ddps's parameter names.

Models: resnet18 (torchvision, ImageNet stem), resnet18-modified (RDED's:
conv1 3x3/1 pad 1, no max pool), convnet3..convnet6 (width 128: conv3x3 pad 1
with bias, GroupNorm(128, 128), ReLU, AvgPool2d(2, 2); Linear on the
flatten). Parameter names are torchvision's (ConvNet: features.<4d>.weight/
bias conv, features.<4d+1>.weight/bias norm, classifier.weight/bias), as in
ddps's src/train/model.h, so weights move between the two.

Exit status: 0 done, 1 a failure (a file, a mismatch), 2 a bad invocation.
"""
import argparse
import json
import math
import os
import random
import struct
import sys
import time

import numpy as np

PROG = "eval_ref.py"
IMG_EXT = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


class Fail(Exception):
    def __init__(self, msg, code=1):
        super().__init__(msg)
        self.code = code


# ---------------------------------------------------------------- safetensors

def st_read(path):
    """name -> numpy array (F32, F16, BF16, F64, I64, I32) from a safetensors file."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise Fail(f"{path}: {e.strerror}")
    if len(raw) < 8:
        raise Fail(f"{path}: not a safetensors file (too short)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise Fail(f"{path}: not a safetensors file (header of {n} bytes)")
    try:
        header = json.loads(raw[8:8 + n])
    except ValueError:
        raise Fail(f"{path}: not a safetensors file (bad JSON header)")
    data = memoryview(raw)[8 + n:]
    dt = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
          "BF16": np.uint16}
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        if h.get("dtype") not in dt:
            raise Fail(f"{path}: {name}: dtype {h.get('dtype')} not supported")
        a, b = h["data_offsets"]
        shape = [int(s) for s in h["shape"]]
        arr = np.frombuffer(data[a:b], dtype=dt[h["dtype"]])
        if arr.size != int(np.prod(shape)):
            raise Fail(f"{path}: {name}: {arr.size} values for shape {shape}")
        if h["dtype"] == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr.reshape(shape).copy()
    return out


def st_write(path, tensors):
    """Writes name -> numpy array (float32 or int64) as safetensors (names sorted)."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        shape = list(np.shape(tensors[name]))  # ascontiguousarray makes a scalar 1-d
        arr = np.ascontiguousarray(tensors[name])
        code = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}[arr.dtype]
        b = arr.tobytes()
        header[name] = {"dtype": code, "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(h)))
            f.write(h)
            for b in blobs:
                f.write(b)
        os.replace(tmp, path)
    except OSError as e:
        raise Fail(f"{path}: {e.strerror}")


def state_to_numpy(model):
    out = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        out[k] = v.numpy().astype(np.int64) if k.endswith("num_batches_tracked") else v.float().numpy()
    return out


def load_weights(torch, model, path):
    """Every parameter and buffer of model by name from path (extra names ignored, shapes checked)."""
    w = st_read(path)
    sd = model.state_dict()
    new = {}
    for k, v in sd.items():
        if k not in w:
            raise Fail(f"{path}: no tensor '{k}' (the model's parameters have torchvision's names)")
        if list(w[k].shape) != list(v.shape) and not (w[k].size == 1 and v.numel() == 1):
            raise Fail(f"{path}: {k} has shape {list(w[k].shape)}, the model wants {list(v.shape)}")
        new[k] = torch.from_numpy(w[k]).to(v.dtype).reshape(v.shape)
    model.load_state_dict(new)


# ---------------------------------------------------------------- models

def make_model(torch, arch, classes, size):
    import torch.nn as nn
    import torchvision
    if arch in ("resnet18", "resnet18-modified"):
        m = torchvision.models.resnet18(num_classes=classes)
        if arch == "resnet18-modified":
            m.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            m.maxpool = nn.Identity()
        return m
    if arch.startswith("convnet") and arch[7:] in ("3", "4", "5", "6"):
        depth, width = int(arch[7:]), 128
        if size % (1 << depth):
            raise Fail(f"--size {size}: {arch} needs a multiple of {1 << depth}", 2)

        class ConvNet(nn.Module):
            def __init__(self):
                super().__init__()
                layers, c, s = [], 3, size
                for _ in range(depth):
                    layers += [nn.Conv2d(c, width, 3, padding=1), nn.GroupNorm(width, width, affine=True),
                               nn.ReLU(inplace=True), nn.AvgPool2d(2, 2)]
                    c, s = width, s // 2
                self.features = nn.Sequential(*layers)
                self.classifier = nn.Linear(width * s * s, classes)

            def forward(self, x):
                return self.classifier(self.features(x).reshape(x.shape[0], -1))

        return ConvNet()
    raise Fail(f"--model {arch}: expected resnet18, resnet18-modified or convnet3..convnet6", 2)


def has_batch_norm(torch, model):
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


# ---------------------------------------------------------------- data

def list_classes(root):
    try:
        names = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    except OSError as e:
        raise Fail(f"{root}: {e.strerror}")
    if not names:
        raise Fail(f"{root}: no class folders (an ImageFolder: ROOT/<class>/<image>)")
    return names


def load_folder(root, classes):
    """[(PIL RGB image, label)] of every image under root/<class>/, classes in the given order, files sorted."""
    from PIL import Image
    items = []
    for i, c in enumerate(classes):
        d = os.path.join(root, c)
        files = sorted(f for f in os.listdir(d) if f.lower().endswith(IMG_EXT) and not f.startswith("."))
        if not files:
            raise Fail(f"{d}: no images")
        for f in files:
            p = os.path.join(d, f)
            try:
                with Image.open(p) as im:
                    items.append((im.convert("RGB"), i))
            except OSError as e:
                raise Fail(f"{p}: cannot read the image ({e})")
    return items


def check_classes(distilled, dist_classes, val, val_classes):
    """The distilled set's classes, in ImageFolder order, must be the val folder's (sorted names);
    class_to_idx.json (written by `ddps select`) maps folders to classes when present.
    Returns the ImageNet-1K index per class from class_to_idx.json, or None."""
    names = list(dist_classes)
    idx_to_imagenet = None
    cj = os.path.join(distilled, "class_to_idx.json")
    if os.path.exists(cj):
        try:
            with open(cj) as f:
                doc = json.load(f)
            c2i = doc["class_to_idx"]
            by_idx = sorted(c2i.items(), key=lambda kv: kv[1])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise Fail(f"{cj}: not a class_to_idx.json of ddps select ({e})")
        if [k for k, _ in by_idx] != dist_classes or [v for _, v in by_idx] != list(range(len(dist_classes))):
            raise Fail(f"{cj}: class_to_idx does not number the folders of {distilled} in sorted order")
        entries = doc.get("classes")
        if isinstance(entries, list) and len(entries) == len(dist_classes):
            names = [e.get("class", e.get("folder")) for e in entries]
        idx_to_imagenet = doc.get("idx_to_imagenet")
    for i in range(max(len(names), len(val_classes))):
        a = names[i] if i < len(names) else None
        b = val_classes[i] if i < len(val_classes) else None
        if a != b:
            raise Fail(f"{distilled}: class {i} is '{a}' but the val folder {val} has '{b}' "
                       f"({len(names)} vs {len(val_classes)} classes): the labels would not match")
    return idx_to_imagenet


class ShufflePatches:
    """RDED's ShufflePatches on a CHW tensor: column strips shuffled, then row strips."""

    def __init__(self, factor):
        self.factor = factor

    def _strips(self, img):
        import torch
        w = img.shape[-1]
        tw = w // self.factor
        parts = []
        for i in range(self.factor):
            start = i * tw
            # RDED compares the offset (not the index) with factor - 1: the last strip
            # runs to the edge only when tw == 1; otherwise an odd width loses a column.
            parts.append(img[..., start:] if start == self.factor - 1 else img[..., start:start + tw])
        random.shuffle(parts)
        return torch.cat(parts, -1)

    def __call__(self, img):
        img = self._strips(img)
        img = self._strips(img.permute(0, 2, 1)).permute(0, 2, 1)
        return img


def rand_bbox(shape, lam):
    """RDED's rand_bbox: box over dims 2 (x) and 3 (y) of an NCHW batch."""
    W, H = shape[2], shape[3]
    cut = np.sqrt(1.0 - lam)
    cw, ch = int(W * cut), int(H * cut)
    cx, cy = np.random.randint(W), np.random.randint(H)
    return (int(np.clip(cx - cw // 2, 0, W)), int(np.clip(cy - ch // 2, 0, H)),
            int(np.clip(cx + cw // 2, 0, W)), int(np.clip(cy + ch // 2, 0, H)))


def cutmix_(torch, images):
    """RDED's cutmix, in place; returns (rand_index, lam, box)."""
    idx = torch.randperm(images.shape[0])
    lam = np.random.beta(1.0, 1.0)
    x1, y1, x2, y2 = rand_bbox(images.shape, lam)
    images[:, :, x1:x2, y1:y2] = images[idx, :, x1:x2, y1:y2]
    return idx, lam, (x1, y1, x2, y2)


def accuracy(torch, logits, labels):
    k = min(5, logits.shape[1])
    top = logits.topk(k, 1, True, True).indices
    hit = top.eq(labels.reshape(-1, 1))
    return float(hit[:, :1].any(1).float().sum()), float(hit.any(1).float().sum())


def val_tensors(torch, items, size, resize):
    from torchvision import transforms
    tf = transforms.Compose([transforms.Resize(resize), transforms.CenterCrop(size), transforms.ToTensor(),
                             transforms.Normalize(MEAN, STD)])
    x = torch.stack([tf(im) for im, _ in items])
    y = torch.tensor([l for _, l in items], dtype=torch.int64)
    return x, y


def evaluate(torch, model, vx, vy, batch, teacher_map=None):
    model.eval()
    c1 = c5 = 0.0
    with torch.no_grad():
        for i in range(0, vx.shape[0], batch):
            out = model(vx[i:i + batch])
            if teacher_map is not None:
                out = out[:, teacher_map]
            a, b = accuracy(torch, out, vy[i:i + batch])
            c1, c5 = c1 + a, c5 + b
    return 100.0 * c1 / vx.shape[0], 100.0 * c5 / vx.shape[0]


# ---------------------------------------------------------------- students

def default_batch(ipc, classes, n):
    b = 10 if ipc <= 1 else 50 if ipc <= 10 else 100
    if classes >= 100:
        b *= 2
    return max(1, min(b, n))


def train_student(torch, a, seed, train_items, vx, vy, teacher, teacher_map, classes, batch, log):
    import torch.nn as nn
    import torch.nn.functional as F
    from torchvision import transforms
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    student = make_model(torch, a.model, classes, a.size)
    if a.init_dir:
        p = os.path.join(a.init_dir, f"student-{a.model}-{a.size}px-{classes}c-seed{seed}.safetensors")
        if os.path.exists(p):
            load_weights(torch, student, p)
        else:
            os.makedirs(a.init_dir, exist_ok=True)
            st_write(p, state_to_numpy(student))
    extra_forward = has_batch_norm(torch, student) and not a.no_extra_forward
    tf = transforms.Compose([
        transforms.ToTensor(),
        ShufflePatches(2),
        transforms.RandomResizedCrop(a.size, scale=(1 / 2, 1), antialias=True),
        transforms.RandomHorizontalFlip(),
        transforms.Normalize(MEAN, STD),
    ])

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(train_items)

        def __getitem__(self, i):
            im, label = train_items[i]
            return tf(im), label

    loader = torch.utils.data.DataLoader(DS(), batch_size=batch, shuffle=True, num_workers=0)
    params = list(student.named_parameters())
    opt = torch.optim.AdamW([{"params": [p for n, p in params if "weight" in n and p.dim() > 1]},
                             {"params": [p for n, p in params if not ("weight" in n and p.dim() > 1)],
                              "weight_decay": 0.0}], lr=a.lr, betas=(0.9, 0.999), weight_decay=a.weight_decay)
    E = a.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda e: 0.5 * (1.0 + math.cos(math.pi * e / E / 2)) if e <= E else 0.0)
    kl = nn.KLDivLoss(reduction="batchmean")
    T = a.temperature
    rec = {"seed": seed, "loss": [], "lr": [], "evals": []}
    t0 = time.time()
    for epoch in range(E):
        student.train()
        tot, cnt = 0.0, 0
        lr = opt.param_groups[0]["lr"]
        for images, _ in loader:
            with torch.no_grad():
                cutmix_(torch, images)
                if extra_forward:
                    student(images)
                t = teacher(images)
                if teacher_map is not None:
                    t = t[:, teacher_map]
                p = F.softmax(t / T, dim=1)
            opt.zero_grad()
            loss = kl(F.log_softmax(student(images) / T, dim=1), p)
            loss.backward()
            opt.step()
            tot += loss.item() * images.shape[0]
            cnt += images.shape[0]
        mean = tot / cnt
        if not math.isfinite(mean):
            raise Fail(f"seed {seed}: the loss is {mean} at epoch {epoch}")
        rec["loss"].append(mean)
        rec["lr"].append(lr)
        msg = f"seed {seed} epoch {epoch + 1:3d}/{E}  loss {mean:.6f}  lr {lr:.3e}"
        if ((epoch % 10 == 9 or epoch == E - 1) and epoch > E * 0.8) or epoch == E - 1:
            t1, t5 = evaluate(torch, student, vx, vy, batch)
            rec["evals"].append({"epoch": epoch + 1, "top1": t1, "top5": t5})
            msg += f"  val top-1 {t1:.2f}% top-5 {t5:.2f}%"
        log(msg)
        sched.step()
    rec["seconds"] = time.time() - t0
    ev = rec["evals"]
    best = max(ev, key=lambda e: e["top1"])  # the first of equal maxima, as RDED's strict '>'
    rec.update(best_top1=best["top1"], best_top5=best["top5"], best_epoch=best["epoch"], final_top1=ev[-1]["top1"],
               final_top5=ev[-1]["top5"])
    if a.save_dir:
        os.makedirs(a.save_dir, exist_ok=True)
        st_write(os.path.join(a.save_dir, f"student-seed{seed}.safetensors"), state_to_numpy(student))
    return rec


def run_students(torch, a):
    for flag in ("distilled", "val", "teacher"):
        if not getattr(a, flag):
            raise Fail(f"--{flag} is required (or --train-teacher)", 2)
    dist_classes = list_classes(a.distilled)
    val_classes = list_classes(a.val)
    idx_to_imagenet = check_classes(a.distilled, dist_classes, a.val, val_classes)
    K = len(dist_classes)
    train_items = load_folder(a.distilled, dist_classes)
    counts = [sum(1 for _, l in train_items if l == c) for c in range(K)]
    ipc = max(counts)
    batch = a.batch or default_batch(ipc, K, len(train_items))
    val_items = load_folder(a.val, val_classes)
    resize = a.val_resize or a.size // 7 * 8
    vx, vy = val_tensors(torch, val_items, a.size, resize)
    tw = st_read(a.teacher)
    tk = (tw.get("fc.weight") if "fc.weight" in tw else tw.get("classifier.weight"))
    if tk is None or tk.ndim != 2:
        raise Fail(f"{a.teacher}: no fc.weight or classifier.weight [classes, features]")
    teacher_map = None
    if tk.shape[0] != K:
        if tk.shape[0] == 1000 and idx_to_imagenet and all(isinstance(i, int) for i in idx_to_imagenet):
            teacher_map = torch.tensor(idx_to_imagenet, dtype=torch.int64)
        else:
            raise Fail(f"{a.teacher}: a teacher of {tk.shape[0]} classes for {K} classes in {a.distilled}")
    teacher = make_model(torch, a.teacher_model or a.model, tk.shape[0], a.size)
    load_weights(torch, teacher, a.teacher)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    t1, t5 = evaluate(torch, teacher, vx, vy, 100, teacher_map)
    seeds = [int(s) for s in a.seeds.split(",")] if a.seeds else list(range(a.seed, a.seed + a.students))
    log = print if not a.quiet else (lambda m: None)
    print(f"{PROG}: {len(train_items)} distilled images ({K} classes, IPC {ipc}) from {a.distilled}; "
          f"{len(val_items)} val images; {a.model} at {a.size} px, batch {batch}, {a.epochs} epochs, T {a.temperature}, "
          f"{torch.get_num_threads()} threads; teacher {a.teacher} val top-1 {t1:.2f}% top-5 {t5:.2f}%; "
          f"seeds {','.join(map(str, seeds))}", flush=True)
    t0 = time.time()
    recs = [train_student(torch, a, s, train_items, vx, vy, teacher, teacher_map, K, batch, log) for s in seeds]
    wall = time.time() - t0
    b1 = np.array([r["best_top1"] for r in recs])
    f1 = np.array([r["final_top1"] for r in recs])
    f5 = np.array([r["final_top5"] for r in recs])
    sd = (lambda v: float(v.std(ddof=1)) if len(v) > 1 else 0.0)
    print()
    print(f"{'seed':>6} {'best top-1':>10} {'@epoch':>6} {'final top-1':>11} {'final top-5':>11} {'seconds':>8}")
    for r in recs:
        print(f"{r['seed']:>6} {r['best_top1']:>10.2f} {r['best_epoch']:>6} {r['final_top1']:>11.2f} "
              f"{r['final_top5']:>11.2f} {r['seconds']:>8.1f}")
    print(f"{'mean':>6} {b1.mean():>10.2f} {'':>6} {f1.mean():>11.2f} {f5.mean():>11.2f} {wall:>8.1f}")
    print(f"{'std':>6} {sd(b1):>10.2f} {'':>6} {sd(f1):>11.2f} {sd(f5):>11.2f}")
    print(f"{PROG}: {len(recs)} students: best top-1 {b1.mean():.2f} +- {sd(b1):.2f}%, final top-1 "
          f"{f1.mean():.2f} +- {sd(f1):.2f}% (std over students, ddof 1), {wall:.0f} s")
    doc = {
        "protocol": "rded", "model": a.model, "teacher_model": a.teacher_model or a.model, "size": a.size,
        "epochs": a.epochs, "batch": batch, "temperature": a.temperature, "lr": a.lr,
        "weight_decay": a.weight_decay, "factor": 2, "val_resize": resize, "classes": dist_classes,
        "ipc": ipc, "train_images": len(train_items), "val_images": len(val_items),
        "distilled": os.path.abspath(a.distilled), "val": os.path.abspath(a.val),
        "teacher": os.path.abspath(a.teacher), "teacher_top1": t1, "teacher_top5": t5,
        "extra_forward": bool(recs) and has_batch_norm(torch, make_model(torch, a.model, K, a.size))
        and not a.no_extra_forward,
        "threads": torch.get_num_threads(), "torch": torch.__version__, "seconds": wall,
        "mean_best_top1": float(b1.mean()), "std_best_top1": sd(b1), "mean_final_top1": float(f1.mean()),
        "std_final_top1": sd(f1), "mean_final_top5": float(f5.mean()), "std_final_top5": sd(f5),
        "students": recs,
    }
    if a.json:
        try:
            with open(a.json, "w") as f:
                json.dump(doc, f, indent=1)
        except OSError as e:
            raise Fail(f"{a.json}: {e.strerror}")
        print(f"{PROG}: wrote {a.json}")


# ---------------------------------------------------------------- teacher

def train_teacher(torch, a):
    import torch.nn as nn
    from torchvision import transforms
    for flag in ("train", "val", "out"):
        if not getattr(a, flag):
            raise Fail(f"--train-teacher needs --{flag}", 2)
    classes = list_classes(a.train)
    val_classes = list_classes(a.val)
    if classes != val_classes:
        i = next(i for i in range(max(len(classes), len(val_classes)))
                 if i >= len(classes) or i >= len(val_classes) or classes[i] != val_classes[i])
        raise Fail(f"{a.val}: class {i} is '{val_classes[i] if i < len(val_classes) else None}' but "
                   f"{a.train} has '{classes[i] if i < len(classes) else None}'")
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    items = load_folder(a.train, classes)
    vx, vy = val_tensors(torch, load_folder(a.val, classes), a.size, a.val_resize or a.size // 7 * 8)
    m = make_model(torch, a.model, len(classes), a.size)
    tf = transforms.Compose([transforms.RandomResizedCrop(a.size, scale=(a.teacher_min_scale, 1)),
                             transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                             transforms.Normalize(MEAN, STD)])

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(items)

        def __getitem__(self, i):
            return tf(items[i][0]), items[i][1]

    batch = a.batch or 64
    loader = torch.utils.data.DataLoader(DS(), batch_size=batch, shuffle=True, num_workers=0, drop_last=True)
    params = list(m.named_parameters())
    groups = [{"params": [p for _, p in params if p.dim() > 1]},
              {"params": [p for _, p in params if p.dim() <= 1], "weight_decay": 0.0}]
    if a.teacher_opt == "sgd":
        lr = a.teacher_lr or 0.05
        opt = torch.optim.SGD(groups, lr=lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    else:
        lr = a.teacher_lr or 1e-3
        opt = torch.optim.AdamW(groups, lr=lr, weight_decay=0.01)
    E = a.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.5 * (1 + math.cos(math.pi * e / E)))
    crit = nn.CrossEntropyLoss()
    t0 = time.time()
    print(f"{PROG}: teacher {a.model} at {a.size} px on {len(items)} images of {len(classes)} classes from {a.train}, "
          f"{a.teacher_opt} lr {lr}, batch {batch}, {E} epochs, seed {a.seed}, {torch.get_num_threads()} threads",
          flush=True)
    t1 = t5 = 0.0
    for epoch in range(E):
        m.train()
        tot = cnt = 0
        for x, y in loader:
            opt.zero_grad()
            loss = crit(m(x), y)
            loss.backward()
            opt.step()
            tot += loss.item() * x.shape[0]
            cnt += x.shape[0]
        sched.step()
        msg = f"teacher epoch {epoch + 1:3d}/{E}  loss {tot / cnt:.4f}"
        if epoch % 5 == 4 or epoch == E - 1:
            t1, t5 = evaluate(torch, m, vx, vy, 100)
            msg += f"  val top-1 {t1:.2f}% top-5 {t5:.2f}%"
        print(msg, flush=True)
    st_write(a.out, state_to_numpy(m))
    print(f"{PROG}: wrote {a.out}: val top-1 {t1:.2f}% top-5 {t5:.2f}% ({len(vy)} images), {time.time() - t0:.0f} s")


def main(argv):
    ap = argparse.ArgumentParser(prog=PROG, description="PyTorch reference of RDED's evaluation protocol "
                                 "(students on a distilled set with a teacher's soft labels)")
    ap.add_argument("--distilled", help="the distilled ImageFolder (e.g. OUT/ipc10)")
    ap.add_argument("--val", help="the validation ImageFolder (class folders: the label names)")
    ap.add_argument("--teacher", help="the teacher's weights (safetensors, ddps/torchvision names)")
    ap.add_argument("--teacher-model", help="the teacher's architecture (default: --model)")
    ap.add_argument("--model", default="convnet3", help="resnet18, resnet18-modified, convnet3..convnet6")
    ap.add_argument("--size", type=int, default=32, help="input side in pixels (32)")
    ap.add_argument("--epochs", type=int, default=300, help="epochs (300, as RDED)")
    ap.add_argument("--batch", type=int, default=0, help="batch size (default from IPC and classes)")
    ap.add_argument("--temperature", type=float, default=20.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--students", type=int, default=5, help="students, seeds --seed .. --seed+N-1 (5)")
    ap.add_argument("--seed", type=int, default=0, help="first seed (0)")
    ap.add_argument("--seeds", help="comma-separated seeds (instead of --students/--seed)")
    ap.add_argument("--val-resize", type=int, default=0,
                    help="validation Resize (default RDED's size // 7 * 8: 32 px -> 32, 64 -> 72, 224 -> 256)")
    ap.add_argument("--no-extra-forward", action="store_true",
                    help="skip RDED's extra training-mode student forward (only batch-norm students have one)")
    ap.add_argument("--init-dir", help="student initial weights: read from DIR when there, else written there")
    ap.add_argument("--save-dir", help="write every trained student here")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    ap.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    ap.add_argument("--train-teacher", action="store_true", help="train a teacher with hard labels instead")
    ap.add_argument("--train", help="--train-teacher: the training ImageFolder")
    ap.add_argument("--out", help="--train-teacher: the teacher's safetensors")
    ap.add_argument("--teacher-opt", choices=("sgd", "adamw"), default="adamw")
    ap.add_argument("--teacher-lr", type=float, default=0.0, help="(sgd 0.05, adamw 1e-3)")
    ap.add_argument("--teacher-min-scale", type=float, default=0.25,
                    help="--train-teacher: RandomResizedCrop scale lower bound (0.25)")
    a = ap.parse_args(argv)
    if a.size < 8 or a.epochs < 1 or a.batch < 0 or a.students < 1 or a.threads < 0 or not a.temperature > 0:
        raise Fail("--size >= 8, --epochs >= 1, --students >= 1, --batch >= 0, --threads >= 0, --temperature > 0",
                   2)
    if a.seeds:
        try:
            [int(s) for s in a.seeds.split(",")]
        except ValueError:
            raise Fail(f"--seeds {a.seeds}: expected comma-separated integers", 2)
    import torch
    if a.threads:
        torch.set_num_threads(a.threads)
    with torch.no_grad():
        pass
    if a.train_teacher:
        train_teacher(torch, a)
    else:
        run_students(torch, a)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except Fail as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        sys.exit(e.code)
    except KeyboardInterrupt:
        sys.exit(130)
