/* pngcheck FILE [RRGGBB...] - decodes FILE with libpng and prints
 * "WIDTH HEIGHT NONWHITE" and then, for each colour asked for, the count of
 * its pixels in the left and in the right half.  Exit status 1 when FILE does
 * not decode.  The program-level tests use it on every PNG the programs write. */
#include <stdio.h>
#include <stdlib.h>

#include "pngutil.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: pngcheck FILE [RRGGBB...]\n");
        return 2;
    }
    decoded_png p;
    if (png_decode_file(&p, argv[1])) {
        fprintf(stderr, "pngcheck: %s does not decode as a PNG\n", argv[1]);
        return 1;
    }
    printf("%d %d %ld\n", p.width, p.height, png_count_nonwhite(&p, 0, 0, p.width, p.height));
    for (int i = 2; i < argc; i++) {
        unsigned long c = strtoul(argv[i], NULL, 16);
        uint8_t r = (uint8_t)(c >> 16), g = (uint8_t)(c >> 8), b = (uint8_t)c;
        printf("%s %ld %ld\n", argv[i], png_count_color(&p, 0, 0, p.width / 2, p.height, r, g, b),
               png_count_color(&p, p.width / 2, 0, p.width, p.height, r, g, b));
    }
    png_decoded_free(&p);
    return 0;
}
