#include "adam.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

adam_hparams adam_defaults(void)
{
    return (adam_hparams){.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-7f};
}

/* A zeroed moment buffer on a cache line, as the parameters are, so that a
 * slice of one lines up with the same slice of the others. */
static float *moment_new(size_t len)
{
    const size_t bytes = (len * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p)
        memset(p, 0, bytes ? bytes : 64);
    return p;
}

int adam_init(adam *a, size_t len, const adam_hparams *hp, tr_error *err)
{
    memset(a, 0, sizeof *a);
    a->hp = *hp;
    a->len = len;
    a->m = moment_new(len);
    a->v = moment_new(len);
    if (!a->m || !a->v) {
        adam_free(a);
        return error_set(err, "out of memory for the optimizer state");
    }
    return 0;
}

void adam_free(adam *a)
{
    free(a->m);
    free(a->v);
    a->m = a->v = NULL;
}

float adam_alpha(const adam_hparams *hp, long t)
{
    double b1t = pow((double)hp->beta1, (double)t);
    double b2t = pow((double)hp->beta2, (double)t);
    return (float)((double)hp->lr * sqrt(1.0 - b2t) / (1.0 - b1t));
}

/* One parameter's step in Keras' form: the moments move a (1 - beta) part of
 * the way to g and g^2, then the parameter moves by alpha m / (sqrt(v) + eps).
 * Inlined into the loops below, which vectorize. */
static inline void step_one(float *restrict p, float *restrict m, float *restrict v,
                            float g, float c1, float c2, float eps, float alpha)
{
    const float mi = *m + c1 * (g - *m);
    const float vi = *v + c2 * (g * g - *v);
    *m = mi;
    *v = vi;
    *p -= alpha * mi / (sqrtf(vi) + eps);
}

/* The update of [lo, hi) with the gradient g0 (+ g1 when given). */
static void update_direct(float *restrict p, float *restrict m, float *restrict v,
                          const float *restrict g0, const float *restrict g1, size_t lo,
                          size_t hi, const adam_hparams *hp, float alpha)
{
    const float c1 = 1.0f - hp->beta1, c2 = 1.0f - hp->beta2, eps = hp->eps;
    for (size_t i = lo; i < hi; i++)
        step_one(p + i, m + i, v + i, g1 ? g0[i] + g1[i] : g0[i], c1, c2, eps, alpha);
}

void adam_update(float *restrict p, float *restrict m, float *restrict v,
                 const float *const *grads, int n_grads, size_t lo, size_t hi,
                 const adam_hparams *hp, float alpha)
{
    /* One or two gradients (one per thread on 2 cores) are read in place. */
    if (n_grads == 1 || n_grads == 2) {
        update_direct(p, m, v, grads[0], n_grads == 2 ? grads[1] : NULL, lo, hi, hp, alpha);
        return;
    }
    /* The gradient is summed block by block into a small stack buffer so that
     * both loops vectorize and the sum stays in the L1 cache. */
    enum { BLOCK = 256 };
    const float c1 = 1.0f - hp->beta1, c2 = 1.0f - hp->beta2, eps = hp->eps;
    float g[BLOCK];
    for (size_t j0 = lo; j0 < hi; j0 += BLOCK) {
        size_t nb = hi - j0 < BLOCK ? hi - j0 : BLOCK;
        if (n_grads > 0)
            memcpy(g, grads[0] + j0, nb * sizeof(float));
        else
            memset(g, 0, nb * sizeof(float));
        for (int k = 1; k < n_grads; k++) {
            const float *restrict gk = grads[k] + j0;
            for (size_t i = 0; i < nb; i++)
                g[i] += gk[i];
        }
        for (size_t i = 0; i < nb; i++)
            step_one(p + j0 + i, m + j0 + i, v + j0 + i, g[i], c1, c2, eps, alpha);
    }
}
