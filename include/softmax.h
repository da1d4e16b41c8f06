/* softmax.h - the kernels of the softmax head: softmax fused with the
 * cross-entropy loss, on a block of n rows of logits (layer_softmax.c). */
#ifndef TRAINER_SOFTMAX_H
#define TRAINER_SOFTMAX_H

#include <stdint.h>

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
