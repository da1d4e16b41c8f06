/* dense.h - the kernels of a dense network on a block of n samples.
 *
 * Weights are stored input-major, w[i][o] for input i and output o, so that
 * the inner loops run over contiguous outputs.  Each fast kernel has a plain
 * *_ref twin that is the oracle the tests compare it with. */
#ifndef TRAINER_DENSE_H
#define TRAINER_DENSE_H

#include <stdint.h>

/* out = act(in . w + b); act is ReLU when relu is nonzero, identity otherwise.
 * out: [n][out_dim]   in: [n][in_dim]   w: [in_dim][out_dim]   b: [out_dim] */
void dense_forward(float *out, const float *in, const float *w, const float *b,
                   int n, int in_dim, int out_dim, int relu);
void dense_forward_ref(float *out, const float *in, const float *w, const float *b,
                       int n, int in_dim, int out_dim, int relu);

/* Gradients of a dense layer from the gradient at its (pre-activation) output.
 * They overwrite: d_w = in^T . d_out, d_b = column sums of d_out, and, unless
 * d_in is NULL, d_in = d_out . w^T.
 * d_in: [n][in_dim]   d_w: [in_dim][out_dim]   d_b: [out_dim]
 * d_out: [n][out_dim]   in: [n][in_dim]   w: [in_dim][out_dim] */
void dense_backward(float *d_in, float *d_w, float *d_b, const float *d_out,
                    const float *in, const float *w, int n, int in_dim, int out_dim);
void dense_backward_ref(float *d_in, float *d_w, float *d_b, const float *d_out,
                        const float *in, const float *w, int n, int in_dim,
                        int out_dim);

/* d[k] = 0 where out[k] <= 0: the ReLU's derivative applied in place.
 * d, out: [count] */
void relu_backward(float *d, const float *out, long count);

/* Softmax fused with cross-entropy, stable (the row maximum is subtracted).
 * d_logits = scale * (softmax(logits) - onehot(labels)).  Returns the sum over
 * the n rows of -log softmax[label]; adds to *correct the rows whose arg max is
 * their label (ties go to the lowest class, as numpy's argmax).
 * d_logits, logits: [n][classes]   labels: [n] */
double softmax_xent(float *d_logits, const float *logits, const uint8_t *labels,
                    int n, int classes, float scale, int *correct);

/* Arg max of each row (lowest index on ties) and its -log softmax[label]
 * summed over the rows, without gradients.  pred may be NULL. */
double softmax_xent_eval(uint8_t *pred, const float *logits, const uint8_t *labels,
                         int n, int classes, int *correct);

#endif
