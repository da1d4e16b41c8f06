/* train.h - mini-batch training and evaluation on several threads.
 *
 * A training step knows the model's layers and its one parameter buffer,
 * nothing more.  Each mini-batch is split into a fixed number of shards; the
 * forward and backward passes of a shard run on one thread and leave the
 * shard's gradient in its own buffer (the parameters' layout).  The buffers
 * are then reduced: the parameters are cut into as many parts as there are
 * shards, and each part is summed over the shards in shard order and given
 * its Adam step by one thread.  Threads take shards (and parts) in turn;
 * there are never more threads than shards, as a thread without a shard
 * would only wait at the barriers.  With one shard per thread, each thread
 * has its own gradient buffer.
 *
 * A layer may do part of its work where its parameters are reduced instead
 * of in the shards (src/model/layer_trainer.h): the dense layer on the
 * images computes its weight gradient and its next batch's sums over the
 * weight rows each thread updates, which it reads nowhere else.  That changes
 * which core computes what, never a result.
 *
 * The arithmetic depends on the shards, never on the threads: the same seed,
 * data and shard count give bit-identical results for any thread count.
 * Threads live for a whole epoch; nothing is allocated in a step.
 *
 * Several processes (ranks, group.h) may train one model: rank r runs the
 * r-th block of shards and owns the same block of parts.  The shards'
 * gradients for a part are sent to its owner, which sums them in shard
 * order and updates it; the updated parts are then sent to every rank.  So
 * the bits are those of one process with the same shards.  Each rank keeps
 * Adam's moments of its own parts only, and a layer trainer's parameters
 * (the first layer's weights) are its owner's alone during an epoch: both
 * reach every rank with tr_train_session_share_state. */
#ifndef TRAINER_TRAIN_H
#define TRAINER_TRAIN_H

#include <signal.h>
#include <stdint.h>

#include "dataset.h"
#include "epoch.h"
#include "error.h"
#include "model.h"
#include "optimizer.h"

#define TRAIN_MAX_SHARDS 256
#define TRAIN_MAX_BATCH 65536

typedef struct {
    int threads;        /* OpenMP threads wanted, >= 1 (at most `shards` run) */
    int shards;         /* gradient buffers per batch, at most TRAIN_MAX_SHARDS;
                           0 means one per thread */
    int batch_size;     /* >= 1; the last partial batch of an epoch is kept */
    tr_optimizer_hparams opt; /* the optimizer and its schedule */
    float label_smoothing; /* Keras' label_smoothing, 0 to 1 */
    uint64_t seed;      /* the epoch shuffles derive from it */
    int ranks;          /* processes of the group (group.h) training together:
                           0 or 1 for this one alone; shards a multiple of it */
} tr_train_config;

/* Called by the calling thread after a batch, with the running means of the
 * epoch so far.  Keep it quick: the other threads wait for it. */
typedef void (*tr_train_progress_fn)(void *ctx, long batch, long n_batches,
                                     double loss, double accuracy);

typedef struct tr_train_session tr_train_session;

/* Prepares to train m (which the session uses but does not own) with cfg:
 * allocates the shard buffers, the workspaces and the optimizer state. */
int tr_train_session_new(tr_train_session **out, tr_model *m, const tr_train_config *cfg,
                         tr_error *err);
void tr_train_session_free(tr_train_session *s);

/* The cores this process may use (1 without OpenMP). */
int tr_train_cores(void);

/* The threads that run for `threads` asked and `shards` per batch (0: one
 * per thread): never more than there are shards. */
int tr_train_threads_used(int threads, int shards);

/* The threads that the session's last epoch or gradient really ran on (0
 * before the first): the threads asked, at most the shards, unless OpenMP
 * gave fewer (OMP_THREAD_LIMIT, or a build without OpenMP: 1). */
int tr_train_session_threads_ran(const tr_train_session *s);

/* Brings every rank's parameters and Adam's moments up to date (collective,
 * with several ranks; else nothing): after tr_train_epoch_from returns, before
 * the model is evaluated or the state saved. */
void tr_train_session_share_state(tr_train_session *s);

/* Sets the optimizer's base learning rate for the steps to come. */
void tr_train_session_set_learning_rate(tr_train_session *s, float lr);

/* The optimizer's state: its moments share the parameters' layout. */
const tr_optimizer *tr_train_session_optimizer(const tr_train_session *s);

/* Sets the optimizer's state, to continue a run: the moments m and v
 * (buffers of the model's layout) and the steps taken so far. */
void tr_train_session_set_optimizer(tr_train_session *s, const float *m, const float *v, long step);

/* Runs epoch `epoch` from where *p stands.  Before each step, if *stop is
 * nonzero (stop may be NULL), it stops; a step once started is finished.
 * Returns 0 when the epoch is complete (*loss and *accuracy are its means),
 * 1 when stopped early (*p tells where), -1 on error as tr_train_epoch. */
int tr_train_epoch_from(tr_train_session *s, const tr_dataset *data, int epoch,
                        tr_epoch_progress *p,
                        const volatile sig_atomic_t *stop, double *loss, double *accuracy,
                        tr_train_progress_fn progress, void *ctx, tr_error *err);

/* One epoch over data, visiting the samples in an order drawn from the seed
 * and the epoch number (1-based) alone.  Fills *loss and *accuracy with the
 * epoch's means.  progress may be NULL.  Fails on an empty dataset, when out
 * of memory for the sample order (allocated once, at the first epoch), and when
 * a step's loss is not finite: that step is not applied, so the parameters are
 * those after the last good step, and the message names the epoch and step.
 * Also fails when the model's input is not the images' size or its classes
 * are fewer than the labels'. */
int tr_train_epoch(tr_train_session *s, const tr_dataset *data, int epoch, double *loss,
                   double *accuracy, tr_train_progress_fn progress, void *ctx, tr_error *err);

/* The mean gradient of the loss over samples idx[0..n) of data (n at most the
 * batch size), computed exactly as a training step computes it (shards on the
 * session's threads, reduced in shard order), without updating anything.
 * grad: a buffer of the model's length; *loss: the mean loss. */
int tr_train_gradient(tr_train_session *s, const tr_dataset *data, const uint32_t *idx,
                      uint32_t n, float *grad, double *loss, tr_error *err);

/* Whether the data set d fits m: images of m's input shape (rows, columns and
 * channels; only the count of values for a model of a flat input, as
 * version-1 files have) and labels below m's classes; the message names
 * images or labels (the files' names) and the first item that does not. */
int tr_model_check_data(const tr_model *m, const tr_dataset *d, const char *images,
                        const char *labels,
                        tr_error *err);

/* Evaluation of models of one shape on `threads` threads, with workspaces
 * allocated once: a training run evaluates every epoch without allocating. */
typedef struct tr_evaluator tr_evaluator;

/* An evaluator for models of m's layers (m itself or a copy). */
int tr_evaluator_new(tr_evaluator **out, const tr_model *m, int threads, tr_error *err);
void tr_evaluator_free(tr_evaluator *e);

/* The label smoothing its losses use from now on (0 when new), as a model
 * trained with it is judged in Keras. */
void tr_evaluator_set_label_smoothing(tr_evaluator *e, float ls);

/* Mean loss and accuracy of m (of the evaluator's layers) over d; pred (if not
 * NULL, [d->n]) receives each sample's predicted class.  Samples are taken in
 * fixed chunks whose sums are added in order, so the result is the same for
 * any thread count.  Fails when out of memory (its per-chunk sums grow with the
 * largest dataset seen) and when d does not fit m (as for training). */
int tr_evaluator_run(tr_evaluator *e, const tr_model *m, const tr_dataset *d, double *loss,
                     double *accuracy, uint8_t *pred, tr_error *err);

/* tr_evaluator_new, tr_evaluator_run and tr_evaluator_free in one call. */
int tr_evaluate(const tr_model *m, const tr_dataset *d, int threads, double *loss,
                double *accuracy, uint8_t *pred, tr_error *err);

#endif
