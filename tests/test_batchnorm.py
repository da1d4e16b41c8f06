#!/usr/bin/env python3
"""Batch normalization in the trainer against numpy (tests/modelrun.py, a
transcription of Keras' BatchNormalization written from docs/model.md).

A model whose weights numpy draws (written with tests/trainerfiles.py) is
trained by the trainer for one epoch of one step (--load, the batch the
whole training set, 3 shards): the epoch's loss and accuracy in history.csv
are those numpy computes with the batch's statistics from those weights,
and the moving mean and variance in model.ckpt moved from 0 and 1 by 0.01
of the batch's mean and biased variance; the test figures the trainer
prints are numpy's inference with the moving statistics.  1 and 2 threads,
and 2 processes, give the same bits; Keras' summary counts the moving
statistics as non-trainable."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnistgen  # noqa: E402
import trainerfiles  # noqa: E402
from testlib import check, finish, interpreter_hint  # noqa: E402

try:
    import numpy as np
    import modelrun
except ImportError:
    print(f"test_batchnorm: numpy is not installed (python3-numpy): skipped"
          f" {interpreter_hint()}")
    sys.exit(77)

TRAINER = os.path.abspath(sys.argv[1])
N_TRAIN = 150
LAYERS = [("conv2d", {"filters": 4, "kernel": 3, "same": False, "relu": False}),
          ("batchnorm", {}), ("relu", {}), ("maxpool2d", {"pool": 2}), ("flatten", {}),
          ("dense", {"units": 12, "relu": False}), ("batchnorm", {}), ("relu", {}),
          ("dense", {"units": 10, "relu": False}), ("softmax", {})]
SPEC = ("conv2d(4,3),batchnorm,relu,maxpool2d(2),flatten,dense(12),batchnorm,relu,"
        "dense(10,softmax)")


def initial_tensors(rnd):
    shapes = trainerfiles.tensor_shapes((28, 28, 1), LAYERS)
    kinds = []
    for kind, _ in LAYERS:
        kinds += {"dense": ["w", "b"], "conv2d": ["w", "b"],
                  "batchnorm": ["gamma", "beta", "mean", "var"]}.get(kind, [])
    out = []
    for shape, kind in zip(shapes, kinds):
        n = int(np.prod(shape))
        value = {"w": rnd.normal(0, 0.3, n), "b": rnd.normal(0, 0.1, n),
                 "gamma": rnd.uniform(0.5, 1.5, n), "beta": rnd.normal(0, 0.2, n),
                 "mean": np.zeros(n), "var": np.ones(n)}[kind]
        out.append([float(v) for v in value.astype(np.float32)])
    return out


def main():
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        mnistgen.write_dataset(data, n_train=N_TRAIN, n_test=100)
        init = os.path.join(tmp, "init.ckpt")
        trainerfiles.write_ckpt(init, (28, 28, 1), 10, LAYERS,
                                initial_tensors(np.random.default_rng(5)))
        model0 = trainerfiles.read_ckpt(init)
        runs = {}
        for threads in (1, 2):
            out = os.path.join(tmp, f"t{threads}")
            r = subprocess.run([TRAINER, "--data", data, "--load", init, "--epochs", "1",
                                "--batch-size", str(N_TRAIN), "--validation-split", "0",
                                "--shards", "3", "--threads", str(threads), "--out", out,
                                "--no-plots"], capture_output=True, text=True, timeout=300)
            check(r.returncode == 0, f"{threads} threads: {r.stderr}")
            runs[threads] = (out, r.stdout)
        out, stdout = runs[2]
        with open(os.path.join(runs[1][0], "model.ckpt"), "rb") as a, \
                open(os.path.join(out, "model.ckpt"), "rb") as b:
            check(a.read() == b.read(), "1 and 2 threads give different model.ckpt")
        check("batch_normalization (BatchNormalization)" in stdout and
              "re_lu (ReLU)" in stdout and
              "Non-trainable params: 32" in stdout,
              f"the summary: {stdout[:1200]}")

        images = modelrun.read_idx(os.path.join(data, "train-images-idx3-ubyte.gz"))
        labels = modelrun.read_idx(os.path.join(data, "train-labels-idx1-ubyte.gz"))
        logits = modelrun.forward(model0, images, training=True)
        z = logits - logits.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = -logp[np.arange(len(labels)), labels].mean()
        accuracy = (logits.argmax(axis=1) == labels).mean()
        with open(os.path.join(out, "history.csv")) as f:
            row = f.read().splitlines()[1].split(",")
        print(f"epoch 1: trainer loss {row[1]} accuracy {row[2]}; numpy {loss:.6f} "
              f"{accuracy:.6f}")
        check(abs(float(row[1]) - loss) <= 2e-6 * max(1.0, loss) and
              abs(float(row[2]) - accuracy) <= 1e-6,
              f"the training loss and accuracy: trainer {row[1:3]}, numpy {loss} {accuracy}")

        trained = trainerfiles.read_ckpt(os.path.join(out, "model.ckpt"))
        got = [np.array(t[1]) for t in trained["tensors"]]
        moved = model0["moved"]
        # The moving statistics are tensors 4-5 and 10-11 (after each gamma, beta).
        worst = 0.0
        for (mean, var), (im, iv) in zip(moved, ((4, 5), (10, 11))):
            worst = max(worst, np.max(np.abs(got[im] - mean)), np.max(np.abs(got[iv] - var)))
        print(f"moving statistics: worst difference {worst:.2g}")
        check(worst <= 1e-6, f"the moving statistics differ by {worst}")

        test_images = modelrun.read_idx(os.path.join(data, "t10k-images-idx3-ubyte"))
        test_labels = modelrun.read_idx(os.path.join(data, "t10k-labels-idx1-ubyte"))
        logits = modelrun.forward(trained, test_images)
        z = logits - logits.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        test_loss = -logp[np.arange(len(test_labels)), test_labels].mean()
        test_acc = (logits.argmax(axis=1) == test_labels).mean()
        m = re.search(r"Test loss: ([0-9.]+) - test accuracy: ([0-9.]+)", stdout)
        check(m is not None and abs(float(m.group(1)) - test_loss) <= 6e-5 and
              abs(float(m.group(2)) - test_acc) <= 6e-5,
              f"the test figures: trainer {m.groups() if m else None}, numpy {test_loss} "
              f"{test_acc}")

        # The same bits from 2 processes, each with its shards.
        mpirun = shutil.which("mpirun")
        if mpirun:
            mpi_out = os.path.join(tmp, "mpi")
            env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1",
                       OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1",
                       ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0")
            r = subprocess.run([mpirun, "-np", "2", TRAINER, "--data", data, "--load", init,
                                "--epochs", "2", "--batch-size", "50", "--validation-split",
                                "0", "--shards", "4", "--threads", "1", "--out", mpi_out,
                                "--no-plots"], capture_output=True, text=True, timeout=300,
                               env=env)
            one = os.path.join(tmp, "one")
            r1 = subprocess.run([TRAINER, "--data", data, "--load", init, "--epochs", "2",
                                 "--batch-size", "50", "--validation-split", "0", "--shards",
                                 "4", "--out", one, "--no-plots"], capture_output=True,
                                text=True, timeout=300)
            if r.returncode == 0 and "2 processes" in r.stdout:
                with open(os.path.join(mpi_out, "model.ckpt"), "rb") as a, \
                        open(os.path.join(one, "model.ckpt"), "rb") as b:
                    check(r1.returncode == 0 and a.read() == b.read(),
                          "2 processes give other bits than one")
                print("2 processes: the same model.ckpt as one")
            else:
                print(f"mpirun could not run 2 processes here: {r.stderr[-300:]}")


if __name__ == "__main__":
    main()
    finish("test_batchnorm")
