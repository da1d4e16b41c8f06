#include "export.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"

/* The modules of the Sequential (export.h), in order. */
typedef enum { MOD_CONV, MOD_RELU, MOD_MAXPOOL, MOD_FLATTEN, MOD_DROPOUT, MOD_LINEAR,
               MOD_SOFTMAX } module_kind;

typedef struct {
    module_kind kind;
    const layer *l;    /* the layer it comes from */
    tensor_shape flat; /* a Linear's input as the image it flattens, else 1x1xN */
} torch_module;

/* At most three modules a layer (Flatten, Linear, ReLU). */
enum { MAX_MODULES = 3 * MODEL_MAX_LAYERS };

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

/* The Sequential's modules into mods; returns their count. */
static int torch_modules(const model *m, torch_module *mods)
{
    int n = 0, flattened = 0;
    tensor_shape flat = m->input; /* what the current vector flattens */
    for (int k = 0; k < m->n_layers; k++) {
        const layer *l = &m->layer[k];
        switch (l->kind) {
        case LAYER_CONV2D:
            mods[n++] = (torch_module){MOD_CONV, l, l->in};
            if (l->relu)
                mods[n++] = (torch_module){MOD_RELU, l, l->out};
            flattened = 0;
            break;
        case LAYER_MAXPOOL2D:
            mods[n++] = (torch_module){MOD_MAXPOOL, l, l->out};
            flattened = 0;
            break;
        case LAYER_FLATTEN:
            mods[n++] = (torch_module){MOD_FLATTEN, l, l->in};
            flat = l->in;
            flattened = 1;
            break;
        case LAYER_DROPOUT:
            mods[n++] = (torch_module){MOD_DROPOUT, l, l->in};
            break;
        case LAYER_DENSE:
            if (!flattened) {
                mods[n++] = (torch_module){MOD_FLATTEN, l, l->in};
                flat = l->in;
            }
            mods[n++] = (torch_module){MOD_LINEAR, l, flat};
            if (l->relu)
                mods[n++] = (torch_module){MOD_RELU, l, l->out};
            flattened = 1;
            flat = tensor_flat(l->units);
            break;
        case LAYER_SOFTMAX:
            mods[n++] = (torch_module){MOD_SOFTMAX, l, l->in};
            break;
        default:
            break;
        }
    }
    return n;
}

static int has_params(const torch_module *md)
{
    return md->kind == MOD_CONV || md->kind == MOD_LINEAR;
}

/* The shape of module md's weight as PyTorch lays it out (export.h) into
 * dims; returns how many dimensions. */
static int weight_shape(const torch_module *md, int64_t dims[4])
{
    const layer *l = md->l;
    if (md->kind == MOD_CONV) {
        dims[0] = l->units, dims[1] = l->in.c, dims[2] = l->kernel, dims[3] = l->kernel;
        return 4;
    }
    dims[0] = l->units, dims[1] = tensor_size(l->in);
    return 2;
}

/* The most floats any of the n modules' weights hold (at least 1), for a
 * buffer that takes each in turn. */
static size_t largest_weight(const torch_module *mods, int n)
{
    size_t most = 1;
    for (int k = 0; k < n; k++)
        if (has_params(&mods[k]) && mods[k].l->count[DENSE_W] > most)
            most = mods[k].l->count[DENSE_W];
    return most;
}

int export_torch_modules(const model *m, char *buf, size_t size, tr_error *err)
{
    torch_module mods[MAX_MODULES];
    const int n = torch_modules(m, mods);
    text t = {buf, size, 0, 0};
    add(&t, "Sequential(");
    for (int k = 0; k < n; k++) {
        const layer *l = mods[k].l;
        add(&t, "%s", k ? ", " : "");
        switch (mods[k].kind) {
        case MOD_CONV:
            add(&t, "Conv2d(%d, %d, %d, padding=%d)", l->in.c, l->units, l->kernel,
                l->same ? (l->kernel - 1) / 2 : 0);
            break;
        case MOD_RELU: add(&t, "ReLU()"); break;
        case MOD_MAXPOOL: add(&t, "MaxPool2d(%d)", l->pool); break;
        case MOD_FLATTEN: add(&t, "Flatten()"); break;
        case MOD_DROPOUT: add(&t, "Dropout(%.7g)", (double)l->rate); break;
        case MOD_LINEAR: add(&t, "Linear(%ld, %d)", tensor_size(l->in), l->units); break;
        case MOD_SOFTMAX: add(&t, "Softmax(dim=1)"); break;
        }
    }
    add(&t, ")");
    if (t.failed)
        return error_set(err, "the model's PyTorch modules are longer than %zu bytes", size);
    return 0;
}

/* Module md's weights in PyTorch's layout into out. */
static void torch_weights(float *out, const torch_module *md, const float *params)
{
    const layer *l = md->l;
    const float *w = params + l->offset[DENSE_W];
    const int f = l->units;
    if (md->kind == MOD_CONV) {
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

int export_safetensors(const model *m, uint8_t **data, size_t *len, tr_error *err)
{
    torch_module mods[MAX_MODULES];
    const int n = torch_modules(m, mods);
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
        if (!has_params(&mods[k]))
            continue;
        const layer *l = mods[k].l;
        const size_t wn = l->count[DENSE_W] * sizeof(float), bn = l->count[DENSE_B] * sizeof(float);
        int64_t dims[4];
        const int nd = weight_shape(&mods[k], dims);
        add(&h, ",\"%d.weight\":{\"dtype\":\"F32\",\"shape\":[", k);
        for (int d = 0; d < nd; d++)
            add(&h, "%s%lld", d ? "," : "", (long long)dims[d]);
        add(&h, "],\"data_offsets\":[%zu,%zu]}", at, at + wn);
        add(&h, ",\"%d.bias\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]}",
            k, l->units, at + wn, at + wn + bn);
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
    float *w = malloc(largest_weight(mods, n) * sizeof(float));
    if (!out || !w) {
        free(out), free(w);
        *data = NULL;
        return error_set(err, "out of memory for a %zu-byte safetensors file", *len);
    }
    byte_writer bw = {out};
    put_u64(&bw, h.len);
    put_bytes(&bw, header, h.len);
    for (int k = 0; k < n; k++) {
        if (!has_params(&mods[k]))
            continue;
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

/* ---- ONNX: protocol buffers of onnx.proto's messages, written by hand ---- */

/* A growing buffer of protobuf bytes; `failed` once out of memory. */
typedef struct {
    uint8_t *p;
    size_t len, cap;
    int failed;
} pb;

static void pb_raw(pb *b, const void *data, size_t n)
{
    if (b->failed || n == 0)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void pb_varint(pb *b, uint64_t v)
{
    uint8_t out[10];
    int n = 0;
    do {
        out[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    pb_raw(b, out, (size_t)n);
}

enum { WIRE_VARINT = 0, WIRE_BYTES = 2 };

static void pb_key(pb *b, int field, int wire)
{
    pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire);
}

static void pb_int(pb *b, int field, int64_t v)
{
    pb_key(b, field, WIRE_VARINT);
    pb_varint(b, (uint64_t)v);
}

static void pb_bytes(pb *b, int field, const void *data, size_t n)
{
    pb_key(b, field, WIRE_BYTES);
    pb_varint(b, n);
    pb_raw(b, data, n);
}

static void pb_string(pb *b, int field, const char *s)
{
    pb_bytes(b, field, s, strlen(s));
}

/* Appends child as a message field, and frees it. */
static void pb_message(pb *b, int field, pb *child)
{
    if (child->failed)
        b->failed = 1;
    pb_bytes(b, field, child->p, child->len);
    free(child->p);
}

/* onnx.proto's field numbers and enums. */
enum {
    MODEL_IR_VERSION = 1, MODEL_PRODUCER_NAME = 2, MODEL_PRODUCER_VERSION = 3,
    MODEL_DOC_STRING = 6, MODEL_GRAPH = 7, MODEL_OPSET_IMPORT = 8, MODEL_METADATA_PROPS = 14,
    OPSET_VERSION = 2, ENTRY_KEY = 1, ENTRY_VALUE = 2,
    GRAPH_NODE = 1, GRAPH_NAME = 2, GRAPH_INITIALIZER = 5, GRAPH_INPUT = 11, GRAPH_OUTPUT = 12,
    NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP_TYPE = 4, NODE_ATTRIBUTE = 5,
    ATTR_NAME = 1, ATTR_I = 3, ATTR_INTS = 8, ATTR_TYPE = 20, ATTR_INT = 2, ATTR_INTS_TYPE = 7,
    TENSOR_DIMS = 1, TENSOR_DATA_TYPE = 2, TENSOR_NAME = 8, TENSOR_RAW_DATA = 9, TENSOR_FLOAT = 1,
    VALUE_NAME = 1, VALUE_TYPE = 2, TYPE_TENSOR = 1, TENSOR_TYPE_ELEM = 1, TENSOR_TYPE_SHAPE = 2,
    SHAPE_DIM = 1, DIM_VALUE = 1, DIM_PARAM = 2,
};

/* The ONNX IR version and operator set written: opset 13 has every operator
 * used here in its current form. */
enum { ONNX_IR_VERSION = 8, ONNX_OPSET = 13 };

static void attribute_ints(pb *node, const char *name, const int64_t *v, int n)
{
    pb a = {0};
    pb_string(&a, ATTR_NAME, name);
    for (int k = 0; k < n; k++)
        pb_int(&a, ATTR_INTS, v[k]);
    pb_int(&a, ATTR_TYPE, ATTR_INTS_TYPE);
    pb_message(node, NODE_ATTRIBUTE, &a);
}

static void attribute_int(pb *node, const char *name, int64_t v)
{
    pb a = {0};
    pb_string(&a, ATTR_NAME, name);
    pb_int(&a, ATTR_I, v);
    pb_int(&a, ATTR_TYPE, ATTR_INT);
    pb_message(node, NODE_ATTRIBUTE, &a);
}

/* A node of op_type from the inputs (NULL-terminated) to `output`; the
 * caller adds its attributes to the returned buffer, then appends it to the
 * graph with pb_message. */
static pb begin_node(const char *op_type, const char *name, const char *const *inputs,
                     const char *output)
{
    pb n = {0};
    for (int k = 0; inputs[k]; k++)
        pb_string(&n, NODE_INPUT, inputs[k]);
    pb_string(&n, NODE_OUTPUT, output);
    pb_string(&n, NODE_NAME, name);
    pb_string(&n, NODE_OP_TYPE, op_type);
    return n;
}

static void initializer(pb *graph, const char *name, const int64_t *dims, int n_dims,
                        const float *v, size_t count)
{
    pb t = {0};
    for (int k = 0; k < n_dims; k++)
        pb_int(&t, TENSOR_DIMS, dims[k]);
    pb_int(&t, TENSOR_DATA_TYPE, TENSOR_FLOAT);
    pb_string(&t, TENSOR_NAME, name);
    pb_key(&t, TENSOR_RAW_DATA, WIRE_BYTES);
    pb_varint(&t, count * 4);
    for (size_t j = 0; j < count; j++) {
        uint8_t le[4];
        byte_writer w = {le};
        put_f32(&w, v[j]);
        pb_raw(&t, le, 4);
    }
    pb_message(graph, GRAPH_INITIALIZER, &t);
}

/* A float tensor of shape [N][dims...], N symbolic. */
static void value_info(pb *graph, int field, const char *name, const int64_t *dims, int n)
{
    pb shape = {0}, d = {0};
    pb_string(&d, DIM_PARAM, "N");
    pb_message(&shape, SHAPE_DIM, &d);
    for (int k = 0; k < n; k++) {
        pb dim = {0};
        pb_int(&dim, DIM_VALUE, dims[k]);
        pb_message(&shape, SHAPE_DIM, &dim);
    }
    pb tensor = {0}, type = {0}, v = {0};
    pb_int(&tensor, TENSOR_TYPE_ELEM, TENSOR_FLOAT);
    pb_message(&tensor, TENSOR_TYPE_SHAPE, &shape);
    pb_message(&type, TYPE_TENSOR, &tensor);
    pb_string(&v, VALUE_NAME, name);
    pb_message(&v, VALUE_TYPE, &type);
    pb_message(graph, field, &v);
}

static void metadata(pb *model, const char *key, const char *value)
{
    pb e = {0};
    pb_string(&e, ENTRY_KEY, key);
    pb_string(&e, ENTRY_VALUE, value);
    pb_message(model, MODEL_METADATA_PROPS, &e);
}

/* The graph's nodes and initializers, module after module. */
static int onnx_graph(pb *graph, const model *m, const torch_module *mods, int n, float *scratch)
{
    char x[32] = "input", y[32], name[48], wname[32], bname[32];
    for (int k = 0; k < n; k++) {
        const torch_module *md = &mods[k];
        const layer *l = md->l;
        if (md->kind == MOD_DROPOUT)
            continue; /* nothing in inference */
        snprintf(y, sizeof y, "%s", md->kind == MOD_SOFTMAX ? "probabilities" : "");
        if (!y[0])
            snprintf(y, sizeof y, "x%d", k);
        snprintf(wname, sizeof wname, "%d.weight", k);
        snprintf(bname, sizeof bname, "%d.bias", k);
        pb node;
        switch (md->kind) {
        case MOD_CONV: {
            snprintf(name, sizeof name, "conv_%d", k);
            node = begin_node("Conv", name, (const char *[]){x, wname, bname, NULL}, y);
            const int64_t kk[2] = {l->kernel, l->kernel}, one[2] = {1, 1};
            const int64_t p = l->same ? (l->kernel - 1) / 2 : 0, pads[4] = {p, p, p, p};
            attribute_ints(&node, "kernel_shape", kk, 2);
            attribute_ints(&node, "pads", pads, 4);
            attribute_ints(&node, "strides", one, 2);
            break;
        }
        case MOD_LINEAR: {
            snprintf(name, sizeof name, "gemm_%d", k);
            node = begin_node("Gemm", name, (const char *[]){x, wname, bname, NULL}, y);
            attribute_int(&node, "transB", 1);
            break;
        }
        case MOD_RELU:
            snprintf(name, sizeof name, "relu_%d", k);
            node = begin_node("Relu", name, (const char *[]){x, NULL}, y);
            break;
        case MOD_MAXPOOL: {
            snprintf(name, sizeof name, "maxpool_%d", k);
            node = begin_node("MaxPool", name, (const char *[]){x, NULL}, y);
            const int64_t p[2] = {l->pool, l->pool};
            attribute_ints(&node, "kernel_shape", p, 2);
            attribute_ints(&node, "strides", p, 2);
            break;
        }
        case MOD_FLATTEN:
            snprintf(name, sizeof name, "flatten_%d", k);
            node = begin_node("Flatten", name, (const char *[]){x, NULL}, y);
            attribute_int(&node, "axis", 1);
            break;
        case MOD_SOFTMAX:
            snprintf(name, sizeof name, "softmax_%d", k);
            node = begin_node("Softmax", name, (const char *[]){x, NULL}, y);
            attribute_int(&node, "axis", 1);
            break;
        default:
            continue;
        }
        pb_message(graph, GRAPH_NODE, &node);
        if (has_params(md)) {
            int64_t dims[4];
            const int nd = weight_shape(md, dims);
            torch_weights(scratch, md, m->params);
            initializer(graph, wname, dims, nd, scratch, l->count[DENSE_W]);
            dims[0] = l->units;
            initializer(graph, bname, dims, 1, m->params + l->offset[DENSE_B],
                        l->count[DENSE_B]);
        }
        snprintf(x, sizeof x, "%s", y);
    }
    return strcmp(x, "probabilities") == 0 ? 0 : -1;
}

int export_onnx(const model *m, uint8_t **data, size_t *len, tr_error *err)
{
    torch_module mods[MAX_MODULES];
    const int n = torch_modules(m, mods);
    float *scratch = malloc(largest_weight(mods, n) * sizeof(float));
    if (!scratch)
        return error_set(err, "out of memory for the ONNX model's weights");
    pb graph = {0};
    pb_string(&graph, GRAPH_NAME, "trainer");
    const int64_t in_dims[3] = {m->input.c, m->input.h, m->input.w};
    value_info(&graph, GRAPH_INPUT, "input", in_dims, 3);
    const int64_t out_dims[1] = {model_classes(m)};
    value_info(&graph, GRAPH_OUTPUT, "probabilities", out_dims, 1);
    const int ended = onnx_graph(&graph, m, mods, n, scratch);
    free(scratch);
    if (ended) {
        free(graph.p);
        return error_set(err, "the model does not end in a softmax head");
    }
    char layers[4096], shape[64], classes[16];
    if (model_format_layers(m, layers, sizeof layers)) {
        free(graph.p);
        return error_set(err, "the model's layers are longer than %zu bytes", sizeof layers);
    }
    snprintf(shape, sizeof shape, "%dx%dx%d", m->input.h, m->input.w, m->input.c);
    snprintf(classes, sizeof classes, "%d", model_classes(m));
    pb model = {0}, opset = {0};
    pb_int(&model, MODEL_IR_VERSION, ONNX_IR_VERSION);
    pb_string(&model, MODEL_PRODUCER_NAME, "trainer");
    pb_string(&model, MODEL_PRODUCER_VERSION, TRAINER_VERSION);
    pb_string(&model, MODEL_DOC_STRING,
              "An image classifier trained by trainer. Input: [N][C][H][W] float32, each "
              "pixel's byte / 255; pictures of digits prepared as MNIST's (trainer predict "
              "does it). Output: the class probabilities.");
    pb_message(&model, MODEL_GRAPH, &graph);
    pb_int(&opset, OPSET_VERSION, ONNX_OPSET);
    pb_message(&model, MODEL_OPSET_IMPORT, &opset);
    metadata(&model, "classes", classes);
    metadata(&model, "input_shape", shape);
    metadata(&model, "input_layout", "NCHW float32");
    metadata(&model, "preprocessing",
             "pixel / 255; a picture of a digit: grey levels, inverted on a light page, "
             "cropped to the ink, scaled to fit 20/28 of the field keeping its aspect ratio, "
             "centred by its centre of mass (as trainer predict does)");
    metadata(&model, "layers", layers);
    if (model.failed) {
        free(model.p);
        return error_set(err, "out of memory for the ONNX model");
    }
    *data = model.p;
    *len = model.len;
    return 0;
}
