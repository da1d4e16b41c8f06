/* Three Adam steps against values computed independently in float64 by
 * tools/reference_adam.py (Keras' form of the update). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "optimizer.h"
#include "testutil.h"

enum { N = 6 };

/* float32 against float64 over three steps of values up to 2. */
#define TOL 1e-6

int main(void)
{
    const double want[3][N] = {
        {0.4990000316, -0.2990000158, 0.1000000000, -0.0009693466, 1.9990000011, -1.4990000063},
        {0.4980678784, -0.2992477155, 0.1007439016, -0.0019474696, 1.9988554807, -1.4980000108},
        {0.4982742325, -0.2996030468, 0.1004296599, -0.0014247398, 1.9985769720, -1.4974843596},
    };
    const float grads[3][N] = {
        {0.1f, -0.2f, 0.0f, 1e-4f, 3.0f, -0.5f},
        {0.05f, 0.3f, -0.01f, 1e-4f, -2.0f, -0.5f},
        {-0.2f, 0.1f, 0.02f, -1e-3f, 1.0f, 0.25f},
    };
    float p[N] = {0.5f, -0.3f, 0.1f, 0.0f, 2.0f, -1.5f};
    tr_optimizer opt;
    tr_error err;
    tr_optimizer_hparams hp = tr_adam_defaults();
    CHECK(hp.lr == 1e-3f && hp.beta1 == 0.9f && hp.beta2 == 0.999f && hp.eps == 1e-7f,
          "Keras' defaults");
    CHECK(tr_optimizer_init(&opt, N, &hp, &err) == 0, "%s", err.msg);
    for (int t = 0; t < 3; t++) {
        /* The gradient arrives as two shard buffers whose sum it is. */
        float a[N], b[N];
        for (int j = 0; j < N; j++) {
            a[j] = grads[t][j] * 0.25f;
            b[j] = grads[t][j] - a[j];
        }
        const float *shards[2] = {a, b};
        /* Two slices, as two threads would split the buffer. */
        const tr_optimizer_coeffs c = tr_optimizer_coeffs_at(&hp, t + 1);
        tr_optimizer_update(&hp, p, opt.m, opt.v, shards, 2, 0, 4, &c);
        tr_optimizer_update(&hp, p, opt.m, opt.v, shards, 2, 4, N, &c);
        for (int j = 0; j < N; j++)
            CHECK(fabs(p[j] - want[t][j]) <= TOL, "step %d p[%d] = %.10f, want %.10f", t + 1,
                  j, p[j], want[t][j]);
    }
    /* 1 - beta2 carries beta2's float32 rounding (1.3e-5 relative), as in Keras. */
    double a1 = tr_adam_alpha(hp.lr, &hp, 1), want_a1 = 1e-3 * sqrt(1 - 0.999) / (1 - 0.9);
    CHECK(fabs(a1 - want_a1) < 1e-5 * want_a1, "alpha_1 = %.9g, want %.9g", a1, want_a1);
    tr_optimizer_free(&opt);
    return test_finish("test_adam");
}
