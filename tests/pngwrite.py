"""A PNG encoder of its own for the tests, independent of libpng: any colour
type and bit depth, an optional palette and tRNS chunk."""
import struct
import zlib

import numpy as np


def _chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data +
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def _rows(a, depth):
    h, w = a.shape[:2]
    if depth == 16:
        return [a[y].astype(">u2").tobytes() for y in range(h)]
    if depth == 8:
        return [a[y].astype(np.uint8).tobytes() for y in range(h)]
    per = 8 // depth
    rows = []
    for y in range(h):
        bits = bytearray((w * depth + 7) // 8)
        for x in range(w):
            bits[x // per] |= int(a[y, x]) << (8 - depth * (x % per + 1))
        rows.append(bytes(bits))
    return rows


def encode(pixels, color_type, depth=8, palette=None, trns=None):
    """pixels: [h][w] (grey, palette indices) or [h][w][c] at the given depth;
    color_type as PNG numbers it (0 grey, 2 RGB, 3 palette, 4 grey + alpha,
    6 RGBA)."""
    a = np.asarray(pixels)
    h, w = a.shape[:2]
    data = b"".join(b"\0" + row for row in _rows(a, depth))
    out = b"\x89PNG\r\n\x1a\n" + _chunk(
        b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0))
    if palette is not None:
        out += _chunk(b"PLTE", bytes(np.asarray(palette, np.uint8).reshape(-1)))
    if trns is not None:
        out += _chunk(b"tRNS", trns)
    return out + _chunk(b"IDAT", zlib.compress(data)) + _chunk(b"IEND", b"")


def header_only(w, h):
    """A PNG signature and IHDR of w x h grey pixels, and no data."""
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
