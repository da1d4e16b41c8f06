/* softmax.h - the kernels of the softmax head: softmax fused with the
 * cross-entropy loss, on a block of n rows of logits (layer_softmax.c). */
#ifndef TRAINER_SOFTMAX_H
#define TRAINER_SOFTMAX_H

#include <stdint.h>

/* Softmax fused with cross-entropy, stable (the row maximum is subtracted),
 * against the targets y = (1 - ls) onehot(label) + ls / classes (Keras'
 * label_smoothing ls; ls 0: the one-hot labels).
 * d_logits = scale * (softmax(logits) - y).  Returns the sum over the n rows
 * of -sum_c y_c log softmax_c; adds to *correct the rows whose arg max is
 * their label (ties go to the lowest class, as numpy's argmax).
 * d_logits, logits: [n][classes]   labels: [n] */
double tr_softmax_xent(float *d_logits, const float *logits, const uint8_t *labels,
                       int n, int classes, float scale, float ls, int *correct);

/* Arg max of each row (lowest index on ties) and its loss as tr_softmax_xent's,
 * summed over the rows, without gradients.  pred may be NULL. */
double tr_softmax_xent_eval(uint8_t *pred, const float *logits, const uint8_t *labels,
                            int n, int classes, float ls, int *correct);

#endif
