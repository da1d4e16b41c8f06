/* Training epochs against plain steps: for every batch of the epoch's order,
 * the whole-batch gradient and an optimizer update of every parameter, for
 * each optimizer, with schedules and label smoothing.  The epoch
 * must give the same parameters bit for bit, although it fuses the reduction
 * with the update, splits it across threads, and skips the first-layer rows
 * whose moments are 0 and that no sample lights (unless weights decay).  The data has such rows
 * (pixels never lit), a row lit by one sample only (its moments become nonzero
 * in the middle of the first epoch and must keep decaying after), and the
 * second epoch starts from a state that is not fresh.  Also: a tensor that is
 * not trainable is left alone by the optimizer; images of the wrong size are
 * refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "optimizer.h"
#include "rng.h"
#include "testutil.h"
#include "train.h"

enum { N = 200, BATCH = 32, EPOCHS = 2, SEED = 3 };

/* The reference: plain steps in the order tr_train_epoch shuffles to. */
static void plain_epochs(tr_model *m, const tr_dataset *d, const tr_train_config *cfg)
{
    tr_train_session *s;
    tr_error err;
    CHECK(tr_train_session_new(&s, m, cfg, &err) == 0, "%s", err.msg);
    tr_optimizer opt;
    CHECK(tr_optimizer_init(&opt, m->len, &cfg->opt, &err) == 0, "%s", err.msg);
    float *grad = tr_model_buffer_new(m->len);
    uint32_t order[N];
    long step = 0;
    for (int epoch = 0; epoch < EPOCHS; epoch++) {
        for (uint32_t i = 0; i < N; i++)
            order[i] = i;
        tr_rng r;
        tr_rng_seed(&r, cfg->seed, RNG_STREAM_SHUFFLE + (uint64_t)epoch);
        tr_rng_shuffle(&r, order, N);
        for (uint32_t first = 0; first < N; first += BATCH) {
            uint32_t n = N - first < BATCH ? N - first : BATCH;
            double loss;
            CHECK(tr_train_gradient(s, d, order + first, n, grad, &loss, &err) == 0, "%s",
                  err.msg);
            const float *g[1] = {grad};
            const tr_optimizer_coeffs c = tr_optimizer_coeffs_at(&cfg->opt, ++step);
            tr_optimizer_update(&cfg->opt, m->params, opt.m, opt.v, g, 1, 0, m->len, &c);
        }
    }
    tr_model_buffer_free(grad);
    tr_optimizer_free(&opt);
    tr_train_session_free(s);
}

/* The optimizers the steps are checked with: 0 adam; 1 adamw, cosine after
 * half an epoch of warm-up; 2 sgd with Nesterov momentum, one cycle; 3
 * rmsprop with momentum, exponential decay; 4 plain sgd with label
 * smoothing. */
static void optimizer_variant(tr_train_config *cfg, int v)
{
    static const tr_optimizer_kind kinds[] = {OPTIMIZER_ADAM, OPTIMIZER_ADAMW, OPTIMIZER_SGD,
                                           OPTIMIZER_RMSPROP, OPTIMIZER_SGD};
    tr_optimizer_hparams *o = &cfg->opt;
    *o = tr_optimizer_defaults(kinds[v]);
    o->steps_per_epoch = (N + BATCH - 1) / BATCH;
    o->epochs = EPOCHS;
    if (v == 1) {
        o->schedule = SCHEDULE_COSINE;
        o->warmup_epochs = 0.5;
    } else if (v == 2) {
        o->momentum = 0.9f;
        o->nesterov = 1;
        o->schedule = SCHEDULE_ONECYCLE;
        o->lr = 0.05f;
    } else if (v == 3) {
        o->momentum = 0.5f;
        o->schedule = SCHEDULE_EXPONENTIAL;
        o->decay_rate = 0.5;
    } else if (v == 4) {
        cfg->label_smoothing = 0.1f;
    }
    tr_error err;
    CHECK(tr_optimizer_check(o, &err) == 0, "variant %d: %s", v, err.msg);
}

static void trained_epochs(tr_model *m, const tr_dataset *d, const tr_train_config *cfg)
{
    tr_train_session *s;
    tr_error err;
    CHECK(tr_train_session_new(&s, m, cfg, &err) == 0, "%s", err.msg);
    for (int epoch = 0; epoch < EPOCHS; epoch++) {
        double loss, acc;
        CHECK(tr_train_epoch(s, d, epoch, &loss, &acc, NULL, NULL, &err) == 0, "%s", err.msg);
    }
    test_check_threads_ran(tr_train_session_threads_ran(s), cfg->threads, cfg->shards);
    tr_train_session_free(s);
}

int main(void)
{
    tr_dataset d;
    test_make_dataset(&d, N, 28, 28, 9);
    /* Column 0 never lit; pixel 5 lit by one sample only. */
    for (uint32_t i = 0; i < N; i++)
        for (uint32_t y = 0; y < 28; y++) {
            d.pixels[(size_t)i * d.dim + y * 28] = 0;
            d.pixels[(size_t)i * d.dim + 5] = 0;
        }
    d.pixels[(size_t)17 * d.dim + 5] = 200;

    tr_mlp_shape shape;
    tr_error err;
    const int hidden[] = {128, 32};
    CHECK(tr_mlp_shape_make(&shape, 784, hidden, 2, 10, &err) == 0, "%s", err.msg);
    /* threads, shards, optimizer variant (optimizer_variant) */
    const int runs[][3] = {{1, 2, 0}, {2, 2, 0}, {3, 2, 0}, {3, 3, 0}, {2, 5, 0},
                           {1, 2, 1}, {3, 3, 1}, {2, 2, 2}, {2, 5, 2}, {1, 2, 3},
                           {3, 2, 3}, {2, 2, 4}, {3, 3, 4}};
    for (size_t k = 0; k < sizeof runs / sizeof *runs; k++) {
        tr_train_config cfg = {.threads = runs[k][0], .shards = runs[k][1], .batch_size = BATCH,
                            .seed = SEED};
        optimizer_variant(&cfg, runs[k][2]);
        tr_model a, b;
        CHECK(tr_model_init_mlp(&a, tensor_flat(shape.sizes[0]), &shape, &err) == 0 &&
                  tr_model_init_mlp(&b, tensor_flat(shape.sizes[0]), &shape, &err) == 0,
              "%s", err.msg);
        tr_model_init_glorot(&a, SEED);
        tr_model_init_glorot(&b, SEED);
        plain_epochs(&a, &d, &cfg);
        trained_epochs(&b, &d, &cfg);
        size_t differ = 0;
        for (size_t j = 0; j < a.len; j++)
            differ += memcmp(&a.params[j], &b.params[j], sizeof(float)) != 0;
        CHECK(differ == 0, "%d threads, %d shards, %s: %zu of %zu parameters differ from "
              "plain steps", runs[k][0], runs[k][1], tr_optimizer_name(cfg.opt.kind), differ,
              a.len);
        /* The data did exercise both kinds of rows: the row lit once moved,
         * a row never lit did not. */
        const float *w5 = layer_tensor(&a.layer[0], a.params, DENSE_W) + 5 * 128;
        float init[128];
        tr_model c;
        CHECK(tr_model_init_mlp(&c, tensor_flat(shape.sizes[0]), &shape, &err) == 0, "%s", err.msg);
        tr_model_init_glorot(&c, SEED);
        memcpy(init, layer_tensor(&c.layer[0], c.params, DENSE_W) + 5 * 128, sizeof init);
        CHECK(memcmp(w5, init, sizeof init) != 0, "the row lit once never moved");
        const int same0 = memcmp(layer_tensor(&a.layer[0], a.params, DENSE_W),
                                 layer_tensor(&c.layer[0], c.params, DENSE_W),
                                 128 * sizeof(float)) == 0;
        CHECK(same0 == (cfg.opt.weight_decay == 0.0f),
              "a row never lit %s", same0 ? "kept its weights under weight decay" : "moved");
        tr_model_free(&a);
        tr_model_free(&b);
        tr_model_free(&c);
    }
    tr_dataset_free(&d);

    /* A tensor that is not trainable is never given to the optimizer: a
     * conv net whose second conv layer's bias is marked so keeps it, and
     * its moments stay 0, while every trainable tensor moves; the same bits
     * on 1 and 2 threads. */
    {
        tr_dataset cd;
        test_make_dataset(&cd, 64, 8, 8, 5);
        tr_layer spec[MODEL_MAX_LAYERS];
        int n_spec;
        CHECK(tr_model_parse_layers("conv2d(3,3,relu),conv2d(4,3,same,relu),flatten,"
                                    "dense(10,softmax)", spec, &n_spec, &err) == 0, "%s", err.msg);
        float *after[2];
        size_t len = 0;
        for (int run = 0; run < 2; run++) {
            tr_model cm, fresh;
            CHECK(tr_model_init(&cm, (tr_tensor_shape){8, 8, 1}, spec, n_spec, &err) == 0 &&
                      tr_model_init(&fresh, (tr_tensor_shape){8, 8, 1}, spec, n_spec, &err) == 0,
                  "%s", err.msg);
            tr_model_init_glorot(&cm, SEED);
            tr_model_init_glorot(&fresh, SEED);
            tr_layer *frozen = &cm.layer[1];
            frozen->trainable[DENSE_B] = 0;
            float *bias = layer_tensor(frozen, cm.params, DENSE_B);
            for (int o = 0; o < 4; o++)
                bias[o] = fresh.params[frozen->offset[DENSE_B] + (size_t)o] = 0.25f * (float)o;
            tr_train_config ccfg = {.threads = run + 1, .shards = 3, .batch_size = 16,
                                 .opt = tr_adam_defaults(), .seed = SEED};
            tr_train_session *cs;
            CHECK(tr_train_session_new(&cs, &cm, &ccfg, &err) == 0, "%s", err.msg);
            double closs, cacc;
            CHECK(tr_train_epoch(cs, &cd, 1, &closs, &cacc, NULL, NULL, &err) == 0, "%s",
                  err.msg);
            const tr_optimizer *opt = tr_train_session_optimizer(cs);
            int moved = 1, zero = 1;
            for (int l = 0; l < cm.n_layers; l++)
                for (int t = 0; t < cm.layer[l].n_tensors; t++) {
                    const size_t at = cm.layer[l].offset[t], n = cm.layer[l].count[t];
                    const int same = memcmp(cm.params + at, fresh.params + at,
                                            n * sizeof(float)) == 0;
                    if (cm.layer[l].trainable[t])
                        moved &= !same;
                    else
                        for (size_t j = 0; j < n; j++)
                            zero &= same && opt->m[at + j] == 0.0f && opt->v[at + j] == 0.0f;
                }
            CHECK(moved, "%d threads: a trainable tensor did not move", run + 1);
            CHECK(zero, "%d threads: the untrained bias moved, or has moments", run + 1);
            len = cm.len;
            after[run] = tr_model_buffer_new(cm.len);
            memcpy(after[run], cm.params, sizeof(float) * cm.len);
            tr_train_session_free(cs);
            tr_model_free(&cm);
            tr_model_free(&fresh);
        }
        CHECK(memcmp(after[0], after[1], sizeof(float) * len) == 0, "1 and 2 threads differ");
        tr_model_buffer_free(after[0]);
        tr_model_buffer_free(after[1]);
        tr_dataset_free(&cd);
    }

    /* Images of another size than the model's input are refused, not read
     * past their end. */
    tr_dataset small;
    test_make_dataset(&small, 40, 10, 10, 4);
    tr_model m;
    CHECK(tr_model_init_mlp(&m, tensor_flat(shape.sizes[0]), &shape, &err) == 0, "%s", err.msg);
    tr_train_config cfg = {.threads = 2, .shards = 2, .batch_size = BATCH,
                        .opt = tr_adam_defaults(), .seed = SEED};
    tr_train_session *s;
    CHECK(tr_train_session_new(&s, &m, &cfg, &err) == 0, "%s", err.msg);
    double loss, acc;
    CHECK(tr_train_epoch(s, &small, 0, &loss, &acc, NULL, NULL, &err) != 0 &&
              strstr(err.msg, "784 inputs") && strstr(err.msg, "100 values"),
          "training on 10x10 images with a 784-input model: '%s'", err.msg);
    CHECK(tr_evaluate(&m, &small, 2, &loss, &acc, NULL, &err) != 0 && strstr(err.msg, "784 inputs"),
          "evaluating 10x10 images with a 784-input model: '%s'", err.msg);
    tr_train_session_free(s);
    tr_model_free(&m);
    tr_dataset_free(&small);
    return test_finish("test_step");
}
