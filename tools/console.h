/* console.h - what the trainer prints while it trains. */
#ifndef TRAINER_TOOLS_CONSOLE_H
#define TRAINER_TOOLS_CONSOLE_H

#include "callbacks.h"
#include "dataset.h"
#include "run.h"

typedef struct {
    int tty;         /* a terminal: the progress bar, lines fitted to its width */
    int cols;        /* the terminal's width, re-read after SIGWINCH */
    double start, last_draw;
    tr_monitor watched; /* what the callbacks watch, for their lines */
} console;

/* A run's observer that prints to stdout: "Epoch 3/25", the progress bar
 * (tty only), each epoch's figures and what the callbacks did. */
tr_run_observer console_start(console *c, int tty, tr_monitor watched);

/* Why training ended and whose weights the model holds, once it has. */
void console_report_callbacks(const tr_callback_state *cb, const tr_callback_config *c,
                              int epochs_done);

/* The "Data:" line: the sets, the image shape, the classes, the files
 * left out. */
void console_print_data(const char *dir, const tr_dataset *all, const tr_dataset *train,
                        const tr_dataset *val, const tr_dataset *test);

#endif
