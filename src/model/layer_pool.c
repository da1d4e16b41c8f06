/* MaxPooling2D(p) and Flatten: layers without parameters that move values
 * around. */
#include <string.h>

#include "conv.h"
#include "layer_kinds.h"

/* ---- MaxPooling2D ---------------------------------------------------------- */

/* The hyper-parameter word: the window's side, which is also the stride. */
static int pool(const tr_layer *l)
{
    return (int)l->hp[0];
}

static int pool_parse(const spec_item *it, uint32_t *hp, int *head, tr_error *err)
{
    (void)head;
    return tr_window_parse(it, "maxpool2d", hp, err);
}

static int pool_check(const uint32_t *words, tr_error *err)
{
    return tr_window_check(words, "maxpool2d", err);
}

static void pool_export(const tr_layer *l, tr_tensor_shape order, layer_export *e)
{
    (void)order;
    tr_window_export(l, "MaxPool", "MaxPool2d", e);
}

static void pool_forward(const tr_layer *l, float *out, const tr_layer_input *in,
                         const float *params,
                         void *work, int n, const tr_layer_pass *pass)
{
    (void)params, (void)pass, (void)work;
    tr_maxpool_forward(out, in->x, n, l->in.h, l->in.w, l->in.c, pool(l));
}

static void pool_backward(const tr_layer *l, float *d_in, float *grad, float *d_out,
                          const float *in, const float *out, const float *params, void *work,
                          int n, const tr_layer_pass *pass)
{
    (void)pass;
    (void)grad, (void)params, (void)work;
    if (d_in)
        tr_maxpool_backward(d_in, d_out, in, out, n, l->in.h, l->in.w, l->in.c, pool(l),
                            l->relu_of_prev);
}

const layer_ops tr_maxpool2d_layer_ops = {
    .name = "maxpool2d",
    .keras = "MaxPooling2D",
    .alias = "maxpooling2d",
    .parse = pool_parse,
    .format = tr_window_format,
    .words = 1,
    .check = pool_check,
    .build = tr_window_build,
    .forward = pool_forward,
    .backward = pool_backward,
    .per_sample = 1,
    .takes_relu = 1,
    .export = pool_export,
};

/* ---- Flatten --------------------------------------------------------------- */

/* The values are already in row-major order: only the shape changes. */
static int flatten_build(tr_layer *l, tr_error *err)
{
    (void)err;
    l->out = tensor_flat((int)tr_tensor_size(l->in));
    return 0;
}

static void flatten_forward(const tr_layer *l, float *out, const tr_layer_input *in,
                            const float *params, void *work, int n, const tr_layer_pass *pass)
{
    (void)params, (void)work, (void)pass;
    memcpy(out, in->x, sizeof(float) * (size_t)n * (size_t)tr_tensor_size(l->in));
}

static void flatten_backward(const tr_layer *l, float *d_in, float *grad, float *d_out,
                             const float *in, const float *out, const float *params,
                             void *work, int n, const tr_layer_pass *pass)
{
    (void)pass;
    (void)grad, (void)in, (void)out, (void)params, (void)work;
    if (d_in)
        memcpy(d_in, d_out, sizeof(float) * (size_t)n * (size_t)tr_tensor_size(l->in));
}

static void flatten_export(const tr_layer *l, tr_tensor_shape order, layer_export *e)
{
    (void)l, (void)order;
    tr_export_attr_int(tr_export_add(e, "Flatten", "Flatten()"), "axis", 1);
}

const layer_ops tr_flatten_layer_ops = {
    .name = "flatten",
    .keras = "Flatten",
    .keeps_order = 1,
    .build = flatten_build,
    .export = flatten_export,
    .forward = flatten_forward,
    .backward = flatten_backward,
    .per_sample = 1,
};
