/* image.h: the ink of pictures (inversion, transparency, the page's noise)
 * and MNIST's preparation, on shapes whose answer is known: the box the ink
 * is scaled into, its aspect ratio, its centre of mass, grey edges. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "testutil.h"

/* A w x h picture of `page` with a rectangle of `ink` ([x0, x1) x [y0, y1)),
 * opaque, or with alpha = the ink's strength over a transparent page. */
static image rectangle(int w, int h, int x0, int y0, int x1, int y1, uint8_t page,
                       uint8_t ink, int transparent)
{
    image im = {w, h, malloc((size_t)w * h * 4)};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const int in = x >= x0 && x < x1 && y >= y0 && y < y1;
            uint8_t *p = im.rgba + ((long)y * w + x) * 4;
            p[0] = p[1] = p[2] = transparent ? ink : in ? ink : page;
            p[3] = transparent ? (in ? 255 : 0) : 255;
        }
    return im;
}

/* The prepared field's lit box, mass centre and largest value. */
typedef struct {
    int x0, y0, x1, y1, top;
    double cx, cy;
} field_stats;

static field_stats stats(const uint8_t *f, int fh, int fw)
{
    field_stats s = {fw, fh, -1, -1, 0, 0, 0};
    double mass = 0;
    for (int y = 0; y < fh; y++)
        for (int x = 0; x < fw; x++) {
            const int v = f[y * fw + x];
            if (!v)
                continue;
            s.x0 = x < s.x0 ? x : s.x0, s.x1 = x > s.x1 ? x : s.x1;
            s.y0 = y < s.y0 ? y : s.y0, s.y1 = y > s.y1 ? y : s.y1;
            s.top = v > s.top ? v : s.top;
            mass += v, s.cx += v * (x + 0.5), s.cy += v * (y + 0.5);
        }
    s.cx /= mass, s.cy /= mass;
    return s;
}

static int prepare(const image *im, uint8_t *field, int fh, int fw, tr_error *err)
{
    float *ink = malloc(sizeof(float) * (size_t)im->w * im->h);
    const int rc = image_ink(im, ink, err) || image_prepare(field, fh, fw, ink, im->h, im->w, err);
    free(ink);
    return rc;
}

int main(void)
{
    tr_error err;
    uint8_t f[40 * 40], g[40 * 40];

    /* A 60 x 30 bar of black ink on white, off-centre in 200 x 100: scaled
     * to 20 x 10 in the 28 x 28 field, centred, full ink inside. */
    image bar = rectangle(200, 100, 120, 50, 180, 80, 255, 0, 0);
    CHECK(prepare(&bar, f, 28, 28, &err) == 0, "%s", err.msg);
    field_stats s = stats(f, 28, 28);
    CHECK(s.x1 - s.x0 + 1 == 20 && s.y1 - s.y0 + 1 == 10,
          "the bar fills %dx%d, not 20x10", s.x1 - s.x0 + 1, s.y1 - s.y0 + 1);
    CHECK(fabs(s.cx - 14) <= 0.5 && fabs(s.cy - 14) <= 0.5, "centre of mass %.2f, %.2f",
          s.cx, s.cy);
    CHECK(s.top == 255 && f[14 * 28 + 14] == 255, "full ink inside: %d", s.top);

    /* The same bar as white ink on black: not inverted, the same field. */
    image light = rectangle(200, 100, 120, 50, 180, 80, 0, 255, 0);
    CHECK(prepare(&light, g, 28, 28, &err) == 0 && memcmp(f, g, 28 * 28) == 0,
          "white on black is the same digit as black on white");

    /* Black ink drawn on a transparent canvas: the same again. */
    image drawn = rectangle(200, 100, 120, 50, 180, 80, 0, 0, 1);
    CHECK(prepare(&drawn, g, 28, 28, &err) == 0 && memcmp(f, g, 28 * 28) == 0,
          "ink on a transparent canvas is the same digit");

    /* 7 x 3 pixels scaled up to 20 x 9 (rounded): 20 / 7 is not whole, so
     * some columns are mixtures, grey. */
    image small = rectangle(30, 30, 10, 10, 17, 13, 255, 0, 0);
    CHECK(prepare(&small, f, 28, 28, &err) == 0, "%s", err.msg);
    s = stats(f, 28, 28);
    CHECK(s.x1 - s.x0 + 1 == 20 && s.y1 - s.y0 + 1 == 9, "7x3 fills %dx%d, not 20x9",
          s.x1 - s.x0 + 1, s.y1 - s.y0 + 1);

    /* A diagonal line scaled down: anti-aliased, so grey levels appear. */
    image diag = rectangle(100, 100, 0, 0, 0, 0, 255, 0, 0);
    for (int k = 0; k < 100; k++)
        for (int t = 0; t < 3; t++)
            memset(diag.rgba + ((long)k * 100 + (k + t < 100 ? k + t : 99)) * 4, 0, 3);
    CHECK(prepare(&diag, f, 28, 28, &err) == 0, "%s", err.msg);
    int greys = 0;
    for (int j = 0; j < 28 * 28; j++)
        greys += f[j] > 0 && f[j] < 255;
    CHECK(greys > 20, "a scaled-down line has grey edges: %d grey pixels", greys);

    /* A field of another shape: 20 x 40 (h x w) takes a box of 14.3 x 28.6,
     * which the 2:1 bar fills as 14 x 29. */
    CHECK(prepare(&bar, f, 20, 40, &err) == 0, "%s", err.msg);
    s = stats(f, 20, 40);
    CHECK(s.x1 - s.x0 + 1 == 29 && s.y1 - s.y0 + 1 == 14, "in 20x40 the bar fills %dx%d",
          s.x1 - s.x0 + 1, s.y1 - s.y0 + 1);
    CHECK(fabs(s.cx - 20) <= 0.5 && fabs(s.cy - 10) <= 0.5, "centred in 20x40: %.2f, %.2f",
          s.cx, s.cy);

    /* Blank pages: one level, and a page whose only marks are faint noise. */
    image blank = rectangle(50, 50, 0, 0, 0, 0, 200, 0, 0);
    CHECK(prepare(&blank, f, 28, 28, &err) != 0 && strstr(err.msg, "no ink"),
          "a blank page: %s", err.msg);
    image faint = rectangle(50, 50, 10, 10, 20, 20, 255, 240, 0);
    CHECK(prepare(&faint, f, 28, 28, &err) != 0 && strstr(err.msg, "no ink"),
          "faint marks: %s", err.msg);

    image *all[] = {&bar, &light, &drawn, &small, &diag, &blank, &faint};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++)
        image_free(all[k]);
    return test_finish("test_image");
}
