/* Dense: out = act(in . w + b), w: [in][units] (input-major, so that the
 * kernels' inner loops run over contiguous outputs), act ReLU or none.  The
 * input is read as a flat vector whatever its shape. */
#include <math.h>
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
    dense_inputs list; /* the block's input, listed, when the layer is */
    float *wt;         /* [units][in]: w transposed, for the input gradient */
} dense_work;

static size_t align64(size_t bytes)
{
    return (bytes + 63) / 64 * 64;
}

static int in_dim(const layer *l)
{
    return (int)tensor_size(l->in);
}

static size_t weights(const layer *l)
{
    return (size_t)in_dim(l) * (size_t)l->units;
}

static int listed(const layer *l)
{
    return l->reads_images || weights(l) > SMALL_WEIGHTS;
}

/* The model's first layer has no input gradient to compute. */
static int needs_d_in(const layer *l)
{
    return l->index > 0;
}

static int dense_build(layer *l, tr_error *err)
{
    const long n = tensor_size(l->in);
    if (l->units < 1 || l->units > LAYER_MAX_WIDTH)
        return error_set(err, "layer %d: dense with %d units (1 to %d)", l->index + 1,
                         l->units, LAYER_MAX_WIDTH);
    if (n < 1 || n > LAYER_MAX_WIDTH)
        return error_set(err, "layer %d: dense on %ld inputs (1 to %d)", l->index + 1, n,
                         LAYER_MAX_WIDTH);
    l->out = (tensor_shape){1, 1, l->units};
    l->n_tensors = 2;
    l->count[DENSE_W] = weights(l);
    l->count[DENSE_B] = (size_t)l->units;
    return 0;
}

static void dense_encode(const layer *l, uint32_t *words)
{
    words[0] = (uint32_t)l->units;
    words[1] = (uint32_t)(l->relu != 0);
}

static int dense_decode(layer *l, const uint32_t *words, tr_error *err)
{
    if (words[0] < 1 || words[0] > LAYER_MAX_WIDTH)
        return error_set(err, "dense with %u units (1 to %d)", words[0], LAYER_MAX_WIDTH);
    if (words[1] > 1)
        return error_set(err, "dense activation %u (0 none, 1 relu)", words[1]);
    for (int k = 2; k < LAYER_HYPER_WORDS; k++)
        if (words[k])
            return error_set(err, "dense hyper-parameter word %d is %u, not 0", k, words[k]);
    l->units = (int)words[0];
    l->relu = (int)words[1];
    return 0;
}

static size_t dense_work_bytes(const layer *l, int max_n)
{
    size_t bytes = align64(sizeof(dense_work));
    if (listed(l))
        bytes += align64(dense_inputs_bytes(max_n, in_dim(l)));
    if (needs_d_in(l))
        bytes += align64(sizeof(float) * weights(l));
    return bytes;
}

static void dense_work_init(const layer *l, void *mem, int max_n)
{
    dense_work *w = mem;
    char *p = (char *)mem + align64(sizeof *w);
    memset(w, 0, sizeof *w);
    if (listed(l)) {
        dense_inputs_init(&w->list, p, max_n, in_dim(l));
        p += align64(dense_inputs_bytes(max_n, in_dim(l)));
    }
    if (needs_d_in(l))
        w->wt = (float *)p;
}

/* Glorot-uniform weights, U(-a, a) with a = sqrt(6 / (fan_in + fan_out)),
 * and zero biases. */
static void dense_init(const layer *l, float *params, uint64_t seed)
{
    const int in = in_dim(l), out = l->units;
    const float limit = (float)sqrt(6.0 / (double)(in + out));
    rng r;
    rng_seed(&r, seed, RNG_STREAM_INIT + (uint64_t)l->index);
    float *w = params + l->offset[DENSE_W];
    for (long k = 0; k < (long)in * out; k++)
        w[k] = (2.0f * rng_uniform(&r) - 1.0f) * limit;
    memset(params + l->offset[DENSE_B], 0, sizeof(float) * (size_t)out);
}

static void dense_layer_forward(const layer *l, float *out, const layer_input *in,
                                const float *params, void *work, int n,
                                const layer_pass *pass)
{
    (void)pass;
    dense_work *w = work;
    const float *wt = params + l->offset[DENSE_W], *b = params + l->offset[DENSE_B];
    if (!listed(l)) {
        dense_forward_small(out, in->x, wt, b, n, in_dim(l), l->units, l->relu);
        return;
    }
    if (in->rows)
        dense_inputs_index_bytes(&w->list, in->rows, n, in_dim(l), in->divisor);
    else
        dense_inputs_index(&w->list, in->x, n, in_dim(l));
    dense_forward(out, &w->list, wt, b, n, in_dim(l), l->units, l->relu);
}

static void dense_layer_backward(const layer *l, float *d_in, float *grad, float *d_out,
                                 const float *in, const float *out, const float *params,
                                 void *work, int n)
{
    dense_work *w = work;
    if (l->relu)
        dense_relu_backward(d_out, out, (long)n * l->units);
    const float *wt = params + l->offset[DENSE_W];
    float *d_w = grad + l->offset[DENSE_W], *d_b = grad + l->offset[DENSE_B];
    if (listed(l))
        dense_backward(d_in, d_w, d_b, d_out, &w->list, wt, w->wt, n, in_dim(l), l->units,
                       NULL);
    else
        dense_backward_small(d_in, d_w, d_b, d_out, in, wt, w->wt, n, in_dim(l), l->units);
}

static const layer_trainer_ops *dense_trainer(const layer *l)
{
    return l->reads_images ? &dense_rows_trainer : NULL;
}

const layer_ops dense_layer_ops = {
    .name = "dense",
    .keras = "Dense",
    .reads_images = 1,
    .build = dense_build,
    .encode = dense_encode,
    .decode = dense_decode,
    .work_bytes = dense_work_bytes,
    .work_init = dense_work_init,
    .init = dense_init,
    .forward = dense_layer_forward,
    .backward = dense_layer_backward,
    .trainer = dense_trainer,
};
