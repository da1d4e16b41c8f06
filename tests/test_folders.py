#!/usr/bin/env python3
"""A user's own pictures: folders of PNG and JPEG files with class names,
CIFAR-10's binary batches, and IDX files with --class-names.

The pictures are written with PIL, and every image the trainer reads is
checked against PIL's decoding of the same file (through `trainer dataset
--to-idx`, read back by numpy): grey and colour, resized (a numpy
transcription of TensorFlow's half-pixel bilinear resize), turned by each
EXIF orientation.  Training on a folder and on its IDX conversion gives the
same model.ckpt; the class names reach the summary, the Data line, predict
(text and JSON) and a resumed run; wrong folders, pictures and files are
named in one line with status 1."""
import json
import os
import shutil
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
    from PIL import Image, ImageOps
except ImportError as e:
    print(f"test_folders: {e.name} is not installed (python3-numpy, python3-pil): "
          f"skipped {interpreter_hint()}")
    sys.exit(77)

TRAINER = os.path.abspath(sys.argv[1])
PLOT = os.path.abspath(sys.argv[2])
# In the order of their bytes, as the trainer (and Python's sorted) takes
# the folders: "émile" (0xC3 0xA9) after "lynx".
NAMES = sorted(["cat", "dog", "émile", "fish", "gnu", "hen", "ibis", "jay", "koi", "lynx"])
SIDE = 24  # not 28x28 grey: predict resizes pictures for these models


def run(*args, cwd=None):
    return subprocess.run([TRAINER, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    nd = data[3]
    dims = struct.unpack(">" + "I" * nd, data[4:4 + 4 * nd])
    return np.frombuffer(data[4 + 4 * nd:], np.uint8).reshape(dims)


def write_folder(root, n, seed, every_jpeg=5):
    """mnistgen's learnable images as PNG files (and every every_jpeg-th as a
    JPEG) in one folder per class; returns {file: (label, PIL's pixels)}."""
    pixels, labels = mnistgen.make(n, rows=SIDE, cols=SIDE, seed=seed)
    written = {}
    for i in range(n):
        img = np.frombuffer(bytes(pixels[i * SIDE * SIDE:(i + 1) * SIDE * SIDE]),
                            np.uint8).reshape(SIDE, SIDE)
        folder = os.path.join(root, NAMES[labels[i]])
        os.makedirs(folder, exist_ok=True)
        name = os.path.join(folder, f"{i:04d}." + ("jpg" if i % every_jpeg == 3 else "png"))
        Image.fromarray(img).save(name, quality=95)
        written[name] = (labels[i], np.asarray(Image.open(name).convert("L")))
    return written


def as_multiset(images, labels):
    return sorted((int(lb), im.tobytes()) for im, lb in zip(images, labels))


def check_folder_training(tmp):
    data = os.path.join(tmp, "pets")
    train = write_folder(os.path.join(data, "train"), 400, 1)
    test = write_folder(os.path.join(data, "test"), 100, 2)
    for where in ("train/cat/notes.txt", "test/notes.txt"):
        with open(os.path.join(data, where), "w") as f:
            f.write("not a picture\n")
    os.makedirs(os.path.join(data, "train", "dog", "more"))  # nested, empty
    shutil.copy(next(p for p in train if "/dog/" in p and p.endswith(".png")),
                os.path.join(data, "train", "dog", "more", "deep.PNG"))
    idx = os.path.join(tmp, "pets-idx")
    shown = os.path.join(tmp, "classes.png")
    r = run("dataset", data, "--to-idx", idx, "--show", shown)
    if r.returncode == 0:
        # A row of ten a class: 44 pixels of title, then tiles of 84 // SIDE
        # times the side with 40 pixels of caption and padding.
        rows = (Image.open(shown).height - 44) / (SIDE * (84 // SIDE) + 40)
        check(rows == len(NAMES), f"--show: {rows} rows for {len(NAMES)} classes")
    check(r.returncode == 0, f"trainer dataset --to-idx: {r.stderr}")
    check(f"{SIDE}x{SIDE}, 1 channel (grey)" in r.stdout, f"dataset: the shape: {r.stdout}")
    check("Training: 401 images; test: 100 images; 2 other files left out" in r.stdout,
          f"dataset: the counts: {r.stdout}")
    want_train = [(lb, im) for lb, im in train.values()]
    want_train.append(want_train[[p for p in train].index(
        next(p for p in train if "/dog/" in p and p.endswith(".png")))])
    for k, name in enumerate(NAMES):
        n_tr = sum(1 for lb, _ in want_train if lb == k)
        n_te = sum(1 for lb, _ in test.values() if lb == k)
        check(any(line.split()[:4] == [str(k), name, str(n_tr), str(n_te)]
                  for line in r.stdout.splitlines()),
              f"dataset: class {k} {name} {n_tr} {n_te}: {r.stdout}")
    if r.returncode != 0:
        return
    got = read_idx(os.path.join(idx, "train-images-idx3-ubyte"))
    got_lb = read_idx(os.path.join(idx, "train-labels-idx1-ubyte"))
    check(as_multiset(got, got_lb) == as_multiset([im for _, im in want_train],
                                                  [lb for lb, _ in want_train]),
          "the training images and labels are PIL's decoding of the files")
    check(sorted(got_lb.tolist()) != got_lb.tolist(),
          "the files are shuffled (a validation split takes every class)")
    got = read_idx(os.path.join(idx, "t10k-images-idx3-ubyte"))
    got_lb = read_idx(os.path.join(idx, "t10k-labels-idx1-ubyte"))
    check(as_multiset(got, got_lb) == as_multiset([im for _, im in test.values()],
                                                  [lb for lb, _ in test.values()]),
          "the test images and labels are PIL's decoding of the files")
    with open(os.path.join(idx, "class-names.txt"), encoding="utf-8") as f:
        check(f.read().split("\n")[:-1] == NAMES, "class-names.txt")

    a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
    ra = run("--data", data, "--epochs", "3", "--no-plots", "--out", a)
    rb = run("--data", idx, "--epochs", "3", "--no-plots", "--out", b)
    check(ra.returncode == 0 and rb.returncode == 0, f"training: {ra.stderr} {rb.stderr}")
    if ra.returncode or rb.returncode:
        return
    with open(os.path.join(a, "model.ckpt"), "rb") as f, \
            open(os.path.join(b, "model.ckpt"), "rb") as g:
        check(f.read() == g.read(), "a folder and its IDX conversion train the same bits")
    ck = trainerfiles.read_ckpt(os.path.join(a, "model.ckpt"))
    check(ck["class_names"] == NAMES and ck["fit"] == 1,
          f"model.ckpt's classes: {ck['class_names']}, fit {ck['fit']}")
    st = trainerfiles.read_state(os.path.join(a, "training.state"))
    with open(os.path.join(idx, "train-images-idx3-ubyte"), "rb") as f, \
            open(os.path.join(idx, "train-labels-idx1-ubyte"), "rb") as g:
        crc = zlib.crc32(f.read() + g.read())
    check(st["class_names"] == NAMES and st["data_dir"] == os.path.realpath(data) and
          st["fingerprint"] == crc, f"training.state: {st['data_dir']} {st['fingerprint']:08x} "
          f"against the IDX files' {crc:08x}")
    check("10 classes (cat, dog, fish, gnu" in ra.stdout and
          "2 other files left out" in ra.stdout, f"the Data line: {ra.stdout}")
    check("Classes: 0 cat, 1 dog, 2 fish" in ra.stdout and "9 émile" in ra.stdout,
          f"the summary's classes: {ra.stdout}")
    acc = [float(line.split("test accuracy: ")[1].split()[0])
           for line in ra.stdout.splitlines() if "test accuracy" in line]
    check(acc and acc[0] > 0.9, f"the folder trains: {acc}")
    check(any(line.startswith("Test image 1: predicted ") and
              any(n in line.split("predicted ")[1] for n in NAMES)
              for line in ra.stdout.splitlines()), f"names in the test line: {ra.stdout}")

    # predict names the classes, in text and JSON.
    pick = [p for p in test if p.endswith(".jpg")][:2] + [p for p in test if p.endswith(".png")][:2]
    model = os.path.join(a, "model.ckpt")
    r = run("predict", "--model", model, *pick)
    check(r.returncode == 0, f"predict: {r.stderr}")
    right = sum(1 for line, p in zip(r.stdout.splitlines(), pick)
                if line.split(": ")[1].split()[0] == NAMES[test[p][0]])
    check(right >= 3, f"predict names the classes: {r.stdout}")
    # A larger picture is resized to the model's input, as the folder's were.
    big = os.path.join(tmp, "big.png")
    Image.open(pick[2]).resize((3 * SIDE, 3 * SIDE), Image.NEAREST).save(big)
    r = run("predict", "--model", model, big)
    check(r.returncode == 0 and r.stdout.split(": ")[1].split()[0] == NAMES[test[pick[2]][0]],
          f"predict resizes a larger picture: {r.stdout} {r.stderr}")
    r = run("predict", "--json", "--model", model, pick[0])
    try:
        j = json.loads(r.stdout)
        check(j["class"] in NAMES and NAMES[j["index"]] == j["class"] and
              j["top"][0]["class"] == j["class"], f"predict --json: {r.stdout}")
    except (ValueError, KeyError) as e:
        check(False, f"predict --json: {e}: {r.stdout}")

    # trainer-plot reads the folder's test set, and the matrix has the names.
    for what in ("confusion", "predictions"):
        out = os.path.join(tmp, f"{what}.png")
        r = subprocess.run([PLOT, what, "--model", model, "--data", data, "-o", out],
                           capture_output=True, text=True, timeout=300)
        check(r.returncode == 0 and os.path.getsize(out) > 1000,
              f"trainer-plot {what} on a folder: {r.stderr}")
    plain = os.path.join(tmp, "plain.png")
    mnistgen.write_dataset(os.path.join(tmp, "digits"), 100, 40)
    r = run("--data", os.path.join(tmp, "digits"), "--epochs", "1", "--no-plots",
            "--out", os.path.join(tmp, "digits-run"))
    r = subprocess.run([PLOT, "confusion", "--model", os.path.join(tmp, "digits-run", "model.ckpt"),
                        "--data", os.path.join(tmp, "digits"), "-o", plain],
                       capture_output=True, text=True, timeout=300)
    if r.returncode == 0:
        named, unnamed = Image.open(os.path.join(tmp, "confusion.png")), Image.open(plain)
        check(named.width > unnamed.width and named.height > unnamed.height,
              f"the named matrix makes room for the names: {named.size} against {unnamed.size}")
    else:
        check(False, f"trainer-plot confusion on IDX: {r.stderr}")

    # The names travel into the exports' metadata.
    st_path, onnx_path = os.path.join(tmp, "m.safetensors"), os.path.join(tmp, "m.onnx")
    r = run("export", "--model", model, "--safetensors", st_path, "--onnx", onnx_path)
    check(r.returncode == 0, f"export: {r.stderr}")
    if r.returncode == 0:
        with open(st_path, "rb") as f:
            size = struct.unpack("<Q", f.read(8))[0]
            meta = json.loads(f.read(size))["__metadata__"]
        check(json.loads(meta.get("trainer.class_names", "null")) == NAMES,
              f"safetensors' class names: {meta}")
        try:
            import onnx
            props = {p.key: p.value for p in onnx.load(onnx_path).metadata_props}
            check(json.loads(props.get("class_names", "null")) == NAMES and
                  "resized" in props.get("preprocessing", ""), f"ONNX's metadata: {props}")
        except ImportError:
            print("the ONNX metadata not checked: python3-onnx is not installed")

    # A resumed run finds the folders again and continues bit for bit.
    c = os.path.join(tmp, "c")
    r1 = run("--data", data, "--epochs", "2", "--no-plots", "--out", c)
    r2 = run("--resume", c, "--epochs", "3", "--no-plots", cwd=tmp)
    check(r1.returncode == 0 and r2.returncode == 0, f"resume: {r1.stderr} {r2.stderr}")
    with open(os.path.join(a, "model.ckpt"), "rb") as f, \
            open(os.path.join(c, "model.ckpt"), "rb") as g:
        check(f.read() == g.read(), "a resumed folder run ends as the run that did not stop")


def tf_resize(img, h, w):
    """TensorFlow's bilinear resize, half-pixel centres, no antialiasing."""
    ih, iw = img.shape[:2]
    def taps(n, m):
        at = (np.arange(n, dtype=np.float32) + np.float32(0.5)) * np.float32(m / n) - np.float32(0.5)
        lo = np.floor(at)
        return (np.clip(lo, 0, m - 1).astype(int), np.clip(np.ceil(at), 0, m - 1).astype(int),
                (at - lo).astype(np.float32))
    y0, y1, fy = taps(h, ih)
    x0, x1, fx = taps(w, iw)
    f = img.astype(np.float32)
    top = f[y0][:, x0] + (f[y0][:, x1] - f[y0][:, x0]) * fx[None, :, None]
    bot = f[y1][:, x0] + (f[y1][:, x1] - f[y1][:, x0]) * fx[None, :, None]
    return top + (bot - top) * fy[:, None, None]


def check_resize_and_colour(tmp):
    rnd = np.random.default_rng(5)
    data = os.path.join(tmp, "sizes")
    want = []
    for k, (h, w) in enumerate([(30, 20), (41, 41), (9, 50), (16, 12)]):
        os.makedirs(os.path.join(data, f"c{k}"))
        img = rnd.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(img).save(os.path.join(data, f"c{k}", "x.png"))
        want.append((k, img))
    out = os.path.join(tmp, "sizes-idx")
    r = run("dataset", data, "--image-size", "16x12", "--to-idx", out)
    check(r.returncode == 0 and "16x12, 3 channels (RGB)" in r.stdout,
          f"resize: {r.stdout} {r.stderr}")
    if r.returncode == 0:
        got, lb = read_idx(os.path.join(out, "train-images-idx3-ubyte")), \
            read_idx(os.path.join(out, "train-labels-idx1-ubyte"))
        for k, img in want:
            ref = np.clip(np.rint(tf_resize(img, 16, 12)), 0, 255)
            diff = np.abs(got[list(lb).index(k)].astype(int) - ref.astype(int)).max()
            check(diff <= 1, f"class {k}: bilinear resize differs by {diff} from TensorFlow's")
    r = run("dataset", data, "--image-size", "8x8", "--color", "grayscale", "--to-idx", out)
    if r.returncode == 0:
        got, lb = read_idx(os.path.join(out, "train-images-idx3-ubyte")), \
            read_idx(os.path.join(out, "train-labels-idx1-ubyte"))
        k, img = want[1]
        grey = (img[..., 0].astype(int) * 299 + img[..., 1].astype(int) * 587 +
                img[..., 2].astype(int) * 114 + 500) // 1000
        ref = np.clip(np.rint(tf_resize(grey[..., None].astype(np.uint8), 8, 8)[..., 0]), 0, 255)
        diff = np.abs(got[list(lb).index(k)].astype(int) - ref).max()
        check(got.ndim == 3 and diff <= 1, f"grayscale then resize: differs by {diff}")
    r = run("dataset", data)
    check(r.returncode == 1 and "(all pictures must have one size, or give --image-size HxW)"
          in r.stderr and ".png: " in r.stderr and r.stderr.count("\n") == 1,
          f"pictures of several sizes: {r.stderr}")

    # Grey unless a picture has colour, wherever it comes in the order.
    grey = os.path.join(tmp, "grey")
    for k in range(2):
        os.makedirs(os.path.join(grey, f"g{k}"))
        for i in range(6):
            v = rnd.integers(0, 256, (5, 5), dtype=np.uint8)
            Image.fromarray(np.stack([v] * 3, -1)).save(os.path.join(grey, f"g{k}", f"{i}.png"))
    r = run("dataset", grey)
    check("5x5, 1 channel (grey)" in r.stdout, f"grey RGB files are grey: {r.stdout}")
    Image.fromarray(rnd.integers(0, 256, (5, 5, 3), dtype=np.uint8)).save(
        os.path.join(grey, "g1", "colour.png"))
    for seed in ("0", "1", "2"):
        r = run("dataset", grey, "--seed", seed)
        check("5x5, 3 channels (RGB)" in r.stdout, f"one colour picture: RGB: {r.stdout}")


def check_exif(tmp):
    data = os.path.join(tmp, "turned")
    rnd = np.random.default_rng(6)
    img = np.zeros((16, 16, 3), np.uint8)
    img[2:6, 3:13] = (250, 20, 20)
    img[8:15, 1:4] = (20, 250, 20)
    img[10:12, 9:15] = (20, 20, 250)
    img += rnd.integers(0, 5, img.shape, dtype=np.uint8)
    want = {}
    for o in range(1, 9):
        os.makedirs(os.path.join(data, f"o{o}"))
        path = os.path.join(data, f"o{o}", "p.jpg")
        exif = Image.Exif()
        exif[0x0112] = o
        Image.fromarray(img).save(path, quality=100, exif=exif.tobytes())
        want[o - 1] = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    out = os.path.join(tmp, "turned-idx")
    r = run("dataset", data, "--color", "rgb", "--to-idx", out)
    check(r.returncode == 0, f"EXIF: {r.stderr}")
    if r.returncode == 0:
        got, lb = read_idx(os.path.join(out, "train-images-idx3-ubyte")), \
            read_idx(os.path.join(out, "train-labels-idx1-ubyte"))
        for k, ref in want.items():
            diff = np.abs(got[list(lb).index(k)].astype(int) - ref.astype(int)).max()
            check(diff == 0, f"EXIF orientation {k + 1}: differs from PIL's by {diff}")
    # A damaged JPEG is named, not half decoded.
    with open(os.path.join(data, "o1", "p.jpg"), "rb") as f:
        whole = f.read()
    with open(os.path.join(data, "o2", "cut.jpg"), "wb") as f:
        f.write(whole[:len(whole) // 2])
    r = run("dataset", data)
    check(r.returncode == 1 and "cut.jpg: not a readable JPEG file" in r.stderr and
          r.stderr.count("\n") == 1, f"a truncated JPEG: {r.stderr}")
    # Progressive and grey JPEGs.
    prog = os.path.join(tmp, "prog")
    os.makedirs(os.path.join(prog, "a"))
    os.makedirs(os.path.join(prog, "b"))
    Image.fromarray(img).save(os.path.join(prog, "a", "p.jpg"), quality=90, progressive=True)
    Image.fromarray(img[..., 1]).save(os.path.join(prog, "b", "g.jpg"), quality=90)
    r = run("dataset", prog, "--to-idx", out)
    if r.returncode == 0:
        got, lb = read_idx(os.path.join(out, "train-images-idx3-ubyte")), \
            read_idx(os.path.join(out, "train-labels-idx1-ubyte"))
        ref = np.asarray(Image.open(os.path.join(prog, "a", "p.jpg")).convert("RGB"))
        check(np.array_equal(got[list(lb).index(0)], ref), "a progressive JPEG")
        ref = np.asarray(Image.open(os.path.join(prog, "b", "g.jpg")).convert("RGB"))
        check(np.array_equal(got[list(lb).index(1)], ref), "a grey JPEG in an RGB set")
    else:
        check(False, f"progressive and grey JPEGs: {r.stderr}")


def write_cifar(root, n_per_batch, seed, names):
    """CIFAR-10's binary format: a label byte, then the red, green and blue
    planes of 32x32; class k lights row 3k of channel k % 3."""
    rnd = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    everything = []
    for name in [f"data_batch_{b}.bin" for b in range(1, 6)] + ["test_batch.bin"]:
        labels = rnd.integers(0, 10, n_per_batch)
        planes = rnd.integers(0, 60, (n_per_batch, 3, 32, 32), dtype=np.uint8)
        for i, k in enumerate(labels):
            planes[i, k % 3, 3 * k] = 220
        recs = np.concatenate([labels.astype(np.uint8)[:, None],
                               planes.reshape(n_per_batch, -1)], axis=1)
        with open(os.path.join(root, name), "wb") as f:
            f.write(recs.tobytes())
        everything.append((name, labels, planes))
    with open(os.path.join(root, "batches.meta.txt"), "w") as f:
        f.write("\n".join(names) + "\n\n")
    return everything


def check_cifar(tmp):
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
             "ship", "truck"]
    data = os.path.join(tmp, "cifar-10-batches-bin")
    batches = write_cifar(data, 60, 7, names)
    out = os.path.join(tmp, "cifar-idx")
    r = run("dataset", data, "--to-idx", out)
    check(r.returncode == 0 and "CIFAR-10" in r.stdout and "32x32, 3 channels (RGB)" in r.stdout
          and "Training: 300 images; test: 60 images" in r.stdout, f"CIFAR-10: {r.stdout} {r.stderr}")
    if r.returncode == 0:
        got = read_idx(os.path.join(out, "train-images-idx3-ubyte"))
        lb = read_idx(os.path.join(out, "train-labels-idx1-ubyte"))
        want = np.concatenate([p for _, _, p in batches[:5]]).transpose(0, 2, 3, 1)
        want_lb = np.concatenate([b for _, b, _ in batches[:5]])
        check(np.array_equal(got, want) and np.array_equal(lb, want_lb),
              "CIFAR-10's planes become pixels of three channels, in file order")
    r = run("--data", data, "--epochs", "2", "--no-plots", "--out", os.path.join(tmp, "co"),
            "--layers", "conv2d(8,3,relu),maxpool2d(2),flatten,dense(10,softmax)")
    check(r.returncode == 0 and "images of 32x32x3, 10 classes (airplane, automobile" in r.stdout
          and "Classes: 0 airplane, 1 automobile" in r.stdout, f"training on CIFAR-10: {r.stdout} {r.stderr}")
    # A label past the names is named with its record.
    with open(os.path.join(data, "data_batch_3.bin"), "r+b") as f:
        f.seek(5 * 3073)
        f.write(bytes([12]))
    r = run("dataset", data)
    check(r.returncode == 1 and "data_batch_3.bin: record 6 has label 12" in r.stderr,
          f"a bad CIFAR-10 label: {r.stderr}")
    with open(os.path.join(data, "data_batch_3.bin"), "r+b") as f:
        f.seek(5 * 3073)
        f.write(bytes([2]))
    with open(os.path.join(data, "data_batch_4.bin"), "ab") as f:
        f.write(b"\0" * 10)
    r = run("dataset", data)
    check(r.returncode == 1 and "not a whole number of CIFAR-10 records" in r.stderr,
          f"a cut CIFAR-10 batch: {r.stderr}")


def check_idx_names_and_errors(tmp):
    data = os.path.join(tmp, "idx")
    mnistgen.write_dataset(data, 300, 50)
    names = os.path.join(tmp, "names.txt")
    with open(names, "w") as f:
        f.write("\n".join(NAMES) + "\n")
    r = run("--data", data, "--class-names", names, "--epochs", "1", "--no-plots",
            "--out", os.path.join(tmp, "io"))
    check(r.returncode == 0 and "10 classes (cat, dog" in r.stdout and "Classes: 0 cat" in r.stdout,
          f"--class-names: {r.stdout} {r.stderr}")
    with open(names, "w") as f:
        f.write("a\nb\nc\n")
    r = run("--data", data, "--class-names", names, "--epochs", "1", "--no-plots",
            "--out", os.path.join(tmp, "io"))
    check(r.returncode == 1 and "3 class names, but" in r.stderr, f"too few names: {r.stderr}")
    with open(names, "w") as f:
        f.write("a\n\nc\n")
    r = run("dataset", data, "--class-names", names)
    check(r.returncode == 1 and "class name 2 is empty" in r.stderr, f"an empty name: {r.stderr}")

    empty = os.path.join(tmp, "flat")
    os.makedirs(empty)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(os.path.join(empty, "x.png"))
    r = run("dataset", empty)
    check(r.returncode == 1 and "no subfolders" in r.stderr, f"pictures without classes: {r.stderr}")
    r = run("dataset", os.path.join(tmp, "nowhere"))
    check(r.returncode == 1 and "nowhere: data directory not found" in r.stderr,
          f"a missing folder: {r.stderr}")

    # A test folder with a class the training data lacks; a folder alone.
    pets = os.path.join(tmp, "few")
    write_folder(os.path.join(pets, "train"), 60, 3)
    write_folder(os.path.join(pets, "test"), 20, 4)
    os.makedirs(os.path.join(pets, "test", "zebra"))
    r = run("dataset", pets)
    check(r.returncode == 1 and "zebra: a class the training data does not have" in r.stderr,
          f"an unknown test class: {r.stderr}")
    r = run("--data", os.path.join(pets, "train"), "--epochs", "1", "--no-plots",
            "--out", os.path.join(tmp, "alone"))
    check(r.returncode == 0 and "no test set" in r.stdout and "Test loss" not in r.stdout,
          f"a folder without a test set: {r.stdout} {r.stderr}")
    r = run("--data", os.path.join(pets, "train"), "--test-data", os.path.join(pets, "train"),
            "--epochs", "1", "--no-plots", "--out", os.path.join(tmp, "alone"))
    check(r.returncode == 0 and "60 test images" in r.stdout, f"--test-data: {r.stdout} {r.stderr}")
    for flag, value in (("--image-size", "0x3"), ("--image-size", "12x"),
                        ("--color", "cmyk")):
        r = run("--data", pets, flag, value)
        check(r.returncode == 2 and flag in r.stderr, f"{flag} {value}: {r.stderr}")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        check_folder_training(tmp)
        check_resize_and_colour(tmp)
        check_exif(tmp)
        check_cifar(tmp)
        check_idx_names_and_errors(tmp)
    finish("test_folders")


main()
