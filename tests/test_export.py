#!/usr/bin/env python3
"""trainer export --safetensors.

Models trained on generated sets (the MLP; a conv net with same and valid
padding on 3-channel images, whose flattening order differs between this
engine and PyTorch; an MLP on 3-channel images; average pooling, by windows
that leave a row out and global): the file parsed by numpy
from the safetensors format alone (8-byte length, JSON header, contiguous
little-endian float32), its modules run as PyTorch defines them on NCHW
images, gives the probabilities `trainer predict` prints for the same
images within 1e-5, and the same classes; with python3-torch, the
Sequential of the metadata built by torch takes the tensors with
load_state_dict(strict=True) and gives them too.  Then the command's
errors: no output asked for, a damaged model, an output that cannot be
written (the earlier file left as it was)."""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnistgen  # noqa: E402
from testlib import check, finish, interpreter_hint  # noqa: E402

try:
    import numpy as np
    from modelrun import nchw, read_idx
except ImportError:
    print(f"test_export: numpy is not installed (python3-numpy): skipped"
          f" {interpreter_hint()}")
    sys.exit(77)
try:
    import torch
except ImportError:
    torch = None

TRAINER = os.path.abspath(sys.argv[1])


def readme_recipe():
    """docs/predict-export.md's Python block that reads a safetensors file."""
    readme = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs",
                          "predict-export.md")
    with open(readme) as f:
        text = f.read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    found = [b for b in blocks if "model.safetensors" in b]
    check(len(found) == 1, f"docs/predict-export.md has {len(found)} safetensors recipes")
    return found[0] if found else ""


README_RECIPE = readme_recipe()


def run(*args):
    return subprocess.run([TRAINER, *args], capture_output=True, text=True, timeout=600)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    meta = header.pop("__metadata__")
    tensors, end = {}, 0
    for name, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        lo, hi = t["data_offsets"]
        counter = name.endswith(".num_batches_tracked")
        check(t["dtype"] == ("I64" if counter else "F32") and lo == end,
              f"{name}: {t['dtype']}, right after the one before")
        tensors[name] = np.frombuffer(body[lo:hi], dtype="<i8" if counter else "<f4"
                                      ).reshape(t["shape"])
        end = hi
    check(end == len(body), "the tensors cover the data exactly")
    return meta, tensors


def modules(sequential):
    """[(name, [int or float arguments], {keyword: value})] of the metadata's
    Sequential."""
    inner = re.fullmatch(r"Sequential\((.*)\)", sequential).group(1)
    out = []
    for name, args in re.findall(r"(\w+)\(([^)]*)\)", inner):
        pos, kw = [], {}
        for a in filter(None, (x.strip() for x in args.split(","))):
            if "=" in a:
                k, v = a.split("=")
                kw[k] = float(v)
            else:
                pos.append(float(a))
        out.append((name, pos, kw))
    return out


def run_numpy(mods, tensors, x):
    """PyTorch's semantics in float64; x: [n][c][h][w]."""
    x = x.astype(np.float64)
    for i, (name, pos, kw) in enumerate(mods):
        if name == "Conv2d":
            w = tensors[f"{i}.weight"].astype(np.float64)
            b = tensors[f"{i}.bias"].astype(np.float64)
            p = int(kw.get("padding", 0))
            x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
            k = w.shape[2]
            oh, ow = x.shape[2] - k + 1, x.shape[3] - k + 1
            y = np.zeros((len(x), w.shape[0], oh, ow)) + b[None, :, None, None]
            for ky in range(k):
                for kx in range(k):
                    y += np.einsum("nchw,fc->nfhw", x[:, :, ky:ky + oh, kx:kx + ow],
                                   w[:, :, ky, kx])
            x = y
        elif name == "ReLU":
            x = np.maximum(x, 0.0)
        elif name in ("BatchNorm1d", "BatchNorm2d"):
            check(kw.get("eps") == 0.001 and tensors[f"{i}.num_batches_tracked"] == 0,
                  f"{name}: eps {kw}")
            shape = (1, -1) + (1, 1) * (name == "BatchNorm2d")
            t = {k: tensors[f"{i}.{k}"].astype(np.float64).reshape(shape)
                 for k in ("weight", "bias", "running_mean", "running_var")}
            x = (x - t["running_mean"]) / np.sqrt(t["running_var"] + kw["eps"]) * \
                t["weight"] + t["bias"]
        elif name == "MaxPool2d":
            p = int(pos[0])
            n, c, h, w_ = x.shape
            x = x[:, :, :h // p * p, :w_ // p * p].reshape(n, c, h // p, p, w_ // p, p)
            x = x.max(axis=(3, 5))
        elif name == "AvgPool2d":
            p = int(pos[0])
            n, c, h, w_ = x.shape
            x = x[:, :, :h // p * p, :w_ // p * p].reshape(n, c, h // p, p, w_ // p, p)
            x = x.mean(axis=(3, 5))
        elif name == "AdaptiveAvgPool2d":
            check(pos == [1.0], f"AdaptiveAvgPool2d{pos}: only to 1 x 1")
            x = x.mean(axis=(2, 3), keepdims=True)
        elif name == "Flatten":
            x = x.reshape(len(x), -1)
        elif name == "Linear":
            x = x @ tensors[f"{i}.weight"].astype(np.float64).T + tensors[f"{i}.bias"]
        elif name == "Softmax":
            z = x - x.max(axis=1, keepdims=True)
            x = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        elif name not in ("Dropout", "Identity"):
            check(False, f"unknown module {name}")
    return x


def case(tmp, name, rows, cols, channels, *train_args):
    data = os.path.join(tmp, name, "data")
    os.makedirs(data)
    mnistgen.write_pair(data, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", 400, 1,
                        False, rows, cols, 10, channels)
    mnistgen.write_pair(data, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 60, 2,
                        False, rows, cols, 10, channels)
    out = os.path.join(tmp, name, "run")
    r = run("--data", data, "--out", out, "--no-plots", "--epochs", "2",
            "--validation-split", "0", *train_args)
    check(r.returncode == 0, f"{name}: training: {r.stderr}")
    model, st = os.path.join(out, "model.ckpt"), os.path.join(out, "model.safetensors")
    r = run("export", "--model", model, "--safetensors", st)
    check(r.returncode == 0 and os.path.exists(st), f"{name}: export: {r.stderr}")
    images = os.path.join(data, "t10k-images-idx3-ubyte")
    r = run("predict", "--json", "--model", model, images)
    want = np.array([json.loads(line)["probabilities"] for line in r.stdout.splitlines()])
    meta, tensors = read_safetensors(st)
    check(meta["format"] == "pt" and meta["trainer.input"] == f"{rows}x{cols}x{channels}" and
          meta["trainer.classes"] == "10", f"{name}: metadata {meta}")
    mods = modules(meta["trainer.sequential"])
    x = nchw(read_idx(images))
    got = run_numpy(mods, tensors, x)
    worst = float(np.abs(got - want).max()) if got.shape == want.shape else 1.0
    same = int((got.argmax(1) == want.argmax(1)).sum()) if got.shape == want.shape else 0
    print(f"{name}: {meta['trainer.sequential']}")
    print(f"{name}: numpy on the safetensors file: {same} of {len(want)} classes the "
          f"trainer's, largest probability difference {worst:.2g}")
    check(worst < 1e-5 and same == len(want), f"{name}: numpy {worst}, {same} same")
    if torch is None:
        print(f"{name}: python3-torch is not installed: the load_state_dict check was not run")
        return model, st
    # The guide's recipe, run as written beside the file: it builds the
    # modules from the metadata's text as data, with no eval.
    scope = {}
    cwd = os.getcwd()
    os.chdir(os.path.dirname(st))
    try:
        check(os.path.basename(st) == "model.safetensors", "the recipe reads model.safetensors")
        exec(README_RECIPE, scope)
    finally:
        os.chdir(cwd)
    net = scope["net"]
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()},
                        strict=True)
    net.eval()
    with torch.no_grad():
        p = net(torch.from_numpy(np.ascontiguousarray(x))).double().numpy()
    worst = float(np.abs(p - want).max())
    print(f"{name}: torch.nn.Sequential with load_state_dict: largest difference {worst:.2g}")
    check(worst < 1e-5 and (p.argmax(1) == want.argmax(1)).all(), f"{name}: torch {worst}")
    return model, st


with tempfile.TemporaryDirectory() as tmp:
    model, st = case(tmp, "mlp", 28, 28, 1)
    case(tmp, "convnet", 12, 10, 3, "--layers",
         "conv2d(4,3,same,relu),maxpool2d(2),conv2d(6,3,relu),flatten,dropout(0.2),"
         "dense(12,relu),dense(10,softmax)")
    case(tmp, "mlp3", 9, 7, 3, "--hidden", "16")
    case(tmp, "avgpool", 11, 10, 3, "--layers",
         "conv2d(4,3,same,relu),avgpool2d(2),conv2d(6,3,relu),global_avgpool2d,"
         "dense(10,softmax)")
    case(tmp, "avgpool-flatten", 12, 12, 2, "--layers",
         "avgpool2d(3),flatten,dense(16,relu),dense(10,softmax)")
    # Batch normalization on images, on a vector a flatten made of an image
    # (its statistics in PyTorch's order), and after a dense layer.
    # Augmentation layers: the identity outside training.
    case(tmp, "augmented", 12, 10, 1, "--layers",
         "random_rotation(0.05),random_translation(0.1,0.1,constant),random_zoom(0.1),"
         "conv2d(4,3,relu),flatten,dense(10,softmax)")
    case(tmp, "batchnorm", 12, 10, 3, "--layers",
         "conv2d(4,3,same),batchnorm,relu,maxpool2d(2),flatten,batchnorm,dense(12),"
         "batchnorm,relu,dense(10,softmax)")

    before = open(st, "rb").read()
    for args, status, what in (
            (["export", "--model", model], 2, "no output asked for"),
            (["export", "--safetensors"], 2, "a value is missing"),
            (["export", "--bogus"], 2, "unknown option"),
            (["export", "--model", model, "--safetensors", st, "extra"], 2, "unexpected"),
            (["export", "--model", os.path.join(tmp, "none.ckpt"), "--safetensors", st], 1,
             "none.ckpt"),
            (["export", "--model", model, "--safetensors",
              os.path.join(tmp, "no", "such", "dir", "m.safetensors")], 1, "m.safetensors")):
        r = run(*args)
        check(r.returncode == status and what in r.stderr and r.stderr.count("\n") == 1,
              f"{args[1:]}: status {r.returncode}, {r.stderr!r}")
    cut = os.path.join(tmp, "cut.ckpt")
    with open(model, "rb") as f, open(cut, "wb") as g:
        g.write(f.read()[:200])
    r = run("export", "--model", cut, "--safetensors", st)
    check(r.returncode == 1 and "cut.ckpt" in r.stderr and open(st, "rb").read() == before,
          f"a damaged model: status {r.returncode}, the earlier file kept")
    r = run("export", "--help")
    check(r.returncode == 0 and "--safetensors" in r.stdout, "export --help")
finish("test_export")
