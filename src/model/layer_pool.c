/* MaxPooling2D(p) and Flatten: layers without parameters that move values
 * around. */
#include <string.h>

#include "conv.h"
#include "layer_kinds.h"

/* ---- MaxPooling2D ---------------------------------------------------------- */

static int pool_build(layer *l, tr_error *err)
{
    if (l->pool < 1 || l->pool > 64)
        return error_set(err, "layer %d: maxpool2d %d (1 to 64)", l->index + 1, l->pool);
    if (l->pool > l->in.h || l->pool > l->in.w)
        return error_set(err, "layer %d: maxpool2d %dx%d on a %dx%d input", l->index + 1,
                         l->pool, l->pool, l->in.h, l->in.w);
    l->out = (tensor_shape){l->in.h / l->pool, l->in.w / l->pool, l->in.c};
    return 0;
}

static void pool_encode(const layer *l, uint32_t *words)
{
    words[0] = (uint32_t)l->pool;
}

static int pool_decode(layer *l, const uint32_t *words, tr_error *err)
{
    if (words[0] < 1 || words[0] > 64)
        return error_set(err, "maxpool2d %u (1 to 64)", words[0]);
    for (int k = 1; k < LAYER_HYPER_WORDS; k++)
        if (words[k])
            return error_set(err, "maxpool2d hyper-parameter word %d is %u, not 0", k,
                             words[k]);
    l->pool = (int)words[0];
    return 0;
}

static void pool_forward(const layer *l, float *out, const layer_input *in, const float *params,
                         void *work, int n, const layer_pass *pass)
{
    (void)params, (void)pass, (void)work;
    maxpool_forward(out, in->x, n, l->in.h, l->in.w, l->in.c, l->pool);
}

static void pool_backward(const layer *l, float *d_in, float *grad, float *d_out,
                          const float *in, const float *out, const float *params, void *work,
                          int n)
{
    (void)grad, (void)params, (void)work;
    if (d_in)
        maxpool_backward(d_in, d_out, in, out, n, l->in.h, l->in.w, l->in.c, l->pool);
}

const layer_ops maxpool2d_layer_ops = {
    .name = "maxpool2d",
    .keras = "MaxPooling2D",
    .build = pool_build,
    .encode = pool_encode,
    .decode = pool_decode,
    .forward = pool_forward,
    .backward = pool_backward,
};

/* ---- Flatten --------------------------------------------------------------- */

/* The values are already in row-major order: only the shape changes. */
static int flatten_build(layer *l, tr_error *err)
{
    (void)err;
    l->out = tensor_flat((int)tensor_size(l->in));
    return 0;
}

static void flatten_forward(const layer *l, float *out, const layer_input *in,
                            const float *params, void *work, int n, const layer_pass *pass)
{
    (void)params, (void)work, (void)pass;
    memcpy(out, in->x, sizeof(float) * (size_t)n * (size_t)tensor_size(l->in));
}

static void flatten_backward(const layer *l, float *d_in, float *grad, float *d_out,
                             const float *in, const float *out, const float *params,
                             void *work, int n)
{
    (void)grad, (void)in, (void)out, (void)params, (void)work;
    if (d_in)
        memcpy(d_in, d_out, sizeof(float) * (size_t)n * (size_t)tensor_size(l->in));
}

const layer_ops flatten_layer_ops = {
    .name = "flatten",
    .keras = "Flatten",
    .build = flatten_build,
    .forward = flatten_forward,
    .backward = flatten_backward,
};
