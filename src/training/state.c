#include "state.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "files/bytes.h"
#include "files/model_io.h"
#include "fileio.h"
#include "train.h"

static const char MAGIC[8] = {'T', 'R', 'N', 'R', 'S', 'T', 'A', 'T'};
#define STATE_MAX_BYTES ((size_t)3 << 30)
#define STATE_MAX_HISTORY 1000000

/* An upper bound of the encoded size; the real one is what gets written. */
/* Bytes of the callbacks block (state.h). */
#define CALLBACKS_LEN (4 * 4 + 8 * 4 + 4 * 2 + 8 * 3 + 4 * 5 + 4)
/* Bytes of the optimizer block. */
#define OPTIMIZER_LEN (4 * 10 + 8 * 2)

enum { CB_EARLY = 1, CB_RESTORE = 2, CB_SAVE_BEST = 4, CB_REDUCE_LR = 8 };

/* Whether the state holds the weights EarlyStopping keeps. */
static int has_best_weights(const tr_train_state *st)
{
    return st->callbacks.early_stopping && st->callbacks.restore_best && st->cb.best_epoch > 0;
}

static void put_callbacks(byte_writer *w, const tr_train_state *st)
{
    const tr_callback_config *c = &st->callbacks;
    const tr_callback_state *s = &st->cb;
    put_u32(w, (uint32_t)((c->early_stopping ? CB_EARLY : 0) | (c->restore_best ? CB_RESTORE : 0) |
                          (c->save_best ? CB_SAVE_BEST : 0) | (c->reduce_lr ? CB_REDUCE_LR : 0)));
    put_u32(w, (uint32_t)c->monitor);
    put_u32(w, (uint32_t)c->patience);
    put_f64(w, c->min_delta);
    put_f64(w, c->factor);
    put_u32(w, (uint32_t)c->lr_patience);
    put_f64(w, c->lr_min_delta);
    put_u32(w, (uint32_t)c->cooldown);
    put_f64(w, c->min_lr);
    put_f64(w, s->best);
    put_u32(w, (uint32_t)s->best_epoch);
    put_u32(w, (uint32_t)s->wait);
    put_u32(w, (uint32_t)s->stopped_epoch);
    put_f64(w, s->saved_best);
    put_u32(w, (uint32_t)s->saved_epoch);
    put_f64(w, s->lr_best);
    put_u32(w, (uint32_t)s->lr_wait);
    put_u32(w, (uint32_t)s->cooldown_left);
    put_f32(w, s->lr);
}

static void put_optimizer(byte_writer *w, const tr_train_state *st)
{
    const tr_optimizer_hparams *o = &st->opt;
    put_u32(w, (uint32_t)o->kind);
    put_f32(w, o->beta1);
    put_f32(w, o->beta2);
    put_f32(w, o->eps);
    put_f32(w, o->momentum);
    put_u32(w, (uint32_t)o->nesterov);
    put_f32(w, o->rho);
    put_f32(w, o->weight_decay);
    put_u32(w, (uint32_t)o->schedule);
    put_f64(w, o->warmup_epochs);
    put_f64(w, o->decay_rate);
    put_f32(w, st->label_smoothing);
}

/* Reads the optimizer block (state.h), checked as the command line checks
 * it; a callback that sets the rate does not go with a schedule. */
static int get_optimizer(byte_reader *r, tr_train_state *st, const char *name, tr_error *err)
{
    tr_optimizer_hparams *o = &st->opt;
    const uint32_t kind = get_u32(r);
    o->beta1 = get_f32(r);
    o->beta2 = get_f32(r);
    o->eps = get_f32(r);
    o->momentum = get_f32(r);
    const uint32_t nesterov = get_u32(r);
    o->rho = get_f32(r);
    o->weight_decay = get_f32(r);
    const uint32_t schedule = get_u32(r);
    o->warmup_epochs = get_f64(r);
    o->decay_rate = get_f64(r);
    st->label_smoothing = get_f32(r);
    if (r->bad)
        return tr_error_set(err, "%s: truncated optimizer settings", name);
    if (kind > OPTIMIZER_RMSPROP || schedule > SCHEDULE_ONECYCLE || nesterov > 1)
        return tr_error_set(err, "%s: unknown optimizer %u or schedule %u", name, kind, schedule);
    o->kind = (tr_optimizer_kind)kind;
    o->nesterov = (int)nesterov;
    o->schedule = (tr_schedule_kind)schedule;
    o->lr = (float)st->lr;
    o->epochs = st->epochs;
    tr_error why;
    if (tr_optimizer_check(o, &why))
        return tr_error_set(err, "%s: optimizer settings out of range: %s", name, why.msg);
    if (!(st->label_smoothing >= 0.0f && st->label_smoothing <= 1.0f))
        return tr_error_set(err, "%s: label smoothing %g out of range", name,
                            (double)st->label_smoothing);
    if (st->callbacks.reduce_lr && tr_optimizer_scheduled(o))
        return tr_error_set(err, "%s: a learning-rate schedule with ReduceLROnPlateau", name);
    return 0;
}

/* Reads the callbacks block, checking what the rules rely on. */
static int get_callbacks(byte_reader *r, tr_train_state *st, const char *name, tr_error *err)
{
    tr_callback_config *c = &st->callbacks;
    tr_callback_state *s = &st->cb;
    const uint32_t flags = get_u32(r), mon = get_u32(r), patience = get_u32(r);
    c->min_delta = get_f64(r);
    c->factor = get_f64(r);
    const uint32_t lr_patience = get_u32(r);
    c->lr_min_delta = get_f64(r);
    const uint32_t cooldown = get_u32(r);
    c->min_lr = get_f64(r);
    s->best = get_f64(r);
    const uint32_t best_epoch = get_u32(r), wait = get_u32(r), stopped = get_u32(r);
    s->saved_best = get_f64(r);
    const uint32_t saved_epoch = get_u32(r);
    s->lr_best = get_f64(r);
    const uint32_t lr_wait = get_u32(r), cooldown_left = get_u32(r);
    s->lr = get_f32(r);
    if (r->bad)
        return tr_error_set(err, "%s: truncated callbacks", name);
    const uint32_t limit = 1000000, done = (uint32_t)st->n_history;
    if (flags > 15 || mon > MONITOR_ACCURACY || patience > limit || lr_patience > limit ||
        cooldown > limit || wait > limit || lr_wait > limit || cooldown_left > limit ||
        best_epoch > done || stopped > done || saved_epoch > done || !isfinite(c->min_delta) ||
        !isfinite(c->lr_min_delta) || !(c->min_lr >= 0.0 && c->min_lr < 1e9) ||
        ((flags & CB_REDUCE_LR) && !(c->factor > 0.0 && c->factor < 1.0)) ||
        !(s->lr > 0.0f && isfinite(s->lr)))
        return tr_error_set(err, "%s: callback settings or state out of range", name);
    /* A run that stopped early stopped after its last epoch, and is over. */
    if (stopped && (stopped != done || st->progress.next_batch != 0))
        return tr_error_set(err, "%s: stopped after epoch %u, but %u epochs are done and %ld "
                            "batches of the next", name, stopped, done, st->progress.next_batch);
    c->early_stopping = (flags & CB_EARLY) != 0;
    c->restore_best = (flags & CB_RESTORE) != 0;
    c->save_best = (flags & CB_SAVE_BEST) != 0;
    c->reduce_lr = (flags & CB_REDUCE_LR) != 0;
    c->monitor = (tr_monitor)mon;
    c->patience = (int)patience;
    c->lr_patience = (int)lr_patience;
    c->cooldown = (int)cooldown;
    s->best_epoch = (int)best_epoch;
    s->wait = (int)wait;
    s->stopped_epoch = (int)stopped;
    s->saved_epoch = (int)saved_epoch;
    s->lr_wait = (int)lr_wait;
    s->cooldown_left = (int)cooldown_left;
    return 0;
}

static size_t encoded_len(const tr_train_state *st, const tr_model *m, size_t n_params)
{
    return 8 + 4 * 3 + architecture_len(m) + 8 + 4 * 3 + 8 * 2 + 4 * 2 +
           4 + strlen(st->data_dir) + 4 * 3 + 4 + strlen(st->test_dir) + 4 * 3 +
           4 + 8 + 8 + 8 * 3 + 4 +
           (size_t)st->n_history * (4 + 6 * 8) + CALLBACKS_LEN + OPTIMIZER_LEN + 8 +
           4 * 4 * n_params + 4;
}

int tr_state_encode(const tr_train_state *st, const tr_model *m, const tr_optimizer *opt,
                    uint8_t **data,
                    size_t *len, tr_error *err)
{
    if (tr_model_check_finite(m, m->params, "training.state", "the parameter", err) ||
        tr_model_check_finite(m, opt->m, "training.state", "the optimizer's first slot", err) ||
        tr_model_check_nonnegative(m, opt->v, "training.state", "the optimizer's second slot",
                                   err))
        return -1;
    size_t n_params = tr_model_param_count(m);
    size_t total = encoded_len(st, m, n_params);
    uint8_t *buf = malloc(total);
    if (!buf)
        return tr_error_set(err, "out of memory for a training state of %zu bytes", total);
    byte_writer w = {buf};
    put_format_head(&w, MAGIC, STATE_VERSION);
    put_architecture(&w, m);
    put_u64(&w, st->seed);
    put_u32(&w, (uint32_t)st->batch_size);
    put_u32(&w, (uint32_t)st->shards);
    put_u32(&w, (uint32_t)st->epochs);
    put_f64(&w, st->lr);
    put_f64(&w, st->validation_split);
    put_u32(&w, st->n_train);
    put_u32(&w, st->n_val);
    uint32_t dlen = (uint32_t)strlen(st->data_dir);
    put_u32(&w, dlen);
    put_bytes(&w, st->data_dir, dlen);
    put_u32(&w, st->rows);
    put_u32(&w, st->cols);
    put_u32(&w, st->fingerprint);
    const uint32_t tlen = (uint32_t)strlen(st->test_dir);
    put_u32(&w, tlen);
    put_bytes(&w, st->test_dir, tlen);
    put_u32(&w, (uint32_t)st->image_rows);
    put_u32(&w, (uint32_t)st->image_cols);
    put_u32(&w, (uint32_t)st->image_channels);
    put_u32(&w, (uint32_t)st->epoch);
    put_u64(&w, (uint64_t)st->progress.next_batch);
    put_f64(&w, st->progress.loss_sum);
    put_u64(&w, (uint64_t)st->progress.correct);
    put_u64(&w, (uint64_t)st->progress.seen);
    put_u64(&w, (uint64_t)st->opt_step);
    put_u32(&w, (uint32_t)st->n_history);
    for (int i = 0; i < st->n_history; i++) {
        const tr_epoch_stats *h = &st->history[i];
        put_u32(&w, (uint32_t)h->epoch);
        put_f64(&w, h->loss);
        put_f64(&w, h->accuracy);
        put_f64(&w, h->val_loss);
        put_f64(&w, h->val_accuracy);
        put_f64(&w, h->seconds);
        put_f64(&w, h->learning_rate);
    }
    put_callbacks(&w, st);
    put_optimizer(&w, st);
    put_u64(&w, n_params);
    put_tensors(&w, m, m->params);
    put_tensors(&w, m, opt->m);
    put_tensors(&w, m, opt->v);
    if (has_best_weights(st))
        put_tensors(&w, m, st->best_weights);
    put_u32(&w, (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), buf, (size_t)(w.p - buf)));
    *data = buf;
    *len = (size_t)(w.p - buf);
    return 0;
}

/* The 32-bit fields of the fixed part as stored, checked as unsigned numbers
 * before they become ints: a damaged file must not print "batch size
 * -294967296". */
typedef struct {
    uint32_t batch_size, shards, epochs, epoch;
} raw_config;

static int check_config(const raw_config *c, const tr_train_state *st, const char *name,
                        tr_error *err)
{
    if (c->batch_size < 1 || c->batch_size > TRAIN_MAX_BATCH)
        return tr_error_set(err, "%s: batch size %u out of range (1 to %d)", name, c->batch_size,
                            TRAIN_MAX_BATCH);
    if (c->shards < 1 || c->shards > TRAIN_MAX_SHARDS)
        return tr_error_set(err, "%s: shard count %u out of range (1 to %d)", name, c->shards,
                            TRAIN_MAX_SHARDS);
    if (c->epochs > 1000000 || c->epoch < 1 || c->epoch > c->epochs + 1)
        return tr_error_set(err, "%s: epoch %u of %u is out of range", name, c->epoch, c->epochs);
    /* Adam's rate is a float: it must be one, and not 0. */
    if (!(st->lr > 0.0 && st->lr <= 1e6 && (float)st->lr > 0.0f) ||
        !(st->validation_split >= 0.0 && st->validation_split < 1.0))
        return tr_error_set(err, "%s: learning rate or validation split out of range", name);
    if (st->progress.next_batch < 0 || st->progress.correct < 0 || st->progress.seen < 0 ||
        st->opt_step < 0)
        return tr_error_set(err, "%s: negative counts", name);
    if ((uint64_t)st->n_history != (uint64_t)c->epoch - 1)
        return tr_error_set(err, "%s: %d history rows for epoch %u", name, st->n_history,
                            c->epoch);
    /* The epoch in progress: its batches done, and the samples, the right
     * ones and the summed loss they give, must agree. */
    const tr_epoch_progress *p = &st->progress;
    const uint64_t bs = c->batch_size, batches = ((uint64_t)st->n_train + bs - 1) / bs;
    const uint64_t done = (uint64_t)p->next_batch;
    const uint64_t seen = done * bs < st->n_train ? done * bs : st->n_train;
    if (done > batches)
        return tr_error_set(err, "%s: %llu batches done of an epoch of %llu", name,
                            (unsigned long long)done, (unsigned long long)batches);
    if ((uint64_t)p->seen != seen)
        return tr_error_set(err, "%s: %ld samples seen in %llu batches of %u (%llu expected)",
                            name, p->seen, (unsigned long long)done, c->batch_size,
                            (unsigned long long)seen);
    if (p->correct > p->seen)
        return tr_error_set(err, "%s: %ld samples classified right of %ld seen", name,
                            p->correct, p->seen);
    if (!(isfinite(p->loss_sum) && p->loss_sum >= 0.0) || (p->seen == 0 && p->loss_sum != 0.0))
        return tr_error_set(err, "%s: a summed loss of %g over %ld samples", name, p->loss_sum,
                            p->seen);
    return 0;
}

/* A loss is finite and not negative, an accuracy a fraction; the validation
 * figures are NaN without a validation set. */
static int figures_plausible(const tr_epoch_stats *h)
{
    const int val = !isnan(h->val_loss) || !isnan(h->val_accuracy);
    return isfinite(h->loss) && h->loss >= 0.0 && h->accuracy >= 0.0 && h->accuracy <= 1.0 &&
           (!val || (isfinite(h->val_loss) && h->val_loss >= 0.0 && h->val_accuracy >= 0.0 &&
                     h->val_accuracy <= 1.0)) &&
           isfinite(h->seconds) && h->seconds >= 0.0 && isfinite(h->learning_rate) &&
           h->learning_rate > 0.0;
}

/* A u32 length and that many bytes of a path, into buf of 4096 bytes. */
static int get_path(byte_reader *r, char *buf, const char *what, const char *name,
                    tr_error *err)
{
    const uint32_t len = get_u32(r);
    if (len >= 4096 || (size_t)(r->end - r->p) < len)
        return tr_error_set(err, "%s: %s name of %u bytes, out of range", name, what, len);
    get_bytes(r, buf, len);
    buf[len] = '\0';
    if (memchr(buf, '\0', len))
        return tr_error_set(err, "%s: the %s name holds a NUL byte", name, what);
    return 0;
}

/* The configuration and progress fields, from the seed to the history. */
static int get_run(byte_reader *r, tr_train_state *st, uint32_t version, const char *name,
                   tr_error *err)
{
    raw_config raw;
    st->seed = get_u64(r);
    raw.batch_size = get_u32(r);
    raw.shards = get_u32(r);
    raw.epochs = get_u32(r);
    st->lr = get_f64(r);
    st->validation_split = get_f64(r);
    st->n_train = get_u32(r);
    st->n_val = get_u32(r);
    if (get_path(r, st->data_dir, "data directory", name, err))
        return -1;
    if (version >= 2) {
        st->rows = get_u32(r);
        st->cols = get_u32(r);
        st->fingerprint = get_u32(r);
        st->has_fingerprint = 1;
    }
    if (version >= 6) {
        if (get_path(r, st->test_dir, "test data directory", name, err))
            return -1;
        const uint32_t rows = get_u32(r), cols = get_u32(r), channels = get_u32(r);
        if (rows > LAYER_MAX_WIDTH || cols > LAYER_MAX_WIDTH || (rows == 0) != (cols == 0) ||
            (channels != 0 && channels != 1 && channels != 3))
            return tr_error_set(err, "%s: image size %ux%u or %u channels out of range", name,
                                rows, cols, channels);
        st->image_rows = (int)rows;
        st->image_cols = (int)cols;
        st->image_channels = (int)channels;
    }
    raw.epoch = get_u32(r);
    st->progress.next_batch = (long)get_u64(r);
    st->progress.loss_sum = get_f64(r);
    st->progress.correct = (long)get_u64(r);
    st->progress.seen = (long)get_u64(r);
    st->opt_step = (long)get_u64(r);
    uint32_t rows = get_u32(r);
    const size_t row_len = version >= 3 ? 52 : 44;
    if (r->bad || rows > STATE_MAX_HISTORY || (size_t)(r->end - r->p) / row_len < rows)
        return tr_error_set(err, "%s: truncated or implausible history", name);
    st->n_history = (int)rows;
    if (check_config(&raw, st, name, err))
        return -1;
    st->batch_size = (int)raw.batch_size;
    st->shards = (int)raw.shards;
    st->epochs = (int)raw.epochs;
    st->epoch = (int)raw.epoch;
    st->history = calloc(rows ? rows : 1, sizeof *st->history);
    if (!st->history)
        return tr_error_set(err, "out of memory");
    for (uint32_t i = 0; i < rows; i++) {
        tr_epoch_stats *h = &st->history[i];
        const uint32_t said = get_u32(r);
        h->epoch = (int)said;
        h->loss = get_f64(r);
        h->accuracy = get_f64(r);
        h->val_loss = get_f64(r);
        h->val_accuracy = get_f64(r);
        h->seconds = get_f64(r);
        h->learning_rate = version >= 3 ? get_f64(r) : (double)(float)st->lr;
        if (said != i + 1)
            return tr_error_set(err, "%s: history row %u is for epoch %u", name, i + 1, said);
        if (!figures_plausible(h))
            return tr_error_set(err, "%s: history row %u holds figures out of range (loss %g, "
                                "accuracy %g, val_loss %g, val_accuracy %g, seconds %g, rate %g)",
                                name, i + 1, h->loss, h->accuracy, h->val_loss, h->val_accuracy,
                                h->seconds, h->learning_rate);
    }
    return 0;
}

int tr_state_decode(tr_train_state *st, tr_model *m, float **m1, float **m2, const uint8_t *data,
                    size_t len, const char *name, tr_error *err)
{
    memset(st, 0, sizeof *st);
    memset(m, 0, sizeof *m);
    *m1 = *m2 = NULL;
    if (len < 12 || memcmp(data, MAGIC, 8) != 0)
        return tr_error_set(err, "%s: not a trainer training state (bad magic)", name);
    uint32_t stored_crc, crc;
    if (!crc_trailer_ok(data, len, &stored_crc, &crc))
        return tr_error_set(err, "%s: checksum mismatch (file says %08x, contents give %08x): "
                            "the file is corrupt or truncated", name, stored_crc, crc);
    byte_reader r = {data + 8, data + len - 4, 0};
    uint32_t version = get_u32(&r);
    if (version < 1 || version > STATE_VERSION)
        return tr_error_set(err, "%s: training state version %u, this program reads 1 to %d",
                            name, version, STATE_VERSION);
    if (get_u32(&r) != ORDER_TAG || get_u32(&r) != sizeof(float))
        return tr_error_set(err, "%s: byte order or float size does not match", name);
    if (version <= 2 ? get_sized_model(&r, m, name, err)
                     : get_architecture(&r, m, (version >= 4 ? ARCH_TENSORS : 0) |
                                                   (version >= 6 ? ARCH_CLASSES : 0),
                                        name, err))
        return -1;
    if (get_run(&r, st, version, name, err))
        goto fail;
    if (version >= 3) {
        if (get_callbacks(&r, st, name, err))
            goto fail;
    } else {
        st->callbacks = tr_callback_defaults();
        tr_callbacks_start(&st->cb, &st->callbacks, (float)st->lr);
    }
    if (version >= 5) {
        if (get_optimizer(&r, st, name, err))
            goto fail;
    } else {
        st->opt = tr_adam_defaults();
        st->opt.lr = (float)st->lr;
        st->opt.epochs = st->epochs;
    }
    uint64_t n_params = get_u64(&r);
    size_t expect = tr_model_param_count(m);
    /* The model is defined, not allocated, until the length says that the
     * file holds its parameters. */
    const size_t arrays = has_best_weights(st) ? 4 : 3, left = (size_t)(r.end - r.p);
    if (r.bad || n_params != expect) {
        tr_error_set(err, "%s: %llu parameters stored, the layers need %zu", name,
                     (unsigned long long)n_params, expect);
        goto fail;
    }
    if (left != 4 * arrays * expect) {
        tr_error_set(err, "%s: %zu bytes of parameters and moments, %zu expected (%zu arrays "
                     "of %zu floats): the file is %s", name, left, 4 * arrays * expect, arrays,
                     expect, left < 4 * arrays * expect ? "cut" : "longer than its contents");
        goto fail;
    }
    if (tr_model_alloc(m, err))
        goto fail;
    *m1 = tr_model_buffer_new(m->len);
    *m2 = tr_model_buffer_new(m->len);
    if (!*m1 || !*m2) {
        tr_error_set(err, "out of memory");
        goto fail;
    }
    get_tensors(&r, m, m->params);
    get_tensors(&r, m, *m1);
    get_tensors(&r, m, *m2);
    if (has_best_weights(st)) {
        st->best_weights = tr_model_buffer_new(m->len);
        if (!st->best_weights) {
            tr_error_set(err, "out of memory");
            goto fail;
        }
        get_tensors(&r, m, st->best_weights);
    }
    if (tr_model_check_finite(m, m->params, name, "the parameter", err) ||
        tr_model_check_finite(m, *m1, name, "the optimizer's first slot", err) ||
        tr_model_check_nonnegative(m, *m2, name, "the optimizer's second slot", err) ||
        (st->best_weights &&
         tr_model_check_finite(m, st->best_weights, name, "the best epoch's parameter", err)))
        goto fail;
    return 0;
fail:
    tr_model_buffer_free(st->best_weights);
    st->best_weights = NULL;
    tr_model_buffer_free(*m1);
    tr_model_buffer_free(*m2);
    *m1 = *m2 = NULL;
    tr_model_free(m);
    free(st->history);
    st->history = NULL;
    return -1;
}

int tr_state_load(tr_train_state *st, tr_model *m, float **m1, float **m2, const char *path,
                  tr_error *err)
{
    uint8_t *data;
    size_t len;
    memset(st, 0, sizeof *st);
    memset(m, 0, sizeof *m);
    *m1 = *m2 = NULL;
    if (tr_file_read_all(path, STATE_MAX_BYTES, &data, &len, err))
        return -1;
    int status = tr_state_decode(st, m, m1, m2, data, len, path, err);
    free(data);
    return status;
}
