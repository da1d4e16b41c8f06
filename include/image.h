/* image.h - a user's pictures, read for `trainer predict`, and their
 * preparation the way MNIST's digits were made.
 *
 * MNIST's digits were black and white scans, scaled to fit a 20x20 box
 * keeping their aspect ratio (which made grey levels at the edges), and
 * placed in a 28x28 field so that their centre of mass is at its centre,
 * white ink on black.  A photograph or a scan of a digit is nothing like
 * that until it has been prepared the same way, and a model trained on
 * MNIST misreads it.
 *
 * The drawing page (tools/web/prepare.js) repeats this preparation in
 * JavaScript and must give the same bytes: the grey levels and the page are
 * integers, and the rest is IEEE arithmetic in a fixed order, which is why
 * image.c is compiled without fused multiply-adds (meson.build). */
#ifndef TRAINER_IMAGE_H
#define TRAINER_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* The largest picture read: sides and pixels, and the file's bytes. */
#define IMAGE_MAX_SIDE 16384
#define IMAGE_MAX_PIXELS ((size_t)1 << 25)
#define IMAGE_MAX_FILE_BYTES ((size_t)1 << 28)

/* A picture as 8-bit RGBA, rows top to bottom, not premultiplied. */
typedef struct {
    int w, h;
    uint8_t *rgba; /* [h][w][4], owned */
} tr_image;

/* Decodes a PNG file's bytes (grey, grey + alpha, RGB, RGBA or palette, 1 to
 * 16 bits, any transparency) into im.  name is used in messages only. */
int tr_image_decode_png(tr_image *im, const uint8_t *data, size_t len, const char *name,
                        tr_error *err);

/* Whether data starts with PNG's signature. */
int tr_image_is_png(const uint8_t *data, size_t len);

/* Decodes a JPEG file's bytes (grey, colour or CMYK, baseline or
 * progressive) into im, turned upright as its EXIF orientation says.  A
 * damaged file fails with libjpeg's reason rather than decoding in part. */
int tr_image_decode_jpeg(tr_image *im, const uint8_t *data, size_t len, const char *name,
                         tr_error *err);

/* Whether data starts with JPEG's start-of-image marker. */
int tr_image_is_jpeg(const uint8_t *data, size_t len);

/* A PNG or a JPEG file's bytes, told apart by their signature. */
int tr_image_decode(tr_image *im, const uint8_t *data, size_t len, const char *name, tr_error *err);

void tr_image_free(tr_image *im);

/* Resizes a picture of ih x iw pixels of c bytes each into oh x ow, as
 * Keras does (TensorFlow's bilinear resize with half-pixel centres, no
 * antialiasing), rounding to the nearest byte. */
void tr_image_resize_bilinear(uint8_t *out, int oh, int ow, const uint8_t *in, int ih, int iw,
                              int c);

/* A picture as a data set keeps it: rows x cols x channels bytes, grey
 * (Rec. 601, as tr_image_grey, rounded) or RGB, the alpha channel dropped (as
 * Keras' decoding does), resized with tr_image_resize_bilinear when its size
 * differs.  -1 when out of memory. */
int tr_image_bytes(uint8_t *out, const tr_image *im, int rows, int cols, int channels);

/* A pixel's grey level (Rec. 601) in thousandths of a byte, 0 to
 * IMAGE_GREY_MAX: an integer, so that every language computes it alike
 * (the drawing page's port).  rgba: the pixel's 4 bytes. */
#define IMAGE_GREY_MAX 255000
int32_t tr_image_grey(const uint8_t *rgba);

/* The picture as ink intensities in [0, 1] (1 the darkest ink on a light
 * page or the lightest on a dark one): grey levels (Rec. 601), transparent
 * pixels taken as the page, and inverted when the page is light.  The page
 * is the median of the border pixels (or, when the border is mostly
 * transparent, the opposite of the ink); ink is stretched so that the page is 0
 * and the strongest ink 1.  Fails with "no ink" when the strongest mark
 * differs from the page by less than 15%: a blank page, or its noise.
 * An opaque picture whose page is lit unevenly (a photo: light falling
 * off, a shadow) has its page's light estimated everywhere and removed
 * first, its noise and specks dropped (src/pictures/background.c); one
 * page level serves every other picture, and the drawing page's port
 * repeats only that.  ink: [h][w] */
int tr_image_ink(const tr_image *im, float *ink, tr_error *err);

/* MNIST's preparation of ink ([h][w], from tr_image_ink) for a field of fh x fw:
 * cropped to the ink's bounding box, scaled to fit a box of 20/28 of the
 * field keeping its aspect ratio (each output pixel the mean of the area it
 * covers: anti-aliased), and placed so that its centre of mass falls on the
 * field's centre (whole pixels, as MNIST).  out: [fh][fw] bytes, 0 page, 255
 * full ink.  Fails with "no ink" when nothing is brighter than a tenth of
 * the strongest ink. */
int tr_image_prepare(uint8_t *out, int fh, int fw, const float *ink, int h, int w,
                     tr_error *err);

/* tr_image_prepare's field before it becomes bytes: [fh][fw] floats in [0, 1]. */
int tr_image_field(float *field, int fh, int fw, const float *ink, int h, int w,
                   tr_error *err);

#endif
