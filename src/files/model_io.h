/* model_io.h - the parts of the binary formats (model.ckpt, training.state)
 * that describe a model: its architecture (or, in older files, its layer
 * sizes) and the float tensors of a buffer of its layout, in file order
 * (internal to the library). */
#ifndef TRAINER_MODEL_IO_H
#define TRAINER_MODEL_IO_H

#include <string.h>

#include "bytes.h"
#include "classes.h"
#include "error.h"
#include "model.h"

/* Written as a u32, it reads back as this only in the byte order it was
 * written in. */
#define ORDER_TAG 0x01020304u

/* The head both formats share: the 8-byte magic, u32 version, the order tag
 * and u32 sizeof(float). */
static inline void put_format_head(byte_writer *w, const char magic[8], uint32_t version)
{
    put_bytes(w, magic, 8);
    put_u32(w, version);
    put_u32(w, ORDER_TAG);
    put_u32(w, (uint32_t)sizeof(float));
}

/* u32 n_layers, then the n_layers + 1 layer sizes. */
static inline void put_shape(byte_writer *w, const tr_mlp_shape *s)
{
    put_u32(w, (uint32_t)s->n_layers);
    for (int l = 0; l <= s->n_layers; l++)
        put_u32(w, (uint32_t)s->sizes[l]);
}

/* Reads the n_layers + 1 layer sizes into s (whose n_layers the caller has
 * read and checked), refusing a size outside 1..MLP_MAX_WIDTH. */
static inline int get_sizes(byte_reader *r, tr_mlp_shape *s, uint32_t n_layers,
                            const char *name, tr_error *err)
{
    s->n_layers = (int)n_layers;
    for (uint32_t l = 0; l <= n_layers; l++) {
        uint32_t v = get_u32(r);
        if (v < 1 || v > MLP_MAX_WIDTH)
            return tr_error_set(err, "%s: layer size %u out of range", name, v);
        s->sizes[l] = (int)v;
    }
    return 0;
}

/* The older files' model (model.ckpt version 1, training.state versions 1
 * and 2): u32 L dense layers and their L + 1 sizes, defined (tr_model_define:
 * nothing allocated) as a stack of dense layers.  Those files only ever
 * held models of MNIST's 28x28x1 images: 784 inputs are read as such, so
 * that pictures are prepared for them as for any model (other sizes, which
 * only tests wrote, as a flat input). */
static inline int get_sized_model(byte_reader *r, tr_model *m, const char *name, tr_error *err)
{
    const uint32_t n_layers = get_u32(r);
    if (n_layers < 1 || n_layers > MLP_MAX_LAYERS)
        return tr_error_set(err, "%s: %u layers (1 to %d supported)", name, n_layers,
                            MLP_MAX_LAYERS);
    tr_mlp_shape s;
    if (get_sizes(r, &s, n_layers, name, err))
        return -1;
    if (r->bad)
        return tr_error_set(err, "%s: truncated header", name);
    const tr_tensor_shape input = s.sizes[0] == 28 * 28 ? (tr_tensor_shape){28, 28, 1}
                                                     : tensor_flat(s.sizes[0]);
    tr_error why;
    if (tr_model_define_mlp(m, input, &s, &why))
        return tr_error_set(err, "%s: %s", name, why.msg);
    return 0;
}

/* What an architecture block holds beyond the layers, by version. */
enum { ARCH_TENSORS = 1, ARCH_CLASSES = 2 };

/* Bytes of the architecture block of model m, with its tensor table and its
 * classes. */
static inline size_t architecture_len(const tr_model *m)
{
    size_t n = 4 * 5 + (size_t)m->n_layers * 4 * (1 + LAYER_HYPER_WORDS);
    for (int l = 0; l < m->n_layers; l++)
        n += 4 + (size_t)m->layer[l].n_tensors * (8 + 4);
    return n + 4 + 4 + strlen(m->class_names);
}

/* The architecture block: u32 input height, width and channels, u32
 * classes, u32 N layers (the head included), then per layer u32 kind and
 * its LAYER_HYPER_WORDS u32 hyper-parameters; then the tensor table: per
 * layer u32 T tensors and per tensor u64 floats and u32 flags (1:
 * trainable), which a reader checks against the layers and which lets an
 * independent reader find every tensor without knowing the kinds; then the
 * classes: u32 how pictures are fitted to the input (tr_model_fit), u32 n and
 * n bytes of class names (classes.h; n 0 when they have none). */
static inline void put_architecture(byte_writer *w, const tr_model *m)
{
    put_u32(w, (uint32_t)m->input.h);
    put_u32(w, (uint32_t)m->input.w);
    put_u32(w, (uint32_t)m->input.c);
    put_u32(w, (uint32_t)tr_model_classes(m));
    put_u32(w, (uint32_t)m->n_layers);
    for (int l = 0; l < m->n_layers; l++) {
        put_u32(w, m->layer[l].kind);
        for (int k = 0; k < LAYER_HYPER_WORDS; k++)
            put_u32(w, m->layer[l].hp[k]);
    }
    for (int l = 0; l < m->n_layers; l++) {
        const tr_layer *y = &m->layer[l];
        put_u32(w, (uint32_t)y->n_tensors);
        for (int t = 0; t < y->n_tensors; t++) {
            put_u64(w, y->count[t]);
            put_u32(w, y->trainable[t]);
        }
    }
    put_u32(w, (uint32_t)m->fit);
    const uint32_t len = (uint32_t)strlen(m->class_names);
    put_u32(w, len);
    put_bytes(w, m->class_names, len);
}

/* The classes' part of an architecture block. */
static inline int get_classes(byte_reader *r, tr_model *m, const char *name, tr_error *err)
{
    const uint32_t fit = get_u32(r), len = get_u32(r);
    if (r->bad)
        return tr_error_set(err, "%s: truncated class names", name);
    if (fit > MODEL_FIT_RESIZE)
        return tr_error_set(err, "%s: picture fitting %u unknown", name, fit);
    if (len >= sizeof m->class_names || (size_t)(r->end - r->p) < len)
        return tr_error_set(err, "%s: %u bytes of class names, out of range", name, len);
    m->fit = (tr_model_fit)fit;
    get_bytes(r, m->class_names, len);
    m->class_names[len] = '\0';
    if (memchr(m->class_names, '\0', len))
        return tr_error_set(err, "%s: class names with a zero byte", name);
    return tr_class_names_check(m->class_names, tr_model_classes(m), name, err);
}

/* Checks a tensor table against the model's layers. */
static inline int get_tensor_table(byte_reader *r, const tr_model *m, const char *name,
                                   tr_error *err)
{
    for (int l = 0; l < m->n_layers; l++) {
        const tr_layer *y = &m->layer[l];
        const uint32_t n = get_u32(r);
        if (r->bad)
            return tr_error_set(err, "%s: truncated tensor table", name);
        if (n != (uint32_t)y->n_tensors)
            return tr_error_set(err, "%s: layer %d (%s) has %d tensors, the file says %u", name,
                                l + 1, tr_layer_kind_name(y->kind), y->n_tensors, n);
        for (int t = 0; t < y->n_tensors; t++) {
            const uint64_t count = get_u64(r);
            const uint32_t flags = get_u32(r);
            if (r->bad)
                return tr_error_set(err, "%s: truncated tensor table", name);
            if (count != y->count[t])
                return tr_error_set(err, "%s: layer %d (%s), tensor %d: %llu floats in the file, "
                                    "the layer has %zu", name, l + 1, tr_layer_kind_name(y->kind),
                                    t + 1, (unsigned long long)count, y->count[t]);
            if (flags != y->trainable[t])
                return tr_error_set(err, "%s: layer %d (%s), tensor %d: flags %u in the file, "
                                    "the tensor is %s", name, l + 1, tr_layer_kind_name(y->kind),
                                    t + 1, flags, y->trainable[t] ? "trainable (1)"
                                                               : "not trainable (0)");
        }
    }
    return 0;
}

/* Reads an architecture block and defines the model it describes
 * (tr_model_define: no parameters allocated yet), refusing what does not hold
 * together; parts: ARCH_* bits, what the file's version holds. */
static inline int get_architecture(byte_reader *r, tr_model *m, int parts, const char *name,
                                   tr_error *err)
{
    const uint32_t h = get_u32(r), wd = get_u32(r), c = get_u32(r);
    const uint32_t classes = get_u32(r), n = get_u32(r);
    if (r->bad)
        return tr_error_set(err, "%s: truncated header", name);
    if (h < 1 || wd < 1 || c < 1 || h > LAYER_MAX_WIDTH || wd > LAYER_MAX_WIDTH ||
        c > LAYER_MAX_WIDTH)
        return tr_error_set(err, "%s: input shape %u x %u x %u out of range", name, h, wd, c);
    if (n < 2 || n > MODEL_MAX_LAYERS)
        return tr_error_set(err, "%s: %u layers (2 to %d, the head included)", name, n,
                            MODEL_MAX_LAYERS);
    tr_layer layers[MODEL_MAX_LAYERS];
    tr_error why;
    for (uint32_t l = 0; l < n; l++) {
        uint32_t kind = get_u32(r), words[LAYER_HYPER_WORDS];
        for (int k = 0; k < LAYER_HYPER_WORDS; k++)
            words[k] = get_u32(r);
        if (r->bad)
            return tr_error_set(err, "%s: truncated header", name);
        if (tr_layer_from_words(&layers[l], kind, words, &why))
            return tr_error_set(err, "%s: layer %u: %s", name, l + 1, why.msg);
    }
    if (tr_model_define(m, (tr_tensor_shape){(int)h, (int)wd, (int)c}, layers, (int)n, &why))
        return tr_error_set(err, "%s: %s", name, why.msg);
    if ((uint32_t)tr_model_classes(m) != classes)
        return tr_error_set(err, "%s: %u classes said, the layers give %d", name, classes,
                            tr_model_classes(m));
    if ((parts & ARCH_TENSORS) && get_tensor_table(r, m, name, err))
        return -1;
    return (parts & ARCH_CLASSES) ? get_classes(r, m, name, err) : 0;
}

/* The real (unpadded) floats of buf, a buffer of m's layout, in file order. */
static inline void put_tensors(byte_writer *w, const tr_model *m, float *buf)
{
    float *ptr[MODEL_MAX_LAYERS * LAYER_MAX_TENSORS];
    size_t count[MODEL_MAX_LAYERS * LAYER_MAX_TENSORS];
    int n = tr_model_tensors(m, buf, ptr, count);
    for (int t = 0; t < n; t++) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* The files are little-endian: here that is the floats' own bytes,
         * copied at memory speed (float by float, encoding model.ckpt and
         * training.state took 4-5 ms an epoch, now 2.5-3.5). */
        put_bytes(w, ptr[t], sizeof(float) * count[t]);
#else
        for (size_t k = 0; k < count[t]; k++)
            put_f32(w, ptr[t][k]);
#endif
    }
}

static inline void get_tensors(byte_reader *r, const tr_model *m, float *buf)
{
    float *ptr[MODEL_MAX_LAYERS * LAYER_MAX_TENSORS];
    size_t count[MODEL_MAX_LAYERS * LAYER_MAX_TENSORS];
    int n = tr_model_tensors(m, buf, ptr, count);
    for (int t = 0; t < n; t++) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        get_bytes(r, ptr[t], sizeof(float) * count[t]);
#else
        for (size_t k = 0; k < count[t]; k++)
            ptr[t][k] = get_f32(r);
#endif
    }
}

#endif
