#!/usr/bin/env python3
"""model.ckpt (version 4) and training.state (version 6) read by an
independent reader written from docs/formats.md alone (tests/trainerfiles.py), and
the model run by numpy: the files say what the trainer did, and the model they
hold gives the test figures the trainer printed."""
import gzip
import os
import re
import struct
import subprocess
import sys
import tempfile
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnistgen  # noqa: E402
import trainerfiles  # noqa: E402
from testlib import check, finish, interpreter_hint  # noqa: E402

try:
    import numpy as np
    from modelrun import forward
except ImportError:
    print(f"test_formats: numpy is not installed (python3-numpy): skipped"
          f" {interpreter_hint()}")
    sys.exit(77)

TRAINER = os.path.abspath(sys.argv[1])
ROWS, COLS = 10, 14


def idx(path):
    """An IDX file of unsigned bytes as a numpy array."""
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack_from(f">{ndim}I", data, 4)
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims), data


def test_figures(logits, labels):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float(-log_p[np.arange(len(labels)), labels].mean())
    return loss, float((logits.argmax(axis=1) == labels).mean())


with tempfile.TemporaryDirectory() as tmp:
    data, out = os.path.join(tmp, "data"), os.path.join(tmp, "run")
    os.makedirs(data)
    mnistgen.write_pair(data, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", 600, 1,
                        True, ROWS, COLS)
    mnistgen.write_pair(data, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 200, 2,
                        False, ROWS, COLS)
    r = subprocess.run([TRAINER, "--data", data, "--out", out, "--epochs", "2", "--hidden",
                        "24,12", "--threads", "2", "--seed", "3", "--no-plots"],
                       capture_output=True, text=True, timeout=300)
    print(r.stdout, r.stderr)
    check(r.returncode == 0, f"training failed: {r.stderr}")
    m = re.search(r"Test loss: ([0-9.]+) - test accuracy: ([0-9.]+)", r.stdout)
    check(m is not None, "no test line")

    ckpt = trainerfiles.read_ckpt(os.path.join(out, "model.ckpt"))
    want_layers = [("dense", {"units": 24, "relu": True}), ("dense", {"units": 12, "relu": True}),
                   ("dense", {"units": 10, "relu": False}), ("softmax", {})]
    check(ckpt["version"] == 4, f"model.ckpt version {ckpt['version']}")
    check(ckpt["input"] == (ROWS, COLS, 1), f"input shape {ckpt['input']}")
    check(ckpt["classes"] == 10 and ckpt["layers"] == want_layers, f"layers {ckpt['layers']}")

    state = trainerfiles.read_state(os.path.join(out, "training.state"))
    check(state["version"] == 6, f"training.state version {state['version']}")
    o = state["optimizer"]
    check(o["kind"] == 0 and abs(o["beta2"] - 0.999) < 1e-7 and o["schedule"] == 0 and
          o["weight_decay"] == 0 and o["label_smoothing"] == 0, f"the optimizer block {o}")
    check(state["layers"] == want_layers and state["input"] == (ROWS, COLS, 1),
          "the state's layers")
    check(state["params"] == ckpt["tensors"], "the state's parameters are not model.ckpt's")
    check(all(v >= 0 for _, t in state["v"] for v in t), "a negative second moment")
    check(state["seed"] == 3 and state["batch_size"] == 32 and state["epochs"] == 2 and
          state["epoch"] == 3 and state["batches_done"] == 0, "the state's run fields")
    check(state["n_train"] == 480 and state["n_val"] == 120 and
          state["adam_step"] == 2 * 15, f"counts {state['n_train']} {state['adam_step']}")
    _, train_images = idx(os.path.join(data, "train-images-idx3-ubyte.gz"))
    _, train_labels = idx(os.path.join(data, "train-labels-idx1-ubyte.gz"))
    check((state["rows"], state["cols"]) == (ROWS, COLS) and
          state["fingerprint"] == zlib.crc32(train_images + train_labels),
          "the data's shape and fingerprint")
    with open(os.path.join(out, "history.csv")) as f:
        csv = [line.split(",") for line in f.read().splitlines()[1:]]
    check(len(state["history"]) == len(csv) == 2 and
          all(int(c[0]) == h[0] and abs(float(c[1]) - h[1]) <= 1e-6 * max(1, h[1]) and
              abs(float(c[4]) - h[4]) <= 1e-6 for c, h in zip(csv, state["history"])),
          "the state's history is not history.csv's")

    images, _ = idx(os.path.join(data, "t10k-images-idx3-ubyte"))
    labels, _ = idx(os.path.join(data, "t10k-labels-idx1-ubyte"))
    logits = forward(ckpt, images)
    loss, accuracy = test_figures(logits, labels)
    print(f"numpy on model.ckpt: test loss {loss:.6f}, accuracy {accuracy:.4f}")
    if m:
        check(abs(loss - float(m.group(1))) <= 6e-5, f"test loss {loss} vs {m.group(1)}")
        check(abs(accuracy - float(m.group(2))) <= 6e-5, f"accuracy {accuracy} vs {m.group(2)}")
    first = re.search(r"Test image 1: predicted (\d)", r.stdout)
    check(first is not None and int(first.group(1)) == int(logits[0].argmax()),
          "the prediction of test image 1")

    # A run with the callbacks on: the state's callbacks block as docs/formats.md
    # says (flags, monitor, the best epoch, the rate), the kept weights equal
    # to the restored model.ckpt, the history's rates equal to history.csv's.
    cb_out = os.path.join(tmp, "cb")
    r = subprocess.run([TRAINER, "--data", data, "--out", cb_out, "--epochs", "12", "--hidden",
                        "24,12", "--seed", "3", "--no-plots", "--early-stopping", "2",
                        "--monitor", "val_accuracy", "--reduce-lr-on-plateau", "0.5",
                        "--lr-patience", "1", "--lr-cooldown", "1", "--min-lr", "1e-5"],
                       capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, f"the callbacks' run failed: {r.stderr}")
    restored = re.search(r"Restored the weights of epoch (\d+)", r.stdout)
    state = trainerfiles.read_state(os.path.join(cb_out, "training.state"))
    cb = state.get("callbacks", {})
    check(cb.get("flags") == 1 | 2 | 8 and cb.get("monitor") == 1 and cb.get("patience") == 2 and
          cb.get("factor") == 0.5 and cb.get("lr_patience") == 1 and cb.get("cooldown") == 1 and
          cb.get("min_lr") == 1e-5, f"the callbacks' settings {cb}")
    check(restored is not None and cb.get("best_epoch") == int(restored.group(1)),
          f"best epoch {cb.get('best_epoch')} vs {restored.group(1) if restored else None}")
    best_ckpt = trainerfiles.read_ckpt(os.path.join(cb_out, "model.ckpt"))
    check(state.get("best_weights") == best_ckpt["tensors"],
          "the kept weights are not the restored model.ckpt's")
    with open(os.path.join(cb_out, "history.csv")) as f:
        lines = f.read().splitlines()
    check(lines[0].endswith(",learning_rate"), "history.csv has no learning_rate column")
    csv_rates = [float(line.split(",")[6]) for line in lines[1:]]
    state_rates = [h[6] for h in state["history"]]
    check([np.float32(x) for x in csv_rates] == [np.float32(x) for x in state_rates] and
          len(set(csv_rates)) > 1, f"rates {csv_rates} vs {state_rates}")

    # A conv net (every kind, same and valid padding, a hidden dense layer):
    # its file read and run by numpy gives the trainer's test figures.
    conv_out = os.path.join(tmp, "conv")
    r = subprocess.run([TRAINER, "--data", data, "--out", conv_out, "--epochs", "2", "--layers",
                        "conv2d(4,3,relu),maxpool2d(2),conv2d(5,3,same,relu),flatten,"
                        "dropout(0.25),dense(8,relu),dense(10,softmax)", "--no-plots"],
                       capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, f"the conv net failed: {r.stderr}")
    conv = trainerfiles.read_ckpt(os.path.join(conv_out, "model.ckpt"))
    check([k for k, _ in conv["layers"]] == ["conv2d", "maxpool2d", "conv2d", "flatten",
                                            "dropout", "dense", "dense", "softmax"] and
          conv["layers"][4][1]["rate"] == 0.25 and conv["layers"][2][1]["same"],
          f"the conv net's layers {conv['layers']}")
    check([t[0] for t in conv["tensors"]][:4] == [(3, 3, 1, 4), (4,), (3, 3, 4, 5), (5,)],
          f"the conv net's tensors {[t[0] for t in conv['tensors']]}")
    m = re.search(r"Test loss: ([0-9.]+) - test accuracy: ([0-9.]+)", r.stdout)
    loss, accuracy = test_figures(forward(conv, images), labels)
    print(f"numpy on the conv net: test loss {loss:.6f}, accuracy {accuracy:.4f}")
    check(m is not None and abs(loss - float(m.group(1))) <= 6e-5 and
          abs(accuracy - float(m.group(2))) <= 6e-5,
          f"conv net: numpy {loss} {accuracy}, trainer {m.groups() if m else None}")

    # A forged layer kind, with a good checksum: one line naming the file.
    with open(os.path.join(out, "model.ckpt"), "rb") as f:
        body = bytearray(f.read())
    struct.pack_into("<I", body, 40, 99)
    struct.pack_into("<I", body, len(body) - 4, zlib.crc32(bytes(body[:-4])))
    forged = os.path.join(tmp, "forged.ckpt")
    with open(forged, "wb") as f:
        f.write(body)
    r = subprocess.run([TRAINER, "--data", data, "--load", forged, "--epochs", "0"],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 1 and r.stderr.count("\n") == 1 and "forged.ckpt" in r.stderr and
          "unknown layer kind 99" in r.stderr, f"forged kind: {r.returncode} {r.stderr!r}")

finish("test_formats")
