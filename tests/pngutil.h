/* pngutil.h - decoding PNGs with libpng for the tests. */
#ifndef TRAINER_PNGUTIL_H
#define TRAINER_PNGUTIL_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int width, height;
    uint8_t *rgb; /* [height][width][3], owned */
} decoded_png;

/* Decodes a PNG from memory or a file into 8-bit RGB; 0 on success. */
int png_decode_memory(decoded_png *out, const uint8_t *data, size_t len);
int png_decode_file(decoded_png *out, const char *path);
void png_decoded_free(decoded_png *p);

/* Pixels in [x0, x1) x [y0, y1) equal to (r, g, b). */
long png_count_color(const decoded_png *p, int x0, int y0, int x1, int y1, uint8_t r,
                     uint8_t g, uint8_t b);

/* Pixels in the box that are not white. */
long png_count_nonwhite(const decoded_png *p, int x0, int y0, int x1, int y1);

/* Pixels in the box darker than 128 in every channel (ink). */
long png_count_dark(const decoded_png *p, int x0, int y0, int x1, int y1);

#endif
