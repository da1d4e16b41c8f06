#!/usr/bin/env python3
"""One epoch on the real MNIST reaches at least 95% validation accuracy.

The data is found where the trainer finds it by default (data/mnist in the
source tree, which tools/fetch-mnist fills) or in $TRAINER_MNIST.  Without it
the test is skipped (exit status 77), never passed."""
import csv
import os
import re
import subprocess
import sys
import tempfile

TRAINER = os.path.abspath(sys.argv[1])
SOURCE = os.path.abspath(sys.argv[2])
NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def has_mnist(d):
    return all(os.path.exists(os.path.join(d, n)) or os.path.exists(os.path.join(d, n + ".gz"))
               for n in NAMES)


data = os.environ.get("TRAINER_MNIST") or os.path.join(SOURCE, "data", "mnist")
if not has_mnist(data):
    print(f"SKIP: no MNIST in {data}; run tools/fetch-mnist")
    sys.exit(77)

with tempfile.TemporaryDirectory() as tmp:
    args = [TRAINER, "--epochs", "1", "--threads", "2", "--out", tmp]
    if os.environ.get("TRAINER_MNIST"):
        args += ["--data", data]
    # Run from an empty directory: without --data the trainer must find the
    # source tree's data/mnist by itself.
    r = subprocess.run(args, cwd=tmp, capture_output=True, text=True, timeout=600)
    print(r.stdout, r.stderr)
    if r.returncode != 0:
        print("FAIL: trainer exited with", r.returncode)
        sys.exit(1)
    if "48000 training, 12000 validation, 10000 test" not in r.stdout:
        print("FAIL: not the 60,000 + 10,000 MNIST images")
        sys.exit(1)
    with open(os.path.join(tmp, "history.csv")) as f:
        rows = list(csv.DictReader(f))
    val_acc = float(rows[0]["val_accuracy"])
    test_acc = float(re.search(r"test accuracy: ([0-9.]+)", r.stdout).group(1))
    print(f"one epoch: val_accuracy {val_acc:.4f}, test accuracy {test_acc:.4f}")
    if len(rows) != 1 or val_acc < 0.95 or test_acc < 0.95:
        print("FAIL: below 95% after one epoch")
        sys.exit(1)
print("test_mnist: all checks passed")
