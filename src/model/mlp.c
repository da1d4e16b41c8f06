#include "mlp.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dense.h"
#include "rng.h"

static size_t pad(size_t n)
{
    return (n + MLP_ALIGN - 1) / MLP_ALIGN * MLP_ALIGN;
}

int mlp_shape_make(mlp_shape *s, int inputs, const int *hidden, int n_hidden,
                   int classes, tr_error *err)
{
    memset(s, 0, sizeof *s);
    if (n_hidden < 0 || n_hidden + 1 > MLP_MAX_LAYERS)
        return error_set(err, "at most %d hidden layers are supported",
                         MLP_MAX_LAYERS - 1);
    int sizes[MLP_MAX_LAYERS + 1];
    sizes[0] = inputs;
    for (int l = 0; l < n_hidden; l++)
        sizes[l + 1] = hidden[l];
    sizes[n_hidden + 1] = classes;
    for (int l = 0; l <= n_hidden + 1; l++)
        if (sizes[l] < 1 || sizes[l] > MLP_MAX_WIDTH)
            return error_set(err, "layer width %d is out of range (1 to %d)",
                             sizes[l], MLP_MAX_WIDTH);
    s->n_layers = n_hidden + 1;
    memcpy(s->sizes, sizes, sizeof(int) * (size_t)(n_hidden + 2));
    return 0;
}

int mlp_parse_hidden(const char *text, int *widths, int *n, tr_error *err)
{
    *n = 0;
    const char *p = text;
    if (*p == '\0')
        return 0;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 1 || v > MLP_MAX_WIDTH ||
            (*end != ',' && *end != '\0'))
            return error_set(err, "--hidden '%s': expected widths from 1 to %d "
                             "separated by commas, like 128,32", text, MLP_MAX_WIDTH);
        if (*n == MLP_MAX_LAYERS - 1)
            return error_set(err, "--hidden '%s': at most %d hidden layers", text,
                             MLP_MAX_LAYERS - 1);
        widths[(*n)++] = (int)v;
        if (*end == '\0')
            return 0;
        p = end + 1;
    }
}

void mlp_shape_format(const mlp_shape *s, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int l = 0; l <= s->n_layers && used < size; l++)
        used += (size_t)snprintf(buf + used, size - used, l ? "-%d" : "%d", s->sizes[l]);
}

size_t mlp_param_count(const mlp_shape *s)
{
    size_t n = 0;
    for (int l = 0; l < s->n_layers; l++)
        n += (size_t)s->sizes[l] * s->sizes[l + 1] + s->sizes[l + 1];
    return n;
}

/* Floats in one padded buffer of this shape. */
static size_t mlp_buffer_len(const mlp_shape *s)
{
    size_t n = 0;
    for (int l = 0; l < s->n_layers; l++)
        n += pad((size_t)s->sizes[l] * s->sizes[l + 1]) + pad(s->sizes[l + 1]);
    return n;
}

void mlp_views(const mlp_shape *s, float *buf, dense_view *views)
{
    size_t off = 0;
    for (int l = 0; l < s->n_layers; l++) {
        views[l].w = buf + off;
        off += pad((size_t)s->sizes[l] * s->sizes[l + 1]);
        views[l].b = buf + off;
        off += pad(s->sizes[l + 1]);
    }
}

int mlp_tensors(const mlp_shape *s, float *buf, float **ptr, size_t *count)
{
    dense_view v[MLP_MAX_LAYERS];
    mlp_views(s, buf, v);
    int k = 0;
    for (int l = 0; l < s->n_layers; l++) {
        ptr[k] = v[l].w;
        count[k++] = (size_t)s->sizes[l] * s->sizes[l + 1];
        ptr[k] = v[l].b;
        count[k++] = (size_t)s->sizes[l + 1];
    }
    return k;
}

int mlp_check_finite(const mlp_shape *s, const float *buf, const char *name,
                     const char *what, tr_error *err)
{
    float *ptr[2 * MLP_MAX_LAYERS];
    size_t count[2 * MLP_MAX_LAYERS];
    const int n = mlp_tensors(s, (float *)buf, ptr, count);
    for (int t = 0; t < n; t++)
        for (size_t k = 0; k < count[t]; k++) {
            if (isfinite(ptr[t][k]))
                continue;
            const int layer = t / 2, out = s->sizes[layer + 1];
            if (t % 2 == 0)
                return error_set(err, "%s: %s of layer %d (dense_%d), weight [%zu][%zu], is "
                                 "%g", name, what, layer + 1, layer + 1, k / (size_t)out,
                                 k % (size_t)out, (double)ptr[t][k]);
            return error_set(err, "%s: %s of layer %d (dense_%d), bias [%zu], is %g", name,
                             what, layer + 1, layer + 1, k, (double)ptr[t][k]);
        }
    return 0;
}

float *mlp_buffer_new(size_t len)
{
    size_t bytes = (len * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p)
        memset(p, 0, bytes);
    return p;
}

void mlp_buffer_free(float *buf)
{
    free(buf);
}

int mlp_init(mlp *m, const mlp_shape *s, tr_error *err)
{
    memset(m, 0, sizeof *m);
    m->shape = *s;
    m->len = mlp_buffer_len(s);
    m->params = mlp_buffer_new(m->len);
    if (!m->params)
        return error_set(err, "out of memory for %zu parameters", m->len);
    mlp_views(s, m->params, m->layer);
    return 0;
}

void mlp_free(mlp *m)
{
    mlp_buffer_free(m->params);
    memset(m, 0, sizeof *m);
}

void mlp_init_glorot(mlp *m, uint64_t seed)
{
    for (int l = 0; l < m->shape.n_layers; l++) {
        int in = m->shape.sizes[l], out = m->shape.sizes[l + 1];
        float limit = (float)sqrt(6.0 / (double)(in + out));
        rng r;
        rng_seed(&r, seed, RNG_STREAM_INIT + (uint64_t)l);
        float *w = m->layer[l].w;
        for (long k = 0; k < (long)in * out; k++)
            w[k] = (2.0f * rng_uniform(&r) - 1.0f) * limit;
        memset(m->layer[l].b, 0, sizeof(float) * (size_t)out);
    }
}

/* The first layer reads the pixels, 81% zeros in MNIST, through weights too
 * big for the L1 cache: listing its nonzero inputs pays, and the list also
 * tells which weight rows have a gradient.  The hidden layers' inputs are
 * about half zeros and their weights small: register-blocked kernels that
 * multiply the zeros too are faster there: the 128-32 and 32-10 layers' forward
 * and backward passes went from about 50k to 12k cycles per 16 samples. */
enum { SMALL_WEIGHTS = 32768 };

static int layer_listed(const mlp_shape *s, int l)
{
    return l == 0 || (size_t)s->sizes[l] * s->sizes[l + 1] > SMALL_WEIGHTS;
}

int mlp_work_init(mlp_work *w, const mlp_shape *s, int max_n, tr_error *err)
{
    memset(w, 0, sizeof *w);
    size_t floats = pad((size_t)max_n * s->sizes[0]);
    for (int l = 0; l < s->n_layers; l++)
        floats += 2 * pad((size_t)max_n * s->sizes[l + 1]);
    floats += pad((size_t)max_n); /* labels, as bytes, fit in max_n floats */
    floats += pad((size_t)max_n * sizeof(uint8_t *) / sizeof(float)); /* rows */
    size_t max_weights = 0; /* of the layers whose input gradient is needed */
    for (int l = 0; l < s->n_layers; l++) {
        size_t nw = (size_t)s->sizes[l] * s->sizes[l + 1];
        if (l > 0 && nw > max_weights)
            max_weights = nw;
        if (layer_listed(s, l))
            floats += pad(dense_inputs_bytes(max_n, s->sizes[l]) / sizeof(float) + 1);
    }
    floats += pad(max_weights);
    float *block = mlp_buffer_new(floats);
    if (!block)
        return error_set(err, "out of memory for a workspace of %zu floats", floats);
    w->block = block;
    w->max_n = max_n;
    float *p = block;
    w->x = p;
    p += pad((size_t)max_n * s->sizes[0]);
    for (int l = 0; l < s->n_layers; l++) {
        w->act[l] = p;
        p += pad((size_t)max_n * s->sizes[l + 1]);
        w->delta[l] = p;
        p += pad((size_t)max_n * s->sizes[l + 1]);
    }
    w->y = (uint8_t *)p;
    p += pad((size_t)max_n);
    w->rows = (const uint8_t **)(void *)p;
    p += pad((size_t)max_n * sizeof(uint8_t *) / sizeof(float));
    for (int l = 0; l < s->n_layers; l++)
        if (layer_listed(s, l)) {
            dense_inputs_init(&w->inputs[l], p, max_n, s->sizes[l]);
            p += pad(dense_inputs_bytes(max_n, s->sizes[l]) / sizeof(float) + 1);
        }
    w->wt = p;
    return 0;
}

void mlp_work_free(mlp_work *w)
{
    free(w->block);
    memset(w, 0, sizeof *w);
}

void mlp_list_input(const mlp *m, mlp_work *w, int n)
{
    dense_inputs_index(&w->inputs[0], w->x, n, m->shape.sizes[0]);
}

void mlp_forward(const mlp *m, mlp_work *w, int n)
{
    const mlp_shape *s = &m->shape;
    dense_forward(w->act[0], &w->inputs[0], m->layer[0].w, m->layer[0].b, n, s->sizes[0],
                  s->sizes[1], s->n_layers > 1);
    mlp_forward_rest(m, w, n);
}

void mlp_forward_rest(const mlp *m, mlp_work *w, int n)
{
    const mlp_shape *s = &m->shape;
    for (int l = 1; l < s->n_layers; l++) {
        const int relu = l < s->n_layers - 1;
        const float *in = w->act[l - 1];
        if (layer_listed(s, l)) {
            dense_inputs_index(&w->inputs[l], in, n, s->sizes[l]);
            dense_forward(w->act[l], &w->inputs[l], m->layer[l].w, m->layer[l].b, n,
                          s->sizes[l], s->sizes[l + 1], relu);
        } else {
            dense_forward_small(w->act[l], in, m->layer[l].w, m->layer[l].b, n, s->sizes[l],
                                s->sizes[l + 1], relu);
        }
    }
}

double mlp_backward(const mlp *m, mlp_work *w, const dense_inputs *first,
                    const uint8_t *labels, int n, float scale, const dense_view *grad,
                    int *correct)
{
    const mlp_shape *s = &m->shape;
    const int last = s->n_layers - 1;
    double loss = softmax_xent(w->delta[last], w->act[last], labels, n, s->sizes[last + 1],
                               scale, correct);
    for (int l = last; l >= 0; l--) {
        float *d_in = l ? w->delta[l - 1] : NULL;
        /* The input lists from the forward pass serve the backward pass.
         * Layer 0 is always listed, so its weight gradient may be left out. */
        if (layer_listed(s, l))
            dense_backward(d_in, grad[l].w, grad[l].b, w->delta[l], l ? &w->inputs[l] : first,
                           m->layer[l].w, w->wt, n, s->sizes[l], s->sizes[l + 1], NULL);
        else
            dense_backward_small(d_in, grad[l].w, grad[l].b, w->delta[l], w->act[l - 1],
                                 m->layer[l].w, w->wt, n, s->sizes[l], s->sizes[l + 1]);
        if (l)
            relu_backward(d_in, w->act[l - 1], (long)n * s->sizes[l]);
    }
    return loss;
}

double mlp_forward_backward(const mlp *m, mlp_work *w, int n, float scale,
                            const dense_view *grad, int *correct)
{
    mlp_forward(m, w, n);
    return mlp_backward(m, w, &w->inputs[0], w->y, n, scale, grad, correct);
}
