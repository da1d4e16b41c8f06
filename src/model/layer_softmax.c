/* Softmax fused with the cross-entropy loss: the head of a classifier.  Its
 * input is the logits, one per class; it has no parameters. */
#include "softmax.h"

#include <math.h>

#include "layer_kinds.h"

/* Returns log(sum(exp(row - max))) and the arg max (lowest index on ties). */
static double row_logsumexp(const float *row, int classes, float *max_out, int *arg)
{
    float m = row[0];
    int a = 0;
    for (int c = 1; c < classes; c++)
        if (row[c] > m) {
            m = row[c];
            a = c;
        }
    double sum = 0.0;
    for (int c = 0; c < classes; c++)
        sum += exp((double)row[c] - (double)m);
    *max_out = m;
    *arg = a;
    return log(sum);
}

/* The smoothed part of a row's loss: ls times the mean over the classes of
 * -(z_c - max), which the one-hot part's lse - (z_label - max) joins. */
static double smoothing_term(const float *z, float m, int classes, float ls)
{
    double sum = 0.0;
    for (int c = 0; c < classes; c++)
        sum += (double)z[c] - (double)m;
    return (double)ls * sum / classes;
}

double tr_softmax_xent(float *d_logits, const float *logits, const uint8_t *labels,
                       int n, int classes, float scale, float ls, int *correct)
{
    double loss = 0.0;
    for (int s = 0; s < n; s++) {
        const float *z = logits + (long)s * classes;
        float *d = d_logits + (long)s * classes;
        float m = z[0];
        int arg = 0;
        for (int c = 1; c < classes; c++)
            if (z[c] > m) {
                m = z[c];
                arg = c;
            }
        /* exp(z - max) once per class, kept in d until the sum is known. */
        double sum = 0.0;
        for (int c = 0; c < classes; c++) {
            double e = exp((double)z[c] - (double)m);
            sum += e;
            d[c] = (float)e;
        }
        *correct += arg == labels[s];
        const double inv = 1.0 / sum;
        if (ls == 0.0f) {
            loss += log(sum) - ((double)z[labels[s]] - (double)m);
            for (int c = 0; c < classes; c++)
                d[c] = scale * (float)((double)d[c] * inv - (c == labels[s]));
            continue;
        }
        const double hit = 1.0 - (double)ls, rest = (double)ls / classes;
        loss += log(sum) - hit * ((double)z[labels[s]] - (double)m) -
                smoothing_term(z, m, classes, ls);
        for (int c = 0; c < classes; c++)
            d[c] = scale * (float)((double)d[c] * inv - (hit * (c == labels[s]) + rest));
    }
    return loss;
}

double tr_softmax_xent_eval(uint8_t *pred, const float *logits, const uint8_t *labels,
                            int n, int classes, float ls, int *correct)
{
    double loss = 0.0;
    for (int s = 0; s < n; s++) {
        const float *z = logits + (long)s * classes;
        float m;
        int arg;
        double lse = row_logsumexp(z, classes, &m, &arg);
        if (ls == 0.0f)
            loss += lse - ((double)z[labels[s]] - (double)m);
        else
            loss += lse - (1.0 - (double)ls) * ((double)z[labels[s]] - (double)m) -
                    smoothing_term(z, m, classes, ls);
        *correct += arg == labels[s];
        if (pred)
            pred[s] = (uint8_t)arg;
    }
    return loss;
}

static int softmax_build(tr_layer *l, tr_error *err)
{
    const long n = tr_tensor_size(l->in);
    if (n < 1 || n > 256)
        return tr_error_set(err, "layer %d: softmax over %ld classes (1 to 256)", l->index + 1, n);
    l->out = l->in;
    return 0;
}

static double softmax_loss(const tr_layer *l, float *d_in, const float *in, const uint8_t *labels,
                           int n, float scale, float ls, int *correct)
{
    return tr_softmax_xent(d_in, in, labels, n, (int)tr_tensor_size(l->in), scale, ls, correct);
}

static double softmax_predict(const tr_layer *l, uint8_t *pred, const float *in,
                              const uint8_t *labels, int n, float ls, int *correct)
{
    return tr_softmax_xent_eval(pred, in, labels, n, (int)tr_tensor_size(l->in), ls, correct);
}

static void softmax_export(const tr_layer *l, tr_tensor_shape order, layer_export *e)
{
    (void)l, (void)order;
    tr_export_attr_int(tr_export_add(e, "Softmax", "Softmax(dim=1)"), "axis", 1);
}

const layer_ops tr_softmax_layer_ops = {
    .name = "softmax",
    .keras = "Softmax",
    .head = 1,
    .build = softmax_build,
    .loss = softmax_loss,
    .predict = softmax_predict,
    .export = softmax_export,
};
