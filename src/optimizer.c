#include "optimizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double PI = 3.14159265358979323846;

static const char *const optimizer_names[] = {"adam", "adamw", "sgd", "rmsprop"};
static const char *const schedule_names[] = {"constant", "cosine", "exponential", "onecycle"};

tr_optimizer_hparams tr_optimizer_defaults(tr_optimizer_kind kind)
{
    return (tr_optimizer_hparams){
        .kind = kind, .lr = kind == OPTIMIZER_SGD ? 1e-2f : 1e-3f, .beta1 = 0.9f,
        .beta2 = 0.999f, .eps = 1e-7f, .rho = 0.9f,
        .weight_decay = kind == OPTIMIZER_ADAMW ? 0.004f : 0.0f,
        .schedule = SCHEDULE_CONSTANT, .decay_rate = 1.0};
}

tr_optimizer_hparams tr_adam_defaults(void)
{
    return tr_optimizer_defaults(OPTIMIZER_ADAM);
}

const char *tr_optimizer_name(tr_optimizer_kind kind)
{
    return (unsigned)kind < 4 ? optimizer_names[kind] : "?";
}

const char *tr_schedule_name(tr_schedule_kind kind)
{
    return (unsigned)kind < 4 ? schedule_names[kind] : "?";
}

int tr_optimizer_find(const char *name, tr_optimizer_kind *kind)
{
    for (int k = 0; k < 4; k++)
        if (strcmp(name, optimizer_names[k]) == 0) {
            *kind = (tr_optimizer_kind)k;
            return 0;
        }
    return -1;
}

int tr_schedule_find(const char *name, tr_schedule_kind *kind)
{
    for (int k = 0; k < 4; k++)
        if (strcmp(name, schedule_names[k]) == 0) {
            *kind = (tr_schedule_kind)k;
            return 0;
        }
    return -1;
}

int tr_optimizer_check(const tr_optimizer_hparams *hp, tr_error *err)
{
    const char *name = tr_optimizer_name(hp->kind);
    if ((unsigned)hp->kind > OPTIMIZER_RMSPROP || (unsigned)hp->schedule > SCHEDULE_ONECYCLE)
        return tr_error_set(err, "unknown optimizer or schedule (%d, %d)", (int)hp->kind,
                            (int)hp->schedule);
    if (!(hp->lr > 0.0f && hp->lr <= 1e6f))
        return tr_error_set(err, "learning rate %g out of range (0 to 1e6)", (double)hp->lr);
    if (!(hp->beta1 >= 0.0f && hp->beta1 < 1.0f && hp->beta2 >= 0.0f && hp->beta2 < 1.0f &&
          hp->eps > 0.0f && hp->eps < 1.0f && hp->rho >= 0.0f && hp->rho < 1.0f))
        return tr_error_set(err, "beta1, beta2, rho out of [0, 1) or epsilon out of (0, 1)");
    if (!(hp->momentum >= 0.0f && hp->momentum < 1.0f))
        return tr_error_set(err, "momentum %g out of range (0 to 1)", (double)hp->momentum);
    if (!(hp->weight_decay >= 0.0f && hp->weight_decay < 1.0f))
        return tr_error_set(err, "weight decay %g out of range (0 to 1)",
                            (double)hp->weight_decay);
    if (hp->momentum > 0.0f && hp->kind != OPTIMIZER_SGD && hp->kind != OPTIMIZER_RMSPROP)
        return tr_error_set(err, "%s has no momentum setting (sgd and rmsprop have)", name);
    if (hp->nesterov && !(hp->kind == OPTIMIZER_SGD && hp->momentum > 0.0f))
        return tr_error_set(err, "Nesterov momentum is sgd's, with a momentum above 0");
    if (!(hp->warmup_epochs >= 0.0 && hp->warmup_epochs <= 1e6))
        return tr_error_set(err, "warm-up of %g epochs out of range", hp->warmup_epochs);
    if (hp->schedule == SCHEDULE_EXPONENTIAL ? !(hp->decay_rate > 0.0 && hp->decay_rate <= 1.0)
                                             : hp->decay_rate != 1.0)
        return tr_error_set(err, hp->schedule == SCHEDULE_EXPONENTIAL
                                  ? "the decay rate must be above 0 and at most 1"
                                  : "a decay rate goes with the exponential schedule only");
    if (hp->epochs > 0 && hp->warmup_epochs > hp->epochs)
        return tr_error_set(err, "a warm-up of %g epochs in a run of %d", hp->warmup_epochs,
                            hp->epochs);
    return 0;
}

int tr_optimizer_scheduled(const tr_optimizer_hparams *hp)
{
    return hp->schedule != SCHEDULE_CONSTANT || hp->warmup_epochs > 0.0;
}

/* PyTorch's _annealing_cos: from start at pct 0 to end at pct 1. */
static double anneal_cos(double start, double end, double pct)
{
    return end + (start - end) / 2.0 * (cos(PI * pct) + 1.0);
}

static double onecycle_lr_at(const tr_optimizer_hparams *hp, long i, double total, double warm)
{
    const double max_lr = hp->lr, initial = max_lr / 25.0, final = initial / 1e4;
    const double up_end = (warm > 0.0 ? warm : 0.3 * total) - 1.0, end = total - 1.0;
    if ((double)i <= up_end)
        return anneal_cos(initial, max_lr, (double)i / up_end);
    return anneal_cos(max_lr, final, ((double)i - up_end) / (end - up_end));
}

double tr_optimizer_lr_at(const tr_optimizer_hparams *hp, long i)
{
    if (!tr_optimizer_scheduled(hp))
        return hp->lr;
    const double total = (double)hp->steps_per_epoch * hp->epochs;
    const double warm = round(hp->warmup_epochs * (double)hp->steps_per_epoch);
    if (hp->schedule == SCHEDULE_ONECYCLE)
        return onecycle_lr_at(hp, i, total, warm);
    if ((double)i < warm)
        return (double)hp->lr * (double)i / warm;
    const double j = (double)i - warm;
    switch (hp->schedule) {
    case SCHEDULE_COSINE: {
        const double d = total - warm;
        return d > 0.0 ? hp->lr * 0.5 * (1.0 + cos(PI * (j < d ? j : d) / d)) : hp->lr;
    }
    case SCHEDULE_EXPONENTIAL:
        return hp->lr * pow(hp->decay_rate, j / (double)hp->steps_per_epoch);
    default:
        return hp->lr;
    }
}

float tr_adam_alpha(float lr, const tr_optimizer_hparams *hp, long t)
{
    double b1t = pow((double)hp->beta1, (double)t);
    double b2t = pow((double)hp->beta2, (double)t);
    return (float)((double)lr * sqrt(1.0 - b2t) / (1.0 - b1t));
}

tr_optimizer_coeffs tr_optimizer_coeffs_at(const tr_optimizer_hparams *hp, long t)
{
    const float lr = (float)tr_optimizer_lr_at(hp, t - 1);
    return (tr_optimizer_coeffs){lr, tr_adam_alpha(lr, hp, t)};
}

int tr_optimizer_zero_is_still(const tr_optimizer_hparams *hp)
{
    return hp->weight_decay == 0.0f;
}

/* A zeroed state buffer on a cache line, as the parameters are, so that a
 * slice of one lines up with the same slice of the others. */
static float *slot_new(size_t len)
{
    const size_t bytes = (len * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p)
        memset(p, 0, bytes ? bytes : 64);
    return p;
}

int tr_optimizer_init(tr_optimizer *o, size_t len, const tr_optimizer_hparams *hp, tr_error *err)
{
    memset(o, 0, sizeof *o);
    o->hp = *hp;
    o->len = len;
    o->m = slot_new(len);
    o->v = slot_new(len);
    if (!o->m || !o->v) {
        tr_optimizer_free(o);
        return tr_error_set(err, "out of memory for the optimizer state");
    }
    return 0;
}

void tr_optimizer_free(tr_optimizer *o)
{
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

/* One parameter's adam step.  Inlined into the loops below, which vectorize. */
static inline void adam_one(float *restrict p, float *restrict m, float *restrict v, float g,
                            float c1, float c2, float eps, float alpha)
{
    const float mi = *m + c1 * (g - *m);
    const float vi = *v + c2 * (g * g - *v);
    *m = mi;
    *v = vi;
    *p -= alpha * mi / (sqrtf(vi) + eps);
}

/* adam over [lo, hi) with the gradient g0 (+ g1 when given), read in place:
 * one or two shard buffers, as on two cores. */
static void adam_direct(float *restrict p, float *restrict m, float *restrict v,
                        const float *restrict g0, const float *restrict g1, size_t lo,
                        size_t hi, const tr_optimizer_hparams *hp, float alpha)
{
    const float c1 = 1.0f - hp->beta1, c2 = 1.0f - hp->beta2, eps = hp->eps;
    for (size_t i = lo; i < hi; i++)
        adam_one(p + i, m + i, v + i, g1 ? g0[i] + g1[i] : g0[i], c1, c2, eps, alpha);
}

static void adam_block(float *restrict p, float *restrict m, float *restrict v,
                       const float *restrict g, size_t n, const tr_optimizer_hparams *hp,
                       float alpha)
{
    const float c1 = 1.0f - hp->beta1, c2 = 1.0f - hp->beta2, eps = hp->eps;
    for (size_t i = 0; i < n; i++)
        adam_one(p + i, m + i, v + i, g[i], c1, c2, eps, alpha);
}

static void sgd_block(float *restrict p, float *restrict m, const float *restrict g, size_t n,
                      const tr_optimizer_hparams *hp, float lr)
{
    const float mu = hp->momentum;
    if (mu == 0.0f) {
        for (size_t i = 0; i < n; i++)
            p[i] -= g[i] * lr;
    } else if (hp->nesterov) {
        for (size_t i = 0; i < n; i++) {
            m[i] = m[i] * mu - g[i] * lr;
            p[i] += m[i] * mu - g[i] * lr;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            m[i] = m[i] * mu - g[i] * lr;
            p[i] += m[i];
        }
    }
}

static void rmsprop_block(float *restrict p, float *restrict m, float *restrict v,
                          const float *restrict g, size_t n, const tr_optimizer_hparams *hp,
                          float lr)
{
    const float rho = hp->rho, c = 1.0f - hp->rho, eps = hp->eps, mu = hp->momentum;
    for (size_t i = 0; i < n; i++) {
        v[i] = rho * v[i] + c * (g[i] * g[i]);
        const float inc = lr * g[i] / sqrtf(v[i] + eps);
        if (mu > 0.0f) {
            m[i] = mu * m[i] + inc;
            p[i] -= m[i];
        } else {
            p[i] -= inc;
        }
    }
}

/* Keras' weight decay, before the step: p - p * wd * lr. */
static void decay_block(float *restrict p, size_t n, float wd, float lr)
{
    for (size_t i = 0; i < n; i++)
        p[i] = p[i] - p[i] * wd * lr;
}

void tr_optimizer_update(const tr_optimizer_hparams *hp, float *restrict p, float *restrict m,
                         float *restrict v, const float *const *grads, int n_grads, size_t lo,
                         size_t hi, const tr_optimizer_coeffs *c)
{
    const int decay = hp->weight_decay > 0.0f;
    const int adam = hp->kind == OPTIMIZER_ADAM || hp->kind == OPTIMIZER_ADAMW;
    if (adam && !decay && (n_grads == 1 || n_grads == 2)) {
        adam_direct(p, m, v, grads[0], n_grads == 2 ? grads[1] : NULL, lo, hi, hp, c->alpha);
        return;
    }
    /* The gradient is summed block by block into a small stack buffer so that
     * the loops vectorize and the sum stays in the L1 cache. */
    enum { BLOCK = 256 };
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
        if (decay)
            decay_block(p + j0, nb, hp->weight_decay, c->lr);
        switch (hp->kind) {
        case OPTIMIZER_SGD: sgd_block(p + j0, m + j0, g, nb, hp, c->lr); break;
        case OPTIMIZER_RMSPROP: rmsprop_block(p + j0, m + j0, v + j0, g, nb, hp, c->lr); break;
        default: adam_block(p + j0, m + j0, v + j0, g, nb, hp, c->alpha); break;
        }
    }
}

void tr_optimizer_describe(const tr_optimizer_hparams *hp, float label_smoothing, char *buf,
                           size_t size)
{
    static const char *const titles[] = {"Adam", "AdamW", "SGD", "RMSprop"};
    int n = snprintf(buf, size, "%s lr %g", titles[hp->kind], (double)hp->lr);
    const int base = hp->kind == OPTIMIZER_ADAMW ? 0 : -1; /* adamw's decay is its own */
    if (hp->momentum > 0.0f && n >= 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, " momentum %g%s", (double)hp->momentum,
                      hp->nesterov ? " (Nesterov)" : "");
    if (hp->weight_decay > 0.0f && (base < 0 || hp->weight_decay != 0.004f) && n >= 0 &&
        (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, " weight decay %g", (double)hp->weight_decay);
    if (hp->warmup_epochs > 0.0 && n >= 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, ", %g warm-up epoch%s", hp->warmup_epochs,
                      hp->warmup_epochs == 1.0 ? "" : "s");
    if (hp->schedule != SCHEDULE_CONSTANT && n >= 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, ", %s schedule", tr_schedule_name(hp->schedule));
    if (hp->schedule == SCHEDULE_EXPONENTIAL && n >= 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, " (x%g per epoch)", hp->decay_rate);
    if (label_smoothing > 0.0f && n >= 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, ", label smoothing %g", (double)label_smoothing);
}
