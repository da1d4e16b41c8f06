#include "dense.h"

#include <float.h>
#include <math.h>
#include <string.h>

void dense_forward_ref(float *out, const float *in, const float *w, const float *b,
                       int n, int in_dim, int out_dim, int relu)
{
    for (int s = 0; s < n; s++) {
        for (int o = 0; o < out_dim; o++) {
            float acc = b[o];
            for (int i = 0; i < in_dim; i++)
                acc += in[(long)s * in_dim + i] * w[(long)i * out_dim + o];
            out[(long)s * out_dim + o] = relu && acc < 0.0f ? 0.0f : acc;
        }
    }
}

void dense_backward_ref(float *d_in, float *d_w, float *d_b, const float *d_out,
                        const float *in, const float *w, int n, int in_dim,
                        int out_dim)
{
    for (int o = 0; o < out_dim; o++) {
        float acc = 0.0f;
        for (int s = 0; s < n; s++)
            acc += d_out[(long)s * out_dim + o];
        d_b[o] = acc;
    }
    for (int i = 0; i < in_dim; i++) {
        for (int o = 0; o < out_dim; o++) {
            float acc = 0.0f;
            for (int s = 0; s < n; s++)
                acc += in[(long)s * in_dim + i] * d_out[(long)s * out_dim + o];
            d_w[(long)i * out_dim + o] = acc;
        }
    }
    if (!d_in)
        return;
    for (int s = 0; s < n; s++) {
        for (int i = 0; i < in_dim; i++) {
            float acc = 0.0f;
            for (int o = 0; o < out_dim; o++)
                acc += d_out[(long)s * out_dim + o] * w[(long)i * out_dim + o];
            d_in[(long)s * in_dim + i] = acc;
        }
    }
}

void dense_forward(float *restrict out, const float *restrict in,
                   const float *restrict w, const float *restrict b, int n,
                   int in_dim, int out_dim, int relu)
{
    for (int s = 0; s < n; s++) {
        float *restrict y = out + (long)s * out_dim;
        const float *restrict x = in + (long)s * in_dim;
        memcpy(y, b, sizeof(float) * (size_t)out_dim);
        for (int i = 0; i < in_dim; i++) {
            const float xi = x[i];
            /* Most MNIST pixels are 0: skipping them changes no result. */
            if (xi == 0.0f)
                continue;
            const float *restrict wi = w + (long)i * out_dim;
            for (int o = 0; o < out_dim; o++)
                y[o] += xi * wi[o];
        }
        if (relu)
            for (int o = 0; o < out_dim; o++)
                y[o] = y[o] < 0.0f ? 0.0f : y[o];
    }
}

void dense_backward(float *restrict d_in, float *restrict d_w, float *restrict d_b,
                    const float *restrict d_out, const float *restrict in,
                    const float *restrict w, int n, int in_dim, int out_dim)
{
    memset(d_b, 0, sizeof(float) * (size_t)out_dim);
    for (int s = 0; s < n; s++)
        for (int o = 0; o < out_dim; o++)
            d_b[o] += d_out[(long)s * out_dim + o];
    for (int i = 0; i < in_dim; i++) {
        float *restrict dwi = d_w + (long)i * out_dim;
        memset(dwi, 0, sizeof(float) * (size_t)out_dim);
        for (int s = 0; s < n; s++) {
            const float xi = in[(long)s * in_dim + i];
            if (xi == 0.0f)
                continue;
            const float *restrict g = d_out + (long)s * out_dim;
            for (int o = 0; o < out_dim; o++)
                dwi[o] += xi * g[o];
        }
    }
    if (!d_in)
        return;
    for (int s = 0; s < n; s++) {
        const float *restrict g = d_out + (long)s * out_dim;
        for (int i = 0; i < in_dim; i++) {
            const float *restrict wi = w + (long)i * out_dim;
            float acc = 0.0f;
            for (int o = 0; o < out_dim; o++)
                acc += g[o] * wi[o];
            d_in[(long)s * in_dim + i] = acc;
        }
    }
}

void relu_backward(float *restrict d, const float *restrict out, long count)
{
    for (long k = 0; k < count; k++)
        d[k] = out[k] > 0.0f ? d[k] : 0.0f;
}

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

double softmax_xent(float *d_logits, const float *logits, const uint8_t *labels,
                    int n, int classes, float scale, int *correct)
{
    double loss = 0.0;
    for (int s = 0; s < n; s++) {
        const float *z = logits + (long)s * classes;
        float *d = d_logits + (long)s * classes;
        float m;
        int arg;
        double lse = row_logsumexp(z, classes, &m, &arg);
        loss += lse - ((double)z[labels[s]] - (double)m);
        *correct += arg == labels[s];
        for (int c = 0; c < classes; c++) {
            double p = exp((double)z[c] - (double)m - lse);
            d[c] = scale * (float)(p - (c == labels[s]));
        }
    }
    return loss;
}

double softmax_xent_eval(uint8_t *pred, const float *logits, const uint8_t *labels,
                         int n, int classes, int *correct)
{
    double loss = 0.0;
    for (int s = 0; s < n; s++) {
        const float *z = logits + (long)s * classes;
        float m;
        int arg;
        double lse = row_logsumexp(z, classes, &m, &arg);
        loss += lse - ((double)z[labels[s]] - (double)m);
        *correct += arg == labels[s];
        if (pred)
            pred[s] = (uint8_t)arg;
    }
    return loss;
}
