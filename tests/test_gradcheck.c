/* The network's analytic gradients against central differences of the loss,
 * where the loss is recomputed in double by an independent plain forward pass. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlp.h"
#include "rng.h"
#include "testutil.h"

enum { N = 6, INPUTS = 12, CLASSES = 4 };

/* Mean cross-entropy of the batch, in double, for parameters p (a double copy
 * of the model's buffer, same layout). */
static double ref_loss(const mlp *m, const double *p, const float *x, const uint8_t *y)
{
    const mlp_shape *s = &m->shape;
    double total = 0.0;
    for (int n = 0; n < N; n++) {
        double a[64], b[64];
        for (int i = 0; i < INPUTS; i++)
            a[i] = x[n * INPUTS + i];
        for (int l = 0; l < s->n_layers; l++) {
            size_t wo = (size_t)(m->layer[l].w - m->params);
            size_t bo = (size_t)(m->layer[l].b - m->params);
            int in = s->sizes[l], out = s->sizes[l + 1];
            for (int o = 0; o < out; o++) {
                double z = p[bo + o];
                for (int i = 0; i < in; i++)
                    z += a[i] * p[wo + (size_t)i * out + o];
                b[o] = (l < s->n_layers - 1 && z < 0) ? 0.0 : z;
            }
            memcpy(a, b, sizeof(double) * (size_t)out);
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

/* Relative error with a floor, so that tiny gradients are not judged on noise. */
static double rel_err(double a, double b)
{
    return fabs(a - b) / fmax(fabs(a) + fabs(b), 1e-4);
}

static void check_network(const int *hidden, int n_hidden, uint64_t seed)
{
    mlp_shape shape;
    tr_error err;
    mlp m;
    CHECK(mlp_shape_make(&shape, INPUTS, hidden, n_hidden, CLASSES, &err) == 0, "%s", err.msg);
    CHECK(mlp_init(&m, &shape, &err) == 0, "%s", err.msg);
    mlp_init_glorot(&m, seed);
    rng r;
    rng_seed(&r, seed, 99);
    /* Nonzero biases, so that the bias gradients of every layer are exercised
     * and ReLU inputs are not all near 0. */
    for (int l = 0; l < shape.n_layers; l++)
        for (int o = 0; o < shape.sizes[l + 1]; o++)
            m.layer[l].b[o] = 0.2f * (2.0f * rng_uniform(&r) - 1.0f);

    mlp_work w;
    CHECK(mlp_work_init(&w, &shape, N, &err) == 0, "%s", err.msg);
    for (int i = 0; i < N * INPUTS; i++)
        w.x[i] = rng_below(&r, 3) == 0 ? 0.0f : rng_uniform(&r);
    for (int n = 0; n < N; n++)
        w.y[n] = (uint8_t)rng_below(&r, CLASSES);
    float x[N * INPUTS];
    uint8_t y[N];
    memcpy(x, w.x, sizeof x);
    memcpy(y, w.y, sizeof y);

    float *grad = mlp_buffer_new(m.len);
    dense_view gv[MLP_MAX_LAYERS];
    mlp_views(&shape, grad, gv);
    int correct = 0;
    mlp_list_input(&m, &w, N);
    double loss = mlp_forward_backward(&m, &w, N, 1.0f / N, gv, &correct) / N;

    double *p = malloc(sizeof(double) * m.len);
    for (size_t j = 0; j < m.len; j++)
        p[j] = m.params[j];
    double ref = ref_loss(&m, p, x, y);
    CHECK(fabs(loss - ref) <= 1e-5 * fabs(ref), "loss %.9g, double reference %.9g", loss, ref);

    /* Every coordinate of every tensor (the nets are small). */
    const double h = 1e-5;
    double worst = 0.0;
    size_t worst_j = 0;
    for (int l = 0; l < shape.n_layers; l++) {
        size_t wo = (size_t)(m.layer[l].w - m.params), bo = (size_t)(m.layer[l].b - m.params);
        size_t nw = (size_t)shape.sizes[l] * shape.sizes[l + 1];
        for (size_t k = 0; k < nw + (size_t)shape.sizes[l + 1]; k++) {
            size_t j = k < nw ? wo + k : bo + (k - nw);
            double keep = p[j];
            p[j] = keep + h;
            double up = ref_loss(&m, p, x, y);
            p[j] = keep - h;
            double down = ref_loss(&m, p, x, y);
            p[j] = keep;
            double e = rel_err(grad[j], (up - down) / (2 * h));
            if (e > worst) {
                worst = e;
                worst_j = j;
            }
        }
    }
    printf("hidden %d layers, seed %llu: worst coordinate error %.2e at %zu (analytic %.6g)\n",
           n_hidden, (unsigned long long)seed, worst, worst_j, grad[worst_j]);
    CHECK(worst < 1e-3, "coordinate gradient error %.3g at %zu", worst, worst_j);

    /* Along a random direction over all parameters at once. */
    double *dir = malloc(sizeof(double) * m.len), dot = 0.0;
    double *pp = malloc(sizeof(double) * m.len), *pm = malloc(sizeof(double) * m.len);
    for (size_t j = 0; j < m.len; j++) {
        dir[j] = 2.0 * rng_uniform(&r) - 1.0;
        dot += dir[j] * grad[j];
        pp[j] = p[j] + h * dir[j];
        pm[j] = p[j] - h * dir[j];
    }
    double fd = (ref_loss(&m, pp, x, y) - ref_loss(&m, pm, x, y)) / (2 * h);
    printf("  random direction: analytic %.9g, finite difference %.9g\n", dot, fd);
    CHECK(rel_err(dot, fd) < 1e-4, "directional derivative %.9g vs %.9g", dot, fd);

    free(dir); free(pp); free(pm); free(p);
    mlp_buffer_free(grad);
    mlp_work_free(&w);
    mlp_free(&m);
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
