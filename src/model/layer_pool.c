/* MaxPooling2D(p) and Flatten: layers without parameters that move values
 * around. */
#include <stdio.h>
#include <string.h>

#include "conv.h"
#include "layer_kinds.h"

/* ---- MaxPooling2D ---------------------------------------------------------- */

/* The hyper-parameter word: the window's side, which is also the stride. */
static int pool(const layer *l)
{
    return (int)l->hp[0];
}

static int pool_build(layer *l, tr_error *err)
{
    if (pool(l) < 1 || pool(l) > 64)
        return error_set(err, "layer %d: maxpool2d %d (1 to 64)", l->index + 1, pool(l));
    if (pool(l) > l->in.h || pool(l) > l->in.w)
        return error_set(err, "layer %d: maxpool2d %dx%d on a %dx%d input", l->index + 1,
                         pool(l), pool(l), l->in.h, l->in.w);
    l->out = (tensor_shape){l->in.h / pool(l), l->in.w / pool(l), l->in.c};
    return 0;
}

static int pool_parse(const spec_item *it, uint32_t *hp, int *head, tr_error *err)
{
    (void)head;
    if (it->n_args != 1)
        return error_set(err, "'%s': maxpool2d takes its pool size, as maxpool2d(2)",
                         it->text);
    return spec_whole(it, 0, 1, 64, &hp[0], "pool size", err);
}

static void pool_format(const layer *l, int last, char *buf, size_t size)
{
    (void)last;
    snprintf(buf, size, "maxpool2d(%d)", pool(l));
}

static int pool_check(const uint32_t *words, tr_error *err)
{
    if (words[0] < 1 || words[0] > 64)
        return error_set(err, "maxpool2d %u (1 to 64)", words[0]);
    return 0;
}

static void pool_export(const layer *l, tensor_shape order, layer_export *e)
{
    (void)order;
    const int64_t p[2] = {pool(l), pool(l)};
    export_module *m = export_add(e, "MaxPool", "MaxPool2d(%d)", pool(l));
    export_attr_ints(m, "kernel_shape", 2, p);
    export_attr_ints(m, "strides", 2, p);
}

static void pool_forward(const layer *l, float *out, const layer_input *in, const float *params,
                         void *work, int n, const layer_pass *pass)
{
    (void)params, (void)pass, (void)work;
    maxpool_forward(out, in->x, n, l->in.h, l->in.w, l->in.c, pool(l));
}

static void pool_backward(const layer *l, float *d_in, float *grad, float *d_out,
                          const float *in, const float *out, const float *params, void *work,
                          int n)
{
    (void)grad, (void)params, (void)work;
    if (d_in)
        maxpool_backward(d_in, d_out, in, out, n, l->in.h, l->in.w, l->in.c, pool(l));
}

const layer_ops maxpool2d_layer_ops = {
    .name = "maxpool2d",
    .keras = "MaxPooling2D",
    .alias = "maxpooling2d",
    .parse = pool_parse,
    .format = pool_format,
    .words = 1,
    .check = pool_check,
    .build = pool_build,
    .forward = pool_forward,
    .backward = pool_backward,
    .export = pool_export,
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

static void flatten_export(const layer *l, tensor_shape order, layer_export *e)
{
    (void)l, (void)order;
    export_attr_int(export_add(e, "Flatten", "Flatten()"), "axis", 1);
}

const layer_ops flatten_layer_ops = {
    .name = "flatten",
    .keras = "Flatten",
    .keeps_order = 1,
    .build = flatten_build,
    .export = flatten_export,
    .forward = flatten_forward,
    .backward = flatten_backward,
};
