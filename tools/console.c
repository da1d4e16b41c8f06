/* The trainer's console: Keras' epoch lines, its progress bar on a terminal,
 * and what the callbacks did. */
#include "console.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "interrupt.h"

/* The progress bar, Keras' way: a counter right-aligned to the
 * batch count, a bar, the ETA while running and the time per step at the end.
 * A line is never wider than the terminal, so redrawing it with \r never
 * leaves a wrapped copy behind: the bar shrinks (or goes) to fit, and the
 * end-of-epoch line is cut into lines at its " - " separators. */
static volatile sig_atomic_t resized = 1;

static void on_resize(int sig)
{
    (void)sig;
    resized = 1;
}

static int terminal_cols(console *p)
{
    if (resized) {
        resized = 0;
        struct winsize ws;
        p->cols = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
    }
    return p->cols;
}

/* "  37/1500 [=====>........]" into buf, the bar as wide as fits in room
 * columns (30 at most; left out below 6). */
static void format_counter(char *buf, size_t size, long batch, long n_batches, int room)
{
    char total[24];
    const int digits = snprintf(total, sizeof total, "%ld", n_batches);
    int len = snprintf(buf, size, "%*ld/%s", digits, batch, total);
    int width = room - len - 3;
    width = width > 30 ? 30 : width;
    if (width < 6 || (size_t)(len + width + 3) >= size)
        return;
    const int filled = (int)((long)width * batch / n_batches);
    buf[len++] = ' ';
    buf[len++] = '[';
    for (int i = 0; i < width; i++)
        buf[len++] = i < filled ? '=' : (i == filled ? '>' : '.');
    buf[len++] = ']';
    buf[len] = '\0';
}

/* Writes the fields (the first one the counter) on as few lines as fit in
 * cols - 1 columns, joined by " - ", each line cleared to its end. */
static void print_fields(const char *const *fields, int n, int cols)
{
    const int room = cols - 1;
    int at = 0;
    for (int i = 0; i < n; i++) {
        const int len = (int)strlen(fields[i]);
        if (i > 0 && at + 3 + len > room) {
            fputs("\033[K\n", stdout);
            at = 0;
        } else if (i > 0) {
            fputs(" - ", stdout);
            at += 3;
        }
        const int fit = len < room - at ? len : room - at;
        fwrite(fields[i], 1, (size_t)(fit > 0 ? fit : 0), stdout);
        at += fit;
    }
    fputs("\033[K", stdout);
}

static void draw_progress(void *ctx, long batch, long n_batches, double loss, double acc)
{
    console *p = ctx;
    double t = tr_run_clock();
    if (batch != n_batches && t - p->last_draw < 0.1)
        return;
    p->last_draw = t;
    const int cols = terminal_cols(p);
    char counter[96], eta[32], l[32], a[32];
    snprintf(eta, sizeof eta, "ETA: %.0fs", (t - p->start) / (double)batch *
                                                (double)(n_batches - batch));
    snprintf(l, sizeof l, "loss: %.4f", loss);
    snprintf(a, sizeof a, "accuracy: %.4f", acc);
    const char *fields[] = {counter, eta, l, a};
    /* The bar narrows to leave room for the figures, and gives way to the
     * ETA and the loss on a narrow terminal. */
    for (int keep = 4, extra; keep >= 2; keep--) {
        extra = 0;
        for (int i = 1; i < keep; i++)
            extra += 3 + (int)strlen(fields[i]);
        format_counter(counter, sizeof counter, batch, n_batches, cols - 1 - extra);
        if (strchr(counter, '['))
            break;
    }
    /* One line only: the fields that fit, the others left out. */
    int n = 1, width = (int)strlen(counter);
    while (n < 4 && width + 3 + (int)strlen(fields[n]) <= cols - 1)
        width += 3 + (int)strlen(fields[n++]);
    fputc('\r', stdout);
    print_fields(fields, n, cols);
    fflush(stdout);
}

/* "80us/step", "4ms/step" or "2s/step" into buf: Keras' Progbar picks the
 * unit by the size of the time, as here. */
static void format_step_time(char *buf, size_t size, double seconds)
{
    if (seconds >= 1.0 || seconds == 0.0)
        snprintf(buf, size, "%.0fs/step", seconds);
    else if (seconds >= 1e-3)
        snprintf(buf, size, "%.0fms/step", seconds * 1e3);
    else
        snprintf(buf, size, "%.0fus/step", seconds * 1e6);
}

/* The epoch's last line on a terminal: its figures, Keras' way (the epoch's
 * whole seconds, then the time a step took). */
static void print_epoch_tty(console *p, long n_batches, double seconds,
                            const tr_epoch_stats *st, int has_val)
{
    const int cols = terminal_cols(p);
    char counter[96], step[32], time_[64], l[32], a[32], vl[32], va[32];
    format_counter(counter, sizeof counter, n_batches, n_batches, cols - 1);
    format_step_time(step, sizeof step, seconds / (double)n_batches);
    snprintf(time_, sizeof time_, "%.0fs %s", seconds, step);
    snprintf(l, sizeof l, "loss: %.4f", st->loss);
    snprintf(a, sizeof a, "accuracy: %.4f", st->accuracy);
    snprintf(vl, sizeof vl, "val_loss: %.4f", st->val_loss);
    snprintf(va, sizeof va, "val_accuracy: %.4f", st->val_accuracy);
    const char *fields[] = {counter, time_, l, a, vl, va};
    fputc('\r', stdout);
    print_fields(fields, has_val ? 6 : 4, cols);
    fputc('\n', stdout);
}

/* The console's side of a run: the epoch lines and the progress bar. */
static void console_epoch_start(void *ctx, int epoch, int epochs, long first_batch)
{
    console *p = ctx;
    printf("Epoch %d/%d%s\n", epoch, epochs, first_batch ? " (resumed)" : "");
    fflush(stdout);
    p->start = tr_run_clock();
    p->last_draw = 0.0;
}

static void console_epoch_end(void *ctx, const tr_epoch_stats *st, long n_batches,
                              double train_seconds, long samples)
{
    console *p = ctx;
    const int has_val = !isnan(st->val_loss);
    if (p->tty) {
        print_epoch_tty(p, n_batches, train_seconds, st, has_val);
    } else {
        printf("%ld/%ld - %.2fs - %.0f samples/s - loss: %.4f - accuracy: %.4f", n_batches,
               n_batches, st->seconds, (double)samples / train_seconds, st->loss,
               st->accuracy);
        if (has_val)
            printf(" - val_loss: %.4f - val_accuracy: %.4f", st->val_loss, st->val_accuracy);
        printf("\n");
    }
    fflush(stdout);
}

/* What the callbacks did after an epoch, in Keras' words. */
static void console_callbacks(void *ctx, const tr_epoch_stats *st, const tr_callback_state *cb,
                              const tr_callback_actions *a)
{
    const console *p = ctx;
    if (a->save_best)
        printf("Epoch %d: %s improved to %.5f, saving model.best.ckpt\n", st->epoch,
               tr_monitor_name(p->watched), cb->saved_best);
    if (a->lr_changed)
        printf("Epoch %d: ReduceLROnPlateau reducing learning rate to %.9g.\n", st->epoch,
               (double)cb->lr);
    if (a->stop)
        printf("Epoch %d: early stopping\n", st->epoch);
    fflush(stdout);
}

void console_report_callbacks(const tr_callback_state *cb, const tr_callback_config *c,
                              int epochs_done)
{
    if (!c->early_stopping)
        return;
    if (cb->stopped_epoch)
        printf("Stopped after epoch %d: %s did not improve for %d epoch%s.\n",
               cb->stopped_epoch, tr_monitor_name(c->monitor), c->patience,
               c->patience == 1 ? "" : "s");
    if (c->restore_best && cb->best_epoch)
        printf("Restored the weights of epoch %d (%s %.4f), the best of %d.\n",
               cb->best_epoch, tr_monitor_name(c->monitor), cb->best, epochs_done);
}

tr_run_observer console_start(console *p, int tty, tr_monitor watched)
{
    *p = (console){.tty = tty, .watched = watched};
    if (tty)
        interrupt_handle(SIGWINCH, on_resize);
    return (tr_run_observer){.epoch_start = console_epoch_start,
                          .batch = tty ? draw_progress : NULL,
                          .epoch_end = console_epoch_end, .callbacks = console_callbacks,
                          .ctx = p};
}

/* The "Data:" line: the sets, the image shape and the classes. */
void console_print_data(const char *dir, const tr_dataset *all, const tr_dataset *train,
                        const tr_dataset *val, const tr_dataset *test)
{
    printf("Data: %s: %u training, %u validation, %u test images of %ux%u", dir, train->n, val->n,
           test->n, all->rows, all->cols);
    if (all->channels > 1)
        printf("x%u", all->channels);
    if (all->class_names[0]) {
        char name[CLASS_NAME_MAX];
        printf(", %u classes (", all->classes);
        for (uint32_t k = 0; k < all->classes && k < 12; k++)
            printf("%s%s", k ? ", " : "", tr_class_name(all->class_names, (int)k, name));
        printf("%s)", all->classes > 12 ? ", ..." : "");
    } else if (all->classes != 10) {
        printf(", %u classes", all->classes);
    }
    if (all->ignored + test->ignored)
        printf("; %u other file%s left out", all->ignored + test->ignored,
               all->ignored + test->ignored == 1 ? "" : "s");
    if (test->n == 0)
        printf("; no test set (--test-data DIR names one)");
    printf("\n");
}
