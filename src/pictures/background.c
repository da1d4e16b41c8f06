/* background.c - the ink of a photo whose page is unevenly lit.
 *
 * A phone's picture of a digit on paper is seldom evenly lit: the light
 * falls off across the page, a hand or the phone shadows a corner.  One
 * page level for the whole picture then takes the darker part of the page
 * for ink.  Here the page's light is estimated everywhere, the way document
 * scanners flatten a page: the picture is cut into a grid of small cells,
 * each with its median grey level; a closing on the grid (the page side's
 * extreme, then the other side's, over a window a quarter of the picture
 * wide) removes whatever is narrower than the window (strokes) and keeps
 * what is wider (light falling off, shadows); a reconstruction gives back
 * what the window could not fit (a shadow's narrow ends, then, on the
 * pixels, its exact edge).  Ink is then what departs from that light: on a
 * light page, the fraction of the light the ink absorbs (a shadow dims page
 * and ink alike), on a dark page the difference.
 *
 * The sensor's noise would otherwise make specks of ink all over the page
 * and stretch the digit's box to the picture's edges: a pixel counts as
 * ink only where a slightly blurred copy is above the page by five times
 * that copy's noise, measured on the page itself, and groups of ink much
 * smaller than the largest are dropped.
 *
 * A page whose estimated light varies by less than PAGE_EVEN levels is
 * left to one page level (image.c), so that clean pictures and the drawing
 * page's port (which never flattens) keep their bytes.  Compiled, as
 * image.c, without fused multiply-adds: the same bytes on every machine. */
#include "background.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The grid's cells along the picture's longer side. */
#define GRID_CELLS 64
/* A cell's page level is its pixels' median (the rare cell mostly ink is
 * the closing's to remove). */
#define CELL_QUANTILE 0.5
/* The closing's window: (2 * radius + 1) cells, radius = cells / this. */
#define WINDOW_FRACTION 8
/* Below this spread of the estimated light, in grey levels, one level. */
#define PAGE_EVEN 16
/* Ink is above the page's noise by this many standard deviations. */
#define NOISE_MARGIN 5.0f
/* Less than this departure from the page is no ink (image.c's 15%). */
#define LEAST_CONTRAST 0.15f
/* Groups of ink with less than this part of the largest group's are specks. */
#define SPECK 0.02

typedef struct {
    int cols, rows, cell; /* the grid, and a cell's side in pixels */
    float *level;         /* [rows][cols] page levels, 0-255 */
} light_grid;

/* The grey level (0-255, Rec. 601) of every pixel. */
static void grey_levels(float *grey, const tr_image *im)
{
    for (long j = 0; j < (long)im->w * im->h; j++)
        grey[j] = (float)tr_image_grey(im->rgba + 4 * j) / 1000.0f;
}

/* A cell's page level: the grey level below which `quantile` of its pixels
 * lie, to a quarter of a level. */
static float cell_level(const float *grey, int w, int x0, int y0, int x1, int y1,
                        double quantile)
{
    enum { BINS = 1024 };
    long count[BINS] = {0}, n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++, n++) {
            const int b = (int)(grey[(long)y * w + x] * (BINS / 256));
            count[b < BINS ? b : BINS - 1]++;
        }
    const long rank = (long)(quantile * (double)(n - 1));
    long seen = 0;
    int v = 0;
    while (seen + count[v] <= rank)
        seen += count[v++];
    return ((float)v + 0.5f) / (BINS / 256);
}

/* One pass of a running maximum (or minimum) over 2 * radius + 1 cells
 * along a line of n values at stride `step`, the window cut at the ends. */
static void extreme_line(float *out, const float *in, int n, long step, int radius, int largest)
{
    for (int i = 0; i < n; i++) {
        const int a = i - radius < 0 ? 0 : i - radius, b = i + radius >= n ? n - 1 : i + radius;
        float e = in[a * step];
        for (int k = a + 1; k <= b; k++) {
            const float v = in[k * step];
            e = largest ? (v > e ? v : e) : (v < e ? v : e);
        }
        out[i * step] = e;
    }
}

/* A square window's maximum (or minimum) over the grid, through scratch. */
static void extreme_grid(light_grid *g, float *scratch, int radius, int largest)
{
    for (int y = 0; y < g->rows; y++)
        extreme_line(scratch + (long)y * g->cols, g->level + (long)y * g->cols, g->cols, 1,
                     radius, largest);
    for (int x = 0; x < g->cols; x++)
        extreme_line(g->level + x, scratch + x, g->rows, g->cols, radius, largest);
}

static float least(float a, float b)
{
    return a < b ? a : b;
}

/* One raster sweep of reconstruct() on a light page: forward (top left to
 * bottom right, each value taking its already-swept neighbours') or
 * backward.  The row before is taken first, in a loop without a chain. */
static int sweep(float *m, const float *levels, float *row_before, int cols, int rows,
                 int forward)
{
    int changed = 0;
    const int step = forward ? 1 : -1;
    for (int i = 0; i < rows; i++) {
        const int y = forward ? i : rows - 1 - i;
        float *row = m + (long)y * cols;
        const float *level = levels + (long)y * cols;
        const float *before = i > 0 ? m + (long)(y - step) * cols : row;
        for (int x = 0; x < cols; x++) {
            float v = least(row[x], before[x]);
            if (x > 0)
                v = least(v, before[x - 1]);
            if (x + 1 < cols)
                v = least(v, before[x + 1]);
            row_before[x] = v;
        }
        float v = row_before[forward ? 0 : cols - 1];
        for (int j = 0; j < cols; j++) {
            const int x = forward ? j : cols - 1 - j;
            v = least(v, row_before[x]);
            v = v > level[x] ? v : level[x];
            changed |= v != row[x];
            row[x] = v;
        }
    }
    return changed;
}

/* Lowers m (rows x cols, at least `levels` everywhere: on a light page;
 * the other way round on a dark one) towards `levels` wherever a path of
 * values no brighter than the level leads to where m is darker: a
 * reconstruction by erosion, in raster sweeps until nothing changes.  On
 * the grid it gives a shadow's narrow ends, which no window of the closing
 * fits, the shadow's level, while strokes on the lit page stay removed; on
 * the pixels it moves a shadow's edge from the grid's cells to where the
 * edge is.  The sweeps are bounded, as a winding path needs many: what
 * they leave undone is a light a little too bright, never a wrong one.
 *
 * m and levels are turned upside down for a dark page (exactly: negated)
 * and back, so that one sweep serves both.  row: cols floats of scratch. */
static void reconstruct(float *m, float *levels, float *row, int cols, int rows, int light)
{
    const long count = (long)cols * rows;
    for (long k = 0; !light && k < count; k++)
        m[k] = -m[k], levels[k] = -levels[k];
    for (int sweeps = 0, changed = 1; changed && sweeps < 64; sweeps++)
        changed = sweep(m, levels, row, cols, rows, 1) | sweep(m, levels, row, cols, rows, 0);
    for (long k = 0; !light && k < count; k++)
        m[k] = -m[k], levels[k] = -levels[k];
}

/* The page's light on the grid: cell levels, then a closing that leaves
 * the page's side (the light page's maximum first), reconstructed. */
static void estimate_light(light_grid *g, float *scratch, const float *grey, int w, int h,
                           int light)
{
    for (int cy = 0; cy < g->rows; cy++)
        for (int cx = 0; cx < g->cols; cx++) {
            const int x0 = cx * g->cell, y0 = cy * g->cell;
            const int x1 = x0 + g->cell < w ? x0 + g->cell : w;
            const int y1 = y0 + g->cell < h ? y0 + g->cell : h;
            g->level[(long)cy * g->cols + cx] =
                cell_level(grey, w, x0, y0, x1, y1, CELL_QUANTILE);
        }
    const int longer = g->cols > g->rows ? g->cols : g->rows;
    const int radius = longer / WINDOW_FRACTION > 1 ? longer / WINDOW_FRACTION : 1;
    const long cells = (long)g->cols * g->rows;
    float *levels = scratch + cells;
    memcpy(levels, g->level, sizeof(float) * (size_t)cells);
    extreme_grid(g, scratch, radius, light);
    extreme_grid(g, scratch, radius, !light);
    reconstruct(g->level, levels, scratch, g->cols, g->rows, light);
}

/* Where pixel i of n falls between the centres of cells of `cell` pixels:
 * the cell before it, and the weight of the one after. */
static void between_centres(int i, int cell, int cells, int *lo, float *frac)
{
    const float centre = ((float)i + 0.5f) / (float)cell - 0.5f;
    if (centre <= 0.0f) {
        *lo = 0, *frac = 0.0f;
    } else if (centre >= (float)(cells - 1)) {
        *lo = cells - 1, *frac = 0.0f;
    } else {
        *lo = (int)centre;
        *frac = centre - (float)*lo;
    }
}

/* The light at every pixel, bilinear between the cells' centres. */
static void light_at_pixels(float *out, const light_grid *g, int w, int h)
{
    for (int y = 0; y < h; y++) {
        int r;
        float fy;
        between_centres(y, g->cell, g->rows, &r, &fy);
        const float *a = g->level + (long)r * g->cols;
        const float *b = r + 1 < g->rows ? a + g->cols : a;
        for (int x = 0; x < w; x++) {
            int c;
            float fx;
            between_centres(x, g->cell, g->cols, &c, &fx);
            const int c1 = c + 1 < g->cols ? c + 1 : c;
            const float top = a[c] + fx * (a[c1] - a[c]);
            const float bottom = b[c] + fx * (b[c1] - b[c]);
            out[(long)y * w + x] = top + fy * (bottom - top);
        }
    }
}

/* A box mean of radius r, the box cut at the picture's edges: along the
 * rows, then down the columns a row at a time (in memory's order). */
static void box_blur(float *out, float *scratch, const float *in, int w, int h, int r)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const int a = x - r < 0 ? 0 : x - r, b = x + r >= w ? w - 1 : x + r;
            float sum = 0.0f;
            for (int k = a; k <= b; k++)
                sum += in[(long)y * w + k];
            scratch[(long)y * w + x] = sum / (float)(b - a + 1);
        }
    for (int y = 0; y < h; y++) {
        const int a = y - r < 0 ? 0 : y - r, b = y + r >= h ? h - 1 : y + r;
        float *row = out + (long)y * w;
        for (int x = 0; x < w; x++)
            row[x] = scratch[(long)a * w + x];
        for (int k = a + 1; k <= b; k++)
            for (int x = 0; x < w; x++)
                row[x] += scratch[(long)k * w + x];
        for (int x = 0; x < w; x++)
            row[x] /= (float)(b - a + 1);
    }
}

/* The values below which an eighth and a quarter of `v` lie, to 1/4096
 * of their range [lo, hi]. */
static void low_quantiles(const float *v, long n, float lo, float hi, float *q8, float *q4)
{
    enum { BINS = 4096 };
    long count[BINS] = {0};
    *q8 = *q4 = lo;
    const float width = (hi - lo) / BINS;
    for (long j = 0; j < n; j++) {
        const int b = width > 0.0f ? (int)((v[j] - lo) / width) : 0;
        count[b < 0 ? 0 : b >= BINS ? BINS - 1 : b]++;
    }
    long seen = 0;
    for (int b = 0, found = 0; b < BINS && found < 2; b++) {
        seen += count[b];
        if (found == 0 && 8 * seen >= n)
            *q8 = lo + ((float)b + 0.5f) * width, found = 1;
        if (found == 1 && 4 * seen >= n)
            *q4 = lo + ((float)b + 0.5f) * width, found = 2;
    }
}

/* Clears the specks: groups of touching ink pixels (8 neighbours) with
 * less than SPECK of the largest group's ink, which noise left far from
 * the digit and which would stretch its box. */
static int clear_specks(float *ink, int w, int h, tr_error *err)
{
    const long n = (long)w * h;
    /* Pictures are bounded (IMAGE_MAX_PIXELS): indices fit 32 bits. */
    int32_t *group = malloc(sizeof(int32_t) * (size_t)n);
    int32_t *stack = malloc(sizeof(int32_t) * (size_t)n);
    double *mass = malloc(sizeof(double) * (size_t)n);
    if (!group || !stack || !mass) {
        free(group), free(stack), free(mass);
        return tr_error_set(err, "out of memory for a %dx%d picture's ink", w, h);
    }
    int32_t groups = 0;
    for (long j = 0; j < n; j++)
        group[j] = -1;
    for (long j = 0; j < n; j++) {
        if (ink[j] <= 0.0f || group[j] >= 0)
            continue;
        long top = 0;
        mass[groups] = 0.0;
        group[j] = groups, stack[top++] = (int32_t)j;
        while (top > 0) {
            const long k = stack[--top];
            mass[groups] += ink[k];
            const int x = (int)(k % w), y = (int)(k / w);
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    const int nx = x + dx, ny = y + dy;
                    const long m = (long)ny * w + nx;
                    if (nx >= 0 && nx < w && ny >= 0 && ny < h && ink[m] > 0.0f && group[m] < 0)
                        group[m] = groups, stack[top++] = (int32_t)m;
                }
        }
        groups++;
    }
    double largest = 0.0;
    for (int32_t g = 0; g < groups; g++)
        largest = mass[g] > largest ? mass[g] : largest;
    for (long j = 0; j < n; j++)
        if (group[j] >= 0 && mass[group[j]] < SPECK * largest)
            ink[j] = 0.0f;
    free(group), free(stack), free(mass);
    return 0;
}

int tr_ink_on_uneven_page(const tr_image *im, int light, float *ink, tr_error *err)
{
    const int w = im->w, h = im->h;
    const long n = (long)w * h;
    for (long j = 0; j < n; j++)
        if (im->rgba[4 * j + 3] != 255)
            return 0; /* a drawing on a transparent canvas, not a photo */
    light_grid g;
    const int longer = w > h ? w : h;
    g.cell = (longer + GRID_CELLS - 1) / GRID_CELLS;
    g.cols = (w + g.cell - 1) / g.cell, g.rows = (h + g.cell - 1) / g.cell;
    const long cells = (long)g.cols * g.rows;
    float *grey = malloc(sizeof(float) * (size_t)n);
    float *page = malloc(sizeof(float) * (size_t)n);
    float *scratch = malloc(sizeof(float) * (size_t)(n > 2 * cells ? n : 2 * cells));
    g.level = malloc(sizeof(float) * (size_t)cells);
    int rc = 0;
    if (!grey || !page || !scratch || !g.level) {
        rc = tr_error_set(err, "out of memory for a %dx%d picture's page", w, h);
        goto done;
    }
    grey_levels(grey, im);
    estimate_light(&g, scratch, grey, w, h, light);
    float dimmest = g.level[0], brightest = g.level[0];
    for (long k = 1; k < cells; k++) {
        dimmest = g.level[k] < dimmest ? g.level[k] : dimmest;
        brightest = g.level[k] > brightest ? g.level[k] : brightest;
    }
    if (brightest - dimmest < (float)PAGE_EVEN)
        goto done;
    light_at_pixels(page, &g, w, h);
    /* Down to the pixels, on a slightly blurred copy (box radius 1 to 4
     * with the picture's size; the output's place serves as the copy's). */
    const int r = 1 + (w < h ? w : h) / 256 > 4 ? 4 : 1 + (w < h ? w : h) / 256;
    box_blur(ink, scratch, grey, w, h, r);
    for (long j = 0; j < n; j++)
        page[j] = light ? (page[j] > ink[j] ? page[j] : ink[j])
                        : (page[j] < ink[j] ? page[j] : ink[j]);
    reconstruct(page, ink, scratch, w, h, light);
    /* The sensor's noise adds to the grey levels, shadow or not: where ink
     * is, is decided on differences, with one noise level; how much ink
     * is, on a light page, is the fraction of the light it absorbs. */
    for (long j = 0; j < n; j++) {
        const float d = light ? page[j] - grey[j] : grey[j] - page[j];
        page[j] = light ? d / (page[j] > 1.0f ? page[j] : 1.0f) : d / 255.0f;
        grey[j] = d;
    }
    box_blur(grey, scratch, grey, w, h, r);
    float lo = grey[0], hi = grey[0];
    for (long j = 1; j < n; j++) {
        lo = grey[j] < lo ? grey[j] : lo;
        hi = grey[j] > hi ? grey[j] : hi;
    }
    /* The page is at least a quarter of the pixels, and ink only adds:
     * the lowest quarter is the page's noise alone, a normal one's
     * quantiles at -1.150 and -0.674 standard deviations. */
    float q8, q4;
    low_quantiles(grey, n, lo, hi, &q8, &q4);
    const float spread = (q4 - q8) / 0.4755f, level = q4 + 0.6745f * spread;
    const float noise = NOISE_MARGIN * spread, faint = 0.1f * (hi - level);
    const float floor = level + (noise > faint ? noise : faint);
    float strongest = 0.0f;
    for (long j = 0; j < n; j++)
        if (grey[j] > floor && page[j] > strongest)
            strongest = page[j];
    if (strongest < LEAST_CONTRAST)
        goto done; /* no ink on the flattened page: image.c's level stays */
    for (long j = 0; j < n; j++) {
        const float v = page[j] / strongest;
        ink[j] = grey[j] > floor && v > 0.0f ? v : 0.0f;
    }
    if (clear_specks(ink, w, h, err)) {
        rc = -1;
        goto done;
    }
    rc = 1;
done:
    free(grey), free(page), free(scratch), free(g.level);
    return rc;
}
