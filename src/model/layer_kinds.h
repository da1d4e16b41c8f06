/* layer_kinds.h - what a module gives to make a kind of layer: the table in
 * layer.c holds one of these per kind, and everything that differs between
 * kinds goes through it: the spec parser and formatter (spec.c), the files'
 * hyper-parameter words, the summary, the exports (files/export.c) and the
 * passes.  The functions are those of layer.h, with the same contracts; a
 * kind leaves out (NULL) what it has no use for: a head has no forward pass,
 * a layer without parameters no init, a layer without arguments no parse. */
#ifndef TRAINER_LAYER_KINDS_H
#define TRAINER_LAYER_KINDS_H

#include <string.h>

#include "layer.h"
#include "layer_trainer.h"

/* ---- Layer specs: "conv2d(32,3,relu)" -------------------------------------- */

/* One item of a spec: its name and up to 4 arguments, as text. */
typedef struct {
    char text[128]; /* the whole item, for messages */
    char name[32];
    char arg[4][32];
    int n_args;
} spec_item;

/* Argument k as a whole number in [lo, hi] into *out; fails naming it as
 * `what` ("'conv2d(0,3)': filters '0' (a whole number from 1 to 4096)"). */
int tr_spec_whole(const spec_item *it, int k, long lo, long hi, uint32_t *out, const char *what,
                  tr_error *err);

/* Argument k as a number in [lo, hi) into *out. */
int tr_spec_fraction(const spec_item *it, int k, double lo, double hi, float *out,
                     const char *what, tr_error *err);

/* The arguments from `from` on as option words: each must be a word of one
 * of the groups (groups[g] a NULL-terminated list), and a group may be given
 * once; choice[g] receives the index of its word in the group, and keeps its
 * value for a group not given.  Fails on an unknown word, or on a second
 * word of a group ("'dense(10,softmax,relu)': 'relu' after 'softmax'"). */
int tr_spec_options(const spec_item *it, int from, const char *const *const *groups, int n_groups,
                    int *choice, tr_error *err);

/* A float hyper-parameter held in a word as its bits (dropout's rate, the
 * augmentation factors), and back. */
static inline float word_float(uint32_t w)
{
    float f;
    memcpy(&f, &w, sizeof f);
    return f;
}

static inline uint32_t float_word(float f)
{
    uint32_t w;
    memcpy(&w, &f, sizeof w);
    return w;
}

/* ---- Exports: a kind's modules in PyTorch and nodes in ONNX ----------------- */

enum { EXPORT_MAX_MODULES = 3, EXPORT_MAX_ATTRS = 3, EXPORT_MAX_PARAMS = 4 };

/* An ONNX attribute: integers, a list of n (list set) or the one v[0], or
 * the float f (is_float set). */
typedef struct {
    const char *name;
    int list, n;
    int64_t v[4];
    int is_float;
    float f;
} export_attr;

/* A tensor of a module: its name in PyTorch ("weight"), the layer's tensor
 * it holds, and its shape as PyTorch lays it out. */
typedef struct {
    const char *name;
    int tensor;
    int nd;
    int64_t dims[4];
} export_param;

/* A module of PyTorch's Sequential and the ONNX node that computes it.  The
 * node's inputs are the value before it, then its parameters in order. */
typedef struct {
    char torch[96];   /* "Conv2d(1, 32, 3, padding=0)" */
    const char *onnx; /* the operator, or NULL for the identity in inference */
    export_attr attr[EXPORT_MAX_ATTRS];
    int n_attrs;
    export_param param[EXPORT_MAX_PARAMS];
    int n_params;
    /* A PyTorch buffer of one int64 that the model has no value for
     * (BatchNorm's num_batches_tracked), or NULL: 0 in safetensors, so that
     * load_state_dict(strict=True) finds it; not in ONNX. */
    const char *count_buffer;
} export_module;

typedef struct {
    export_module mod[EXPORT_MAX_MODULES];
    int n;
} layer_export;

/* A module appended to e: its PyTorch text from fmt, its ONNX operator (NULL
 * for none); returns it, for its attributes and parameters. */
export_module *tr_export_add(layer_export *e, const char *onnx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tr_export_attr_ints(export_module *m, const char *name, int n, const int64_t *v);
void tr_export_attr_int(export_module *m, const char *name, int64_t v);
void tr_export_attr_float(export_module *m, const char *name, float v);
void tr_export_param_add(export_module *m, const char *name, int tensor, int nd,
                         const int64_t *dims);

/* ---- The pooling kinds' window ------------------------------------------- */

/* Their one word: a square window's side, which is also its stride (1 to
 * 64).  tr_window_parse reads "KIND(P)" and tr_window_check a file's word (kind
 * names them in messages); tr_window_build is the shape rule, floor(h / p) x
 * floor(w / p) x c, the rows and columns past the last window left out;
 * tr_window_format writes the spec item; tr_window_export one module, the ONNX
 * operator onnx with kernel_shape and strides P, and PyTorch's torch(P). */
int tr_window_parse(const spec_item *it, const char *kind, uint32_t *hp, tr_error *err);
int tr_window_check(const uint32_t *words, const char *kind, tr_error *err);
int tr_window_build(tr_layer *l, tr_error *err);
void tr_window_format(const tr_layer *l, int last, char *buf, size_t size);
void tr_window_export(const tr_layer *l, const char *onnx, const char *torch, layer_export *e);

/* ---- The table ------------------------------------------------------------- */

typedef struct {
    const char *name;   /* in specs: "conv2d" */
    const char *alias;  /* another name specs may use, or NULL */
    const char *keras;  /* Keras' class name: "Conv2D" */
    int head;
    int reads_images; /* can take the model's input as image bytes */
    /* layer.h's tr_layer_per_sample. */
    int per_sample;
    /* Its backward pass can apply the derivative of a ReLU that ends the
     * layer before (layer.h's relu_of_prev). */
    int takes_relu;
    /* Whether its output is a ReLU's, which ends its forward pass. */
    int (*ends_in_relu)(const tr_layer *l);
    /* Its output holds its input's values in their order (flatten, dropout):
     * a Linear after it reads them in the order of the image before. */
    int keeps_order;
    /* The spec's arguments into hp (zeroed before); *head set when the item
     * also ends the model with the head (dense(10,softmax)). */
    int (*parse)(const spec_item *it, uint32_t *hp, int *head, tr_error *err);
    /* The layer as a spec item; last: it is the one before the head. */
    void (*format)(const tr_layer *l, int last, char *buf, size_t size);
    /* The hyper-parameter words it uses, the first ones; a file's others
     * must be 0. */
    int words;
    /* Checks the words it uses, read from a file. */
    int (*check)(const uint32_t *hp, tr_error *err);
    int (*build)(tr_layer *l, tr_error *err);
    double (*macs)(const tr_layer *l);
    size_t (*work_bytes)(const tr_layer *l, int max_n);
    void (*work_init)(const tr_layer *l, void *mem, int max_n);
    void (*init)(const tr_layer *l, float *params, uint64_t seed);
    void (*forward)(const tr_layer *l, float *out, const tr_layer_input *in, const float *params,
                    void *work, int n, const tr_layer_pass *pass);
    void (*backward)(const tr_layer *l, float *d_in, float *grad, float *d_out, const float *in,
                     const float *out, const float *params, void *work, int n,
                     const tr_layer_pass *pass);
    /* Batch statistics (layer.h's tr_layer_batch_sums): all four or none. */
    int (*batch_sums)(const tr_layer *l);
    void (*forward_sums)(const tr_layer *l, double *sums, const float *in, int n);
    void (*backward_sums)(const tr_layer *l, double *sums, const float *d_out, const float *in,
                          void *work, int n);
    void (*batch_update)(const tr_layer *l, float *params, const double *batch, uint32_t batch_n);
    double (*loss)(const tr_layer *l, float *d_in, const float *in, const uint8_t *labels, int n,
                   float scale, float ls, int *correct);
    double (*predict)(const tr_layer *l, uint8_t *pred, const float *in, const uint8_t *labels,
                      int n, float ls, int *correct);
    /* Its modules; order: the shape whose channel-first flattening gives the
     * order of its input's values in the exported graph (its input itself
     * unless that is a vector some layer flattened). */
    void (*export)(const tr_layer *l, tr_tensor_shape order, layer_export *out);
    /* Parameter p's values in PyTorch's layout into out; NULL: the tensor as
     * it is stored. */
    void (*export_values)(const tr_layer *l, const export_param *p, tr_tensor_shape order,
                          const float *params, float *out);
    /* The training specialisation for this layer, or NULL to train it by
     * shards of samples like any other (layer_trainer.h). */
    const layer_trainer_ops *(*trainer)(const tr_layer *l);
} layer_ops;

/* The kind's entry in the table, or NULL for a number that is no kind. */
const layer_ops *tr_layer_kind_ops(tr_layer_kind kind);

/* The kind a spec names (its name or alias, any case), or 0. */
tr_layer_kind tr_layer_kind_named(const char *name);

/* The names of every kind a spec may use, for messages: "conv2d, maxpool2d, ...". */
void tr_layer_kind_list(char *buf, size_t size);

#endif
