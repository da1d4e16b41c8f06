/* layer_kinds.h - what a module gives to make a kind of layer: the table in
 * layer.c holds one of these per kind, and layer.h's functions go through
 * it.  The functions are those of layer.h, with the same contracts; a kind
 * leaves out (NULL) what it has no use for: a head has no forward pass, a
 * layer without parameters no init. */
#ifndef TRAINER_LAYER_KINDS_H
#define TRAINER_LAYER_KINDS_H

#include "layer.h"
#include "layer_trainer.h"

typedef struct {
    const char *name;
    const char *keras;  /* Keras' class name: "Conv2D" */
    int head;
    int reads_images; /* can take the model's input as image bytes */
    int (*build)(layer *l, tr_error *err);
    /* words: LAYER_HYPER_WORDS, zeroed before encode; decode sets the
     * hyper-parameters (l is zeroed but for its kind) and checks them. */
    void (*encode)(const layer *l, uint32_t *words);
    int (*decode)(layer *l, const uint32_t *words, tr_error *err);
    size_t (*work_bytes)(const layer *l, int max_n);
    void (*work_init)(const layer *l, void *mem, int max_n);
    void (*init)(const layer *l, float *params, uint64_t seed);
    void (*forward)(const layer *l, float *out, const layer_input *in, const float *params,
                    void *work, int n, const layer_pass *pass);
    void (*backward)(const layer *l, float *d_in, float *grad, float *d_out, const float *in,
                     const float *out, const float *params, void *work, int n);
    double (*loss)(const layer *l, float *d_in, const float *in, const uint8_t *labels, int n,
                   float scale, int *correct);
    double (*predict)(const layer *l, uint8_t *pred, const float *in, const uint8_t *labels,
                      int n, int *correct);
    /* The training specialisation for this layer, or NULL to train it by
     * shards of samples like any other (layer_trainer.h). */
    const layer_trainer_ops *(*trainer)(const layer *l);
} layer_ops;

extern const layer_ops dense_layer_ops;
extern const layer_ops softmax_layer_ops;
extern const layer_ops conv2d_layer_ops;
extern const layer_ops maxpool2d_layer_ops;
extern const layer_ops flatten_layer_ops;
extern const layer_ops dropout_layer_ops;

#endif
