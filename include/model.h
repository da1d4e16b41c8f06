/* model.h - a model: a sequence of layers (layer.h), the last one its head,
 * and one buffer that holds every layer's parameters.
 *
 * Each parameter tensor starts on a 64-byte boundary (its offset is padded to
 * MODEL_ALIGN floats); the padding stays zero.  Every buffer of the same
 * length (gradients, Adam's moments, per-shard gradients) shares the layout,
 * so zeroing, reducing, updating and saving are single loops, and a layer's
 * l->offset[t] finds its tensor t in any of them. */
#ifndef TRAINER_MODEL_H
#define TRAINER_MODEL_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "classes.h"
#include "error.h"
#include "layer.h"
#include "mlp.h"

#define MODEL_MAX_LAYERS 32 /* the head included */
#define MODEL_ALIGN 16      /* floats: 64 bytes, one cache line */
#define MODEL_MAX_INPUT (1L << 24) /* values in one sample */

/* How `trainer predict` fits a user's picture to the model's input: as
 * MNIST's digits were made (image.h: the ink cropped, scaled into the
 * field's middle and centred), for models of IDX data; or resized whole,
 * as the pictures of a folder were when the model trained on them. */
typedef enum { MODEL_FIT_DIGIT = 0, MODEL_FIT_RESIZE = 1 } tr_model_fit;

typedef struct {
    tr_tensor_shape input;   /* one sample */
    int n_layers;         /* the head included */
    tr_layer layer[MODEL_MAX_LAYERS];
    size_t len;           /* floats in the buffer, padding included */
    float *params;        /* [len], owned, 64-byte aligned */
    tr_model_fit fit;        /* what its pictures were */
    char class_names[CLASS_NAMES_MAX]; /* of its data (classes.h), or "" */
} tr_model;

/* What one block of up to max_n samples needs on its way through a model.
 * act[l] is layer l's output, delta[l] the loss gradient there (none for the
 * head). */
typedef struct {
    int max_n;
    float *x;                         /* [max_n][input size], for inputs given as floats */
    uint8_t *y;                       /* [max_n]: labels */
    const uint8_t **rows;             /* [max_n]: image addresses, for inputs given as bytes */
    float *act[MODEL_MAX_LAYERS];     /* [max_n][layer l's out size] */
    float *delta[MODEL_MAX_LAYERS];   /* likewise */
    void *work[MODEL_MAX_LAYERS];     /* layer l's workspace (tr_layer_work_bytes) */
    double *sums[MODEL_MAX_LAYERS];   /* [tr_layer_batch_sums], for layers of batch
                                         statistics: the block's sums */
    void *block;                      /* the one allocation behind all of them */
} tr_model_work;

/* A model of n_layers layers (the head last) on inputs of shape `input`:
 * each of layers[] gives its kind and hyper-parameters, the rest is derived
 * (tr_layer_build).  Allocates the parameters (all zero).  Fails, naming the
 * layer, on a stack that cannot be built.  Free with tr_model_free. */
int tr_model_init(tr_model *m, tr_tensor_shape input, const tr_layer *layers, int n_layers,
                  tr_error *err);
void tr_model_free(tr_model *m);

/* tr_model_init in two steps, for a reader that must check a file's length
 * against the parameters before it allocates them: tr_model_define builds the
 * layers and their layout (m->params NULL; nothing to free), tr_model_alloc the
 * parameters. */
int tr_model_define(tr_model *m, tr_tensor_shape input, const tr_layer *layers, int n_layers,
                    tr_error *err);
int tr_model_alloc(tr_model *m, tr_error *err);

/* The notebook's kind of model from its widths (mlp.h), on inputs of shape
 * input (of sizes[0] values): dense layers with ReLU between them,
 * sizes[n_layers] units in the last, and a softmax head. */
int tr_model_init_mlp(tr_model *m, tr_tensor_shape input, const tr_mlp_shape *s, tr_error *err);
int tr_model_define_mlp(tr_model *m, tr_tensor_shape input, const tr_mlp_shape *s, tr_error *err);

/* The widths of a model that is such a stack; fails on any other. */
int tr_model_mlp_shape(const tr_model *m, tr_mlp_shape *s, tr_error *err);

/* Parses a layer spec, Keras' layers by name with their main arguments,
 * separated by commas:
 *   conv2d(FILTERS,KERNEL[,same|valid][,relu|linear])  (valid, linear)
 *   maxpool2d(POOL)   flatten   dropout(RATE)
 *   dense(UNITS[,relu|linear])   and last  dense(CLASSES,softmax)
 * into out[] (kind and hyper-parameters, the softmax head appended; room
 * for MODEL_MAX_LAYERS), *n the layers.  Fails with a message naming the bad
 * item ("'dropout(1.5)': dropout rate 1.5 (from 0 to 1, 1 excluded)");
 * shapes are checked when the model is built on its input. */
int tr_model_parse_layers(const char *text, tr_layer *out, int *n, tr_error *err);

/* A model by name, as --model gives it, with the batch size, validation
 * split and epochs its example trains with: "mlp", the notebook's
 * dense(128,relu), dense(32,relu), dense(classes,softmax), batch 32, split
 * 0.2, 25 epochs; "convnet", Keras' mnist_convnet, batch 128, split 0.1, 15
 * epochs. */
typedef struct {
    const char *name;
    const char *layers; /* a spec with %d for the classes */
    int batch_size;
    double validation_split;
    int epochs;
    /* How it trains besides: the optimizer's and the schedule's names
     * (optimizer.h; NULL: adam, constant), the peak rate (0: the
     * optimizer's default) and the label smoothing. */
    const char *optimizer;
    double lr;
    const char *schedule;
    double label_smoothing;
} tr_model_preset;

/* The preset named `name` into *p; fails on a name that is none. */
int tr_model_preset_find(const char *name, const tr_model_preset **p, tr_error *err);

/* The preset's layer spec for `classes` classes into buf; -1 when cut short. */
int tr_model_preset_layers(const tr_model_preset *p, int classes, char *buf, size_t size);

/* The model as "28x28x1 conv2d(32,3,relu) maxpool2d(2) ... dense(10,softmax)"
 * into buf; -1 when cut short. */
int tr_model_format_layers(const tr_model *m, char *buf, size_t size);

/* Keras' model.summary() to f: each layer's name, output shape and
 * parameters, and their total; a stack of dense layers as the notebook's
 * ("Model: 3 dense layers", its Flatten first). */
void tr_model_summary(const tr_model *m, FILE *f);

/* Whether a and b have the same input shape and the same layers. */
int tr_model_same_layers(const tr_model *a, const tr_model *b);

/* Each layer's initialisation (Keras' glorot-uniform kernels, zero biases),
 * layer l drawing from its own stream of seed. */
void tr_model_init_glorot(tr_model *m, uint64_t seed);

/* Real parameters (104,938 for 784-128-32-10), padding excluded. */
size_t tr_model_param_count(const tr_model *m);

/* The classes the head tells apart. */
int tr_model_classes(const tr_model *m);

/* Lists the real tensors of buf (a buffer of m's layout) in file order (layer
 * by layer, each layer's tensors in order), skipping the padding: ptr[k] and
 * count[k] for k below the returned number.  ptr and count hold
 * MODEL_MAX_LAYERS * LAYER_MAX_TENSORS. */
int tr_model_tensors(const tr_model *m, float *buf, float **ptr, size_t *count);

/* Fails, naming the first value that is NaN or infinite among the real
 * tensors of buf (a buffer of m's layout): "NAME: WHAT of layer 2 (dense_2),
 * weight [13][5], is nan".  A model read from a file must pass: an infinite
 * weight on a pixel that is always 0 would even go unnoticed in training. */
int tr_model_check_finite(const tr_model *m, const float *buf, const char *name, const char *what,
                          tr_error *err);

/* The same, and fails on a value below 0 ("is negative (-0.5)"): Adam's
 * second moments, whose square root the update takes. */
int tr_model_check_nonnegative(const tr_model *m, const float *buf, const char *name,
                               const char *what, tr_error *err);

/* Allocates a 64-byte aligned, zeroed float buffer of len floats; NULL when out
 * of memory.  Free with tr_model_buffer_free. */
float *tr_model_buffer_new(size_t len);
void tr_model_buffer_free(float *buf);

/* Bytes of a workspace for blocks of max_n samples: every layer's output and
 * its gradient, and the layers' own workspaces. */
double tr_model_work_bytes(const tr_model *m, int max_n);

/* The most working memory one workspace may take: half of the machine's
 * physical memory. */
double tr_model_memory_limit(void);

/* A workspace for blocks of up to max_n samples.  Fails, naming the need,
 * when it would take more than tr_model_memory_limit(): a small checkpoint can
 * describe layers whose outputs fill gigabytes. */
int tr_model_work_init(tr_model_work *w, const tr_model *m, int max_n, tr_error *err);
void tr_model_work_free(tr_model_work *w);

/* The input of a block as the first layer takes it: the images w->rows
 * (scaled by 1 / divisor) or, with rows NULL, the floats w->x. */
tr_layer_input tr_model_input(const tr_model_work *w, const uint8_t *const *rows, float divisor);

/* The first layer's input for a block of n: in itself, or, when it holds
 * image bytes that the first layer cannot read, their floats in w->x. */
tr_layer_input tr_model_first_input(const tr_model *m, tr_model_work *w, const tr_layer_input *in,
                                    int n);

/* The forward pass of n samples through every layer but the head (pass: as
 * tr_layer_forward, NULL for inference); returns the head's input (the
 * logits), w->act[n_layers - 2]. */
const float *tr_model_forward(const tr_model *m, tr_model_work *w, const tr_layer_input *in, int n,
                              const tr_layer_pass *pass);

/* The class probabilities of n samples in inference: the softmax of the
 * head's input, in float (its largest value subtracted first, as ONNX's
 * Softmax computes it).  probs: [n][classes] */
void tr_model_probabilities(const tr_model *m, tr_model_work *w, const tr_layer_input *in, int n,
                            float *probs);

/* The k likeliest of `classes` probabilities into top (k <= classes),
 * likeliest first, the lower class first on ties.  top: [k] */
void tr_model_top_classes(const float *probs, int classes, int *top, int k);

/* The backward pass after a training tr_model_forward of the same block, with
 * its labels:
 * returns the summed loss; grad (a buffer of m's layout) receives scale times
 * the gradient of the summed loss (it overwrites); adds to *correct the
 * samples classified right. */
double tr_model_backward(const tr_model *m, tr_model_work *w, const tr_layer_input *in,
                         const uint8_t *labels, int n, float scale, float *grad, int *correct);

#endif
