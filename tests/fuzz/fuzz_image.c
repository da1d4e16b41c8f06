/* libFuzzer harness: a PNG file's bytes through the reader, and what it
 * decodes through the ink and MNIST's preparation, for a 28x28 field and a
 * field of another shape.  Most mutations break a PNG chunk's CRC, so the
 * same bytes also go to the preparation directly as the pixels of a small
 * picture: its width and height from the first two bytes. */
#include <stdint.h>
#include <stdlib.h>

#include "image.h"

static void prepare(const tr_image *im)
{
    tr_error err;
    float *ink = malloc(sizeof(float) * (size_t)im->w * (size_t)im->h);
    uint8_t field[28 * 28], other[9 * 40];
    if (ink && tr_image_ink(im, ink, &err) == 0) {
        tr_image_prepare(field, 28, 28, ink, im->h, im->w, &err);
        tr_image_prepare(other, 9, 40, ink, im->h, im->w, &err);
    }
    free(ink);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tr_image im;
    tr_error err;
    if (size > 2) {
        const int w = 1 + data[0] % 64, h = 1 + data[1] % 64;
        tr_image raw = {w, h, malloc((size_t)w * h * 4)};
        for (size_t j = 0; j < (size_t)w * h * 4; j++)
            raw.rgba[j] = data[2 + j % (size - 2)];
        prepare(&raw);
        tr_image_free(&raw);
    }
    if (tr_image_decode_png(&im, data, size, "fuzz", &err))
        return 0;
    if (im.w < 1 || im.h < 1 || im.w > IMAGE_MAX_SIDE || im.h > IMAGE_MAX_SIDE)
        abort(); /* a picture outside the stated bounds came through */
    prepare(&im);
    tr_image_free(&im);
    return 0;
}
