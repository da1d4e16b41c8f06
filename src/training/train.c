#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "barrier.h"
#include "group/exchange.h"
#include "model/layer_trainer.h"
#include "parallel.h"
#include "rng.h"

_Static_assert(TRAIN_MAX_SHARDS <= LAYER_MAX_SHARDS, "a layer trainer takes every shard");

/* Per-shard results of one step, one cache line each so that threads writing
 * neighbouring shards do not share a line. */
typedef struct {
    double loss;
    int correct;
    int n;
    int stop; /* the first shard of a rank's: whether it was asked to stop */
    char pad[64 - sizeof(double) - 3 * sizeof(int)];
} shard_result;

/* A step's passes between two additions of batch statistics: forward
 * layers [fwd_from, fwd_to), then the head's loss (loss set), then backward
 * layers from bwd_from down to bwd_to (none when bwd_from < bwd_to); then
 * the forward sums of layer fwd_sums or the backward sums of layer
 * bwd_sums (-1: none), which every shard must have before the next phase.
 * A model without such layers has one phase: each shard's whole pass. */
typedef struct {
    int fwd_from, fwd_to, loss, bwd_from, bwd_to, fwd_sums, bwd_sums;
} step_phase;

struct tr_train_session {
    tr_model *model;
    tr_train_config cfg;
    int threads; /* threads that run: cfg.threads, at most shards */
    int shards;
    int max_shard;              /* samples in the largest shard */
    tr_optimizer opt;
    float **grad;               /* [shards] buffers of model->len floats */
    tr_model_work *work;           /* [threads] */
    shard_result *result;       /* [shards] */
    size_t *part;               /* [shards + 1]: part k of the parameters is
                                   [part[k], part[k + 1]) */
    /* Each shard's samples (image addresses and labels) for two batches: the
     * one being trained and the next, staged before the update so that
     * layer trainers can start on it (layer_trainer.h). */
    const uint8_t **rows;       /* [shards][2][max_shard] */
    uint8_t *labels;            /* [shards][2][max_shard] */
    const layer_trainer_ops *trainer[MODEL_MAX_LAYERS]; /* NULL: shard by shard */
    void *trainer_ctx[MODEL_MAX_LAYERS];
    const float **nonempty;     /* [threads][shards]: scratch for the reduce */
    int *nonempty_shard;        /* [threads][shards]: which shard each of those is */
    uint32_t *order;            /* sample order of the current epoch */
    uint32_t order_cap;
    int threads_ran;            /* threads the last parallel region had */
    /* The group: this rank runs shards and owns parts [k0, k1), which are
     * the floats [own[rank], own[rank + 1]) of the buffer. */
    int ranks, rank, k0, k1;
    size_t *own;                /* [ranks + 1] */
    tr_group_transfer *sends;      /* [shards * ranks]: a step's transfers */
    tr_group_transfer *recvs;      /* [shards] */
    int n_trainers;             /* layers with a trainer */
    /* The floats ranks send each other: the buffer but for the ranges the
     * layer trainers fill themselves, as [lo, hi) segments in order. */
    size_t shared[MODEL_MAX_LAYERS + 1][2];
    int n_shared;
    /* Layers of batch statistics (tr_layer_batch_sums): each shard's sums, and
     * the batch's, at sums_at[l] of their arrays. */
    int n_sync;
    uint8_t has_sums[MODEL_MAX_LAYERS];
    size_t sums_at[MODEL_MAX_LAYERS];
    size_t sums_len;
    double *sums;               /* [shards][sums_len] */
    double *batch;              /* [sums_len] */
    step_phase phase[2 * MODEL_MAX_LAYERS + 1];
    int n_phases;
    int first_trained;          /* the lowest layer with a trainable tensor: the
                                   backward pass ends there (augmentation
                                   before it needs no gradient) */
    int group_stop;             /* with several ranks: whether any was asked to
                                   stop in this step */
    tr_barrier barrier;         /* the step's meetings */
};

/* The phases of a step (step_phase) and where each layer's sums go. */
static void plan_phases(tr_train_session *s)
{
    const tr_model *m = s->model;
    const int head = m->n_layers - 1;
    int sync[MODEL_MAX_LAYERS];
    s->n_sync = 0;
    s->sums_len = 0;
    for (int l = 0; l < head; l++) {
        const int len = tr_layer_batch_sums(&m->layer[l]);
        s->has_sums[l] = len > 0;
        s->sums_at[l] = s->sums_len;
        s->sums_len += (size_t)len;
        if (len > 0)
            sync[s->n_sync++] = l;
    }
    s->first_trained = head;
    for (int l = head - 1; l >= 0; l--)
        for (int t = 0; t < m->layer[l].n_tensors; t++)
            if (m->layer[l].trainable[t])
                s->first_trained = l;
    int n = 0, from = 0;
    for (int i = 0; i < s->n_sync; from = sync[i++])
        s->phase[n++] = (step_phase){from, sync[i], 0, -1, 0, sync[i], -1};
    const int last = s->n_sync ? sync[s->n_sync - 1] : -1;
    s->phase[n++] = (step_phase){from, head, 1, head - 1, last + 1, -1, last};
    for (int i = s->n_sync - 1; i >= 0; i--) {
        const int below = i ? sync[i - 1] : -1;
        s->phase[n++] = (step_phase){0, 0, 0, sync[i], below + 1, -1, below};
    }
    s->n_phases = n;
}

/* The workspaces a session keeps: one per shard when the step has phases (a
 * layer of batch statistics keeps every shard's activations across them),
 * else one per thread. */
static int work_count(const tr_train_session *s)
{
    return s->n_sync ? s->shards : s->threads;
}

/* Where part k of the buffer starts: on a cache line, moved to where the
 * layers' trainers allow a cut. */
static size_t part_start(const tr_train_session *s, int k)
{
    const tr_model *m = s->model;
    const size_t lines = (m->len + MODEL_ALIGN - 1) / MODEL_ALIGN;
    const size_t per = (lines + (size_t)s->shards - 1) / (size_t)s->shards;
    size_t at = (size_t)k * per * MODEL_ALIGN;
    if (at > m->len)
        at = m->len;
    for (int l = 0; l < m->n_layers; l++)
        if (s->trainer[l])
            at = s->trainer[l]->cut(&m->layer[l], at);
    return at;
}

static const uint8_t **shard_rows(const tr_train_session *s, int k, int buf)
{
    return s->rows + ((size_t)k * 2 + (size_t)buf) * (size_t)s->max_shard;
}

static uint8_t *shard_labels(const tr_train_session *s, int k, int buf)
{
    return s->labels + ((size_t)k * 2 + (size_t)buf) * (size_t)s->max_shard;
}

static int create_trainers(tr_train_session *s, tr_error *err)
{
    const layer_train_setup setup = {
        .shards = s->shards, .max_shard = s->max_shard, .batch_size = s->cfg.batch_size,
        .part = s->part, .divisor = DATASET_PIXEL_DIVISOR, .params = s->model->params,
        .opt = &s->opt, .grad = s->grad, .ranks = s->ranks, .rank = s->rank,
    };
    for (int l = 0; l < s->model->n_layers; l++)
        if (s->trainer[l] &&
            s->trainer[l]->create(&s->trainer_ctx[l], &s->model->layer[l], &setup, err))
            return -1;
    return 0;
}

/* s->shared from the layer trainers' filled ranges. */
static void find_shared(tr_train_session *s)
{
    size_t at = 0;
    s->n_shared = 0;
    for (int l = 0; l < s->model->n_layers; l++) {
        size_t lo, hi;
        if (!s->trainer[l])
            continue;
        s->trainer[l]->filled(&s->model->layer[l], &lo, &hi);
        if (lo > at) {
            s->shared[s->n_shared][0] = at;
            s->shared[s->n_shared++][1] = lo;
        }
        at = hi;
    }
    if (s->model->len > at) {
        s->shared[s->n_shared][0] = at;
        s->shared[s->n_shared++][1] = s->model->len;
    }
}

int tr_train_session_new(tr_train_session **out, tr_model *m, const tr_train_config *cfg,
                         tr_error *err)
{
    *out = NULL;
    const int ranks = cfg->ranks > 1 ? cfg->ranks : 1;
    const int shards = cfg->shards ? cfg->shards : cfg->threads * ranks;
    if (cfg->threads < 1 || cfg->batch_size < 1 || shards < 1 || shards > TRAIN_MAX_SHARDS)
        return tr_error_set(err, "training needs threads >= 1, a batch size >= 1 and 1 to %d "
                            "shards (got %d, %d, %d)", TRAIN_MAX_SHARDS, cfg->threads,
                            cfg->batch_size, shards);
    if (shards % ranks)
        return tr_error_set(err, "%d shards cannot be split evenly over %d processes: give "
                            "--shards a multiple of %d", shards, ranks, ranks);
    tr_train_session *s = calloc(1, sizeof *s);
    if (!s)
        return tr_error_set(err, "out of memory");
    s->model = m;
    s->cfg = *cfg;
    s->shards = shards;
    s->ranks = ranks;
    s->rank = ranks > 1 ? tr_group_rank() : 0;
    s->k0 = s->rank * (shards / ranks);
    s->k1 = s->k0 + shards / ranks;
    s->threads = tr_train_threads_used(cfg->threads, shards / ranks);
    s->max_shard = (cfg->batch_size + s->shards - 1) / s->shards;
    plan_phases(s);
    const int n_work = work_count(s);
    const size_t slots = (size_t)s->shards * 2 * (size_t)s->max_shard;
    s->grad = calloc((size_t)s->shards, sizeof *s->grad);
    s->work = calloc((size_t)n_work, sizeof *s->work);
    s->sums = calloc((size_t)s->shards * s->sums_len + 1, sizeof *s->sums);
    s->batch = calloc(s->sums_len + 1, sizeof *s->batch);
    s->result = aligned_alloc(64, sizeof(shard_result) * (size_t)s->shards);
    s->nonempty = calloc((size_t)s->threads * s->shards, sizeof *s->nonempty);
    s->nonempty_shard = calloc((size_t)s->threads * s->shards, sizeof *s->nonempty_shard);
    s->part = calloc((size_t)s->shards + 1, sizeof *s->part);
    s->rows = calloc(slots, sizeof *s->rows);
    s->labels = calloc(slots, 1);
    s->own = calloc((size_t)ranks + 1, sizeof *s->own);
    /* A transfer is cut into at most every shared segment (find_shared). */
    const size_t cuts = MODEL_MAX_LAYERS + 1;
    s->sends = calloc((size_t)shards * (size_t)ranks * cuts, sizeof *s->sends);
    s->recvs = calloc((size_t)shards * cuts, sizeof *s->recvs);
    if (!s->grad || !s->work || !s->sums || !s->batch || !s->result || !s->nonempty ||
        !s->nonempty_shard ||
        !s->part || !s->rows || !s->labels || !s->own || !s->sends || !s->recvs)
        goto oom;
    for (int l = 0; l < m->n_layers; l++)
        s->n_trainers += (s->trainer[l] = tr_layer_trainer(&m->layer[l])) != NULL;
    for (int k = 0; k <= s->shards; k++)
        s->part[k] = part_start(s, k);
    for (int r = 0; r <= ranks; r++)
        s->own[r] = s->part[r * (shards / ranks)];
    find_shared(s);
    for (int k = 0; k < s->shards; k++)
        if (!(s->grad[k] = tr_model_buffer_new(m->len)))
            goto oom;
    for (int t = 0; t < n_work; t++)
        if (tr_model_work_init(&s->work[t], m, s->max_shard, err))
            goto fail;
    if (tr_optimizer_init(&s->opt, m->len, &cfg->opt, err) || create_trainers(s, err))
        goto fail;
    *out = s;
    return 0;
oom:
    tr_error_set(err, "out of memory for the training buffers");
fail:
    tr_train_session_free(s);
    return -1;
}

void tr_train_session_free(tr_train_session *s)
{
    if (!s)
        return;
    for (int l = 0; l < MODEL_MAX_LAYERS; l++)
        if (s->trainer_ctx[l])
            s->trainer[l]->destroy(s->trainer_ctx[l]);
    for (int k = 0; s->grad && k < s->shards; k++)
        tr_model_buffer_free(s->grad[k]);
    for (int t = 0; s->work && t < work_count(s); t++)
        tr_model_work_free(&s->work[t]);
    free(s->sums);
    free(s->batch);
    tr_optimizer_free(&s->opt);
    free(s->grad);
    free(s->work);
    free(s->result);
    free(s->nonempty);
    free(s->nonempty_shard);
    free(s->part);
    free(s->rows);
    free(s->labels);
    free(s->order);
    free(s->own);
    free(s->sends);
    free(s->recvs);
    free(s);
}

int tr_train_cores(void)
{
#ifdef _OPENMP
    return omp_get_num_procs();
#else
    return 1;
#endif
}

int tr_train_threads_used(int threads, int shards)
{
    return shards && shards < threads ? shards : threads;
}

const tr_optimizer *tr_train_session_optimizer(const tr_train_session *s)
{
    return &s->opt;
}

void tr_train_session_set_optimizer(tr_train_session *s, const float *m, const float *v, long step)
{
    memcpy(s->opt.m, m, sizeof(float) * s->opt.len);
    memcpy(s->opt.v, v, sizeof(float) * s->opt.len);
    s->opt.step = step;
}

void tr_train_session_set_learning_rate(tr_train_session *s, float lr)
{
    s->opt.hp.lr = lr;
}

int tr_train_session_threads_ran(const tr_train_session *s)
{
    return s->threads_ran;
}

/* The model must take one input per value of an image, and give an output
 * for every label: a label past the last would have the softmax read past a
 * row. */
static int check_fit(const tr_model *m, const tr_dataset *d, tr_error *err)
{
    const long inputs = tr_tensor_size(m->input);
    if (inputs != (long)d->dim)
        return tr_error_set(err, "the model takes %ld inputs, the images have %u values",
                            inputs, d->dim);
    const int classes = tr_model_classes(m);
    if (d->classes > (uint32_t)classes)
        return tr_error_set(err, "the model has %d classes, the labels go up to %u", classes,
                            d->classes - 1);
    return 0;
}

int tr_model_check_data(const tr_model *m, const tr_dataset *d, const char *images,
                        const char *labels,
                        tr_error *err)
{
    const tr_tensor_shape in = m->input;
    const int flat = in.h == 1 && in.w == 1;
    if (flat ? tr_tensor_size(in) != (long)d->dim
             : (uint32_t)in.h != d->rows || (uint32_t)in.w != d->cols ||
                   (uint32_t)in.c != d->channels)
        return tr_error_set(err, "%s: images of %ux%ux%u, the model takes %dx%dx%d", images,
                            d->rows, d->cols, d->channels, in.h, in.w, in.c);
    const uint32_t classes = (uint32_t)tr_model_classes(m);
    for (uint32_t i = 0; i < d->n; i++)
        if (d->labels[i] >= classes)
            return tr_error_set(err, "%s: item %u has label %u, the model has %u classes (0 to "
                                "%u)", labels, i, d->labels[i], classes, classes - 1);
    return 0;
}

/* Where each parallel region starts, in each of its nt threads (t): the
 * step's barrier, set for nt threads. */
static void join_threads(tr_train_session *s, int t, int nt)
{
    if (t == 0) {
        s->threads_ran = nt;
        tr_barrier_init(&s->barrier, nt);
    }
#pragma omp barrier
}

/* Stages the shards that thread t runs of the batch order[first .. first +
 * bn) (first .. first + bn when order is NULL) into their slots number buf. */
static void stage_shards(tr_train_session *s, const tr_dataset *data, const uint32_t *order,
                         uint32_t first, uint32_t bn, int buf, int t, int nt)
{
    /* With several ranks, a layer trainer's parts use every shard's input. */
    const int all = s->ranks > 1 && s->n_trainers > 0;
    for (int k = (all ? 0 : s->k0) + t; k < (all ? s->shards : s->k1); k += nt) {
        uint32_t lo, hi;
        tr_shard_range(k, s->shards, bn, &lo, &hi);
        if (hi == lo)
            continue;
        const uint8_t **rows = shard_rows(s, k, buf);
        tr_dataset_rows(rows, shard_labels(s, k, buf), data, order, first + lo, hi - lo);
        for (int l = 0; l < s->model->n_layers; l++)
            if (s->trainer[l])
                s->trainer[l]->stage(s->trainer_ctx[l], k, buf, rows, (int)(hi - lo));
    }
}

/* The layer trainers' share of part k of the batch in buf. */
static void prepare_part(tr_train_session *s, int k, int buf, uint32_t bn)
{
    for (int l = 0; l < s->model->n_layers; l++)
        if (s->trainer[l])
            s->trainer[l]->prepare_part(s->trainer_ctx[l], k, buf, bn);
}

/* Shard k's workspace (work_count): its own, or its thread's. */
static tr_model_work *shard_work(const tr_train_session *s, int k, int t)
{
    return &s->work[s->n_sync ? k : t];
}

/* The pass of layer l: with the batch's sums when it has them. */
static tr_layer_pass pass_of(const tr_train_session *s, int l, const tr_layer_pass *pass,
                             uint32_t bn)
{
    tr_layer_pass p = *pass;
    if (s->has_sums[l]) {
        p.batch = s->batch + s->sums_at[l];
        p.batch_n = bn;
    }
    return p;
}

static double *shard_sums(const tr_train_session *s, int k, int l)
{
    return s->sums + (size_t)k * s->sums_len + s->sums_at[l];
}

/* A run of per-sample layers (tr_layer_per_sample) goes through a few
 * samples at a time, whose activations and gradients for the run then stay
 * in the L2 cache from one layer to the next: at most this many bytes. */
enum { RUN_CHUNK_BYTES = 256 * 1024 };

/* Whether layer l can be in a run. */
static int in_run(const tr_train_session *s, int l)
{
    return !s->trainer[l] && tr_layer_per_sample(&s->model->layer[l]);
}

/* The last layer of the run that starts at l, below `to`: l itself when
 * it cannot be in one. */
static int run_last(const tr_train_session *s, int l, int to)
{
    int b = l;
    if (in_run(s, l))
        while (b + 1 < to && in_run(s, b + 1))
            b++;
    return b;
}

/* The first layer of the run that ends at l, not below `low`. */
static int run_first(const tr_train_session *s, int l, int low)
{
    int a = l;
    if (in_run(s, l))
        while (a - 1 >= low && in_run(s, a - 1))
            a--;
    return a;
}

/* Samples per chunk of layers [a, b] over n samples: one layer alone takes
 * them all. */
static int run_chunk(const tr_model *m, int a, int b, int n)
{
    if (a == b)
        return n;
    size_t per = 0;
    for (int l = a; l <= b; l++)
        per += 2 * sizeof(float) * (size_t)tr_tensor_size(m->layer[l].out);
    const size_t fit = RUN_CHUNK_BYTES / per;
    return fit < 1 ? 1 : fit < (size_t)n ? (int)fit : n;
}

/* Layer l's input for the block's samples from c on; first: the block's
 * input at layer 0. */
static tr_layer_input chunk_input(const tr_model *m, const tr_model_work *w,
                                  const tr_layer_input *first, int l, int c)
{
    tr_layer_input in = l ? (tr_layer_input){w->act[l - 1], NULL, 1.0f} : *first;
    if (in.x)
        in.x += (long)c * tr_tensor_size(m->layer[l].in);
    else
        in.rows += c;
    return in;
}

/* The forward passes of layers [a, b] (a run, or one layer), a chunk of
 * samples at a time. */
static void forward_layers(const tr_train_session *s, tr_model_work *w, int a, int b,
                           const tr_layer_input *first, int n, const tr_layer_pass *pass,
                           uint32_t bn)
{
    const tr_model *m = s->model;
    const int chunk = run_chunk(m, a, b, n);
    for (int c = 0; c < n; c += chunk) {
        const int nc = n - c < chunk ? n - c : chunk;
        for (int l = a; l <= b; l++) {
            tr_layer_pass p = pass_of(s, l, pass, bn);
            p.first += (uint32_t)c;
            const tr_layer_input in = chunk_input(m, w, first, l, c);
            tr_layer_forward(&m->layer[l], w->act[l] + (long)c * tr_tensor_size(m->layer[l].out),
                             &in, m->params, w->work[l], nc, &p);
        }
    }
}

/* The backward passes of layers b down to a (a run, or one layer), a chunk
 * of samples at a time, into shard k's gradient; x0: the model's input as
 * floats. */
static void backward_layers(const tr_train_session *s, tr_model_work *w, int k, int a, int b,
                            const float *x0, int n, const tr_layer_pass *pass, uint32_t bn)
{
    const tr_model *m = s->model;
    const int chunk = run_chunk(m, a, b, n);
    for (int c = 0; c < n; c += chunk) {
        const int nc = n - c < chunk ? n - c : chunk;
        for (int l = b; l >= a; l--) {
            const tr_layer *y = &m->layer[l];
            tr_layer_pass p = pass_of(s, l, pass, bn);
            p.first += (uint32_t)c;
            p.accumulate = c > 0;
            const long in_at = (long)c * tr_tensor_size(y->in);
            const long out_at = (long)c * tr_tensor_size(y->out);
            /* Below the lowest layer with parameters no gradient is wanted. */
            float *d_in = l > s->first_trained ? w->delta[l - 1] + in_at : NULL;
            const float *in = l ? w->act[l - 1] + in_at : x0 ? x0 + in_at : NULL;
            tr_layer_backward(y, d_in, s->grad[k], w->delta[l] + out_at, in, w->act[l] + out_at,
                              m->params, w->work[l], nc, &p);
        }
    }
}

/* Phase ph of shard k's passes, samples [lo, lo + n) of the batch of bn in
 * slots buf, on workspace w: forward layers, the loss (its share of the
 * batch's mean loss), backward layers into the shard's gradient buffer,
 * and the sums that end the phase.  pass: the step's. */
static void shard_phase(tr_train_session *s, tr_model_work *w, int k, int buf, uint32_t lo, int n,
                        uint32_t bn, const tr_layer_pass *step, const step_phase *ph)
{
    const tr_model *m = s->model;
    const int head = m->n_layers - 1;
    tr_layer_pass pass = *step;
    pass.first = lo;
    const tr_layer_input images = {NULL, shard_rows(s, k, buf), DATASET_PIXEL_DIVISOR};
    /* The first layer's input as floats, when it does not read the bytes. */
    const float *x0 = m->layer[0].reads_images ? NULL : w->x;
    tr_layer_input first = {x0, x0 ? NULL : images.rows, x0 ? 1.0f : images.divisor};
    if (ph->fwd_from == 0 && (ph->fwd_to > 0 || ph->fwd_sums == 0))
        first = tr_model_first_input(m, w, &images, n);
    for (int l = ph->fwd_from; l < ph->fwd_to; l++) {
        if (s->trainer[l]) {
            s->trainer[l]->forward(s->trainer_ctx[l], k, buf, w->act[l], lo, n);
            continue;
        }
        const int b = run_last(s, l, ph->fwd_to);
        forward_layers(s, w, l, b, &first, n, &pass, bn);
        l = b;
    }
    if (ph->fwd_sums >= 0) {
        const int l = ph->fwd_sums;
        tr_layer_forward_sums(&m->layer[l], shard_sums(s, k, l), l ? w->act[l - 1] : x0, n);
    }
    shard_result *r = &s->result[k];
    if (ph->loss)
        r->loss = tr_layer_loss(&m->layer[head], w->delta[head - 1], w->act[head - 1],
                                shard_labels(s, k, buf), n, 1.0f / (float)bn,
                                s->cfg.label_smoothing, &r->correct);
    const int low = ph->bwd_to > s->first_trained ? ph->bwd_to : s->first_trained;
    for (int l = ph->bwd_from; l >= low; l--) {
        if (s->trainer[l]) {
            float *d_in = l > s->first_trained ? w->delta[l - 1] : NULL;
            s->trainer[l]->backward(s->trainer_ctx[l], k, d_in, s->grad[k], w->delta[l],
                                    w->act[l], n);
            continue;
        }
        const int a = run_first(s, l, low);
        backward_layers(s, w, k, a, l, x0, n, &pass, bn);
        l = a;
    }
    if (ph->bwd_sums >= 0) {
        const int l = ph->bwd_sums;
        tr_layer_backward_sums(&m->layer[l], shard_sums(s, k, l), w->delta[l],
                               l ? w->act[l - 1] : x0, w->work[l], n);
    }
}

/* After a phase that ended in layer l's sums, with every thread: the
 * batch's, added in shard order over every rank's shards with samples (bn
 * in the batch); update: also the layer's state from them (a training
 * step's forward sums). */
static void add_sums(tr_train_session *s, int l, uint32_t bn, int t, int update)
{
    tr_barrier_wait(&s->barrier);
    if (t == 0) {
        const tr_layer *y = &s->model->layer[l];
        const size_t len = (size_t)tr_layer_batch_sums(y);
        if (s->ranks > 1)
            tr_group_allgather(s->sums, sizeof(double) * s->sums_len *
                                         (size_t)(s->shards / s->ranks));
        double *b = s->batch + s->sums_at[l];
        memset(b, 0, sizeof(double) * len);
        for (int k = 0; k < s->shards; k++) {
            uint32_t lo, hi;
            tr_shard_range(k, s->shards, bn, &lo, &hi);
            const double *part = shard_sums(s, k, l);
            if (hi > lo)
                for (size_t j = 0; j < len; j++)
                    b[j] += part[j];
        }
        if (update)
            tr_layer_batch_update(y, s->model->params, b, bn);
    }
    tr_barrier_wait(&s->barrier);
}

/* Every shard of the batch of bn samples in slots buf that thread t owns,
 * phase by phase; pass: the step's; update: a training step, whose batch
 * statistics move the layers' state. */
static void run_shards(tr_train_session *s, int buf, uint32_t bn, int t, int nt,
                       const tr_layer_pass *pass, int update)
{
    for (int k = s->k0 + t; k < s->k1; k += nt) {
        uint32_t lo, hi;
        tr_shard_range(k, s->shards, bn, &lo, &hi);
        shard_result *r = &s->result[k];
        r->n = (int)(hi - lo);
        r->loss = 0.0;
        r->correct = 0;
    }
    for (int p = 0; p < s->n_phases; p++) {
        const step_phase *ph = &s->phase[p];
        for (int k = s->k0 + t; k < s->k1; k += nt) {
            uint32_t lo, hi;
            tr_shard_range(k, s->shards, bn, &lo, &hi);
            if (hi > lo)
                shard_phase(s, shard_work(s, k, t), k, buf, lo, (int)(hi - lo), bn, pass, ph);
        }
        if (ph->fwd_sums >= 0)
            add_sums(s, ph->fwd_sums, bn, t, update);
        if (ph->bwd_sums >= 0)
            add_sums(s, ph->bwd_sums, bn, t, 0);
    }
}

/* The gradient buffers of the shards that had samples in this step, in shard
 * order, in thread t's scratch. */
static shard_grads nonempty_grads(tr_train_session *s, int t)
{
    const float **g = s->nonempty + (size_t)t * s->shards;
    int *which = s->nonempty_shard + (size_t)t * s->shards;
    int ng = 0;
    for (int k = 0; k < s->shards; k++)
        if (s->result[k].n > 0) {
            which[ng] = k;
            g[ng++] = s->grad[k];
        }
    return (shard_grads){g, which, ng};
}

/* Reduces part k of the shards' gradients for the batch of bn in slots buf
 * into out, or into the optimizer's step `step` when out is NULL, layer by layer; then,
 * with next_bn nonzero, the trainers' share of the part for the next batch
 * (slots buf ^ 1). */
static void reduce_part(tr_train_session *s, int k, int t, float *out, long step, int buf,
                        uint32_t bn, uint32_t next_bn)
{
    const tr_model *m = s->model;
    const shard_grads g = nonempty_grads(s, t);
    const tr_optimizer_coeffs c = tr_optimizer_coeffs_at(&s->opt.hp, step > 0 ? step : 1);
    const size_t lo = s->part[k], hi = s->part[k + 1];
    for (int l = 0; l < m->n_layers; l++) {
        const tr_layer *y = &m->layer[l];
        if (s->trainer[l]) {
            s->trainer[l]->reduce_part(s->trainer_ctx[l], k, &g, out, &c, buf, bn);
            continue;
        }
        /* The tensors that are not trained have no gradient to reduce. */
        for (int t = 0; t < y->n_tensors; t++) {
            const size_t a = y->offset[t], b = a + y->count[t];
            if (y->trainable[t])
                tr_reduce_segment(m->params, &s->opt, &g, lo > a ? lo : a, hi < b ? hi : b, out,
                                  &c);
        }
    }
    if (next_bn)
        prepare_part(s, k, buf ^ 1, next_bn);
}

/* With several ranks, from one thread: what the layer trainers' parts of
 * the batch in buf give every rank's shards. */
static void share_parts(tr_train_session *s, int buf, uint32_t bn)
{
    for (int l = 0; l < s->model->n_layers; l++)
        if (s->trainer[l])
            s->trainer[l]->share_parts(s->trainer_ctx[l], buf, bn);
}

/* The first step of a run: stages thread t's shards of the batch [first,
 * first + bn) into slots buf and, once every thread has, prepares its
 * parts.  Later steps get both from the update before. */
static void start_batch(tr_train_session *s, const tr_dataset *data, const uint32_t *order,
                        uint32_t first, uint32_t bn, int buf, int t, int nt)
{
    stage_shards(s, data, order, first, bn, buf, t, nt);
    tr_barrier_wait(&s->barrier);
    for (int k = s->k0 + t; k < s->k1; k += nt)
        prepare_part(s, k, buf, bn);
    tr_barrier_wait(&s->barrier);
    if (s->ranks > 1 && t == 0)
        share_parts(s, buf, bn);
    tr_barrier_wait(&s->barrier);
}

/* Adds to t[n..] the transfers of buf's shared floats in [a, b) with peer;
 * returns the new n. */
static int add_transfers(const tr_train_session *s, tr_group_transfer *t, int n, float *buf,
                         size_t a, size_t b, int peer, int tag)
{
    for (int g = 0; g < s->n_shared; g++) {
        const size_t lo = a > s->shared[g][0] ? a : s->shared[g][0];
        const size_t hi = b < s->shared[g][1] ? b : s->shared[g][1];
        if (hi > lo)
            t[n++] = (tr_group_transfer){buf + lo, sizeof(float) * (hi - lo), peer, tag};
    }
    return n;
}

/* With several ranks, after the shards' passes of the batch of bn: every shard's result to
 * every rank, with the ranks' stop requests (want_stop is this one's), and
 * each shard's gradient over each part to the part's owner.  Returns
 * whether any rank was asked to stop. */
static int share_step(tr_train_session *s, uint32_t bn, int want_stop)
{
    const int per = s->shards / s->ranks;
    s->result[s->k0].stop = want_stop;
    tr_group_open();
    tr_group_allgather(s->result + 0, sizeof *s->result * (size_t)per);
    for (int l = 0; l < s->model->n_layers; l++)
        if (s->trainer[l])
            s->trainer[l]->share_factors(s->trainer_ctx[l]);
    int any_stop = 0, ns = 0, nr = 0;
    const size_t mine = s->own[s->rank], mine_end = s->own[s->rank + 1];
    for (int k = 0; k < s->shards; k++) {
        const int owner = k / per;
        uint32_t lo, hi;
        tr_shard_range(k, s->shards, bn, &lo, &hi);
        if (hi == lo)
            continue;
        if (owner == s->rank) {
            for (int q = 0; q < s->ranks; q++)
                if (q != s->rank)
                    ns = add_transfers(s, s->sends, ns, s->grad[k], s->own[q], s->own[q + 1],
                                       q, k);
        } else {
            nr = add_transfers(s, s->recvs, nr, s->grad[k], mine, mine_end, owner, k);
        }
    }
    tr_group_exchange(s->sends, ns, s->recvs, nr);
    tr_group_close();
    for (int k = 0; k < s->shards; k += per)
        any_stop |= s->result[k].stop;
    return any_stop;
}

/* Every rank's parts of buf's floats [a, b) to every rank. */
static void gather_range(const tr_train_session *s, float *buf, size_t a, size_t b)
{
    size_t at[TRAIN_MAX_SHARDS + 1];
    for (int r = 0; r <= s->ranks; r++)
        at[r] = s->own[r] < a ? a : s->own[r] > b ? b : s->own[r];
    tr_group_allgather_floats(buf, at);
}

/* After a step: the updated parameters to every rank, but for the ranges
 * the layer trainers fill, which only their owners read until the epoch
 * ends (tr_train_session_share_state). */
static void gather_step(const tr_train_session *s)
{
    for (int g = 0; g < s->n_shared; g++)
        gather_range(s, s->model->params, s->shared[g][0], s->shared[g][1]);
}

/* A training step's batch, as every thread of the step sees it. */
typedef struct {
    uint32_t first, n; /* samples [first, first + n) of the epoch's order */
    uint32_t next_n;   /* the next batch's samples: 0 after the epoch's last */
    int buf;           /* the batch's slots (shard_rows); the next batch's are buf ^ 1 */
    long step;         /* the optimizer's step it applies, from 1 */
    tr_layer_pass pass;
} step_batch;

/* With several processes, after the shards' passes: their results and
 * gradients to the owners of the parts, and whether any process was asked
 * to stop (want_stop: this one) into s->group_stop.  One process: nothing. */
static void exchange_gradients(tr_train_session *s, const step_batch *b, int t, int want_stop)
{
    if (s->ranks < 2)
        return;
    if (t == 0)
        s->group_stop = share_step(s, b->n, want_stop);
    tr_barrier_wait(&s->barrier);
}

/* With several processes, after the update: the updated parts to every
 * process, and the layer trainers' share of the next batch.  One process:
 * nothing. */
static void exchange_parameters(tr_train_session *s, const step_batch *b, int t)
{
    if (s->ranks < 2)
        return;
    tr_barrier_wait(&s->barrier);
    if (t == 0) {
        tr_group_open();
        gather_step(s);
        if (b->next_n)
            share_parts(s, b->buf ^ 1, b->next_n);
        tr_group_close();
    }
}

/* The step's loss, summed in shard order: every thread reaches the same
 * value, and so the same verdict on a loss that is not finite. */
static double step_loss(const tr_train_session *s)
{
    double loss = 0.0;
    for (int k = 0; k < s->shards; k++)
        loss += s->result[k].loss;
    return loss;
}

/* One training step, run by every thread t of nt: forward, loss and
 * backward, each shard into its own gradient buffer; each part of the
 * parameters summed over the shards in shard order and updated by the
 * optimizer.  Returns the batch's summed loss; a step whose loss is not
 * finite is not applied. */
static double train_step(tr_train_session *s, const tr_dataset *data, const step_batch *b,
                         int t, int nt, int want_stop)
{
    run_shards(s, b->buf, b->n, t, nt, &b->pass, 1);
    /* Staged before the update: the layer trainers start on it there. */
    if (b->next_n)
        stage_shards(s, data, s->order, b->first + b->n, b->next_n, b->buf ^ 1, t, nt);
    tr_barrier_wait(&s->barrier);
    exchange_gradients(s, b, t, want_stop);
    const double loss = step_loss(s);
    if (!isfinite(loss))
        return loss;
    for (int k = s->k0 + t; k < s->k1; k += nt)
        reduce_part(s, k, t, NULL, b->step, b->buf, b->n, b->next_n);
    exchange_parameters(s, b, t);
    return loss;
}

void tr_train_session_share_state(tr_train_session *s)
{
    if (s->ranks < 2)
        return;
    tr_group_allgather_floats(s->model->params, s->own);
    tr_group_allgather_floats(s->opt.m, s->own);
    tr_group_allgather_floats(s->opt.v, s->own);
}

int tr_train_gradient(tr_train_session *s, const tr_dataset *data, const uint32_t *idx,
                      uint32_t n, float *grad, double *loss, tr_error *err)
{
    if (n < 1 || n > (uint32_t)s->cfg.batch_size)
        return tr_error_set(err, "train_gradient: %u samples, the batch size is %d", n,
                            s->cfg.batch_size);
    if (s->ranks > 1)
        return tr_error_set(err, "train_gradient runs in one process");
    if (check_fit(s->model, data, err))
        return -1;
    omp_set_dynamic(0);
#pragma omp parallel num_threads(s->threads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        const unsigned fp_mode = fp_flush_denormals();
        join_threads(s, t, nt);
        start_batch(s, data, idx, 0, n, 0, t, nt);
        const tr_layer_pass pass = {.training = 1, .seed = s->cfg.seed};
        run_shards(s, 0, n, t, nt, &pass, 0);
        tr_barrier_wait(&s->barrier);
        for (int k = t; k < s->shards; k += nt)
            reduce_part(s, k, t, grad, 0, 0, n, 0);
        fp_restore(fp_mode);
    }
    *loss = step_loss(s) / (double)n;
    return 0;
}

static int prepare_order(tr_train_session *s, uint32_t n, int epoch)
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
    tr_rng r;
    tr_rng_seed(&r, s->cfg.seed, RNG_STREAM_SHUFFLE + (uint64_t)epoch);
    tr_rng_shuffle(&r, s->order, n);
    return 0;
}

int tr_train_epoch_from(tr_train_session *s, const tr_dataset *data, int epoch,
                        tr_epoch_progress *p,
                        const volatile sig_atomic_t *stop, double *loss, double *accuracy,
                        tr_train_progress_fn progress, void *ctx, tr_error *err)
{
    *loss = *accuracy = NAN;
    if (data->n == 0)
        return tr_error_set(err, "no training samples");
    if (check_fit(s->model, data, err))
        return -1;
    if (prepare_order(s, data->n, epoch))
        return tr_error_set(err, "out of memory for the sample order");
    for (int l = 0; l < s->model->n_layers; l++)
        if (s->trainer[l])
            s->trainer[l]->epoch_start(s->trainer_ctx[l]);
    const uint32_t bs = (uint32_t)s->cfg.batch_size;
    const long n_batches = (long)((data->n + bs - 1) / bs);
    if (p->next_batch < 0 || p->next_batch > n_batches)
        return tr_error_set(err, "epoch %d has %ld batches, cannot start at %ld", epoch,
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
    if (s->ranks > 1)
        stopping = tr_group_any(stopping);
    omp_set_dynamic(0);
#pragma omp parallel num_threads(s->threads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        const unsigned fp_mode = fp_flush_denormals();
        join_threads(s, t, nt);
        int buf = 0;
        for (long i = p->next_batch; i < n_batches && !stopping; i++, buf ^= 1) {
            const uint32_t first = (uint32_t)i * bs;
            const uint32_t bn = data->n - first < bs ? data->n - first : bs;
            const uint32_t rest = data->n - first - bn;
            const step_batch b = {
                .first = first, .n = bn, .next_n = rest < bs ? rest : bs, .buf = buf,
                .step = step0 + i + 1,
                .pass = {.training = 1, .seed = s->cfg.seed, .epoch = epoch, .step = i}};
            if (i == p->next_batch)
                start_batch(s, data, s->order, first, bn, buf, t, nt);
            const double loss = train_step(s, data, &b, t, nt, stop && *stop);
            if (!isfinite(loss)) {
                if (t == 0)
                    diverged = i;
                break;
            }
            if (t == 0) {
                loss_sum += loss;
                for (int k = 0; k < s->shards; k++)
                    correct += s->result[k].correct;
                seen += bn;
                done = i + 1;
                stopping = s->ranks > 1 ? s->group_stop : stop && *stop;
                if (progress)
                    progress(ctx, i + 1, n_batches, loss_sum / (double)seen,
                             (double)correct / (double)seen);
            }
            tr_barrier_wait(&s->barrier);
        }
        fp_restore(fp_mode);
    }
    s->opt.step = step0 + done;
    *p = (tr_epoch_progress){done, loss_sum, correct, seen};
    if (diverged >= 0)
        return tr_error_set(err, "epoch %d, step %ld of %ld: the loss is not finite; training "
                            "diverged (try a smaller --lr)", epoch, diverged + 1, n_batches);
    if (done < n_batches)
        return 1;
    *loss = loss_sum / (double)data->n;
    *accuracy = (double)correct / (double)data->n;
    return 0;
}

int tr_train_epoch(tr_train_session *s, const tr_dataset *data, int epoch, double *loss,
                   double *accuracy, tr_train_progress_fn progress, void *ctx, tr_error *err)
{
    tr_epoch_progress p = {0};
    return tr_train_epoch_from(s, data, epoch, &p, NULL, loss, accuracy, progress, ctx, err)
               ? -1 : 0;
}

/* Samples per evaluation block: the first layer's outputs of 64 samples
 * (32 KB) stay in the L1 cache while its input list is walked.  Blocks of 256
 * ran at 520-630k test images/s on 2 threads, blocks of 64 at 0.9-1M.  A
 * block's loss is summed as one, but it goes through the layers in passes
 * whose activations fit EVAL_PASS_BYTES (a conv net's first layer writes 86
 * KB a sample, which would otherwise stream through memory). */
enum { EVAL_CHUNK = 64, EVAL_PASS_BYTES = 512 * 1024 };

struct tr_evaluator {
    int threads;
    int pass;           /* samples a forward pass takes */
    int classes;
    float label_smoothing;
    tr_model_work *work;   /* [threads], for `pass` samples */
    float *logits;      /* [threads][EVAL_CHUNK][classes] */
    uint8_t *labels;    /* [threads][EVAL_CHUNK] */
    double *chunk_loss; /* [chunk_cap] */
    int *chunk_correct; /* [chunk_cap] */
    long chunk_cap;
};

/* Samples per forward pass of an evaluation block (see EVAL_CHUNK). */
static int eval_pass_samples(const tr_model *m)
{
    size_t sample = 0;
    for (int l = 0; l < m->n_layers; l++)
        sample += sizeof(float) * (size_t)tr_tensor_size(m->layer[l].out);
    const size_t fit = EVAL_PASS_BYTES / (sample ? sample : 1);
    return fit < 1 ? 1 : fit < EVAL_CHUNK ? (int)fit : EVAL_CHUNK;
}

int tr_evaluator_new(tr_evaluator **out, const tr_model *m, int threads, tr_error *err)
{
    *out = NULL;
    tr_evaluator *e = calloc(1, sizeof *e);
    if (!e)
        return tr_error_set(err, "out of memory for evaluation");
    e->threads = threads;
    e->pass = eval_pass_samples(m);
    e->classes = tr_model_classes(m);
    e->work = calloc((size_t)threads, sizeof *e->work);
    e->logits = malloc(sizeof(float) * (size_t)threads * EVAL_CHUNK * (size_t)e->classes);
    e->labels = malloc((size_t)threads * EVAL_CHUNK);
    if (!e->work || !e->logits || !e->labels) {
        tr_evaluator_free(e);
        return tr_error_set(err, "out of memory for evaluation");
    }
    for (int t = 0; t < threads; t++)
        if (tr_model_work_init(&e->work[t], m, e->pass, err)) {
            tr_evaluator_free(e);
            return -1;
        }
    *out = e;
    return 0;
}

void tr_evaluator_set_label_smoothing(tr_evaluator *e, float ls)
{
    e->label_smoothing = ls;
}

void tr_evaluator_free(tr_evaluator *e)
{
    if (!e)
        return;
    for (int t = 0; e->work && t < e->threads; t++)
        tr_model_work_free(&e->work[t]);
    free(e->work);
    free(e->logits);
    free(e->labels);
    free(e->chunk_loss);
    free(e->chunk_correct);
    free(e);
}

int tr_evaluator_run(tr_evaluator *e, const tr_model *m, const tr_dataset *d, double *loss,
                     double *accuracy, uint8_t *pred, tr_error *err)
{
    *loss = *accuracy = NAN;
    if (d->n == 0)
        return 0;
    if (check_fit(m, d, err))
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
            return tr_error_set(err, "out of memory for evaluation");
        e->chunk_cap = n_chunks;
    }
    const int threads = e->threads < n_chunks ? e->threads : (int)n_chunks;
    (void)threads; /* used only by the OpenMP clause */
    const tr_layer *head = &m->layer[m->n_layers - 1];
    double *chunk_loss = e->chunk_loss;
    int *chunk_correct = e->chunk_correct;
    omp_set_dynamic(0);
#pragma omp parallel num_threads(threads)
    {
        const unsigned fp_mode = fp_flush_denormals();
#pragma omp for schedule(static)
        for (long c = 0; c < n_chunks; c++) {
            const int t = omp_get_thread_num(), k = e->classes;
            tr_model_work *w = &e->work[t];
            float *logits = e->logits + (size_t)t * EVAL_CHUNK * (size_t)k;
            uint8_t *labels = e->labels + (size_t)t * EVAL_CHUNK;
            uint32_t first = (uint32_t)c * EVAL_CHUNK;
            uint32_t n = d->n - first < EVAL_CHUNK ? d->n - first : EVAL_CHUNK;
            const float *out = logits;
            for (uint32_t s = 0; s < n; s += (uint32_t)e->pass) {
                const uint32_t ns = n - s < (uint32_t)e->pass ? n - s : (uint32_t)e->pass;
                tr_dataset_rows(w->rows, labels + s, d, NULL, first + s, ns);
                const tr_layer_input in = tr_model_input(w, w->rows, DATASET_PIXEL_DIVISOR);
                const float *y = tr_model_forward(m, w, &in, (int)ns, NULL);
                if (ns == n)
                    out = y; /* the block in one pass: no copy */
                else
                    memcpy(logits + (size_t)s * k, y, sizeof(float) * ns * (size_t)k);
            }
            chunk_correct[c] = 0;
            chunk_loss[c] = tr_layer_predict(head, pred ? pred + first : NULL, out, labels,
                                             (int)n, e->label_smoothing, &chunk_correct[c]);
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

int tr_evaluate(const tr_model *m, const tr_dataset *d, int threads, double *loss,
                double *accuracy, uint8_t *pred, tr_error *err)
{
    tr_evaluator *e;
    if (tr_evaluator_new(&e, m, threads, err))
        return -1;
    int status = tr_evaluator_run(e, m, d, loss, accuracy, pred, err);
    tr_evaluator_free(e);
    return status;
}
