/* The dense module's trainer of a dense layer on the model's input
 * (layer_trainer.h): its weight rows, one per input, are owned by the
 * threads that update them.
 *
 * Forward: the thread that updates a part's weight rows goes on to compute,
 * over those rows, the next batch's sums for every sample (each shard lists
 * its samples of the next batch before the update).  A thread so reads only
 * the weight rows it has just written, never the ones another core has:
 * that traffic costs more than the sums, and most where the two cores are
 * far apart.  A sample's output is its bias plus the parts' sums, added in
 * part order.
 *
 * Backward: each shard's weight gradient, the largest part of its buffer, is
 * filled by the thread that owns the rows, in every shard's buffer, from the
 * shard's factors (its listed inputs and output gradients, about 20 kB),
 * just before it reduces and updates them.  The buffers hold the same values
 * as if each shard's thread had filled them, bit for bit; what crosses from
 * core to core is the factors instead of gradient rows (100 kB and more a
 * step). */
#include <stdlib.h>
#include <string.h>

#include "dense.h"
#include "group/exchange.h"
#include "layer_trainer.h"
#include "model.h"

typedef struct {
    const tr_layer *l;
    layer_train_setup s;
    int inputs, width;
    size_t w0, w1;              /* the weights' floats in the buffer */
    int *part_row;              /* [shards + 1]: part k holds rows [part_row[k], part_row[k + 1]) */
    /* Each shard's inputs, listed, for two batches: the one being trained
     * and the next, listed before the update that sums it. */
    tr_dense_inputs (*lists)[2];   /* [shards][2] */
    void *list_block;
    float *partial;             /* [shards][batch_size][width]: part k's sums */
    float *factors;             /* [shards][max_shard][width]: each shard's output gradient */
    uint8_t **rows_used;        /* [shards][inputs]: the rows each shard's samples light,
                                   each part's found by the part's owner */
    uint8_t *row_idle;          /* [inputs]: rows whose m and v are all 0 */
    int still;                  /* whether the optimizer leaves such a row with no
                                   gradient as it is (tr_optimizer_zero_is_still) */
} dense_rows;

/* Parts cut the weights only between groups of DENSE_GROUP rows, so that
 * each row has one owner and each part's sums cover whole groups. */
static size_t rows_cut(const tr_layer *l, size_t at)
{
    const size_t w0 = l->offset[DENSE_W], w1 = w0 + l->count[DENSE_W];
    const size_t group = (size_t)tr_tensor_size(l->out) * DENSE_GROUP;
    if (at > w0 && at < w1) {
        at = w0 + (at - w0 + group / 2) / group * group;
        at = at < w1 ? at : w1;
    }
    return at;
}

static void rows_destroy(void *ctx)
{
    dense_rows *r = ctx;
    if (!r)
        return;
    for (int k = 0; r->rows_used && k < r->s.shards; k++)
        free(r->rows_used[k]);
    free(r->rows_used);
    free(r->row_idle);
    free(r->lists);
    free(r->list_block);
    free(r->part_row);
    tr_model_buffer_free(r->partial);
    tr_model_buffer_free(r->factors);
    free(r);
}

static int rows_create(void **ctx, const tr_layer *l, const layer_train_setup *s, tr_error *err)
{
    *ctx = NULL;
    dense_rows *r = calloc(1, sizeof *r);
    if (!r)
        return tr_error_set(err, "out of memory");
    r->l = l;
    r->s = *s;
    r->still = tr_optimizer_zero_is_still(&s->opt->hp);
    r->inputs = (int)tr_tensor_size(l->in);
    r->width = (int)tr_tensor_size(l->out);
    r->w0 = l->offset[DENSE_W];
    r->w1 = r->w0 + l->count[DENSE_W];
    const size_t shards = (size_t)s->shards;
    r->part_row = calloc(shards + 1, sizeof *r->part_row);
    r->lists = calloc(shards, sizeof *r->lists);
    r->rows_used = calloc(shards, sizeof *r->rows_used);
    r->row_idle = calloc((size_t)r->inputs, 1);
    const size_t list_bytes = tr_dense_inputs_bytes(s->max_shard, r->inputs);
    r->list_block = aligned_alloc(64, 2 * shards * list_bytes);
    r->partial = tr_model_buffer_new(shards * (size_t)s->batch_size * (size_t)r->width);
    r->factors = tr_model_buffer_new(shards * (size_t)s->max_shard * (size_t)r->width);
    if (!r->part_row || !r->lists || !r->rows_used || !r->row_idle || !r->list_block ||
        !r->partial || !r->factors)
        goto oom;
    char *mem = r->list_block;
    for (size_t k = 0; k < shards; k++) {
        r->rows_used[k] = calloc((size_t)r->inputs, 1);
        if (!r->rows_used[k])
            goto oom;
        for (int b = 0; b < 2; b++, mem += list_bytes)
            tr_dense_inputs_init(&r->lists[k][b], mem, s->max_shard, r->inputs);
    }
    for (int k = 0; k <= s->shards; k++) {
        size_t at = s->part[k];
        at = at < r->w0 ? r->w0 : at > r->w1 ? r->w1 : at;
        r->part_row[k] = (int)((at - r->w0) / (size_t)r->width);
    }
    *ctx = r;
    return 0;
oom:
    rows_destroy(r);
    return tr_error_set(err, "out of memory for the training buffers");
}

/* Marks the rows whose Adam moments are all 0: untouched so far, or decayed
 * to 0 (denormals are flushed).  Read from the state itself, so a loaded or
 * resumed optimizer is judged as well as a fresh one. */
static void rows_epoch_start(void *ctx)
{
    dense_rows *r = ctx;
    for (int row = 0; row < r->inputs; row++) {
        const size_t at = r->w0 + (size_t)row * (size_t)r->width;
        const float *m = r->s.opt->m + at, *v = r->s.opt->v + at;
        uint8_t idle = 1;
        for (int j = 0; j < r->width; j++)
            idle &= m[j] == 0.0f && v[j] == 0.0f;
        r->row_idle[row] = idle;
    }
}

static void rows_stage(void *ctx, int k, int buf, const uint8_t *const *rows, int n)
{
    dense_rows *r = ctx;
    tr_dense_inputs_index_bytes(&r->lists[k][buf], rows, n, r->inputs, r->s.divisor);
}

static float *part_sums(const dense_rows *r, int k)
{
    return r->partial + (size_t)k * (size_t)r->s.batch_size * (size_t)r->width;
}

static float *shard_factors(const dense_rows *r, int k)
{
    return r->factors + (size_t)k * (size_t)r->s.max_shard * (size_t)r->width;
}

/* A part's sums are its rows' in order: cleared, then every shard's samples
 * added over the part's rows, from the weights as they stand. */
static void rows_prepare_part(void *ctx, int k, int buf, uint32_t bn)
{
    dense_rows *r = ctx;
    if (r->part_row[k] == r->part_row[k + 1])
        return;
    const tr_dense_inputs *lists[LAYER_MAX_SHARDS];
    int base[LAYER_MAX_SHARDS], n = 0;
    for (int q = 0; q < r->s.shards; q++) {
        uint32_t lo, hi;
        tr_shard_range(q, r->s.shards, bn, &lo, &hi);
        if (hi > lo) {
            lists[n] = &r->lists[q][buf];
            base[n++] = (int)lo;
        }
    }
    memset(part_sums(r, k), 0, sizeof(float) * bn * (size_t)r->width);
    tr_dense_forward_rows(part_sums(r, k), lists, base, n, r->s.params + r->w0,
                          r->part_row[k], r->part_row[k + 1], r->inputs, r->width);
}

static void rows_forward(void *ctx, int k, int buf, float *out, uint32_t lo, int n)
{
    dense_rows *r = ctx;
    (void)k;
    (void)buf;
    const float *parts[LAYER_MAX_SHARDS];
    int np = 0;
    for (int p = 0; p < r->s.shards; p++)
        if (r->part_row[p] < r->part_row[p + 1])
            parts[np++] = part_sums(r, p) + (size_t)lo * (size_t)r->width;
    tr_dense_sum_parts(out, parts, np, r->s.params + r->l->offset[DENSE_B], n, r->width,
                       r->l->hp[1] /* dense: relu */);
}

/* The shard keeps its factors; the weight gradient is left to the rows'
 * owners.  The layer reads the model's input: d_in is NULL. */
static void rows_backward(void *ctx, int k, float *d_in, float *grad, float *d_out,
                          const float *out, int n)
{
    dense_rows *r = ctx;
    (void)d_in;
    if (r->l->hp[1] /* dense: relu */)
        tr_dense_relu_backward(d_out, out, (long)n * r->width);
    tr_dense_backward(NULL, NULL, grad + r->l->offset[DENSE_B], d_out, NULL, NULL, NULL, n,
                      r->inputs, r->width, NULL);
    memcpy(shard_factors(r, k), d_out, sizeof(float) * (size_t)n * (size_t)r->width);
}

/* Every shard's weight gradient over rows [r0, r1), and which of those rows
 * each shard's samples use, from the shards' factors. */
static void fill_gradient_rows(dense_rows *r, int r0, int r1, int buf, uint32_t bn)
{
    for (int q = 0; q < r->s.shards; q++) {
        uint32_t lo, hi;
        tr_shard_range(q, r->s.shards, bn, &lo, &hi);
        if (hi > lo)
            tr_dense_weight_gradient_rows(r->s.grad[q] + r->w0, &r->lists[q][buf],
                                          shard_factors(r, q), r0, r1, r->inputs, r->width,
                                          r->rows_used[q]);
    }
}

/* A row counts only the shards whose samples use it: the others' gradient
 * there is 0, so the sums are the same as over every shard, bit for bit, and
 * rows no sample used are not read at all. */
static void reduce_rows(dense_rows *r, int r0, int r1, const shard_grads *g, float *out,
                        const tr_optimizer_coeffs *c)
{
    const float *using[LAYER_MAX_SHARDS];
    for (int row = r0; row < r1; row++) {
        const size_t j = r->w0 + (size_t)row * (size_t)r->width;
        shard_grads u = {using, NULL, 0};
        for (int q = 0; q < g->ng; q++)
            if (r->rows_used[g->which[q]][row])
                using[u.ng++] = g->g[q];
        /* A row with m = v = 0 and no gradient keeps its weights (adam's
         * update is 0 / (0 + eps)) unless they decay.  About 9% of MNIST's
         * rows (its border pixels) are never lit. */
        if (out || u.ng > 0 || !r->row_idle[row] || !r->still) {
            if (!out)
                r->row_idle[row] = 0;
            tr_reduce_segment(r->s.params, r->s.opt, &u, j, j + (size_t)r->width, out, c);
        }
    }
}

static void rows_reduce_part(void *ctx, int k, const shard_grads *g, float *out,
                             const tr_optimizer_coeffs *c, int buf, uint32_t bn)
{
    dense_rows *r = ctx;
    const int r0 = r->part_row[k], r1 = r->part_row[k + 1];
    if (r0 < r1) {
        fill_gradient_rows(r, r0, r1, buf, bn);
        reduce_rows(r, r0, r1, g, out, c);
    }
    const size_t lo = r->s.part[k] > r->w1 ? r->s.part[k] : r->w1;
    const size_t hi = r->s.part[k + 1] < r->l->end ? r->s.part[k + 1] : r->l->end;
    tr_reduce_segment(r->s.params, r->s.opt, g, lo, hi, out, c);
}

/* Every shard's factors to every rank: the owners of the rows fill every
 * shard's weight gradient from them (1/8 of a shard's gradient rows for
 * the notebook's model at batch 32). */
static void rows_share_factors(void *ctx)
{
    dense_rows *r = ctx;
    const size_t per = (size_t)(r->s.shards / r->s.ranks);
    tr_group_allgather(r->factors, sizeof(float) * per * (size_t)r->s.max_shard * (size_t)r->width);
}

/* The samples of the batch of bn that rank q's shards hold: [*lo, *hi). */
static void rank_samples(const dense_rows *r, int q, uint32_t bn, uint32_t *lo, uint32_t *hi)
{
    const int per = r->s.shards / r->s.ranks;
    uint32_t a, b;
    tr_shard_range(q * per, r->s.shards, bn, lo, &b);
    tr_shard_range((q + 1) * per - 1, r->s.shards, bn, &a, hi);
}

/* Each part's sums of a rank's samples to that rank, from the part's owner. */
static void rows_share_parts(void *ctx, int buf, uint32_t bn)
{
    dense_rows *r = ctx;
    (void)buf;
    /* per * (ranks - 1) < shards */
    tr_group_transfer send[LAYER_MAX_SHARDS], recv[LAYER_MAX_SHARDS];
    int ns = 0, nr = 0;
    const int per = r->s.shards / r->s.ranks;
    uint32_t mine_lo, mine_hi;
    rank_samples(r, r->s.rank, bn, &mine_lo, &mine_hi);
    const size_t row = sizeof(float) * (size_t)r->width;
    for (int p = 0; p < r->s.shards; p++) {
        if (r->part_row[p] == r->part_row[p + 1])
            continue;
        const int owner = p / per;
        if (owner != r->s.rank) {
            if (mine_hi > mine_lo)
                recv[nr++] = (tr_group_transfer){part_sums(r, p) + (size_t)mine_lo * r->width,
                                              row * (mine_hi - mine_lo), owner, p};
            continue;
        }
        for (int q = 0; q < r->s.ranks; q++) {
            uint32_t lo, hi;
            rank_samples(r, q, bn, &lo, &hi);
            if (q != r->s.rank && hi > lo)
                send[ns++] = (tr_group_transfer){part_sums(r, p) + (size_t)lo * r->width,
                                              row * (hi - lo), q, p};
        }
    }
    tr_group_exchange(send, ns, recv, nr);
}

static void rows_filled(const tr_layer *l, size_t *lo, size_t *hi)
{
    *lo = l->offset[DENSE_W];
    *hi = *lo + l->count[DENSE_W];
}

const layer_trainer_ops tr_dense_rows_trainer = {
    .share_factors = rows_share_factors,
    .share_parts = rows_share_parts,
    .filled = rows_filled,
    .cut = rows_cut,
    .create = rows_create,
    .destroy = rows_destroy,
    .epoch_start = rows_epoch_start,
    .stage = rows_stage,
    .prepare_part = rows_prepare_part,
    .forward = rows_forward,
    .backward = rows_backward,
    .reduce_part = rows_reduce_part,
};
