/* BatchNormalization, as Keras 3 computes it on the last axis (the
 * channels), with its defaults: momentum 0.99, epsilon 1e-3, gamma and beta
 * trained (from 1 and 0), the moving mean and variance not (from 0 and 1).
 *
 * Training: each channel's mean and variance are those of the whole batch,
 * over its samples and pixels (N values): mean = S1 / N and the biased
 * variance S2 / N - mean^2, as Keras' ops.moments gives them, with S1 and S2
 * summed in double by each shard and added over the shards in shard order
 * (layer.h's batch statistics), so the bits do not depend on the threads
 * or processes.  y = gamma (x - mean) / sqrt(var + eps) + beta.  Then, once
 * per step, moving = moving * 0.99 + batch * 0.01 for the mean and the same
 * biased variance (Keras; PyTorch's running_var takes the unbiased one).
 * Inference: the moving statistics in their place.
 *
 * Backward, with xhat = (x - mean) / sqrt(var + eps) and the batch's sums
 * D1 = sum dy and D2 = sum dy xhat:
 *   dx = gamma / sqrt(var + eps) (dy - D1 / N - xhat D2 / N)
 *   dgamma = sum dy xhat, dbeta = sum dy (each shard its own part).
 *
 * ReLU, Keras' standalone layer: max(x, 0), so that batch normalization can
 * sit between a layer and its activation. */
#include <math.h>
#include <string.h>

#include "layer_kinds.h"

enum { BN_GAMMA, BN_BETA, BN_MEAN, BN_VAR };

#define BN_MOMENTUM 0.99
#define BN_EPSILON 1e-3

static int channels(const tr_layer *l)
{
    return l->in.c;
}

/* Values per channel in one sample. */
static long pixels(const tr_layer *l)
{
    return (long)l->in.h * l->in.w;
}

static int bn_build(tr_layer *l, tr_error *err)
{
    (void)err;
    l->out = l->in;
    l->n_tensors = 4;
    for (int t = 0; t < 4; t++)
        l->count[t] = (size_t)channels(l);
    l->trainable[BN_GAMMA] = l->trainable[BN_BETA] = 1;
    return 0;
}

static void bn_init(const tr_layer *l, float *params, uint64_t seed)
{
    (void)seed;
    for (int ch = 0; ch < channels(l); ch++) {
        params[l->offset[BN_GAMMA] + ch] = 1.0f;
        params[l->offset[BN_BETA] + ch] = 0.0f;
        params[l->offset[BN_MEAN] + ch] = 0.0f;
        params[l->offset[BN_VAR] + ch] = 1.0f;
    }
}

/* The sums: S1, S2 (forward), D1, D2 (backward), each per channel. */
static int bn_batch_sums(const tr_layer *l)
{
    return 4 * channels(l);
}

static void bn_forward_sums(const tr_layer *l, double *sums, const float *in, int n)
{
    const int c = channels(l);
    double *s1 = sums, *s2 = sums + c;
    memset(sums, 0, sizeof(double) * 2 * (size_t)c);
    const long rows = (long)n * pixels(l);
    for (long r = 0; r < rows; r++) {
        const float *x = in + r * c;
        for (int ch = 0; ch < c; ch++) {
            s1[ch] += x[ch];
            s2[ch] += (double)x[ch] * x[ch];
        }
    }
}

/* The workspace: per channel the forward pass's a and b (floats), and its
 * mean and 1 / sqrt(var + eps), which the backward passes read, then the
 * backward pass's sums and factors. */
typedef struct {
    float *a, *b, *k, *k1, *k2;
    double *mean, *inv, *dgamma, *dbeta;
} bn_work;

static bn_work work_of(const tr_layer *l, void *work)
{
    const size_t c = (size_t)channels(l);
    double *d = work;
    float *f = (float *)(void *)(d + 4 * c);
    return (bn_work){.mean = d, .inv = d + c, .dgamma = d + 2 * c, .dbeta = d + 3 * c,
                     .a = f, .b = f + c, .k = f + 2 * c, .k1 = f + 3 * c, .k2 = f + 4 * c};
}

static size_t bn_work_bytes(const tr_layer *l, int max_n)
{
    (void)max_n;
    return (sizeof(double) * 4 + sizeof(float) * 5) * (size_t)channels(l);
}

/* Channel ch's mean and biased variance (at least 0) from a batch's sums
 * over batch_n samples. */
static void sums_moments(const tr_layer *l, const double *batch, uint32_t batch_n, int ch,
                         double *mean, double *var)
{
    const double count = (double)batch_n * (double)pixels(l);
    const double m = batch[ch] / count, v = batch[channels(l) + ch] / count - m * m;
    *mean = m;
    *var = v > 0.0 ? v : 0.0;
}

/* The batch's mean and 1 / sqrt(var + eps) of channel ch from its sums. */
static void batch_moments(const tr_layer *l, const tr_layer_pass *pass, int ch, double *mean,
                          double *inv)
{
    double var;
    sums_moments(l, pass->batch, pass->batch_n, ch, mean, &var);
    *inv = 1.0 / sqrt(var + BN_EPSILON);
}

/* y = x a + b per channel, a = gamma / sqrt(var + eps), b = beta - mean a,
 * from the batch (training) or the moving statistics (inference). */
static void bn_forward(const tr_layer *l, float *out, const tr_layer_input *in, const float *params,
                       void *work, int n, const tr_layer_pass *pass)
{
    const int c = channels(l);
    const bn_work w = work_of(l, work);
    float *a = w.a, *b = w.b;
    const float *gamma = params + l->offset[BN_GAMMA], *beta = params + l->offset[BN_BETA];
    const float *mm = params + l->offset[BN_MEAN], *mv = params + l->offset[BN_VAR];
    for (int ch = 0; ch < c; ch++) {
        double mean, inv;
        if (pass && pass->training && pass->batch) {
            batch_moments(l, pass, ch, &mean, &inv);
        } else {
            mean = mm[ch];
            inv = 1.0 / sqrt((double)mv[ch] + BN_EPSILON);
        }
        w.mean[ch] = mean;
        w.inv[ch] = inv;
        a[ch] = (float)(gamma[ch] * inv);
        b[ch] = (float)(beta[ch] - mean * gamma[ch] * inv);
    }
    const long rows = (long)n * pixels(l);
    for (long r = 0; r < rows; r++) {
        const float *restrict x = in->x + r * c;
        float *restrict y = out + r * c;
        for (int ch = 0; ch < c; ch++)
            y[ch] = x[ch] * a[ch] + b[ch];
    }
}

/* After the training forward pass of the same block (its moments in work). */
static void bn_backward_sums(const tr_layer *l, double *sums, const float *d_out, const float *in,
                             void *work, int n)
{
    const int c = channels(l);
    const bn_work w = work_of(l, work);
    const double *mean = w.mean, *inv = w.inv;
    double *d1 = sums + 2 * c, *d2 = sums + 3 * c;
    memset(d1, 0, sizeof(double) * 2 * (size_t)c);
    const long rows = (long)n * pixels(l);
    for (long r = 0; r < rows; r++) {
        const float *x = in + r * c, *dy = d_out + r * c;
        for (int ch = 0; ch < c; ch++) {
            d1[ch] += dy[ch];
            d2[ch] += (double)dy[ch] * ((x[ch] - mean[ch]) * inv[ch]);
        }
    }
}

/* In training only: the step's backward passes read the batch's sums.  A
 * row's sums and its dx are two loops over the channels, each of which
 * vectorizes (one did not: GCC 12 found no vector type for it). */
static void bn_backward(const tr_layer *l, float *d_in, float *grad, float *d_out,
                        const float *in, const float *out, const float *params, void *work,
                        int n, const tr_layer_pass *pass)
{
    (void)out;
    const int c = channels(l);
    const double count = (double)pass->batch_n * (double)pixels(l);
    const double *d1 = pass->batch + 2 * c, *d2 = pass->batch + 3 * c;
    const float *gamma = params + l->offset[BN_GAMMA];
    const bn_work w = work_of(l, work);
    const double *restrict mean = w.mean, *restrict inv = w.inv;
    double *restrict dgamma = w.dgamma, *restrict dbeta = w.dbeta;
    float *restrict k = w.k, *restrict k1 = w.k1, *restrict k2 = w.k2;
    for (int ch = 0; ch < c; ch++) {
        dgamma[ch] = dbeta[ch] = 0.0;
        /* dx = k dy - k1 - k2 xhat */
        k[ch] = (float)(gamma[ch] * inv[ch]);
        k1[ch] = (float)(gamma[ch] * inv[ch] * d1[ch] / count);
        k2[ch] = (float)(gamma[ch] * inv[ch] * d2[ch] / count);
    }
    const long rows = (long)n * pixels(l);
    for (long r = 0; r < rows; r++) {
        const float *restrict x = in + r * c, *restrict dy = d_out + r * c;
        for (int ch = 0; ch < c; ch++) {
            const float xhat = (float)((x[ch] - mean[ch]) * inv[ch]);
            dgamma[ch] += (double)dy[ch] * xhat;
            dbeta[ch] += dy[ch];
        }
        if (!d_in)
            continue;
        float *restrict dx = d_in + r * c;
        for (int ch = 0; ch < c; ch++) {
            const float xhat = (float)((x[ch] - mean[ch]) * inv[ch]);
            dx[ch] = k[ch] * dy[ch] - k1[ch] - k2[ch] * xhat;
        }
    }
    for (int ch = 0; ch < c; ch++) {
        grad[l->offset[BN_GAMMA] + ch] = (float)dgamma[ch];
        grad[l->offset[BN_BETA] + ch] = (float)dbeta[ch];
    }
}

/* Keras: moving * momentum + batch * (1 - momentum), in float. */
static void bn_batch_update(const tr_layer *l, float *params, const double *batch,
                            uint32_t batch_n)
{
    const float keep = (float)BN_MOMENTUM, take = (float)(1.0 - BN_MOMENTUM);
    float *mm = params + l->offset[BN_MEAN], *mv = params + l->offset[BN_VAR];
    for (int ch = 0; ch < channels(l); ch++) {
        double mean, var;
        sums_moments(l, batch, batch_n, ch, &mean, &var);
        mm[ch] = mm[ch] * keep + (float)mean * take;
        mv[ch] = mv[ch] * keep + (float)var * take;
    }
}

/* ONNX's BatchNormalization (inference) and PyTorch's BatchNorm2d on an
 * image, BatchNorm1d on a vector, with Keras' epsilon and momentum (PyTorch
 * counts momentum the other way: 1 - 0.99). */
static void bn_export(const tr_layer *l, tr_tensor_shape order, layer_export *e)
{
    (void)order;
    const int c = channels(l);
    export_module *m = tr_export_add(e, "BatchNormalization", "BatchNorm%dd(%d, eps=0.001, "
                                     "momentum=0.01)", pixels(l) > 1 ? 2 : 1, c);
    tr_export_attr_float(m, "epsilon", (float)BN_EPSILON);
    static const char *const names[] = {"weight", "bias", "running_mean", "running_var"};
    for (int t = 0; t < 4; t++)
        tr_export_param_add(m, names[t], t, 1, (const int64_t[]){c});
    m->count_buffer = "num_batches_tracked";
}

/* A vector that a flatten made from an image holds its values in PyTorch's
 * channel-first order there (order): the per-value tensors follow it. */
static void bn_export_values(const tr_layer *l, const export_param *p, tr_tensor_shape s,
                             const float *params, float *out)
{
    const float *v = params + l->offset[p->tensor];
    const long n = channels(l);
    if (pixels(l) > 1 || tr_tensor_size(s) != n) {
        memcpy(out, v, sizeof(float) * (size_t)n);
        return;
    }
    for (int ch = 0; ch < s.c; ch++)
        for (int y = 0; y < s.h; y++)
            for (int x = 0; x < s.w; x++)
                *out++ = v[((long)y * s.w + x) * s.c + ch];
}

const layer_ops tr_batchnorm_layer_ops = {
    .name = "batchnorm",
    .alias = "batchnormalization",
    .keras = "BatchNormalization",
    .keeps_order = 1,
    .build = bn_build,
    .init = bn_init,
    .work_bytes = bn_work_bytes,
    .forward = bn_forward,
    .backward = bn_backward,
    .batch_sums = bn_batch_sums,
    .forward_sums = bn_forward_sums,
    .backward_sums = bn_backward_sums,
    .batch_update = bn_batch_update,
    .export = bn_export,
    .export_values = bn_export_values,
};

/* ---- ReLU ------------------------------------------------------------------ */

static int relu_build(tr_layer *l, tr_error *err)
{
    (void)err;
    l->out = l->in;
    return 0;
}

static void relu_forward(const tr_layer *l, float *out, const tr_layer_input *in,
                         const float *params,
                         void *work, int n, const tr_layer_pass *pass)
{
    (void)params, (void)work, (void)pass;
    const long count = (long)n * tr_tensor_size(l->in);
    for (long j = 0; j < count; j++)
        out[j] = in->x[j] > 0.0f ? in->x[j] : 0.0f;
}

static void relu_backward(const tr_layer *l, float *d_in, float *grad, float *d_out,
                          const float *in, const float *out, const float *params, void *work,
                          int n, const tr_layer_pass *pass)
{
    (void)grad, (void)in, (void)params, (void)work, (void)pass;
    if (!d_in)
        return;
    const long count = (long)n * tr_tensor_size(l->in);
    for (long j = 0; j < count; j++)
        d_in[j] = out[j] > 0.0f ? d_out[j] : 0.0f;
}

static void relu_export(const tr_layer *l, tr_tensor_shape order, layer_export *e)
{
    (void)l, (void)order;
    tr_export_add(e, "Relu", "ReLU()");
}

const layer_ops tr_relu_layer_ops = {
    .name = "relu",
    .keras = "ReLU",
    .keeps_order = 1,
    .build = relu_build,
    .forward = relu_forward,
    .backward = relu_backward,
    .per_sample = 1,
    .export = relu_export,
};
