/* layer.h - the kinds of layer a model is made of, and what each computes.
 *
 * A layer sees a block of n samples, each a tensor of a known shape: height x
 * width x channels, channels fastest (Keras' channels_last); a flat vector of
 * c values is 1 x 1 x c.  Each kind of layer is one module (layer_dense.c,
 * layer_conv2d.c, ...) and one line of the table in layer.c: it gives its output
 * shape from its input shape, the sizes of its parameter tensors, Keras'
 * initialisation, the bytes of per-block workspace it keeps between its
 * forward and backward passes, and the two passes.
 *
 * Parameters live in the model's one buffer (model.h): a layer's tensors are
 * found at l->offset[t] in it, and in every buffer of the same layout
 * (gradients, Adam's moments).  A tensor is trainable or not: one that is
 * not (a moving statistic) is saved and exported, never given to the
 * optimizer nor reduced as a gradient. */
#ifndef TRAINER_LAYER_H
#define TRAINER_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define LAYER_MAX_TENSORS 4
#define LAYER_MAX_WIDTH 65536

typedef struct {
    int h, w, c;
} tr_tensor_shape;

/* Values in one sample's tensor: h * w * c. */
long tr_tensor_size(tr_tensor_shape s);

/* A flat vector of n values: 1 x 1 x n. */
static inline tr_tensor_shape tensor_flat(int n)
{
    return (tr_tensor_shape){1, 1, n};
}

/* A kind is the number the files give it (the table in layer.c says which
 * module each is); a number is never reused.  Three have names here because
 * the library builds them itself: the notebook's stacks of dense layers and
 * their softmax head. */
typedef uint32_t tr_layer_kind;
enum { LAYER_DENSE = 1, LAYER_SOFTMAX = 2 };

/* The hyper-parameters of a layer: this many u32 words, each kind's own
 * (its module reads them), 0 where unused; the files hold them as they are. */
#define LAYER_HYPER_WORDS 7

/* The first two tensors of Dense and Conv2D: the kernel, then the bias. */
enum { DENSE_W, DENSE_B };

/* One layer of a model: its kind and hyper-parameters (set by whoever builds
 * the model: the spec parser, a file reader), then what tr_layer_build derives
 * from them. */
typedef struct {
    tr_layer_kind kind;
    uint32_t hp[LAYER_HYPER_WORDS];

    int index;             /* position in the model, from 0 */
    tr_tensor_shape in, out;  /* one sample's input and output */
    int reads_images;      /* its input is the model's: image bytes, not floats */
    /* Set by tr_model_define: this layer ends in a ReLU whose derivative the
     * next layer's backward pass applies (a max pooling, which reads the
     * maxima anyway), sparing a pass over the gradient; and the next
     * layer's side of it. */
    int relu_by_next, relu_of_prev;
    int n_tensors;         /* parameter tensors */
    size_t count[LAYER_MAX_TENSORS];  /* floats in each */
    /* Whether the optimizer trains each; one that is not (a moving mean) is
     * saved and exported like the others, and a training forward pass may
     * update it. */
    uint8_t trainable[LAYER_MAX_TENSORS];
    size_t offset[LAYER_MAX_TENSORS]; /* where each starts in a buffer of the model's layout */
    size_t begin, end;     /* its floats in that buffer, padding included: [begin, end) */
} tr_layer;

/* Tensor t of layer l in buf, a buffer of the model's layout: the named
 * views, layer_tensor(l, m->params, DENSE_W) for a dense layer's weights. */
static inline float *layer_tensor(const tr_layer *l, float *buf, int t)
{
    return buf + l->offset[t];
}

/* What a forward pass knows beyond its inputs.  Randomness (dropout's mask)
 * derives from these alone, so that results depend on neither the threads
 * nor the order of work. */
typedef struct {
    int training;    /* a training step (dropout drops), else inference */
    uint64_t seed;
    int epoch;       /* 1-based */
    long step;       /* the batch within the epoch, 0-based */
    uint32_t first;  /* the block's first sample's position in its batch */
    /* Backward: add the parameter gradients to grad (the block continues
     * the one before, in sample order) rather than overwrite them; only
     * for a layer that is tr_layer_per_sample. */
    int accumulate;
    /* A layer of batch statistics (tr_layer_batch_sums) in training: its sums
     * over the whole batch of batch_n samples, added in shard order; the
     * forward pass reads the forward ones, the backward pass the backward
     * ones (and what its forward pass kept in its workspace). */
    const double *batch;
    uint32_t batch_n;
} tr_layer_pass;

/* A block of n samples entering a layer: x ([n][in size]) or, at the model's
 * input, rows (each sample's image, [in size] bytes, the value of a pixel
 * being its byte / divisor); the other is NULL. */
typedef struct {
    const float *x;
    const uint8_t *const *rows;
    float divisor;
} tr_layer_input;

/* The name of the kind as the layer specs write it: "dense", "conv2d", ...;
 * "unknown" for a number that is no kind. */
const char *tr_layer_kind_name(tr_layer_kind kind);

/* The kind's class name in Keras, as its model summary shows it: "Dense",
 * "Conv2D", "MaxPooling2D", ...; "Unknown" for a number that is no kind. */
const char *tr_layer_kind_keras_name(tr_layer_kind kind);

/* Checks the hyper-parameter words of a layer of kind `kind` (a number read
 * from a file) and sets l to that layer, nothing derived yet: fails, saying
 * what is wrong, on an unknown kind or words out of range. */
int tr_layer_from_words(tr_layer *l, uint32_t kind, const uint32_t words[LAYER_HYPER_WORDS],
                        tr_error *err);

/* The layer as a layer spec writes it ("conv2d(32,3,relu)") into buf; last:
 * it is the one before the head (dense(10,softmax)). */
void tr_layer_format(const tr_layer *l, int last, char *buf, size_t size);

/* Multiply-adds of one sample's forward pass (0 for a layer that does
 * none), for the benchmarks' FLOP counts. */
double tr_layer_forward_macs(const tr_layer *l);

/* Sets l->out and the parameter tensors' counts from l->in and the
 * hyper-parameters; fails, saying what is wrong, on a layer that cannot take
 * that input ("dense with 0 units"). */
int tr_layer_build(tr_layer *l, tr_error *err);

/* Whether the layer's passes over a block give the bits of its passes over
 * the block's parts in order (the backward ones adding to the gradient,
 * layer_pass.accumulate), so that a step may take a few samples at a time
 * through several layers while their data are in the cache. */
int tr_layer_per_sample(const tr_layer *l);

/* Marks two built layers in a row: the ReLU derivative that prev's backward
 * pass can leave to next's (relu_by_next, relu_of_prev). */
void tr_layer_link(tr_layer *prev, tr_layer *next);

/* Whether the kind is a model's head: the last layer, which turns the
 * previous layer's output into a loss and its gradient. */
int tr_layer_is_head(const tr_layer *l);

/* Bytes of workspace the layer keeps for a block of up to max_n samples (0
 * for none), and how to set it up in mem (that many bytes, 64-byte aligned). */
size_t tr_layer_work_bytes(const tr_layer *l, int max_n);
void tr_layer_work_init(const tr_layer *l, void *mem, int max_n);

/* Keras' initialisation of the layer's tensors in params (a buffer of the
 * model's layout), from the layer's own random stream of seed. */
void tr_layer_init(const tr_layer *l, float *params, uint64_t seed);

/* The forward pass of n samples; pass NULL for inference.
 * out: [n][out size]   params: the model's buffer   work: the layer's workspace */
void tr_layer_forward(const tr_layer *l, float *out, const tr_layer_input *in, const float *params,
                      void *work, int n, const tr_layer_pass *pass);

/* The backward pass after a forward pass of the same block.  d_out: [n][out
 * size], the loss gradient at the layer's output, which the layer may
 * overwrite (a fused ReLU applies its derivative in place).  Writes the
 * layer's parameter gradients into grad (a buffer of the model's layout;
 * they overwrite) and, unless d_in is NULL, the gradient at its input.
 * d_in: [n][in size]   in: [n][in size] floats, NULL at the model's input
 * out: [n][out size], the forward pass's output */
void tr_layer_backward(const tr_layer *l, float *d_in, float *grad, float *d_out, const float *in,
                       const float *out, const float *params, void *work, int n,
                       const tr_layer_pass *pass);

/* Batch statistics (batch normalization): a layer whose training passes
 * read sums over the whole batch, which a step splits into shards.  It
 * gives the doubles of its sums (0: a layer of no such kind); each shard
 * fills its own from its samples, the forward ones before the forward pass
 * and the backward ones (from the gradient at its output) before the
 * backward pass; the step adds them up over the shards in shard order and
 * hands the batch's to the passes (layer_pass.batch).  Once per training
 * step, the batch's forward sums update the layer's state (its moving
 * statistics, in params). */
int tr_layer_batch_sums(const tr_layer *l);
void tr_layer_forward_sums(const tr_layer *l, double *sums, const float *in, int n);
void tr_layer_backward_sums(const tr_layer *l, double *sums, const float *d_out, const float *in,
                            void *work, int n);
void tr_layer_batch_update(const tr_layer *l, float *params, const double *batch, uint32_t batch_n);

/* A head's loss over n samples with labels ([n]), smoothed by ls (Keras'
 * label_smoothing; 0: none): returns the summed loss; d_in (the gradient at
 * its input, [n][in size]) receives scale times the gradient of the summed
 * loss; adds to *correct the samples whose arg max is their label. */
double tr_layer_loss(const tr_layer *l, float *d_in, const float *in, const uint8_t *labels, int n,
                     float scale, float ls, int *correct);

/* The same loss without gradients; pred ([n], or NULL) receives each
 * sample's arg max (the lowest class on ties). */
double tr_layer_predict(const tr_layer *l, uint8_t *pred, const float *in, const uint8_t *labels,
                        int n, float ls, int *correct);

#endif
