#!/usr/bin/env python3
"""End to end on a small dataset this test writes: the trainer learns it, writes
history.csv and model.ckpt, and the saved model evaluates to the same test
figures when loaded again."""
import os
import re
import struct
import subprocess
import zlib
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnistgen  # noqa: E402
from testlib import check, finish  # noqa: E402

TRAINER = os.path.abspath(sys.argv[1])


def run(args):
    r = subprocess.run([TRAINER] + args, capture_output=True, text=True, timeout=300)
    print("$ trainer", " ".join(args))
    print(r.stdout, r.stderr)
    return r


def test_line(stdout):
    m = re.search(r"Test loss: ([0-9.]+) - test accuracy: ([0-9.]+)", stdout)
    return (float(m.group(1)), float(m.group(2))) if m else None


with tempfile.TemporaryDirectory() as tmp:
    data, out = os.path.join(tmp, "data"), os.path.join(tmp, "runs", "a")
    mnistgen.write_dataset(data, n_train=1000, n_test=200)
    r = run(["--data", data, "--out", out, "--epochs", "4", "--threads", "3",
             "--batch-size", "16", "--seed", "5"])
    check(r.returncode == 0, f"training failed: {r.stderr}")
    check("Total params: 104,938" in r.stdout, "model summary")
    check("800 training, 200 validation, 200 test" in r.stdout, "the 0.2 validation split")
    check(len(re.findall(r"^Epoch \d/4$", r.stdout, re.M)) == 4, "one Epoch line per epoch")
    with open(os.path.join(out, "history.csv")) as f:
        rows = [line.strip().split(",") for line in f]
    check(rows[0] == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"],
          f"header {rows[0]}")
    body = [[float(x) for x in row] for row in rows[1:]]
    check([int(b[0]) for b in body] == [1, 2, 3, 4], "four epochs")
    check(body[-1][1] < body[0][1], "the training loss goes down")
    check(body[-1][4] >= 0.9, f"val_accuracy {body[-1][4]} < 0.9 on an easy dataset")
    first = test_line(r.stdout)
    check(first is not None and first[1] >= 0.9, f"test line {first}")
    check(re.search(r"Test image 1: predicted \d, true label \d", r.stdout) is not None,
          "the prediction of test image 1")

    ckpt = os.path.join(out, "model.ckpt")
    with open(ckpt, "rb") as f:
        check(f.read(8) == b"TRNRCKPT", "model.ckpt magic")
    check(not [n for n in os.listdir(out) if ".tmp-" in n], "temporary files left behind")

    r = run(["--data", data, "--load", ckpt, "--epochs", "0", "--threads", "2"])
    check(r.returncode == 0, f"--load --epochs 0 failed: {r.stderr}")
    check(test_line(r.stdout) == first, f"reloaded model: {test_line(r.stdout)} vs {first}")
    check("Epoch" not in r.stdout, "--epochs 0 trained")

    # The notebook's variant, no validation, one thread.
    out2 = os.path.join(tmp, "b")
    r = run(["--data", data, "--out", out2, "--hidden", "128", "--epochs", "2",
             "--validation-split", "0", "--threads", "1"])
    check(r.returncode == 0 and "Total params: 101,770" in r.stdout, "784-128-10")
    with open(os.path.join(out2, "history.csv")) as f:
        last = f.read().strip().splitlines()[-1].split(",")
    check(last[3] == "nan" and last[4] == "nan", f"no validation gives nan: {last}")
    check(all(os.path.exists(os.path.join(out, n))
              for n in ("samples.png", "curves.png", "predictions.png")), "pictures written")
    out4 = os.path.join(tmp, "d")
    r = run(["--data", data, "--out", out4, "--epochs", "1", "--no-plots"])
    check(r.returncode == 0 and
          sorted(os.listdir(out4)) == [".trainer.lock", "history.csv", "model.ckpt",
                                       "training.state"],
          f"--no-plots wrote {os.listdir(out4) if os.path.isdir(out4) else None}")

    # Same seed and threads: the same run.
    out3 = os.path.join(tmp, "c")
    run(["--data", data, "--out", out3, "--epochs", "4", "--threads", "3",
         "--batch-size", "16", "--seed", "5"])
    with open(ckpt, "rb") as f1, open(os.path.join(out3, "model.ckpt"), "rb") as f2:
        check(f1.read() == f2.read(), "the same seed and thread count gave another model")

    # Divergence: weights of 1e30 overflow the logits, so the very first step's
    # loss is not finite. Training stops naming the epoch and step, exit 1, and
    # the model.ckpt of the earlier run stays as it was.
    sizes = [784, 16, 10]
    n_params = 784 * 16 + 16 + 16 * 10 + 10
    body = (b"TRNRCKPT" + struct.pack("<IIII", 1, 0x01020304, 4, 2) +
            struct.pack("<3I", *sizes) + struct.pack("<Q", n_params) +
            struct.pack(f"<{n_params}f", *([1e30] * n_params)))
    huge = os.path.join(tmp, "huge.ckpt")
    with open(huge, "wb") as f:
        f.write(body + struct.pack("<I", zlib.crc32(body)))
    with open(ckpt, "rb") as f:
        before = f.read()
    r = run(["--data", data, "--out", out, "--load", huge, "--epochs", "2", "--no-plots"])
    check(r.returncode == 1 and "epoch 1, step 1 of" in r.stderr and "diverged" in r.stderr,
          f"divergence guard: status {r.returncode}, {r.stderr!r}")
    with open(ckpt, "rb") as f:
        check(f.read() == before, "a diverged run replaced model.ckpt")

    # The arithmetic depends on the shards, not the threads: bit-identical runs.
    outs = {}
    for t in (1, 2, 3, 8):
        o = os.path.join(tmp, f"threads{t}")
        r = run(["--data", data, "--out", o, "--epochs", "2", "--threads", str(t),
                 "--shards", "4", "--seed", "3", "--no-plots"])
        check(r.returncode == 0, f"--threads {t} failed")
        with open(os.path.join(o, "model.ckpt"), "rb") as f:
            model = f.read()
        with open(os.path.join(o, "history.csv")) as f:
            cols = [line.split(",")[:5] for line in f]
        outs[t] = (model, cols)
    for t in (2, 3, 8):
        check(outs[t][0] == outs[1][0], f"--threads {t}: model.ckpt differs from --threads 1")
        check(outs[t][1] == outs[1][1], f"--threads {t}: history.csv differs from --threads 1")

finish("test_e2e")
