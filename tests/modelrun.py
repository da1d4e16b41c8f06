"""A model read by trainerfiles.read_ckpt, run by numpy in float64 as the
docs/model.md describes its layers: the tests' reference for the trainer's own
forward pass; and the IDX images it runs on."""
import gzip

import numpy as np


def read_idx(path):
    """The items of an IDX file of unsigned bytes (plain or gzip) as an array
    of the file's dimensions."""
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(data[3])]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def nchw(images):
    """Images ([n][h][w] or [n][h][w][c] bytes) as PyTorch and ONNX take them:
    float32 [n][c][h][w], each pixel / 255."""
    x = images if images.ndim == 4 else images[..., None]
    return np.ascontiguousarray((x.astype(np.float32) / np.float32(255)).transpose(0, 3, 1, 2))


def forward(model, images, training=False):
    """Logits of images ([n][rows][cols] or [n][rows][cols][channels] bytes)
    through the layers of a model read by read_ckpt, in float64,
    channels-last as docs/model.md says.  training: batch normalization uses
    the batch's statistics (the images are the batch), and the moving ones
    it would move to are kept in model["moved"]."""
    x = (images.astype(np.float32) / np.float32(255)).astype(np.float64)
    if x.ndim == 3:
        x = x[..., None]
    tensors = iter(model["tensors"])
    for kind, hp in model["layers"]:
        if kind == "dense":
            (w_shape, w), (_, b) = next(tensors), next(tensors)
            w = np.array(w, dtype=np.float32).reshape(w_shape).astype(np.float64)
            x = x.reshape(len(x), -1) @ w + np.array(b, dtype=np.float64)
            if hp["relu"]:
                x = np.maximum(x, 0.0)
        elif kind == "conv2d":
            (w_shape, w), (_, b) = next(tensors), next(tensors)
            w = np.array(w, dtype=np.float32).reshape(w_shape).astype(np.float64)
            k = hp["kernel"]
            if hp["same"]:
                p = (k - 1) // 2
                x = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
            oh, ow = x.shape[1] - k + 1, x.shape[2] - k + 1
            out = np.zeros((len(x), oh, ow, w.shape[3])) + np.array(b, dtype=np.float64)
            for ky in range(k):
                for kx in range(k):
                    out += x[:, ky:ky + oh, kx:kx + ow, :] @ w[ky, kx]
            x = np.maximum(out, 0.0) if hp["relu"] else out
        elif kind == "maxpool2d":
            p = hp["pool"]
            n, h, w_, c = x.shape
            x = x[:, :h // p * p, :w_ // p * p, :].reshape(n, h // p, p, w_ // p, p, c)
            x = x.max(axis=(2, 4))
        elif kind == "flatten":
            x = x.reshape(len(x), -1)
        elif kind == "relu":
            x = np.maximum(x, 0.0)
        elif kind == "batchnorm":
            # Keras' BatchNormalization on the last axis, epsilon 1e-3; in
            # training the batch's mean and biased variance, and the moving
            # statistics move by 1 - momentum 0.99 towards them.
            gamma, beta, mean, var = (np.array(next(tensors)[1], dtype=np.float64)
                                      for _ in range(4))
            if training:
                axes = tuple(range(x.ndim - 1))
                moved = (0.99 * mean + 0.01 * x.mean(axis=axes),
                         0.99 * var + 0.01 * x.var(axis=axes))
                model.setdefault("moved", []).append(moved)
                mean, var = x.mean(axis=axes), x.var(axis=axes)
            x = (x - mean) / np.sqrt(var + 1e-3) * gamma + beta
    return x.reshape(len(x), -1)
