/* Batch normalization and ReLU in training, against a reference written
 * here in double, a whole batch at a time: the loss with each channel's
 * batch mean and biased variance, and every coordinate of the gradient
 * against its central differences.  Through both ways a gradient is
 * computed: tr_model_forward/tr_model_backward on a block (the block is the
 * batch) and tr_train_gradient, the training step, whose shards must add up to
 * the whole batch's statistics: 3 shards give the block's gradient, the
 * same bits on 1 and 2 threads.  A training epoch moves the moving mean and
 * variance by Keras' momentum; inference uses them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "testutil.h"
#include "train.h"

enum { N = 12, MAX_VALUES = 1 << 14 };

static int is(const tr_layer *l, const char *name)
{
    return strcmp(tr_layer_kind_name(l->kind), name) == 0;
}

/* The batch's values through layer l in double: a [N][in size] -> b [N][out size]. */
static void ref_layer(const tr_layer *l, const double *p, const double *a, double *b)
{
    const tr_tensor_shape in = l->in, out = l->out;
    const long isz = tr_tensor_size(in), osz = tr_tensor_size(out);
    if (is(l, "conv2d")) {
        const int f = (int)l->hp[0], k = (int)l->hp[1], pad = l->hp[2] ? (k - 1) / 2 : 0;
        for (int s = 0; s < N; s++)
            for (int oy = 0; oy < out.h; oy++)
                for (int ox = 0; ox < out.w; ox++)
                    for (int o = 0; o < f; o++) {
                        double z = p[l->offset[DENSE_B] + (size_t)o];
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                const int iy = oy + ky - pad, ix = ox + kx - pad;
                                if (iy < 0 || iy >= in.h || ix < 0 || ix >= in.w)
                                    continue;
                                for (int c = 0; c < in.c; c++)
                                    z += a[s * isz + ((long)iy * in.w + ix) * in.c + c] *
                                         p[l->offset[DENSE_W] +
                                           (size_t)(((ky * k + kx) * in.c + c) * f + o)];
                            }
                        b[s * osz + ((long)oy * out.w + ox) * f + o] =
                            l->hp[3] && z < 0 ? 0 : z;
                    }
    } else if (is(l, "dense")) {
        const int units = (int)l->hp[0];
        for (int s = 0; s < N; s++)
            for (int o = 0; o < units; o++) {
                double z = p[l->offset[DENSE_B] + (size_t)o];
                for (long i = 0; i < isz; i++)
                    z += a[s * isz + i] * p[l->offset[DENSE_W] + (size_t)(i * units + o)];
                b[s * osz + o] = l->hp[1] && z < 0 ? 0 : z;
            }
    } else if (is(l, "batchnorm")) {
        /* Keras: the batch's mean and biased variance per channel, eps 1e-3. */
        const int c = in.c;
        const long per = (long)N * in.h * in.w;
        for (int ch = 0; ch < c; ch++) {
            double mean = 0.0, var = 0.0;
            for (long r = 0; r < per; r++)
                mean += a[r * c + ch];
            mean /= (double)per;
            for (long r = 0; r < per; r++)
                var += (a[r * c + ch] - mean) * (a[r * c + ch] - mean);
            var /= (double)per;
            const double gamma = p[l->offset[0] + (size_t)ch], beta = p[l->offset[1] + (size_t)ch];
            for (long r = 0; r < per; r++)
                b[r * c + ch] = gamma * (a[r * c + ch] - mean) / sqrt(var + 1e-3) + beta;
        }
    } else if (is(l, "relu")) {
        for (long j = 0; j < N * isz; j++)
            b[j] = a[j] > 0 ? a[j] : 0;
    } else { /* flatten */
        memcpy(b, a, sizeof(double) * (size_t)(N * isz));
    }
}

/* The batch's mean cross-entropy for parameters p (the model's layout). */
static double ref_loss(const tr_model *m, const double *p, const double *x, const uint8_t *y)
{
    double *a = malloc(sizeof(double) * MAX_VALUES), *b = malloc(sizeof(double) * MAX_VALUES);
    memcpy(a, x, sizeof(double) * (size_t)(N * tr_tensor_size(m->input)));
    for (int l = 0; l < m->n_layers - 1; l++) {
        CHECK(N * tr_tensor_size(m->layer[l].out) <= MAX_VALUES, "the reference's buffers");
        ref_layer(&m->layer[l], p, a, b);
        double *t = a;
        a = b;
        b = t;
    }
    const int k = tr_model_classes(m);
    double total = 0.0;
    for (int s = 0; s < N; s++) {
        const double *z = a + (long)s * k;
        double mx = z[0], sum = 0.0;
        for (int c = 1; c < k; c++)
            mx = fmax(mx, z[c]);
        for (int c = 0; c < k; c++)
            sum += exp(z[c] - mx);
        total += log(sum) + mx - z[y[s]];
    }
    free(a), free(b);
    return total / N;
}

/* Every trainable coordinate of grad against central differences (the
 * moving statistics, which training does not differentiate, are skipped). */
static void check_gradient(const tr_model *m, const float *grad, const double *x,
                           const uint8_t *y, const char *what)
{
    double *p = malloc(sizeof(double) * m->len);
    for (size_t j = 0; j < m->len; j++)
        p[j] = m->params[j];
    double worst = 0.0;
    size_t worst_j = 0, checked = 0;
    for (int l = 0; l < m->n_layers; l++)
        for (int t = 0; t < m->layer[l].n_tensors; t++) {
            if (!m->layer[l].trainable[t])
                continue;
            for (size_t q = 0; q < m->layer[l].count[t]; q++, checked++) {
                /* A value within h of a ReLU's kink bends the difference: the
                 * best of three steps is one that crosses none. */
                const size_t j = m->layer[l].offset[t] + q;
                const double keep = p[j];
                double e = INFINITY;
                for (double h = 1e-5; h >= 1e-7; h /= 10) {
                    p[j] = keep + h;
                    const double up = ref_loss(m, p, x, y);
                    p[j] = keep - h;
                    const double down = ref_loss(m, p, x, y);
                    p[j] = keep;
                    const double fd = (up - down) / (2 * h);
                    e = fmin(e, fabs(grad[j] - fd) / fmax(fabs(grad[j]) + fabs(fd), 1e-3));
                }
                if (e > worst) {
                    worst = e;
                    worst_j = j;
                }
            }
        }
    printf("%s: %zu coordinates, worst error %.2e at %zu\n", what, checked, worst, worst_j);
    CHECK(worst < 2e-3, "%s: coordinate error %.3g at %zu", what, worst, worst_j);
    free(p);
}

static void check_stack(const char *spec, uint32_t rows, uint32_t cols)
{
    tr_layer layers[MODEL_MAX_LAYERS];
    int n_layers;
    tr_error err;
    CHECK(tr_model_parse_layers(spec, layers, &n_layers, &err) == 0, "%s: %s", spec, err.msg);
    tr_model m;
    CHECK(tr_model_init(&m, (tr_tensor_shape){(int)rows, (int)cols, 1}, layers, n_layers,
                        &err) == 0,
          "%s: %s", spec, err.msg);
    if (!m.params)
        return;
    tr_model_init_glorot(&m, 7);
    /* gamma and beta away from 1 and 0, so that a pass that ignored one
     * would show. */
    for (int l = 0; l < m.n_layers; l++)
        if (is(&m.layer[l], "batchnorm"))
            for (size_t q = 0; q < m.layer[l].count[0]; q++) {
                m.params[m.layer[l].offset[0] + q] = 0.5f + 0.125f * (float)(q % 5);
                m.params[m.layer[l].offset[1] + q] = 0.25f - 0.0625f * (float)(q % 7);
            }
    tr_dataset d;
    test_make_dataset(&d, 40, rows, cols, 4);
    uint32_t idx[N];
    double *x = malloc(sizeof(double) * N * d.dim);
    uint8_t y[N];
    for (int s = 0; s < N; s++) {
        idx[s] = (uint32_t)(3 * s + 2);
        y[s] = d.labels[idx[s]];
        for (uint32_t i = 0; i < d.dim; i++)
            x[(size_t)s * d.dim + i] =
                (double)((float)d.pixels[(size_t)idx[s] * d.dim + i] / DATASET_PIXEL_DIVISOR);
    }
    double *p = malloc(sizeof(double) * m.len);
    for (size_t j = 0; j < m.len; j++)
        p[j] = m.params[j];
    const double ref = ref_loss(&m, p, x, y);

    /* A block through tr_model_forward / tr_model_backward: the block is the batch. */
    tr_model_work w;
    CHECK(tr_model_work_init(&w, &m, N, &err) == 0, "%s", err.msg);
    for (size_t j = 0; j < (size_t)N * d.dim; j++)
        w.x[j] = (float)x[j];
    const tr_layer_input in = tr_model_input(&w, NULL, 1.0f);
    float *grad = tr_model_buffer_new(m.len);
    int correct = 0;
    tr_model_forward(&m, &w, &in, N, &(tr_layer_pass){.training = 1});
    const double loss = tr_model_backward(&m, &w, &in, y, N, 1.0f / N, grad, &correct) / N;
    CHECK(fabs(loss - ref) <= 1e-5 * fabs(ref), "%s: block loss %.9g, reference %.9g", spec,
          loss, ref);
    char what[256];
    snprintf(what, sizeof what, "%s, a block", spec);
    check_gradient(&m, grad, x, y, what);

    /* The step: 3 shards add up to the batch, on 1 and 2 threads. */
    float *g[2];
    double sloss[2];
    for (int run = 0; run < 2; run++) {
        g[run] = tr_model_buffer_new(m.len);
        tr_train_config cfg = {.threads = run + 1, .shards = 3, .batch_size = 16,
                            .opt = tr_adam_defaults(), .seed = 5};
        tr_train_session *s;
        CHECK(tr_train_session_new(&s, &m, &cfg, &err) == 0, "%s", err.msg);
        CHECK(tr_train_gradient(s, &d, idx, N, g[run], &sloss[run], &err) == 0, "%s", err.msg);
        tr_train_session_free(s);
    }
    CHECK(memcmp(g[0], g[1], sizeof(float) * m.len) == 0 && sloss[0] == sloss[1],
          "%s: 3 shards on 1 and 2 threads differ", spec);
    CHECK(fabs(sloss[0] - ref) <= 1e-5 * fabs(ref), "%s: step loss %.9g, reference %.9g", spec,
          sloss[0], ref);
    snprintf(what, sizeof what, "%s, train_gradient in 3 shards", spec);
    check_gradient(&m, g[0], x, y, what);
    /* tr_train_gradient changes nothing: the moving statistics stay. */
    for (int l = 0; l < m.n_layers; l++)
        if (is(&m.layer[l], "batchnorm"))
            CHECK(m.params[m.layer[l].offset[2]] == 0.0f && m.params[m.layer[l].offset[3]] == 1.0f,
                  "%s: train_gradient moved the moving statistics", spec);
    for (int run = 0; run < 2; run++)
        tr_model_buffer_free(g[run]);
    tr_model_buffer_free(grad);
    tr_model_work_free(&w);
    free(p), free(x);
    tr_dataset_free(&d);
    tr_model_free(&m);
}

/* One epoch of one step on 12 samples: the moving mean and variance move
 * from 0 and 1 by 1 - 0.99 of the batch's (biased) statistics of the
 * layer's input, computed here; inference then normalizes with them. */
static void check_moving(void)
{
    tr_layer layers[MODEL_MAX_LAYERS];
    int n_layers;
    tr_error err;
    CHECK(tr_model_parse_layers("flatten,batchnorm,dense(10,softmax)", layers, &n_layers, &err) ==
              0, "%s", err.msg);
    tr_model m;
    CHECK(tr_model_init(&m, (tr_tensor_shape){4, 5, 1}, layers, n_layers, &err) == 0, "%s",
          err.msg);
    tr_model_init_glorot(&m, 2);
    tr_dataset d;
    test_make_dataset(&d, N, 4, 5, 9);
    tr_train_config cfg = {.threads = 2, .shards = 3, .batch_size = N, .opt = tr_adam_defaults(),
                        .seed = 1};
    tr_train_session *s;
    CHECK(tr_train_session_new(&s, &m, &cfg, &err) == 0, "%s", err.msg);
    double loss, acc;
    CHECK(tr_train_epoch(s, &d, 1, &loss, &acc, NULL, NULL, &err) == 0, "%s", err.msg);
    tr_train_session_free(s);
    const tr_layer *bn = &m.layer[1];
    double worst = 0.0;
    for (uint32_t i = 0; i < d.dim; i++) {
        double mean = 0.0, var = 0.0;
        for (int k = 0; k < N; k++)
            mean += (float)d.pixels[(size_t)k * d.dim + i] / DATASET_PIXEL_DIVISOR;
        mean /= N;
        for (int k = 0; k < N; k++) {
            const double v = (float)d.pixels[(size_t)k * d.dim + i] / DATASET_PIXEL_DIVISOR;
            var += (v - mean) * (v - mean);
        }
        var /= N;
        const double mm = m.params[bn->offset[2] + i], mv = m.params[bn->offset[3] + i];
        worst = fmax(worst, fmax(fabs(mm - 0.01 * mean), fabs(mv - (0.99 + 0.01 * var))));
    }
    printf("moving statistics after one step: worst error %.2e\n", worst);
    CHECK(worst < 1e-6, "moving statistics off by %.3g", worst);
    /* Inference: (x - moving mean) / sqrt(moving var + 1e-3) * gamma + beta. */
    tr_model_work w;
    CHECK(tr_model_work_init(&w, &m, 1, &err) == 0, "%s", err.msg);
    const uint8_t *row = d.pixels;
    const tr_layer_input in = {NULL, &row, DATASET_PIXEL_DIVISOR};
    tr_model_forward(&m, &w, &in, 1, NULL);
    worst = 0.0;
    for (uint32_t i = 0; i < d.dim; i++) {
        const double v = (float)row[i] / DATASET_PIXEL_DIVISOR;
        const double want = (v - m.params[bn->offset[2] + i]) /
                                sqrt((double)m.params[bn->offset[3] + i] + 1e-3) *
                                m.params[bn->offset[0] + i] +
                            m.params[bn->offset[1] + i];
        worst = fmax(worst, fabs(w.act[1][i] - want));
    }
    CHECK(worst < 1e-5, "inference with the moving statistics off by %.3g", worst);
    tr_model_work_free(&w);
    tr_dataset_free(&d);
    tr_model_free(&m);
}

int main(void)
{
    check_stack("conv2d(3,3),batchnorm,relu,flatten,dense(6),batchnorm,relu,dense(10,softmax)",
                6, 6);
    /* On the images themselves, then before a fused ReLU's layer. */
    check_stack("batchnorm,conv2d(2,3,same,relu),flatten,dense(10,softmax)", 5, 4);
    check_moving();
    return test_finish("test_batchnorm");
}
