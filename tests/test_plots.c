/* The pictures, decoded back with libpng and looked at: sizes, ink where it
 * belongs, both series' colours in each panel, odd histories, failed writes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/stat.h>

#include "plots.h"
#include "pngutil.h"
#include "testutil.h"

/* The curves' plot areas sit below the title and legend line (y < 56) and
 * above the tick labels; counting only there keeps the legend out. */
enum { PLOT_TOP = 58, PLOT_BOTTOM = 520 - 64 };

static int encode_decode(const tr_canvas *c, decoded_png *out)
{
    uint8_t *png;
    size_t len;
    tr_error err;
    if (tr_canvas_encode_png(c, &png, &len, &err)) {
        CHECK(0, "encode: %s", err.msg);
        return -1;
    }
    int r = png_decode_memory(out, png, len);
    CHECK(r == 0, "the PNG does not decode");
    CHECK(len > 8 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0, "PNG signature");
    free(png);
    return r;
}

static long series_pixels(const decoded_png *p, int panel, tr_rgb color)
{
    int x0 = panel * p->width / 2;
    return png_count_color(p, x0, PLOT_TOP, x0 + p->width / 2, PLOT_BOTTOM, color.r, color.g,
                           color.b);
}

/* The rows spanned by a colour inside a panel's plot area. */
static int series_span(const decoded_png *p, int panel, tr_rgb color)
{
    int top = -1, bottom = -1;
    int x0 = panel * p->width / 2;
    for (int y = PLOT_TOP; y < PLOT_BOTTOM; y++)
        if (png_count_color(p, x0, y, x0 + p->width / 2, y + 1, color.r, color.g, color.b)) {
            if (top < 0)
                top = y;
            bottom = y;
        }
    return top < 0 ? 0 : bottom - top;
}

/* Draws the curves of rows[0..n) and checks what every curves picture must show. */
static void check_curves(const char *what, const tr_epoch_stats *rows, int n, int with_val,
                         decoded_png *out)
{
    tr_canvas c;
    tr_error err;
    memset(out, 0, sizeof *out);
    if (tr_plot_curves(&c, rows, n, NULL, &err)) {
        CHECK(0, "%s: %s", what, err.msg);
        return;
    }
    int r = encode_decode(&c, out);
    tr_canvas_free(&c);
    if (r)
        return;
    CHECK(out->width == 1200 && out->height == 520, "%s: size %dx%d", what, out->width,
          out->height);
    for (int panel = 0; panel < 2; panel++) {
        long t = series_pixels(out, panel, PLOT_TRAIN_COLOR);
        long v = series_pixels(out, panel, PLOT_VAL_COLOR);
        CHECK(t >= 20, "%s: panel %d has %ld training pixels", what, panel, t);
        if (with_val)
            CHECK(v >= 20, "%s: panel %d has %ld validation pixels", what, panel, v);
        else
            CHECK(v == 0, "%s: panel %d shows validation without data", what, panel);
    }
}

static void test_curves(void)
{
    enum { N = 1000 };
    tr_epoch_stats *rows = calloc(N, sizeof *rows);
    decoded_png p;
    for (int i = 0; i < N; i++) {
        double t = (double)(i + 1);
        rows[i] = (tr_epoch_stats){i + 1, 0.3 / t, 1.0 - 0.08 / t, 0.1 + 0.002 * t,
                                0.96 + 0.0004 * t / (1 + 0.01 * t), 0.6, 1e-3};
    }
    check_curves("25 epochs", rows, 25, 1, &p);
    CHECK(series_span(&p, 1, PLOT_TRAIN_COLOR) > (PLOT_BOTTOM - PLOT_TOP) / 2,
          "the loss curve uses the panel's height");
    png_decoded_free(&p);
    check_curves("1000 epochs", rows, N, 1, &p);
    png_decoded_free(&p);
    check_curves("1 epoch", rows, 1, 1, &p);
    png_decoded_free(&p);

    for (int i = 0; i < 30; i++)
        rows[i] = (tr_epoch_stats){i + 1, 0.5, 0.9, 0.6, 0.85, 1.0, 1e-3};
    check_curves("constant values", rows, 30, 1, &p);
    png_decoded_free(&p);
    /* Identical constant series: the validation line covers the training one,
     * but the picture is still drawn. */
    tr_canvas same;
    tr_error err;
    for (int i = 0; i < 30; i++)
        rows[i] = (tr_epoch_stats){i + 1, 0.5, 0.9, 0.5, 0.9, 1.0, 1e-3};
    CHECK(tr_plot_curves(&same, rows, 30, NULL, &err) == 0, "%s", err.msg);
    if (encode_decode(&same, &p) == 0) {
        CHECK(series_pixels(&p, 0, PLOT_VAL_COLOR) >= 20, "identical constant series drawn");
        png_decoded_free(&p);
    }
    tr_canvas_free(&same);

    /* A spike of 1000 among losses near 0.1 to 0.3 must not flatten the rest. */
    for (int i = 0; i < 30; i++)
        rows[i] = (tr_epoch_stats){i + 1, 0.3 - 0.006 * i, 0.9 + 0.002 * i, 0.2, 0.95, 1.0, 1e-3};
    rows[12].loss = 1000.0;
    check_curves("a loss spike", rows, 30, 1, &p);
    int span = series_span(&p, 1, PLOT_TRAIN_COLOR);
    CHECK(span > (PLOT_BOTTOM - PLOT_TOP) / 2, "with a spike the loss curve spans %d rows", span);
    png_decoded_free(&p);

    /* No validation (nan) and a diverged epoch (inf): drawn, not crashed. */
    for (int i = 0; i < 10; i++)
        rows[i] = (tr_epoch_stats){i + 1, 0.3, 0.9, NAN, NAN, 1.0, NAN};
    rows[9].loss = INFINITY;
    check_curves("no validation", rows, 10, 0, &p);
    png_decoded_free(&p);

    tr_canvas c;
    CHECK(tr_plot_curves(&c, rows, 0, NULL, &err) == -1, "no epochs accepted");

    /* The callbacks' marks: nothing of their colours without them (and
     * with a constant rate), a line in each panel with them. */
    for (int i = 0; i < 12; i++)
        rows[i] = (tr_epoch_stats){i + 1, 0.3 - 0.01 * i, 0.9, 0.2 + 0.001 * (i - 5) * (i - 5),
                                0.95, 1.0, 1e-3};
    for (int with = 0; with < 2; with++) {
        const tr_curve_marks marks = {5, 9};
        rows[7].learning_rate = rows[8].learning_rate = with ? 1e-4 : 1e-3;
        CHECK(tr_plot_curves(&c, rows, 12, with ? &marks : NULL, &err) == 0, "%s", err.msg);
        if (encode_decode(&c, &p) == 0) {
            for (int panel = 0; panel < 2; panel++) {
                const long best = series_pixels(&p, panel, PLOT_BEST_COLOR);
                const long lr = series_pixels(&p, panel, PLOT_LR_COLOR);
                CHECK(with ? best >= 30 && lr >= 100 : best + lr == 0,
                      "marks %s: panel %d has %ld best and %ld rate pixels",
                      with ? "on" : "off", panel, best, lr);
            }
            png_decoded_free(&p);
        }
        tr_canvas_free(&c);
    }
    free(rows);
}

static int is_gray(const uint8_t *px, int darker_than)
{
    return px[0] == px[1] && px[1] == px[2] && px[0] < darker_than;
}

static int is_curve(const uint8_t *px)
{
    return px[2] > px[0] + 40 || px[0] > px[2] + 60; /* blue or orange, blended */
}

/* Early stopping at epoch `stop` of N, where the training accuracy runs along
 * the top of the frame: the stop's line must stand apart from the frame's
 * edges, and its label must not touch a curve. */
static void check_stop_mark(int stop)
{
    enum { N = 10 };
    tr_epoch_stats rows[N];
    for (int i = 0; i < N; i++)
        rows[i] = (tr_epoch_stats){i + 1, 0.3 / (i + 1), 1.0 - 0.08 / (i + 1),
                                0.1 + 0.002 * i, 0.96 + 0.001 * i, 0.6, 1e-3};
    const tr_curve_marks marks = {6, stop};
    tr_canvas c;
    tr_error err;
    decoded_png p;
    CHECK(tr_plot_curves(&c, rows, N, &marks, &err) == 0, "%s", err.msg);
    if (encode_decode(&c, &p) != 0) {
        tr_canvas_free(&c);
        return;
    }
    for (int panel = 0; panel < 2; panel++) {
        const int x0 = panel * p.width / 2, x1 = x0 + p.width / 2;
        /* Columns that are a dark grey line over most of the plot area: the
         * frame's two edges and the stop's line, each a run of columns. */
        int lines = 0, in_line = 0, line_x[8] = {0};
        for (int x = x0; x < x1; x++) {
            int dark = 0;
            for (int y = PLOT_TOP; y < PLOT_BOTTOM; y++)
                dark += is_gray(p.rgb + ((long)y * p.width + x) * 3, 160);
            const int line = dark >= 7 * (PLOT_BOTTOM - PLOT_TOP) / 10;
            if (line && !in_line && lines < 8)
                line_x[lines++] = x;
            in_line = line;
        }
        CHECK(lines == 3, "stop at %d, panel %d: %d vertical grey lines, want the frame's 2 "
              "and the stop's", stop, panel, lines);
        /* The label: the grey pixels inside the frame off those lines. */
        int bx0 = p.width, bx1 = -1, by0 = p.height, by1 = -1;
        for (int y = PLOT_TOP + 2; y < PLOT_BOTTOM - 2; y++)
            for (int x = line_x[0]; lines == 3 && x < line_x[2]; x++) {
                int near_line = 0;
                for (int k = 0; k < lines; k++)
                    near_line |= abs(x - line_x[k]) <= 3;
                if (near_line || !is_gray(p.rgb + ((long)y * p.width + x) * 3, 200))
                    continue;
                bx0 = x < bx0 ? x : bx0;
                bx1 = x > bx1 ? x : bx1;
                by0 = y < by0 ? y : by0;
                by1 = y > by1 ? y : by1;
            }
        CHECK(bx1 > bx0 + 20 && by1 > by0 + 5, "stop at %d, panel %d: no 'stopped' label",
              stop, panel);
        long touching = 0;
        for (int y = by0 - 2; y <= by1 + 2; y++)
            for (int x = bx0 - 2; x <= bx1 + 2; x++)
                if (y >= 0 && y < p.height && x >= 0 && x < p.width)
                    touching += is_curve(p.rgb + ((long)y * p.width + x) * 3);
        CHECK(touching == 0, "stop at %d, panel %d: %ld curve pixels in the 'stopped' "
              "label's box (%d..%d, %d..%d)", stop, panel, touching, bx0, bx1, by0, by1);
    }
    png_decoded_free(&p);
    tr_canvas_free(&c);
}

/* predict --show draws what the model saw as the model sees it, and as the
 * drawing page shows it: a white digit on black. */
static void test_verdict_colours(void)
{
    uint8_t seen[28 * 28] = {0}, thumb[4 * 4 * 3];
    memset(thumb, 255, sizeof thumb);
    for (int y = 10; y < 18; y++)
        for (int x = 12; x < 16; x++)
            seen[y * 28 + x] = 255;
    float probs[10] = {0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f};
    const tr_plot_verdict v = {"a.png", thumb, 4, 4, seen, 28, 28, probs};
    tr_canvas c;
    tr_error err;
    decoded_png p;
    CHECK(tr_plot_verdicts(&c, &v, 1, 10, "t", &err) == 0, "%s", err.msg);
    if (encode_decode(&c, &p) == 0) {
        const long black = png_count_color(&p, 0, 0, p.width, p.height, 0, 0, 0);
        const long white = png_count_color(&p, 0, 0, p.width, p.height, 255, 255, 255);
        /* 28 x 28 at 4x: 12,544 pixels, 8 x 4 of them (512) the digit. */
        CHECK(black >= 12544 - 512 && white > 512, "the model's view: %ld black pixels, want "
              "its page drawn black", black);
        png_decoded_free(&p);
    }
    tr_canvas_free(&c);
}

static void test_stop_mark(void)
{
    check_stop_mark(10);
    check_stop_mark(9);
}

/* A dataset whose image 0 is a block of ink in the middle of the frame. */
static void block_dataset(tr_dataset *d, uint32_t n)
{
    test_make_dataset(d, n, 28, 28, 3);
    memset(d->pixels, 0, d->dim);
    for (int y = 9; y < 19; y++)
        for (int x = 10; x < 18; x++)
            d->pixels[y * 28 + x] = 255;
}

static void test_digits(void)
{
    tr_dataset d;
    block_dataset(&d, 30);
    tr_canvas c;
    tr_error err;
    CHECK(tr_plot_digits(&c, &d, 0, 12, 1, &err) == 0, "%s", err.msg);
    decoded_png p;
    if (encode_decode(&c, &p) == 0) {
        CHECK(p.width == 10 * 120 && p.height > 2 * 84, "grid size %dx%d", p.width, p.height);
        int x, y, w, h;
        tr_plot_tile_rect(&d, 0, &x, &y, &w, &h);
        CHECK(w >= 56 && h >= 56, "tiles are enlarged: %dx%d", w, h);
        int cx = x + w / 2, cy = y + h / 2, k = w / 8;
        CHECK(png_count_dark(&p, cx - k, cy - k, cx + k, cy + k) == 4 * k * k,
              "the middle of tile 0 is ink");
        CHECK(png_count_dark(&p, x, y, x + w / 4, y + h / 4) == 0 &&
                  png_count_dark(&p, x + 3 * w / 4, y + 3 * h / 4, x + w, y + h) == 0 &&
                  png_count_dark(&p, x + 3 * w / 4, y, x + w, y + h / 4) == 0 &&
                  png_count_dark(&p, x, y + 3 * h / 4, x + w / 4, y + h) == 0,
              "the corners of tile 0 are blank");
        CHECK(png_count_dark(&p, x, y + h + 2, x + w, y + h + 24) > 10,
              "tile 0 has its label under it");
        png_decoded_free(&p);
    }
    tr_canvas_free(&c);
    CHECK(tr_plot_digits(&c, &d, 30, 5, 1, &err) == -1, "start past the end accepted");

    uint8_t pred[30];
    memcpy(pred, d.labels, 30);
    CHECK(tr_plot_predictions(&c, &d, pred, 0, 20, 0, &err) == 0, "%s", err.msg);
    if (encode_decode(&c, &p) == 0) {
        tr_rgb red = PLOT_MISTAKE_COLOR;
        CHECK(png_count_color(&p, 0, 0, p.width, p.height, red.r, red.g, red.b) == 0,
              "red without a mistake");
        png_decoded_free(&p);
    }
    tr_canvas_free(&c);
    pred[3] = (uint8_t)((pred[3] + 1) % 10);
    CHECK(tr_plot_predictions(&c, &d, pred, 0, 20, 0, &err) == 0, "%s", err.msg);
    if (encode_decode(&c, &p) == 0) {
        tr_rgb red = PLOT_MISTAKE_COLOR;
        int x, y, w, h;
        tr_plot_tile_rect(&d, 3, &x, &y, &w, &h);
        CHECK(png_count_color(&p, x - 20, y + h, x + w + 20, y + h + 28, red.r, red.g, red.b) > 10,
              "the mistake's caption is red");
        png_decoded_free(&p);
    }
    tr_canvas_free(&c);
    CHECK(tr_plot_predictions(&c, &d, pred, 0, 20, 1, &err) == 0, "%s", err.msg);
    if (encode_decode(&c, &p) == 0) {
        int x, y, w, h, x1, y1;
        tr_plot_tile_rect(&d, 0, &x, &y, &w, &h);
        tr_plot_tile_rect(&d, 1, &x1, &y1, &w, &h);
        CHECK(png_count_nonwhite(&p, x, y, x + w, y + h) > 0 &&
                  png_count_nonwhite(&p, x1 - 2, y1 - 2, x1 + w + 2, y1 + h + 30) == 0,
              "--errors shows the one mistake and nothing after it");
        png_decoded_free(&p);
    }
    tr_canvas_free(&c);
    CHECK(tr_plot_predictions(&c, &d, pred, 4, 20, 1, &err) == -1 && strstr(err.msg, "no mistakes"),
          "no mistakes to show: '%s'", err.msg);
    tr_dataset_free(&d);
}

static void test_confusion(void)
{
    uint8_t labels[100], pred[100];
    for (int i = 0; i < 100; i++) {
        labels[i] = (uint8_t)(i % 10);
        pred[i] = i % 7 == 0 ? (uint8_t)((i + 1) % 10) : labels[i];
    }
    uint32_t counts[10 * 10];
    tr_confusion_count(counts, 10, labels, pred, 100);
    CHECK(counts[0] == 8 && counts[1] == 2, "counts[0][0] %u, [0][1] %u", counts[0], counts[1]);
    tr_canvas c;
    tr_error err;
    CHECK(tr_plot_confusion(&c, counts, 10, NULL, &err) == 0, "%s", err.msg);
    decoded_png p;
    if (encode_decode(&c, &p) == 0) {
        CHECK(p.width > 600 && p.height > 600, "size %dx%d", p.width, p.height);
        /* Cells are 60 px from (90, 110): the diagonal is dark, an empty cell white. */
        CHECK(png_count_dark(&p, 90 + 2, 110 + 2, 90 + 10, 110 + 10) == 64, "cell (0,0) is dark");
        CHECK(png_count_nonwhite(&p, 90 + 3 * 60 + 2, 110 + 2, 90 + 3 * 60 + 10, 110 + 10) == 0,
              "cell (0,3) is empty");
        png_decoded_free(&p);
    }
    tr_canvas_free(&c);
    /* Named classes: the names left of the rows and up above the columns;
     * the matrix moves right and down to make room for the longest, and
     * a name too long for its room is shortened. */
    const char *names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\n"
                        "a truck with a name far too long to be written whole";
    CHECK(tr_plot_confusion(&c, counts, 10, names, &err) == 0, "%s", err.msg);
    if (encode_decode(&c, &p) == 0) {
        /* The width is LEFT + 10 cells + 130; TOP is LEFT + 22 (60 and 82
         * around the widest name, shortened to at most 180 pixels). */
        const int left = p.width - 600 - 130, top = left + 22;
        CHECK(left > 90 + 60 && left <= 60 + 180, "named: the names' room %d", left - 60);
        CHECK(png_count_dark(&p, left + 2, top + 2, left + 10, top + 10) == 64,
              "named: cell (0,0) is dark at (%d, %d)", left, top);
        CHECK(png_count_nonwhite(&p, left + 20, top - 60, left + 40, top - 12) > 0,
              "named: no column name above the first column");
        CHECK(png_count_nonwhite(&p, left - 80, top + 20, left - 14, top + 40) > 0,
              "named: no row name left of the first row");
        png_decoded_free(&p);
    }
    tr_canvas_free(&c);

    /* 47 classes (EMNIST balanced's): cells of 900 / 47 = 19 pixels, a dark
     * diagonal, the whole matrix on a screen. */
    enum { K = 47 };
    uint32_t *big = calloc(K * K, sizeof *big);
    for (int t = 0; t < K; t++) {
        big[t * K + t] = 90;
        big[t * K + (t + 1) % K] = 10;
    }
    CHECK(tr_plot_confusion(&c, big, K, NULL, &err) == 0, "%s", err.msg);
    if (encode_decode(&c, &p) == 0) {
        const int cell = 900 / K;
        CHECK(p.width <= 90 + K * cell + 130 && p.height <= 110 + K * cell + 30,
              "47 classes: %dx%d", p.width, p.height);
        CHECK(png_count_dark(&p, 90 + 46 * cell + 2, 110 + 46 * cell + 2, 90 + 46 * cell + 8,
                             110 + 46 * cell + 8) == 36, "cell (46,46) is dark");
        CHECK(png_count_nonwhite(&p, 90 + 5 * cell + 2, 110 + 2, 90 + 5 * cell + 8, 110 + 8) == 0,
              "cell (0,5) is empty");
        png_decoded_free(&p);
    }
    tr_canvas_free(&c);
    free(big);
}

/* Distinct gray levels among the pixels of a decoded picture's box. */
static int gray_levels(const decoded_png *p, int x0, int y0, int x1, int y1)
{
    uint8_t seen[256] = {0};
    int n = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            const uint8_t v = p->rgb[3 * ((size_t)y * p->width + x)];
            n += !seen[v];
            seen[v] = 1;
        }
    return n;
}

/* Text in the bitmap font, as a process without the font file draws it:
 * told why, 6 pixels a character at scale 1, two levels only.  Run in a
 * child, since the font is looked up once a process. */
static void test_bitmap_fallback(void)
{
    const pid_t child = fork();
    if (child == 0) {
        setenv("TRAINER_FONT", "/nonexistent/font.ttf", 1);
        const char *why = tr_canvas_font_fallback();
        CHECK(why && strstr(why, "/nonexistent/font.ttf"), "fallback reason '%s'", why);
        CHECK(tr_canvas_text_width("abc", 2) == 34, "bitmap text width %d",
              tr_canvas_text_width("abc", 2));
        tr_canvas c;
        tr_error err;
        decoded_png p;
        CHECK(tr_canvas_init(&c, 40, 20, (tr_rgb){255, 255, 255}, &err) == 0, "%s", err.msg);
        tr_canvas_text(&c, 2, 2, "Hi", 2, (tr_rgb){0, 0, 0});
        if (encode_decode(&c, &p) == 0) {
            CHECK(gray_levels(&p, 0, 0, 40, 20) == 2, "bitmap text has %d levels",
                  gray_levels(&p, 0, 0, 40, 20));
            CHECK(png_count_dark(&p, 2, 2, 2 + 22, 2 + 14) > 30 &&
                      png_count_dark(&p, 0, 16, 40, 20) == 0,
                  "bitmap text out of its box");
            png_decoded_free(&p);
        }
        tr_canvas_free(&c);
        _exit(test_failures ? 1 : 0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the bitmap font checks failed");
}

/* Text in DejaVu Sans, where this build and machine have it: proportional,
 * anti-aliased, its capitals in their box. */
static void test_vector_text(void)
{
    const char *why = tr_canvas_font_fallback();
    if (why) {
        printf("note: text is drawn with the bitmap font here (%s); the vector font's "
               "checks were not run\n", why);
        return;
    }
    const int abc = tr_canvas_text_width("abc", 2);
    CHECK(abc > 20 && abc < 40, "\"abc\" at scale 2 is %d pixels wide", abc);
    CHECK(tr_canvas_text_width("iiii", 2) * 2 < tr_canvas_text_width("WWWW", 2),
          "not proportional: iiii %d, WWWW %d", tr_canvas_text_width("iiii", 2),
          tr_canvas_text_width("WWWW", 2));
    tr_canvas c;
    tr_error err;
    decoded_png p;
    CHECK(tr_canvas_init(&c, 60, 40, (tr_rgb){255, 255, 255}, &err) == 0, "%s", err.msg);
    tr_canvas_text(&c, 10, 10, "HE", 2, (tr_rgb){0, 0, 0});
    if (encode_decode(&c, &p) == 0) {
        CHECK(gray_levels(&p, 0, 0, 60, 40) > 4, "text has %d gray levels: not anti-aliased",
              gray_levels(&p, 0, 0, 60, 40));
        /* Capitals: ink from about y = 10 to 10 + 14, none far above or below. */
        CHECK(png_count_dark(&p, 10, 12, 10 + tr_canvas_text_width("HE", 2), 22) > 20,
              "no ink inside the capitals' box");
        CHECK(png_count_nonwhite(&p, 0, 0, 60, 8) == 0 && png_count_nonwhite(&p, 0, 27, 60,
                                                                             40) == 0,
              "capitals drawn outside their box");
        png_decoded_free(&p);
    }
    tr_canvas_free(&c);
}

static void test_canvas(void)
{
    tr_canvas c;
    tr_error err;
    CHECK(tr_canvas_init(&c, 0, 10, (tr_rgb){0, 0, 0}, &err) == -1, "a 0-wide canvas");
    CHECK(tr_canvas_init(&c, 40, 20, (tr_rgb){255, 255, 255}, &err) == 0, "%s", err.msg);
    tr_canvas_text(&c, 2, 2, "Hi", 2, (tr_rgb){0, 0, 0});
    tr_canvas_line(&c, -50, -50, 500, 500, 3, (tr_rgb){0, 0, 0}); /* clipped, no crash */
    tr_canvas_line(&c, NAN, 0, 5, 5, 3, (tr_rgb){0, 0, 0});
    decoded_png p;
    if (encode_decode(&c, &p) == 0) {
        CHECK(png_count_dark(&p, 0, 0, 40, 20) > 30, "text and line drew ink");
        png_decoded_free(&p);
    }
    const char *dir = test_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/missing/x.png", dir);
    CHECK(tr_canvas_save_png(&c, path, &err) == -1 && strstr(err.msg, "missing"),
          "save into a missing directory: '%s'", err.msg);
    snprintf(path, sizeof path, "%s/x.png", dir);
    CHECK(tr_canvas_save_png(&c, path, &err) == 0, "%s", err.msg);
    CHECK(png_decode_file(&p, path) == 0 && p.width == 40, "the saved file decodes");
    png_decoded_free(&p);
    tr_canvas_free(&c);
}

int main(void)
{
    test_bitmap_fallback();
    test_vector_text();
    test_canvas();
    test_curves();
    test_stop_mark();
    test_verdict_colours();
    test_digits();
    test_confusion();
    return test_finish("test_plots");
}
