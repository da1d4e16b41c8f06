/* run.h - a training run: the epoch loop and what it leaves on disk.
 *
 * A run trains a model epoch after epoch, evaluating the validation set after
 * each, and applies Keras' callbacks (callbacks.h) when they are on: early
 * stopping, which restores the best epoch's weights when training ends, the
 * best model kept, the learning rate lowered on a plateau.  Given an output
 * directory it keeps the epoch files there: history.csv, model.ckpt,
 * model.best.ckpt (with the best model kept), training.state and (with
 * pictures) curves.png,
 * replaced together or not at all after an epoch when the last ones are a
 * second old or more, after the last epoch, and when the run is stopped.  So
 * they always show whole epochs, and a crash loses at most a second of
 * training.  A run stopped between two steps saves where it stands in
 * training.state; tr_run_resume continues from it bit for bit.
 *
 * The trainer and the benchmark train through tr_run_fit, and so do the tests
 * that run the trainer; the unit tests of a step call train.h directly. */
#ifndef TRAINER_RUN_H
#define TRAINER_RUN_H

#include <signal.h>
#include <stdint.h>

#include "callbacks.h"
#include "dataset.h"
#include "epoch.h"
#include "error.h"
#include "model.h"
#include "state.h"
#include "train.h"

typedef struct {
    int epochs;           /* the last epoch to train */
    int batch_size;       /* as tr_train_config */
    int threads, shards;  /* as tr_train_config (shards 0: one per thread) */
    int ranks;            /* as tr_train_config: the processes training together;
                             only rank 0 should be given an out_dir */
    double lr;            /* the base learning rate, as given */
    tr_optimizer_hparams opt; /* the optimizer and its schedule; its lr, length and
                              epochs are set from lr, the data and epochs */
    float label_smoothing; /* Keras' label_smoothing (0: none) */
    double validation_split; /* recorded in the state only: the caller splits */
    uint64_t seed;        /* the epochs' shuffles */
    const char *out_dir;  /* where the epoch files go; NULL: nowhere */
    const tr_dataset_source *data; /* recorded in the state, for a resume to find
                                   (NULL: none) */
    int plots;            /* curves.png among the epoch files */
    tr_callback_config callbacks; /* Keras' callbacks (zeroed: none) */
} tr_run_config;

/* What a console (or a benchmark) is told; every member may be NULL. */
typedef struct {
    /* Before epoch `epoch` of `epochs` starts, or resumes at batch
     * first_batch (0 for a fresh epoch). */
    void (*epoch_start)(void *ctx, int epoch, int epochs, long first_batch);
    tr_train_progress_fn batch; /* after each batch, as for tr_train_epoch */
    /* After an epoch and its validation: its figures (st), its batch count,
     * the seconds its training took and the samples trained in that time
     * (fewer than the epoch's when it was resumed). */
    void (*epoch_end)(void *ctx, const tr_epoch_stats *st, long n_batches,
                      double train_seconds, long samples);
    /* After the callbacks' rules, when they saved the best model, changed
     * the learning rate (cb->lr) or stopped training. */
    void (*callbacks)(void *ctx, const tr_epoch_stats *st, const tr_callback_state *cb,
                      const tr_callback_actions *a);
    void *ctx;
} tr_run_observer;

/* The files of a run in its directory. */
typedef struct {
    char history[4096];     /* history.csv */
    char model[4096];       /* model.ckpt */
    char best[4096];        /* model.best.ckpt */
    char state[4096];       /* training.state */
    char curves[4096];      /* curves.png */
    char samples[4096];     /* samples.png */
    char predictions[4096]; /* predictions.png */
} tr_run_files;

/* The paths of a run's files in dir; fails on a path too long. */
int tr_run_files_make(tr_run_files *f, const char *dir, tr_error *err);

/* A monotonic clock, in seconds. */
double tr_run_clock(void);

typedef struct tr_run tr_run;

/* Prepares to train model (used, not owned) on train, validating on val (may
 * be empty), both views that outlive the run.  Allocates the training
 * session, the evaluator and the history. */
int tr_run_new(tr_run **out, tr_model *m, const tr_dataset *train, const tr_dataset *val,
               const tr_run_config *cfg, tr_error *err);
void tr_run_free(tr_run *r);

/* Makes the run continue the one st describes (read from training.state):
 * the optimizer's slots m1 and m2 (buffers of the model's layout) and step count,
 * the history so far, the position in the epoch in progress and the
 * callbacks' state (the run's callbacks must be st's).  The model must
 * already hold st's parameters.  Call before tr_run_fit. */
int tr_run_resume(tr_run *r, const tr_train_state *st, const float *m1, const float *m2,
                  tr_error *err);

/* Trains from where the run stands up to the last epoch.  Before each step,
 * if *stop is nonzero (stop may be NULL), it stops; a step once started is
 * finished.  Returns 0 when the last epoch is done, 1 when stopped (the state
 * then saved, with an output directory; tr_run_position tells where), -1 on
 * error (the files on disk are those of the last saved epoch). */
int tr_run_fit(tr_run *r, const volatile sig_atomic_t *stop, const tr_run_observer *obs,
               tr_error *err);

/* Where the callbacks' rules stand: the best epoch, where training stopped,
 * the learning rate. */
const tr_callback_state *tr_run_callbacks(const tr_run *r);

/* Where the run stands: the epoch in progress or next (1-based), the batches
 * of it done and its batch count. */
void tr_run_position(const tr_run *r, int *epoch, long *batch, long *n_batches);

/* The optimizer's steps taken so far, those of the run resumed included. */
long tr_run_steps(const tr_run *r);

/* The evaluator the run validates with (on its threads), for a test set. */
tr_evaluator *tr_run_evaluator(tr_run *r);

/* Path of an output file in the run's directory, into buf. */
int tr_run_output_path(char *buf, size_t size, const char *dir, const char *name,
                       tr_error *err);

#endif
