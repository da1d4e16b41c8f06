/* plots.h - the pictures: training curves, digit grids, predictions and the
 * confusion matrix, drawn on a canvas (which each function allocates; free it
 * with tr_canvas_free). */
#ifndef TRAINER_PLOTS_H
#define TRAINER_PLOTS_H

#include <stdint.h>

#include "canvas.h"
#include "dataset.h"
#include "error.h"
#include "epoch.h"

/* The series colours, as matplotlib's first two, which users know. */
#define PLOT_TRAIN_COLOR ((tr_rgb){31, 119, 180})
#define PLOT_VAL_COLOR ((tr_rgb){255, 127, 14})
#define PLOT_MISTAKE_COLOR ((tr_rgb){214, 39, 40})
#define PLOT_BEST_COLOR ((tr_rgb){44, 160, 44})
#define PLOT_LR_COLOR ((tr_rgb){148, 103, 189})

/* Epochs that curves.png marks with a vertical line (0: none). */
typedef struct {
    int best_epoch;    /* the epoch whose weights the model keeps, "best" */
    int stopped_epoch; /* the epoch after which early stopping ended training */
} tr_curve_marks;

/* curves.png: two panels side by side, accuracy (left) and loss (right)
 * against the epoch, training and validation as lines with point markers.
 * Non-finite values break the line; a value far above the rest (a spike) is
 * drawn clipped at the top with its value written beside it.  Each epoch
 * whose learning rate differs from the one before gets a purple line and its
 * rate; marks (may be NULL) add the best epoch (green) and the stop. */
int tr_plot_curves(tr_canvas *c, const tr_epoch_stats *rows, int n, const tr_curve_marks *marks,
                   tr_error *err);

/* A grid of images first..first+count of d, each enlarged, with its label
 * (with_labels) or its index under it. */
int tr_plot_digits(tr_canvas *c, const tr_dataset *d, uint32_t first, uint32_t count,
                   int with_labels, tr_error *err);

/* The first per_class (at most 10) images of each class of d, a row a
 * class, captioned with the class. */
int tr_plot_classes(tr_canvas *c, const tr_dataset *d, int per_class, tr_error *err);

/* The test images tr_plot_predictions draws, from first on: the first count,
 * or with errors_only the first count mistakes, into pick; returns how many.
 * *wrong: how many of them are mistakes, or with errors_only how many
 * images from first on are. */
uint32_t tr_plot_pick(const tr_dataset *d, const uint8_t *pred, uint32_t first, uint32_t count,
                      int errors_only, uint32_t *pick, uint32_t *wrong);

/* A grid of images of d from first on with their predicted and true labels,
 * mistakes in red; with errors_only, only the mistakes (up to count of them).
 * pred: [d->n]. */
int tr_plot_predictions(tr_canvas *c, const tr_dataset *d, const uint8_t *pred, uint32_t first,
                        uint32_t count, int errors_only, tr_error *err);

/* Where the image of grid slot `slot` lands in a tr_plot_digits or
 * tr_plot_predictions picture of images like d's: its top-left corner and side
 * lengths in pixels. */
void tr_plot_tile_rect(const tr_dataset *d, int slot, int *x, int *y, int *w, int *h);

/* One picture `trainer predict` classified, for tr_plot_verdicts. */
typedef struct {
    const char *name;     /* the file (and item) */
    const uint8_t *thumb; /* the picture as given, RGB: [th][tw][3] */
    int tw, th;
    const uint8_t *seen;  /* what the model saw, 0 page to 255 ink: [sh][sw] */
    int sw, sh;
    const float *probs;   /* [classes] */
} tr_plot_verdict;

/* The largest thumbnail side tr_plot_verdicts draws at its size (larger ones
 * are shrunk to it). */
#define PLOT_THUMB 112

/* A row per picture: its name, the picture as given, what the model saw
 * (enlarged to the thumbnail's box), and its likeliest classes (up to 10) as
 * bars with their probabilities, the first in colour.  n: 1 to
 * PLOT_VERDICTS_MAX. */
#define PLOT_VERDICTS_MAX 64
int tr_plot_verdicts(tr_canvas *c, const tr_plot_verdict *v, int n, int classes, const char *title,
                     tr_error *err);

/* counts[t * classes + p] = number of samples of true class t predicted as
 * p (labels and pred below classes).  counts: [classes][classes] */
void tr_confusion_count(uint32_t *counts, int classes, const uint8_t *labels,
                        const uint8_t *pred, uint32_t n);

/* The confusion matrix of classes x classes counts as a heat map (rows: true
 * class, columns: predicted), each class's accuracy beside its row; the
 * counts in the cells up to 20 classes, smaller cells beyond (47 classes
 * fit in 900 pixels).  names (classes.h; NULL or "": numbers) label the
 * rows and, written upwards, the columns. */
int tr_plot_confusion(tr_canvas *c, const uint32_t *counts, int classes, const char *names,
                      tr_error *err);

#endif
