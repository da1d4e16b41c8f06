#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t pad(size_t n)
{
    return (n + MODEL_ALIGN - 1) / MODEL_ALIGN * MODEL_ALIGN;
}

/* Builds each layer from the one before and lays their tensors out. */
static int build_layers(tr_model *m, tr_error *err)
{
    tr_tensor_shape in = m->input;
    size_t off = 0;
    for (int l = 0; l < m->n_layers; l++) {
        tr_layer *y = &m->layer[l];
        y->index = l;
        y->in = in;
        y->reads_images = l == 0;
        y->relu_by_next = y->relu_of_prev = 0;
        if (tr_layer_build(y, err))
            return -1;
        if (l > 0)
            tr_layer_link(&m->layer[l - 1], y);
        if (tr_layer_is_head(y) != (l == m->n_layers - 1))
            return tr_error_set(err, "layer %d: a %s layer can %s", l + 1,
                                tr_layer_kind_name(y->kind),
                                tr_layer_is_head(y) ? "only be the last" : "not be the last");
        y->begin = off;
        for (int t = 0; t < y->n_tensors; t++) {
            y->offset[t] = off;
            off += pad(y->count[t]);
        }
        y->end = off;
        in = y->out;
    }
    m->len = off;
    return 0;
}

int tr_model_define(tr_model *m, tr_tensor_shape input, const tr_layer *layers, int n_layers,
                    tr_error *err)
{
    memset(m, 0, sizeof *m);
    if (input.h < 1 || input.w < 1 || input.c < 1 || input.h > LAYER_MAX_WIDTH ||
        input.w > LAYER_MAX_WIDTH || input.c > LAYER_MAX_WIDTH ||
        tr_tensor_size(input) > MODEL_MAX_INPUT)
        return tr_error_set(err, "an input of %d x %d x %d values", input.h, input.w, input.c);
    if (n_layers < 2 || n_layers > MODEL_MAX_LAYERS)
        return tr_error_set(err, "a model has 2 to %d layers, its head included (got %d)",
                            MODEL_MAX_LAYERS, n_layers);
    m->input = input;
    m->n_layers = n_layers;
    for (int l = 0; l < n_layers; l++) {
        m->layer[l] = (tr_layer){.kind = layers[l].kind};
        memcpy(m->layer[l].hp, layers[l].hp, sizeof layers[l].hp);
    }
    if (build_layers(m, err)) {
        memset(m, 0, sizeof *m);
        return -1;
    }
    return 0;
}

int tr_model_alloc(tr_model *m, tr_error *err)
{
    m->params = tr_model_buffer_new(m->len);
    if (!m->params)
        return tr_error_set(err, "out of memory for %zu parameters", m->len);
    return 0;
}

int tr_model_init(tr_model *m, tr_tensor_shape input, const tr_layer *layers, int n_layers,
                  tr_error *err)
{
    return tr_model_define(m, input, layers, n_layers, err) || tr_model_alloc(m, err) ? -1 : 0;
}

int tr_model_define_mlp(tr_model *m, tr_tensor_shape input, const tr_mlp_shape *s, tr_error *err)
{
    memset(m, 0, sizeof *m);
    if (tr_tensor_size(input) != s->sizes[0])
        return tr_error_set(err, "an input of %ld values for a model of %d inputs",
                            tr_tensor_size(input), s->sizes[0]);
    char spec[MLP_MAX_LAYERS * 24];
    size_t used = 0;
    for (int l = 0; l < s->n_layers; l++)
        used += (size_t)snprintf(spec + used, sizeof spec - used, "%sdense(%d,%s)",
                                 l ? "," : "", s->sizes[l + 1],
                                 l < s->n_layers - 1 ? "relu" : "softmax");
    tr_layer layers[MODEL_MAX_LAYERS];
    int n;
    if (tr_model_parse_layers(spec, layers, &n, err))
        return -1;
    return tr_model_define(m, input, layers, n, err);
}

int tr_model_init_mlp(tr_model *m, tr_tensor_shape input, const tr_mlp_shape *s, tr_error *err)
{
    return tr_model_define_mlp(m, input, s, err) || tr_model_alloc(m, err) ? -1 : 0;
}

int tr_model_mlp_shape(const tr_model *m, tr_mlp_shape *s, tr_error *err)
{
    memset(s, 0, sizeof *s);
    const int dense = m->n_layers - 1;
    if (dense > MLP_MAX_LAYERS)
        return tr_error_set(err, "a model of %d layers is not a stack of at most %d dense layers",
                            m->n_layers, MLP_MAX_LAYERS);
    s->n_layers = dense;
    s->sizes[0] = (int)tr_tensor_size(m->input);
    /* Read from the layers' specs: dense(N,relu) but for the last, dense(N)
     * before the softmax head. */
    char spec[96], expect[96];
    for (int l = 0; l < dense; l++) {
        const tr_layer *y = &m->layer[l];
        tr_layer_format(y, 0, spec, sizeof spec);
        int units = 0;
        if (sscanf(spec, "dense(%d", &units) == 1)
            snprintf(expect, sizeof expect, "dense(%d%s)", units,
                     l == dense - 1 ? "" : ",relu");
        if (units < 1 || strcmp(spec, expect) != 0)
            return tr_error_set(err, "layer %d (%s) is not what a stack of dense layers has "
                                "there", l + 1, tr_layer_kind_name(y->kind));
        s->sizes[l + 1] = units;
    }
    return 0;
}

int tr_model_same_layers(const tr_model *a, const tr_model *b)
{
    if (a->n_layers != b->n_layers || a->input.h != b->input.h || a->input.w != b->input.w ||
        a->input.c != b->input.c)
        return 0;
    for (int l = 0; l < a->n_layers; l++)
        if (a->layer[l].kind != b->layer[l].kind ||
            memcmp(a->layer[l].hp, b->layer[l].hp, sizeof a->layer[l].hp) != 0)
            return 0;
    return 1;
}

void tr_model_free(tr_model *m)
{
    tr_model_buffer_free(m->params);
    memset(m, 0, sizeof *m);
}

void tr_model_init_glorot(tr_model *m, uint64_t seed)
{
    for (int l = 0; l < m->n_layers; l++)
        tr_layer_init(&m->layer[l], m->params, seed);
}

size_t tr_model_param_count(const tr_model *m)
{
    size_t n = 0;
    for (int l = 0; l < m->n_layers; l++)
        for (int t = 0; t < m->layer[l].n_tensors; t++)
            n += m->layer[l].count[t];
    return n;
}

int tr_model_classes(const tr_model *m)
{
    return (int)tr_tensor_size(m->layer[m->n_layers - 1].out);
}

int tr_model_tensors(const tr_model *m, float *buf, float **ptr, size_t *count)
{
    int k = 0;
    for (int l = 0; l < m->n_layers; l++)
        for (int t = 0; t < m->layer[l].n_tensors; t++) {
            ptr[k] = buf + m->layer[l].offset[t];
            count[k++] = m->layer[l].count[t];
        }
    return k;
}

/* Fails, naming the first value of buf's real tensors that is not finite
 * or, with nonnegative, below 0. */
static int check_values(const tr_model *m, const float *buf, const char *name, const char *what,
                        int nonnegative, tr_error *err)
{
    for (int l = 0; l < m->n_layers; l++) {
        const tr_layer *y = &m->layer[l];
        for (int t = 0; t < y->n_tensors; t++)
            for (size_t k = 0; k < y->count[t]; k++) {
                const float v = buf[y->offset[t] + k];
                if (isfinite(v) && !(nonnegative && v < 0.0f))
                    continue;
                const char *kind = tr_layer_kind_name(y->kind);
                char value[32];
                snprintf(value, sizeof value, isfinite(v) ? "negative (%g)" : "%g", (double)v);
                if (t == 0 && y->n_tensors == 2) {
                    const size_t cols = y->count[1];
                    return tr_error_set(err, "%s: %s of layer %d (%s_%d), weight [%zu][%zu], is "
                                        "%s", name, what, l + 1, kind, l + 1, k / cols, k % cols,
                                        value);
                }
                if (y->n_tensors == 2)
                    return tr_error_set(err, "%s: %s of layer %d (%s_%d), bias [%zu], is %s",
                                        name, what, l + 1, kind, l + 1, k, value);
                return tr_error_set(err, "%s: %s of layer %d (%s_%d), tensor %d [%zu], is %s",
                                    name, what, l + 1, kind, l + 1, t + 1, k, value);
            }
    }
    return 0;
}

int tr_model_check_finite(const tr_model *m, const float *buf, const char *name, const char *what,
                          tr_error *err)
{
    return check_values(m, buf, name, what, 0, err);
}

int tr_model_check_nonnegative(const tr_model *m, const float *buf, const char *name,
                               const char *what, tr_error *err)
{
    return check_values(m, buf, name, what, 1, err);
}

float *tr_model_buffer_new(size_t len)
{
    size_t bytes = (len * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p)
        memset(p, 0, bytes);
    return p;
}

void tr_model_buffer_free(float *buf)
{
    free(buf);
}

/* pad() in double, exact below 2^53. */
static double pad_exact(double n)
{
    return ceil(n / MODEL_ALIGN) * MODEL_ALIGN;
}

/* Floats of a workspace for blocks of max_n samples, as tr_model_work_init lays
 * it out, counted in double so that no product can wrap around. */
static double work_floats(const tr_model *m, int max_n)
{
    const double n = max_n;
    double floats = pad_exact(n * (double)tr_tensor_size(m->input));
    for (int l = 0; l < m->n_layers - 1; l++)
        floats += 2 * pad_exact(n * (double)tr_tensor_size(m->layer[l].out));
    floats += pad_exact(n); /* labels, as bytes, fit in max_n floats */
    floats += pad_exact(n * (double)(sizeof(uint8_t *) / sizeof(float))); /* rows */
    for (int l = 0; l < m->n_layers; l++)
        floats += pad_exact(floor((double)tr_layer_work_bytes(&m->layer[l], max_n) /
                                  sizeof(float)) + 1) +
                  pad_exact(2.0 * tr_layer_batch_sums(&m->layer[l]));
    return floats;
}

double tr_model_work_bytes(const tr_model *m, int max_n)
{
    return work_floats(m, max_n) * sizeof(float);
}

double tr_model_memory_limit(void)
{
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? 0.5 * (double)pages * (double)page : 4e9;
}

int tr_model_work_init(tr_model_work *w, const tr_model *m, int max_n, tr_error *err)
{
    memset(w, 0, sizeof *w);
    const double count = work_floats(m, max_n), need = count * sizeof(float);
    const double limit = tr_model_memory_limit();
    if (need > limit)
        return tr_error_set(err, "the model needs %.3g GB of working memory for %d sample%s at "
                            "a time, more than the %.3g GB allowed (half of this machine's "
                            "memory)", need / 1e9, max_n, max_n == 1 ? "" : "s", limit / 1e9);
    /* Within the bound, the count is exact in a double. */
    const size_t n = (size_t)max_n, floats = (size_t)count;
    float *p = tr_model_buffer_new(floats);
    if (!p)
        return tr_error_set(err, "out of memory for a workspace of %zu floats", floats);
    w->block = p;
    w->max_n = max_n;
    w->x = p;
    p += pad(n * (size_t)tr_tensor_size(m->input));
    for (int l = 0; l < m->n_layers - 1; l++) {
        const size_t size = n * (size_t)tr_tensor_size(m->layer[l].out);
        w->act[l] = p;
        p += pad(size);
        w->delta[l] = p;
        p += pad(size);
    }
    w->y = (uint8_t *)p;
    p += pad(n);
    w->rows = (const uint8_t **)(void *)p;
    p += pad(n * sizeof(uint8_t *) / sizeof(float));
    for (int l = 0; l < m->n_layers; l++) {
        const size_t bytes = tr_layer_work_bytes(&m->layer[l], max_n);
        if (!bytes)
            continue;
        w->work[l] = p;
        tr_layer_work_init(&m->layer[l], p, max_n);
        p += pad(bytes / sizeof(float) + 1);
    }
    for (int l = 0; l < m->n_layers; l++) {
        const size_t sums = (size_t)tr_layer_batch_sums(&m->layer[l]);
        if (!sums)
            continue;
        w->sums[l] = (double *)(void *)p;
        p += pad(2 * sums);
    }
    return 0;
}

void tr_model_work_free(tr_model_work *w)
{
    free(w->block);
    memset(w, 0, sizeof *w);
}

tr_layer_input tr_model_input(const tr_model_work *w, const uint8_t *const *rows, float divisor)
{
    return rows ? (tr_layer_input){NULL, rows, divisor} : (tr_layer_input){w->x, NULL, 1.0f};
}

/* Whether the first layer takes the block's images as floats in w->x
 * (tr_model_first_input converts them there). */
static int converts_images(const tr_model *m, const tr_layer_input *in)
{
    return in->rows && !m->layer[0].reads_images;
}

tr_layer_input tr_model_first_input(const tr_model *m, tr_model_work *w, const tr_layer_input *in,
                                    int n)
{
    if (!converts_images(m, in))
        return *in;
    const long size = tr_tensor_size(m->input);
    for (int s = 0; s < n; s++)
        for (long i = 0; i < size; i++)
            w->x[s * size + i] = (float)in->rows[s][i] / in->divisor;
    return (tr_layer_input){w->x, NULL, 1.0f};
}

/* Layer l's input: the model's for the first (as tr_model_first_input gave
 * it), else the output before it. */
static tr_layer_input input_of(const tr_model_work *w, const tr_layer_input *first, int l)
{
    return l ? (tr_layer_input){w->act[l - 1], NULL, 1.0f} : *first;
}

/* A training pass of the block alone as its batch: a layer of batch
 * statistics reads the block's own sums. */
static tr_layer_pass block_pass(const tr_model_work *w, int l, const tr_layer_pass *pass, int n)
{
    tr_layer_pass p = *pass;
    p.batch = w->sums[l];
    p.batch_n = (uint32_t)n;
    return p;
}

const float *tr_model_forward(const tr_model *m, tr_model_work *w, const tr_layer_input *in, int n,
                              const tr_layer_pass *pass)
{
    const int body = m->n_layers - 1;
    const tr_layer_input first = tr_model_first_input(m, w, in, n);
    for (int l = 0; l < body; l++) {
        const tr_layer_input x = input_of(w, &first, l);
        const tr_layer *y = &m->layer[l];
        if (pass && pass->training && w->sums[l]) {
            tr_layer_forward_sums(y, w->sums[l], x.x, n);
            const tr_layer_pass p = block_pass(w, l, pass, n);
            tr_layer_forward(y, w->act[l], &x, m->params, w->work[l], n, &p);
        } else {
            tr_layer_forward(y, w->act[l], &x, m->params, w->work[l], n, pass);
        }
    }
    return w->act[body - 1];
}

void tr_model_probabilities(const tr_model *m, tr_model_work *w, const tr_layer_input *in, int n,
                            float *probs)
{
    const int k = tr_model_classes(m);
    const float *logits = tr_model_forward(m, w, in, n, NULL);
    for (int s = 0; s < n; s++) {
        const float *z = logits + (long)s * k;
        float *p = probs + (long)s * k, top = z[0], sum = 0.0f;
        for (int c = 1; c < k; c++)
            top = z[c] > top ? z[c] : top;
        for (int c = 0; c < k; c++) {
            p[c] = expf(z[c] - top);
            sum += p[c];
        }
        for (int c = 0; c < k; c++)
            p[c] /= sum;
    }
}

void tr_model_top_classes(const float *probs, int classes, int *top, int k)
{
    for (int t = 0; t < k; t++) {
        top[t] = -1;
        for (int c = 0; c < classes; c++) {
            int taken = 0;
            for (int q = 0; q < t; q++)
                taken |= top[q] == c;
            if (!taken && (top[t] < 0 || probs[c] > probs[top[t]]))
                top[t] = c;
        }
    }
}

double tr_model_backward(const tr_model *m, tr_model_work *w, const tr_layer_input *in,
                         const uint8_t *labels, int n, float scale, float *grad, int *correct)
{
    const int head = m->n_layers - 1;
    double loss = tr_layer_loss(&m->layer[head], w->delta[head - 1], w->act[head - 1], labels, n,
                                scale, 0.0f, correct);
    const tr_layer_input first = converts_images(m, in) ? (tr_layer_input){w->x, NULL, 1.0f} : *in;
    const tr_layer_pass training = {.training = 1};
    for (int l = head - 1; l >= 0; l--) {
        const tr_layer *y = &m->layer[l];
        const float *x = input_of(w, &first, l).x;
        const tr_layer_pass p = block_pass(w, l, &training, n);
        if (w->sums[l])
            tr_layer_backward_sums(y, w->sums[l], w->delta[l], x, w->work[l], n);
        tr_layer_backward(y, l ? w->delta[l - 1] : NULL, grad, w->delta[l], x, w->act[l],
                          m->params, w->work[l], n, &p);
    }
    return loss;
}
