/* Dropout(rate): inverted dropout, as Keras': in training each value is kept
 * with probability 1 - rate and scaled by 1 / (1 - rate), or set to 0; in
 * inference the layer passes its input through.  Whether a value is kept is
 * drawn from (seed, epoch, step, the sample's position in its batch, the
 * unit) alone, so results are the same for any thread count and across an
 * interrupted and resumed run. */
#include <stdio.h>
#include <string.h>

#include "layer_kinds.h"
#include "rng.h"

/* The hyper-parameter word: the rate's float bits. */
static float rate(const tr_layer *l)
{
    return word_float(l->hp[0]);
}

static int dropout_build(tr_layer *l, tr_error *err)
{
    if (!(rate(l) >= 0.0f && rate(l) < 1.0f))
        return tr_error_set(err, "layer %d: dropout rate %g (0 to 1, 1 excluded)", l->index + 1,
                            (double)rate(l));
    l->out = l->in;
    return 0;
}

static int dropout_parse(const spec_item *it, uint32_t *hp, int *head, tr_error *err)
{
    (void)head;
    if (it->n_args != 1)
        return tr_error_set(err, "'%s': dropout rate %s (from 0 to 1, 1 excluded)", it->text,
                            it->n_args ? "needs one value" : "missing");
    float r;
    if (tr_spec_fraction(it, 0, 0.0, 1.0, &r, "dropout rate", err))
        return -1;
    hp[0] = float_word(r);
    return 0;
}

static void dropout_format(const tr_layer *l, int last, char *buf, size_t size)
{
    (void)last;
    snprintf(buf, size, "dropout(%g)", (double)rate(l));
}

static int dropout_check(const uint32_t *words, tr_error *err)
{
    const float r = word_float(words[0]);
    if (!(r >= 0.0f && r < 1.0f))
        return tr_error_set(err, "dropout rate %g (0 to 1, 1 excluded)", (double)r);
    return 0;
}

/* The identity in inference: PyTorch's module, no ONNX node. */
static void dropout_export(const tr_layer *l, tr_tensor_shape order, layer_export *e)
{
    (void)order;
    tr_export_add(e, NULL, "Dropout(%.7g)", (double)rate(l));
}

/* The mask of the last training pass: 1 where a value was kept. */
static size_t dropout_work_bytes(const tr_layer *l, int max_n)
{
    return (size_t)max_n * (size_t)tr_tensor_size(l->in);
}

/* y = x * scale where kept, else 0, as a mask on the bits: GCC turns the
 * plain `kept ? x * scale : 0` into a branch, as often mispredicted as a
 * value is dropped. */
static void apply_mask(float *restrict y, const float *restrict x,
                       const uint8_t *restrict kept, float scale, long count)
{
    for (long u = 0; u < count; u++) {
        const float v = x[u] * scale;
        uint32_t bits;
        memcpy(&bits, &v, sizeof bits);
        bits &= -(uint32_t)kept[u];
        memcpy(&y[u], &bits, sizeof bits);
    }
}

/* The key of a step's masks for this layer. */
static uint64_t mask_key(const tr_layer *l, const tr_layer_pass *p)
{
    const uint64_t stream = rng_hash(p->seed) ^ (RNG_STREAM_DROPOUT + (uint64_t)l->index);
    return rng_hash(rng_hash(stream) ^ ((uint64_t)p->epoch << 40) ^ (uint64_t)p->step);
}

static void dropout_forward(const tr_layer *l, float *out, const tr_layer_input *in,
                            const float *params, void *work, int n, const tr_layer_pass *pass)
{
    (void)params;
    const long size = tr_tensor_size(l->in), count = (long)n * size;
    uint8_t *keep = work;
    if (!pass || !pass->training || rate(l) == 0.0f) {
        memcpy(out, in->x, sizeof(float) * (size_t)count);
        memset(keep, 1, (size_t)count);
        return;
    }
    const uint64_t key = mask_key(l, pass);
    const float scale = 1.0f / (1.0f - rate(l));
    /* A 24-bit uniform draw u per value; kept when u >= rate. */
    const uint32_t threshold = (uint32_t)((double)rate(l) * 16777216.0);
    for (int k = 0; k < n; k++) {
        /* The unit's number among the batch's: sample's place * size + unit. */
        const uint64_t base = ((uint64_t)pass->first + (uint64_t)k) * (uint64_t)size;
        const float *restrict x = in->x + k * size;
        float *restrict y = out + k * size;
        uint8_t *restrict kept = keep + k * size;
        for (long u = 0; u < size; u++)
            kept[u] = (uint32_t)(rng_hash(key ^ (base + (uint64_t)u)) >> 40) >= threshold;
        apply_mask(y, x, kept, scale, size);
    }
}

static void dropout_backward(const tr_layer *l, float *d_in, float *grad, float *d_out,
                             const float *in, const float *out, const float *params,
                             void *work, int n, const tr_layer_pass *pass)
{
    (void)pass;
    (void)grad, (void)in, (void)out, (void)params;
    if (!d_in)
        return;
    const long count = (long)n * tr_tensor_size(l->in);
    const uint8_t *keep = work;
    const float scale = rate(l) == 0.0f ? 1.0f : 1.0f / (1.0f - rate(l));
    apply_mask(d_in, d_out, keep, scale, count);
}

const layer_ops tr_dropout_layer_ops = {
    .name = "dropout",
    .keras = "Dropout",
    .keeps_order = 1,
    .parse = dropout_parse,
    .format = dropout_format,
    .words = 1,
    .check = dropout_check,
    .build = dropout_build,
    .export = dropout_export,
    .work_bytes = dropout_work_bytes,
    .forward = dropout_forward,
    .backward = dropout_backward,
};
