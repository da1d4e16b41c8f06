#include "export.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"

/* One module of the Sequential (export.h) that has parameters. */
typedef struct {
    int index;       /* its number in the Sequential */
    const layer *l;  /* the conv2d or dense layer it comes from */
    tensor_shape flat; /* a Linear's input as the image it flattens (h * w > 1), else 1x1xN */
} torch_param_module;

/* Text appended to a fixed buffer; `failed` once it would overflow. */
typedef struct {
    char *buf;
    size_t size, len;
    int failed;
} text;

static void add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(t->buf + t->len, t->size - t->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= t->size - t->len)
        t->failed = 1;
    else
        t->len += (size_t)n;
}

/* Walks the Sequential: writes its Python into t (when t is not NULL) and its
 * modules with parameters into mods (when not NULL); returns their count. */
static int walk(const model *m, text *t, torch_param_module *mods)
{
    int index = 0, n = 0, flattened = 0;
    tensor_shape flat = m->input; /* what the current vector flattens */
    if (t)
        add(t, "Sequential(");
#define MODULE(...)                                                                    \
    do {                                                                               \
        if (t) {                                                                       \
            add(t, "%s", index ? ", " : "");                                           \
            add(t, __VA_ARGS__);                                                       \
        }                                                                              \
        index++;                                                                       \
    } while (0)
    for (int k = 0; k < m->n_layers; k++) {
        const layer *l = &m->layer[k];
        switch (l->kind) {
        case LAYER_CONV2D:
            if (mods)
                mods[n] = (torch_param_module){index, l, l->in};
            n++;
            MODULE("Conv2d(%d, %d, %d, padding=%d)", l->in.c, l->units, l->kernel,
                   l->same ? (l->kernel - 1) / 2 : 0);
            if (l->relu)
                MODULE("ReLU()");
            flattened = 0;
            break;
        case LAYER_MAXPOOL2D:
            MODULE("MaxPool2d(%d)", l->pool);
            flattened = 0;
            break;
        case LAYER_FLATTEN:
            MODULE("Flatten()");
            flat = l->in;
            flattened = 1;
            break;
        case LAYER_DROPOUT:
            MODULE("Dropout(%.7g)", (double)l->rate);
            break;
        case LAYER_DENSE:
            if (!flattened && (l->in.h > 1 || l->in.w > 1)) {
                MODULE("Flatten()");
                flat = l->in;
            } else if (!flattened) {
                flat = l->in;
            }
            if (mods)
                mods[n] = (torch_param_module){index, l, flat};
            n++;
            MODULE("Linear(%ld, %d)", tensor_size(l->in), l->units);
            if (l->relu)
                MODULE("ReLU()");
            flattened = 1;
            flat = tensor_flat(l->units);
            break;
        case LAYER_SOFTMAX:
            MODULE("Softmax(dim=1)");
            break;
        default:
            break;
        }
    }
#undef MODULE
    if (t)
        add(t, ")");
    return n;
}

int export_torch_modules(const model *m, char *buf, size_t size, tr_error *err)
{
    text t = {buf, size, 0, 0};
    walk(m, &t, NULL);
    if (t.failed)
        return error_set(err, "the model's PyTorch modules are longer than %zu bytes", size);
    return 0;
}

/* Module md's weights in PyTorch's layout into out. */
static void torch_weights(float *out, const torch_param_module *md, const float *params)
{
    const layer *l = md->l;
    const float *w = params + l->offset[DENSE_W];
    const int f = l->units;
    if (l->kind == LAYER_CONV2D) {
        const int k = l->kernel, c = l->in.c;
        for (int o = 0; o < f; o++)
            for (int ch = 0; ch < c; ch++)
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++)
                        *out++ = w[(((long)ky * k + kx) * c + ch) * f + o];
        return;
    }
    /* PyTorch's input j is (channel, row, column); this engine's is (row,
     * column, channel). */
    const tensor_shape s = md->flat;
    const long in = tensor_size(l->in);
    for (int o = 0; o < f; o++)
        for (int ch = 0; ch < s.c; ch++)
            for (int y = 0; y < s.h; y++)
                for (int x = 0; x < s.w; x++) {
                    const long i = ((long)y * s.w + x) * s.c + ch;
                    *out++ = i < in ? w[i * f + o] : 0.0f;
                }
}

enum { MAX_MODULES = MODEL_MAX_LAYERS };

int export_safetensors(const model *m, uint8_t **data, size_t *len, tr_error *err)
{
    torch_param_module mods[MAX_MODULES];
    const int n = walk(m, NULL, mods);
    char sequential[8192], layers[4096], header[65536];
    if (export_torch_modules(m, sequential, sizeof sequential, err))
        return -1;
    if (model_format_layers(m, layers, sizeof layers))
        return error_set(err, "the model's layers are longer than %zu bytes", sizeof layers);
    text h = {header, sizeof header, 0, 0};
    add(&h, "{\"__metadata__\":{\"format\":\"pt\",\"trainer.sequential\":\"%s\","
        "\"trainer.layers\":\"%s\",\"trainer.input\":\"%dx%dx%d\",\"trainer.classes\":\"%d\","
        "\"trainer.input_layout\":\"NCHW float32, pixel / 255\"}",
        sequential, layers, m->input.h, m->input.w, m->input.c, model_classes(m));
    size_t at = 0;
    for (int k = 0; k < n; k++) {
        const layer *l = mods[k].l;
        const size_t wn = l->count[DENSE_W] * sizeof(float), bn = l->count[DENSE_B] * sizeof(float);
        if (l->kind == LAYER_CONV2D)
            add(&h, ",\"%d.weight\":{\"dtype\":\"F32\",\"shape\":[%d,%d,%d,%d],"
                "\"data_offsets\":[%zu,%zu]}", mods[k].index, l->units, l->in.c, l->kernel,
                l->kernel, at, at + wn);
        else
            add(&h, ",\"%d.weight\":{\"dtype\":\"F32\",\"shape\":[%d,%ld],"
                "\"data_offsets\":[%zu,%zu]}", mods[k].index, l->units, tensor_size(l->in), at,
                at + wn);
        add(&h, ",\"%d.bias\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]}",
            mods[k].index, l->units, at + wn, at + wn + bn);
        at += wn + bn;
    }
    add(&h, "}");
    /* Spaces to a multiple of 8, as the format suggests, so that the tensors
     * are aligned for a reader that maps the file. */
    while (!h.failed && (8 + h.len) % 8)
        add(&h, " ");
    if (h.failed)
        return error_set(err, "the safetensors header is longer than %zu bytes", sizeof header);
    *len = 8 + h.len + at;
    uint8_t *out = *data = malloc(*len);
    size_t most = 0;
    for (int k = 0; k < n; k++)
        most = mods[k].l->count[DENSE_W] > most ? mods[k].l->count[DENSE_W] : most;
    float *w = malloc(most * sizeof(float) + 1);
    if (!out || !w) {
        free(out), free(w);
        *data = NULL;
        return error_set(err, "out of memory for a %zu-byte safetensors file", *len);
    }
    byte_writer bw = {out};
    put_u64(&bw, h.len);
    put_bytes(&bw, header, h.len);
    for (int k = 0; k < n; k++) {
        const layer *l = mods[k].l;
        torch_weights(w, &mods[k], m->params);
        for (size_t j = 0; j < l->count[DENSE_W]; j++)
            put_f32(&bw, w[j]);
        for (size_t j = 0; j < l->count[DENSE_B]; j++)
            put_f32(&bw, m->params[l->offset[DENSE_B] + j]);
    }
    free(w);
    return 0;
}
