#!/usr/bin/env python3
"""Early stopping on the real MNIST: the default model with --early-stopping 3
stops before epoch 25, and model.ckpt holds the epoch with the lowest
val_loss: numpy recomputes that model's validation loss (the last 20% of the
training file) from model.ckpt and finds the minimum of history.csv.
Skipped (77) without MNIST or without numpy."""
import gzip
import os
import re
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trainerfiles  # noqa: E402
from testlib import check, finish, interpreter_hint  # noqa: E402

TRAINER = os.path.abspath(sys.argv[1])
SOURCE = os.path.abspath(sys.argv[2])
data = os.environ.get("TRAINER_MNIST") or os.path.join(SOURCE, "data", "mnist")
try:
    import numpy as np
except ImportError:
    print(f"SKIP: numpy is not installed (python3-numpy)"
          f" {interpreter_hint()}")
    sys.exit(77)


def idx(name):
    for path, opener in ((os.path.join(data, name), open),
                         (os.path.join(data, name + ".gz"), gzip.open)):
        if os.path.exists(path):
            with opener(path, "rb") as f:
                raw = f.read()
            dims = struct.unpack_from(f">{raw[3]}I", raw, 4)
            return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * raw[3]).reshape(dims)
    return None


images, labels = idx("train-images-idx3-ubyte"), idx("train-labels-idx1-ubyte")
if images is None or labels is None:
    print(f"SKIP: no MNIST in {data}; run tools/fetch-mnist")
    sys.exit(77)

with tempfile.TemporaryDirectory() as tmp:
    r = subprocess.run([TRAINER, "--data", data, "--out", tmp, "--early-stopping", "3",
                        "--no-plots"], capture_output=True, text=True, timeout=900)
    print(r.stdout[-1500:], r.stderr)
    check(r.returncode == 0, f"trainer exited with {r.returncode}")
    stopped = re.search(r"Stopped after epoch (\d+)", r.stdout)
    restored = re.search(r"Restored the weights of epoch (\d+)", r.stdout)
    test = re.search(r"Test loss: ([0-9.]+) - test accuracy: ([0-9.]+)", r.stdout)
    check(stopped is not None and int(stopped.group(1)) < 25, "no early stop before epoch 25")
    check(test is not None and float(test.group(2)) > 0.96, "no test accuracy printed")
    with open(os.path.join(tmp, "history.csv")) as f:
        rows = [line.split(",") for line in f.read().splitlines()[1:]]
    val = [float(row[3]) for row in rows]
    best = min(range(len(val)), key=lambda i: val[i]) + 1
    check(stopped is None or len(rows) == int(stopped.group(1)),
          "history.csv does not keep every epoch that ran")
    check(restored is not None and int(restored.group(1)) == best,
          f"restored {restored.group(1) if restored else None}, the lowest val_loss is {best}")
    check(stopped is None or int(stopped.group(1)) == best + 3,
          "the stop is not 3 epochs after the best")

    model = trainerfiles.read_ckpt(os.path.join(tmp, "model.ckpt"))
    n_val = len(images) // 5
    x = images[-n_val:].reshape(n_val, -1).astype(np.float32) / np.float32(255)
    y = labels[-n_val:]
    a = x.astype(np.float64)
    tensors = iter(model["tensors"])
    for kind, hp in model["layers"]:
        if kind == "dense":
            (shape, w), (_, b) = next(tensors), next(tensors)
            a = a @ np.array(w, dtype=np.float32).reshape(shape).astype(np.float64) + \
                np.array(b, dtype=np.float64)
            if hp["relu"]:
                a = np.maximum(a, 0.0)
    a -= a.max(axis=1, keepdims=True)
    loss = float((np.log(np.exp(a).sum(axis=1)) - a[np.arange(n_val), y]).mean())
    print(f"model.ckpt's validation loss, by numpy: {loss:.6f}; history.csv's lowest: "
          f"{min(val):.6f} (epoch {best})")
    check(abs(loss - min(val)) < 2e-6, "model.ckpt is not the epoch with the lowest val_loss")
finish("test_early_stopping")
