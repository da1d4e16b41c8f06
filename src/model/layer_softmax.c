/* Softmax fused with the cross-entropy loss: the head of a classifier.  Its
 * input is the logits, one per class; it has no parameters. */
#include "dense.h"
#include "layer_kinds.h"

static int softmax_build(layer *l, tr_error *err)
{
    const long n = tensor_size(l->in);
    if (n < 1 || n > 256)
        return error_set(err, "layer %d: softmax over %ld classes (1 to 256)", l->index + 1, n);
    l->out = l->in;
    return 0;
}

static double softmax_loss(const layer *l, float *d_in, const float *in, const uint8_t *labels,
                           int n, float scale, int *correct)
{
    return softmax_xent(d_in, in, labels, n, (int)tensor_size(l->in), scale, correct);
}

static double softmax_predict(const layer *l, uint8_t *pred, const float *in,
                              const uint8_t *labels, int n, int *correct)
{
    return softmax_xent_eval(pred, in, labels, n, (int)tensor_size(l->in), correct);
}

const layer_ops softmax_layer_ops = {
    .name = "softmax",
    .head = 1,
    .build = softmax_build,
    .loss = softmax_loss,
    .predict = softmax_predict,
};
