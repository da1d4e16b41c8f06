"""Photo-like pictures of a digit: what a phone makes of a digit written on
paper under a desk lamp.  The digit is scaled up (bilinear) and written in
dark ink on light paper with a margin around it; the light falls off across
the page by 40 grey levels in a random direction; a shadow with a soft edge
darkens one corner; the lens blurs a little; the sensor adds noise to each
colour channel; the light is warm (less blue than red).  Used by
test_predict (with MNIST's test digits) to check that `trainer predict`
removes the background before it looks for ink."""
import numpy as np


def upscale(img, h, w):
    """Bilinear resize with half-pixel centres of a [H][W] float array."""
    ih, iw = img.shape
    ys = np.clip((np.arange(h) + 0.5) * ih / h - 0.5, 0, ih - 1)
    xs = np.clip((np.arange(w) + 0.5) * iw / w - 0.5, 0, iw - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, ih - 1), np.minimum(x0 + 1, iw - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = img[y0][:, x0] * (1 - fx) + img[y0][:, x1] * fx
    bottom = img[y1][:, x0] * (1 - fx) + img[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def blur3(a):
    """A 3x3 mean, edges repeated: a slightly soft lens."""
    p = np.pad(a, ((1, 1), (1, 1)) + ((0, 0),) * (a.ndim - 2), mode="edge")
    h, w = a.shape[:2]
    return sum(p[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)) / 9.0


def smoothstep(t):
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def photo(digit, rng, gradient=40.0, shadow=0.4, noise=5.0):
    """An RGB photo ([h][w][3] uint8) of a 28x28 MNIST digit (white ink on
    black, 0-255).  gradient: how many grey levels the page's brightness
    falls across the picture; shadow: how much light the shadowed corner
    loses (0.4: 40%); noise: the sensor's standard deviation in grey
    levels."""
    scale = rng.uniform(6.0, 10.0)
    dh = dw = int(round(28 * scale))
    margin = rng.uniform(0.15, 0.35, 4) * dh
    top, bottom, left, right = (int(m) for m in margin)
    h, w = dh + top + bottom, dw + left + right
    ink = np.zeros((h, w))
    ink[top:top + dh, left:left + dw] = upscale(digit.astype(float) / 255.0, dh, dw)
    reflectance = 0.88 - 0.72 * ink
    # Light falling off along a random direction, by `gradient` levels on
    # the paper from one side of the picture to the other.
    yy, xx = np.mgrid[0:h, 0:w]
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (xx - w / 2) * np.cos(angle) + (yy - h / 2) * np.sin(angle)
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min())
    light = 1.0 - gradient / (255 * 0.88) * ramp
    # A shadow over one corner: a straight edge cutting the corner, soft
    # over 4% of the picture's side.
    corner_x, corner_y = rng.integers(0, 2, 2)
    u = xx / w if corner_x == 0 else 1 - xx / w
    v = yy / h if corner_y == 0 else 1 - yy / h
    reach = rng.uniform(0.3, 0.5)
    inside = smoothstep((reach - (u + v)) / 0.04 + 0.5)
    light *= 1.0 - shadow * inside
    grey = 255.0 * reflectance * light
    rgb = grey[..., None] * np.array([1.0, 0.96, 0.86])
    rgb = blur3(rgb) + rng.normal(0.0, noise, rgb.shape)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)
