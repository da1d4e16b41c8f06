/* The gradients the layers compute against central differences of the loss,
 * where the loss is recomputed in double by an independent plain forward
 * pass.  Both ways a gradient is computed are checked: tr_model_backward, the
 * layers' plain passes (on images and on floats), and tr_train_gradient, the
 * training step itself (shards on threads, the first layer's trainer, the
 * reduce). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "rng.h"
#include "testutil.h"
#include "train.h"

enum { N = 12, ROWS = 3, COLS = 5, INPUTS = ROWS * COLS, CLASSES = 10 };

enum { MAX_UNITS = 64 };

/* Mean cross-entropy of the batch, in double, for parameters p (a double copy
 * of the model's buffer, same layout): dense layers, ReLU between them.  With
 * lit not NULL ([N][layers][MAX_UNITS]), records which ReLUs pass their
 * input. */
static double ref_loss_lit(const tr_model *m, const double *p, const double *x, const uint8_t *y,
                           uint8_t *lit)
{
    const int dense = m->n_layers - 1;
    double total = 0.0;
    for (int n = 0; n < N; n++) {
        double a[MAX_UNITS], b[MAX_UNITS];
        int width = INPUTS;
        for (int i = 0; i < INPUTS; i++)
            a[i] = x[n * INPUTS + i];
        for (int l = 0; l < dense; l++) {
            const size_t wo = m->layer[l].offset[DENSE_W], bo = m->layer[l].offset[DENSE_B];
            const int out = (int)tr_tensor_size(m->layer[l].out);
            for (int o = 0; o < out; o++) {
                double z = p[bo + o];
                for (int i = 0; i < width; i++)
                    z += a[i] * p[wo + (size_t)i * out + o];
                b[o] = (l < dense - 1 && z < 0) ? 0.0 : z;
                if (lit)
                    lit[((size_t)n * MODEL_MAX_LAYERS + (size_t)l) * MAX_UNITS + (size_t)o] = z > 0;
            }
            memcpy(a, b, sizeof(double) * (size_t)out);
            width = out;
        }
        double mx = a[0], sum = 0.0;
        for (int c = 1; c < CLASSES; c++)
            mx = a[c] > mx ? a[c] : mx;
        for (int c = 0; c < CLASSES; c++)
            sum += exp(a[c] - mx);
        total += log(sum) + mx - a[y[n]];
    }
    return total / N;
}

static double ref_loss(const tr_model *m, const double *p, const double *x, const uint8_t *y)
{
    return ref_loss_lit(m, p, x, y, NULL);
}

/* The central difference of ref_loss at p along dir, with the largest step
 * of 1e-5, 1e-6, ... that crosses no ReLU's kink: there the loss is not
 * differentiable, and a step across it measures something else. */
static double directional_difference(const tr_model *m, const double *p, const double *dir,
                                     const double *x, const uint8_t *y)
{
    const size_t lit_len = (size_t)N * MODEL_MAX_LAYERS * MAX_UNITS;
    uint8_t *lit_up = calloc(lit_len, 1), *lit_down = calloc(lit_len, 1);
    double *pp = malloc(sizeof(double) * m->len), *pm = malloc(sizeof(double) * m->len);
    double fd = NAN;
    for (double h = 1e-5; h >= 1e-8; h /= 10) {
        for (size_t j = 0; j < m->len; j++) {
            pp[j] = p[j] + h * dir[j];
            pm[j] = p[j] - h * dir[j];
        }
        fd = (ref_loss_lit(m, pp, x, y, lit_up) - ref_loss_lit(m, pm, x, y, lit_down)) / (2 * h);
        if (memcmp(lit_up, lit_down, lit_len) == 0)
            break;
        printf("  a step of %g crosses a ReLU's kink: a smaller one\n", h);
    }
    free(lit_up);
    free(lit_down);
    free(pp);
    free(pm);
    return fd;
}

/* Relative error with a floor, so that tiny gradients are not judged on noise. */
static double rel_err(double a, double b)
{
    return fabs(a - b) / fmax(fabs(a) + fabs(b), 1e-4);
}

/* grad (the mean loss's gradient, m's layout) against central differences of
 * ref_loss: every coordinate of every tensor (the nets are small), then along
 * a random direction over all parameters at once. */
static void check_gradient(const tr_model *m, const float *grad, const double *x, const uint8_t *y,
                           const char *what, uint64_t seed)
{
    double *p = malloc(sizeof(double) * m->len);
    for (size_t j = 0; j < m->len; j++)
        p[j] = m->params[j];
    const double h = 1e-5;
    double worst = 0.0;
    size_t worst_j = 0, checked = 0;
    float *ptr[MODEL_MAX_LAYERS * LAYER_MAX_TENSORS];
    size_t count[MODEL_MAX_LAYERS * LAYER_MAX_TENSORS];
    const int nt = tr_model_tensors(m, m->params, ptr, count);
    for (int t = 0; t < nt; t++)
        for (size_t k = 0; k < count[t]; k++, checked++) {
            const size_t j = (size_t)(ptr[t] - m->params) + k;
            const double keep = p[j];
            p[j] = keep + h;
            const double up = ref_loss(m, p, x, y);
            p[j] = keep - h;
            const double down = ref_loss(m, p, x, y);
            p[j] = keep;
            const double e = rel_err(grad[j], (up - down) / (2 * h));
            if (e > worst) {
                worst = e;
                worst_j = j;
            }
        }
    printf("%s, seed %llu: %zu coordinates, worst error %.2e at %zu (analytic %.6g)\n", what,
           (unsigned long long)seed, checked, worst, worst_j, grad[worst_j]);
    CHECK(checked == tr_model_param_count(m), "%zu of %zu coordinates checked", checked,
          tr_model_param_count(m));
    CHECK(worst < 1e-3, "%s: coordinate gradient error %.3g at %zu", what, worst, worst_j);

    tr_rng r;
    tr_rng_seed(&r, seed, 98);
    double *dir = malloc(sizeof(double) * m->len);
    double dot = 0.0;
    for (size_t j = 0; j < m->len; j++) {
        dir[j] = 2.0 * tr_rng_uniform(&r) - 1.0;
        dot += dir[j] * grad[j];
    }
    const double fd = directional_difference(m, p, dir, x, y);
    printf("  random direction: analytic %.9g, finite difference %.9g\n", dot, fd);
    CHECK(rel_err(dot, fd) < 1e-4, "%s: directional derivative %.9g vs %.9g", what, dot, fd);
    free(dir);
    free(p);
}

static void check_network(const int *hidden, int n_hidden, uint64_t seed)
{
    tr_mlp_shape shape;
    tr_error err;
    tr_model m;
    CHECK(tr_mlp_shape_make(&shape, INPUTS, hidden, n_hidden, CLASSES, &err) == 0, "%s", err.msg);
    CHECK(tr_model_init_mlp(&m, tensor_flat(shape.sizes[0]), &shape, &err) == 0, "%s", err.msg);
    tr_model_init_glorot(&m, seed);
    tr_rng r;
    tr_rng_seed(&r, seed, 99);
    /* Nonzero biases, so that the bias gradients of every layer are exercised
     * and ReLU inputs are not all near 0. */
    for (int l = 0; l < m.n_layers - 1; l++)
        for (int o = 0; o < (int)tr_tensor_size(m.layer[l].out); o++)
            m.params[m.layer[l].offset[DENSE_B] + (size_t)o] =
                0.2f * (2.0f * tr_rng_uniform(&r) - 1.0f);

    /* Images with a third of their pixels 0, as bytes, and the floats that
     * the engine reads them as. */
    tr_dataset d = {.n = N, .rows = ROWS, .cols = COLS, .channels = 1, .dim = INPUTS,
                 .classes = CLASSES, .owned = 1};
    d.pixels = malloc(N * INPUTS);
    d.labels = malloc(N);
    double x[N * INPUTS];
    for (int i = 0; i < N * INPUTS; i++) {
        d.pixels[i] = tr_rng_below(&r, 3) == 0 ? 0 : (uint8_t)(1 + tr_rng_below(&r, 255));
        x[i] = (double)((float)d.pixels[i] / DATASET_PIXEL_DIVISOR);
    }
    for (int n = 0; n < N; n++)
        d.labels[n] = (uint8_t)tr_rng_below(&r, CLASSES);
    char what[96];

    /* The layers' plain passes, given the images as bytes and as floats. */
    tr_model_work w;
    CHECK(tr_model_work_init(&w, &m, N, &err) == 0, "%s", err.msg);
    float *grad = tr_model_buffer_new(m.len);
    for (int as_floats = 0; as_floats < 2; as_floats++) {
        for (int n = 0; n < N; n++)
            w.rows[n] = d.pixels + (size_t)n * INPUTS;
        for (int i = 0; i < N * INPUTS; i++)
            w.x[i] = (float)x[i];
        const tr_layer_input in = tr_model_input(&w, as_floats ? NULL : w.rows,
                                                 DATASET_PIXEL_DIVISOR);
        int correct = 0;
        tr_model_forward(&m, &w, &in, N, &(tr_layer_pass){.training = 1});
        const double loss =
            tr_model_backward(&m, &w, &in, d.labels, N, 1.0f / N, grad, &correct) / N;
        double *p = malloc(sizeof(double) * m.len);
        for (size_t j = 0; j < m.len; j++)
            p[j] = m.params[j];
        const double want = ref_loss(&m, p, x, d.labels);
        free(p);
        CHECK(fabs(loss - want) <= 1e-5 * fabs(want), "loss %.9g, double reference %.9g", loss,
              want);
        snprintf(what, sizeof what, "model_backward, %d hidden, input as %s", n_hidden,
                 as_floats ? "floats" : "bytes");
        check_gradient(&m, grad, x, d.labels, what, seed);
    }

    /* The training step's gradient: 12 samples in 5 shards on 2 threads. */
    tr_train_config cfg = {.threads = 2, .shards = 5, .batch_size = 16, .opt = tr_adam_defaults()};
    tr_train_session *s;
    CHECK(tr_train_session_new(&s, &m, &cfg, &err) == 0, "%s", err.msg);
    uint32_t idx[N];
    for (uint32_t i = 0; i < N; i++)
        idx[i] = i;
    double loss;
    memset(grad, 0, sizeof(float) * m.len);
    CHECK(tr_train_gradient(s, &d, idx, N, grad, &loss, &err) == 0, "%s", err.msg);
    snprintf(what, sizeof what, "train_gradient, %d hidden, 5 shards", n_hidden);
    check_gradient(&m, grad, x, d.labels, what, seed);
    tr_train_session_free(s);

    tr_model_buffer_free(grad);
    tr_model_work_free(&w);
    tr_dataset_free(&d);
    tr_model_free(&m);
}

int main(void)
{
    const int two[] = {9, 7}, one[] = {16};
    check_network(two, 2, 1);
    check_network(two, 2, 2);
    check_network(one, 1, 3);
    check_network(NULL, 0, 4);
    return test_finish("test_gradcheck");
}
