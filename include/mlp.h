/* mlp.h - the notebook's kind of model, told by its widths: dense layers
 * with ReLU between them and a softmax head (tr_model_init builds it).  The
 * command line's --hidden and the files' layer sizes speak in these terms. */
#ifndef TRAINER_MLP_H
#define TRAINER_MLP_H

#include <stddef.h>

#include "error.h"

#define MLP_MAX_LAYERS 8 /* dense layers, output layer included */
#define MLP_MAX_WIDTH 65536

typedef struct {
    int n_layers;                  /* dense layers, the output layer included */
    int sizes[MLP_MAX_LAYERS + 1]; /* sizes[0] inputs ... sizes[n_layers] classes */
} tr_mlp_shape;

/* Builds a shape from the input size, a list of hidden widths and the number
 * of classes.  Fails on more than MLP_MAX_LAYERS layers or a width outside
 * 1..MLP_MAX_WIDTH. */
int tr_mlp_shape_make(tr_mlp_shape *s, int inputs, const int *hidden, int n_hidden,
                      int classes, tr_error *err);

/* Parses "128,32" (or "" for none) into widths; fills *n. */
int tr_mlp_parse_hidden(const char *text, int *widths, int *n, tr_error *err);

/* Writes "784-128-32-10" into buf. */
void tr_mlp_shape_format(const tr_mlp_shape *s, char *buf, size_t size);

#endif
