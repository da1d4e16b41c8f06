/* AveragePooling2D(p) and GlobalAveragePooling2D, as Keras has them: the mean
 * of each p x p window (stride p, padding valid: rows and columns past the
 * last whole window are left out), or of each channel over the whole image.
 * No parameters.  A window's values are added in row-major order and the sum
 * divided by their count, in float. */
#include <string.h>

#include "layer_kinds.h"

/* ---- AveragePooling2D ------------------------------------------------------ */

/* The hyper-parameter word: the window's side, which is also the stride. */
static int pool(const tr_layer *l)
{
    return (int)l->hp[0];
}

static int avgpool_parse(const spec_item *it, uint32_t *hp, int *head, tr_error *err)
{
    (void)head;
    return tr_window_parse(it, "avgpool2d", hp, err);
}

static int avgpool_check(const uint32_t *words, tr_error *err)
{
    return tr_window_check(words, "avgpool2d", err);
}

/* out: [n][h / p][w / p][c]   in: [n][h][w][c] */
static void avgpool_forward(const tr_layer *l, float *out, const tr_layer_input *in,
                            const float *params, void *work, int n, const tr_layer_pass *pass)
{
    (void)params, (void)work, (void)pass;
    const int p = pool(l), w = l->in.w, c = l->in.c;
    const float count = (float)(p * p);
    for (int s = 0; s < n; s++) {
        const float *x = in->x + s * tr_tensor_size(l->in);
        float *y = out + s * tr_tensor_size(l->out);
        for (int oy = 0; oy < l->out.h; oy++)
            for (int ox = 0; ox < l->out.w; ox++) {
                float *restrict sum = y + ((long)oy * l->out.w + ox) * c;
                for (int ch = 0; ch < c; ch++)
                    sum[ch] = 0.0f;
                for (int ky = 0; ky < p; ky++)
                    for (int kx = 0; kx < p; kx++) {
                        const float *restrict v = x + ((long)(oy * p + ky) * w + ox * p + kx) * c;
                        for (int ch = 0; ch < c; ch++)
                            sum[ch] += v[ch];
                    }
                for (int ch = 0; ch < c; ch++)
                    sum[ch] /= count;
            }
    }
}

/* Each input of a window receives its output's gradient / p^2; the inputs
 * of no window, 0. */
static void avgpool_backward(const tr_layer *l, float *d_in, float *grad, float *d_out,
                             const float *in, const float *out, const float *params,
                             void *work, int n, const tr_layer_pass *pass)
{
    (void)pass;
    (void)grad, (void)in, (void)out, (void)params, (void)work;
    if (!d_in)
        return;
    const int p = pool(l), w = l->in.w, c = l->in.c;
    const float count = (float)(p * p);
    memset(d_in, 0, sizeof(float) * (size_t)n * (size_t)tr_tensor_size(l->in));
    for (int s = 0; s < n; s++) {
        float *dx = d_in + s * tr_tensor_size(l->in);
        const float *dy = d_out + s * tr_tensor_size(l->out);
        for (int oy = 0; oy < l->out.h; oy++)
            for (int ox = 0; ox < l->out.w; ox++) {
                const float *restrict g = dy + ((long)oy * l->out.w + ox) * c;
                for (int ky = 0; ky < p; ky++)
                    for (int kx = 0; kx < p; kx++) {
                        float *restrict d = dx + ((long)(oy * p + ky) * w + ox * p + kx) * c;
                        for (int ch = 0; ch < c; ch++)
                            d[ch] = g[ch] / count;
                    }
            }
    }
}

static void avgpool_export(const tr_layer *l, tr_tensor_shape order, layer_export *e)
{
    (void)order;
    tr_window_export(l, "AveragePool", "AvgPool2d", e);
}

const layer_ops tr_avgpool2d_layer_ops = {
    .name = "avgpool2d",
    .alias = "averagepooling2d",
    .keras = "AveragePooling2D",
    .parse = avgpool_parse,
    .format = tr_window_format,
    .words = 1,
    .check = avgpool_check,
    .build = tr_window_build,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
    .per_sample = 1,
    .export = avgpool_export,
};

/* ---- GlobalAveragePooling2D ------------------------------------------------ */

static int global_build(tr_layer *l, tr_error *err)
{
    (void)err;
    l->out = tensor_flat(l->in.c);
    return 0;
}

/* out: [n][c]   in: [n][h][w][c] */
static void global_forward(const tr_layer *l, float *out, const tr_layer_input *in,
                           const float *params, void *work, int n, const tr_layer_pass *pass)
{
    (void)params, (void)work, (void)pass;
    const long pixels = (long)l->in.h * l->in.w;
    const int c = l->in.c;
    for (int s = 0; s < n; s++) {
        const float *x = in->x + s * tr_tensor_size(l->in);
        float *restrict sum = out + (long)s * c;
        for (int ch = 0; ch < c; ch++)
            sum[ch] = 0.0f;
        for (long q = 0; q < pixels; q++)
            for (int ch = 0; ch < c; ch++)
                sum[ch] += x[q * c + ch];
        for (int ch = 0; ch < c; ch++)
            sum[ch] /= (float)pixels;
    }
}

static void global_backward(const tr_layer *l, float *d_in, float *grad, float *d_out,
                            const float *in, const float *out, const float *params,
                            void *work, int n, const tr_layer_pass *pass)
{
    (void)pass;
    (void)grad, (void)in, (void)out, (void)params, (void)work;
    if (!d_in)
        return;
    const long pixels = (long)l->in.h * l->in.w;
    const int c = l->in.c;
    for (int s = 0; s < n; s++) {
        const float *g = d_out + (long)s * c;
        float *dx = d_in + s * tr_tensor_size(l->in);
        for (long q = 0; q < pixels; q++)
            for (int ch = 0; ch < c; ch++)
                dx[q * c + ch] = g[ch] / (float)pixels;
    }
}

/* PyTorch's AdaptiveAvgPool2d(1) and ONNX's GlobalAveragePool keep a 1 x 1
 * image: a Flatten makes it the vector Keras' layer gives. */
static void global_export(const tr_layer *l, tr_tensor_shape order, layer_export *e)
{
    (void)l, (void)order;
    tr_export_add(e, "GlobalAveragePool", "AdaptiveAvgPool2d(1)");
    tr_export_attr_int(tr_export_add(e, "Flatten", "Flatten()"), "axis", 1);
}

const layer_ops tr_global_avgpool2d_layer_ops = {
    .name = "global_avgpool2d",
    .alias = "globalaveragepooling2d",
    .keras = "GlobalAveragePooling2D",
    .build = global_build,
    .forward = global_forward,
    .backward = global_backward,
    .export = global_export,
};
