/* Checkpoint round trip and refusal of damaged files; history round trip and
 * refusal of malformed files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "ckpt.h"
#include "fileio.h"
#include "history.h"
#include "state.h"
#include "testutil.h"
#include "train.h"

static const char *dir;

static void expect_ckpt_error(const uint8_t *bytes, size_t len, const char *want)
{
    const char *path = test_write_file(dir, "bad.ckpt", bytes, len, 0);
    tr_model m;
    tr_error err = {{0}};
    CHECK(tr_ckpt_load(&m, path, &err) == -1, "damaged checkpoint loaded (%s)", want);
    CHECK(strstr(err.msg, want) && strstr(err.msg, "bad.ckpt"), "message '%s' lacks '%s'",
          err.msg, want);
    CHECK(m.params == NULL, "parameters left allocated");
}

/* Gives a forged file its correct CRC-32, so that the field behind the
 * change is what gets judged. */
static void fix_crc(uint8_t *bytes, size_t len)
{
    const uint32_t crc = (uint32_t)crc32(0L, bytes, (uInt)(len - 4));
    for (int b = 0; b < 4; b++)
        bytes[len - 4 + b] = (uint8_t)(crc >> (8 * b));
}

static void put32(uint8_t *at, uint32_t v)
{
    for (int b = 0; b < 4; b++)
        at[b] = (uint8_t)(v >> (8 * b));
}

/* A field of the architecture forged (with a good checksum) is refused. */
static void expect_forged(const uint8_t *bytes, size_t len, size_t at, uint32_t value,
                          const char *want)
{
    uint8_t *bad = malloc(len);
    memcpy(bad, bytes, len);
    put32(bad + at, value);
    fix_crc(bad, len);
    expect_ckpt_error(bad, len, want);
    free(bad);
}

/* Replaces the one float of bytes whose bits are marker's with value and
 * fixes the checksum: a file the encoder (which refuses such values) could
 * not write. */
static void forge_float(uint8_t *bytes, size_t len, float marker, float value)
{
    uint32_t want, bits;
    memcpy(&want, &marker, 4);
    memcpy(&bits, &value, 4);
    size_t found = 0, at = 0;
    for (size_t k = 0; k + 4 <= len; k++) {
        uint32_t v = (uint32_t)bytes[k] | (uint32_t)bytes[k + 1] << 8 |
                     (uint32_t)bytes[k + 2] << 16 | (uint32_t)bytes[k + 3] << 24;
        if (v == want)
            found++, at = k;
    }
    CHECK(found == 1, "the marker %g is in the file %zu times", (double)marker, found);
    put32(bytes + at, bits);
    fix_crc(bytes, len);
}

/* m written as a version-1 file, as include/ckpt.h describes it: a stack of
 * dense layers told by its sizes. */
static uint8_t *version1_bytes(const tr_model *m, const tr_mlp_shape *s, size_t *len)
{
    const size_t n_params = tr_model_param_count(m);
    *len = 24 + 4 * (size_t)(s->n_layers + 1) + 8 + 4 * n_params + 4;
    uint8_t *b = malloc(*len), *p = b + 24;
    memcpy(b, "TRNRCKPT", 8);
    put32(b + 8, 1);
    put32(b + 12, 0x01020304);
    put32(b + 16, 4);
    put32(b + 20, (uint32_t)s->n_layers);
    for (int l = 0; l <= s->n_layers; l++, p += 4)
        put32(p, (uint32_t)s->sizes[l]);
    for (int b8 = 0; b8 < 8; b8++)
        *p++ = (uint8_t)((uint64_t)n_params >> (8 * b8));
    float *ptr[MODEL_MAX_LAYERS * LAYER_MAX_TENSORS];
    size_t count[MODEL_MAX_LAYERS * LAYER_MAX_TENSORS];
    const int nt = tr_model_tensors(m, m->params, ptr, count);
    for (int t = 0; t < nt; t++, p += 4 * count[t - 1])
        memcpy(p, ptr[t], 4 * count[t]);
    fix_crc(b, *len);
    return b;
}

static void test_ckpt(void)
{
    tr_error err;
    tr_mlp_shape shape;
    const int hidden[] = {20, 7};
    CHECK(tr_mlp_shape_make(&shape, 36, hidden, 2, 10, &err) == 0, "%s", err.msg);
    tr_model m;
    CHECK(tr_model_init_mlp(&m, (tr_tensor_shape){6, 6, 1}, &shape, &err) == 0, "%s", err.msg);
    tr_model_init_glorot(&m, 3);
    for (int o = 0; o < 7; o++)
        layer_tensor(&m.layer[1], m.params, DENSE_B)[o] = 0.01f * (float)o;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.ckpt", dir);
    CHECK(tr_ckpt_save(&m, path, &err) == 0, "%s", err.msg);

    tr_model back;
    CHECK(tr_ckpt_load(&back, path, &err) == 0, "%s", err.msg);
    CHECK(tr_model_same_layers(&back, &m) && back.input.h == 6 && back.input.w == 6 &&
          back.input.c == 1 && back.n_layers == 4 && back.layer[1].hp[0] == 7 &&
          back.layer[1].hp[1] == 1 && back.layer[2].hp[1] == 0 && tr_model_classes(&back) == 10,
          "the layers came back different");
    CHECK(back.len == m.len && memcmp(back.params, m.params, sizeof(float) * m.len) == 0,
          "parameters came back different");

    tr_dataset d;
    test_make_dataset(&d, 300, 6, 6, 9);
    uint8_t p1[300], p2[300];
    double l1, a1, l2, a2;
    CHECK(tr_evaluate(&m, &d, 2, &l1, &a1, p1, &err) == 0, "%s", err.msg);
    CHECK(tr_evaluate(&back, &d, 3, &l2, &a2, p2, &err) == 0, "%s", err.msg);
    CHECK(memcmp(p1, p2, sizeof p1) == 0 && l1 == l2 && a1 == a2,
          "the loaded model predicts differently");
    tr_dataset_free(&d);

    uint8_t *bytes;
    size_t len;
    CHECK(tr_ckpt_encode(&m, &bytes, &len, &err) == 0, "%s", err.msg);
    /* The tensor table: per layer a count, 12 bytes a tensor (3 dense
     * layers of 2, the head of none); then the classes, 8 bytes without
     * names. */
    const size_t table = 4 * 4 + 6 * 12, table_at = 40 + 32 * 4, classes_at = table_at + table;
    CHECK(len == 20 + 20 + 32 * 4 + table + 8 + 8 + 4 * tr_model_param_count(&m) + 4,
          "length %zu", len);
    CHECK(memcmp(bytes, "TRNRCKPT", 8) == 0 && bytes[8] == 4 && bytes[12] == 4,
          "header: magic, version 4, little-endian tag");

    uint8_t *bad = malloc(len);
    for (size_t k = 0; k < 5; k++) {
        memcpy(bad, bytes, len);
        size_t at = 100 + k * (len - 200) / 5;
        bad[at] ^= 0x10;
        expect_ckpt_error(bad, len, "checksum");
    }
    expect_ckpt_error(bytes, len - 1, "checksum");
    expect_ckpt_error(bytes, 20, "too short");
    expect_ckpt_error(bytes, 0, "too short");
    memcpy(bad, bytes, len);
    bad[0] = 'X';
    expect_ckpt_error(bad, len, "bad magic");
    expect_forged(bytes, len, 8, 5, "version 5");
    /* The architecture (ckpt.h): input at 20, classes at 32, N at 36, the
     * layers' records of 8 words from 40. */
    expect_forged(bytes, len, 36, 99, "99 layers");
    expect_forged(bytes, len, 36, 3, "layer 3: a dense layer can not be the last");
    expect_forged(bytes, len, 20, 0, "input shape 0 x 6 x 1");
    expect_forged(bytes, len, 20, 3, "layer 1 (dense), tensor 1: 720 floats in the file, the "
                  "layer has 360");
    expect_forged(bytes, len, 32, 11, "11 classes said");
    expect_forged(bytes, len, 40, 99, "layer 1: unknown layer kind 99");
    expect_forged(bytes, len, 44, 0, "layer 1: dense with 0 units");
    expect_forged(bytes, len, 44, 21, "tensor 1: 720 floats in the file, the layer has 756");
    /* The tensor table (ckpt.h): per layer u32 T, then u64 floats and u32
     * flags a tensor; then u64 P. */
    expect_forged(bytes, len, table_at, 3, "layer 1 (dense) has 2 tensors, the file says 3");
    expect_forged(bytes, len, table_at + 4, 719, "tensor 1: 719 floats in the file");
    expect_forged(bytes, len, table_at + 12, 0,
                  "layer 1 (dense), tensor 1: flags 0 in the file, the tensor is trainable");
    expect_forged(bytes, len, table_at + 24, 2, "tensor 2: flags 2 in the file");
    expect_forged(bytes, len, table_at + 3 * 28, 1, "layer 4 (softmax) has 0 tensors, the "
                  "file says 1");
    expect_forged(bytes, len, classes_at + 8, 608, "608 parameters stored, the layers need "
                  "967");
    expect_forged(bytes, len, classes_at, 2, "picture fitting 2 unknown");
    expect_forged(bytes, len, classes_at + 4, 9000, "9000 bytes of class names, out of range");
    expect_forged(bytes, len, 48, 2, "layer 1: dense activation 2");
    expect_forged(bytes, len, 52, 1, "layer 1: dense hyper-parameter word 2 is 1");
    expect_forged(bytes, len, 40 + 3 * 32, 1, "layer 4: dense with 0 units");
    memcpy(bad, bytes, len);
    put32(bad + 40 + 2 * 32, 2); /* layer 3, dense(10), made a softmax */
    put32(bad + 40 + 2 * 32 + 4, 0);
    fix_crc(bad, len);
    expect_ckpt_error(bad, len, "layer 3: a softmax layer can only be the last");
    expect_forged(bytes, len, 40 + 3 * 32 + 4, 1, "layer 4: softmax takes no hyper-parameters");

    /* Version 3, without the classes, and version 2, without the tensor
     * table too, still load. */
    for (uint32_t version = 2; version <= 3; version++) {
        const size_t cut = 8 + (version == 2 ? table : 0), cut_at = classes_at + 8 - cut;
        size_t old_len = len - cut;
        uint8_t *old_bytes = malloc(old_len);
        memcpy(old_bytes, bytes, cut_at);
        memcpy(old_bytes + cut_at, bytes + cut_at + cut, len - cut_at - cut);
        put32(old_bytes + 8, version);
        fix_crc(old_bytes, old_len);
        tr_model two;
        CHECK(tr_ckpt_decode(&two, old_bytes, old_len, "old.ckpt", &err) == 0, "version %u: %s",
              version, err.msg);
        if (two.params) {
            CHECK(tr_model_same_layers(&two, &m) && two.len == m.len && !two.class_names[0] &&
                      two.fit == MODEL_FIT_DIGIT &&
                      memcmp(two.params, m.params, sizeof(float) * m.len) == 0,
                  "the version-%u file came back different", version);
            tr_model_free(&two);
        }
        free(old_bytes);
    }
    /* Class names travel with the model; wrong ones are refused. */
    {
        tr_model named = m;
        named.params = NULL;
        tr_model_alloc(&named, &err);
        memcpy(named.params, m.params, sizeof(float) * m.len);
        snprintf(named.class_names, sizeof named.class_names,
                 "zero\none\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine \u00e9");
        named.fit = MODEL_FIT_RESIZE;
        uint8_t *nb;
        size_t nlen;
        CHECK(tr_ckpt_encode(&named, &nb, &nlen, &err) == 0, "%s", err.msg);
        tr_model back_named;
        CHECK(tr_ckpt_decode(&back_named, nb, nlen, "named.ckpt", &err) == 0, "names: %s", err.msg);
        if (back_named.params) {
            CHECK(!strcmp(back_named.class_names, named.class_names) &&
                      back_named.fit == MODEL_FIT_RESIZE, "the class names came back as '%s'",
                  back_named.class_names);
            tr_model_free(&back_named);
        }
        nb[classes_at + 8] = '\n'; /* an empty first name */
        fix_crc(nb, nlen);
        expect_ckpt_error(nb, nlen, "class name 1 is empty");
        nb[classes_at + 8] = 0x01;
        fix_crc(nb, nlen);
        expect_ckpt_error(nb, nlen, "class name 1 is not printable UTF-8");
        nb[classes_at + 8] = 'z';
        nb[classes_at + 8 + 4] = ' '; /* "zero one": nine names */
        fix_crc(nb, nlen);
        expect_ckpt_error(nb, nlen, "9 class names for 10 classes");
        free(nb);
        tr_model_free(&named);
    }

    /* Version 1 still loads: the same parameters, the same predictions. */
    size_t v1_len;
    uint8_t *v1 = version1_bytes(&m, &shape, &v1_len);
    const char *v1_path = test_write_file(dir, "v1.ckpt", v1, v1_len, 0);
    tr_model old;
    CHECK(tr_ckpt_load(&old, v1_path, &err) == 0, "version 1: %s", err.msg);
    if (old.params) {
        CHECK(old.len == m.len && memcmp(old.params, m.params, sizeof(float) * m.len) == 0 &&
                  tr_model_param_count(&old) == tr_model_param_count(&m) && old.n_layers == 4,
              "the version-1 file came back different");
        tr_model_free(&old);
    }
    v1[20] = 9;
    fix_crc(v1, v1_len);
    expect_ckpt_error(v1, v1_len, "9 layers (1 to 8 supported)");
    /* A layer that cannot be built is named with the file, as in every
     * version (the sizes: 36, 20, 7, then the classes at 36). */
    v1[20] = 3;
    put32(v1 + 36, 300);
    fix_crc(v1, v1_len);
    expect_ckpt_error(v1, v1_len, "softmax over 300 classes");
    free(v1);

    /* Parameters that are not finite are refused, the first one named; an
     * infinite weight would go unnoticed on a pixel that is always 0.  The
     * encoder refuses to write them; forged files are refused on reading. */
    float *w53 = &layer_tensor(&m.layer[0], m.params, DENSE_W)[5 * 20 + 3];
    float *b4 = &layer_tensor(&m.layer[2], m.params, DENSE_B)[4];
    const float keep_w = *w53, keep_b = *b4;
    uint8_t *odd;
    size_t odd_len;
    *b4 = NAN;
    CHECK(tr_ckpt_encode(&m, &odd, &odd_len, &err) == -1 &&
              strstr(err.msg, "layer 3 (dense_3), bias [4], is nan"),
          "a NaN parameter encoded: '%s'", err.msg);
    *w53 = 1234.5f;
    *b4 = 2345.5f;
    CHECK(tr_ckpt_encode(&m, &odd, &odd_len, &err) == 0, "%s", err.msg);
    forge_float(odd, odd_len, 1234.5f, INFINITY);
    forge_float(odd, odd_len, 2345.5f, NAN);
    expect_ckpt_error(odd, odd_len, "the parameter of layer 1 (dense_1), weight [5][3], is inf");
    forge_float(odd, odd_len, INFINITY, 1.0f);
    expect_ckpt_error(odd, odd_len, "layer 3 (dense_3), bias [4], is nan");
    free(odd);
    *w53 = keep_w;
    *b4 = keep_b;

    /* A failed save leaves the earlier file as it was. */
    char missing[4096];
    snprintf(missing, sizeof missing, "%s/no-such-dir/model.ckpt", dir);
    CHECK(tr_ckpt_save(&m, missing, &err) == -1 && strstr(err.msg, "no-such-dir"),
          "save into a missing directory: '%s'", err.msg);
    uint8_t *again;
    size_t again_len;
    CHECK(tr_file_read_all(path, 1 << 20, &again, &again_len, &err) == 0, "%s", err.msg);
    CHECK(again_len == len && memcmp(again, bytes, len) == 0, "model.ckpt changed");
    free(again);
    free(bad);
    free(bytes);
    tr_model_free(&back);
    tr_model_free(&m);
}

static void expect_history_error(const char *text, const char *want)
{
    tr_epoch_stats *rows;
    int n;
    tr_error err = {{0}};
    CHECK(tr_history_parse(&rows, &n, NULL, text, strlen(text), "h.csv", &err) == -1,
          "accepted: %s", text);
    CHECK(strstr(err.msg, want) != NULL, "message '%s' lacks '%s'", err.msg, want);
}

static void test_history(void)
{
    tr_epoch_stats rows[3] = {
        {1, 0.28, 0.918, 0.14, 0.96, 0.8, 1e-3},
        {2, 0.12, 0.964, 0.117, 0.965, 0.7, 1e-3},
        {3, 0.085, 0.974, 0.1055, 0.9665, 0.71, (double)1e-4f},
    };
    char path[4096];
    snprintf(path, sizeof path, "%s/history.csv", dir);
    tr_error err;
    for (int with_lr = 0; with_lr < 2; with_lr++) {
        CHECK(tr_history_save(rows, 3, with_lr, path, &err) == 0, "%s", err.msg);
        tr_epoch_stats *back;
        int n, had_lr = -1;
        CHECK(tr_history_load(&back, &n, &had_lr, path, &err) == 0, "%s", err.msg);
        CHECK(n == 3 && had_lr == with_lr, "%d rows, learning-rate column %d", n, had_lr);
        for (int i = 0; i < n && i < 3; i++)
            CHECK(back[i].epoch == i + 1 && back[i].loss == rows[i].loss &&
                      back[i].val_accuracy == rows[i].val_accuracy &&
                      (with_lr ? (float)back[i].learning_rate == (float)rows[i].learning_rate
                               : isnan(back[i].learning_rate)),
                  "row %d differs", i);
        free(back);
    }

    const char *h = HISTORY_HEADER "\n";
    char text[512];
    expect_history_error("", "header");
    expect_history_error("epoch,loss\n1,2\n", "header");
    expect_history_error(h, "no rows");
    snprintf(text, sizeof text, "%s1,0.2,0.9,0.1,0.9\n", h);
    expect_history_error(text, "line 2: 5 fields, expected 6");
    snprintf(text, sizeof text, "%s1,0.2,abc,0.1,0.9,1\n", h);
    expect_history_error(text, "line 2: field 3 ('abc') is not a number");
    snprintf(text, sizeof text, "%s1,0.2,0.9,0.1,0.9,1,7\n", h);
    expect_history_error(text, "line 2: 7 fields");
    snprintf(text, sizeof text, "%s1,0.2,0.9,,0.9,1\n", h);
    expect_history_error(text, "line 2: field 4");
    snprintf(text, sizeof text, "%s1,0.2,0.9,0.1,0.9,1\n3,0.2,0.9,0.1,0.9,1\n", h);
    expect_history_error(text, "line 3: epoch 3, expected 2");
    snprintf(text, sizeof text, "%s1,0.2,0.9,0.1,0.9,1,0.001\n2,0.2,0.9,0.1,0.9,1\n",
             HISTORY_HEADER_LR "\n");
    expect_history_error(text, "line 3: 6 fields, expected 7");
    snprintf(text, sizeof text, "%s1,0.2,0.9,nan,nan,1\r\n", h);
    tr_epoch_stats *r1;
    int n;
    CHECK(tr_history_parse(&r1, &n, NULL, text, strlen(text), "h.csv", &err) == 0 && n == 1,
          "a run without validation (nan) and CRLF: %s", err.msg);
    if (n == 1)
        free(r1);
}

static void test_state(void)
{
    tr_error err;
    tr_mlp_shape shape;
    const int hidden[] = {5};
    CHECK(tr_mlp_shape_make(&shape, 12, hidden, 1, 10, &err) == 0, "%s", err.msg);
    tr_model m;
    CHECK(tr_model_init_mlp(&m, tensor_flat(shape.sizes[0]), &shape, &err) == 0, "%s", err.msg);
    tr_model_init_glorot(&m, 4);
    tr_optimizer opt;
    tr_optimizer_hparams hp = tr_adam_defaults();
    CHECK(tr_optimizer_init(&opt, m.len, &hp, &err) == 0, "%s", err.msg);
    /* Values in the real tensors; the padding between them stays 0. */
    float *pm[MODEL_MAX_LAYERS * LAYER_MAX_TENSORS], *pv[MODEL_MAX_LAYERS * LAYER_MAX_TENSORS];
    size_t count[MODEL_MAX_LAYERS * LAYER_MAX_TENSORS];
    int nt = tr_model_tensors(&m, opt.m, pm, count);
    tr_model_tensors(&m, opt.v, pv, count);
    for (int t = 0; t < nt; t++)
        for (size_t k = 0; k < count[t]; k++) {
            pm[t][k] = 0.001f * (float)(k + 1);
            pv[t][k] = 1e-6f * (float)(k + 1);
        }
    tr_epoch_stats rows[2] = {{1, 0.5, 0.8, 0.4, 0.85, 1.5, 0.002},
                           {2, 0.3, 0.9, 0.35, 0.88, 1.25, (double)2e-4f}};
    /* Callbacks on, mid-way: their settings, their state and the kept
     * weights travel with the run. */
    float *kept = tr_model_buffer_new(m.len);
    for (size_t j = 0; j < m.len; j++)
        kept[j] = m.params[j] * 0.5f;
    const tr_callback_config cbc = {.monitor = MONITOR_VAL_ACCURACY, .early_stopping = 1,
                                 .patience = 4, .min_delta = 0.01, .restore_best = 1,
                                 .save_best = 1, .reduce_lr = 1, .factor = 0.1,
                                 .lr_patience = 2, .lr_min_delta = 1e-4, .cooldown = 1,
                                 .min_lr = 1e-6};
    const tr_callback_state cbs = {.best = 0.88, .best_epoch = 2, .wait = 0, .saved_best = 0.88,
                                .saved_epoch = 2, .lr_best = 0.85, .lr_wait = 1,
                                .cooldown_left = 1, .lr = 2e-4f};
    tr_train_state st = {.seed = 77, .batch_size = 16, .shards = 3,
                      .epochs = 9, .lr = 0.002, .validation_split = 0.25, .n_train = 300,
                      .n_val = 100, .rows = 3, .cols = 4, .fingerprint = 0xdeadbeef,
                      .has_fingerprint = 1, .epoch = 3,
                      .progress = {.next_batch = 5, .loss_sum = 12.125, .correct = 61,
                                   .seen = 80},
                      .opt_step = 43, .n_history = 2, .history = rows,
                      .callbacks = cbc, .cb = cbs, .best_weights = kept,
                      .opt = tr_optimizer_defaults(OPTIMIZER_SGD), .label_smoothing = 0.125f};
    st.opt.lr = (float)st.lr;
    st.opt.momentum = 0.75f;
    st.opt.nesterov = 1;
    st.opt.weight_decay = 0.0625f;
    st.opt.epochs = st.epochs;
    snprintf(st.data_dir, sizeof st.data_dir, "/some/where");
    uint8_t *data;
    size_t len;
    CHECK(tr_state_encode(&st, &m, &opt, &data, &len, &err) == 0, "%s", err.msg);
    tr_train_state back;
    tr_model bm;
    float *m1, *m2;
    CHECK(tr_state_decode(&back, &bm, &m1, &m2, data, len, "s", &err) == 0, "%s", err.msg);
    if (bm.params) {
        CHECK(back.seed == 77 && back.batch_size == 16 && back.shards == 3 && back.epochs == 9 &&
                  back.lr == 0.002 && back.validation_split == 0.25 && back.n_train == 300 &&
                  back.n_val == 100 && back.epoch == 3 && back.opt_step == 43 &&
                  strcmp(back.data_dir, "/some/where") == 0,
              "the configuration came back different");
        CHECK(back.rows == 3 && back.cols == 4 && back.fingerprint == 0xdeadbeef &&
                  back.has_fingerprint, "the data's shape and fingerprint came back different");
        CHECK(back.progress.next_batch == 5 && back.progress.loss_sum == 12.125 &&
                  back.progress.correct == 61 && back.progress.seen == 80,
              "the progress came back different");
        CHECK(back.n_history == 2 && back.history[1].seconds == 1.25 &&
                  back.history[0].val_accuracy == 0.85 &&
                  back.history[1].learning_rate == (double)2e-4f,
              "the history came back different");
        CHECK(back.opt.kind == OPTIMIZER_SGD && back.opt.momentum == 0.75f &&
                  back.opt.nesterov && back.opt.weight_decay == 0.0625f &&
                  back.opt.lr == 0.002f && back.opt.schedule == SCHEDULE_CONSTANT &&
                  back.label_smoothing == 0.125f,
              "the optimizer came back different");
        CHECK(memcmp(&back.callbacks, &cbc, sizeof cbc) == 0 &&
                  memcmp(&back.cb, &cbs, sizeof cbs) == 0,
              "the callbacks came back different");
        CHECK(back.best_weights && memcmp(back.best_weights, kept, sizeof(float) * m.len) == 0,
              "the kept weights came back different");
        tr_model_buffer_free(back.best_weights);
        CHECK(memcmp(bm.params, m.params, sizeof(float) * m.len) == 0 &&
                  memcmp(m1, opt.m, sizeof(float) * m.len) == 0 &&
                  memcmp(m2, opt.v, sizeof(float) * m.len) == 0,
              "parameters or moments came back different");
        free(back.history);
        tr_model_buffer_free(m1);
        tr_model_buffer_free(m2);
        tr_model_free(&bm);
    }
    for (size_t at = 0; at < len; at += len / 7 + 1) {
        data[at] ^= 0x04;
        CHECK(tr_state_decode(&back, &bm, &m1, &m2, data, len, "s", &err) == -1 && !bm.params,
              "a flipped bit at %zu was accepted", at);
        data[at] ^= 0x04;
    }
    CHECK(tr_state_decode(&back, &bm, &m1, &m2, data, len - 9, "s", &err) == -1,
          "a cut state was accepted");
    /* Four bytes too many, with a good checksum: named as such, not as a
     * parameter count that matches. */
    {
        uint8_t *longer = malloc(len + 4);
        memcpy(longer, data, len - 4);
        memset(longer + len - 4, 0, 4);
        fix_crc(longer, len + 4);
        CHECK(tr_state_decode(&back, &bm, &m1, &m2, longer, len + 4, "s", &err) == -1 &&
                  strstr(err.msg, "the file is longer than its contents"),
              "a state with 4 bytes too many: '%s'", err.msg);
        free(longer);
    }
    /* Version 3, without the tensor table and the classes (after the 3
     * layers' records), the data's settings (16 bytes after the run's 71)
     * and the optimizer block (before the parameter count), still loads to
     * the same parameters and moments, as adam's. */
    {
        const size_t at = 20 + 20 + 3 * 32, table = 3 * 4 + 4 * 12 + 8, block = 56;
        const size_t settings_at = at + table + 71, settings = 16;
        const size_t opt_at = len - 4 - 4 * 4 * tr_model_param_count(&m) - 8 - block;
        const size_t v3_len = len - table - settings - block;
        uint8_t *v3 = malloc(v3_len), *w = v3;
        memcpy(w, data, at), w += at;
        memcpy(w, data + at + table, settings_at - at - table), w += settings_at - at - table;
        memcpy(w, data + settings_at + settings, opt_at - settings_at - settings);
        w += opt_at - settings_at - settings;
        memcpy(w, data + opt_at + block, len - opt_at - block);
        put32(v3 + 8, 3);
        fix_crc(v3, v3_len);
        CHECK(tr_state_decode(&back, &bm, &m1, &m2, v3, v3_len, "v3", &err) == 0, "version 3: %s",
              err.msg);
        if (bm.params) {
            CHECK(memcmp(bm.params, m.params, sizeof(float) * m.len) == 0 &&
                      memcmp(m2, opt.v, sizeof(float) * m.len) == 0,
                  "the version-3 state came back different");
            CHECK(back.opt.kind == OPTIMIZER_ADAM && back.opt.beta2 == 0.999f &&
                      back.opt.lr == 0.002f && back.label_smoothing == 0.0f,
                  "a version-3 state's optimizer is not adam's");
            free(back.history);
            tr_model_buffer_free(back.best_weights);
            tr_model_buffer_free(m1);
            tr_model_buffer_free(m2);
            tr_model_free(&bm);
        }
        free(v3);
    }
    /* The data's settings come back (version 6), and wrong ones are named. */
    {
        tr_train_state with = st;
        snprintf(with.test_dir, sizeof with.test_dir, "/the/test set");
        with.image_rows = 12, with.image_cols = 10, with.image_channels = 3;
        uint8_t *wd;
        size_t wlen;
        CHECK(tr_state_encode(&with, &m, &opt, &wd, &wlen, &err) == 0, "%s", err.msg);
        CHECK(tr_state_decode(&back, &bm, &m1, &m2, wd, wlen, "s", &err) == 0, "%s", err.msg);
        if (bm.params) {
            CHECK(!strcmp(back.test_dir, "/the/test set") && back.image_rows == 12 &&
                      back.image_cols == 10 && back.image_channels == 3,
                  "the data's settings came back as '%s' %dx%dx%d", back.test_dir,
                  back.image_rows, back.image_cols, back.image_channels);
            free(back.history);
            tr_model_buffer_free(back.best_weights);
            tr_model_buffer_free(m1);
            tr_model_buffer_free(m2);
            tr_model_free(&bm);
        }
        const size_t channels_at = 20 + 20 + 3 * 32 + 3 * 4 + 4 * 12 + 8 + 71 + 4 + 13 + 8;
        put32(wd + channels_at, 2);
        fix_crc(wd, wlen);
        CHECK(tr_state_decode(&back, &bm, &m1, &m2, wd, wlen, "s", &err) == -1 &&
                  strstr(err.msg, "image size 12x10 or 2 channels out of range"),
              "2 channels: '%s'", err.msg);
        free(wd);
    }
    /* A second moment that is not finite, or below 0, would poison every
     * later step (the update takes its square root): the encoder refuses
     * it, and so does the reader of a forged file. */
    free(data);
    pv[2][1] = NAN;
    CHECK(tr_state_encode(&st, &m, &opt, &data, &len, &err) == -1 &&
              strstr(err.msg, "the optimizer's second slot of layer 2 (dense_2), weight [0][1], is "
                              "nan"),
          "a NaN moment encoded: '%s'", err.msg);
    pv[2][1] = 3456.5f;
    CHECK(tr_state_encode(&st, &m, &opt, &data, &len, &err) == 0, "%s", err.msg);
    const float forged[2] = {NAN, -0.5f};
    const char *said[2] = {"is nan", "is negative (-0.5)"};
    for (int f = 0; f < 2; f++) {
        forge_float(data, len, f ? NAN : 3456.5f, forged[f]);
        CHECK(tr_state_decode(&back, &bm, &m1, &m2, data, len, "s", &err) == -1 && !bm.params &&
                  !m1 && strstr(err.msg, "s: the optimizer's second slot of layer 2 (dense_2), "
                                         "weight [0][1], ") && strstr(err.msg, said[f]),
              "a forged moment %g: '%s'", (double)forged[f], err.msg);
    }
    free(data);
    pv[2][1] = 0.0f;
    CHECK(tr_state_encode(&st, &m, &opt, &data, &len, &err) == 0, "%s", err.msg);
    /* A kept epoch past the history, with a good checksum.  The callbacks
     * block follows the history: after the head (20), the architecture (20
     * + 3 * 32, the tensor table: 3 * 4 + 4 * 12, the classes: 8), the run
     * (8 + 3 * 4 + 2 * 8 + 2 * 4 + 4 + 11 data directory bytes + 3 * 4, the
     * data's settings 16), the progress (4 + 8 * 5 + 4) and the two
     * history rows (52 each); its best epoch is at offset 60 in it. */
    const size_t state_table = 3 * 4 + 4 * 12 + 8;
    const size_t cb_at = 20 + 20 + 3 * 32 + state_table + 8 + 12 + 16 + 8 + 4 + 11 + 12 + 16 +
                         4 + 40 + 4 + 2 * 52;
    uint8_t keep4[4];
    memcpy(keep4, data + cb_at + 60, 4);
    put32(data + cb_at + 60, 3);
    fix_crc(data, len);
    CHECK(tr_state_decode(&back, &bm, &m1, &m2, data, len, "s", &err) == -1 &&
              strstr(err.msg, "callback settings or state out of range"),
          "best epoch 3 of 2: '%s'", err.msg);
    memcpy(data + cb_at + 60, keep4, 4);
    put32(data + cb_at, 16);
    fix_crc(data, len);
    CHECK(tr_state_decode(&back, &bm, &m1, &m2, data, len, "s", &err) == -1 &&
              strstr(err.msg, "callback settings or state out of range"),
          "callback flags 16: '%s'", err.msg);
    put32(data + cb_at, 15);
    fix_crc(data, len);
    /* A batch size past INT_MAX, with a checksum that fits: the message gives
     * the number stored, not a negative one.  It lies after the head (20
     * bytes), the architecture (20 + 32 for each of 3 layers, and the
     * tensor table) and the seed (8). */
    const size_t batch_at = 20 + 20 + 3 * 32 + state_table + 8;
    uint8_t saved[4];
    memcpy(saved, data + batch_at, 4);
    put32(data + batch_at, 4000000000u);
    fix_crc(data, len);
    CHECK(tr_state_decode(&back, &bm, &m1, &m2, data, len, "s", &err) == -1 &&
              strstr(err.msg, "batch size 4000000000 out of range"),
          "batch size 4e9: '%s'", err.msg);
    memcpy(data + batch_at, saved, 4);
    /* The progress of the epoch in progress must hold together (u32 epoch
     * 79 bytes after the batch size, then u64 batches done, f64 summed
     * loss, u64 right, u64 seen): 5 batches of 16, 80 seen, 61 right. */
    const size_t progress_at = batch_at + 79;
    const struct {
        size_t at;
        uint64_t bits;
        const char *want;
    } bad_progress[] = {
        {4 + 8 + 8, 81, "81 samples classified right of 80 seen"},
        {4 + 8 + 8 + 8, 79, "79 samples seen in 5 batches of 16 (80 expected)"},
        {4, 99, "99 batches done of an epoch of"},
        {4 + 8, 0x7ff8000000000000ull, "a summed loss of nan over 80 samples"},
        {4 + 8, 0x7ff0000000000000ull, "a summed loss of inf over 80 samples"},
        {4 + 8, 0xc1cdcd6500000000ull, "a summed loss of -1e+09 over 80 samples"},
    };
    for (size_t k = 0; k < sizeof bad_progress / sizeof *bad_progress; k++) {
        uint8_t keep8[8];
        uint8_t *at = data + progress_at + bad_progress[k].at;
        memcpy(keep8, at, 8);
        for (int b = 0; b < 8; b++)
            at[b] = (uint8_t)(bad_progress[k].bits >> (8 * b));
        fix_crc(data, len);
        CHECK(tr_state_decode(&back, &bm, &m1, &m2, data, len, "s", &err) == -1 && !bm.params &&
                  strstr(err.msg, bad_progress[k].want),
              "forged progress, want '%s': '%s'", bad_progress[k].want, err.msg);
        memcpy(at, keep8, 8);
    }
    /* A stop that contradicts the history: stopped after epoch 1 of 2 done,
     * or after epoch 2 with batches of epoch 3 done (the stopped epoch is 68
     * bytes into the callbacks block). */
    for (uint32_t stopped = 1; stopped <= 2; stopped++) {
        put32(data + cb_at + 68, stopped);
        fix_crc(data, len);
        CHECK(tr_state_decode(&back, &bm, &m1, &m2, data, len, "s", &err) == -1 &&
                  strstr(err.msg, "but 2 epochs are done and 5 batches of the next"),
              "stopped after epoch %u: '%s'", stopped, err.msg);
    }
    put32(data + cb_at + 68, 0);
    /* The optimizer block (56 bytes before the parameter count): an unknown
     * kind, a momentum adam has not, and a schedule beside ReduceLROnPlateau
     * (which this run has) are refused by name. */
    {
        const size_t opt_at = len - 4 - 4 * 4 * tr_model_param_count(&m) - 8 - 56;
        const struct {
            size_t at;
            uint32_t value;
            const char *want;
        } bad_opt[] = {
            {0, 9, "unknown optimizer 9"},
            {0, OPTIMIZER_ADAM, "adam has no momentum setting"},
            {32, SCHEDULE_COSINE, "a learning-rate schedule with ReduceLROnPlateau"},
        };
        for (size_t k = 0; k < sizeof bad_opt / sizeof *bad_opt; k++) {
            uint8_t keep4[4];
            memcpy(keep4, data + opt_at + bad_opt[k].at, 4);
            put32(data + opt_at + bad_opt[k].at, bad_opt[k].value);
            fix_crc(data, len);
            CHECK(tr_state_decode(&back, &bm, &m1, &m2, data, len, "s", &err) == -1 &&
                      !bm.params && strstr(err.msg, bad_opt[k].want),
                  "forged optimizer, want '%s': '%s'", bad_opt[k].want, err.msg);
            memcpy(data + opt_at + bad_opt[k].at, keep4, 4);
        }
        fix_crc(data, len);
    }
    fix_crc(data, len);
    CHECK(tr_state_decode(&back, &bm, &m1, &m2, data, len, "s", &err) == 0, "restored: %s",
          err.msg);
    free(back.history);
    tr_model_buffer_free(back.best_weights);
    tr_model_buffer_free(m1);
    tr_model_buffer_free(m2);
    tr_model_free(&bm);
    free(data);
    tr_model_buffer_free(kept);
    tr_optimizer_free(&opt);
    tr_model_free(&m);
}

int main(void)
{
    dir = test_tmpdir();
    test_ckpt();
    test_state();
    test_history();
    return test_finish("test_ckpt");
}
