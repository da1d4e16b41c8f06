/* callbacks.h - Keras' EarlyStopping, ModelCheckpoint(save_best_only=True)
 * and ReduceLROnPlateau, as rules over the epochs' figures.
 *
 * The rules are Keras 3's, transcribed (tests/keras_callbacks.py is an
 * independent transcription the tests compare with), epochs 1-based here:
 *
 * EarlyStopping: an epoch improves when monitor_op(value - min_delta, best)
 *   holds, monitor_op being < (min_delta negated) for a loss and > for an
 *   accuracy, best starting at +inf or -inf.  At each epoch's end: when
 *   weights are to be restored and none are kept yet, this epoch's are (and
 *   it is the best epoch); wait
 *   grows by one; on an improvement best, the best epoch and its weights are
 *   taken and wait is 0; otherwise, once wait >= patience and the epoch is not
 *   the first, training stops.  At the end of training the best epoch's
 *   weights are restored, whether or not the patience ran out.
 * ModelCheckpoint(save_best_only): the model is saved when the value is
 *   strictly better than the best saved so far (NaN never is).
 * ReduceLROnPlateau: better means value < best - min_delta for a loss, value
 *   > best + min_delta for an accuracy.  At each epoch's end: in cooldown,
 *   the cooldown counts down and wait is 0; a better value becomes the best
 *   and wait is 0; otherwise, out of cooldown, wait grows and, once it
 *   reaches patience, the rate becomes max(rate * factor, min_lr) (rounded
 *   to float, as Keras' float32 variable) if it is above min_lr, and the
 *   cooldown starts and wait is 0.
 * The monitored value of an epoch without it (no validation set) is NaN. */
#ifndef TRAINER_CALLBACKS_H
#define TRAINER_CALLBACKS_H

#include "epoch.h"
#include "error.h"

typedef enum { MONITOR_VAL_LOSS, MONITOR_VAL_ACCURACY, MONITOR_LOSS, MONITOR_ACCURACY } tr_monitor;

/* "val_loss", "val_accuracy", "loss" or "accuracy". */
int tr_monitor_parse(const char *name, tr_monitor *out, tr_error *err);
const char *tr_monitor_name(tr_monitor m);
/* Keras' mode='auto': accuracies are better higher, losses lower. */
int tr_monitor_higher_is_better(tr_monitor m);
/* Whether the quantity needs a validation set. */
int tr_monitor_needs_validation(tr_monitor m);
double tr_monitor_value(tr_monitor m, const tr_epoch_stats *st);

typedef struct {
    tr_monitor monitor;       /* for all three */
    int early_stopping;    /* EarlyStopping on */
    int patience;          /* >= 0 */
    double min_delta;      /* its absolute value counts */
    int restore_best;      /* restore_best_weights */
    int save_best;         /* ModelCheckpoint(save_best_only=True) on */
    int reduce_lr;         /* ReduceLROnPlateau on */
    double factor;         /* 0 < factor < 1 */
    int lr_patience;       /* >= 0 */
    double lr_min_delta;   /* Keras' default 1e-4 */
    int cooldown;          /* >= 0 */
    double min_lr;         /* >= 0 */
} tr_callback_config;

/* Keras' defaults, every callback off: monitor val_loss, patience 0,
 * min_delta 0, restore on, factor 0.1, lr_patience 10, lr_min_delta 1e-4,
 * cooldown 0, min_lr 0. */
tr_callback_config tr_callback_defaults(void);

/* The settings a command line gave, for tr_callback_config_check. */
enum {
    CALLBACK_GIVEN_MONITOR = 1, CALLBACK_GIVEN_MIN_DELTA = 2, CALLBACK_GIVEN_NO_RESTORE = 4,
    CALLBACK_GIVEN_LR_PATIENCE = 8, CALLBACK_GIVEN_LR_MIN_DELTA = 16,
    CALLBACK_GIVEN_COOLDOWN = 32, CALLBACK_GIVEN_MIN_LR = 64
};

/* The callbacks' settings must make sense together: a setting given (the
 * CALLBACK_GIVEN_* bits of given) without the callback it sets, or a
 * validation figure watched with validation_split 0, is a mistake to point
 * out ("--lr-patience sets a callback that is not on"), not to ignore. */
int tr_callback_config_check(const tr_callback_config *c, unsigned given, double validation_split,
                             tr_error *err);

/* What the rules carry from one epoch to the next. */
typedef struct {
    double best;          /* EarlyStopping's best value */
    int best_epoch;       /* the epoch whose weights are kept (0: none yet) */
    int wait;
    int stopped_epoch;    /* the epoch after which training stopped, 0 if it did not */
    double saved_best;    /* ModelCheckpoint's best value */
    int saved_epoch;      /* the epoch it saved last (0: none) */
    double lr_best;       /* ReduceLROnPlateau's */
    int lr_wait;
    int cooldown_left;
    float lr;             /* the learning rate now */
} tr_callback_state;

/* What an epoch's end asks of the run. */
typedef struct {
    int keep_weights;     /* keep this epoch's weights as the best */
    int save_best;        /* write them as the best model */
    int stop;             /* stop training after this epoch */
    int lr_changed;       /* the rate is now state->lr */
} tr_callback_actions;

/* The state at the start of training with learning rate lr. */
void tr_callbacks_start(tr_callback_state *s, const tr_callback_config *c, float lr);

/* The rules at the end of epoch st->epoch. */
void tr_callbacks_epoch_end(tr_callback_state *s, const tr_callback_config *c,
                            const tr_epoch_stats *st,
                            tr_callback_actions *a);

#endif
