/* callbacks_probe - runs the engine's callback rules (callbacks.h) over
 * histories read from stdin, for test_callbacks.py to compare with its own
 * transcription of Keras.  Each scenario is a line
 *   MONITOR EARLY PATIENCE MIN_DELTA RESTORE SAVE_BEST REDUCE FACTOR LR_PATIENCE
 *   LR_MIN_DELTA COOLDOWN MIN_LR LR N
 * then N lines of "loss accuracy val_loss val_accuracy" (nan allowed).  For
 * each it prints one line: the rate of each epoch run, which were saved as
 * the best, the epoch training stopped after (0: none) and the epoch whose
 * weights the model ends with. */
#include <stdio.h>
#include <stdlib.h>

#include "callbacks.h"

int main(void)
{
    char name[32];
    tr_callback_config c = tr_callback_defaults();
    float lr;
    int n;
    while (scanf("%31s %d %d %lf %d %d %d %lf %d %lf %d %lf %f %d", name, &c.early_stopping,
                 &c.patience, &c.min_delta, &c.restore_best, &c.save_best, &c.reduce_lr,
                 &c.factor, &c.lr_patience, &c.lr_min_delta, &c.cooldown, &c.min_lr, &lr,
                 &n) == 14) {
        tr_error err;
        if (tr_monitor_parse(name, &c.monitor, &err)) {
            fprintf(stderr, "callbacks_probe: %s\n", err.msg);
            return 2;
        }
        tr_epoch_stats *h = calloc((size_t)n, sizeof *h);
        for (int e = 0; e < n; e++) {
            h[e].epoch = e + 1;
            if (scanf("%lf %lf %lf %lf", &h[e].loss, &h[e].accuracy, &h[e].val_loss,
                      &h[e].val_accuracy) != 4) {
                fprintf(stderr, "callbacks_probe: a short history\n");
                return 2;
            }
        }
        tr_callback_state s;
        tr_callbacks_start(&s, &c, lr);
        int ran = 0, kept = 0;
        char saves[4096] = "";
        printf("rates");
        for (int e = 0; e < n; e++) {
            tr_callback_actions a;
            printf(" %.9g", (double)s.lr);
            tr_callbacks_epoch_end(&s, &c, &h[e], &a);
            ran = e + 1;
            if (a.keep_weights)
                kept = e + 1;
            snprintf(saves + 2 * e, sizeof saves - 2 * (size_t)e, " %d", a.save_best);
            if (a.stop)
                break;
        }
        const int final = c.early_stopping && c.restore_best && kept ? kept : ran;
        printf(" | saves%s | stopped %d | final %d\n", saves, s.stopped_epoch, final);
        free(h);
    }
    return 0;
}
