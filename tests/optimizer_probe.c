/* optimizer_probe - runs the engine's optimizers and schedules
 * (optimizer.h) for test_optimizers.py to compare with its own transcription
 * of Keras' and PyTorch's formulas.  Each scenario is a line
 *   KIND LR MOMENTUM NESTEROV WEIGHT_DECAY SCHEDULE WARMUP DECAY_RATE
 *   STEPS_PER_EPOCH EPOCHS STEPS SHARDS
 * On N = 37 parameters p[j] = 0.5 sin(j), with the gradient of step t
 * (1-based) g[j] = sin(0.37 j + 1.3 t) + 0.1 cos(j t), given as SHARDS
 * buffers whose sum it is, it prints one line of the rate of each step, then
 * one of the parameters after the last, then m and v (%.9g). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "optimizer.h"

enum { N = 37, MAX_SHARDS = 4 };

static void print_row(const float *x, int n)
{
    for (int j = 0; j < n; j++)
        printf("%s%.9g", j ? " " : "", (double)x[j]);
    printf("\n");
}

int main(void)
{
    char kind[16], schedule[16];
    float lr, momentum, wd;
    int nesterov, epochs, shards;
    long per_epoch, steps;
    double warmup, decay;
    while (scanf("%15s %f %f %d %f %15s %lf %lf %ld %d %ld %d", kind, &lr, &momentum,
                 &nesterov, &wd, schedule, &warmup, &decay, &per_epoch, &epochs, &steps,
                 &shards) == 12) {
        tr_optimizer_kind k;
        tr_schedule_kind s;
        if (tr_optimizer_find(kind, &k) || tr_schedule_find(schedule, &s) || shards < 1 ||
            shards > MAX_SHARDS) {
            fprintf(stderr, "optimizer_probe: bad scenario\n");
            return 2;
        }
        tr_optimizer_hparams hp = tr_optimizer_defaults(k);
        hp.lr = lr;
        hp.momentum = momentum;
        hp.nesterov = nesterov;
        hp.weight_decay = wd;
        hp.schedule = s;
        hp.warmup_epochs = warmup;
        hp.decay_rate = decay;
        hp.steps_per_epoch = per_epoch;
        hp.epochs = epochs;
        tr_optimizer o;
        tr_error err;
        if (tr_optimizer_check(&hp, &err) || tr_optimizer_init(&o, N, &hp, &err)) {
            fprintf(stderr, "optimizer_probe: %s\n", err.msg);
            return 2;
        }
        float p[N], g[MAX_SHARDS][N];
        const float *grads[MAX_SHARDS];
        for (int j = 0; j < N; j++)
            p[j] = 0.5f * sinf((float)j);
        for (long t = 1; t <= steps; t++) {
            for (int j = 0; j < N; j++) {
                const float whole = sinf(0.37f * (float)j + 1.3f * (float)t) +
                                    0.1f * cosf((float)j * (float)t);
                /* The shards' parts add up to whole exactly in order. */
                float left = whole;
                for (int q = 0; q < shards - 1; q++) {
                    g[q][j] = q == 0 ? whole : 0.0f;
                    left -= g[q][j];
                }
                g[shards - 1][j] = left;
            }
            for (int q = 0; q < shards; q++)
                grads[q] = g[q];
            const tr_optimizer_coeffs c = tr_optimizer_coeffs_at(&hp, t);
            printf("%s%.9g", t > 1 ? " " : "", (double)c.lr);
            /* Two slices, as two threads would split the buffer. */
            tr_optimizer_update(&hp, p, o.m, o.v, grads, shards, 0, 16, &c);
            tr_optimizer_update(&hp, p, o.m, o.v, grads, shards, 16, N, &c);
        }
        printf("\n");
        print_row(p, N);
        print_row(o.m, N);
        print_row(o.v, N);
        tr_optimizer_free(&o);
    }
    return 0;
}
