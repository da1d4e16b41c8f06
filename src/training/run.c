#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "canvas.h"
#include "ckpt.h"
#include "fileio.h"
#include "group.h"
#include "history.h"
#include "plots.h"

/* The epoch files are written at most once in this many seconds, and after
 * the last epoch and on interruption.  Writing them takes about 6 ms (a
 * checkpoint, the training state with the optimizer's state, curves.png and their
 * fsyncs): after each of the default run's 25 epochs of 0.12 s that was 5% of
 * the run, while a crash now loses at most this much training.  Epochs of a
 * second or more save every time. */
#define SAVE_INTERVAL 1.0

struct run {
    run_config cfg;
    model *model;
    const dataset *train, *val;
    train_session *session;
    evaluator *eval;
    epoch_stats *history;  /* [epochs] */
    int epoch;             /* the epoch in progress or next */
    epoch_progress at;     /* where it stands */
    int saved_epoch;       /* the last epoch whose files are written */
    double saved_time;     /* when they were (run_clock()), 0 before */
    model epoch_model;       /* the model after the last epoch, while its files
                              are not written yet */
    callback_state cb;     /* where the callbacks' rules stand */
    float *best_weights;   /* EarlyStopping's kept weights (with restore_best) */
    float *saved_weights;  /* the best model, for model.best.ckpt (with save_best) */
    int saved_pending;     /* saved_weights changed since model.best.ckpt was written */
    run_files files;
};

double run_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int run_output_path(char *buf, size_t size, const char *dir, const char *name,
                    tr_error *err)
{
    if (snprintf(buf, size, "%s/%s", dir, name) >= (int)size)
        return error_set(err, "%s/%s: path too long", dir, name);
    return 0;
}

int run_files_make(run_files *f, const char *dir, tr_error *err)
{
    return run_output_path(f->history, sizeof f->history, dir, "history.csv", err) ||
           run_output_path(f->model, sizeof f->model, dir, "model.ckpt", err) ||
           run_output_path(f->best, sizeof f->best, dir, "model.best.ckpt", err) ||
           run_output_path(f->state, sizeof f->state, dir, "training.state", err) ||
           run_output_path(f->curves, sizeof f->curves, dir, "curves.png", err) ||
           run_output_path(f->samples, sizeof f->samples, dir, "samples.png", err) ||
           run_output_path(f->predictions, sizeof f->predictions, dir, "predictions.png",
                           err);
}

static long batches_per_epoch(const run *r)
{
    return (long)((r->train->n + (uint32_t)r->cfg.batch_size - 1) / (uint32_t)r->cfg.batch_size);
}

/* The optimizer, its schedule and the loss settings of tc, with the
 * callbacks: a rule that sets the rate does not go with a schedule (Keras
 * refuses it too). */
static int check_training(const train_config *tc, const callback_config *cb, tr_error *err)
{
    if (optimizer_check(&tc->opt, err))
        return -1;
    if (cb->reduce_lr && optimizer_scheduled(&tc->opt))
        return error_set(err, "ReduceLROnPlateau sets the rate itself: it does not go with a "
                         "schedule or a warm-up");
    if (!(tc->label_smoothing >= 0.0f && tc->label_smoothing <= 1.0f))
        return error_set(err, "label smoothing %g out of range (0 to 1)",
                         (double)tc->label_smoothing);
    return 0;
}

int run_new(run **out, model *m, const dataset *train, const dataset *val,
            const run_config *cfg, tr_error *err)
{
    *out = NULL;
    run *r = calloc(1, sizeof *r);
    if (!r)
        return error_set(err, "out of memory");
    r->cfg = *cfg;
    r->model = m;
    r->train = train;
    r->val = val;
    r->epoch = 1;
    train_config tc = {.threads = cfg->threads, .shards = cfg->shards,
                       .batch_size = cfg->batch_size, .opt = cfg->opt,
                       .label_smoothing = cfg->label_smoothing, .seed = cfg->seed,
                       .ranks = cfg->ranks};
    tc.opt.lr = (float)cfg->lr;
    tc.opt.steps_per_epoch = batches_per_epoch(r);
    tc.opt.epochs = cfg->epochs;
    r->cfg.opt = tc.opt;
    const char *dir = cfg->out_dir;
    if (check_training(&tc, &cfg->callbacks, err)) {
        free(r);
        return -1;
    }
    if ((dir && run_files_make(&r->files, dir, err)) ||
        train_session_new(&r->session, m, &tc, err) ||
        evaluator_new(&r->eval, m,
                      train_threads_used(cfg->threads,
                                         cfg->shards / (cfg->ranks > 1 ? cfg->ranks : 1)),
                      err) ||
        model_init(&r->epoch_model, m->input, m->layer, m->n_layers, err)) {
        run_free(r);
        return -1;
    }
    r->history = calloc((size_t)(cfg->epochs ? cfg->epochs : 1), sizeof *r->history);
    const callback_config *cb = &cfg->callbacks;
    if (cb->early_stopping && cb->restore_best)
        r->best_weights = model_buffer_new(m->len);
    if (cb->save_best)
        r->saved_weights = model_buffer_new(m->len);
    if (!r->history || (cb->early_stopping && cb->restore_best && !r->best_weights) ||
        (cb->save_best && !r->saved_weights)) {
        run_free(r);
        return error_set(err, "out of memory");
    }
    evaluator_set_label_smoothing(r->eval, cfg->label_smoothing);
    callbacks_start(&r->cb, cb, tc.opt.lr);
    *out = r;
    return 0;
}

void run_free(run *r)
{
    if (!r)
        return;
    train_session_free(r->session);
    evaluator_free(r->eval);
    model_free(&r->epoch_model);
    model_buffer_free(r->best_weights);
    model_buffer_free(r->saved_weights);
    free(r->history);
    free(r);
}

int run_resume(run *r, const train_state *st, const float *m1, const float *m2,
               tr_error *err)
{
    if (st->epoch < 1 || st->n_history != st->epoch - 1 || st->n_history > r->cfg.epochs)
        return error_set(err, "a state at epoch %d cannot continue a run of %d epochs",
                         st->epoch, r->cfg.epochs);
    train_session_set_optimizer(r->session, m1, m2, st->opt_step);
    memcpy(r->history, st->history, sizeof *r->history * (size_t)st->n_history);
    r->epoch = st->epoch;
    r->at = st->progress;
    r->saved_epoch = st->epoch - 1;
    r->cb = st->cb;
    train_session_set_learning_rate(r->session, r->cb.lr);
    if (r->best_weights && st->best_weights)
        memcpy(r->best_weights, st->best_weights, sizeof(float) * r->model->len);
    return 0;
}

const callback_state *run_callbacks(const run *r)
{
    return &r->cb;
}

long run_steps(const run *r)
{
    return train_session_optimizer(r->session)->step;
}

evaluator *run_evaluator(run *r)
{
    return r->eval;
}

void run_position(const run *r, int *epoch, long *batch, long *n_batches)
{
    *epoch = r->epoch;
    *batch = r->at.next_batch;
    *n_batches = batches_per_epoch(r);
}

/* Adds training.state to the batch: where the run stands now. */
static int add_state(file_batch *b, const run *r, tr_error *err)
{
    const run_config *c = &r->cfg;
    train_state st = {.seed = c->seed, .batch_size = c->batch_size,
                      .shards = c->shards, .epochs = c->epochs, .lr = c->lr,
                      .validation_split = c->validation_split, .n_train = r->train->n,
                      .n_val = r->val->n, .rows = r->train->rows, .cols = r->train->cols,
                      .fingerprint = r->train->fingerprint, .has_fingerprint = 1,
                      .epoch = r->epoch, .progress = r->at,
                      .opt_step = train_session_optimizer(r->session)->step,
                      .opt = c->opt, .label_smoothing = c->label_smoothing,
                      .n_history = r->epoch - 1, .history = r->history,
                      .callbacks = c->callbacks, .cb = r->cb, .best_weights = r->best_weights};
    if (c->data) {
        snprintf(st.data_dir, sizeof st.data_dir, "%s", c->data->dir);
        snprintf(st.test_dir, sizeof st.test_dir, "%s", c->data->test_dir ? c->data->test_dir : "");
        st.image_rows = c->data->pictures.rows;
        st.image_cols = c->data->pictures.cols;
        st.image_channels = c->data->pictures.channels;
    }
    uint8_t *data;
    size_t len;
    if (state_encode(&st, r->model, train_session_optimizer(r->session), &data, &len, err)) {
        file_batch_abort(b);
        return -1;
    }
    int status = file_batch_add(b, r->files.state, data, len, err);
    free(data);
    return status;
}

/* Adds model.best.ckpt, when it has changed, to the batch. */
static int add_best_model(file_batch *b, const run *r, tr_error *err)
{
    if (!r->saved_pending)
        return 0;
    model best = *r->model;
    best.params = r->saved_weights;
    uint8_t *bytes;
    size_t len;
    if (ckpt_encode(&best, &bytes, &len, err)) {
        file_batch_abort(b);
        return -1;
    }
    int status = file_batch_add(b, r->files.best, bytes, len, err);
    free(bytes);
    return status;
}

/* The epochs curves.png marks: the one whose weights are kept, and the stop. */
static curve_marks marks_of(const run *r)
{
    const callback_config *c = &r->cfg.callbacks;
    const int best = c->early_stopping ? r->cb.best_epoch : c->save_best ? r->cb.saved_epoch : 0;
    return (curve_marks){best, r->cb.stopped_epoch};
}

/* Adds the files that show the first n epochs to the batch: history.csv,
 * model.ckpt of m (the model after epoch n), model.best.ckpt when it has
 * changed and, with pictures, curves.png. */
static int add_epoch_files(file_batch *b, const run *r, int n, const model *m, tr_error *err)
{
    char *text;
    uint8_t *bytes;
    size_t len;
    const int rates = r->cfg.callbacks.reduce_lr || optimizer_scheduled(&r->cfg.opt);
    if (history_format(r->history, n, rates, &text, &len, err)) {
        file_batch_abort(b);
        return -1;
    }
    int status = file_batch_add(b, r->files.history, text, len, err);
    free(text);
    if (status || ckpt_encode(m, &bytes, &len, err)) {
        file_batch_abort(b);
        return -1;
    }
    status = file_batch_add(b, r->files.model, bytes, len, err);
    free(bytes);
    if (status || add_best_model(b, r, err))
        return -1;
    if (!r->cfg.plots)
        return 0;
    canvas c;
    const curve_marks marks = marks_of(r);
    if (plot_curves(&c, r->history, n, &marks, err)) {
        file_batch_abort(b);
        return -1;
    }
    status = canvas_encode_png(&c, &bytes, &len, err);
    canvas_free(&c);
    if (status) {
        file_batch_abort(b);
        return -1;
    }
    status = file_batch_add(b, r->files.curves, bytes, len, err);
    free(bytes);
    return status;
}

/* Fails when the model's parameters or the optimizer's state are not all
 * finite: such files would load nowhere, and the last good ones are kept. */
static int check_diverged(const run *r, tr_error *err)
{
    const optimizer *opt = train_session_optimizer(r->session);
    char when[32];
    snprintf(when, sizeof when, "after epoch %d", r->epoch - 1);
    tr_error why;
    if (!model_check_finite(r->model, r->model->params, when, "the parameter", &why) &&
        !model_check_finite(r->model, opt->m, when, "the optimizer's first slot", &why) &&
        !model_check_nonnegative(r->model, opt->v, when, "the optimizer's second slot", &why))
        return 0;
    if (!r->saved_epoch)
        return error_set(err, "%s: training diverged (try a smaller --lr); nothing was saved",
                         why.msg);
    return error_set(err, "%s: training diverged (try a smaller --lr); the files of epoch %d "
                     "are kept", why.msg, r->saved_epoch);
}

/* After an epoch, r->epoch being the next: the epoch's files when they are
 * due; otherwise the model is kept for an interruption to write. */
static int end_epoch(run *r, tr_error *err)
{
    const int done = r->epoch - 1;
    if (!r->cfg.out_dir)
        return 0;
    if (check_diverged(r, err))
        return -1;
    const int last = done >= r->cfg.epochs || r->cb.stopped_epoch;
    if (!last && run_clock() - r->saved_time < SAVE_INTERVAL) {
        memcpy(r->epoch_model.params, r->model->params, sizeof(float) * r->model->len);
        return 0;
    }
    file_batch b = {0};
    if (add_epoch_files(&b, r, done, r->model, err) || add_state(&b, r, err) ||
        file_batch_commit(&b, err))
        return -1;
    r->saved_epoch = done;
    r->saved_time = run_clock();
    r->saved_pending = 0;
    return 0;
}

/* Saves where a stopped run stands; the epochs before the one in progress
 * whose files were not due yet catch up. */
static int save_stopped(run *r, tr_error *err)
{
    if (!r->cfg.out_dir)
        return 0;
    file_batch b = {0};
    if ((r->saved_epoch < r->epoch - 1 &&
         add_epoch_files(&b, r, r->epoch - 1, &r->epoch_model, err)) ||
        add_state(&b, r, err) || file_batch_commit(&b, err))
        return -1;
    r->saved_pending = 0;
    return 0;
}

/* The callbacks' rules after epoch st->epoch, and what they ask. */
static void apply_callbacks(run *r, const epoch_stats *st, const run_observer *obs)
{
    callback_actions a;
    callbacks_epoch_end(&r->cb, &r->cfg.callbacks, st, &a);
    const size_t bytes = sizeof(float) * r->model->len;
    if (a.keep_weights && r->best_weights)
        memcpy(r->best_weights, r->model->params, bytes);
    if (a.save_best) {
        memcpy(r->saved_weights, r->model->params, bytes);
        r->saved_pending = 1;
    }
    if (a.lr_changed)
        train_session_set_learning_rate(r->session, r->cb.lr);
    if (obs->callbacks && (a.save_best || a.lr_changed || a.stop))
        obs->callbacks(obs->ctx, st, &r->cb, &a);
}

/* Keras' on_train_end: the best epoch's weights, when they are kept. */
static void restore_best(run *r)
{
    if (r->best_weights && r->cb.best_epoch > 0)
        memcpy(r->model->params, r->best_weights, sizeof(float) * r->model->len);
}

/* Whether rc, a step that only some ranks take (writing the files), failed
 * on any rank: then every rank fails, the others with a message naming the
 * one that did. */
static int agreed(const run *r, int rc, tr_error *err)
{
    if (r->cfg.ranks < 2)
        return rc;
    const int first = group_first(rc != 0);
    if (first >= 0 && !rc)
        error_set(err, "rank %d failed to write the run's files", first);
    return first >= 0;
}

int run_fit(run *r, const volatile sig_atomic_t *stop, const run_observer *obs,
            tr_error *err)
{
    const run_observer none = {0};
    obs = obs ? obs : &none;
    while (r->epoch <= r->cfg.epochs && !r->cb.stopped_epoch) {
        epoch_stats *st = &r->history[r->epoch - 1];
        st->epoch = r->epoch;
        st->learning_rate = r->cb.lr;
        if (obs->epoch_start)
            obs->epoch_start(obs->ctx, r->epoch, r->cfg.epochs, r->at.next_batch);
        const double start = run_clock();
        const long seen_before = r->at.seen;
        int rc = train_epoch_from(r->session, r->train, r->epoch, &r->at, stop, &st->loss,
                                  &st->accuracy, obs->batch, obs->ctx, err);
        if (rc < 0)
            return -1;
        train_session_share_state(r->session);
        if (rc > 0)
            return agreed(r, save_stopped(r, err), err) ? -1 : 1;
        const double train_seconds = run_clock() - start;
        if (evaluator_run(r->eval, r->model, r->val, &st->val_loss, &st->val_accuracy, NULL,
                          err))
            return -1;
        st->seconds = run_clock() - start;
        if (obs->epoch_end)
            obs->epoch_end(obs->ctx, st, batches_per_epoch(r), train_seconds,
                           r->at.seen - seen_before);
        if (optimizer_scheduled(&r->cfg.opt))
            st->learning_rate = (float)optimizer_lr_at(&r->cfg.opt, run_steps(r) - 1);
        apply_callbacks(r, st, obs);
        r->epoch++;
        r->at = (epoch_progress){0};
        if (r->epoch > r->cfg.epochs || r->cb.stopped_epoch)
            restore_best(r);
        if (agreed(r, end_epoch(r, err), err))
            return -1;
    }
    return 0;
}
