#include "plots.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

static const tr_rgb WHITE = {255, 255, 255};
static const tr_rgb INK = {30, 30, 30};
static const tr_rgb AXIS = {90, 90, 90};
static const tr_rgb GRID = {228, 228, 228};

/* ---- axes ---------------------------------------------------------------- */

typedef struct {
    double lo, hi;   /* the axis range */
    double step;     /* distance between ticks */
    int decimals;    /* for the tick labels */
} axis;

/* 1, 2 or 5 times a power of ten, the smallest not below x. */
static double nice_step(double x)
{
    double p = pow(10.0, floor(log10(x)));
    double f = x / p;
    return (f <= 1.0 ? 1.0 : f <= 2.0 ? 2.0 : f <= 5.0 ? 5.0 : 10.0) * p;
}

/* An axis that holds [lo, hi] with about 5 ticks at round values, its ends on
 * ticks.  integral: steps of at least 1 (epochs). */
static axis make_axis(double lo, double hi, int integral)
{
    if (!(hi > lo)) {
        double pad = fmax(fabs(lo) * 0.05, integral ? 1.0 : 0.01);
        lo -= pad;
        hi += pad;
    }
    axis a;
    a.step = nice_step((hi - lo) / 5.0);
    if (integral && a.step < 1.0)
        a.step = 1.0;
    a.lo = floor(lo / a.step + 1e-9) * a.step;
    a.hi = ceil(hi / a.step - 1e-9) * a.step;
    a.decimals = a.step >= 1.0 ? 0 : (int)ceil(-log10(a.step) - 1e-9);
    return a;
}

typedef struct {
    int x, y, w, h; /* the plot area in pixels */
    axis ax, ay;
} frame;

static float px_x(const frame *f, double v)
{
    return (float)(f->x + (v - f->ax.lo) / (f->ax.hi - f->ax.lo) * f->w);
}

static float px_y(const frame *f, double v)
{
    return (float)(f->y + f->h - (v - f->ay.lo) / (f->ay.hi - f->ay.lo) * f->h);
}

/* Clips the segment to the frame (Liang-Barsky); returns 0 when nothing is left. */
static int clip(const frame *f, float *x0, float *y0, float *x1, float *y1)
{
    float t0 = 0.0f, t1 = 1.0f, dx = *x1 - *x0, dy = *y1 - *y0;
    const float p[4] = {-dx, dx, -dy, dy};
    const float q[4] = {*x0 - f->x, f->x + f->w - *x0, *y0 - f->y, f->y + f->h - *y0};
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0.0f) {
            if (q[i] < 0.0f)
                return 0;
            continue;
        }
        float t = q[i] / p[i];
        if (p[i] < 0.0f) {
            if (t > t1)
                return 0;
            if (t > t0)
                t0 = t;
        } else {
            if (t < t0)
                return 0;
            if (t < t1)
                t1 = t;
        }
    }
    float ox = *x0, oy = *y0;
    *x0 = ox + t0 * dx;
    *y0 = oy + t0 * dy;
    *x1 = ox + t1 * dx;
    *y1 = oy + t1 * dy;
    return 1;
}

static void format_tick(char *buf, size_t size, double v, int decimals)
{
    if (fabs(v) < 1e-12)
        v = 0.0; /* no "-0.00" */
    snprintf(buf, size, "%.*f", decimals, v);
}

static void draw_frame(tr_canvas *c, const frame *f, const char *xlabel, const char *ylabel)
{
    char buf[32];
    int max_label = 0;
    for (double v = f->ay.lo; v <= f->ay.hi + f->ay.step * 1e-6; v += f->ay.step) {
        int y = (int)lrintf(px_y(f, v));
        tr_canvas_fill_rect(c, f->x, y, f->w, 1, GRID);
        tr_canvas_fill_rect(c, f->x - 6, y, 6, 1, AXIS);
        format_tick(buf, sizeof buf, v, f->ay.decimals);
        int w = tr_canvas_text_width(buf, 2);
        max_label = w > max_label ? w : max_label;
        tr_canvas_text(c, f->x - 10 - w, y - FONT_H, buf, 2, INK);
    }
    for (double v = f->ax.lo; v <= f->ax.hi + f->ax.step * 1e-6; v += f->ax.step) {
        int x = (int)lrintf(px_x(f, v));
        tr_canvas_fill_rect(c, x, f->y, 1, f->h, GRID);
        tr_canvas_fill_rect(c, x, f->y + f->h, 1, 6, AXIS);
        format_tick(buf, sizeof buf, v, f->ax.decimals);
        tr_canvas_text(c, x - tr_canvas_text_width(buf, 2) / 2, f->y + f->h + 12, buf, 2, INK);
    }
    tr_canvas_frame_rect(c, f->x, f->y, f->w + 1, f->h + 1, AXIS);
    tr_canvas_text(c, f->x + (f->w - tr_canvas_text_width(xlabel, 2)) / 2, f->y + f->h + 36,
                   xlabel, 2, INK);
    tr_canvas_text_up(c, f->x - 24 - max_label - FONT_H * 2,
                      f->y + (f->h - tr_canvas_text_width(ylabel, 2)) / 2, ylabel, 2, INK);
}

/* ---- curves -------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The y range of the finite values of both series; a far outlier above the
 * rest (a spike) does not stretch the axis: the top is capped above the 90th
 * percentile instead. */
static void value_range(const double *v, int n, double *lo, double *hi)
{
    double *sorted = malloc(sizeof(double) * (size_t)(n ? n : 1));
    int k = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i]))
            sorted[k++] = v[i];
    if (k == 0) {
        *lo = 0.0;
        *hi = 1.0;
        free(sorted);
        return;
    }
    qsort(sorted, (size_t)k, sizeof *sorted, cmp_double);
    *lo = sorted[0];
    *hi = sorted[k - 1];
    if (k >= 5) {
        double q = sorted[(k - 1) * 9 / 10];
        double cap = q + 3.0 * fmax(q - *lo, 0.1 * fabs(q));
        if (*hi > cap)
            *hi = cap;
    }
    free(sorted);
}

/* One series: the line, then the markers, then the value of points clipped off
 * the top. */
static void draw_series(tr_canvas *c, const frame *f, const double *v, int n, tr_rgb color)
{
    const float marker = n <= 60 ? 3.5f : n <= 150 ? 2.5f : 0.0f;
    for (int i = 0; i + 1 < n; i++) {
        if (!isfinite(v[i]) || !isfinite(v[i + 1]))
            continue;
        float x0 = px_x(f, i + 1), y0 = px_y(f, v[i]);
        float x1 = px_x(f, i + 2), y1 = px_y(f, v[i + 1]);
        if (clip(f, &x0, &y0, &x1, &y1))
            tr_canvas_line(c, x0, y0, x1, y1, 2.0f, color);
    }
    for (int i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            continue;
        float x = px_x(f, i + 1), y = px_y(f, v[i]);
        if (v[i] > f->ay.hi) {
            char buf[32];
            snprintf(buf, sizeof buf, "%.3g", v[i]);
            tr_canvas_disk(c, x, (float)f->y, 4.0f, color);
            tr_canvas_text(c, (int)x + 6, f->y + 4, buf, 2, color);
        } else if (marker > 0.0f || n == 1) {
            tr_canvas_disk(c, x, y, marker > 0.0f ? marker : 3.5f, color);
        }
    }
}

static int any_finite(const double *v, int n)
{
    for (int i = 0; i < n; i++)
        if (isfinite(v[i]))
            return 1;
    return 0;
}

static void draw_legend(tr_canvas *c, int right, int y, int with_val)
{
    const char *names[2] = {"training", "validation"};
    const tr_rgb colors[2] = {PLOT_TRAIN_COLOR, PLOT_VAL_COLOR};
    int x = right;
    for (int s = with_val ? 1 : 0; s >= 0; s--) {
        x -= tr_canvas_text_width(names[s], 2);
        tr_canvas_text(c, x, y, names[s], 2, INK);
        x -= 34;
        tr_canvas_line(c, (float)x, y + 7.0f, x + 24.0f, y + 7.0f, 2.0f, colors[s]);
        tr_canvas_disk(c, x + 12.0f, y + 7.0f, 3.5f, colors[s]);
        x -= 20;
    }
}

/* The left edge of a label w wide beside the line at x: right of it, or left
 * of it where the frame ends first. */
static int label_left(const frame *f, float x, int w)
{
    return (int)x + 4 + w <= f->x + f->w ? (int)x + 4 : (int)x - 4 - w;
}

/* A vertical line at epoch e across the frame, labelled at height y. */
static void mark_epoch(tr_canvas *c, const frame *f, int e, int y, const char *label, tr_rgb color)
{
    const float x = px_x(f, e);
    tr_canvas_line(c, x, (float)f->y, x, (float)(f->y + f->h), 1.5f, color);
    tr_canvas_text(c, label_left(f, x, tr_canvas_text_width(label, 2)), y, label, 2, color);
}

enum { LABEL_H = 20, LABEL_ROWS = 8 };

/* A label's place: columns [x0, x1), rows [y, y + LABEL_H). */
typedef struct {
    int x0, x1, y;
} label_box;

/* The pixel row of series v at pixel column x (between its points, on the
 * line joining them); NAN where the series has no line there. */
static float series_y_at(const frame *f, const double *v, int n, float x)
{
    const double e = f->ax.lo + (x - f->x) / f->w * (f->ax.hi - f->ax.lo);
    const int i = (int)floor(e) - 1; /* the point at or before epoch e */
    if (i < 0 || i >= n || !isfinite(v[i]))
        return NAN;
    if (i + 1 >= n || !isfinite(v[i + 1]))
        return e - (i + 1) < 1e-9 ? px_y(f, v[i]) : NAN;
    const double t = e - (i + 1);
    return px_y(f, fmin(v[i] + t * (v[i + 1] - v[i]), f->ay.hi));
}

/* How far (in pixels) box b keeps from the curves; 0 when it touches one
 * of the boxes already taken. */
static float label_clearance(const frame *f, const double *const *series, int n, label_box b,
                             const label_box *taken, int n_taken)
{
    for (int k = 0; k < n_taken; k++)
        if (b.x0 < taken[k].x1 && taken[k].x0 < b.x1 && abs(b.y - taken[k].y) < LABEL_H)
            return 0.0f;
    float clear = (float)f->h;
    for (int s = 0; s < 2; s++)
        for (int x = b.x0 - 4; x <= b.x1 + 4; x += 2) {
            const float cy = series_y_at(f, series[s], n, (float)x);
            if (isnan(cy))
                continue;
            const float below = b.y + LABEL_H;
            const float d = cy < b.y ? b.y - cy : cy > below ? cy - below : 0.0f;
            clear = d < clear ? d : clear;
        }
    return clear;
}

/* The mark at epoch e with its label in the row, from the top of the frame
 * down, that keeps clear of both curves (8 pixels or more), else in the one
 * farthest from them; the label's box joins those taken. */
static void mark_epoch_clear(tr_canvas *c, const frame *f, int e, const char *label, tr_rgb color,
                             const double *const *series, int n, label_box *taken, int *n_taken)
{
    const int w = tr_canvas_text_width(label, 2);
    label_box b = {.x0 = label_left(f, px_x(f, e), w)};
    b.x1 = b.x0 + w;
    int best_y = f->y + 6;
    float best = -1.0f;
    for (int r = 0; r < LABEL_ROWS; r++) {
        b.y = f->y + 6 + r * (f->h - 12 - LABEL_H) / (LABEL_ROWS - 1);
        const float clear = label_clearance(f, series, n, b, taken, *n_taken);
        if (clear > best) {
            best = clear;
            best_y = b.y;
        }
        if (clear >= 8.0f)
            break;
    }
    b.y = best_y;
    taken[(*n_taken)++] = b;
    mark_epoch(c, f, e, best_y, label, color);
}

/* Whether the rate steps at epoch i + 1 (rows[i]) from a rate that held, or
 * to one that holds: a rule's change.  A schedule's rate moves every epoch
 * and is not marked. */
static int rate_steps(const tr_epoch_stats *rows, int n, int i)
{
    const double a = rows[i - 1].learning_rate, b = rows[i].learning_rate;
    if (!isfinite(a) || !isfinite(b) || a == b)
        return 0;
    return (i >= 2 && rows[i - 2].learning_rate == a) ||
           (i + 1 < n && rows[i + 1].learning_rate == b);
}

/* What the callbacks did: the best epoch, where training stopped, and each
 * epoch where the learning rate steps (rate_steps). */
static void draw_marks(tr_canvas *c, const frame *f, const tr_epoch_stats *rows, int n,
                       const tr_curve_marks *m, const double *const *series)
{
    /* Labels of changes close together climb in turn so as not to overlap. */
    for (int i = 1, k = 0; i < n; i++) {
        const double b = rows[i].learning_rate;
        if (rate_steps(rows, n, i)) {
            char label[32];
            snprintf(label, sizeof label, "lr %.3g", b);
            mark_epoch(c, f, i + 1, f->y + f->h - 24 - 20 * (k++ % 3), label, PLOT_LR_COLOR);
        }
    }
    if (!m)
        return;
    label_box taken[2];
    int n_taken = 0;
    if (m->best_epoch >= 1 && m->best_epoch <= n)
        mark_epoch_clear(c, f, m->best_epoch, "best", PLOT_BEST_COLOR, series, n, taken,
                         &n_taken);
    if (m->stopped_epoch >= 1 && m->stopped_epoch <= n)
        mark_epoch_clear(c, f, m->stopped_epoch, "stopped", AXIS, series, n, taken, &n_taken);
}

/* Whether draw_marks puts a line at epoch e. */
static int marked(const tr_epoch_stats *rows, int n, const tr_curve_marks *m, int e)
{
    if (m && (m->best_epoch == e || m->stopped_epoch == e))
        return 1;
    return e >= 2 && e <= n && rate_steps(rows, n, e - 1);
}

/* A panel; values never go above `ceiling` (1 for accuracy), so the axis does not
 * either. */
static void draw_panel(tr_canvas *c, int left, const char *title, const double *train,
                       const double *val, int n, double ceiling, const tr_epoch_stats *rows,
                       const tr_curve_marks *marks)
{
    enum { PANEL_W = 600, TOP = 56, BOTTOM = 64, LEFT = 96, RIGHT = 24 };
    double *both = malloc(sizeof(double) * (size_t)(2 * n));
    memcpy(both, train, sizeof(double) * (size_t)n);
    memcpy(both + n, val, sizeof(double) * (size_t)n);
    double lo, hi;
    value_range(both, 2 * n, &lo, &hi);
    free(both);
    frame f = {.x = left + LEFT, .y = TOP, .w = PANEL_W - LEFT - RIGHT,
               .h = c->height - TOP - BOTTOM};
    /* A mark on the first or last epoch would fall on the frame's edge and
     * vanish in it: the axis then reaches a tick further. */
    f.ax = make_axis(marked(rows, n, marks, 1) ? 0.5 : 1.0,
                     marked(rows, n, marks, n) ? n + 0.5 : (double)n, 1);
    /* A margin keeps points off the frame, as matplotlib's 5%, but it does not
     * make room for values that cannot occur: below 0 or above the ceiling. */
    double margin = 0.05 * (hi - lo);
    double lo_m = lo >= 0.0 && lo - margin < 0.0 ? 0.0 : lo - margin;
    double hi_m = hi <= ceiling && hi + margin > ceiling ? ceiling : hi + margin;
    f.ay = make_axis(lo_m, hi_m, 0);
    draw_frame(c, &f, "Epoch", title);
    const double *series[2] = {train, val};
    draw_marks(c, &f, rows, n, marks, series);
    draw_series(c, &f, train, n, PLOT_TRAIN_COLOR);
    draw_series(c, &f, val, n, PLOT_VAL_COLOR);
    tr_canvas_text(c, f.x, 18, title, 3, INK);
    draw_legend(c, f.x + f.w, 22, any_finite(val, n));
}

int tr_plot_curves(tr_canvas *c, const tr_epoch_stats *rows, int n, const tr_curve_marks *marks,
                   tr_error *err)
{
    if (n < 1)
        return tr_error_set(err, "no epochs to plot");
    if (tr_canvas_init(c, 1200, 520, WHITE, err))
        return -1;
    double *v = malloc(sizeof(double) * 4 * (size_t)n);
    if (!v) {
        tr_canvas_free(c);
        return tr_error_set(err, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        v[i] = rows[i].accuracy;
        v[n + i] = rows[i].val_accuracy;
        v[2 * n + i] = rows[i].loss;
        v[3 * n + i] = rows[i].val_loss;
    }
    draw_panel(c, 0, "Accuracy", v, v + n, n, 1.0, rows, marks);
    draw_panel(c, 600, "Loss", v + 2 * n, v + 3 * n, n, INFINITY, rows, marks);
    free(v);
    return 0;
}

/* ---- digit grids --------------------------------------------------------- */

enum { GRID_COLS = 10, TILE_PAD = 12, CAPTION_H = 28, TITLE_H = 44 };

static int tile_scale(const tr_dataset *d)
{
    int s = 84 / (int)(d->rows > d->cols ? d->rows : d->cols);
    return s < 1 ? 1 : s;
}

static int cell_width(const tr_dataset *d)
{
    /* Room for a mistake's caption, "#9999: 7 (2)", or with named classes
     * for "name (name)" of the widest name, up to a bound (longer captions
     * are written smaller, then shortened). */
    int w = (int)d->cols * tile_scale(d) + 2 * TILE_PAD;
    int widest = 0;
    char name[CLASS_NAME_MAX];
    for (uint32_t k = 0; d->class_names[0] && k < d->classes; k++) {
        const int n = tr_canvas_text_width(tr_class_name(d->class_names, (int)k, name), 2);
        widest = n > widest ? n : widest;
    }
    const int named = widest ? 2 * widest + tr_canvas_text_width(" ()", 2) + 8 : 0;
    w = named > w ? named : w;
    return w < 120 ? 120 : w > 240 ? 240 : w;
}

static int cell_height(const tr_dataset *d)
{
    return (int)d->rows * tile_scale(d) + CAPTION_H + TILE_PAD;
}

void tr_plot_tile_rect(const tr_dataset *d, int slot, int *x, int *y, int *w, int *h)
{
    int s = tile_scale(d), cw = cell_width(d);
    *w = (int)d->cols * s;
    *h = (int)d->rows * s;
    *x = (slot % GRID_COLS) * cw + (cw - *w) / 2;
    *y = TITLE_H + (slot / GRID_COLS) * cell_height(d);
}

/* Allocates a grid canvas for count tiles of d. */
static int grid_init(tr_canvas *c, const tr_dataset *d, uint32_t count, const char *title,
                     tr_error *err)
{
    int cols = count < GRID_COLS ? (int)count : GRID_COLS;
    int rows = (int)((count + GRID_COLS - 1) / GRID_COLS);
    int width = cols * cell_width(d);
    int tw = tr_canvas_text_width(title, 2) + 2 * TILE_PAD;
    if (width < tw)
        width = tw;
    if (tr_canvas_init(c, width, TITLE_H + rows * cell_height(d), WHITE, err))
        return -1;
    tr_canvas_text(c, TILE_PAD, 14, title, 2, INK);
    return 0;
}

/* Draws tile pixels: grey, or in colour for three channels. */
static void tile_pixels(tr_canvas *c, const tr_dataset *d, const uint8_t *img, int x, int y)
{
    const int s = tile_scale(d);
    if (d->channels == 3) {
        for (uint32_t r = 0; r < d->rows; r++)
            for (uint32_t q = 0; q < d->cols; q++) {
                const uint8_t *p = img + ((size_t)r * d->cols + q) * 3;
                tr_canvas_fill_rect(c, x + (int)q * s, y + (int)r * s, s, s,
                                    (tr_rgb){p[0], p[1], p[2]});
            }
        return;
    }
    /* Another count of channels is drawn in grey, their mean. */
    uint8_t *mean = NULL;
    if (d->channels > 1 && (mean = malloc((size_t)d->rows * d->cols))) {
        for (size_t p = 0; p < (size_t)d->rows * d->cols; p++) {
            unsigned sum = 0;
            for (uint32_t ch = 0; ch < d->channels; ch++)
                sum += img[p * d->channels + ch];
            mean[p] = (uint8_t)(sum / d->channels);
        }
        img = mean;
    }
    if (d->channels == 1 || mean)
        tr_canvas_gray_image(c, x, y, img, (int)d->cols, (int)d->rows, s, 1);
    free(mean);
}

static void grid_tile(tr_canvas *c, const tr_dataset *d, uint32_t sample, int slot,
                      const char *caption, tr_rgb color)
{
    int x, y, w, h;
    tr_plot_tile_rect(d, slot, &x, &y, &w, &h);
    tile_pixels(c, d, d->pixels + (size_t)sample * d->dim, x, y);
    tr_canvas_frame_rect(c, x - 1, y - 1, w + 2, h + 2, GRID);
    /* Class names can be long: a smaller font, then a shortened caption. */
    const int room = cell_width(d) - 4;
    int scale = tr_canvas_text_width(caption, 2) <= room ? 2 : 1;
    char text[96];
    snprintf(text, sizeof text, "%s", caption);
    for (size_t n = strlen(text); n > 3 && tr_canvas_text_width(text, scale) > room; n--)
        memcpy(text + n - 3, "..", 3);
    tr_canvas_text(c, x + (w - tr_canvas_text_width(text, scale)) / 2, y + h + 8, text, scale,
                   color);
}

int tr_plot_digits(tr_canvas *c, const tr_dataset *d, uint32_t first, uint32_t count,
                   int with_labels, tr_error *err)
{
    if (first >= d->n || count == 0)
        return tr_error_set(err, "no images from %u on (the file has %u)", first, d->n);
    if (count > d->n - first)
        count = d->n - first;
    char title[96];
    snprintf(title, sizeof title, "Images %u to %u%s", first, first + count - 1,
             with_labels ? " with their labels" : "");
    if (grid_init(c, d, count, title, err))
        return -1;
    for (uint32_t k = 0; k < count; k++) {
        char caption[CLASS_NAME_MAX];
        if (with_labels)
            tr_class_name(d->class_names, d->labels[first + k], caption);
        else
            snprintf(caption, sizeof caption, "#%u", first + k);
        grid_tile(c, d, first + k, (int)k, caption, INK);
    }
    return 0;
}

int tr_plot_classes(tr_canvas *c, const tr_dataset *d, int per_class, tr_error *err)
{
    if (d->n == 0 || per_class < 1 || per_class > GRID_COLS)
        return tr_error_set(err, "no images to draw");
    /* The first per_class images of each class, a row each. */
    uint32_t *pick = malloc(sizeof *pick * (size_t)d->classes * (size_t)per_class);
    if (!pick)
        return tr_error_set(err, "out of memory");
    uint32_t n = 0;
    for (uint32_t k = 0; k < d->classes; k++) {
        uint32_t got = 0;
        for (uint32_t i = 0; i < d->n && got < (uint32_t)per_class; i++)
            if (d->labels[i] == k)
                pick[n + got++] = i;
        n += got;
    }
    char title[96];
    snprintf(title, sizeof title, "The first %d training images of each class", per_class);
    /* A row of GRID_COLS slots a class, short rows left empty. */
    int rc = grid_init(c, d, d->classes * GRID_COLS - (GRID_COLS - (uint32_t)per_class), title,
                       err);
    char caption[CLASS_NAME_MAX];
    for (uint32_t j = 0, within = 0; rc == 0 && j < n; j++) {
        const uint32_t k = d->labels[pick[j]];
        within = j > 0 && d->labels[pick[j - 1]] == k ? within + 1 : 0;
        grid_tile(c, d, pick[j], (int)(k * GRID_COLS + within),
                  tr_class_name(d->class_names, (int)k, caption), INK);
    }
    free(pick);
    return rc;
}

uint32_t tr_plot_pick(const tr_dataset *d, const uint8_t *pred, uint32_t first, uint32_t count,
                      int errors_only, uint32_t *pick, uint32_t *wrong)
{
    /* Without errors_only every image visited is picked; with it, every
     * mistake from first on is visited and counted. */
    uint32_t n = 0;
    *wrong = 0;
    for (uint32_t i = first; i < d->n && (errors_only || n < count); i++) {
        const int mistake = pred[i] != d->labels[i];
        if (n < count && (!errors_only || mistake))
            pick[n++] = i;
        *wrong += (uint32_t)mistake;
    }
    return n;
}

int tr_plot_predictions(tr_canvas *c, const tr_dataset *d, const uint8_t *pred, uint32_t first,
                        uint32_t count, int errors_only, tr_error *err)
{
    if (first >= d->n || count == 0)
        return tr_error_set(err, "no images from %u on (the file has %u)", first, d->n);
    uint32_t *pick = malloc(sizeof *pick * count);
    if (!pick)
        return tr_error_set(err, "out of memory");
    uint32_t wrong;
    const uint32_t n = tr_plot_pick(d, pred, first, count, errors_only, pick, &wrong);
    if (n == 0) {
        free(pick);
        return tr_error_set(err, "no mistakes from image %u on: nothing to show", first);
    }
    char title[160];
    if (errors_only && first == 0)
        snprintf(title, sizeof title,
                 "Mistakes: %u of %u test images wrong, %u shown as #index: predicted (true)",
                 wrong, d->n, n);
    else if (errors_only)
        snprintf(title, sizeof title,
                 "Mistakes: %u of test images %u to %u wrong, %u shown as #index: predicted "
                 "(true)", wrong, first, d->n - 1, n);
    else
        snprintf(title, sizeof title, "Test images %u to %u: predicted (true), %u wrong in red",
                 pick[0], pick[n - 1], wrong);
    if (grid_init(c, d, n, title, err)) {
        free(pick);
        return -1;
    }
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = pick[k];
        char caption[2 * CLASS_NAME_MAX + 32], p[CLASS_NAME_MAX], t[CLASS_NAME_MAX];
        tr_class_name(d->class_names, pred[i], p);
        tr_class_name(d->class_names, d->labels[i], t);
        if (errors_only)
            snprintf(caption, sizeof caption, "#%u: %s (%s)", i, p, t);
        else
            snprintf(caption, sizeof caption, "%s (%s)", p, t);
        grid_tile(c, d, i, (int)k, caption,
                  pred[i] != d->labels[i] ? PLOT_MISTAKE_COLOR : INK);
    }
    free(pick);
    return 0;
}

/* ---- trainer predict's verdicts -------------------------------------------- */

enum { VERDICT_PAD = 16, VERDICT_ROW = 210, VERDICT_BARS = 10, VERDICT_BAR_H = 17,
       VERDICT_BAR_W = 200 };

/* rgb pixels [h][w][3] drawn at (x, y), shrunk by whole steps to fit a box
 * of side `box` (nearest pixel). */
static void draw_rgb(tr_canvas *c, int x, int y, const uint8_t *px, int w, int h, int box)
{
    const int step = (w > h ? w : h) > box ? ((w > h ? w : h) + box - 1) / box : 1;
    for (int ty = 0; ty * step < h; ty++)
        for (int tx = 0; tx * step < w; tx++) {
            const uint8_t *p = px + ((long)ty * step * w + (long)tx * step) * 3;
            tr_canvas_fill_rect(c, x + tx, y + ty, 1, 1, (tr_rgb){p[0], p[1], p[2]});
        }
}

int tr_plot_verdicts(tr_canvas *c, const tr_plot_verdict *v, int n, int classes, const char *title,
                     tr_error *err)
{
    if (n < 1 || n > PLOT_VERDICTS_MAX || classes < 1 || classes > DATASET_MAX_CLASSES)
        return tr_error_set(err, "%d pictures of %d classes to draw", n, classes);
    const int bars = classes < VERDICT_BARS ? classes : VERDICT_BARS;
    const int left_bars = VERDICT_PAD * 3 + 2 * PLOT_THUMB + 24;
    const int width = left_bars + 40 + VERDICT_BAR_W + 110;
    if (tr_canvas_init(c, width, TITLE_H + n * VERDICT_ROW, WHITE, err))
        return -1;
    tr_canvas_text(c, VERDICT_PAD, 14, title, 2, INK);
    for (int k = 0; k < n; k++) {
        const int top = TITLE_H + k * VERDICT_ROW, y = top + 30;
        char name[64];
        snprintf(name, sizeof name, "%.60s", v[k].name);
        tr_canvas_text(c, VERDICT_PAD, top + 6, name, 2, INK);
        tr_canvas_frame_rect(c, VERDICT_PAD - 1, y - 1, PLOT_THUMB + 2, PLOT_THUMB + 2, GRID);
        draw_rgb(c, VERDICT_PAD, y, v[k].thumb, v[k].tw, v[k].th, PLOT_THUMB);
        const int sx = VERDICT_PAD * 2 + PLOT_THUMB + 12;
        const int side = v[k].sw > v[k].sh ? v[k].sw : v[k].sh;
        const int scale = side < PLOT_THUMB ? PLOT_THUMB / side : 1;
        tr_canvas_frame_rect(c, sx - 1, y - 1, PLOT_THUMB + 2, PLOT_THUMB + 2, GRID);
        tr_canvas_gray_image(c, sx, y, v[k].seen, v[k].sw, v[k].sh, scale, 0);
        /* The likeliest classes, most likely first. */
        int order[VERDICT_BARS];
        tr_model_top_classes(v[k].probs, classes, order, bars);
        const int bar_h = VERDICT_BAR_H;
        for (int b = 0; b < bars; b++) {
            const float p = v[k].probs[order[b]];
            const int by = y + b * bar_h;
            char label[16], pct[16];
            snprintf(label, sizeof label, "%d", order[b]);
            snprintf(pct, sizeof pct, "%.1f%%", 100.0 * p);
            tr_canvas_text(c, left_bars, by + 1, label, 2, INK);
            const int len = (int)(p * VERDICT_BAR_W + 0.5f);
            tr_canvas_fill_rect(c, left_bars + 32, by + 1, len > 0 ? len : 1, bar_h - 3,
                                b == 0 ? PLOT_TRAIN_COLOR : GRID);
            tr_canvas_text(c, left_bars + 40 + VERDICT_BAR_W, by + 1, pct, 2, INK);
        }
    }
    return 0;
}

/* ---- confusion matrix ---------------------------------------------------- */

void tr_confusion_count(uint32_t *counts, int classes, const uint8_t *labels,
                        const uint8_t *pred, uint32_t n)
{
    memset(counts, 0, sizeof(uint32_t) * (size_t)classes * (size_t)classes);
    for (uint32_t i = 0; i < n; i++)
        counts[(size_t)labels[i] * (size_t)classes + pred[i]]++;
}

/* Class k's label in at most `room` pixels at `scale`: its name (shortened
 * with "..") or its number. */
static void class_label(char *buf, const char *names, int k, int room, int scale)
{
    tr_class_name(names, k, buf);
    for (size_t n = strlen(buf); n > 3 && tr_canvas_text_width(buf, scale) > room; n--)
        memcpy(buf + n - 3, "..", 3);
}

int tr_plot_confusion(tr_canvas *c, const uint32_t *counts, int classes, const char *names,
                      tr_error *err)
{
    enum { RIGHT = 130, NAME_ROOM = 180 };
    const int K = classes;
    if (K < 1 || K > DATASET_MAX_CLASSES)
        return tr_error_set(err, "a confusion matrix of %d classes", K);
    /* Cells of 60 pixels up to 12 classes, then smaller, so that 47 classes
     * still fit a screen; the counts are written in cells wide enough. */
    const int CELL = K <= 12 ? 60 : K * 16 <= 900 ? 900 / K : 16;
    const int scale = CELL >= 36 ? 2 : 1, with_counts = CELL >= 44;
    const int font_h = scale * FONT_H / 2;
    /* Named classes: the names left of the rows and up above the columns,
     * with room for the longest. */
    const int named = names && names[0];
    int widest = 0;
    char buf[96], label[CLASS_NAME_MAX];
    for (int k = 0; named && k < K; k++) {
        class_label(label, names, k, NAME_ROOM, scale);
        const int w = tr_canvas_text_width(label, scale);
        widest = w > widest ? w : widest;
    }
    const int LEFT = named ? 60 + widest : 90, TOP = named ? 82 + widest : 110;
    if (tr_canvas_init(c, LEFT + K * CELL + RIGHT, TOP + K * CELL + 30, WHITE, err))
        return -1;
    uint64_t total = 0, right = 0;
    for (int t = 0; t < K; t++)
        for (int p = 0; p < K; p++) {
            total += counts[t * K + p];
            right += t == p ? counts[t * K + p] : 0;
        }
    snprintf(buf, sizeof buf, "Confusion matrix: %llu images, accuracy %.2f%%",
             (unsigned long long)total, total ? 100.0 * (double)right / (double)total : 0.0);
    tr_canvas_text(c, 16, 14, buf, 2, INK);
    tr_canvas_text(c, LEFT + (K * CELL - tr_canvas_text_width("predicted", 2)) / 2,
                   named ? 48 : TOP - 56, "predicted", 2, INK);
    tr_canvas_text_up(c, 16, TOP + (K * CELL - tr_canvas_text_width("true", 2)) / 2, "true", 2,
                      INK);
    tr_canvas_text(c, LEFT + K * CELL + 14, TOP - 28, "right", 2, INK);
    for (int t = 0; t < K; t++) {
        uint64_t row = 0;
        for (int p = 0; p < K; p++)
            row += counts[t * K + p];
        class_label(label, names, t, NAME_ROOM, scale);
        const int w = tr_canvas_text_width(label, scale);
        tr_canvas_text(c, LEFT - 14 - w, TOP + t * CELL + CELL / 2 - font_h, label, scale, INK);
        if (named)
            tr_canvas_text_up(c, LEFT + t * CELL + CELL / 2 - font_h, TOP - 10 - w, label, scale,
                              INK);
        /* Column numbers that would touch are written every other column. */
        else if (w + 4 <= CELL || t % 2 == 0)
            tr_canvas_text(c, LEFT + t * CELL + (CELL - w) / 2, TOP - 28, label, scale, INK);
        for (int p = 0; p < K; p++) {
            const uint32_t n = counts[t * K + p];
            /* The share of the true class' row, on a white-to-blue ramp. */
            double share = row ? (double)n / (double)row : 0.0;
            double a = n ? 0.08 + 0.92 * sqrt(share) : 0.0;
            tr_rgb cell = {(uint8_t)lrint(255 - a * (255 - 8)),
                           (uint8_t)lrint(255 - a * (255 - 48)),
                           (uint8_t)lrint(255 - a * (255 - 107))};
            int x = LEFT + p * CELL, y = TOP + t * CELL;
            tr_canvas_fill_rect(c, x, y, CELL, CELL, cell);
            if (!with_counts)
                continue;
            snprintf(buf, sizeof buf, "%u", n);
            tr_canvas_text(c, x + (CELL - tr_canvas_text_width(buf, 2)) / 2, y + CELL / 2 - FONT_H,
                           buf, 2, a > 0.55 ? WHITE : INK);
        }
        snprintf(buf, sizeof buf, "%.1f%%", row ? 100.0 * counts[t * K + t] / (double)row : 0.0);
        tr_canvas_text(c, LEFT + K * CELL + 14, TOP + t * CELL + CELL / 2 - font_h, buf, scale,
                       INK);
    }
    tr_canvas_frame_rect(c, LEFT - 1, TOP - 1, K * CELL + 2, K * CELL + 2, AXIS);
    return 0;
}
