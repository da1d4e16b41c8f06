#include "layer_trainer.h"

void tr_shard_range(int k, int shards, uint32_t bn, uint32_t *lo, uint32_t *hi)
{
    *lo = (uint32_t)((uint64_t)k * bn / (uint64_t)shards);
    *hi = (uint32_t)((uint64_t)(k + 1) * bn / (uint64_t)shards);
}

void tr_reduce_segment(float *params, tr_optimizer *opt, const shard_grads *g, size_t lo, size_t hi,
                       float *out, const tr_optimizer_coeffs *c)
{
    if (lo >= hi)
        return;
    if (!out) {
        tr_optimizer_update(&opt->hp, params, opt->m, opt->v, g->g, g->ng, lo, hi, c);
        return;
    }
    for (size_t j = lo; j < hi; j++) {
        float sum = g->ng ? g->g[0][j] : 0.0f;
        for (int k = 1; k < g->ng; k++)
            sum += g->g[k][j];
        out[j] = sum;
    }
}
