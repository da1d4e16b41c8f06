#include "export.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "model/layer_kinds.h"

/* A module of the Sequential (export.h): what its layer's kind says of it. */
typedef struct {
    const tr_layer *l;        /* the layer it comes from */
    const layer_ops *kind;
    tr_tensor_shape order;    /* the order of the layer's input (layer_kinds.h) */
    const export_module *md;
} torch_module;

/* Every layer's modules, and the modules in order. */
typedef struct {
    layer_export layer[MODEL_MAX_LAYERS];
    torch_module mod[EXPORT_MAX_MODULES * MODEL_MAX_LAYERS];
    int n;
} torch_modules;

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

static int is_image(tr_tensor_shape s)
{
    return s.h > 1 || s.w > 1;
}

/* The Sequential's modules, layer after layer. */
static void collect_modules(const tr_model *m, torch_modules *t)
{
    t->n = 0;
    tr_tensor_shape order = m->input;
    for (int k = 0; k < m->n_layers; k++) {
        const tr_layer *l = &m->layer[k];
        const layer_ops *kind = tr_layer_kind_ops(l->kind);
        if (is_image(l->in))
            order = l->in;
        t->layer[k].n = 0;
        kind->export(l, order, &t->layer[k]);
        for (int j = 0; j < t->layer[k].n; j++)
            t->mod[t->n++] = (torch_module){l, kind, order, &t->layer[k].mod[j]};
        if (is_image(l->out) || !kind->keeps_order)
            order = l->out;
    }
}

/* The most floats any parameter holds (at least 1), for a buffer that takes
 * each in turn. */
static size_t largest_param(const torch_modules *t)
{
    size_t most = 1;
    for (int k = 0; k < t->n; k++)
        for (int p = 0; p < t->mod[k].md->n_params; p++) {
            const size_t c = t->mod[k].l->count[t->mod[k].md->param[p].tensor];
            most = c > most ? c : most;
        }
    return most;
}

/* Parameter p of module md in PyTorch's layout into out. */
static void param_values(const torch_module *md, const export_param *p, const float *params,
                         float *out)
{
    if (md->kind->export_values)
        md->kind->export_values(md->l, p, md->order, params, out);
    else
        memcpy(out, params + md->l->offset[p->tensor],
               sizeof(float) * md->l->count[p->tensor]);
}

static int sequential_text(const torch_modules *t, char *buf, size_t size, tr_error *err)
{
    text x = {buf, size, 0, 0};
    add(&x, "Sequential(");
    for (int k = 0; k < t->n; k++)
        add(&x, "%s%s", k ? ", " : "", t->mod[k].md->torch);
    add(&x, ")");
    if (x.failed)
        return tr_error_set(err, "the model's PyTorch modules are longer than %zu bytes", size);
    return 0;
}

int tr_export_torch_modules(const tr_model *m, char *buf, size_t size, tr_error *err)
{
    torch_modules *t = malloc(sizeof *t);
    if (!t)
        return tr_error_set(err, "out of memory for the model's PyTorch modules");
    collect_modules(m, t);
    const int status = sequential_text(t, buf, size, err);
    free(t);
    return status;
}

int tr_export_safetensors(const tr_model *m, uint8_t **data, size_t *len, tr_error *err)
{
    torch_modules *t = malloc(sizeof *t);
    char *sequential = malloc(8192), *header = malloc(65536), layers[4096];
    const size_t header_size = 65536;
    int status = -1;
    *data = NULL;
    if (!t || !sequential || !header) {
        tr_error_set(err, "out of memory for the safetensors header");
        goto done;
    }
    collect_modules(m, t);
    if (sequential_text(t, sequential, 8192, err))
        goto done;
    if (tr_model_format_layers(m, layers, sizeof layers)) {
        tr_error_set(err, "the model's layers are longer than %zu bytes", sizeof layers);
        goto done;
    }
    text h = {header, header_size, 0, 0};
    add(&h, "{\"__metadata__\":{\"format\":\"pt\",\"trainer.sequential\":\"%s\","
        "\"trainer.layers\":\"%s\",\"trainer.input\":\"%dx%dx%d\",\"trainer.classes\":\"%d\","
        "\"trainer.input_layout\":\"NCHW float32, pixel / 255\"",
        sequential, layers, m->input.h, m->input.w, m->input.c, tr_model_classes(m));
    /* The names as a JSON array, itself a string of the header's JSON. */
    char names[2 * CLASS_NAMES_MAX + 8], quoted[4 * CLASS_NAMES_MAX + 16];
    if (m->class_names[0]) {
        if (tr_class_names_json(m->class_names, names, sizeof names) ||
            tr_json_escape(quoted, sizeof quoted, names, strlen(names))) {
            tr_error_set(err, "the class names are too long for the header");
            goto done;
        }
        add(&h, ",\"trainer.class_names\":\"%s\"", quoted);
    }
    add(&h, "}");
    size_t at = 0;
    for (int k = 0; k < t->n; k++)
        for (int p = 0; p < t->mod[k].md->n_params; p++) {
            const export_param *q = &t->mod[k].md->param[p];
            const size_t bytes = t->mod[k].l->count[q->tensor] * sizeof(float);
            add(&h, ",\"%d.%s\":{\"dtype\":\"F32\",\"shape\":[", k, q->name);
            for (int d = 0; d < q->nd; d++)
                add(&h, "%s%lld", d ? "," : "", (long long)q->dims[d]);
            add(&h, "],\"data_offsets\":[%zu,%zu]}", at, at + bytes);
            at += bytes;
        }
    for (int k = 0; k < t->n; k++)
        if (t->mod[k].md->count_buffer) {
            add(&h, ",\"%d.%s\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[%zu,%zu]}",
                k, t->mod[k].md->count_buffer, at, at + 8);
            at += 8;
        }
    add(&h, "}");
    /* Spaces to a multiple of 8, as the format suggests, so that the tensors
     * are aligned for a reader that maps the file. */
    while (!h.failed && (8 + h.len) % 8)
        add(&h, " ");
    if (h.failed) {
        tr_error_set(err, "the safetensors header is longer than %zu bytes", header_size);
        goto done;
    }
    *len = 8 + h.len + at;
    uint8_t *out = *data = malloc(*len);
    float *w = malloc(largest_param(t) * sizeof(float));
    if (!out || !w) {
        free(out), free(w);
        *data = NULL;
        tr_error_set(err, "out of memory for a %zu-byte safetensors file", *len);
        goto done;
    }
    byte_writer bw = {out};
    put_u64(&bw, h.len);
    put_bytes(&bw, header, h.len);
    for (int k = 0; k < t->n; k++)
        for (int p = 0; p < t->mod[k].md->n_params; p++) {
            const export_param *q = &t->mod[k].md->param[p];
            param_values(&t->mod[k], q, m->params, w);
            for (size_t j = 0; j < t->mod[k].l->count[q->tensor]; j++)
                put_f32(&bw, w[j]);
        }
    for (int k = 0; k < t->n; k++)
        if (t->mod[k].md->count_buffer)
            put_u64(&bw, 0);
    free(w);
    status = 0;
done:
    free(t);
    free(sequential);
    free(header);
    return status;
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

enum { WIRE_VARINT = 0, WIRE_BYTES = 2, WIRE_FIXED32 = 5 };

static void pb_key(pb *b, int field, int wire)
{
    pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire);
}

static void pb_int(pb *b, int field, int64_t v)
{
    pb_key(b, field, WIRE_VARINT);
    pb_varint(b, (uint64_t)v);
}

/* A float field: wire type 5, its 4 bytes little-endian. */
static void pb_float(pb *b, int field, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    const uint8_t le[4] = {(uint8_t)bits, (uint8_t)(bits >> 8), (uint8_t)(bits >> 16),
                           (uint8_t)(bits >> 24)};
    pb_key(b, field, WIRE_FIXED32);
    pb_raw(b, le, 4);
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
    ATTR_NAME = 1, ATTR_F = 2, ATTR_FLOAT = 1, ATTR_I = 3, ATTR_INTS = 8, ATTR_TYPE = 20, ATTR_INT = 2, ATTR_INTS_TYPE = 7,
    TENSOR_DIMS = 1, TENSOR_DATA_TYPE = 2, TENSOR_NAME = 8, TENSOR_RAW_DATA = 9, TENSOR_FLOAT = 1,
    VALUE_NAME = 1, VALUE_TYPE = 2, TYPE_TENSOR = 1, TENSOR_TYPE_ELEM = 1, TENSOR_TYPE_SHAPE = 2,
    SHAPE_DIM = 1, DIM_VALUE = 1, DIM_PARAM = 2,
};

/* The ONNX IR version and operator set written: opset 13 has every operator
 * used here in its current form. */
enum { ONNX_IR_VERSION = 8, ONNX_OPSET = 13 };

static void attribute(pb *node, const export_attr *x)
{
    pb a = {0};
    pb_string(&a, ATTR_NAME, x->name);
    if (x->is_float) {
        pb_float(&a, ATTR_F, x->f);
        pb_int(&a, ATTR_TYPE, ATTR_FLOAT);
    } else if (x->list) {
        for (int k = 0; k < x->n; k++)
            pb_int(&a, ATTR_INTS, x->v[k]);
        pb_int(&a, ATTR_TYPE, ATTR_INTS_TYPE);
    } else {
        pb_int(&a, ATTR_I, x->v[0]);
        pb_int(&a, ATTR_TYPE, ATTR_INT);
    }
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

/* The graph's nodes and initializers, module after module; the last node
 * (the head's) gives "probabilities". */
static int onnx_graph(pb *graph, const tr_model *m, const torch_modules *t, float *scratch)
{
    char x[32] = "input", y[32], name[48], pname[EXPORT_MAX_PARAMS][48];
    int last = -1;
    for (int k = 0; k < t->n; k++)
        if (t->mod[k].md->onnx)
            last = k;
    if (last < 0 || !tr_layer_is_head(t->mod[last].l))
        return -1;
    for (int k = 0; k <= last; k++) {
        const export_module *md = t->mod[k].md;
        if (!md->onnx)
            continue; /* the identity in inference */
        if (k == last)
            snprintf(y, sizeof y, "probabilities");
        else
            snprintf(y, sizeof y, "x%d", k);
        int c = snprintf(name, sizeof name, "%s_%d", md->onnx, k);
        for (int j = 0; j < c; j++)
            name[j] = (char)tolower((unsigned char)name[j]);
        const char *inputs[EXPORT_MAX_PARAMS + 2] = {x};
        for (int p = 0; p < md->n_params; p++) {
            snprintf(pname[p], sizeof pname[p], "%d.%s", k, md->param[p].name);
            inputs[p + 1] = pname[p];
        }
        inputs[md->n_params + 1] = NULL;
        pb node = begin_node(md->onnx, name, inputs, y);
        for (int a = 0; a < md->n_attrs; a++)
            attribute(&node, &md->attr[a]);
        pb_message(graph, GRAPH_NODE, &node);
        for (int p = 0; p < md->n_params; p++) {
            const export_param *q = &md->param[p];
            param_values(&t->mod[k], q, m->params, scratch);
            initializer(graph, pname[p], q->dims, q->nd, scratch, t->mod[k].l->count[q->tensor]);
        }
        snprintf(x, sizeof x, "%s", y);
    }
    return 0;
}

int tr_export_onnx(const tr_model *m, uint8_t **data, size_t *len, tr_error *err)
{
    torch_modules *t = malloc(sizeof *t);
    if (!t)
        return tr_error_set(err, "out of memory for the ONNX model");
    collect_modules(m, t);
    float *scratch = malloc(largest_param(t) * sizeof(float));
    if (!scratch) {
        free(t);
        return tr_error_set(err, "out of memory for the ONNX model's weights");
    }
    pb graph = {0};
    pb_string(&graph, GRAPH_NAME, "trainer");
    const int64_t in_dims[3] = {m->input.c, m->input.h, m->input.w};
    value_info(&graph, GRAPH_INPUT, "input", in_dims, 3);
    const int64_t out_dims[1] = {tr_model_classes(m)};
    value_info(&graph, GRAPH_OUTPUT, "probabilities", out_dims, 1);
    const int ended = onnx_graph(&graph, m, t, scratch);
    free(scratch);
    free(t);
    if (ended) {
        free(graph.p);
        return tr_error_set(err, "the model does not end in a softmax head");
    }
    char layers[4096], shape[64], classes[16];
    if (tr_model_format_layers(m, layers, sizeof layers)) {
        free(graph.p);
        return tr_error_set(err, "the model's layers are longer than %zu bytes", sizeof layers);
    }
    snprintf(shape, sizeof shape, "%dx%dx%d", m->input.h, m->input.w, m->input.c);
    snprintf(classes, sizeof classes, "%d", tr_model_classes(m));
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
             m->fit == MODEL_FIT_RESIZE
                 ? "pixel / 255; a picture resized to the input's height and width "
                   "(bilinear, half-pixel centres), grey levels for one channel (as trainer "
                   "predict does)"
                 : "pixel / 255; a picture of a digit: grey levels, inverted on a light page, "
                   "cropped to the ink, scaled to fit 20/28 of the field keeping its aspect "
                   "ratio, centred by its centre of mass (as trainer predict does)");
    metadata(&model, "layers", layers);
    char names[2 * CLASS_NAMES_MAX + 8];
    if (m->class_names[0] && tr_class_names_json(m->class_names, names, sizeof names) == 0)
        metadata(&model, "class_names", names);
    if (model.failed) {
        free(model.p);
        return tr_error_set(err, "out of memory for the ONNX model");
    }
    *data = model.p;
    *len = model.len;
    return 0;
}
