#include "image.h"

#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "background.h"

/* Ink fainter than this part of the strongest is the page's noise. */
#define INK_FLOOR 0.1f

int tr_image_is_png(const uint8_t *data, size_t len)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    return len >= sizeof sig && memcmp(data, sig, sizeof sig) == 0;
}

int tr_image_decode_png(tr_image *im, const uint8_t *data, size_t len, const char *name,
                        tr_error *err)
{
    *im = (tr_image){0};
    if (!tr_image_is_png(data, len))
        return tr_error_set(err, "%s: not a PNG file", name);
    /* The size, from the IHDR chunk that must come first, is checked before
     * libpng reads further. */
    if (len >= 24 && memcmp(data + 12, "IHDR", 4) == 0) {
        const uint32_t w = (uint32_t)data[16] << 24 | (uint32_t)data[17] << 16 |
                           (uint32_t)data[18] << 8 | data[19];
        const uint32_t h = (uint32_t)data[20] << 24 | (uint32_t)data[21] << 16 |
                           (uint32_t)data[22] << 8 | data[23];
        if (w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE || (size_t)w * h > IMAGE_MAX_PIXELS)
            return tr_error_set(err, "%s: %ux%u pixels, over the bound of %d a side and %zu "
                                "in all", name, w, h, IMAGE_MAX_SIDE, IMAGE_MAX_PIXELS);
    }
    /* libpng's simplified API converts every colour type and depth to 8-bit
     * RGBA and reports errors in a message instead of a longjmp. */
    png_image png;
    memset(&png, 0, sizeof png);
    png.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&png, data, len))
        return tr_error_set(err, "%s: not a readable PNG file (%s)", name, png.message);
    if (png.width < 1 || png.height < 1 || png.width > IMAGE_MAX_SIDE ||
        png.height > IMAGE_MAX_SIDE || (size_t)png.width * png.height > IMAGE_MAX_PIXELS) {
        tr_error_set(err, "%s: %ux%u pixels, over the bound of %d a side and %zu in all",
                     name, png.width, png.height, IMAGE_MAX_SIDE, IMAGE_MAX_PIXELS);
        png_image_free(&png);
        return -1;
    }
    png.format = PNG_FORMAT_RGBA;
    uint8_t *px = malloc(PNG_IMAGE_SIZE(png));
    if (!px) {
        png_image_free(&png);
        return tr_error_set(err, "%s: out of memory for %ux%u pixels", name, png.width,
                            png.height);
    }
    if (!png_image_finish_read(&png, NULL, px, 0, NULL)) {
        free(px);
        tr_error_set(err, "%s: damaged or truncated PNG data (%s)", name, png.message);
        png_image_free(&png);
        return -1;
    }
    *im = (tr_image){(int)png.width, (int)png.height, px};
    png_image_free(&png);
    return 0;
}

void tr_image_free(tr_image *im)
{
    free(im->rgba);
    im->rgba = NULL;
}

/* Source coordinate, its two neighbours and the weight of the second, for
 * output pixel i of n taken from m. */
static void resize_tap(int i, int n, int m, int *lo, int *hi, float *frac)
{
    const float at = ((float)i + 0.5f) * ((float)m / (float)n) - 0.5f;
    const float base = floorf(at);
    *lo = base < 0 ? 0 : (int)base;
    *hi = (int)ceilf(at) > m - 1 ? m - 1 : (int)ceilf(at) < 0 ? 0 : (int)ceilf(at);
    *frac = at - base;
}

void tr_image_resize_bilinear(uint8_t *out, int oh, int ow, const uint8_t *in, int ih, int iw,
                              int c)
{
    for (int y = 0; y < oh; y++) {
        int y0, y1;
        float fy;
        resize_tap(y, oh, ih, &y0, &y1, &fy);
        for (int x = 0; x < ow; x++) {
            int x0, x1;
            float fx;
            resize_tap(x, ow, iw, &x0, &x1, &fx);
            for (int ch = 0; ch < c; ch++) {
                const float a = in[((size_t)y0 * iw + x0) * c + ch];
                const float b = in[((size_t)y0 * iw + x1) * c + ch];
                const float d = in[((size_t)y1 * iw + x0) * c + ch];
                const float e = in[((size_t)y1 * iw + x1) * c + ch];
                const float top = a + (b - a) * fx, bottom = d + (e - d) * fx;
                const float v = top + (bottom - top) * fy;
                out[((size_t)y * ow + x) * c + ch] =
                    (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : lrintf(v));
            }
        }
    }
}

int tr_image_bytes(uint8_t *out, const tr_image *im, int rows, int cols, int channels)
{
    const size_t n = (size_t)im->w * (size_t)im->h;
    const int same = im->w == cols && im->h == rows;
    uint8_t *full = same ? out : malloc(n * (size_t)channels);
    if (!full)
        return -1;
    for (size_t j = 0; j < n; j++) {
        const uint8_t *p = im->rgba + 4 * j;
        if (channels == 1)
            full[j] = (uint8_t)((tr_image_grey(p) + 500) / 1000);
        else
            memcpy(full + 3 * j, p, 3);
    }
    if (!same) {
        tr_image_resize_bilinear(out, rows, cols, full, im->h, im->w, channels);
        free(full);
    }
    return 0;
}

static int compare_ints(const void *a, const void *b)
{
    const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int32_t tr_image_grey(const uint8_t *p)
{
    return 299 * p[0] + 587 * p[1] + 114 * p[2];
}

/* The page's grey level: the median of the border's opaque pixels, or, when
 * they are less than half the border, the opposite of the ink's mean (a
 * digit drawn on a transparent canvas, which may touch its edge). */
static int page_level(const tr_image *im, int32_t *page, tr_error *err)
{
    const int w = im->w, h = im->h;
    const int ring = h == 1 || w == 1 ? w * h : 2 * (w + h) - 4;
    int32_t *border = malloc(sizeof(int32_t) * (size_t)ring);
    if (!border)
        return tr_error_set(err, "out of memory for %dx%d pixels", w, h);
    int n = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *p = im->rgba + ((long)y * w + x) * 4;
            if ((y == 0 || y == h - 1 || x == 0 || x == w - 1) && p[3] >= 128)
                border[n++] = tr_image_grey(p);
        }
    if (n > 0 && 2 * n >= ring) {
        qsort(border, (size_t)n, sizeof *border, compare_ints);
        *page = border[n / 2];
    } else {
        int64_t sum = 0, weight = 0;
        for (long j = 0; j < (long)w * h; j++) {
            const uint8_t *p = im->rgba + 4 * j;
            sum += (int64_t)p[3] * tr_image_grey(p);
            weight += p[3];
        }
        *page = weight > 0 && 2 * sum < (int64_t)IMAGE_GREY_MAX * weight ? IMAGE_GREY_MAX : 0;
    }
    free(border);
    return 0;
}

/* A pixel's ink in 255ths of thousandths of a byte: its grey composited on
 * the page by its alpha, minus the page's (the other way on a light page). */
static int32_t ink_of(const uint8_t *p, int32_t page, int light)
{
    const int32_t v = p[3] * tr_image_grey(p) + (255 - p[3]) * page;
    const int32_t d = light ? 255 * page - v : v - 255 * page;
    return d > 0 ? d : 0;
}

/* The bounding box of the values above `floor`: returns 0 when there is
 * none. */
static int ink_box(const float *ink, int h, int w, float floor, int *x0, int *y0, int *x1,
                   int *y1)
{
    *x0 = w, *y0 = h, *x1 = -1, *y1 = -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (ink[(long)y * w + x] > floor) {
                *x0 = x < *x0 ? x : *x0;
                *x1 = x > *x1 ? x : *x1;
                *y0 = y < *y0 ? y : *y0;
                *y1 = y > *y1 ? y : *y1;
            }
    return *x1 >= 0;
}

/* Whether flattening the page only took the page away.  The new box of
 * the ink keeps a twentieth of the picture clear at its edges (a photo of
 * a digit on paper has paper all round it); one page level's box reaches
 * past it by a tenth of the picture on some side (the darker page it took
 * for ink lies away from the digit, where a digit's grey edges do not);
 * and what one page level took for ink outside the new box is weak (less
 * than 0.5% of it above STRONG_INK): a darker page, not strokes.  A picture
 * cropped close around a digit, or a blurred one, whose wide strokes or
 * grey edges could pass for the page's light, keeps one page level. */
#define STRONG_INK 0.75f
static int only_page_removed(const float *ink, const float *flat, int h, int w)
{
    int x0, y0, x1, y1, a0, b0, a1, b1;
    if (!ink_box(ink, h, w, INK_FLOOR, &x0, &y0, &x1, &y1) ||
        !ink_box(flat, h, w, INK_FLOOR, &a0, &b0, &a1, &b1))
        return 0;
    const int mx = w / 20 > 2 ? w / 20 : 2, my = h / 20 > 2 ? h / 20 : 2;
    if (a0 < mx || b0 < my || a1 > w - 1 - mx || b1 > h - 1 - my)
        return 0;
    if (a0 - x0 < 2 * mx && b0 - y0 < 2 * my && x1 - a1 < 2 * mx && y1 - b1 < 2 * my)
        return 0;
    long outside = 0, strong = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (x < a0 || x > a1 || y < b0 || y > b1) {
                outside++;
                strong += ink[(long)y * w + x] > STRONG_INK;
            }
    return 200 * strong <= outside;
}

/* A photo's page lit unevenly (background.c): its flattened ink replaces
 * one page level's when that took only the page away.  Otherwise one level
 * stays, so that a clean picture keeps its bytes. */
static int prefer_flat_page(const tr_image *im, int light, float *ink, tr_error *err)
{
    const long count = (long)im->w * im->h;
    float *flat = malloc(sizeof(float) * (size_t)count);
    if (!flat)
        return tr_error_set(err, "out of memory for a %dx%d picture's page", im->w, im->h);
    const int uneven = tr_ink_on_uneven_page(im, light, flat, err);
    if (uneven == 1 && only_page_removed(ink, flat, im->h, im->w))
        memcpy(ink, flat, sizeof(float) * (size_t)count);
    free(flat);
    return uneven < 0 ? -1 : 0;
}

int tr_image_ink(const tr_image *im, float *ink, tr_error *err)
{
    const long count = (long)im->w * im->h;
    int32_t page = 0;
    if (page_level(im, &page, err))
        return -1;
    const int light = 2 * page >= IMAGE_GREY_MAX;
    int32_t strongest = 0;
    for (long j = 0; j < count; j++) {
        const int32_t d = ink_of(im->rgba + 4 * j, page, light);
        strongest = d > strongest ? d : strongest;
    }
    /* Less contrast than 15% is a blank page, or its noise. */
    if (20 * (int64_t)strongest < 3 * (int64_t)IMAGE_GREY_MAX * 255)
        return tr_error_set(err, "no ink: the page and the strongest mark differ by %.0f%%",
                            100.0 * strongest / (IMAGE_GREY_MAX * 255.0));
    for (long j = 0; j < count; j++)
        ink[j] = (float)((double)ink_of(im->rgba + 4 * j, page, light) / strongest);
    return prefer_flat_page(im, light, ink, err);
}

/* Resamples n source values (stride `in_step`) to m outputs (stride
 * out_step), each the mean of the stretch of source it covers. */
static void resample_line(float *out, long out_step, int m, const float *in, long in_step, int n)
{
    const double ratio = (double)n / m;
    for (int i = 0; i < m; i++) {
        const double lo = i * ratio, hi = (i + 1) * ratio;
        double sum = 0.0;
        for (int j = (int)lo; j < n && j < hi; j++) {
            const double a = j > lo ? j : lo, b = j + 1 < hi ? j + 1 : hi;
            sum += (b - a) * in[j * in_step];
        }
        out[i * out_step] = (float)(sum / ratio);
    }
}

int tr_image_field(float *field, int fh, int fw, const float *ink, int h, int w,
                   tr_error *err)
{
    const float floor = INK_FLOOR;
    int x0, y0, x1, y1;
    if (!ink_box(ink, h, w, floor, &x0, &y0, &x1, &y1))
        return tr_error_set(err, "no ink: nothing darker than the page by a tenth of the "
                            "strongest ink");
    const int bw = x1 - x0 + 1, bh = y1 - y0 + 1;
    const double box_w = fw * 20.0 / 28.0, box_h = fh * 20.0 / 28.0;
    const double scale = fmin(box_w / bw, box_h / bh);
    int sw = (int)lround(bw * scale), sh = (int)lround(bh * scale);
    sw = sw < 1 ? 1 : sw > fw ? fw : sw;
    sh = sh < 1 ? 1 : sh > fh ? fh : sh;
    float *crop = malloc(sizeof(float) * (size_t)bw * bh);
    float *wide = malloc(sizeof(float) * (size_t)sw * bh);
    float *small = malloc(sizeof(float) * (size_t)sw * sh);
    if (!crop || !wide || !small) {
        free(crop), free(wide), free(small);
        return tr_error_set(err, "out of memory for a %dx%d crop", bw, bh);
    }
    for (int y = 0; y < bh; y++)
        for (int x = 0; x < bw; x++) {
            const float v = ink[(long)(y0 + y) * w + x0 + x];
            crop[(long)y * bw + x] = v > floor ? v : 0.0f;
        }
    for (int y = 0; y < bh; y++)
        resample_line(wide + (long)y * sw, 1, sw, crop + (long)y * bw, 1, bw);
    for (int x = 0; x < sw; x++)
        resample_line(small + x, sw, sh, wide + x, sw, bh);
    double mass = 0.0, mx = 0.0, my = 0.0;
    for (int y = 0; y < sh; y++)
        for (int x = 0; x < sw; x++) {
            const double v = small[(long)y * sw + x];
            mass += v;
            mx += v * (x + 0.5);
            my += v * (y + 0.5);
        }
    const int dx = (int)lround(fw / 2.0 - mx / mass), dy = (int)lround(fh / 2.0 - my / mass);
    for (long j = 0; j < (long)fw * fh; j++)
        field[j] = 0.0f;
    for (int y = 0; y < sh; y++)
        for (int x = 0; x < sw; x++) {
            const int tx = x + dx, ty = y + dy;
            if (tx >= 0 && tx < fw && ty >= 0 && ty < fh)
                field[(long)ty * fw + tx] = fminf(1.0f, small[(long)y * sw + x]);
        }
    free(crop), free(wide), free(small);
    return 0;
}

int tr_image_prepare(uint8_t *out, int fh, int fw, const float *ink, int h, int w,
                     tr_error *err)
{
    float *field = malloc(sizeof(float) * (size_t)fw * fh);
    if (!field)
        return tr_error_set(err, "out of memory for a %dx%d field", fw, fh);
    const int rc = tr_image_field(field, fh, fw, ink, h, w, err);
    for (long j = 0; rc == 0 && j < (long)fw * fh; j++)
        out[j] = (uint8_t)lround(field[j] * 255.0f);
    free(field);
    return rc;
}
