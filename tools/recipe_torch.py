#!/usr/bin/python3
"""PyTorch replica of a trainer recipe (--model convnet-bn by default), for
the side-by-side comparison of time to accuracy (tools/compare-recipe).

The model is built from the same layer spec the trainer reads: conv2d,
batchnorm (BatchNorm2d/1d with Keras' eps 1e-3 and momentum 0.99, which
PyTorch writes 0.01), relu, maxpool2d, flatten, dropout, dense, and the
augmentation layers random_rotation, random_translation and random_zoom as
Keras defines their factors, applied per sample with affine_grid and
grid_sample (bilinear; the constant fill is PyTorch's zeros padding, the
reflect fill its reflection padding, which mirrors about the edge pixels'
centres rather than their edges).  Keras' glorot-uniform kernels and zero
biases, AdamW (eps 1e-7, weight decay 0.004 as Keras' default), PyTorch's
OneCycleLR without momentum cycling (which the trainer's onecycle
transcribes), label smoothing, the last fraction of the training file held
out for validation, batches reshuffled every epoch, channels-last tensors.

Prints a line per epoch: `epoch E seconds S wall W val_accuracy A`, W the
time since training began (training and validation), then `test_accuracy X
test_loss L`.  Needs python3-torch and python3-numpy; not a dependency of
the engine."""
import argparse
import math
import os
import re
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch_reference import read_idx

class Augment(torch.nn.Module):
    """Keras' RandomTranslation, RandomRotation or RandomZoom in training."""

    def __init__(self, kind, factors, fill):
        super().__init__()
        self.kind, self.factors, self.fill = kind, factors, fill

    def forward(self, x):
        if not self.training:
            return x
        n, _, h, w = x.shape
        u = torch.rand(n) * 2 - 1
        v = torch.rand(n) * 2 - 1
        # Keras' map from output to input pixels: in = A out + t.
        a = torch.zeros(n, 2, 2)
        t = torch.zeros(n, 2)
        if self.kind == "random_translation":
            a[:, 0, 0] = a[:, 1, 1] = 1
            t[:, 0] = -v * self.factors[1] * w
            t[:, 1] = -u * self.factors[0] * h
        elif self.kind == "random_rotation":
            angle = u * self.factors[0] * 2 * math.pi
            c, s = torch.cos(angle), torch.sin(angle)
            a[:, 0, 0], a[:, 0, 1], a[:, 1, 0], a[:, 1, 1] = c, -s, s, c
            t[:, 0] = ((w - 1) - (c * (w - 1) - s * (h - 1))) / 2
            t[:, 1] = ((h - 1) - (s * (w - 1) + c * (h - 1))) / 2
        else:
            zy = 1 + u * self.factors[0]
            zx = 1 + v * self.factors[1] if len(self.factors) > 1 else zy
            a[:, 0, 0], a[:, 1, 1] = zx, zy
            t[:, 0] = (w - 1) / 2 * (1 - zx)
            t[:, 1] = (h - 1) / 2 * (1 - zy)
        # To affine_grid's coordinates (align_corners: -1 and 1 are the
        # corner pixels' centres): p = (q + 1) (size - 1) / 2.
        sx, sy = (w - 1) / 2, (h - 1) / 2
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = a[:, 0, 0]
        theta[:, 0, 1] = a[:, 0, 1] * sy / sx
        theta[:, 1, 0] = a[:, 1, 0] * sx / sy
        theta[:, 1, 1] = a[:, 1, 1]
        theta[:, 0, 2] = (a[:, 0, 0] * sx + a[:, 0, 1] * sy + t[:, 0] - sx) / sx
        theta[:, 1, 2] = (a[:, 1, 0] * sx + a[:, 1, 1] * sy + t[:, 1] - sy) / sy
        grid = F.affine_grid(theta, list(x.shape), align_corners=True)
        return F.grid_sample(x, grid, mode="bilinear", align_corners=True,
                             padding_mode="zeros" if self.fill == "constant" else "reflection")


def build(spec, shape, classes):
    """torch modules for the trainer's layer spec; shape (c, h, w)."""
    c, h, w = shape
    mods, flat = [], None
    for name, args in re.findall(r"(\w+)(?:\(([^)]*)\))?", spec):
        words = [a for a in args.split(",") if a] if args else []
        if name == "conv2d":
            f, k = int(words[0]), int(words[1])
            pad = (k - 1) // 2 if "same" in words else 0
            conv = torch.nn.Conv2d(c, f, k, padding=pad)
            mods.append(conv)
            if "relu" in words:
                mods.append(torch.nn.ReLU())
            c, h, w = f, h + 2 * pad - k + 1, w + 2 * pad - k + 1
        elif name == "batchnorm":
            mods.append(torch.nn.BatchNorm1d(flat, eps=1e-3, momentum=0.01) if flat else
                        torch.nn.BatchNorm2d(c, eps=1e-3, momentum=0.01))
        elif name == "relu":
            mods.append(torch.nn.ReLU())
        elif name == "maxpool2d":
            p = int(words[0])
            mods.append(torch.nn.MaxPool2d(p))
            h, w = h // p, w // p
        elif name == "flatten":
            mods.append(torch.nn.Flatten())
            flat = c * h * w
        elif name == "dropout":
            mods.append(torch.nn.Dropout(float(words[0])))
        elif name == "dense":
            units = classes if "softmax" in words else int(words[0])
            mods.append(torch.nn.Linear(flat, units))
            if "relu" in words:
                mods.append(torch.nn.ReLU())
            flat = units
        elif name.startswith("random_"):
            fill = "constant" if "constant" in words else "reflect"
            mods.append(Augment(name, [float(a) for a in words if a not in
                                       ("constant", "reflect")], fill))
        else:
            raise SystemExit(f"recipe_torch: no replica for '{name}'")
    net = torch.nn.Sequential(*mods)
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.xavier_uniform_(m.weight)
            torch.nn.init.zeros_(m.bias)
    return net


def evaluate(net, x, y, batch):
    net.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(x), 1000):
            z = net(x[i:i + 1000])
            loss += float(F.cross_entropy(z, y[i:i + 1000], reduction="sum"))
            correct += int((z.argmax(1) == y[i:i + 1000]).sum())
    net.train()
    return correct / len(x), loss / len(x)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(here, "..", "data", "mnist"))
    ap.add_argument("--layers", required=True, help="the trainer's layer spec")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=0.004)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--validation-split", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    images = read_idx(args.data, "train-images-idx3-ubyte")
    labels = read_idx(args.data, "train-labels-idx1-ubyte")
    test_x = read_idx(args.data, "t10k-images-idx3-ubyte")
    test_y = read_idx(args.data, "t10k-labels-idx1-ubyte")
    n_val = int(len(images) * args.validation_split)
    n_train = len(images) - n_val

    def tensor(a):
        t = torch.from_numpy(a.astype(np.float32) / 255.0)[:, None]
        return t.contiguous(memory_format=torch.channels_last)
    x, y = tensor(images[:n_train]), torch.from_numpy(labels[:n_train].astype(np.int64))
    vx, vy = tensor(images[n_train:]), torch.from_numpy(labels[n_train:].astype(np.int64))
    tx, ty = tensor(test_x), torch.from_numpy(test_y.astype(np.int64))
    net = build(args.layers, (1, images.shape[1], images.shape[2]), 10)
    net = net.to(memory_format=torch.channels_last)
    steps = math.ceil(n_train / args.batch_size)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-7,
                            weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr,
                                                total_steps=steps * args.epochs,
                                                cycle_momentum=False)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        order = torch.randperm(n_train)
        for i in range(0, n_train, args.batch_size):
            idx = order[i:i + args.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
        acc, _ = evaluate(net, vx, vy, args.batch_size)
        now = time.perf_counter()
        print(f"epoch {epoch} seconds {now - t0:.3f} wall {now - start:.3f} "
              f"val_accuracy {acc:.4f}", flush=True)
    acc, loss = evaluate(net, tx, ty, args.batch_size)
    print(f"test_accuracy {acc:.4f} test_loss {loss:.4f}")


if __name__ == "__main__":
    main()
