#!/usr/bin/env python3
"""The augmentation layers (random_translation, random_rotation,
random_zoom) through tests/augment_probe, against this file's numpy
transcription of Keras 3's transforms: the factors' meaning, the affine
matrices of RandomTranslation, RandomRotation (about the centre (w - 1) / 2,
(h - 1) / 2) and RandomZoom, TensorFlow's bilinear sampling and its reflect
and constant fill modes; the draws from docs/model.md's description of the
generator (splitmix64 of seed, layer, epoch, step and the sample's place).
Also: inference passes the images through; the backward pass is the
sampling's transpose (<dy, T x> = <T' dy, x>); another step draws other
maps."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import check, finish, interpreter_hint  # noqa: E402

try:
    import numpy as np
except ImportError:
    print(f"test_augment: numpy is not installed (python3-numpy): skipped"
          f" {interpreter_hint()}")
    sys.exit(77)

PROBE = sys.argv[1]
MASK = (1 << 64) - 1
f32 = np.float32


def mix(x):
    """splitmix64's step and mix."""
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def draws(seed, epoch, step, sample):
    """The layer's two uniforms in [-1, 1) for one sample (layer index 0)."""
    stream = mix(seed) ^ (3000000 + 0)
    key = mix(mix(stream) ^ (epoch << 40) ^ step)
    h = mix(key ^ sample)
    return f32(h >> 40) / f32(2 ** 23) - f32(1), f32((h >> 16) & 0xFFFFFF) / f32(2 ** 23) - f32(1)


def keras_matrix(kind, factors, u, v, h, w):
    """[a0, a1, a2, b0, b1, b2] of Keras' transform for the draws."""
    h, w = f32(h), f32(w)
    if kind == "random_translation":
        dy, dx = u * f32(factors[0]) * h, v * f32(factors[1]) * w
        return [f32(1), f32(0), -dx, f32(0), f32(1), -dy]
    if kind == "random_rotation":
        angle = float(u * f32(factors[0])) * 2.0 * np.pi
        c, s = f32(np.cos(angle)), f32(np.sin(angle))
        x_off = ((w - f32(1)) - (c * (w - f32(1)) - s * (h - f32(1)))) / f32(2)
        y_off = ((h - f32(1)) - (s * (w - f32(1)) + c * (h - f32(1)))) / f32(2)
        return [c, -s, x_off, s, c, y_off]
    zy = f32(1) + u * f32(factors[0])
    zx = f32(1) + v * f32(factors[1]) if len(factors) > 1 else zy
    return [zx, f32(0), (w - f32(1)) / f32(2) * (f32(1) - zx), f32(0), zy,
            (h - f32(1)) / f32(2) * (f32(1) - zy)]


def reflect(x, n):
    """TensorFlow's map_coordinate for REFLECT (d c b a | a b c d | d c b a)."""
    if n <= 1:
        return f32(0)
    sz2 = f32(2 * n)
    if x < 0:
        if x < -sz2:
            x = sz2 * f32(int(-x / sz2)) + x
        x = x + sz2 if x < -n else -x - f32(1)
    elif x > n - 1:
        x = x - sz2 * f32(int(x / sz2))
        if x >= n:
            x = sz2 - x - f32(1)
    return f32(min(max(x, 0), n - 1))


def transform(img, m, fill):
    """TensorFlow's ImageProjectiveTransform, bilinear: [h][w][c] float32."""
    h, w, c = img.shape
    out = np.zeros_like(img)
    for y in range(h):
        for x in range(w):
            sx = m[0] * f32(x) + m[1] * f32(y) + m[2]
            sy = m[3] * f32(x) + m[4] * f32(y) + m[5]
            if fill == "reflect":
                sx, sy = reflect(sx, w), reflect(sy, h)
            x0, y0 = np.floor(sx), np.floor(sy)

            def read(yy, xx):
                yy, xx = int(yy), int(xx)
                return img[yy, xx] if 0 <= yy < h and 0 <= xx < w else np.zeros(c, f32)
            top = (x0 + 1 - sx) * read(y0, x0) + (sx - x0) * read(y0, x0 + 1)
            bottom = (x0 + 1 - sx) * read(y0 + 1, x0) + (sx - x0) * read(y0 + 1, x0 + 1)
            out[y, x] = (y0 + 1 - sy) * top + (sy - y0) * bottom
    return out


def probe(spec, images, grads, seed, epoch, step, first, training):
    n, h, w, c = images.shape
    head = f"{spec} {h} {w} {c} {n} {seed} {epoch} {step} {first} {training}\n"
    body = " ".join(repr(float(v)) for v in images.ravel()) + "\n" + \
        " ".join(repr(float(v)) for v in grads.ravel()) + "\n"
    r = subprocess.run([PROBE], input=head + body, capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, f"{spec}: the probe failed: {r.stderr.strip()}")
    rows = [np.array(line.split(), dtype=np.float64) for line in r.stdout.splitlines()]
    return (np.array(rows[:n]).reshape(images.shape), np.array(rows[n:]).reshape(images.shape))


def parse(spec):
    kind, args = spec[:-1].split("(")
    words = args.split(",")
    fill = words[-1] if words[-1] in ("reflect", "constant") else "reflect"
    return kind, [float(a) for a in words if a not in ("reflect", "constant")], fill


def main():
    rnd = np.random.default_rng(3)
    cases = [("random_translation(0.3,0.2)", (7, 9, 2)),
             ("random_translation(0.3,0.25,constant)", (12, 10, 1)),
             ("random_rotation(0.1)", (9, 7, 2)),
             ("random_rotation(0.4,constant)", (10, 10, 1)),
             ("random_zoom(0.3)", (8, 11, 1)),
             ("random_zoom(0.2,0.5,constant)", (9, 9, 3)),
             ("random_rotation(0.03,constant)", (28, 28, 1))]
    seed, epoch, step, first = 7, 3, 11, 5
    for spec, shape in cases:
        kind, factors, fill = parse(spec)
        n = 4
        images = rnd.random((n,) + shape, dtype=np.float32)
        grads = rnd.normal(size=(n,) + shape).astype(np.float32)
        got, back = probe(spec, images, grads, seed, epoch, step, first, 1)
        want = np.stack([transform(images[s], keras_matrix(
            kind, factors, *draws(seed, epoch, step, first + s), shape[0], shape[1]), fill)
            for s in range(n)])
        err = float(np.max(np.abs(got - want)))
        moved = float(np.max(np.abs(got - images)))
        print(f"{spec} on {shape}: within {err:.2g} of numpy (moved by up to {moved:.2g})")
        check(err <= 2e-5 and moved > 1e-2, f"{spec}: {err} from numpy, moved {moved}")
        # The transpose: <dy, T x> = <T' dy, x>, sample by sample.
        for s in range(n):
            a = float(np.sum(grads[s].astype(np.float64) * got[s]))
            b = float(np.sum(back[s] * images[s].astype(np.float64)))
            check(abs(a - b) <= 1e-4 * max(1.0, abs(a)), f"{spec}: <dy, Tx> {a} vs <T'dy, x> {b}")
        # Inference passes the images through; another step draws other maps.
        same, _ = probe(spec, images, grads, seed, epoch, step, first, 0)
        check(np.array_equal(same.astype(np.float32), images), f"{spec}: inference changed them")
        other, _ = probe(spec, images, grads, seed, epoch, step + 1, first, 1)
        check(float(np.max(np.abs(other - got))) > 1e-3, f"{spec}: step {step + 1} drew the same")


if __name__ == "__main__":
    main()
    finish("test_augment")
