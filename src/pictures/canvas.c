#include "canvas.h"

#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "font.h"

#define CANVAS_MAX_SIDE 16384

int tr_canvas_init(tr_canvas *c, int width, int height, tr_rgb bg, tr_error *err)
{
    memset(c, 0, sizeof *c);
    if (width < 1 || height < 1 || width > CANVAS_MAX_SIDE || height > CANVAS_MAX_SIDE)
        return tr_error_set(err, "picture size %dx%d is out of range (1 to %d)", width, height,
                            CANVAS_MAX_SIDE);
    c->pixels = malloc((size_t)width * height * 3);
    if (!c->pixels)
        return tr_error_set(err, "out of memory for a %dx%d picture", width, height);
    c->width = width;
    c->height = height;
    for (size_t i = 0; i < (size_t)width * height; i++) {
        c->pixels[3 * i] = bg.r;
        c->pixels[3 * i + 1] = bg.g;
        c->pixels[3 * i + 2] = bg.b;
    }
    return 0;
}

void tr_canvas_free(tr_canvas *c)
{
    free(c->pixels);
    memset(c, 0, sizeof *c);
}

/* Blends color over pixel (x, y) with coverage a in [0, 1]; outside: nothing. */
static void canvas_blend(tr_canvas *c, int x, int y, tr_rgb color, float a)
{
    if (x < 0 || y < 0 || x >= c->width || y >= c->height || a <= 0.0f)
        return;
    if (a > 1.0f)
        a = 1.0f;
    uint8_t *p = c->pixels + 3 * ((size_t)y * c->width + x);
    const uint8_t src[3] = {color.r, color.g, color.b};
    for (int k = 0; k < 3; k++)
        p[k] = (uint8_t)lrintf((float)p[k] + a * ((float)src[k] - (float)p[k]));
}

void tr_canvas_fill_rect(tr_canvas *c, int x, int y, int w, int h, tr_rgb color)
{
    int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    int x1 = x + w > c->width ? c->width : x + w;
    int y1 = y + h > c->height ? c->height : y + h;
    for (int j = y0; j < y1; j++)
        for (int i = x0; i < x1; i++) {
            uint8_t *p = c->pixels + 3 * ((size_t)j * c->width + i);
            p[0] = color.r;
            p[1] = color.g;
            p[2] = color.b;
        }
}

void tr_canvas_frame_rect(tr_canvas *c, int x, int y, int w, int h, tr_rgb color)
{
    tr_canvas_fill_rect(c, x, y, w, 1, color);
    tr_canvas_fill_rect(c, x, y + h - 1, w, 1, color);
    tr_canvas_fill_rect(c, x, y, 1, h, color);
    tr_canvas_fill_rect(c, x + w - 1, y, 1, h, color);
}

/* Coverage of a pixel whose centre lies at distance d from a shape's core of
 * half-width r: a one-pixel linear ramp at the edge. */
static float coverage(float d, float r)
{
    float a = r + 0.5f - d;
    return a < 0.0f ? 0.0f : (a > 1.0f ? 1.0f : a);
}

void tr_canvas_line(tr_canvas *c, float x0, float y0, float x1, float y1, float width,
                    tr_rgb color)
{
    if (!isfinite(x0) || !isfinite(y0) || !isfinite(x1) || !isfinite(y1))
        return;
    const float r = width / 2.0f;
    int bx0 = (int)floorf(fminf(x0, x1) - r - 1), bx1 = (int)ceilf(fmaxf(x0, x1) + r + 1);
    int by0 = (int)floorf(fminf(y0, y1) - r - 1), by1 = (int)ceilf(fmaxf(y0, y1) + r + 1);
    if (bx0 < 0) bx0 = 0;
    if (by0 < 0) by0 = 0;
    if (bx1 > c->width) bx1 = c->width;
    if (by1 > c->height) by1 = c->height;
    const float dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    for (int j = by0; j < by1; j++) {
        for (int i = bx0; i < bx1; i++) {
            float px = (float)i + 0.5f - x0, py = (float)j + 0.5f - y0;
            float t = len2 > 0.0f ? (px * dx + py * dy) / len2 : 0.0f;
            t = t < 0.0f ? 0.0f : (t > 1.0f ? 1.0f : t);
            float ex = px - t * dx, ey = py - t * dy;
            canvas_blend(c, i, j, color, coverage(sqrtf(ex * ex + ey * ey), r));
        }
    }
}

void tr_canvas_disk(tr_canvas *c, float cx, float cy, float radius, tr_rgb color)
{
    tr_canvas_line(c, cx, cy, cx, cy, 2.0f * radius, color);
}

int tr_canvas_text_width(const char *text, int scale)
{
    return tr_font_text_width(text, scale);
}

/* Draws text's coverage in color; `up` turns it 90 degrees counter-clockwise,
 * its top towards x.  (x, y) is the top-left of the capitals' box. */
static void draw_text(tr_canvas *c, int x, int y, const char *text, int scale, tr_rgb color,
                      int up)
{
    font_mask m;
    /* Out of memory for a line of text: the picture goes without it. */
    if (tr_font_render(&m, text, scale))
        return;
    for (int r = 0; r < m.h; r++)
        for (int col = 0; col < m.w; col++) {
            const uint8_t a = m.a[(size_t)r * m.w + col];
            if (!a)
                continue;
            const int across = r - m.top;
            if (up)
                canvas_blend(c, x + across, y + m.w - 1 - col, color, (float)a / 255.0f);
            else
                canvas_blend(c, x + col, y + across, color, (float)a / 255.0f);
        }
    tr_font_mask_free(&m);
}

void tr_canvas_text(tr_canvas *c, int x, int y, const char *text, int scale, tr_rgb color)
{
    draw_text(c, x, y, text, scale, color, 0);
}

void tr_canvas_text_up(tr_canvas *c, int x, int y, const char *text, int scale, tr_rgb color)
{
    draw_text(c, x, y, text, scale, color, 1);
}

const char *tr_canvas_font_fallback(void)
{
    return tr_font_fallback_reason();
}

void tr_canvas_gray_image(tr_canvas *c, int x, int y, const uint8_t *img, int w, int h,
                          int scale, int ink_dark)
{
    for (int j = 0; j < h; j++)
        for (int i = 0; i < w; i++) {
            const uint8_t v = ink_dark ? (uint8_t)(255 - img[j * w + i]) : img[j * w + i];
            tr_canvas_fill_rect(c, x + i * scale, y + j * scale, scale, scale, (tr_rgb){v, v, v});
        }
}

int tr_canvas_encode_png(const tr_canvas *c, uint8_t **png, size_t *len, tr_error *err)
{
    *png = NULL;
    *len = 0;
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = (png_uint_32)c->width;
    image.height = (png_uint_32)c->height;
    image.format = PNG_FORMAT_RGB;
    /* Faster deflate settings: curves.png is rewritten during training. */
    image.flags = PNG_IMAGE_FLAG_FAST;
    /* One pass into a buffer of libpng's upper bound (pages never written
     * are never touched), rather than one pass to measure and one to write:
     * curves.png took 8 ms, now 4.5. */
    png_alloc_size_t size = PNG_IMAGE_PNG_SIZE_MAX(image);
    uint8_t *buf = malloc(size);
    if (!buf)
        return tr_error_set(err, "out of memory for a PNG of up to %zu bytes", (size_t)size);
    if (!png_image_write_to_memory(&image, buf, &size, 0, c->pixels, 0, NULL)) {
        free(buf);
        return tr_error_set(err, "PNG encoding failed: %s", image.message);
    }
    uint8_t *fit = realloc(buf, size ? size : 1);
    if (fit)
        buf = fit;
    *png = buf;
    *len = size;
    return 0;
}

int tr_canvas_save_png(const tr_canvas *c, const char *path, tr_error *err)
{
    uint8_t *png;
    size_t len;
    if (tr_canvas_encode_png(c, &png, &len, err))
        return -1;
    int status = tr_file_write_atomic(path, png, len, err);
    free(png);
    return status;
}
