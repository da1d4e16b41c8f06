/* image.h: the ink of pictures (inversion, transparency, the page's noise,
 * uneven light) and MNIST's preparation, on shapes whose answer is known: the box the ink
 * is scaled into, its aspect ratio, its centre of mass, grey edges. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "testutil.h"

/* A w x h picture of `page` with a rectangle of `ink` ([x0, x1) x [y0, y1)),
 * opaque, or with alpha = the ink's strength over a transparent page. */
static tr_image rectangle(int w, int h, int x0, int y0, int x1, int y1, uint8_t page,
                          uint8_t ink, int transparent)
{
    tr_image im = {w, h, malloc((size_t)w * h * 4)};
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

static int prepare(const tr_image *im, uint8_t *field, int fh, int fw, tr_error *err)
{
    float *ink = malloc(sizeof(float) * (size_t)im->w * im->h);
    const int rc = tr_image_ink(im, ink, err) ||
                   tr_image_prepare(field, fh, fw, ink, im->h, im->w, err);
    free(ink);
    return rc;
}

/* A w x h photo of a page lit unevenly: its light falls from 235 at the
 * left to 235 - fall at the right, and a corner (x + y < corner) gets
 * `shade` of it; the rectangle [x0, x1) x [y0, y1) is ink that reflects a
 * fifth of the light, and the 3x3 pixels around (spot, spot), when
 * spot >= 0, a speck that reflects 70%. */
static tr_image lit_page(int w, int h, double fall, int corner, double shade, int x0, int y0,
                         int x1, int y1, int spot)
{
    tr_image im = {w, h, malloc((size_t)w * h * 4)};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double light = 235.0 - fall * x / (w - 1);
            if (x + y < corner)
                light *= shade;
            const int in = x >= x0 && x < x1 && y >= y0 && y < y1;
            const int speck = spot >= 0 && abs(x - spot) <= 1 && abs(y - spot) <= 1;
            const double reflects = in ? 0.2 : speck ? 0.7 : 1.0;
            uint8_t *p = im.rgba + ((long)y * w + x) * 4;
            p[0] = p[1] = p[2] = (uint8_t)lround(light * reflects);
            p[3] = 255;
        }
    return im;
}

/* The box of the ink above a tenth (tr_image_field's floor), as "x0 y0 x1 y1"
 * inclusive, and the weakest ink inside [x0, x1) x [y0, y1). */
static void ink_box_of(const float *ink, int w, int h, int box[4], int x0, int y0, int x1,
                       int y1, float *weakest)
{
    box[0] = w, box[1] = h, box[2] = -1, box[3] = -1;
    *weakest = 1.0f;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const float v = ink[(long)y * w + x];
            if (v > 0.1f) {
                box[0] = x < box[0] ? x : box[0], box[1] = y < box[1] ? y : box[1];
                box[2] = x > box[2] ? x : box[2], box[3] = y > box[3] ? y : box[3];
            }
            if (x >= x0 && x < x1 && y >= y0 && y < y1 && v < *weakest)
                *weakest = v;
        }
}

/* Pages lit unevenly: the ink is the rectangle alone, whatever the light;
 * a page lit evenly enough keeps one page level (today's ink, computed
 * here from the border's median). */
static void uneven_light(void)
{
    tr_error err;
    const int w = 240, h = 200;
    float *ink = malloc(sizeof(float) * w * h);
    struct {
        const char *what;
        double fall;
        int corner;
        double shade;
        int spot;
        float weakest;
    } pages[] = {
        {"light falling by 40 levels", 40, 0, 1.0, -1, 0.95f},
        {"light falling by 80 levels", 80, 0, 1.0, -1, 0.95f},
        {"a corner in a 40% shadow", 0, 140, 0.6, -1, 0.95f},
        {"both, and a speck", 40, 140, 0.6, 20, 0.95f},
        /* The lit part of the ink touches the shadow and is measured
         * against the shadow's light: (0.6 - 0.2) / 0.6 of the strongest
         * 0.8. */
        {"a shadow edge across the ink", 40, 230, 0.6, -1, 0.8f},
    };
    for (size_t k = 0; k < sizeof pages / sizeof *pages; k++) {
        tr_image im = lit_page(w, h, pages[k].fall, pages[k].corner, pages[k].shade, 100, 60, 140,
                               150, pages[k].spot);
        int box[4];
        float weakest;
        CHECK(tr_image_ink(&im, ink, &err) == 0, "%s: %s", pages[k].what, err.msg);
        ink_box_of(ink, w, h, box, 100, 60, 140, 150, &weakest);
        CHECK(box[0] == 100 && box[1] == 60 && box[2] == 139 && box[3] == 149,
              "%s: ink in %d,%d-%d,%d, not the rectangle 100,60-139,149", pages[k].what,
              box[0], box[1], box[2], box[3]);
        CHECK(weakest > pages[k].weakest, "%s: the rectangle's weakest ink %.3f",
              pages[k].what, (double)weakest);
        tr_image_free(&im);
    }

    /* Light falling by 12 levels: even enough for one page level, the
     * border's median (the page at the middle column), as before. */
    tr_image even = lit_page(w, h, 12, 0, 1.0, 100, 60, 140, 150, -1);
    CHECK(tr_image_ink(&even, ink, &err) == 0, "%s", err.msg);
    int32_t border[2 * 240 + 2 * 200];
    int nb = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (y == 0 || y == h - 1 || x == 0 || x == w - 1)
                border[nb++] = tr_image_grey(even.rgba + ((long)y * w + x) * 4);
    for (int i = 1; i < nb; i++)
        for (int j = i; j > 0 && border[j - 1] > border[j]; j--) {
            const int32_t t = border[j];
            border[j] = border[j - 1], border[j - 1] = t;
        }
    const int32_t page = border[nb / 2];
    int32_t strongest = 0;
    for (long j = 0; j < (long)w * h; j++) {
        const int32_t d = 255 * page - 255 * tr_image_grey(even.rgba + 4 * j);
        strongest = d > strongest ? d : strongest;
    }
    int same = 1;
    for (long j = 0; j < (long)w * h; j++) {
        const int32_t d = 255 * page - 255 * tr_image_grey(even.rgba + 4 * j);
        same &= ink[j] == (float)((double)(d > 0 ? d : 0) / strongest);
    }
    CHECK(same, "an evenly lit page keeps one page level's ink");
    tr_image_free(&even);
    free(ink);
}

int main(void)
{
    tr_error err;
    uint8_t f[40 * 40], g[40 * 40];

    /* A 60 x 30 bar of black ink on white, off-centre in 200 x 100: scaled
     * to 20 x 10 in the 28 x 28 field, centred, full ink inside. */
    tr_image bar = rectangle(200, 100, 120, 50, 180, 80, 255, 0, 0);
    CHECK(prepare(&bar, f, 28, 28, &err) == 0, "%s", err.msg);
    field_stats s = stats(f, 28, 28);
    CHECK(s.x1 - s.x0 + 1 == 20 && s.y1 - s.y0 + 1 == 10,
          "the bar fills %dx%d, not 20x10", s.x1 - s.x0 + 1, s.y1 - s.y0 + 1);
    CHECK(fabs(s.cx - 14) <= 0.5 && fabs(s.cy - 14) <= 0.5, "centre of mass %.2f, %.2f",
          s.cx, s.cy);
    CHECK(s.top == 255 && f[14 * 28 + 14] == 255, "full ink inside: %d", s.top);

    /* The same bar as white ink on black: not inverted, the same field. */
    tr_image light = rectangle(200, 100, 120, 50, 180, 80, 0, 255, 0);
    CHECK(prepare(&light, g, 28, 28, &err) == 0 && memcmp(f, g, 28 * 28) == 0,
          "white on black is the same digit as black on white");

    /* Black ink drawn on a transparent canvas: the same again. */
    tr_image drawn = rectangle(200, 100, 120, 50, 180, 80, 0, 0, 1);
    CHECK(prepare(&drawn, g, 28, 28, &err) == 0 && memcmp(f, g, 28 * 28) == 0,
          "ink on a transparent canvas is the same digit");

    /* 7 x 3 pixels scaled up to 20 x 9 (rounded): 20 / 7 is not whole, so
     * some columns are mixtures, grey. */
    tr_image small = rectangle(30, 30, 10, 10, 17, 13, 255, 0, 0);
    CHECK(prepare(&small, f, 28, 28, &err) == 0, "%s", err.msg);
    s = stats(f, 28, 28);
    CHECK(s.x1 - s.x0 + 1 == 20 && s.y1 - s.y0 + 1 == 9, "7x3 fills %dx%d, not 20x9",
          s.x1 - s.x0 + 1, s.y1 - s.y0 + 1);

    /* A diagonal line scaled down: anti-aliased, so grey levels appear. */
    tr_image diag = rectangle(100, 100, 0, 0, 0, 0, 255, 0, 0);
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
    tr_image blank = rectangle(50, 50, 0, 0, 0, 0, 200, 0, 0);
    CHECK(prepare(&blank, f, 28, 28, &err) != 0 && strstr(err.msg, "no ink"),
          "a blank page: %s", err.msg);
    tr_image faint = rectangle(50, 50, 10, 10, 20, 20, 255, 240, 0);
    CHECK(prepare(&faint, f, 28, 28, &err) != 0 && strstr(err.msg, "no ink"),
          "faint marks: %s", err.msg);

    uneven_light();

    tr_image *all[] = {&bar, &light, &drawn, &small, &diag, &blank, &faint};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++)
        tr_image_free(all[k]);
    return test_finish("test_image");
}
