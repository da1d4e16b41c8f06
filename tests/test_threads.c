/* The same batch gives the same loss and gradients whatever the number of
 * threads, and the gradient a threaded step uses is the plain whole-batch one. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "testutil.h"
#include "train.h"

#define TOL 1e-5

static float max_abs_diff(const float *a, const float *b, size_t n)
{
    float worst = 0.0f;
    for (size_t j = 0; j < n; j++)
        worst = fmaxf(worst, fabsf(a[j] - b[j]));
    return worst;
}

static void gradient(tr_model *m, const tr_dataset *d, const uint32_t *idx, uint32_t n,
                     int threads, int shards, float *grad, double *loss)
{
    tr_train_config cfg = {.threads = threads, .shards = shards, .batch_size = 32,
                        .opt = tr_adam_defaults(), .seed = 0};
    tr_train_session *s;
    tr_error err;
    CHECK(tr_train_session_new(&s, m, &cfg, &err) == 0, "%s", err.msg);
    CHECK(tr_train_gradient(s, d, idx, n, grad, loss, &err) == 0, "%s", err.msg);
    test_check_threads_ran(tr_train_session_threads_ran(s), threads, shards ? shards : threads);
    tr_train_session_free(s);
}

int main(void)
{
    tr_dataset d;
    test_make_dataset(&d, 200, 28, 28, 5);
    tr_mlp_shape shape;
    tr_error err;
    const int hidden[] = {128, 32};
    CHECK(tr_mlp_shape_make(&shape, 784, hidden, 2, 10, &err) == 0, "%s", err.msg);
    tr_model m;
    CHECK(tr_model_init_mlp(&m, tensor_flat(shape.sizes[0]), &shape, &err) == 0, "%s", err.msg);
    tr_model_init_glorot(&m, 7);

    uint32_t idx[32];
    for (int i = 0; i < 32; i++)
        idx[i] = (uint32_t)(i * 6 + 1);
    float *g1 = tr_model_buffer_new(m.len), *g4 = tr_model_buffer_new(m.len);
    float *g3 = tr_model_buffer_new(m.len), *ref = tr_model_buffer_new(m.len);
    double l1, l4, l3, lref;
    gradient(&m, &d, idx, 32, 1, 0, g1, &l1);
    gradient(&m, &d, idx, 32, 4, 0, g4, &l4);
    float e = max_abs_diff(g1, g4, m.len);
    printf("1 vs 4 threads: loss %.9f vs %.9f, max gradient difference %.3g\n", l1, l4, e);
    CHECK(fabs(l1 - l4) <= TOL, "loss %.9f vs %.9f", l1, l4);
    CHECK(e <= TOL, "gradients differ by %g", e);
    float norm = 0.0f;
    for (size_t j = 0; j < m.len; j++)
        norm = fmaxf(norm, fabsf(g1[j]));
    CHECK(norm > 1e-3f, "the gradient is all but zero (%g): nothing was compared", norm);

    /* The whole batch in one plain pass is the reference for both. */
    tr_model_work w;
    CHECK(tr_model_work_init(&w, &m, 32, &err) == 0, "%s", err.msg);
    tr_dataset_gather(w.x, w.y, &d, idx, 0, 32);
    const tr_layer_input in = tr_model_input(&w, NULL, 1.0f);
    int correct = 0;
    tr_model_forward(&m, &w, &in, 32, &(tr_layer_pass){.training = 1});
    lref = tr_model_backward(&m, &w, &in, w.y, 32, 1.0f / 32, ref, &correct) / 32;
    CHECK(fabs(lref - l4) <= TOL && max_abs_diff(ref, g4, m.len) <= TOL,
          "4 threads vs one plain pass: loss %.9f vs %.9f", l4, lref);

    /* With a fixed number of shards the arithmetic does not depend on the
     * thread count at all: bit for bit. */
    gradient(&m, &d, idx, 32, 1, 8, g1, &l1);
    gradient(&m, &d, idx, 32, 3, 8, g3, &l3);
    gradient(&m, &d, idx, 32, 8, 8, g4, &l4);
    CHECK(memcmp(g1, g3, sizeof(float) * m.len) == 0 && l1 == l3,
          "8 shards on 1 and 3 threads differ");
    CHECK(memcmp(g1, g4, sizeof(float) * m.len) == 0 && l1 == l4,
          "8 shards on 1 and 8 threads differ");

    /* A batch smaller than the thread count leaves shards empty. */
    gradient(&m, &d, idx, 3, 8, 0, g4, &l4);
    gradient(&m, &d, idx, 3, 1, 0, g1, &l1);
    CHECK(fabs(l1 - l4) <= TOL && max_abs_diff(g1, g4, m.len) <= TOL,
          "3 samples on 8 threads");

    tr_model_work_free(&w);
    tr_model_buffer_free(g1);
    tr_model_buffer_free(g3);
    tr_model_buffer_free(g4);
    tr_model_buffer_free(ref);
    tr_model_free(&m);
    tr_dataset_free(&d);
    return test_finish("test_threads");
}
