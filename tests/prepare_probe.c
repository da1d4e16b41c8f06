/* prepare_probe FH FW OUT (W H RGBA)... - image.h's preparation of raw RGBA
 * pictures ([H][W][4] bytes each) for a field of FH x FW, written to OUT
 * for test_web_prepare: per picture a byte, 0 when prepared, then its field
 * as FH * FW float32 (little-endian), or 1 when refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "image.h"

int main(int argc, char **argv)
{
    if (argc < 4 || (argc - 4) % 3) {
        fprintf(stderr, "usage: prepare_probe FH FW OUT (W H RGBA)...\n");
        return 2;
    }
    const int fh = atoi(argv[1]), fw = atoi(argv[2]);
    FILE *out = fopen(argv[3], "wb");
    float *field = malloc(sizeof(float) * (size_t)fh * fw);
    if (!out || !field || fh < 1 || fw < 1) {
        fprintf(stderr, "prepare_probe: cannot start\n");
        return 1;
    }
    for (int a = 4; a < argc; a += 3) {
        tr_error err;
        tr_image im = {atoi(argv[a]), atoi(argv[a + 1]), NULL};
        size_t len;
        if (tr_file_read_all(argv[a + 2], (size_t)1 << 28, &im.rgba, &len, &err) ||
            len != (size_t)im.w * im.h * 4) {
            fprintf(stderr, "prepare_probe: %s: not %dx%d RGBA\n", argv[a + 2], im.w, im.h);
            return 1;
        }
        float *ink = malloc(sizeof(float) * (size_t)im.w * im.h);
        const int ok = ink && tr_image_ink(&im, ink, &err) == 0 &&
                       tr_image_field(field, fh, fw, ink, im.h, im.w, &err) == 0;
        fputc(ok ? 0 : 1, out);
        if (ok)
            fwrite(field, sizeof(float), (size_t)fh * fw, out);
        free(ink);
        tr_image_free(&im);
    }
    free(field);
    return fclose(out) == 0 ? 0 : 1;
}
