#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dense.h"
#include "parallel.h"
#include "rng.h"

/* Per-shard results of one step, one cache line each so that threads writing
 * neighbouring shards do not share a line. */
typedef struct {
    double loss;
    int correct;
    int n;
    char pad[64 - sizeof(double) - 2 * sizeof(int)];
} shard_result;

struct train_session {
    mlp *model;
    train_config cfg;
    int threads; /* threads that run: cfg.threads, at most shards */
    int shards;
    adam opt;
    float **grad;               /* [shards] buffers of model->len floats */
    dense_view (*grad_view)[MLP_MAX_LAYERS];
    mlp_work *work;             /* [threads] */
    shard_result *result;       /* [shards] */
    uint8_t **rows_used;        /* [shards][inputs]: first-layer weight rows its samples use,
                                   each part's found by the part's owner */
    /* The first layer's sums are computed by the owners of its weight rows
     * (see train.h): after updating its part of the parameters, a thread
     * sums the next batch over that part's first-layer rows, which are still
     * in its cache.  Hence each shard's input lists and labels are kept for
     * two batches: the one being trained and the next, listed before the
     * update.  Measured: 1.07x samples/s at 2 threads (medians of 9
     * alternated runs), where the same with the former one-input-at-a-time
     * kernels had been 0.87x: the sums were then too slow to move. */
    dense_inputs (*lists)[2];   /* [shards][2] */
    uint8_t *(*labels)[2];      /* [shards][2] */
    void *list_block;           /* the memory behind lists and labels */
    int *part_row;              /* [shards + 1]: part k's first-layer rows */
    float *partial;             /* [shards][batch_size][sizes[1]]: part k's sums */
    float *first_delta;         /* [shards][max shard][sizes[1]]: the first layer's output
                                   gradient of each shard's samples */
    int max_shard;
    uint8_t *row_idle;          /* [inputs]: first-layer rows whose m and v are all 0 */
    const float **nonempty;     /* [threads][shards]: scratch for the reduce */
    int *nonempty_shard;        /* [threads][shards]: which shard each of those is */
    uint32_t *order;            /* sample order of the current epoch */
    uint32_t order_cap;
    int threads_ran;            /* threads the last parallel region had */
};

/* Where the first layer's weights lie in a buffer of the model's layout:
 * floats [w0, w1), in rows of `width` (one row per input). */
typedef struct {
    size_t w0, w1, width;
} weight_rows;

static weight_rows first_layer_rows(const mlp *m)
{
    const size_t width = (size_t)m->shape.sizes[1];
    const size_t w0 = (size_t)(m->layer[0].w - m->params);
    return (weight_rows){w0, w0 + (size_t)m->shape.sizes[0] * width, width};
}

/* Where slice t of nt starts in the buffer: on a cache line, or, in the first
 * layer's weights, on the start of a group of DENSE_GROUP rows, so that each
 * row has one owner and each part's sums cover whole groups. */
static size_t slice_start(size_t len, int t, int nt, weight_rows w)
{
    size_t lines = (len + MLP_ALIGN - 1) / MLP_ALIGN;
    size_t per = (lines + (size_t)nt - 1) / (size_t)nt;
    size_t at = (size_t)t * per * MLP_ALIGN;
    if (at > len)
        at = len;
    const size_t group = w.width * DENSE_GROUP;
    if (at > w.w0 && at < w.w1) {
        at = w.w0 + (at - w.w0 + group / 2) / group * group;
        at = at < w.w1 ? at : w.w1;
    }
    return at;
}

/* The slice [*lo, *hi) of the parameters that make up part k: the parts are
 * as many as the shards, and a thread reduces and updates the parts of the
 * shards it runs. */
static void part_slice(const train_session *s, int k, size_t *lo, size_t *hi)
{
    const mlp *m = s->model;
    const weight_rows w = first_layer_rows(m);
    *lo = slice_start(m->len, k, s->shards, w);
    *hi = slice_start(m->len, k + 1, s->shards, w);
}

/* Fills s->part_row: part k holds the first layer's weight rows
 * [part_row[k], part_row[k + 1]). */
static void find_parts(train_session *s)
{
    const weight_rows w = first_layer_rows(s->model);
    for (int k = 0; k <= s->shards; k++) {
        size_t at = slice_start(s->model->len, k, s->shards, w);
        at = at < w.w0 ? w.w0 : at > w.w1 ? w.w1 : at;
        s->part_row[k] = (int)((at - w.w0) / w.width);
    }
}

int train_session_new(train_session **out, mlp *model, const train_config *cfg,
                      tr_error *err)
{
    *out = NULL;
    const int shards = cfg->shards ? cfg->shards : cfg->threads;
    if (cfg->threads < 1 || cfg->batch_size < 1 || shards < 1 || shards > TRAIN_MAX_SHARDS)
        return error_set(err, "training needs threads >= 1, a batch size >= 1 and 1 to %d "
                         "shards (got %d, %d, %d)", TRAIN_MAX_SHARDS, cfg->threads,
                         cfg->batch_size, shards);
    train_session *s = calloc(1, sizeof *s);
    if (!s)
        return error_set(err, "out of memory");
    s->model = model;
    s->cfg = *cfg;
    s->shards = shards;
    s->threads = train_threads_used(cfg->threads, s->shards);
    int max_shard = (cfg->batch_size + s->shards - 1) / s->shards;
    s->grad = calloc((size_t)s->shards, sizeof *s->grad);
    s->grad_view = calloc((size_t)s->shards, sizeof *s->grad_view);
    s->work = calloc((size_t)s->threads, sizeof *s->work);
    s->result = aligned_alloc(64, sizeof(shard_result) * (size_t)s->shards);
    s->nonempty = calloc((size_t)s->threads * s->shards, sizeof *s->nonempty);
    s->nonempty_shard = calloc((size_t)s->threads * s->shards, sizeof *s->nonempty_shard);
    s->rows_used = calloc((size_t)s->shards, sizeof *s->rows_used);
    s->row_idle = calloc((size_t)model->shape.sizes[0], 1);
    s->lists = calloc((size_t)s->shards, sizeof *s->lists);
    s->labels = calloc((size_t)s->shards, sizeof *s->labels);
    s->part_row = calloc((size_t)s->shards + 1, sizeof *s->part_row);
    const size_t list_bytes = dense_inputs_bytes(max_shard, model->shape.sizes[0]);
    const size_t label_bytes = ((size_t)max_shard + 63) / 64 * 64;
    s->list_block = aligned_alloc(64, 2 * (size_t)s->shards * (list_bytes + label_bytes));
    s->partial = mlp_buffer_new((size_t)s->shards * (size_t)cfg->batch_size *
                                (size_t)model->shape.sizes[1]);
    s->max_shard = max_shard;
    s->first_delta = mlp_buffer_new((size_t)s->shards * (size_t)max_shard *
                                    (size_t)model->shape.sizes[1]);
    if (!s->grad || !s->grad_view || !s->work || !s->result || !s->nonempty ||
        !s->nonempty_shard || !s->rows_used || !s->row_idle || !s->lists || !s->labels ||
        !s->part_row || !s->list_block || !s->partial ||
        !s->first_delta)
        goto oom;
    char *mem = s->list_block;
    for (int k = 0; k < s->shards; k++)
        for (int b = 0; b < 2; b++) {
            dense_inputs_init(&s->lists[k][b], mem, max_shard, model->shape.sizes[0]);
            s->labels[k][b] = (uint8_t *)(mem + list_bytes);
            mem += list_bytes + label_bytes;
        }
    find_parts(s);
    for (int k = 0; k < s->shards; k++) {
        s->grad[k] = mlp_buffer_new(model->len);
        if (!s->grad[k])
            goto oom;
        mlp_views(&model->shape, s->grad[k], s->grad_view[k]);
        s->rows_used[k] = calloc((size_t)model->shape.sizes[0], 1);
        if (!s->rows_used[k])
            goto oom;
    }
    for (int t = 0; t < s->threads; t++)
        if (mlp_work_init(&s->work[t], &model->shape, max_shard, err))
            goto fail;
    if (adam_init(&s->opt, model->len, &cfg->adam, err))
        goto fail;
    *out = s;
    return 0;
oom:
    error_set(err, "out of memory for the training buffers");
fail:
    train_session_free(s);
    return -1;
}

void train_session_free(train_session *s)
{
    if (!s)
        return;
    for (int k = 0; s->grad && k < s->shards; k++)
        mlp_buffer_free(s->grad[k]);
    for (int k = 0; s->rows_used && k < s->shards; k++)
        free(s->rows_used[k]);
    free(s->rows_used);
    free(s->row_idle);
    free(s->lists);
    free(s->labels);
    free(s->list_block);
    free(s->part_row);
    mlp_buffer_free(s->partial);
    mlp_buffer_free(s->first_delta);
    free(s->nonempty_shard);
    for (int t = 0; s->work && t < s->threads; t++)
        mlp_work_free(&s->work[t]);
    adam_free(&s->opt);
    free(s->grad);
    free(s->grad_view);
    free(s->work);
    free(s->result);
    free(s->nonempty);
    free(s->order);
    free(s);
}

int train_threads_used(int threads, int shards)
{
    return shards && shards < threads ? shards : threads;
}

const adam *train_session_optimizer(const train_session *s)
{
    return &s->opt;
}

void train_session_set_optimizer(train_session *s, const float *m, const float *v, long step)
{
    memcpy(s->opt.m, m, sizeof(float) * s->opt.len);
    memcpy(s->opt.v, v, sizeof(float) * s->opt.len);
    s->opt.step = step;
}

int train_session_threads_ran(const train_session *s)
{
    return s->threads_ran;
}

/* The model must take one input per pixel, and labels go up to
 * DATASET_CLASSES - 1: a model with fewer outputs would have its softmax read
 * past a row. */
static int check_fit(const mlp_shape *s, const dataset *d, tr_error *err)
{
    if ((uint32_t)s->sizes[0] != d->dim)
        return error_set(err, "the model takes %d inputs, the images have %u pixels",
                         s->sizes[0], d->dim);
    int classes = s->sizes[s->n_layers];
    if (classes < DATASET_CLASSES)
        return error_set(err, "the model has %d outputs, the labels go up to %d", classes,
                         DATASET_CLASSES - 1);
    return 0;
}

/* Samples [*lo, *hi) of a batch of bn make up shard k. */
static void shard_range(const train_session *s, int k, uint32_t bn, uint32_t *lo,
                        uint32_t *hi)
{
    *lo = (uint32_t)((uint64_t)k * bn / s->shards);
    *hi = (uint32_t)((uint64_t)(k + 1) * bn / s->shards);
}

/* Lists the images of samples order[first .. first + n) (first .. first + n
 * when order is NULL), straight from their bytes, into l as a first-layer
 * input, and their labels into y; rows is scratch for n image addresses. */
static void list_images(dense_inputs *l, uint8_t *y, const uint8_t **rows, const dataset *d,
                        const uint32_t *order, uint32_t first, uint32_t n)
{
    dataset_rows(rows, y, d, order, first, n);
    dense_inputs_index_bytes(l, rows, (int)n, (int)d->dim, DATASET_PIXEL_DIVISOR);
}

/* Lists the shards that thread t runs of the batch [first, first + bn) into
 * their lists number `buf`. */
static void list_shards(train_session *s, const dataset *data, const uint32_t *order,
                        uint32_t first, uint32_t bn, int buf, int t, int nt)
{
    for (int k = t; k < s->shards; k += nt) {
        uint32_t lo, hi;
        shard_range(s, k, bn, &lo, &hi);
        if (hi > lo)
            list_images(&s->lists[k][buf], s->labels[k][buf], s->work[t].rows, data, order,
                        first + lo, hi - lo);
    }
}

/* The lists number `buf` of a batch of bn samples, every shard's, and where
 * each shard's samples start in the batch. */
typedef struct {
    const dense_inputs *list[TRAIN_MAX_SHARDS];
    int base[TRAIN_MAX_SHARDS];
    int n;       /* shards with samples */
    uint32_t bn; /* samples in the batch */
} batch_lists;

static void gather_lists(const train_session *s, int buf, uint32_t bn, batch_lists *b)
{
    b->n = 0;
    b->bn = bn;
    for (int k = 0; k < s->shards; k++) {
        uint32_t lo, hi;
        shard_range(s, k, bn, &lo, &hi);
        if (hi > lo) {
            b->list[b->n] = &s->lists[k][buf];
            b->base[b->n++] = (int)lo;
        }
    }
}

static float *part_sums(const train_session *s, int k)
{
    return s->partial + (size_t)k * (size_t)s->cfg.batch_size * (size_t)s->model->shape.sizes[1];
}

/* Adds rows [r0, r1) of part k's first-layer sums over a whole batch, from
 * the weights as they stand.  A part's sums are the rows' in order: cleared,
 * then its rows added in one call or in consecutive ranges, which gives the
 * same bits. */
static void sum_part_rows(train_session *s, int k, const batch_lists *b, int r0, int r1)
{
    if (r0 < r1)
        dense_forward_rows(part_sums(s, k), b->list, b->base, b->n, s->model->layer[0].w,
                           r0, r1, s->model->shape.sizes[0], s->model->shape.sizes[1]);
}

static void clear_part_sums(train_session *s, int k, const batch_lists *b)
{
    memset(part_sums(s, k), 0, sizeof(float) * b->bn * (size_t)s->model->shape.sizes[1]);
}

/* Part k's first-layer sums over a whole batch: after the part's update, or
 * alone at the first step of a run and for a gradient. */
static void sum_part(train_session *s, int k, const batch_lists *b)
{
    if (s->part_row[k] == s->part_row[k + 1])
        return;
    clear_part_sums(s, k, b);
    sum_part_rows(s, k, b, s->part_row[k], s->part_row[k + 1]);
}

static float *shard_delta(const train_session *s, int k)
{
    return s->first_delta + (size_t)k * (size_t)s->max_shard * (size_t)s->model->shape.sizes[1];
}

/* The first layer's weight gradient of every shard with samples in the
 * batch of bn (lists number buf) over rows [r0, r1) (whole groups), into each
 * shard's buffer, and which of those rows each shard's samples use
 * (train.h): the values the shards' own backward passes would give, computed
 * by the thread that goes on to reduce them. */
static void first_layer_gradient(train_session *s, int r0, int r1, int buf, uint32_t bn)
{
    if (r0 >= r1)
        return;
    const mlp *m = s->model;
    for (int q = 0; q < s->shards; q++) {
        uint32_t lo, hi;
        shard_range(s, q, bn, &lo, &hi);
        if (hi > lo)
            dense_weight_gradient_rows(s->grad_view[q][0].w, &s->lists[q][buf], shard_delta(s, q),
                                       r0, r1, m->shape.sizes[0], m->shape.sizes[1],
                                       s->rows_used[q]);
    }
}

/* Forward and backward pass of every shard of a batch of bn samples that
 * thread t owns, from the parts' first-layer sums and the lists number buf. */
static void run_shards(train_session *s, int buf, uint32_t bn, int t, int nt)
{
    mlp_work *w = &s->work[t];
    const mlp *m = s->model;
    const int width = m->shape.sizes[1];
    const float *parts[TRAIN_MAX_SHARDS];
    dense_view views[MLP_MAX_LAYERS];
    for (int k = t; k < s->shards; k += nt) {
        uint32_t lo, hi;
        shard_range(s, k, bn, &lo, &hi);
        shard_result *r = &s->result[k];
        const int n = (int)(hi - lo);
        r->n = n;
        r->loss = 0.0;
        r->correct = 0;
        if (n == 0)
            continue;
        int np = 0;
        for (int p = 0; p < s->shards; p++)
            if (s->part_row[p] < s->part_row[p + 1])
                parts[np++] = part_sums(s, p) + (size_t)lo * (size_t)width;
        dense_sum_parts(w->act[0], parts, np, m->layer[0].b, n, width, m->shape.n_layers > 1);
        mlp_forward_rest(m, w, n);
        /* The first layer's weight gradient is left to the owners of its
         * rows (first_layer_gradient): kept here are its factors, the
         * samples' inputs (listed) and output gradients. */
        memcpy(views, s->grad_view[k], sizeof views);
        views[0].w = NULL;
        r->loss = mlp_backward(m, w, &s->lists[k][buf], s->labels[k][buf], n,
                               1.0f / (float)bn, views, &r->correct);
        memcpy(shard_delta(s, k), w->delta[0], sizeof(float) * (size_t)n * (size_t)width);
    }
}

/* Lists, in shard order, the gradient buffers of the shards that had samples
 * in this step, and their shard numbers; thread t uses its own scratch lists.
 * Returns how many. */
static int nonempty_grads(train_session *s, int t, const float ***out, int **shard)
{
    const float **g = s->nonempty + (size_t)t * s->shards;
    int *which = s->nonempty_shard + (size_t)t * s->shards;
    int ng = 0;
    for (int k = 0; k < s->shards; k++)
        if (s->result[k].n > 0) {
            which[ng] = k;
            g[ng++] = s->grad[k];
        }
    *out = g;
    *shard = which;
    return ng;
}

/* Sums the gradients over [lo, hi) into out or, with out NULL, applies an Adam
 * step of size alpha with them. */
static void reduce_segment(train_session *s, const float *const *g, int ng, size_t lo,
                           size_t hi, float *out, float alpha)
{
    if (lo >= hi)
        return;
    if (!out) {
        adam_update(s->model->params, s->opt.m, s->opt.v, g, ng, lo, hi, &s->opt.hp, alpha);
        return;
    }
    for (size_t j = lo; j < hi; j++) {
        float sum = ng ? g[0][j] : 0.0f;
        for (int k = 1; k < ng; k++)
            sum += g[k][j];
        out[j] = sum;
    }
}

/* The first layer's rows [r0, r1) (whole groups) of the shards' gradients,
 * filled in for the batch of bn listed in lists number buf, then reduced
 * (into out, or into an Adam step when out is NULL).  A row counts only the
 * shards whose samples use it: the others' gradient there is 0, so the sums
 * are the same as over every shard, bit for bit, and rows no sample used are
 * not read at all.  g, which, ng: the non-empty shards (nonempty_grads). */
static void update_first_rows(train_session *s, int r0, int r1, int buf, uint32_t bn,
                              const float **g, const int *which, int ng, float *out,
                              float alpha)
{
    if (r0 >= r1)
        return;
    first_layer_gradient(s, r0, r1, buf, bn);
    const weight_rows wr = first_layer_rows(s->model);
    const float *rows[TRAIN_MAX_SHARDS];
    for (int row = r0; row < r1; row++) {
        const size_t j = wr.w0 + (size_t)row * wr.width;
        int nr = 0;
        for (int q = 0; q < ng; q++)
            if (s->rows_used[which[q]][row])
                rows[nr++] = g[q];
        /* A row with m = v = 0 and no gradient keeps its weights: the update
         * is 0 / (0 + eps).  About 9% of MNIST's rows (its border pixels)
         * are never lit. */
        if (out || nr > 0 || !s->row_idle[row]) {
            if (!out)
                s->row_idle[row] = 0;
            reduce_segment(s, rows, nr, j, j + wr.width, out, alpha);
        }
    }
}

/* Part k's parameters outside the first layer's weights, reduced likewise. */
static void update_rest(train_session *s, int k, const float **g, int ng, float *out,
                        float alpha)
{
    size_t lo, hi;
    part_slice(s, k, &lo, &hi);
    const weight_rows wr = first_layer_rows(s->model);
    reduce_segment(s, g, ng, lo, hi < wr.w0 ? hi : wr.w0, out, alpha);
    reduce_segment(s, g, ng, lo > wr.w1 ? lo : wr.w1, hi, out, alpha);
}

/* Reduces part k of the shards' gradients (into out, or into an Adam step
 * when out is NULL), thread t's scratch serving.  With next not NULL, part
 * k's first-layer sums of the next batch (listed in next) follow the
 * update. */
static void reduce_part(train_session *s, int k, int t, float *out, long step, int buf,
                        uint32_t bn, const batch_lists *next)
{
    const float **g;
    int *which;
    const int ng = nonempty_grads(s, t, &g, &which);
    const float alpha = out ? 0.0f : adam_alpha(&s->opt.hp, step);
    update_first_rows(s, s->part_row[k], s->part_row[k + 1], buf, bn, g, which, ng, out,
                      alpha);
    update_rest(s, k, g, ng, out, alpha);
    if (next)
        sum_part(s, k, next);
}

/* Sums the non-empty shards' gradients over thread t's parts and applies the
 * Adam step of number `step` to them; with next not NULL, computes those
 * parts' first-layer sums of the next batch on the way. */
static void reduce_and_update(train_session *s, int t, int nt, long step, int buf,
                              uint32_t bn, const batch_lists *next)
{
    for (int k = t; k < s->shards; k += nt)
        reduce_part(s, k, t, NULL, step, buf, bn, next);
}

/* out[j] = sum of the non-empty shards' gradients, over thread t's parts. */
static void reduce_into(train_session *s, float *out, int t, int nt, uint32_t bn)
{
    for (int k = t; k < s->shards; k += nt)
        reduce_part(s, k, t, out, 0, 0, bn, NULL);
}

/* The first step of a run: lists thread t's shards of the batch [first,
 * first + bn) into lists number buf and, once every thread has, sums its
 * parts of the first layer.  Later steps get both from the update before. */
static void start_batch(train_session *s, const dataset *data, const uint32_t *order,
                        uint32_t first, uint32_t bn, int buf, int t, int nt)
{
    list_shards(s, data, order, first, bn, buf, t, nt);
    batch_lists b;
    gather_lists(s, buf, bn, &b);
#pragma omp barrier
    for (int k = t; k < s->shards; k += nt)
        sum_part(s, k, &b);
#pragma omp barrier
}

int train_gradient(train_session *s, const dataset *data, const uint32_t *idx,
                   uint32_t n, float *grad, double *loss, tr_error *err)
{
    if (n < 1 || n > (uint32_t)s->cfg.batch_size)
        return error_set(err, "train_gradient: %u samples, the batch size is %d", n,
                         s->cfg.batch_size);
    if (check_fit(&s->model->shape, data, err))
        return -1;
    omp_set_dynamic(0);
#pragma omp parallel num_threads(s->threads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        const unsigned fp_mode = fp_flush_denormals();
        if (t == 0)
            s->threads_ran = nt;
        start_batch(s, data, idx, 0, n, 0, t, nt);
        run_shards(s, 0, n, t, nt);
#pragma omp barrier
        reduce_into(s, grad, t, nt, n);
        fp_restore(fp_mode);
    }
    double sum = 0.0;
    for (int k = 0; k < s->shards; k++)
        sum += s->result[k].loss;
    *loss = sum / (double)n;
    return 0;
}

/* Marks the first-layer rows whose Adam moments are all 0: untouched so far,
 * or decayed to 0 (denormals are flushed).  Read from the state itself, so a
 * loaded or resumed optimizer is judged as well as a fresh one. */
static void find_idle_rows(train_session *s)
{
    const weight_rows wr = first_layer_rows(s->model);
    for (int r = 0; r < s->model->shape.sizes[0]; r++) {
        const size_t at = wr.w0 + (size_t)r * wr.width;
        const float *m = s->opt.m + at, *v = s->opt.v + at;
        uint8_t idle = 1;
        for (size_t j = 0; j < wr.width; j++)
            idle &= m[j] == 0.0f && v[j] == 0.0f;
        s->row_idle[r] = idle;
    }
}

static int prepare_order(train_session *s, uint32_t n, int epoch)
{
    if (n > s->order_cap) {
        uint32_t *o = realloc(s->order, sizeof *o * n);
        if (!o)
            return -1;
        s->order = o;
        s->order_cap = n;
    }
    for (uint32_t i = 0; i < n; i++)
        s->order[i] = i;
    rng r;
    rng_seed(&r, s->cfg.seed, RNG_STREAM_SHUFFLE + (uint64_t)epoch);
    rng_shuffle(&r, s->order, n);
    return 0;
}

int train_epoch_from(train_session *s, const dataset *data, int epoch, epoch_progress *p,
                     const volatile sig_atomic_t *stop, double *loss, double *accuracy,
                     train_progress_fn progress, void *ctx, tr_error *err)
{
    *loss = *accuracy = NAN;
    if (data->n == 0)
        return error_set(err, "no training samples");
    if (check_fit(&s->model->shape, data, err))
        return -1;
    if (prepare_order(s, data->n, epoch))
        return error_set(err, "out of memory for the sample order");
    find_idle_rows(s);
    const uint32_t bs = (uint32_t)s->cfg.batch_size;
    const long n_batches = (long)((data->n + bs - 1) / bs);
    if (p->next_batch < 0 || p->next_batch > n_batches)
        return error_set(err, "epoch %d has %ld batches, cannot start at %ld", epoch,
                         n_batches, p->next_batch);
    /* Adam's step count is the batches applied so far, this epoch's included. */
    const long step0 = s->opt.step - p->next_batch;
    double loss_sum = p->loss_sum;
    long correct = p->correct, seen = p->seen;
    long diverged = -1; /* the step whose loss was not finite */
    long done = p->next_batch;
    /* The stop request is read by one thread only, before the barrier that
     * ends a step, so that every thread acts on the same value. */
    int stopping = stop && *stop;
    omp_set_dynamic(0);
#pragma omp parallel num_threads(s->threads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        const unsigned fp_mode = fp_flush_denormals();
        if (t == 0)
            s->threads_ran = nt;
        batch_lists next;
        int buf = 0;
        for (long b = p->next_batch; b < n_batches; b++, buf ^= 1) {
            if (stopping)
                break;
            const uint32_t first = (uint32_t)b * bs;
            const uint32_t bn = data->n - first < bs ? data->n - first : bs;
            if (b == p->next_batch)
                start_batch(s, data, s->order, first, bn, buf, t, nt);
            run_shards(s, buf, bn, t, nt);
            const int has_next = b + 1 < n_batches;
            if (has_next) {
                const uint32_t next_bn = data->n - first - bn < bs ? data->n - first - bn : bs;
                list_shards(s, data, s->order, first + bn, next_bn, buf ^ 1, t, nt);
                gather_lists(s, buf ^ 1, next_bn, &next);
            }
#pragma omp barrier
            /* Every thread sums the losses in shard order and so reaches the
             * same verdict: a diverged step is not applied, and all stop. */
            double step_loss = 0.0;
            for (int k = 0; k < s->shards; k++)
                step_loss += s->result[k].loss;
            if (!isfinite(step_loss)) {
                if (t == 0)
                    diverged = b;
                break;
            }
            reduce_and_update(s, t, nt, step0 + b + 1, buf, bn,
                              has_next ? &next : NULL);
            if (t == 0) {
                loss_sum += step_loss;
                for (int k = 0; k < s->shards; k++)
                    correct += s->result[k].correct;
                seen += bn;
                done = b + 1;
                stopping = stop && *stop;
                if (progress)
                    progress(ctx, b + 1, n_batches, loss_sum / (double)seen,
                             (double)correct / (double)seen);
            }
#pragma omp barrier
        }
        fp_restore(fp_mode);
    }
    s->opt.step = step0 + done;
    *p = (epoch_progress){done, loss_sum, correct, seen};
    if (diverged >= 0)
        return error_set(err, "epoch %d, step %ld of %ld: the loss is not finite; training "
                         "diverged (try a smaller --lr)", epoch, diverged + 1, n_batches);
    if (done < n_batches)
        return 1;
    *loss = loss_sum / (double)data->n;
    *accuracy = (double)correct / (double)data->n;
    return 0;
}

int train_epoch(train_session *s, const dataset *data, int epoch, double *loss,
                double *accuracy, train_progress_fn progress, void *ctx, tr_error *err)
{
    epoch_progress p = {0};
    return train_epoch_from(s, data, epoch, &p, NULL, loss, accuracy, progress, ctx, err)
               ? -1 : 0;
}

/* Samples per evaluation block: the first layer's outputs of 64 samples
 * (32 KB) stay in the L1 cache while its input list is walked.  Blocks of 256
 * ran at 520-630k test images/s on 2 threads, blocks of 64 at 0.9-1M. */
enum { EVAL_CHUNK = 64 };

struct evaluator {
    mlp_shape shape;
    int threads;
    mlp_work *work;     /* [threads] */
    double *chunk_loss; /* [chunk_cap] */
    int *chunk_correct; /* [chunk_cap] */
    long chunk_cap;
};

int evaluator_new(evaluator **out, const mlp_shape *shape, int threads, tr_error *err)
{
    *out = NULL;
    evaluator *e = calloc(1, sizeof *e);
    if (!e || !(e->work = calloc((size_t)threads, sizeof *e->work))) {
        free(e);
        return error_set(err, "out of memory for evaluation");
    }
    e->shape = *shape;
    e->threads = threads;
    for (int t = 0; t < threads; t++)
        if (mlp_work_init(&e->work[t], shape, EVAL_CHUNK, err)) {
            evaluator_free(e);
            return -1;
        }
    *out = e;
    return 0;
}

void evaluator_free(evaluator *e)
{
    if (!e)
        return;
    for (int t = 0; t < e->threads; t++)
        mlp_work_free(&e->work[t]);
    free(e->work);
    free(e->chunk_loss);
    free(e->chunk_correct);
    free(e);
}

int evaluator_run(evaluator *e, const mlp *m, const dataset *d, double *loss,
                  double *accuracy, uint8_t *pred, tr_error *err)
{
    *loss = *accuracy = NAN;
    if (d->n == 0)
        return 0;
    if (check_fit(&m->shape, d, err))
        return -1;
    const long n_chunks = (long)((d->n + EVAL_CHUNK - 1) / EVAL_CHUNK);
    if (n_chunks > e->chunk_cap) {
        double *cl = realloc(e->chunk_loss, sizeof *cl * (size_t)n_chunks);
        if (cl)
            e->chunk_loss = cl;
        int *cc = realloc(e->chunk_correct, sizeof *cc * (size_t)n_chunks);
        if (cc)
            e->chunk_correct = cc;
        if (!cl || !cc)
            return error_set(err, "out of memory for evaluation");
        e->chunk_cap = n_chunks;
    }
    const int threads = e->threads < n_chunks ? e->threads : (int)n_chunks;
    (void)threads; /* used only by the OpenMP clause */
    const int last = m->shape.n_layers - 1;
    double *chunk_loss = e->chunk_loss;
    int *chunk_correct = e->chunk_correct;
    omp_set_dynamic(0);
#pragma omp parallel num_threads(threads)
    {
        const unsigned fp_mode = fp_flush_denormals();
#pragma omp for schedule(static)
        for (long c = 0; c < n_chunks; c++) {
            mlp_work *w = &e->work[omp_get_thread_num()];
            uint32_t first = (uint32_t)c * EVAL_CHUNK;
            uint32_t n = d->n - first < EVAL_CHUNK ? d->n - first : EVAL_CHUNK;
            list_images(&w->inputs[0], w->y, w->rows, d, NULL, first, n);
            mlp_forward(m, w, (int)n);
            chunk_correct[c] = 0;
            chunk_loss[c] = softmax_xent_eval(pred ? pred + first : NULL, w->act[last], w->y,
                                              (int)n, m->shape.sizes[last + 1],
                                              &chunk_correct[c]);
        }
        fp_restore(fp_mode);
    }
    double total = 0.0;
    long correct = 0;
    for (long c = 0; c < n_chunks; c++) {
        total += chunk_loss[c];
        correct += chunk_correct[c];
    }
    *loss = total / (double)d->n;
    *accuracy = (double)correct / (double)d->n;
    return 0;
}

int evaluate(const mlp *m, const dataset *d, int threads, double *loss,
             double *accuracy, uint8_t *pred, tr_error *err)
{
    evaluator *e;
    if (evaluator_new(&e, &m->shape, threads, err))
        return -1;
    int status = evaluator_run(e, m, d, loss, accuracy, pred, err);
    evaluator_free(e);
    return status;
}
