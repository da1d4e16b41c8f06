/* layer_trainer.h - how a layer may take part in a training step other than
 * shard by shard.
 *
 * The step (train.c) splits a batch into shards of samples; each shard's
 * forward and backward passes run on one thread into the shard's own
 * gradient buffer; then the buffers' parameters are cut into as many parts
 * as there are shards, and each part is reduced over the shards in shard
 * order and updated by one thread.  A layer that does nothing else needs
 * none of this.
 *
 * A layer kind may instead hand the step a trainer: then the threads that
 * own a part of its parameters also compute, over that part, the work that
 * needs those parameters (and is cheaper to do where they already are in
 * the cache): its share of the next batch's forward sums after the update,
 * its share of every shard's weight gradient before the reduce.  The shards
 * keep only the factors of that work.  The results must be the bits the
 * plain passes give; the step calls these hooks for every layer that has a
 * trainer, whatever its kind or place. */
#ifndef TRAINER_LAYER_TRAINER_H
#define TRAINER_LAYER_TRAINER_H

#include <stdint.h>

#include "optimizer.h"
#include "error.h"
#include "layer.h"

/* The most shards a trainer takes: no fewer than train.h's TRAIN_MAX_SHARDS. */
#define LAYER_MAX_SHARDS 256

/* What a layer trainer works with: the step's geometry and buffers. */
typedef struct {
    int shards;
    int max_shard;      /* samples in the largest shard */
    int batch_size;
    const size_t *part; /* [shards + 1]: part k is the floats [part[k], part[k + 1]) */
    float divisor;      /* a pixel's value is its byte / divisor */
    float *params;      /* the model's buffer */
    tr_optimizer *opt;
    float *const *grad; /* [shards]: each shard's gradient buffer */
    int ranks, rank;    /* the processes training together (train.h): rank r runs
                           shards and owns parts [r, r + 1) * shards / ranks */
} layer_train_setup;

/* The shards with samples in a batch, in shard order: which[q] is the shard
 * number, g[q] its gradient buffer, for q < ng. */
typedef struct {
    const float *const *g;
    const int *which;
    int ng;
} shard_grads;

/* Sums the shards' gradients over the floats [lo, hi) into out or, with out
 * NULL, applies the optimizer's step with coefficients c there.  What a part
 * of a layer without a trainer gets; trainers use it too. */
void tr_reduce_segment(float *params, tr_optimizer *opt, const shard_grads *g, size_t lo, size_t hi,
                       float *out, const tr_optimizer_coeffs *c);

/* The samples [*lo, *hi) of a batch of bn that make up shard k of shards. */
void tr_shard_range(int k, int shards, uint32_t bn, uint32_t *lo, uint32_t *hi);

typedef struct {
    /* Where the step may cut the buffer near `at` (inside [l->begin,
     * l->end)): a trainer's parts of its tensors are whole rows or groups. */
    size_t (*cut)(const tr_layer *l, size_t at);
    int (*create)(void **ctx, const tr_layer *l, const layer_train_setup *setup, tr_error *err);
    void (*destroy)(void *ctx);
    /* At the start of an epoch, after the optimizer's state may have been
     * set from outside. */
    void (*epoch_start)(void *ctx);
    /* Shard k's n samples of a batch are known (double-buffered: buf 0 or
     * 1): its input, as image rows. */
    void (*stage)(void *ctx, int k, int buf, const uint8_t *const *rows, int n);
    /* Part k's share of the batch in buf (bn samples, every shard staged),
     * from the parameters as they stand: after part k's update for the next
     * batch, or alone before a run's first step. */
    void (*prepare_part)(void *ctx, int k, int buf, uint32_t bn);
    /* Shard k's forward pass: samples [lo, lo + n) of the batch in buf.
     * out: [n][out size] */
    void (*forward)(void *ctx, int k, int buf, float *out, uint32_t lo, int n);
    /* Shard k's backward pass, as tr_layer_backward's: d_out may be
     * overwritten; the gradients the shard computes itself go into grad,
     * its shard buffer; d_in as there. */
    void (*backward)(void *ctx, int k, float *d_in, float *grad, float *d_out,
                     const float *out, int n);
    /* Reduces the layer's floats in part k (thread-safe across parts) into
     * out, or updates them with the optimizer (out NULL, coefficients c),
     * for the batch in buf of bn samples. */
    void (*reduce_part)(void *ctx, int k, const shard_grads *g, float *out,
                        const tr_optimizer_coeffs *c, int buf, uint32_t bn);
    /* With several ranks, stage is called for every shard, and these from
     * one thread of every rank (group.h's collectives).  After the shards'
     * passes: what the parts' owners need of every shard (its factors). */
    void (*share_factors)(void *ctx);
    /* After this rank's parts prepared the batch in buf of bn samples:
     * what every rank's shards need of them (the parts' sums). */
    void (*share_parts)(void *ctx, int buf, uint32_t bn);
    /* The floats [*lo, *hi) of the shards' buffers that reduce_part fills
     * itself from the factors: not sent between ranks. */
    void (*filled)(const tr_layer *l, size_t *lo, size_t *hi);
} layer_trainer_ops;

/* The layer's trainer, or NULL to train it shard by shard: its kind's
 * choice (layer_kinds.h). */
const layer_trainer_ops *tr_layer_trainer(const tr_layer *l);

extern const layer_trainer_ops tr_dense_rows_trainer;

#endif
