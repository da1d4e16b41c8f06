/* state.h - training.state, everything needed to continue a run exactly.
 *
 * Version 6, little-endian, like model.ckpt (see ckpt.h), with the CRC-32 of
 * every byte before it at the end:
 *   magic "TRNRSTAT", u32 version, u32 byte-order tag 0x01020304, u32 4
 *   the model's architecture, as in model.ckpt from its offset 20 (input
 *     shape, classes, N layers and their records, the tensor table, the
 *     class names)
 *   configuration: u64 seed, u32 batch size,
 *     u32 shards, u32 epochs, f64 learning rate, f64 validation split,
 *     u32 training samples, u32 validation samples,
 *     u32 n + n bytes: the data directory,
 *     u32 image rows, u32 image columns, u32 the data's fingerprint (the
 *       CRC-32 of the training image file's decompressed bytes followed by
 *       the training label file's; from version 2),
 *     from version 6: u32 n + n bytes: the test data directory (n 0: none
 *       named), u32 --image-size rows and columns (0: none), u32 --color's
 *       channels (0: chosen by the data)
 *   progress: u32 the epoch in progress or next to run (1-based; epochs + 1
 *     once the run is complete), u64 batches of it done, f64 the summed loss
 *     of their samples (a sum over samples, not a sum of batch means),
 *     u64 their samples classified right, u64 their samples, u64 Adam steps
 *     taken since the run began
 *   history: u32 rows (the epochs completed: epoch in progress - 1), each
 *     u32 epoch + 6 f64 (loss, accuracy, val_loss, val_accuracy, seconds,
 *     learning rate; versions 1 and 2 have 5, without the rate)
 *   callbacks (from version 3): u32 flags (1 early stopping, 2 restore the best
 *     weights, 4 save the best model, 8 reduce the rate on a plateau), u32
 *     monitor (0 val_loss, 1 val_accuracy, 2 loss, 3 accuracy), u32 patience,
 *     f64 min_delta, f64 factor, u32 rate patience, f64 rate min_delta, u32
 *     cooldown, f64 min_lr; then their state (callbacks.h): f64 best, u32
 *     best epoch, u32 wait, u32 stopped epoch, f64 best saved, u32 epoch
 *     saved, f64 the rate rule's best, u32 its wait, u32 cooldown left, f32
 *     the learning rate now
 *   optimizer (from version 5; before it, adam with Keras' defaults): u32
 *     kind (0 adam, 1 adamw, 2 sgd, 3 rmsprop), f32 beta1, f32 beta2, f32
 *     epsilon, f32 momentum, u32 Nesterov (0 or 1), f32 rho, f32 weight
 *     decay, u32 schedule (0 constant, 1 cosine, 2 exponential, 3 onecycle),
 *     f64 warm-up epochs, f64 decay rate, f32 label smoothing
 *   u64 P, then P float32 parameters, P float32 first moments and P float32
 *     second moments (the optimizer's slots m and v, optimizer.h), each in
 *     model.ckpt's tensor order; then, with early
 *     stopping restoring the best weights and a best epoch, P float32: its
 *     parameters
 *   u32 CRC-32
 * Version 5 is version 6 without the class names and the data's settings,
 * version 4 is version 5 without the optimizer block, version 3 is version 4
 * without the tensor table.  Version 2 has, instead
 * of the architecture, u32 L dense layers and their
 * L + 1 sizes (as model.ckpt version 1); version 1 is version 2 without the
 * three u32 after the data directory.  Both still load (version 1's data then
 * checked by sample counts alone).
 * The shuffle of an epoch derives from the seed and the epoch number, and the
 * arithmetic from the shard count, so nothing else is needed to continue
 * bit for bit. */
#ifndef TRAINER_STATE_H
#define TRAINER_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "callbacks.h"
#include "dataset.h"
#include "error.h"
#include "epoch.h"
#include "model.h"
#include "optimizer.h"

#define STATE_VERSION 6

/* A run's settings and progress; the model itself travels beside it. */
typedef struct {
    uint64_t seed;
    int batch_size, shards, epochs;
    double lr, validation_split;
    uint32_t n_train, n_val;   /* to check that the data is the same */
    char data_dir[4096];
    uint32_t rows, cols;       /* the images' shape (0 in version 1 files) */
    uint32_t fingerprint;      /* dataset.fingerprint of the training data */
    int has_fingerprint;       /* 0 for version 1 files, which have none */
    char test_dir[4096];       /* --test-data, or "" (from version 6) */
    int image_rows, image_cols; /* --image-size, or 0 (from version 6) */
    int image_channels;        /* --color: 1, 3, or 0 (from version 6) */
    int epoch;                 /* the epoch in progress or next to run */
    tr_epoch_progress progress;   /* where that epoch stands */
    long opt_step;             /* the optimizer's steps taken since the run began */
    tr_optimizer_hparams opt;     /* its kind and settings (opt.lr is lr) */
    float label_smoothing;
    int n_history;
    tr_epoch_stats *history;      /* [n_history], owned */
    tr_callback_config callbacks; /* the run's callbacks (all off before version 3) */
    tr_callback_state cb;         /* where their rules stand */
    float *best_weights;       /* the weights EarlyStopping keeps (a buffer of the
                                  model's layout), or NULL; owned by a decoded state */
} tr_train_state;

/* Encodes st with the parameters of m and the moments of opt into a new
 * buffer (*data, freed by the caller).  Fails, naming the first, on a
 * parameter or moment that is not finite, or a second moment below 0: the
 * state would not load. */
int tr_state_encode(const tr_train_state *st, const tr_model *m, const tr_optimizer *opt,
                    uint8_t **data,
                    size_t *len, tr_error *err);

/* Decodes a state image: fills st (free st->history, and st->best_weights
 * with tr_model_buffer_free), a new model m (free
 * with tr_model_free) and new moment buffers *m1, *m2 of m's padded layout (free
 * with tr_model_buffer_free).  name is used in messages. */
int tr_state_decode(tr_train_state *st, tr_model *m, float **m1, float **m2, const uint8_t *data,
                    size_t len, const char *name, tr_error *err);

/* Reads and decodes path. */
int tr_state_load(tr_train_state *st, tr_model *m, float **m1, float **m2, const char *path,
                  tr_error *err);

#endif
