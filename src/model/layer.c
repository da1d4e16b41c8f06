#include "layer.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "layer_kinds.h"

extern const layer_ops tr_dense_layer_ops, tr_softmax_layer_ops, tr_conv2d_layer_ops,
    tr_maxpool2d_layer_ops, tr_flatten_layer_ops, tr_dropout_layer_ops, tr_avgpool2d_layer_ops,
    tr_global_avgpool2d_layer_ops, tr_batchnorm_layer_ops, tr_relu_layer_ops,
    tr_random_translation_layer_ops, tr_random_rotation_layer_ops, tr_random_zoom_layer_ops;

/* One line per kind, at the number the files know it by: a new kind is its
 * module and its line here. */
static const layer_ops *const kinds[] = {
    [LAYER_DENSE] = &tr_dense_layer_ops,
    [LAYER_SOFTMAX] = &tr_softmax_layer_ops,
    [3] = &tr_conv2d_layer_ops,
    [4] = &tr_maxpool2d_layer_ops,
    [5] = &tr_flatten_layer_ops,
    [6] = &tr_dropout_layer_ops,
    [7] = &tr_avgpool2d_layer_ops,
    [8] = &tr_global_avgpool2d_layer_ops,
    [9] = &tr_batchnorm_layer_ops,
    [10] = &tr_relu_layer_ops,
    [11] = &tr_random_translation_layer_ops,
    [12] = &tr_random_rotation_layer_ops,
    [13] = &tr_random_zoom_layer_ops,
};

enum { N_KINDS = sizeof kinds / sizeof kinds[0] };

const layer_ops *tr_layer_kind_ops(tr_layer_kind kind)
{
    return kind < N_KINDS ? kinds[kind] : NULL;
}

static const layer_ops *ops(const tr_layer *l)
{
    return kinds[l->kind];
}

long tr_tensor_size(tr_tensor_shape s)
{
    return (long)s.h * s.w * s.c;
}

const char *tr_layer_kind_name(tr_layer_kind kind)
{
    return tr_layer_kind_ops(kind) ? kinds[kind]->name : "unknown";
}

const char *tr_layer_kind_keras_name(tr_layer_kind kind)
{
    return tr_layer_kind_ops(kind) ? kinds[kind]->keras : "Unknown";
}

tr_layer_kind tr_layer_kind_named(const char *name)
{
    for (tr_layer_kind k = 0; k < N_KINDS; k++)
        if (kinds[k] && !kinds[k]->head &&
            (strcasecmp(name, kinds[k]->name) == 0 ||
             (kinds[k]->alias && strcasecmp(name, kinds[k]->alias) == 0)))
            return k;
    return 0;
}

void tr_layer_kind_list(char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (tr_layer_kind k = 0; k < N_KINDS && used < size; k++)
        if (kinds[k] && !kinds[k]->head)
            used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? ", " : "",
                                     kinds[k]->name);
}

int tr_layer_from_words(tr_layer *l, uint32_t kind, const uint32_t words[LAYER_HYPER_WORDS],
                        tr_error *err)
{
    memset(l, 0, sizeof *l);
    if (!tr_layer_kind_ops(kind))
        return tr_error_set(err, "unknown layer kind %u", kind);
    l->kind = kind;
    const layer_ops *k = kinds[kind];
    if (k->check && k->check(words, err))
        return -1;
    for (int w = k->words; w < LAYER_HYPER_WORDS; w++)
        if (words[w])
            return k->words ? tr_error_set(err, "%s hyper-parameter word %d is %u, not 0",
                                           k->name, w, words[w])
                            : tr_error_set(err, "%s takes no hyper-parameters (word %d is %u)",
                                           k->name, w, words[w]);
    memcpy(l->hp, words, sizeof l->hp);
    return 0;
}

int tr_layer_build(tr_layer *l, tr_error *err)
{
    if (!tr_layer_kind_ops(l->kind))
        return tr_error_set(err, "layer %d: unknown kind %u", l->index + 1, l->kind);
    l->n_tensors = 0;
    memset(l->count, 0, sizeof l->count);
    memset(l->trainable, 0, sizeof l->trainable);
    l->reads_images = l->reads_images && ops(l)->reads_images;
    return ops(l)->build(l, err);
}

int tr_layer_per_sample(const tr_layer *l)
{
    return ops(l)->per_sample;
}

void tr_layer_link(tr_layer *prev, tr_layer *next)
{
    prev->relu_by_next = next->relu_of_prev =
        ops(next)->takes_relu && ops(prev)->ends_in_relu && ops(prev)->ends_in_relu(prev);
}

int tr_layer_is_head(const tr_layer *l)
{
    return ops(l)->head;
}

void tr_layer_format(const tr_layer *l, int last, char *buf, size_t size)
{
    if (ops(l)->format)
        ops(l)->format(l, last, buf, size);
    else
        snprintf(buf, size, "%s", ops(l)->name);
}

double tr_layer_forward_macs(const tr_layer *l)
{
    return ops(l)->macs ? ops(l)->macs(l) : 0.0;
}

size_t tr_layer_work_bytes(const tr_layer *l, int max_n)
{
    return ops(l)->work_bytes ? ops(l)->work_bytes(l, max_n) : 0;
}

void tr_layer_work_init(const tr_layer *l, void *mem, int max_n)
{
    if (ops(l)->work_init)
        ops(l)->work_init(l, mem, max_n);
}

void tr_layer_init(const tr_layer *l, float *params, uint64_t seed)
{
    if (ops(l)->init)
        ops(l)->init(l, params, seed);
}

void tr_layer_forward(const tr_layer *l, float *out, const tr_layer_input *in, const float *params,
                      void *work, int n, const tr_layer_pass *pass)
{
    ops(l)->forward(l, out, in, params, work, n, pass);
}

void tr_layer_backward(const tr_layer *l, float *d_in, float *grad, float *d_out, const float *in,
                       const float *out, const float *params, void *work, int n,
                       const tr_layer_pass *pass)
{
    ops(l)->backward(l, d_in, grad, d_out, in, out, params, work, n, pass);
}

int tr_layer_batch_sums(const tr_layer *l)
{
    return ops(l)->batch_sums ? ops(l)->batch_sums(l) : 0;
}

void tr_layer_forward_sums(const tr_layer *l, double *sums, const float *in, int n)
{
    ops(l)->forward_sums(l, sums, in, n);
}

void tr_layer_backward_sums(const tr_layer *l, double *sums, const float *d_out, const float *in,
                            void *work, int n)
{
    ops(l)->backward_sums(l, sums, d_out, in, work, n);
}

void tr_layer_batch_update(const tr_layer *l, float *params, const double *batch, uint32_t batch_n)
{
    ops(l)->batch_update(l, params, batch, batch_n);
}

double tr_layer_loss(const tr_layer *l, float *d_in, const float *in, const uint8_t *labels, int n,
                     float scale, float ls, int *correct)
{
    return ops(l)->loss(l, d_in, in, labels, n, scale, ls, correct);
}

double tr_layer_predict(const tr_layer *l, uint8_t *pred, const float *in, const uint8_t *labels,
                        int n, float ls, int *correct)
{
    return ops(l)->predict(l, pred, in, labels, n, ls, correct);
}

const layer_trainer_ops *tr_layer_trainer(const tr_layer *l)
{
    return ops(l)->trainer ? ops(l)->trainer(l) : NULL;
}

export_module *tr_export_add(layer_export *e, const char *onnx, const char *fmt, ...)
{
    export_module *m = &e->mod[e->n++];
    memset(m, 0, sizeof *m);
    m->onnx = onnx;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->torch, sizeof m->torch, fmt, ap);
    va_end(ap);
    return m;
}

void tr_export_attr_ints(export_module *m, const char *name, int n, const int64_t *v)
{
    export_attr *a = &m->attr[m->n_attrs++];
    *a = (export_attr){.name = name, .list = 1, .n = n};
    memcpy(a->v, v, sizeof *v * (size_t)n);
}

void tr_export_attr_int(export_module *m, const char *name, int64_t v)
{
    m->attr[m->n_attrs++] = (export_attr){.name = name, .n = 1, .v = {v}};
}

void tr_export_attr_float(export_module *m, const char *name, float v)
{
    m->attr[m->n_attrs++] = (export_attr){.name = name, .is_float = 1, .f = v};
}

void tr_export_param_add(export_module *m, const char *name, int tensor, int nd,
                         const int64_t *dims)
{
    export_param *p = &m->param[m->n_params++];
    *p = (export_param){.name = name, .tensor = tensor, .nd = nd};
    memcpy(p->dims, dims, sizeof *dims * (size_t)nd);
}

int tr_window_parse(const spec_item *it, const char *kind, uint32_t *hp, tr_error *err)
{
    if (it->n_args != 1)
        return tr_error_set(err, "'%s': %s takes its pool size, as %s(2)", it->text, kind, kind);
    return tr_spec_whole(it, 0, 1, 64, &hp[0], "pool size", err);
}

int tr_window_check(const uint32_t *words, const char *kind, tr_error *err)
{
    if (words[0] < 1 || words[0] > 64)
        return tr_error_set(err, "%s %u (1 to 64)", kind, words[0]);
    return 0;
}

int tr_window_build(tr_layer *l, tr_error *err)
{
    const int p = (int)l->hp[0];
    const char *kind = tr_layer_kind_name(l->kind);
    if (p < 1 || p > 64)
        return tr_error_set(err, "layer %d: %s %d (1 to 64)", l->index + 1, kind, p);
    if (p > l->in.h || p > l->in.w)
        return tr_error_set(err, "layer %d: %s %dx%d on a %dx%d input", l->index + 1, kind, p, p,
                            l->in.h, l->in.w);
    l->out = (tr_tensor_shape){l->in.h / p, l->in.w / p, l->in.c};
    return 0;
}

void tr_window_format(const tr_layer *l, int last, char *buf, size_t size)
{
    (void)last;
    snprintf(buf, size, "%s(%u)", tr_layer_kind_name(l->kind), l->hp[0]);
}

void tr_window_export(const tr_layer *l, const char *onnx, const char *torch, layer_export *e)
{
    const int64_t p[2] = {l->hp[0], l->hp[0]};
    export_module *m = tr_export_add(e, onnx, "%s(%u)", torch, l->hp[0]);
    tr_export_attr_ints(m, "kernel_shape", 2, p);
    tr_export_attr_ints(m, "strides", 2, p);
}
