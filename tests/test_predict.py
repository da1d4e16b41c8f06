#!/usr/bin/env python3
"""trainer predict.

Without arguments past the trainer: a model trained on a small generated
set; its probabilities on IDX files (plain and gzip) and on --raw PNG files
against the model's file run by numpy; every bad input named in one line
while the good files are still classified, status 1; --save-input's IDX
file read back; bad command lines, status 2.

With "mnist" and the source tree: a model trained on real MNIST digits, and
test digits it is sure of drawn by this test as PNG files (scaled up,
inverted, off-centre on a grey page, black ink on a transparent canvas, 16
bits, palette, grey + alpha): each must get the class the model gives the
original; and photo-like pictures of 60 of them (uneven light, a shadow,
noise; PNG and JPEG): at least 9 in 10 must.  Skipped (77) without MNIST
in data/mnist."""
import gzip
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnistgen  # noqa: E402
import trainerfiles  # noqa: E402
from testlib import check, finish, interpreter_hint  # noqa: E402

try:
    import numpy as np
    import photogen
    import pngwrite
    from modelrun import forward, read_idx
except ImportError:
    print(f"test_predict: numpy is not installed (python3-numpy): skipped"
          f" {interpreter_hint()}")
    sys.exit(77)

TRAINER = os.path.abspath(sys.argv[1])
MNIST = len(sys.argv) > 2 and sys.argv[2] == "mnist"


def predict(*args):
    return subprocess.run([TRAINER, "predict", *args], capture_output=True, text=True,
                          timeout=300)


def softmax(logits):
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def train(data, out, *extra):
    r = subprocess.run([TRAINER, "--data", data, "--out", out, "--no-plots", *extra],
                       capture_output=True, text=True, timeout=600)
    check(r.returncode == 0, f"training for the test: {r.stderr}")
    return os.path.join(out, "model.ckpt")


def generated(tmp):
    data = os.path.join(tmp, "data")
    os.makedirs(data)
    mnistgen.write_pair(data, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", 600, 1,
                        False)
    mnistgen.write_pair(data, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 100, 2,
                        False)
    images = os.path.join(data, "t10k-images-idx3-ubyte")
    with open(images, "rb") as f, gzip.open(images + ".gz", "wb") as g:
        g.write(f.read())
    model = train(data, os.path.join(tmp, "run"), "--epochs", "3", "--validation-split", "0")
    ckpt = trainerfiles.read_ckpt(model)
    x = read_idx(images)
    want = softmax(forward(ckpt, x))

    # IDX files, plain and gzip: every item, numpy's probabilities.
    for path in (images, images + ".gz"):
        r = predict("--json", "--model", model, path)
        check(r.returncode == 0 and r.stderr == "", f"{path}: status {r.returncode} {r.stderr}")
        got = [json.loads(line) for line in r.stdout.splitlines()]
        check(len(got) == len(x) and [g["item"] for g in got] == list(range(len(x))),
              f"{path}: one object per item, numbered")
        probs = np.array([g["probabilities"] for g in got])
        worst = float(np.abs(probs - want).max()) if probs.shape == want.shape else 1.0
        print(f"IDX, {len(got)} images: largest probability difference from numpy {worst:.2g}")
        check(worst < 1e-5, f"{path}: probabilities {worst} from numpy's")
        check(all(g["class"] == int(np.argmax(w)) for g, w in zip(got, want)),
              f"{path}: the classes are numpy's")
        check(all(g["top"][0]["class"] == g["class"] and
                  g["top"][0]["probability"] >= g["top"][1]["probability"] >=
                  g["top"][2]["probability"] for g in got), f"{path}: the top three in order")

    # --raw PNG files: the same pixels as the IDX items, the same figures.
    pngs = []
    for i in range(5):
        path = os.path.join(tmp, f"raw{i}.png")
        with open(path, "wb") as f:
            f.write(pngwrite.encode(x[i], 0))
        pngs.append(path)
    r = predict("--json", "--raw", "--model", model, *pngs)
    got = [json.loads(line) for line in r.stdout.splitlines()]
    check(r.returncode == 0 and len(got) == 5, f"--raw: status {r.returncode} {r.stderr}")
    check(all(abs(np.array(g["probabilities"]) - want[i]).max() < 1e-5 and g["file"] == pngs[i]
              for i, g in enumerate(got)), "--raw PNG: the IDX item's probabilities")
    r = predict("--model", model, pngs[0])
    check(r.returncode == 0 and r.stdout.startswith(pngs[0] + ": ") and "%" in r.stdout,
          f"text output: {r.stdout!r}")

    # --save-input: the pictures as the model saw them, an IDX file that
    # predict reads back with the same figures; nothing written when nothing
    # was classified, and an earlier file kept when the folder is missing.
    saved = os.path.join(tmp, "seen.idx")
    r = predict("--json", "--raw", "--save-input", saved, "--model", model, pngs[0], images)
    check(r.returncode == 0, f"--save-input: {r.stderr}")
    back = read_idx(saved)
    check(back.shape == (1 + len(x), 28, 28) and np.array_equal(back[0], x[0]) and
          np.array_equal(back[1:], x), f"--save-input holds the pictures: {back.shape}")
    r2 = predict("--json", "--model", model, saved)
    first = [json.loads(line)["probabilities"] for line in r.stdout.splitlines()]
    again = [json.loads(line)["probabilities"] for line in r2.stdout.splitlines()]
    check(r2.returncode == 0 and again == first, "the saved pictures read back give the same")
    before = open(saved, "rb").read()
    r = predict("--save-input", saved, "--model", model, os.path.join(tmp, "none.png"))
    check(r.returncode == 1 and "nothing to write" in r.stderr and
          open(saved, "rb").read() == before, f"--save-input of nothing: {r.stderr!r}")
    r = predict("--save-input", os.path.join(tmp, "no", "dir", "s.idx"), "--model", model,
                pngs[0])
    check(r.returncode == 1 and "s.idx" in r.stderr, f"--save-input to a missing folder: "
          f"{r.stderr!r}")

    # Bad inputs among good ones: each named, the good ones still classified.
    bad = {}
    def write(name, data):
        path = os.path.join(tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path
    good_png = pngwrite.encode(np.kron(x[0], np.ones((2, 2), np.uint8)), 0)
    bad["not an image"] = write("notes.png", b"these are not pixels\n")
    bad["truncated"] = write("half.png", good_png[:len(good_png) // 2])
    bad["empty"] = write("empty.png", b"")
    bad["too large"] = write("huge.png", pngwrite.header_only(20000, 20000))
    bad["no ink"] = write("blank.png", pngwrite.encode(np.full((40, 40), 128, np.uint8), 0))
    bad["missing"] = os.path.join(tmp, "nowhere.png")
    bad["labels, not images"] = os.path.join(data, "t10k-labels-idx1-ubyte")
    with open(images, "rb") as f:
        bad["damaged gzip"] = write("cut.idx.gz", gzip.compress(f.read())[:-200])
    good = write("good.png", good_png)
    files = [good] + list(bad.values()) + [good]
    r = predict("--model", model, *files)
    lines = r.stderr.splitlines()
    check(r.returncode == 1, f"bad inputs: status {r.returncode}")
    check(r.stdout.count(good + ": ") == 2, f"the good file before and after: {r.stdout!r}")
    check(len(lines) == len(bad), f"one line per bad file: {lines}")
    for (what, path), line in zip(bad.items(), lines):
        print(f"{what}: {line}")
        check(line.startswith("trainer predict: " + path + ": "), f"{what}: names the file")
    expect = {"not an image": "not a PNG", "truncated": "truncated", "empty": "empty",
              "too large": "20000x20000", "no ink": "no ink", "missing": "No such file",
              "labels, not images": "not IDX images", "damaged gzip": "truncated"}
    for (what, _), line in zip(bad.items(), lines):
        check(expect[what] in line, f"{what}: says what is wrong: {line}")
    # --show: a picture of every classified picture (rows of 210 pixels
    # under a 44-pixel title), written even when some files were bad.
    show = os.path.join(tmp, "show.png")
    r = predict("--show", show, "--model", model, good, bad["no ink"], images)
    with open(show, "rb") as f:
        head = f.read(24)
    rows = (int.from_bytes(head[20:24], "big") - 44) // 210 if len(head) == 24 else 0
    check(r.returncode == 1 and head[:8] == b"\x89PNG\r\n\x1a\n" and rows == 64,
          f"--show of 1 + 100 pictures draws the first 64: {rows} rows, {r.stderr}")
    r = predict("--show", show, "--model", model, bad["no ink"])
    check(r.returncode == 1 and "nothing to draw" in r.stderr, f"--show of nothing: {r.stderr}")
    r = predict("--show", os.path.join(tmp, "no", "dir", "s.png"), "--model", model, good)
    check(r.returncode == 1 and "s.png" in r.stderr, f"--show to a missing folder: {r.stderr}")

    r = predict("--raw", "--model", model, good)
    check(r.returncode == 1 and "56x56 pixels, the model takes 28x28" in r.stderr,
          f"--raw of another size: {r.stderr}")

    # Bad command lines and models.
    for args, status, what in (([], 2, "no pictures"), (["--model"], 2, "a value is missing"),
                               (["--frobnicate", good], 2, "unknown option"),
                               (["--model", os.path.join(tmp, "none.ckpt"), good], 1,
                                "none.ckpt")):
        r = predict(*args)
        check(r.returncode == status and what in r.stderr and r.stderr.count("\n") == 1,
              f"{args}: status {r.returncode}, {r.stderr!r}")
    cut = write("cut.ckpt", open(model, "rb").read()[:100])
    r = predict("--model", cut, good)
    check(r.returncode == 1 and "cut.ckpt" in r.stderr and r.stdout == "",
          f"a damaged model: {r.stderr!r}")
    r = predict("--help")
    check(r.returncode == 0 and "--raw" in r.stdout and "20x20" in r.stdout, "--help")


def variants(img):
    """The ways a user's picture of a digit differs from MNIST's."""
    up = np.kron(img, np.ones((3, 3), np.uint8))
    yield "3x larger", pngwrite.encode(up, 0)
    inv = 255 - np.kron(img, np.ones((2, 2), np.uint8))
    yield "black on white, RGB", pngwrite.encode(np.stack([inv, inv, inv], -1), 2)
    page = np.full((90, 120), 235, np.uint8)
    page[5:61, 60:116] = 235 - np.kron(img, np.ones((2, 2))) * 235 // 255
    yield "off-centre on a grey page", pngwrite.encode(page, 0)
    rgba = np.zeros(inv.shape + (4,), np.uint8)
    rgba[..., 3] = 255 - inv
    yield "black ink on a transparent canvas", pngwrite.encode(rgba, 6)
    yield "16 bits", pngwrite.encode(np.kron(img, np.ones((4, 4))).astype(np.uint32) * 257, 0, 16)
    levels = (np.kron(img, np.ones((2, 2), np.uint8)) // 16).astype(np.uint8)
    palette = [[255 - 17 * k] * 3 for k in range(16)]
    yield "4-bit palette", pngwrite.encode(levels, 3, 4, palette)
    ga = np.stack([np.full(inv.shape, 20, np.uint8), 255 - inv], -1)
    yield "grey + alpha", pngwrite.encode(ga, 4)


def real_digits(tmp, source):
    data = os.path.join(source, "data", "mnist")
    if not all(os.path.exists(os.path.join(data, n)) or os.path.exists(os.path.join(data, n + ".gz"))
               for n in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")):
        print("test_predict: MNIST is not in data/mnist (tools/fetch-mnist): skipped")
        sys.exit(77)
    model = train(data, os.path.join(tmp, "run"), "--epochs", "2", "--validation-split", "0.8")
    images = os.path.join(data, "t10k-images-idx3-ubyte")
    images = images if os.path.exists(images) else images + ".gz"
    r = predict("--json", "--model", model, images)
    got = [json.loads(line) for line in r.stdout.splitlines()]
    check(r.returncode == 0 and len(got) == 10000, f"the test images: {r.stderr}")
    confident = [g for g in got if g["top"][0]["probability"] > 0.99][:60]
    sure = confident[:30]
    x = read_idx(images)
    files, want = [], []
    for g in sure:
        for name, data_ in variants(x[g["item"]]):
            path = os.path.join(tmp, f"{g['item']}-{len(files)}.png")
            with open(path, "wb") as f:
                f.write(data_)
            files.append(path)
            want.append((g["class"], name, g["item"]))
    r = predict("--json", "--model", model, *files)
    check(r.returncode == 0, f"the drawn digits: {r.stderr}")
    got = [json.loads(line) for line in r.stdout.splitlines()]
    check(len(got) == len(files), "one verdict per drawn digit")
    counts = {}
    for g, (cls, name, item) in zip(got, want):
        counts.setdefault(name, [0, 0])
        counts[name][1] += 1
        if g["class"] == cls:
            counts[name][0] += 1
        else:
            check(False, f"test image {item} as '{name}': {g['class']}, the original {cls}")
    for name, (same, n) in counts.items():
        print(f"{name}: {same} of {n} as the original")
    photos(tmp, model, x, confident)


def photos(tmp, model, x, sure):
    """Photo-like pictures (tests/photogen.py: light falling by 40 levels,
    a corner in a 40% shadow, sensor noise, as PNG and, with PIL, as JPEG):
    at least 9 in 10 get the class the model gives the original."""
    rng = np.random.default_rng(26)
    files = []
    try:
        from PIL import Image
    except ImportError:
        Image = None
        print("test_predict: PIL is not installed (python3-pil): the photos are PNG only")
    for k, g in enumerate(sure):
        picture = photogen.photo(x[g["item"]], rng)
        path = os.path.join(tmp, f"photo-{k}")
        if Image is not None and k % 2:
            Image.fromarray(picture).save(path + ".jpg", quality=85)
            files.append(path + ".jpg")
        else:
            with open(path + ".png", "wb") as f:
                f.write(pngwrite.encode(picture, 2))
            files.append(path + ".png")
    r = predict("--json", "--model", model, *files)
    check(r.returncode == 0, f"the photos: {r.stderr}")
    got = [json.loads(line) for line in r.stdout.splitlines()]
    same = sum(p["class"] == g["class"] for p, g in zip(got, sure))
    print(f"photos under uneven light: {same} of {len(sure)} as the original")
    check(len(got) == len(sure) and 10 * same >= 9 * len(sure),
          f"photos under uneven light: only {same} of {len(sure)} as the original")


with tempfile.TemporaryDirectory() as tmp:
    if MNIST:
        real_digits(tmp, sys.argv[3])
    else:
        generated(tmp)
finish("test_predict" + (" (MNIST)" if MNIST else ""))
