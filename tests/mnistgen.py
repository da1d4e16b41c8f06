"""Writes small MNIST-format datasets for the program-level tests.

Each class lights its own row of the image (plus noise), so a small MLP learns
it in a few epochs; the files are real IDX, plain or gzipped."""
import gzip
import os
import random
import struct


def idx_bytes(dims, items):
    header = bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return header + bytes(items)


def make(n, rows=28, cols=28, seed=1, classes=10, channels=1):
    """Class k lights row k * rows // classes (of channel k % channels)."""
    rnd = random.Random(seed)
    pixels, labels = bytearray(), bytearray()
    for _ in range(n):
        label = rnd.randrange(classes)
        img = bytearray(rnd.randrange(120) if rnd.randrange(4) == 0 else 0
                        for _ in range(rows * cols * channels))
        row = label * rows // classes
        for x in range(cols):
            img[(row * cols + x) * channels + label % channels] = 200 + rnd.randrange(56)
        pixels += img
        labels.append(label)
    return pixels, labels


def write_pair(directory, images_name, labels_name, n, seed, gz, rows=28, cols=28,
               classes=10, channels=1):
    pixels, labels = make(n, rows, cols, seed, classes, channels)
    dims = [n, rows, cols] + ([channels] if channels > 1 else [])
    for name, data in ((images_name, idx_bytes(dims, pixels)),
                       (labels_name, idx_bytes([n], labels))):
        path = os.path.join(directory, name + (".gz" if gz else ""))
        opener = gzip.open if gz else open
        with opener(path, "wb") as f:
            f.write(data)


def write_dataset(directory, n_train=1000, n_test=200, gz_train=True, gz_test=False):
    os.makedirs(directory, exist_ok=True)
    write_pair(directory, "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               n_train, 1, gz_train)
    write_pair(directory, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
               n_test, 2, gz_test)
