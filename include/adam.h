/* adam.h - the Adam optimizer as Keras computes it.
 *
 * For step t (1-based), with g the gradient:
 *   m += (1 - beta1) * (g - m)
 *   v += (1 - beta2) * (g * g - v)
 *   p -= alpha_t * m / (sqrt(v) + eps),  alpha_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
 * This is Keras' form: eps is added to sqrt(v), not to the bias-corrected
 * sqrt(v_hat) as in the Adam paper. */
#ifndef TRAINER_ADAM_H
#define TRAINER_ADAM_H

#include <stddef.h>

#include "error.h"

typedef struct {
    float lr, beta1, beta2, eps;
} adam_hparams;

/* lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-7: Keras' defaults. */
adam_hparams adam_defaults(void);

typedef struct {
    adam_hparams hp;
    long step;  /* steps taken so far */
    size_t len; /* floats in m and v: the parameter buffer's length */
    float *m;   /* [len], owned, first moment */
    float *v;   /* [len], owned, second moment */
} adam;

int adam_init(adam *a, size_t len, const adam_hparams *hp, tr_error *err);
void adam_free(adam *a);

/* The step size alpha_t for step t >= 1. */
float adam_alpha(const adam_hparams *hp, long t);

/* Updates p, m, v over the slice [lo, hi) with the gradient
 * g[j] = grads[0][j] + grads[1][j] + ... + grads[n_grads - 1][j], summed in
 * that order, so the result depends on the shard buffers alone and not on
 * which thread runs the slice.  With n_grads 0 the gradient is 0.
 * p, m, v, grads[k]: buffers of the same length, indexed by j in [lo, hi). */
void adam_update(float *p, float *m, float *v, const float *const *grads, int n_grads,
                 size_t lo, size_t hi, const adam_hparams *hp, float alpha);

#endif
