#include "layer.h"

#include "layer_kinds.h"

/* One line per kind: a new kind is its module and its line here. */
static const layer_ops *const kinds[LAYER_KINDS] = {
    [LAYER_DENSE] = &dense_layer_ops,
    [LAYER_SOFTMAX] = &softmax_layer_ops,
};

static const layer_ops *ops(const layer *l)
{
    return kinds[l->kind];
}

long tensor_size(tensor_shape s)
{
    return (long)s.h * s.w * s.c;
}

const char *layer_kind_name(layer_kind kind)
{
    return kind >= 0 && kind < LAYER_KINDS ? kinds[kind]->name : "unknown";
}

int layer_build(layer *l, tr_error *err)
{
    if (l->kind < 0 || l->kind >= LAYER_KINDS)
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
                   void *work, int n)
{
    ops(l)->forward(l, out, in, params, work, n);
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
