// MNIST's preparation of a picture, as `trainer predict` does it
// (src/pictures/image.c): the same steps in the same order, so that both give
// the same bytes.  Integers where C uses integers; Math.fround where C rounds
// to float; every other operation in doubles, as C computes them (image.c is
// compiled without fused multiply-adds for this).  test_web_prepare holds the
// two to the same bytes.

const GREY_MAX = 255000;
const FLOOR = Math.fround(0.1);

function grey(rgba, i) {
  return 299 * rgba[i] + 587 * rgba[i + 1] + 114 * rgba[i + 2];
}

// C's lround: halves away from zero (Math.round takes them up).
function lround(x) {
  if (x < 0) return -lround(-x);
  const r = Math.floor(x);
  return x - r >= 0.5 ? r + 1 : r;
}

function pageLevel(rgba, w, h) {
  const ring = h === 1 || w === 1 ? w * h : 2 * (w + h) - 4;
  const border = new Int32Array(ring);
  let n = 0;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 4;
      if ((y === 0 || y === h - 1 || x === 0 || x === w - 1) && rgba[i + 3] >= 128)
        border[n++] = grey(rgba, i);
    }
  if (n > 0 && 2 * n >= ring) {
    const sorted = border.subarray(0, n).sort();
    return sorted[n >> 1];
  }
  let sum = 0, weight = 0; // exact: below 2^53
  for (let i = 0; i < w * h * 4; i += 4) {
    sum += rgba[i + 3] * grey(rgba, i);
    weight += rgba[i + 3];
  }
  return weight > 0 && 2 * sum < GREY_MAX * weight ? GREY_MAX : 0;
}

function inkOf(rgba, i, page, light) {
  const a = rgba[i + 3];
  const v = a * grey(rgba, i) + (255 - a) * page;
  const d = light ? 255 * page - v : v - 255 * page;
  return d > 0 ? d : 0;
}

// image_ink: ink intensities in [0, 1], [h][w].
export function imageInk(rgba, w, h) {
  const page = pageLevel(rgba, w, h);
  const light = 2 * page >= GREY_MAX;
  let strongest = 0;
  for (let i = 0; i < w * h * 4; i += 4) strongest = Math.max(strongest, inkOf(rgba, i, page, light));
  if (20 * strongest < 3 * GREY_MAX * 255)
    throw new Error(`no ink: the page and the strongest mark differ by ${Math.round(100 * strongest / (GREY_MAX * 255))}%`);
  const ink = new Float32Array(w * h);
  for (let j = 0; j < w * h; j++) ink[j] = inkOf(rgba, 4 * j, page, light) / strongest;
  return ink;
}

function resampleLine(out, outOff, outStep, m, src, inOff, inStep, n) {
  const ratio = n / m;
  for (let i = 0; i < m; i++) {
    const lo = i * ratio, hi = (i + 1) * ratio;
    let sum = 0;
    for (let j = Math.trunc(lo); j < n && j < hi; j++) {
      const a = j > lo ? j : lo, b = j + 1 < hi ? j + 1 : hi;
      sum += (b - a) * src[inOff + j * inStep];
    }
    out[outOff + i * outStep] = sum / ratio; // a Float32Array rounds as (float)
  }
}

// image_field: the ink ([h][w]) cropped, scaled into 20/28 of a fh x fw
// field and centred by its centre of mass; floats [fh][fw] in [0, 1].
export function imageField(ink, h, w, fh, fw) {
  let x0 = w, y0 = h, x1 = -1, y1 = -1;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      if (ink[y * w + x] > FLOOR) {
        x0 = Math.min(x0, x), x1 = Math.max(x1, x);
        y0 = Math.min(y0, y), y1 = Math.max(y1, y);
      }
  if (x1 < 0) throw new Error('no ink: nothing darker than the page by a tenth of the strongest ink');
  const bw = x1 - x0 + 1, bh = y1 - y0 + 1;
  const boxW = fw * 20.0 / 28.0, boxH = fh * 20.0 / 28.0;
  const scale = Math.min(boxW / bw, boxH / bh);
  const sw = Math.min(Math.max(lround(bw * scale), 1), fw);
  const sh = Math.min(Math.max(lround(bh * scale), 1), fh);
  const crop = new Float32Array(bw * bh), wide = new Float32Array(sw * bh);
  const small = new Float32Array(sw * sh);
  for (let y = 0; y < bh; y++)
    for (let x = 0; x < bw; x++) {
      const v = ink[(y0 + y) * w + x0 + x];
      crop[y * bw + x] = v > FLOOR ? v : 0;
    }
  for (let y = 0; y < bh; y++) resampleLine(wide, y * sw, 1, sw, crop, y * bw, 1, bw);
  for (let x = 0; x < sw; x++) resampleLine(small, x, sw, sh, wide, x, sw, bh);
  let mass = 0, mx = 0, my = 0;
  for (let y = 0; y < sh; y++)
    for (let x = 0; x < sw; x++) {
      const v = small[y * sw + x];
      mass += v;
      mx += v * (x + 0.5);
      my += v * (y + 0.5);
    }
  const dx = lround(fw / 2.0 - mx / mass), dy = lround(fh / 2.0 - my / mass);
  const field = new Float32Array(fw * fh);
  for (let y = 0; y < sh; y++)
    for (let x = 0; x < sw; x++) {
      const tx = x + dx, ty = y + dy;
      if (tx >= 0 && tx < fw && ty >= 0 && ty < fh) field[ty * fw + tx] = Math.min(1, small[y * sw + x]);
    }
  return field;
}

// image_prepare: the field as bytes [fh][fw].
export function imagePrepare(ink, h, w, fh, fw) {
  return Uint8Array.from(imageField(ink, h, w, fh, fw), (v) => lround(Math.fround(v * 255)));
}

// A picture (RGBA bytes, [h][w][4], not premultiplied) as the model's
// fh x fw field of bytes: what `trainer predict` feeds the model.
export function prepareDigit(rgba, w, h, fh, fw) {
  return imagePrepare(imageInk(rgba, w, h), h, w, fh, fw);
}
