/* optimizer.h - the optimizers and learning-rate schedules, as Keras 3
 * computes them.
 *
 * Step t (1-based) with the summed gradient g and lr = the schedule's rate at
 * iteration t - 1 (Keras evaluates a schedule at the iterations done so far):
 *   weight decay, first, when wd > 0 (Keras' base optimizer, every variable):
 *     p = p - p * wd * lr
 *   adam, adamw (adamw is adam whose wd defaults to 0.004):
 *     m += (1 - beta1) * (g - m);  v += (1 - beta2) * (g * g - v)
 *     p -= alpha * m / (sqrt(v) + eps),  alpha = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
 *     (eps is added to sqrt(v), not to the bias-corrected sqrt(v_hat))
 *   sgd: with momentum mu = 0, p -= g * lr; else
 *     m = m * mu - g * lr, then p += m, or with Nesterov p += m * mu - g * lr
 *   rmsprop (not centered): v = rho * v + (1 - rho) * g * g
 *     inc = lr * g / sqrt(v + eps)   (eps inside the root, unlike adam)
 *     with momentum mu > 0: m = mu * m + inc, p -= m; else p -= inc
 * The state is two buffers of the parameters' length: m (adam's first moment,
 * the momentum) and v (adam's second moment, rmsprop's velocity); a slot an
 * optimizer does not use stays 0.
 *
 * Schedules, of the iteration i = t - 1, with W warm-up steps and T steps in
 * all (epochs times batches per epoch):
 *   i < W: lr * i / W (linear from 0; Keras' CosineDecay warm-up with
 *     initial_learning_rate 0 and warmup_target lr); then, with j = i - W:
 *   constant: lr
 *   cosine: lr * 0.5 * (1 + cos(pi * min(j, D) / D)), D = T - W (CosineDecay,
 *     alpha 0)
 *   exponential: lr * decay_rate^(j / steps per epoch) (ExponentialDecay,
 *     decay_steps one epoch, not staircase)
 *   onecycle: PyTorch's OneCycleLR (cosine annealing, two phases, div_factor
 *     25, final_div_factor 1e4; no momentum cycling): from lr / 25 up to lr
 *     over the first P steps, P = 0.3 T or W when warm-up is given, then down
 *     to lr / 25e4 at the last step. */
#ifndef TRAINER_OPTIMIZER_H
#define TRAINER_OPTIMIZER_H

#include <stddef.h>

#include "error.h"

typedef enum {
    OPTIMIZER_ADAM,
    OPTIMIZER_ADAMW,
    OPTIMIZER_SGD,
    OPTIMIZER_RMSPROP
} tr_optimizer_kind;
typedef enum {
    SCHEDULE_CONSTANT,
    SCHEDULE_COSINE,
    SCHEDULE_EXPONENTIAL,
    SCHEDULE_ONECYCLE
} tr_schedule_kind;

typedef struct {
    tr_optimizer_kind kind;
    float lr;            /* the base rate: the peak of a schedule */
    float beta1, beta2;  /* adam, adamw */
    float eps;           /* adam, adamw, rmsprop */
    float momentum;      /* sgd, rmsprop */
    int nesterov;        /* sgd */
    float rho;           /* rmsprop */
    float weight_decay;  /* 0: none */
    tr_schedule_kind schedule;
    double warmup_epochs;
    double decay_rate;   /* exponential: the factor per epoch */
    long steps_per_epoch; /* the schedule's length, set by the run */
    int epochs;
} tr_optimizer_hparams;

/* Keras' defaults for kind: lr 1e-3 (sgd 1e-2), beta1 0.9, beta2 0.999, eps
 * 1e-7, rho 0.9, momentum 0, weight decay 0.004 for adamw and 0 otherwise; a
 * constant rate. */
tr_optimizer_hparams tr_optimizer_defaults(tr_optimizer_kind kind);

/* adam's defaults (the notebook's optimizer). */
tr_optimizer_hparams tr_adam_defaults(void);

/* Names as the command line and the files spell them: "adam", "adamw",
 * "sgd", "rmsprop"; "constant", "cosine", "exponential", "onecycle". */
const char *tr_optimizer_name(tr_optimizer_kind kind);
const char *tr_schedule_name(tr_schedule_kind kind);
int tr_optimizer_find(const char *name, tr_optimizer_kind *kind);
int tr_schedule_find(const char *name, tr_schedule_kind *kind);

/* Whether hp makes sense: rates in range, and every setting one that its
 * optimizer or schedule reads (momentum for sgd and rmsprop, Nesterov for
 * sgd with momentum, a decay rate for exponential alone). */
int tr_optimizer_check(const tr_optimizer_hparams *hp, tr_error *err);

/* Whether the rate changes from step to step (a schedule or a warm-up). */
int tr_optimizer_scheduled(const tr_optimizer_hparams *hp);

/* The rate at iteration i (0-based: the steps taken before this one). */
double tr_optimizer_lr_at(const tr_optimizer_hparams *hp, long i);

/* What one step needs besides the gradient, from hp and the step t >= 1. */
typedef struct {
    float lr;     /* the schedule's rate */
    float alpha;  /* adam's step size */
} tr_optimizer_coeffs;

tr_optimizer_coeffs tr_optimizer_coeffs_at(const tr_optimizer_hparams *hp, long t);

/* Whether a parameter whose slots are 0 stays where it is under a zero
 * gradient (no weight decay): a trainer may then skip it. */
int tr_optimizer_zero_is_still(const tr_optimizer_hparams *hp);

/* One line for the console: "Adam lr 0.001", "SGD lr 0.05 momentum 0.9
 * (Nesterov), onecycle schedule, label smoothing 0.1". */
void tr_optimizer_describe(const tr_optimizer_hparams *hp, float label_smoothing, char *buf,
                           size_t size);

typedef struct {
    tr_optimizer_hparams hp;
    long step;  /* steps taken so far */
    size_t len; /* floats in m and v: the parameter buffer's length */
    float *m;   /* [len], owned: adam's first moment, the momentum */
    float *v;   /* [len], owned: adam's second moment, rmsprop's velocity */
} tr_optimizer;

int tr_optimizer_init(tr_optimizer *o, size_t len, const tr_optimizer_hparams *hp, tr_error *err);
void tr_optimizer_free(tr_optimizer *o);

/* adam's step size alpha_t for step t >= 1 at rate lr. */
float tr_adam_alpha(float lr, const tr_optimizer_hparams *hp, long t);

/* Updates p, m, v over the slice [lo, hi) with the gradient
 * g[j] = grads[0][j] + grads[1][j] + ... + grads[n_grads - 1][j], summed in
 * that order, so the result depends on the shard buffers alone and not on
 * which thread runs the slice.  With n_grads 0 the gradient is 0.
 * p, m, v, grads[k]: buffers of the same length, indexed by j in [lo, hi). */
void tr_optimizer_update(const tr_optimizer_hparams *hp, float *p, float *m, float *v,
                         const float *const *grads, int n_grads, size_t lo, size_t hi,
                         const tr_optimizer_coeffs *c);

#endif
