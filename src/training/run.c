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

struct tr_run {
    tr_run_config cfg;
    tr_model *model;
    const tr_dataset *train, *val;
    tr_train_session *session;
    tr_evaluator *eval;
    tr_epoch_stats *history;  /* [epochs] */
    int epoch;             /* the epoch in progress or next */
    tr_epoch_progress at;     /* where it stands */
    int saved_epoch;       /* the last epoch whose files are written */
    double saved_time;     /* when they were (tr_run_clock()), 0 before */
    tr_model epoch_model;       /* the model after the last epoch, while its files
                              are not written yet */
    tr_callback_state cb;     /* where the callbacks' rules stand */
    float *best_weights;   /* EarlyStopping's kept weights (with restore_best) */
    float *saved_weights;  /* the best model, for model.best.ckpt (with save_best) */
    int saved_pending;     /* saved_weights changed since model.best.ckpt was written */
    tr_run_files files;
};

double tr_run_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int tr_run_output_path(char *buf, size_t size, const char *dir, const char *name,
                       tr_error *err)
{
    if (snprintf(buf, size, "%s/%s", dir, name) >= (int)size)
        return tr_error_set(err, "%s/%s: path too long", dir, name);
    return 0;
}

int tr_run_files_make(tr_run_files *f, const char *dir, tr_error *err)
{
    return tr_run_output_path(f->history, sizeof f->history, dir, "history.csv", err) ||
           tr_run_output_path(f->model, sizeof f->model, dir, "model.ckpt", err) ||
           tr_run_output_path(f->best, sizeof f->best, dir, "model.best.ckpt", err) ||
           tr_run_output_path(f->state, sizeof f->state, dir, "training.state", err) ||
           tr_run_output_path(f->curves, sizeof f->curves, dir, "curves.png", err) ||
           tr_run_output_path(f->samples, sizeof f->samples, dir, "samples.png", err) ||
           tr_run_output_path(f->predictions, sizeof f->predictions, dir, "predictions.png",
                              err);
}

static long batches_per_epoch(const tr_run *r)
{
    return (long)((r->train->n + (uint32_t)r->cfg.batch_size - 1) / (uint32_t)r->cfg.batch_size);
}

/* The optimizer, its schedule and the loss settings of tc, with the
 * callbacks: a rule that sets the rate does not go with a schedule (Keras
 * refuses it too). */
static int check_training(const tr_train_config *tc, const tr_callback_config *cb, tr_error *err)
{
    if (tr_optimizer_check(&tc->opt, err))
        return -1;
    if (cb->reduce_lr && tr_optimizer_scheduled(&tc->opt))
        return tr_error_set(err, "ReduceLROnPlateau sets the rate itself: it does not go with a "
                            "schedule or a warm-up");
    if (!(tc->label_smoothing >= 0.0f && tc->label_smoothing <= 1.0f))
        return tr_error_set(err, "label smoothing %g out of range (0 to 1)",
                            (double)tc->label_smoothing);
    return 0;
}

int tr_run_new(tr_run **out, tr_model *m, const tr_dataset *train, const tr_dataset *val,
               const tr_run_config *cfg, tr_error *err)
{
    *out = NULL;
    tr_run *r = calloc(1, sizeof *r);
    if (!r)
        return tr_error_set(err, "out of memory");
    r->cfg = *cfg;
    r->model = m;
    r->train = train;
    r->val = val;
    r->epoch = 1;
    tr_train_config tc = {.threads = cfg->threads, .shards = cfg->shards,
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
    if ((dir && tr_run_files_make(&r->files, dir, err)) ||
        tr_train_session_new(&r->session, m, &tc, err) ||
        tr_evaluator_new(&r->eval, m,
                         tr_train_threads_used(cfg->threads,
                                               cfg->shards / (cfg->ranks > 1 ? cfg->ranks : 1)),
                         err) ||
        tr_model_init(&r->epoch_model, m->input, m->layer, m->n_layers, err)) {
        tr_run_free(r);
        return -1;
    }
    r->history = calloc((size_t)(cfg->epochs ? cfg->epochs : 1), sizeof *r->history);
    const tr_callback_config *cb = &cfg->callbacks;
    if (cb->early_stopping && cb->restore_best)
        r->best_weights = tr_model_buffer_new(m->len);
    if (cb->save_best)
        r->saved_weights = tr_model_buffer_new(m->len);
    if (!r->history || (cb->early_stopping && cb->restore_best && !r->best_weights) ||
        (cb->save_best && !r->saved_weights)) {
        tr_run_free(r);
        return tr_error_set(err, "out of memory");
    }
    tr_evaluator_set_label_smoothing(r->eval, cfg->label_smoothing);
    tr_callbacks_start(&r->cb, cb, tc.opt.lr);
    *out = r;
    return 0;
}

void tr_run_free(tr_run *r)
{
    if (!r)
        return;
    tr_train_session_free(r->session);
    tr_evaluator_free(r->eval);
    tr_model_free(&r->epoch_model);
    tr_model_buffer_free(r->best_weights);
    tr_model_buffer_free(r->saved_weights);
    free(r->history);
    free(r);
}

int tr_run_resume(tr_run *r, const tr_train_state *st, const float *m1, const float *m2,
                  tr_error *err)
{
    if (st->epoch < 1 || st->n_history != st->epoch - 1 || st->n_history > r->cfg.epochs)
        return tr_error_set(err, "a state at epoch %d cannot continue a run of %d epochs",
                            st->epoch, r->cfg.epochs);
    tr_train_session_set_optimizer(r->session, m1, m2, st->opt_step);
    memcpy(r->history, st->history, sizeof *r->history * (size_t)st->n_history);
    r->epoch = st->epoch;
    r->at = st->progress;
    r->saved_epoch = st->epoch - 1;
    r->cb = st->cb;
    tr_train_session_set_learning_rate(r->session, r->cb.lr);
    if (r->best_weights && st->best_weights)
        memcpy(r->best_weights, st->best_weights, sizeof(float) * r->model->len);
    return 0;
}

const tr_callback_state *tr_run_callbacks(const tr_run *r)
{
    return &r->cb;
}

long tr_run_steps(const tr_run *r)
{
    return tr_train_session_optimizer(r->session)->step;
}

tr_evaluator *tr_run_evaluator(tr_run *r)
{
    return r->eval;
}

void tr_run_position(const tr_run *r, int *epoch, long *batch, long *n_batches)
{
    *epoch = r->epoch;
    *batch = r->at.next_batch;
    *n_batches = batches_per_epoch(r);
}

/* Adds training.state to the batch: where the run stands now. */
static int add_state(tr_file_batch *b, const tr_run *r, tr_error *err)
{
    const tr_run_config *c = &r->cfg;
    tr_train_state st = {.seed = c->seed, .batch_size = c->batch_size,
                      .shards = c->shards, .epochs = c->epochs, .lr = c->lr,
                      .validation_split = c->validation_split, .n_train = r->train->n,
                      .n_val = r->val->n, .rows = r->train->rows, .cols = r->train->cols,
                      .fingerprint = r->train->fingerprint, .has_fingerprint = 1,
                      .epoch = r->epoch, .progress = r->at,
                      .opt_step = tr_train_session_optimizer(r->session)->step,
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
    if (tr_state_encode(&st, r->model, tr_train_session_optimizer(r->session), &data, &len, err)) {
        tr_file_batch_abort(b);
        return -1;
    }
    int status = tr_file_batch_add(b, r->files.state, data, len, err);
    free(data);
    return status;
}

/* Adds model.best.ckpt, when it has changed, to the batch. */
static int add_best_model(tr_file_batch *b, const tr_run *r, tr_error *err)
{
    if (!r->saved_pending)
        return 0;
    tr_model best = *r->model;
    best.params = r->saved_weights;
    uint8_t *bytes;
    size_t len;
    if (tr_ckpt_encode(&best, &bytes, &len, err)) {
        tr_file_batch_abort(b);
        return -1;
    }
    int status = tr_file_batch_add(b, r->files.best, bytes, len, err);
    free(bytes);
    return status;
}

/* The epochs curves.png marks: the one whose weights are kept, and the stop. */
static tr_curve_marks marks_of(const tr_run *r)
{
    const tr_callback_config *c = &r->cfg.callbacks;
    const int best = c->early_stopping ? r->cb.best_epoch : c->save_best ? r->cb.saved_epoch : 0;
    return (tr_curve_marks){best, r->cb.stopped_epoch};
}

/* Adds the files that show the first n epochs to the batch: history.csv,
 * model.ckpt of m (the model after epoch n), model.best.ckpt when it has
 * changed and, with pictures, curves.png. */
static int add_epoch_files(tr_file_batch *b, const tr_run *r, int n, const tr_model *m,
                           tr_error *err)
{
    char *text;
    uint8_t *bytes;
    size_t len;
    const int rates = r->cfg.callbacks.reduce_lr || tr_optimizer_scheduled(&r->cfg.opt);
    if (tr_history_format(r->history, n, rates, &text, &len, err)) {
        tr_file_batch_abort(b);
        return -1;
    }
    int status = tr_file_batch_add(b, r->files.history, text, len, err);
    free(text);
    if (status || tr_ckpt_encode(m, &bytes, &len, err)) {
        tr_file_batch_abort(b);
        return -1;
    }
    status = tr_file_batch_add(b, r->files.model, bytes, len, err);
    free(bytes);
    if (status || add_best_model(b, r, err))
        return -1;
    if (!r->cfg.plots)
        return 0;
    tr_canvas c;
    const tr_curve_marks marks = marks_of(r);
    if (tr_plot_curves(&c, r->history, n, &marks, err)) {
        tr_file_batch_abort(b);
        return -1;
    }
    status = tr_canvas_encode_png(&c, &bytes, &len, err);
    tr_canvas_free(&c);
    if (status) {
        tr_file_batch_abort(b);
        return -1;
    }
    status = tr_file_batch_add(b, r->files.curves, bytes, len, err);
    free(bytes);
    return status;
}

/* Fails when the model's parameters or the optimizer's state are not all
 * finite: such files would load nowhere, and the last good ones are kept. */
static int check_diverged(const tr_run *r, tr_error *err)
{
    const tr_optimizer *opt = tr_train_session_optimizer(r->session);
    char when[32];
    snprintf(when, sizeof when, "after epoch %d", r->epoch - 1);
    tr_error why;
    if (!tr_model_check_finite(r->model, r->model->params, when, "the parameter", &why) &&
        !tr_model_check_finite(r->model, opt->m, when, "the optimizer's first slot", &why) &&
        !tr_model_check_nonnegative(r->model, opt->v, when, "the optimizer's second slot", &why))
        return 0;
    if (!r->saved_epoch)
        return tr_error_set(err, "%s: training diverged (try a smaller --lr); nothing was saved",
                            why.msg);
    return tr_error_set(err, "%s: training diverged (try a smaller --lr); the files of epoch %d "
                        "are kept", why.msg, r->saved_epoch);
}

/* After an epoch, r->epoch being the next: the epoch's files when they are
 * due; otherwise the model is kept for an interruption to write. */
static int end_epoch(tr_run *r, tr_error *err)
{
    const int done = r->epoch - 1;
    if (!r->cfg.out_dir)
        return 0;
    if (check_diverged(r, err))
        return -1;
    const int last = done >= r->cfg.epochs || r->cb.stopped_epoch;
    if (!last && tr_run_clock() - r->saved_time < SAVE_INTERVAL) {
        memcpy(r->epoch_model.params, r->model->params, sizeof(float) * r->model->len);
        return 0;
    }
    tr_file_batch b = {0};
    if (add_epoch_files(&b, r, done, r->model, err) || add_state(&b, r, err) ||
        tr_file_batch_commit(&b, err))
        return -1;
    r->saved_epoch = done;
    r->saved_time = tr_run_clock();
    r->saved_pending = 0;
    return 0;
}

/* Saves where a stopped run stands; the epochs before the one in progress
 * whose files were not due yet catch up. */
static int save_stopped(tr_run *r, tr_error *err)
{
    if (!r->cfg.out_dir)
        return 0;
    tr_file_batch b = {0};
    if ((r->saved_epoch < r->epoch - 1 &&
         add_epoch_files(&b, r, r->epoch - 1, &r->epoch_model, err)) ||
        add_state(&b, r, err) || tr_file_batch_commit(&b, err))
        return -1;
    r->saved_pending = 0;
    return 0;
}

/* The callbacks' rules after epoch st->epoch, and what they ask. */
static void apply_callbacks(tr_run *r, const tr_epoch_stats *st, const tr_run_observer *obs)
{
    tr_callback_actions a;
    tr_callbacks_epoch_end(&r->cb, &r->cfg.callbacks, st, &a);
    const size_t bytes = sizeof(float) * r->model->len;
    if (a.keep_weights && r->best_weights)
        memcpy(r->best_weights, r->model->params, bytes);
    if (a.save_best) {
        memcpy(r->saved_weights, r->model->params, bytes);
        r->saved_pending = 1;
    }
    if (a.lr_changed)
        tr_train_session_set_learning_rate(r->session, r->cb.lr);
    if (obs->callbacks && (a.save_best || a.lr_changed || a.stop))
        obs->callbacks(obs->ctx, st, &r->cb, &a);
}

/* Keras' on_train_end: the best epoch's weights, when they are kept. */
static void restore_best(tr_run *r)
{
    if (r->best_weights && r->cb.best_epoch > 0)
        memcpy(r->model->params, r->best_weights, sizeof(float) * r->model->len);
}

/* Whether rc, a step that only some ranks take (writing the files), failed
 * on any rank: then every rank fails, the others with a message naming the
 * one that did. */
static int agreed(const tr_run *r, int rc, tr_error *err)
{
    if (r->cfg.ranks < 2)
        return rc;
    const int first = tr_group_first(rc != 0);
    if (first >= 0 && !rc)
        tr_error_set(err, "rank %d failed to write the run's files", first);
    return first >= 0;
}

int tr_run_fit(tr_run *r, const volatile sig_atomic_t *stop, const tr_run_observer *obs,
               tr_error *err)
{
    const tr_run_observer none = {0};
    obs = obs ? obs : &none;
    while (r->epoch <= r->cfg.epochs && !r->cb.stopped_epoch) {
        tr_epoch_stats *st = &r->history[r->epoch - 1];
        st->epoch = r->epoch;
        st->learning_rate = r->cb.lr;
        if (obs->epoch_start)
            obs->epoch_start(obs->ctx, r->epoch, r->cfg.epochs, r->at.next_batch);
        const double start = tr_run_clock();
        const long seen_before = r->at.seen;
        int rc = tr_train_epoch_from(r->session, r->train, r->epoch, &r->at, stop, &st->loss,
                                     &st->accuracy, obs->batch, obs->ctx, err);
        if (rc < 0)
            return -1;
        tr_train_session_share_state(r->session);
        if (rc > 0)
            return agreed(r, save_stopped(r, err), err) ? -1 : 1;
        const double train_seconds = tr_run_clock() - start;
        if (tr_evaluator_run(r->eval, r->model, r->val, &st->val_loss, &st->val_accuracy, NULL,
                             err))
            return -1;
        st->seconds = tr_run_clock() - start;
        if (obs->epoch_end)
            obs->epoch_end(obs->ctx, st, batches_per_epoch(r), train_seconds,
                           r->at.seen - seen_before);
        if (tr_optimizer_scheduled(&r->cfg.opt))
            st->learning_rate = (float)tr_optimizer_lr_at(&r->cfg.opt, tr_run_steps(r) - 1);
        apply_callbacks(r, st, obs);
        r->epoch++;
        r->at = (tr_epoch_progress){0};
        if (r->epoch > r->cfg.epochs || r->cb.stopped_epoch)
            restore_best(r);
        if (agreed(r, end_epoch(r, err), err))
            return -1;
    }
    return 0;
}
