#!/usr/bin/env python3
"""Conv nets through the trainer, on a small dataset this test writes:
--model convnet's summary and learning, the same bits on 1 and 3 threads and
across an interrupted and resumed run (dropout's mask included), --load,
and --layers specs that are wrong, each refused in one line with status 2."""
import os
import re
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnistgen  # noqa: E402
from testlib import check, finish, run_outputs as outputs  # noqa: E402

TRAINER = os.path.abspath(sys.argv[1])


def run(args, timeout=600):
    r = subprocess.run([TRAINER] + args, capture_output=True, text=True, timeout=timeout)
    print("$ trainer", " ".join(args), "->", r.returncode)
    return r


def keras_name(cls):
    """keras.src.utils.naming.to_snake_case, transcribed."""
    name = re.sub(r"\W+", "", cls)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def keras_names(classes):
    """The names a fresh Keras session gives layers of these classes
    (naming.uniquify: the first plain, then _1, _2, ...)."""
    seen, names = {}, []
    for cls in classes:
        base = keras_name(cls)
        names.append(f"{base}_{seen[base]} ({cls})" if base in seen else f"{base} ({cls})")
        seen[base] = seen.get(base, 0) + 1
    return names


def test_line(stdout):
    m = re.search(r"Test loss: ([0-9.]+) - test accuracy: ([0-9.]+)", stdout)
    return (m.group(1), m.group(2)) if m else None


with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "data")
    mnistgen.write_dataset(data, n_train=400, n_test=100)
    base = ["--data", data, "--model", "convnet", "--batch-size", "32", "--shards", "3",
            "--seed", "1", "--no-plots"]
    one, three = os.path.join(tmp, "one"), os.path.join(tmp, "three")
    r1 = run(base + ["--epochs", "3", "--threads", "1", "--out", one])
    print(r1.stdout[-1500:], r1.stderr)
    check(r1.returncode == 0, f"convnet failed: {r1.stderr}")
    check("(None, 26, 26, 32)" in r1.stdout and "(None, 5, 5, 64)" in r1.stdout and
          "Total params: 34,826" in r1.stdout, "the summary's shapes and parameters")
    check("validation split" not in r1.stdout and "360 training, 40 validation" in r1.stdout,
          "--model convnet's validation split of 0.1")
    r3 = run(base + ["--epochs", "3", "--threads", "3", "--out", three])
    check(r3.returncode == 0 and outputs(one) == outputs(three),
          "1 and 3 threads give different files")
    with open(os.path.join(one, "history.csv")) as f:
        last = f.read().splitlines()[-1].split(",")
    check(float(last[4]) >= 0.9, f"val_accuracy {last[4]} after 3 epochs on an easy set")

    # The summary names layers as Keras does, for every kind.
    spec = ("random_rotation(0.1),random_translation(0.1,0.1),random_zoom(0.1),conv2d(4,3),"
            "batchnorm,relu,maxpool2d(2),conv2d(4,3,same),batchnorm,relu,avgpool2d(2),"
            "dropout(0.1),global_avgpool2d,dense(8,relu),dense(10,softmax)")
    classes = ["RandomRotation", "RandomTranslation", "RandomZoom", "Conv2D",
               "BatchNormalization", "ReLU", "MaxPooling2D", "Conv2D", "BatchNormalization",
               "ReLU", "AveragePooling2D", "Dropout", "GlobalAveragePooling2D", "Dense",
               "Dense"]
    r = run(["--data", data, "--layers", spec, "--epochs", "0", "--no-plots",
             "--out", os.path.join(tmp, "names")])
    lines = r.stdout.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.startswith("Layer (type)")), None)
    shown = [re.split(r"\s{2,}| \(None", ln)[0] for ln in lines[first + 1:first + 16]] \
        if first is not None else []
    check(r.returncode == 0 and shown == keras_names(classes),
          f"the summary's names: {shown} {r.stderr}")
    check(keras_names(["Dense", "Dense"]) == ["dense (Dense)", "dense_1 (Dense)"] and
          keras_name("ReLU") == "re_lu", "the transcription of Keras' naming")

    # --load evaluates the saved conv net to the same figures.
    r = run(["--data", data, "--load", os.path.join(one, "model.ckpt"), "--epochs", "0"])
    check(r.returncode == 0 and test_line(r.stdout) == test_line(r1.stdout),
          f"--load: {test_line(r.stdout)} vs {test_line(r1.stdout)} {r.stderr}")

    # Interrupted after two epochs, resumed: the uninterrupted run's bits.
    whole, cut = os.path.join(tmp, "whole"), os.path.join(tmp, "cut")
    r = run(base + ["--epochs", "5", "--out", whole])
    check(r.returncode == 0, f"the 5-epoch run: {r.stderr}")
    p = subprocess.Popen([TRAINER] + base + ["--epochs", "5", "--out", cut],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in p.stdout:
        if line.startswith("Epoch 3/"):
            p.send_signal(signal.SIGINT)
            break
    p.communicate(timeout=600)
    check(p.returncode == 130, f"not interrupted: {p.returncode}")
    r = run(["--resume", cut, "--no-plots"])
    check(r.returncode == 0 and outputs(cut) == outputs(whole),
          f"the resumed conv net differs from the uninterrupted one: {r.stderr}")

    # Specs that are wrong: one line, status 2, nothing written.
    small = os.path.join(tmp, "small")
    os.makedirs(small)
    mnistgen.write_pair(small, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", 50, 1,
                        False, 3, 3)
    mnistgen.write_pair(small, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10, 2,
                        False, 3, 3)
    bad = [
        (small, "conv2d(8,5,relu),flatten,dense(10,softmax)", "conv2d 5x5 on a 3x3 input"),
        (data, "conv2d(8,3),dropout(1.5),dense(10,softmax)", "dropout rate 1.5"),
        (data, "conv2d(8,3),pool(2),dense(10,softmax)", "unknown layer 'pool'"),
        (data, "conv2d(8,3),flatten,dense(10)", "the last layer must be dense(N,softmax)"),
        (data, "dense(10,softmax),dense(10,softmax)", "must be the last layer"),
        (data, "conv2d(8),dense(10,softmax)", "conv2d needs filters and a kernel size"),
        (data, "conv2d(8,3,tanh),dense(10,softmax)", "unknown argument 'tanh'"),
        (data, "conv2d(8,4,same),dense(10,softmax)", "odd with padding same"),
        (data, "maxpool2d(30),dense(10,softmax)", "maxpool2d 30x30 on a 28x28 input"),
        (data, "flatten,dense(7,softmax)", "the last layer has 7 classes, the labels 10"),
        (data, "conv2d(8,3,relu,flatten,dense(10,softmax)", "a ')' is missing"),
        # Repeated or contradictory options are refused, not resolved by the
        # last one (which the summary and the exports then misreported).
        (data, "flatten,dense(10,softmax,relu)", "'relu' after 'softmax'"),
        (data, "conv2d(8,3,same,valid),flatten,dense(10,softmax)", "'valid' after 'same'"),
        (data, "conv2d(8,3,relu,relu),flatten,dense(10,softmax)", "'relu' after 'relu'"),
        (data, "conv2d(8,3,relu,linear),flatten,dense(10,softmax)", "'linear' after 'relu'"),
    ]
    for where, spec, want in bad:
        out = os.path.join(tmp, "bad")
        r = run(["--data", where, "--layers", spec, "--out", out, "--epochs", "1"])
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 2 and len(lines) == 1 and want in lines[0],
              f"--layers {spec}: status {r.returncode}, {r.stderr!r}")
        check(not os.path.exists(out), f"--layers {spec}: wrote outputs")
    r = run(["--data", data, "--layers", "flatten,dense(10,softmax)", "--hidden", "5"])
    check(r.returncode == 2 and "--hidden" in r.stderr, f"--hidden with --layers: {r.stderr!r}")
    r = run(["--data", data, "--model", "resnet"])
    check(r.returncode == 2 and "expected mlp, convnet or convnet-bn" in r.stderr,
          f"--model: {r.stderr!r}")
    # The recipe: its optimizer, schedule and smoothing unless flags say
    # otherwise; another optimizer takes its own default rate.
    for flags, want in (([], "AdamW lr 0.003, onecycle schedule, label smoothing 0.1"),
                        (["--optimizer", "sgd"], "SGD lr 0.01, onecycle schedule"),
                        (["--lr", "0.01", "--lr-schedule", "constant", "--label-smoothing", "0"],
                         "AdamW lr 0.01, seed")):
        r = run(["--data", data, "--model", "convnet-bn", "--epochs", "0", "--no-plots",
                 "--out", os.path.join(tmp, "recipe")] + flags)
        head = [line for line in r.stdout.splitlines() if line.startswith("trainer ")]
        check(r.returncode == 0 and head and want in head[0] and "batch 128" in head[0] and
              "random_rotation(0.03,constant)" in head[0], f"convnet-bn {flags}: {head}")
    # 20 classes, and images of 3 channels (a 4-dimensional IDX file): the
    # classes come from the labels, the channels from the file.
    twenty = os.path.join(tmp, "twenty")
    os.makedirs(twenty)
    for images, labels, n, seed in (("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 800, 1),
                                    ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 100, 2)):
        mnistgen.write_pair(twenty, images, labels, n, seed, False, rows=20, cols=12,
                            classes=20, channels=3)
    for args in (["--hidden", "64"], ["--model", "convnet"]):
        r = run(["--data", twenty, "--epochs", "4", "--batch-size", "16", "--no-plots", "--out",
                 os.path.join(tmp, "twenty-out")] + args)
        test = test_line(r.stdout)
        check(r.returncode == 0 and "of 20x12x3, 20 classes" in r.stdout and
              "(None, 20)" in r.stdout and test is not None and float(test[1]) >= 0.8,
              f"20 classes of 3 channels with {args}: {test} {r.stdout[-800:]} {r.stderr}")
    # A test set of another channel count is refused.
    mnistgen.write_pair(twenty, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 100, 2,
                        False, rows=20, cols=12, classes=20, channels=1)
    r = run(["--data", twenty, "--epochs", "0"])
    check(r.returncode == 1 and "test images are 20x12x1 but training images 20x12x3" in r.stderr,
          f"another channel count: {r.stderr!r}")

    # Any stack: same padding, a dense hidden layer, dropout 0.
    r = run(["--data", data, "--layers",
             "conv2d(4,5,same,relu),maxpool2d(3),dropout(0),flatten,dense(16,relu),"
             "dense(10,softmax)", "--epochs", "2", "--out", os.path.join(tmp, "any"),
             "--no-plots"])
    check(r.returncode == 0 and "(None, 28, 28, 4)" in r.stdout and
          "(None, 9, 9, 4)" in r.stdout, f"a stack of any layers: {r.stderr}")
finish("test_convnet")
