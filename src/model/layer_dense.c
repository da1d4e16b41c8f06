/* Dense: out = act(in . w + b), w: [in][units] (input-major, so that the
 * kernels' inner loops run over contiguous outputs), act ReLU or none.  The
 * input is read as a flat vector whatever its shape. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dense.h"
#include "layer_kinds.h"
#include "rng.h"

/* The input of the model, pixels with 81% zeros in MNIST, goes through
 * weights too big for the L1 cache: listing its nonzero inputs pays, and the
 * list also tells which weight rows have a gradient.  Hidden layers' inputs
 * are about half zeros and their weights small: register-blocked kernels that
 * multiply the zeros too are faster there (the 128-32 and 32-10 layers'
 * passes went from about 50k to 12k cycles per 16 samples). */
enum { SMALL_WEIGHTS = 32768 };

typedef struct {
    tr_dense_inputs list; /* the block's input, listed, when the layer is */
    float *wt;         /* [units][in]: w transposed, for the input gradient */
} dense_work;

static size_t align64(size_t bytes)
{
    return (bytes + 63) / 64 * 64;
}

/* The hyper-parameter words: units, then 1 for a ReLU or 0 for none. */
static int units(const tr_layer *l)
{
    return (int)l->hp[0];
}

static int relu(const tr_layer *l)
{
    return (int)l->hp[1];
}

static int in_dim(const tr_layer *l)
{
    return (int)tr_tensor_size(l->in);
}

static size_t weights(const tr_layer *l)
{
    return (size_t)in_dim(l) * (size_t)units(l);
}

static int listed(const tr_layer *l)
{
    return l->reads_images || weights(l) > SMALL_WEIGHTS;
}

/* The model's first layer has no input gradient to compute. */
static int needs_d_in(const tr_layer *l)
{
    return l->index > 0;
}

static int dense_build(tr_layer *l, tr_error *err)
{
    const long n = tr_tensor_size(l->in);
    if (units(l) < 1 || units(l) > LAYER_MAX_WIDTH)
        return tr_error_set(err, "layer %d: dense with %d units (1 to %d)", l->index + 1,
                            units(l), LAYER_MAX_WIDTH);
    if (n < 1 || n > LAYER_MAX_WIDTH)
        return tr_error_set(err, "layer %d: dense on %ld inputs (1 to %d)", l->index + 1, n,
                            LAYER_MAX_WIDTH);
    l->out = (tr_tensor_shape){1, 1, units(l)};
    l->n_tensors = 2;
    l->count[DENSE_W] = weights(l);
    l->count[DENSE_B] = (size_t)units(l);
    l->trainable[DENSE_W] = l->trainable[DENSE_B] = 1;
    return 0;
}

static const char *const activations[] = {"linear", "relu", "softmax", "none", NULL};

static int dense_parse(const spec_item *it, uint32_t *hp, int *head, tr_error *err)
{
    if (it->n_args < 1)
        return tr_error_set(err, "'%s': dense needs its units, as dense(128,relu)", it->text);
    int act = 0;
    if (tr_spec_whole(it, 0, 1, LAYER_MAX_WIDTH, &hp[0], "units", err) ||
        tr_spec_options(it, 1, (const char *const *const[]){activations}, 1, &act, err))
        return -1;
    hp[1] = act == 1;
    *head = act == 2;
    return 0;
}

static void dense_format(const tr_layer *l, int last, char *buf, size_t size)
{
    snprintf(buf, size, "dense(%d%s)", units(l), last ? ",softmax" : relu(l) ? ",relu" : "");
}

static int dense_check(const uint32_t *words, tr_error *err)
{
    if (words[0] < 1 || words[0] > LAYER_MAX_WIDTH)
        return tr_error_set(err, "dense with %u units (1 to %d)", words[0], LAYER_MAX_WIDTH);
    if (words[1] > 1)
        return tr_error_set(err, "dense activation %u (0 none, 1 relu)", words[1]);
    return 0;
}

static double dense_macs(const tr_layer *l)
{
    return (double)weights(l);
}

static size_t dense_work_bytes(const tr_layer *l, int max_n)
{
    size_t bytes = align64(sizeof(dense_work));
    if (listed(l))
        bytes += align64(tr_dense_inputs_bytes(max_n, in_dim(l)));
    if (needs_d_in(l))
        bytes += align64(sizeof(float) * weights(l));
    return bytes;
}

static void dense_work_init(const tr_layer *l, void *mem, int max_n)
{
    dense_work *w = mem;
    char *p = (char *)mem + align64(sizeof *w);
    memset(w, 0, sizeof *w);
    if (listed(l)) {
        tr_dense_inputs_init(&w->list, p, max_n, in_dim(l));
        p += align64(tr_dense_inputs_bytes(max_n, in_dim(l)));
    }
    if (needs_d_in(l))
        w->wt = (float *)p;
}

/* Glorot-uniform weights, U(-a, a) with a = sqrt(6 / (fan_in + fan_out)),
 * and zero biases. */
static void dense_init(const tr_layer *l, float *params, uint64_t seed)
{
    const int in = in_dim(l), out = units(l);
    const float limit = (float)sqrt(6.0 / (double)(in + out));
    tr_rng r;
    tr_rng_seed(&r, seed, RNG_STREAM_INIT + (uint64_t)l->index);
    float *w = params + l->offset[DENSE_W];
    for (long k = 0; k < (long)in * out; k++)
        w[k] = (2.0f * tr_rng_uniform(&r) - 1.0f) * limit;
    memset(params + l->offset[DENSE_B], 0, sizeof(float) * (size_t)out);
}

static void dense_layer_forward(const tr_layer *l, float *out, const tr_layer_input *in,
                                const float *params, void *work, int n,
                                const tr_layer_pass *pass)
{
    (void)pass;
    dense_work *w = work;
    const float *wt = params + l->offset[DENSE_W], *b = params + l->offset[DENSE_B];
    if (!listed(l)) {
        tr_dense_forward_small(out, in->x, wt, b, n, in_dim(l), units(l), relu(l));
        return;
    }
    if (in->rows)
        tr_dense_inputs_index_bytes(&w->list, in->rows, n, in_dim(l), in->divisor);
    else
        tr_dense_inputs_index(&w->list, in->x, n, in_dim(l));
    tr_dense_forward(out, &w->list, wt, b, n, in_dim(l), units(l), relu(l));
}

static void dense_layer_backward(const tr_layer *l, float *d_in, float *grad, float *d_out,
                                 const float *in, const float *out, const float *params,
                                 void *work, int n, const tr_layer_pass *pass)
{
    (void)pass;
    dense_work *w = work;
    if (relu(l))
        tr_dense_relu_backward(d_out, out, (long)n * units(l));
    const float *wt = params + l->offset[DENSE_W];
    float *d_w = grad + l->offset[DENSE_W], *d_b = grad + l->offset[DENSE_B];
    if (listed(l))
        tr_dense_backward(d_in, d_w, d_b, d_out, &w->list, wt, w->wt, n, in_dim(l), units(l),
                          NULL);
    else
        tr_dense_backward_small(d_in, d_w, d_b, d_out, in, wt, w->wt, n, in_dim(l), units(l));
}

/* A Flatten first when the input is an image; Linear's weight is [units][in],
 * its inputs in PyTorch's channel-first order. */
static void dense_export(const tr_layer *l, tr_tensor_shape order, layer_export *e)
{
    (void)order;
    if (l->in.h > 1 || l->in.w > 1)
        tr_export_attr_int(tr_export_add(e, "Flatten", "Flatten()"), "axis", 1);
    export_module *m = tr_export_add(e, "Gemm", "Linear(%d, %d)", in_dim(l), units(l));
    tr_export_attr_int(m, "transB", 1);
    tr_export_param_add(m, "weight", DENSE_W, 2, (const int64_t[]){units(l), in_dim(l)});
    tr_export_param_add(m, "bias", DENSE_B, 1, (const int64_t[]){units(l)});
    if (relu(l))
        tr_export_add(e, "Relu", "ReLU()");
}

/* PyTorch's input j is (channel, row, column) of the image the input
 * flattens; this engine's is (row, column, channel). */
static void dense_export_values(const tr_layer *l, const export_param *p, tr_tensor_shape s,
                                const float *params, float *out)
{
    const float *w = params + l->offset[p->tensor];
    if (p->tensor == DENSE_B) {
        memcpy(out, w, sizeof(float) * l->count[DENSE_B]);
        return;
    }
    const long in = in_dim(l);
    const int f = units(l);
    for (int o = 0; o < f; o++)
        for (int ch = 0; ch < s.c; ch++)
            for (int y = 0; y < s.h; y++)
                for (int x = 0; x < s.w; x++) {
                    const long i = ((long)y * s.w + x) * s.c + ch;
                    *out++ = i < in ? w[i * f + o] : 0.0f;
                }
}

static const layer_trainer_ops *dense_trainer(const tr_layer *l)
{
    return l->reads_images ? &tr_dense_rows_trainer : NULL;
}

const layer_ops tr_dense_layer_ops = {
    .name = "dense",
    .keras = "Dense",
    .reads_images = 1,
    .parse = dense_parse,
    .format = dense_format,
    .words = 2,
    .check = dense_check,
    .build = dense_build,
    .macs = dense_macs,
    .work_bytes = dense_work_bytes,
    .work_init = dense_work_init,
    .init = dense_init,
    .forward = dense_layer_forward,
    .backward = dense_layer_backward,
    .export = dense_export,
    .export_values = dense_export_values,
    .trainer = dense_trainer,
};
