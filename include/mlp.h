/* mlp.h - a multilayer perceptron: dense layers, ReLU between them, softmax
 * output fused with the cross-entropy loss.
 *
 * All parameters live in one buffer.  Each tensor starts on a 64-byte boundary
 * (its offset is padded to MLP_ALIGN floats); the padding stays zero.  Every
 * buffer of the same length (gradients, Adam moments, per-shard gradients)
 * shares the layout, so zeroing, reducing, updating and saving are single
 * loops, and mlp_views() names the tensors of any of them. */
#ifndef TRAINER_MLP_H
#define TRAINER_MLP_H

#include <stddef.h>
#include <stdint.h>

#include "dense.h"
#include "error.h"

#define MLP_MAX_LAYERS 8 /* dense layers, output layer included */
#define MLP_MAX_WIDTH 65536
#define MLP_ALIGN 16     /* floats: 64 bytes, one cache line */

typedef struct {
    int n_layers;                  /* dense layers, the output layer included */
    int sizes[MLP_MAX_LAYERS + 1]; /* sizes[0] inputs ... sizes[n_layers] classes */
} mlp_shape;

typedef struct {
    float *w; /* [in][out] */
    float *b; /* [out] */
} dense_view;

typedef struct {
    mlp_shape shape;
    size_t len;                         /* floats in the buffer, padding included */
    float *params;                      /* [len], owned, 64-byte aligned */
    dense_view layer[MLP_MAX_LAYERS];   /* views into params */
} mlp;

/* Activations of one block of samples.  act[l] is the output of layer l (after
 * ReLU for hidden layers, the logits for the last); delta[l] the loss gradient
 * at layer l's pre-activation output. */
typedef struct {
    int max_n;
    float *x;                       /* [max_n][sizes[0]] */
    uint8_t *y;                     /* [max_n] */
    float *act[MLP_MAX_LAYERS];     /* [max_n][sizes[l + 1]] */
    float *delta[MLP_MAX_LAYERS];   /* [max_n][sizes[l + 1]] */
    dense_inputs inputs[MLP_MAX_LAYERS]; /* layer l's input block, listed */
    const uint8_t **rows;           /* [max_n]: the block's images, for listing bytes */
    float *wt;                      /* scratch: the widest hidden layer's w transposed */
    void *block;                    /* the one allocation behind all of them */
} mlp_work;

/* Builds a shape from the input size, a list of hidden widths and the number
 * of classes.  Fails on more than MLP_MAX_LAYERS layers or a width outside
 * 1..MLP_MAX_WIDTH. */
int mlp_shape_make(mlp_shape *s, int inputs, const int *hidden, int n_hidden,
                   int classes, tr_error *err);

/* Parses "128,32" (or "" for none) into widths; fills *n. */
int mlp_parse_hidden(const char *text, int *widths, int *n, tr_error *err);

/* Writes "784-128-32-10" into buf. */
void mlp_shape_format(const mlp_shape *s, char *buf, size_t size);

/* Real parameters (104,938 for 784-128-32-10), padding excluded. */
size_t mlp_param_count(const mlp_shape *s);

/* Points views[l] at the tensors of layer l inside buf (of mlp_buffer_len). */
void mlp_views(const mlp_shape *s, float *buf, dense_view *views);

/* Lists the real tensors of a buffer of this shape in file order (per layer,
 * the weights then the biases), skipping the padding: ptr[k] and count[k] for
 * k < the returned number (2 * n_layers). */
int mlp_tensors(const mlp_shape *s, float *buf, float **ptr, size_t *count);

/* Fails, naming the first value that is NaN or infinite among the real
 * tensors of buf (a buffer of shape s): "NAME: WHAT of layer 2 (dense_2),
 * weight [13][5], is nan".  A model read from a file must pass: an infinite
 * weight on a pixel that is always 0 would even go unnoticed in training. */
int mlp_check_finite(const mlp_shape *s, const float *buf, const char *name,
                     const char *what, tr_error *err);

/* Allocates a 64-byte aligned, zeroed float buffer of len floats; NULL when out
 * of memory.  Free with mlp_buffer_free. */
float *mlp_buffer_new(size_t len);
void mlp_buffer_free(float *buf);

/* Allocates the parameters (all zero).  Free with mlp_free. */
int mlp_init(mlp *m, const mlp_shape *s, tr_error *err);
void mlp_free(mlp *m);

/* Glorot-uniform weights, U(-a, a) with a = sqrt(6 / (fan_in + fan_out)),
 * and zero biases; layer l draws from its own stream of seed. */
void mlp_init_glorot(mlp *m, uint64_t seed);

int mlp_work_init(mlp_work *w, const mlp_shape *s, int max_n, tr_error *err);
void mlp_work_free(mlp_work *w);

/* Lists w->x[0..n) as the first layer's input, w->inputs[0].  The passes
 * below start from that list; images stored as bytes can be listed straight
 * from them instead, with dense_inputs_index_bytes (w->rows is there for
 * their addresses). */
void mlp_list_input(const mlp *m, mlp_work *w, int n);

/* Forward pass of the n listed samples through every layer; the logits end
 * in w->act[n_layers - 1]. */
void mlp_forward(const mlp *m, mlp_work *w, int n);

/* The forward pass from layer 1 on, for w->act[0] computed elsewhere (after
 * its ReLU when layer 0 is hidden). */
void mlp_forward_rest(const mlp *m, mlp_work *w, int n);

/* Backward pass after a forward pass, with layer 0's input listed in first
 * and the labels in labels: the loss and the gradients, as below.  grad[0].w
 * may be NULL, which leaves out the first layer's weight gradient (training
 * computes it elsewhere); every other view's w must be a buffer. */
double mlp_backward(const mlp *m, mlp_work *w, const dense_inputs *first,
                    const uint8_t *labels, int n, float scale, const dense_view *grad,
                    int *correct);

/* Forward and backward pass of the n listed samples with labels w->y.  The
 * gradients of scale * (summed loss) overwrite grad (views of a buffer of this
 * shape).  Returns the summed loss; adds to *correct the samples classified
 * right. */
double mlp_forward_backward(const mlp *m, mlp_work *w, int n, float scale,
                            const dense_view *grad, int *correct);

#endif
