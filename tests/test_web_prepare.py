#!/usr/bin/env python3
"""The drawing page's preparation (tools/web/prepare.js, run by Node) against
`trainer predict`'s (image.c): the same 28x28 bytes, and before they are
rounded to bytes the same float32 field to the last bit (image_field, through
tests/prepare_probe), for
pictures drawn by this test: anti-aliased strokes of every width at many
sizes, black on white, white on black, coloured ink on a noisy grey page,
ink on a transparent canvas, half-transparent pixels, thin and tiny
pictures, photos of an evenly lit page and close crops of wide strokes
(which trainer must not take for unevenly lit pages), a model with a field of another shape; and blank pages refused by
both.  Skipped (77) without numpy or Node."""
import base64
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
PROBE = os.path.abspath(sys.argv[2])
SOURCE = sys.argv[3]

try:
    import numpy as np
    import photogen
    import pngwrite
    from modelrun import read_idx
except ImportError as e:
    print(f"test_web_prepare: {e.name} is not installed (python3-numpy): skipped"
          f" {interpreter_hint()}")
    sys.exit(77)
if not shutil.which("node"):
    print("test_web_prepare: Node.js is not installed (apt-get install nodejs): skipped")
    sys.exit(77)


def strokes(rng, w, h, width):
    """Ink in [0, 1] of a few random anti-aliased strokes: each pixel's
    coverage by a capsule around a segment, a pixel wide of soft edge."""
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    ink = np.zeros((h, w))
    for _ in range(rng.integers(1, 4)):
        (x0, x1), (y0, y1) = rng.uniform(0.1, 0.9, 2) * w, rng.uniform(0.1, 0.9, 2) * h
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
        d = np.hypot(xx - x0 - t * dx, yy - y0 - t * dy)
        ink = np.maximum(ink, np.clip(width / 2 + 0.5 - d, 0, 1))
    return ink


def pictures(rng):
    """(name, RGBA [h][w][4] uint8) pairs."""
    for k in range(120):
        w, h = int(rng.integers(20, 300)), int(rng.integers(20, 300))
        ink = strokes(rng, w, h, rng.uniform(1, max(2, min(w, h) / 8)))
        kind = k % 6
        rgba = np.full((h, w, 4), 255, np.uint8)
        if kind == 0:  # black on white, as the page's pad
            rgba[..., :3] = np.round(255 * (1 - ink))[..., None]
        elif kind == 1:  # white on black, as MNIST
            rgba[..., :3] = np.round(255 * ink)[..., None]
        elif kind == 2:  # blue ink on a noisy grey page
            page = 200 + rng.integers(-12, 13, (h, w, 1))
            rgba[..., :3] = np.clip(np.round(page * (1 - ink[..., None]) +
                                             ink[..., None] * np.array([30, 40, 160])), 0, 255)
        elif kind == 3:  # black ink on a transparent canvas
            rgba[...] = 0
            rgba[..., 3] = np.round(255 * ink)
        elif kind == 4:  # half-transparent coloured pixels over everything
            rgba[..., :3] = rng.integers(0, 256, (h, w, 3))
            rgba[..., 3] = np.round(255 * ink * rng.uniform(0.3, 1))
        else:  # grey ink of varying strength on a light page with a dark frame
            rgba[..., :3] = np.round(240 - 200 * ink * rng.uniform(0.5, 1))[..., None]
            rgba[:2, :, :3] = 10
        yield f"strokes-{k}-{kind}", rgba
    thin = np.full((6, 300, 4), 255, np.uint8)
    thin[2:4, 10:290, :3] = 0
    yield "a thin line", thin
    dot = np.full((1, 1, 4), 255, np.uint8)
    dot[..., 3] = 255
    dot[..., :3] = 0
    yield "one pixel", np.concatenate([np.full((1, 1, 4), 255, np.uint8), dot], 1)
    # Ink whose centre of mass is half a pixel right of the field's centre
    # (5 pixels at x = 0.5, 14 at 19.5: 14.5): C rounds the shift of -0.5
    # away from zero, as the page must (Math.round would not).
    half = np.full((20, 20, 4), 255, np.uint8)
    half[0:5, 0, :3] = 0
    half[0:14, 19, :3] = 0
    yield "a centre of mass on a half pixel", half
    # Photos of digits on an evenly lit page, with the sensor's noise: one
    # page level, as before pages were flattened (the page's port never
    # flattens, so equal bytes are today's bytes).
    for k in range(6):
        digit = np.clip(255 * strokes(rng, 28, 28, 2.5), 0, 255)
        photo = photogen.photo(digit, rng, gradient=0.0, shadow=0.0, noise=3.0 * (k % 3))
        rgba = np.concatenate([photo, np.full(photo.shape[:2] + (1,), 255, np.uint8)], -1)
        yield f"an evenly lit photo {k}", rgba
    # Strokes cropped close, as from a scan: wide strokes touch the
    # picture's edges and could pass for the page's light (the noise makes
    # some of them photos); one page level all the same.
    for k in range(24):
        side = int(rng.integers(60, 300))
        ink = strokes(rng, side, side, rng.uniform(side / 12, side / 5))
        ys, xs = np.nonzero(ink > 0)
        crop = ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        grey = 255 * (1 - crop) + (rng.normal(0, 4, crop.shape) if k % 2 else 0)
        rgba = np.full(crop.shape + (4,), 255, np.uint8)
        rgba[..., :3] = np.clip(np.round(grey), 0, 255)[..., None]
        yield f"a close crop {k}", rgba
    yield "blank", np.full((40, 50, 4), 255, np.uint8)
    faint = np.full((40, 50, 4), 128, np.uint8)
    faint[10:20, 10:20, :3] = 140
    yield "faint marks", faint


def model(tmp, name, rows, cols):
    data = os.path.join(tmp, name)
    os.makedirs(data)
    mnistgen.write_pair(data, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", 100, 1,
                        False, rows, cols)
    mnistgen.write_pair(data, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 20, 2,
                        False, rows, cols)
    out = os.path.join(tmp, name + "-run")
    r = subprocess.run([TRAINER, "--data", data, "--out", out, "--no-plots", "--epochs", "1",
                        "--validation-split", "0", "--hidden", "16"],
                       capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, f"training a {rows}x{cols} model: {r.stderr}")
    return os.path.join(out, "model.ckpt")


def compare(tmp, ckpt, fh, fw, pics):
    pngs, listing = [], []
    for k, (name, rgba) in enumerate(pics):
        png = os.path.join(tmp, f"p{k}.png")
        with open(png, "wb") as f:
            f.write(pngwrite.encode(rgba, 6))
        raw = os.path.join(tmp, f"p{k}.rgba")
        with open(raw, "wb") as f:
            f.write(rgba.tobytes())
        pngs.append(png)
        listing.append({"rgba": raw, "w": rgba.shape[1], "h": rgba.shape[0], "fh": fh, "fw": fw})
    seen = os.path.join(tmp, f"seen-{fh}x{fw}.idx")
    r = subprocess.run([TRAINER, "predict", "--json", "--prepare", "digit", "--model", ckpt,
                        "--save-input", seen,
                        *pngs], capture_output=True, text=True, timeout=300)
    refused = {line.split(": ")[1] for line in r.stderr.splitlines()}
    c_bytes = iter(read_idx(seen).reshape(-1, fh * fw))
    probe_out = os.path.join(tmp, "fields")
    args = [a for p in listing for a in (str(p["w"]), str(p["h"]), p["rgba"])]
    r = subprocess.run([PROBE, str(fh), str(fw), probe_out, *args], capture_output=True,
                       text=True, timeout=300)
    check(r.returncode == 0, f"prepare_probe: {r.stderr}")
    with open(probe_out, "rb") as f:
        probed = f.read()
    c_fields, at = [], 0
    for _ in pics:
        if probed[at] == 0:
            c_fields.append(np.frombuffer(probed, "<f4", fh * fw, at + 1))
            at += 1 + 4 * fh * fw
        else:
            c_fields.append(None)
            at += 1
    with open(os.path.join(tmp, "list.json"), "w") as f:
        json.dump(listing, f)
    out = os.path.join(tmp, "js.json")
    j = subprocess.run(["node", os.path.join(SOURCE, "tests", "js", "prepare_run.mjs"),
                        os.path.join(SOURCE, "tools", "web", "prepare.js"),
                        os.path.join(tmp, "list.json"), out],
                       capture_output=True, text=True, timeout=300)
    check(j.returncode == 0, f"node: {j.stderr}")
    with open(out) as f:
        js = json.load(f)
    same = 0
    for (name, _), png, got, c_field in zip(pics, pngs, js, c_fields):
        check((c_field is None) == (png in refused), f"{name}: the probe and trainer agree")
        if png in refused:
            check("error" in got and "no ink" in got["error"],
                  f"{name}: trainer refuses it, the page gives {got}")
            continue
        want = next(c_bytes)
        if "error" in got:
            check(False, f"{name}: the page refuses it ({got['error']}), trainer does not")
            continue
        mine = np.frombuffer(base64.b64decode(got["bytes"]), np.uint8)
        field = np.frombuffer(base64.b64decode(got["field"]), "<u4")
        if not np.array_equal(field, c_field.view("<u4")):
            diff = np.flatnonzero(field != c_field.view("<u4"))
            check(False, f"{name}, {fh}x{fw}: {len(diff)} field values differ in their bits, "
                  f"the first at {diff[0]}: {field.view('<f4')[diff[0]]!r} against "
                  f"{c_field[diff[0]]!r}")
        elif np.array_equal(mine, want):
            same += 1
        else:
            diff = np.flatnonzero(mine != want)
            check(False, f"{name}, {fh}x{fw}: {len(diff)} bytes differ, the first at "
                  f"{diff[0]}: {mine[diff[0]]} against trainer's {want[diff[0]]}")
    print(f"{fh}x{fw} field: {same} of {len(pics) - len(refused)} pictures the same floats "
          f"and bytes; "
          f"{len(refused)} refused by both")
    check(same > 150 and len(refused) == 2, f"{fh}x{fw}: too few pictures compared")


with tempfile.TemporaryDirectory() as tmp:
    pics = list(pictures(np.random.default_rng(2026)))
    compare(tmp, model(tmp, "square", 28, 28), 28, 28, pics)
    compare(tmp, model(tmp, "wide", 20, 36), 20, 36, pics)
finish("test_web_prepare")
