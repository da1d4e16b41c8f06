#include "callbacks.h"

#include <math.h>
#include <string.h>

static const char *const NAMES[] = {"val_loss", "val_accuracy", "loss", "accuracy"};

int tr_monitor_parse(const char *name, tr_monitor *out, tr_error *err)
{
    for (int k = 0; k < 4; k++)
        if (strcmp(name, NAMES[k]) == 0) {
            *out = (tr_monitor)k;
            return 0;
        }
    return tr_error_set(err, "--monitor '%s': expected val_loss, val_accuracy, loss or accuracy",
                        name);
}

const char *tr_monitor_name(tr_monitor m)
{
    return NAMES[m];
}

int tr_monitor_higher_is_better(tr_monitor m)
{
    return m == MONITOR_VAL_ACCURACY || m == MONITOR_ACCURACY;
}

int tr_monitor_needs_validation(tr_monitor m)
{
    return m == MONITOR_VAL_LOSS || m == MONITOR_VAL_ACCURACY;
}

double tr_monitor_value(tr_monitor m, const tr_epoch_stats *st)
{
    switch (m) {
    case MONITOR_VAL_LOSS: return st->val_loss;
    case MONITOR_VAL_ACCURACY: return st->val_accuracy;
    case MONITOR_LOSS: return st->loss;
    default: return st->accuracy;
    }
}

tr_callback_config tr_callback_defaults(void)
{
    return (tr_callback_config){.monitor = MONITOR_VAL_LOSS, .restore_best = 1, .factor = 0.1,
                             .lr_patience = 10, .lr_min_delta = 1e-4};
}

void tr_callbacks_start(tr_callback_state *s, const tr_callback_config *c, float lr)
{
    const double worst = tr_monitor_higher_is_better(c->monitor) ? -INFINITY : INFINITY;
    *s = (tr_callback_state){.best = worst, .saved_best = worst, .lr_best = worst, .lr = lr};
}

/* EarlyStopping's improvement: monitor_op(value - min_delta, reference),
 * min_delta negated for a quantity that is better lower. */
static int early_improves(const tr_callback_config *c, double value, double reference)
{
    const double delta = fabs(c->min_delta);
    return tr_monitor_higher_is_better(c->monitor) ? value - delta > reference
                                                : value + delta < reference;
}

static void early_stopping(tr_callback_state *s, const tr_callback_config *c, int epoch,
                           double value, tr_callback_actions *a)
{
    /* With weights to restore and none kept yet, this epoch's are the best
     * so far, even when it does not improve (a NaN). */
    if (c->restore_best && s->best_epoch == 0) {
        s->best_epoch = epoch;
        a->keep_weights = 1;
    }
    s->wait++;
    if (early_improves(c, value, s->best)) {
        s->best = value;
        s->best_epoch = epoch;
        a->keep_weights = c->restore_best;
        s->wait = 0;
        return;
    }
    if (s->wait >= c->patience && epoch > 1) {
        s->stopped_epoch = epoch;
        a->stop = 1;
    }
}

static void save_best(tr_callback_state *s, const tr_callback_config *c, int epoch, double value,
                      tr_callback_actions *a)
{
    const int better = tr_monitor_higher_is_better(c->monitor) ? value > s->saved_best
                                                            : value < s->saved_best;
    if (better) {
        s->saved_best = value;
        s->saved_epoch = epoch;
        a->save_best = 1;
    }
}

static void reduce_lr(tr_callback_state *s, const tr_callback_config *c, double value,
                      tr_callback_actions *a)
{
    if (s->cooldown_left > 0) {
        s->cooldown_left--;
        s->lr_wait = 0;
    }
    const int better = tr_monitor_higher_is_better(c->monitor)
                           ? value > s->lr_best + c->lr_min_delta
                           : value < s->lr_best - c->lr_min_delta;
    if (better) {
        s->lr_best = value;
        s->lr_wait = 0;
        return;
    }
    if (s->cooldown_left > 0)
        return;
    s->lr_wait++;
    if (s->lr_wait < c->lr_patience)
        return;
    const double old = (double)s->lr;
    if (old > (double)(float)c->min_lr) {
        const double lr = old * c->factor;
        s->lr = (float)(lr > c->min_lr ? lr : c->min_lr);
        a->lr_changed = 1;
        s->cooldown_left = c->cooldown;
        s->lr_wait = 0;
    }
}

void tr_callbacks_epoch_end(tr_callback_state *s, const tr_callback_config *c,
                            const tr_epoch_stats *st,
                            tr_callback_actions *a)
{
    *a = (tr_callback_actions){0};
    const double value = tr_monitor_value(c->monitor, st);
    if (c->early_stopping)
        early_stopping(s, c, st->epoch, value, a);
    if (c->save_best)
        save_best(s, c, st->epoch, value, a);
    if (c->reduce_lr)
        reduce_lr(s, c, value, a);
}

int tr_callback_config_check(const tr_callback_config *c, unsigned given, double validation_split,
                             tr_error *err)
{
    const int any = c->early_stopping || c->save_best || c->reduce_lr;
    const struct {
        unsigned bit;
        int on;
        const char *flag;
    } settings[] = {
        {CALLBACK_GIVEN_LR_PATIENCE, c->reduce_lr, "--lr-patience"},
        {CALLBACK_GIVEN_LR_MIN_DELTA, c->reduce_lr, "--lr-min-delta"},
        {CALLBACK_GIVEN_COOLDOWN, c->reduce_lr, "--lr-cooldown"},
        {CALLBACK_GIVEN_MIN_LR, c->reduce_lr, "--min-lr"},
        {CALLBACK_GIVEN_MIN_DELTA, c->early_stopping, "--min-delta"},
        {CALLBACK_GIVEN_NO_RESTORE, c->early_stopping, "--no-restore-best"},
        {CALLBACK_GIVEN_MONITOR, any, "--monitor"},
    };
    for (size_t k = 0; k < sizeof settings / sizeof *settings; k++)
        if ((given & settings[k].bit) && !settings[k].on)
            return tr_error_set(err, "%s sets a callback that is not on", settings[k].flag);
    if (any && tr_monitor_needs_validation(c->monitor) && validation_split == 0.0)
        return tr_error_set(err, "--monitor %s needs validation data, and --validation-split is "
                            "0 (watch loss or accuracy instead)", tr_monitor_name(c->monitor));
    return 0;
}
