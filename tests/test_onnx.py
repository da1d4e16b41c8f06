#!/usr/bin/env python3
"""trainer export --onnx, checked by the ONNX project's checker (python3-onnx)
and run by ONNX Runtime for Node (npm's onnxruntime-node, in tests/js).

Without "mnist": models trained on generated sets (the MLP; a conv net on
3-channel images with same and valid padding, flatten and dropout; average
pooling, by windows and global): the
checker passes (with shape inference), the metadata says the classes and
the input, and ONNX Runtime on the test images gives trainer predict's
classes on every image and its probabilities within 1e-5.

With "mnist": an MLP and Keras' conv net trained briefly on real MNIST, the
same on all 10,000 test images.  Skipped (77) without MNIST.

Each verifier that is absent is named and the test skips (77); .ci/run
installs both."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnistgen  # noqa: E402
from testlib import check, finish, interpreter_hint  # noqa: E402

TRAINER = os.path.abspath(sys.argv[1])
SOURCE = sys.argv[2]
MNIST = len(sys.argv) > 3 and sys.argv[3] == "mnist"
JS = os.path.join(SOURCE, "tests", "js")

try:
    import numpy as np
    import onnx
    from modelrun import nchw, read_idx
except ImportError as e:
    print(f"test_onnx: {e.name} is not installed (python3-numpy, python3-onnx): skipped"
          f" {interpreter_hint()}")
    sys.exit(77)
if not shutil.which("node") or not os.path.isdir(os.path.join(JS, "node_modules",
                                                              "onnxruntime-node")):
    print("test_onnx: ONNX Runtime for Node is not installed (apt-get install nodejs npm; "
          "npm install --ignore-scripts --prefix tests/js): skipped")
    sys.exit(77)


def run(*args):
    return subprocess.run([TRAINER, *args], capture_output=True, text=True, timeout=900)


def compare(tmp, name, model, images):
    path = os.path.join(tmp, name + ".onnx")
    r = run("export", "--model", model, "--onnx", path)
    check(r.returncode == 0 and os.path.exists(path), f"{name}: export: {r.stderr}")
    m = onnx.load(path)
    try:
        onnx.checker.check_model(m, full_check=True)
        checked = True
    except Exception as e:  # the checker's own exception types vary by version
        checked = False
        print(f"{name}: {e}")
    check(checked, f"{name}: onnx.checker.check_model")
    meta = {p.key: p.value for p in m.metadata_props}
    x = nchw(read_idx(images))
    n, c, h, w = x.shape
    check(meta.get("input_shape") == f"{h}x{w}x{c}" and "preprocessing" in meta and
          m.opset_import[0].version >= 13, f"{name}: metadata {meta}")
    fin, fout = os.path.join(tmp, name + ".in"), os.path.join(tmp, name + ".out")
    x.astype("<f4").tofile(fin)
    r = subprocess.run(["node", os.path.join(JS, "ort_run.js"), path, fin, str(n), str(c),
                        str(h), str(w), fout], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "NODE_PATH": os.path.join(JS, "node_modules")})
    check(r.returncode == 0, f"{name}: onnxruntime-node: {r.stderr}")
    if r.returncode:
        return
    print(f"{name}: {r.stdout.strip()}")
    k = int(meta.get("classes", "0"))
    ort = np.fromfile(fout, dtype="<f4").reshape(n, k)
    r = run("predict", "--json", "--model", model, images)
    ours = np.array([json.loads(line)["probabilities"] for line in r.stdout.splitlines()])
    same = int((ort.argmax(1) == ours.argmax(1)).sum())
    worst = float(np.abs(ort - ours).max())
    print(f"{name}: ONNX Runtime's classes equal trainer's on {same} of {n} images; largest "
          f"probability difference {worst:.2g}")
    check(same == n and worst < 1e-5, f"{name}: {same} of {n} same, {worst}")


def generated(tmp):
    for name, rows, cols, channels, args in (
            ("mlp", 28, 28, 1, []),
            ("convnet3", 12, 10, 3, ["--layers", "conv2d(4,3,same,relu),maxpool2d(2),"
                                     "conv2d(6,3,relu),flatten,dropout(0.2),dense(12,relu),"
                                     "dense(10,softmax)"]),
            # Average pooling: a window that leaves a row out (11 by 2), and
            # the global mean (GlobalAveragePool, then Flatten).
            ("avgpool3", 11, 10, 3, ["--layers", "conv2d(4,3,same,relu),avgpool2d(2),"
                                     "conv2d(6,3,relu),global_avgpool2d,dense(10,softmax)"]),
            ("avgpool-flatten", 12, 12, 1, ["--layers", "avgpool2d(3),flatten,dense(16,relu),"
                                            "dense(10,softmax)"]),
            # BatchNormalization on images, on a flattened image's vector
            # (per value, in the graph's channel-first order) and on a dense
            # layer's output; a standalone Relu.
            ("augmented", 12, 10, 1, ["--layers", "random_rotation(0.05),random_zoom(0.1),"
                                      "conv2d(4,3,relu),flatten,dense(10,softmax)"]),
            ("batchnorm3", 12, 10, 3, ["--layers", "conv2d(4,3,same),batchnorm,relu,"
                                       "maxpool2d(2),flatten,batchnorm,dense(12),batchnorm,"
                                       "relu,dense(10,softmax)"])):
        data = os.path.join(tmp, name)
        os.makedirs(data)
        mnistgen.write_pair(data, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", 400, 1,
                            False, rows, cols, 10, channels)
        mnistgen.write_pair(data, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 200, 2,
                            False, rows, cols, 10, channels)
        out = os.path.join(tmp, name + "-run")
        r = run("--data", data, "--out", out, "--no-plots", "--epochs", "2",
                "--validation-split", "0", *args)
        check(r.returncode == 0, f"{name}: training: {r.stderr}")
        compare(tmp, name, os.path.join(out, "model.ckpt"),
                os.path.join(data, "t10k-images-idx3-ubyte"))


def real(tmp):
    data = os.path.join(SOURCE, "data", "mnist")
    images = os.path.join(data, "t10k-images-idx3-ubyte")
    images = images if os.path.exists(images) else images + ".gz"
    if not os.path.exists(images):
        print("test_onnx: MNIST is not in data/mnist (tools/fetch-mnist): skipped")
        sys.exit(77)
    for name, args in (("mnist-mlp", ["--validation-split", "0.8", "--epochs", "2"]),
                       ("mnist-convnet", ["--model", "convnet", "--validation-split", "0.9",
                                          "--epochs", "1"]),
                       ("mnist-batchnorm", ["--layers", "conv2d(16,3),batchnorm,relu,"
                                            "maxpool2d(2),conv2d(32,3),batchnorm,relu,"
                                            "maxpool2d(2),flatten,dense(10,softmax)",
                                            "--validation-split", "0.9", "--epochs", "1",
                                            "--batch-size", "64"])):
        out = os.path.join(tmp, name)
        r = run("--data", data, "--out", out, "--no-plots", *args)
        check(r.returncode == 0, f"{name}: training: {r.stderr}")
        compare(tmp, name, os.path.join(out, "model.ckpt"), images)


with tempfile.TemporaryDirectory() as tmp:
    real(tmp) if MNIST else generated(tmp)
finish("test_onnx" + (" (MNIST)" if MNIST else ""))
