#include "pngutil.h"

#include <png.h>
#include <stdlib.h>
#include <string.h>

static int finish(png_image *image, decoded_png *out)
{
    image->format = PNG_FORMAT_RGB;
    size_t size = PNG_IMAGE_SIZE(*image);
    out->rgb = malloc(size);
    if (!out->rgb) {
        png_image_free(image);
        return -1;
    }
    if (!png_image_finish_read(image, NULL, out->rgb, 0, NULL)) {
        free(out->rgb);
        out->rgb = NULL;
        return -1;
    }
    out->width = (int)image->width;
    out->height = (int)image->height;
    return 0;
}

int png_decode_memory(decoded_png *out, const uint8_t *data, size_t len)
{
    memset(out, 0, sizeof *out);
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&image, data, len))
        return -1;
    return finish(&image, out);
}

int png_decode_file(decoded_png *out, const char *path)
{
    memset(out, 0, sizeof *out);
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&image, path))
        return -1;
    return finish(&image, out);
}

void png_decoded_free(decoded_png *p)
{
    free(p->rgb);
    memset(p, 0, sizeof *p);
}

/* Counts the pixels of the box for which keep() holds. */
static long count_if(const decoded_png *p, int x0, int y0, int x1, int y1,
                     int (*keep)(const uint8_t *px, const uint8_t *want), const uint8_t *want)
{
    long n = 0;
    for (int y = y0 < 0 ? 0 : y0; y < y1 && y < p->height; y++)
        for (int x = x0 < 0 ? 0 : x0; x < x1 && x < p->width; x++)
            n += keep(p->rgb + 3 * ((size_t)y * p->width + x), want);
    return n;
}

static int is_color(const uint8_t *px, const uint8_t *want)
{
    return px[0] == want[0] && px[1] == want[1] && px[2] == want[2];
}

static int is_nonwhite(const uint8_t *px, const uint8_t *want)
{
    (void)want;
    return px[0] != 255 || px[1] != 255 || px[2] != 255;
}

static int is_dark(const uint8_t *px, const uint8_t *want)
{
    (void)want;
    return px[0] < 128 && px[1] < 128 && px[2] < 128;
}

long png_count_color(const decoded_png *p, int x0, int y0, int x1, int y1, uint8_t r,
                     uint8_t g, uint8_t b)
{
    const uint8_t want[3] = {r, g, b};
    return count_if(p, x0, y0, x1, y1, is_color, want);
}

long png_count_nonwhite(const decoded_png *p, int x0, int y0, int x1, int y1)
{
    return count_if(p, x0, y0, x1, y1, is_nonwhite, NULL);
}

long png_count_dark(const decoded_png *p, int x0, int y0, int x1, int y1)
{
    return count_if(p, x0, y0, x1, y1, is_dark, NULL);
}
