#include "layer.h"

#include <string.h>

#include "layer_kinds.h"

/* One line per kind: a new kind is its module and its line here. */
static const layer_ops *const kinds[LAYER_KINDS] = {
    [LAYER_DENSE] = &dense_layer_ops,
    [LAYER_SOFTMAX] = &softmax_layer_ops,
    [LAYER_CONV2D] = &conv2d_layer_ops,
    [LAYER_MAXPOOL2D] = &maxpool2d_layer_ops,
    [LAYER_FLATTEN] = &flatten_layer_ops,
    [LAYER_DROPOUT] = &dropout_layer_ops,
};

static const layer_ops *ops(const layer *l)
{
    return kinds[l->kind];
}

long tensor_size(tensor_shape s)
{
    return (long)s.h * s.w * s.c;
}

static int known(uint32_t kind)
{
    return kind < LAYER_KINDS && kinds[kind];
}

const char *layer_kind_name(layer_kind kind)
{
    return known((uint32_t)kind) ? kinds[kind]->name : "unknown";
}

const char *layer_kind_keras_name(layer_kind kind)
{
    return known((uint32_t)kind) ? kinds[kind]->keras : "Unknown";
}

void layer_hyper_encode(const layer *l, uint32_t words[LAYER_HYPER_WORDS])
{
    memset(words, 0, sizeof(uint32_t) * LAYER_HYPER_WORDS);
    if (ops(l)->encode)
        ops(l)->encode(l, words);
}

int layer_hyper_decode(layer *l, uint32_t kind, const uint32_t words[LAYER_HYPER_WORDS],
                       tr_error *err)
{
    memset(l, 0, sizeof *l);
    if (!known(kind))
        return error_set(err, "unknown layer kind %u", kind);
    l->kind = (layer_kind)kind;
    if (ops(l)->decode)
        return ops(l)->decode(l, words, err);
    for (int k = 0; k < LAYER_HYPER_WORDS; k++)
        if (words[k])
            return error_set(err, "%s takes no hyper-parameters (word %d is %u)",
                             ops(l)->name, k, words[k]);
    return 0;
}

int layer_build(layer *l, tr_error *err)
{
    if (!known((uint32_t)l->kind))
        return error_set(err, "layer %d: unknown kind %d", l->index + 1, (int)l->kind);
    l->n_tensors = 0;
    l->reads_images = l->reads_images && ops(l)->reads_images;
    return ops(l)->build(l, err);
}

int layer_is_head(const layer *l)
{
    return ops(l)->head;
}

size_t layer_work_bytes(const layer *l, int max_n)
{
    return ops(l)->work_bytes ? ops(l)->work_bytes(l, max_n) : 0;
}

void layer_work_init(const layer *l, void *mem, int max_n)
{
    if (ops(l)->work_init)
        ops(l)->work_init(l, mem, max_n);
}

void layer_init(const layer *l, float *params, uint64_t seed)
{
    if (ops(l)->init)
        ops(l)->init(l, params, seed);
}

void layer_forward(const layer *l, float *out, const layer_input *in, const float *params,
                   void *work, int n, const layer_pass *pass)
{
    ops(l)->forward(l, out, in, params, work, n, pass);
}

void layer_backward(const layer *l, float *d_in, float *grad, float *d_out, const float *in,
                    const float *out, const float *params, void *work, int n)
{
    ops(l)->backward(l, d_in, grad, d_out, in, out, params, work, n);
}

double layer_loss(const layer *l, float *d_in, const float *in, const uint8_t *labels, int n,
                  float scale, int *correct)
{
    return ops(l)->loss(l, d_in, in, labels, n, scale, correct);
}

double layer_predict(const layer *l, uint8_t *pred, const float *in, const uint8_t *labels,
                     int n, int *correct)
{
    return ops(l)->predict(l, pred, in, labels, n, correct);
}

const layer_trainer_ops *layer_trainer(const layer *l)
{
    return ops(l)->trainer ? ops(l)->trainer(l) : NULL;
}
