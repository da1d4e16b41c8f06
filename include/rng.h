/* rng.h - the seeded generator everything random draws from.
 *
 * xoshiro256** seeded through splitmix64.  A generator is derived from a seed
 * and a stream number, so that each use (weight init of layer k, the shuffle of
 * epoch e) has its own sequence that depends on nothing else: not on the thread
 * count, not on what was drawn before. */
#ifndef TRAINER_RNG_H
#define TRAINER_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} tr_rng;

/* Streams in use; the value is mixed with the seed. */
enum {
    RNG_STREAM_INIT = 1,    /* + layer index */
    RNG_STREAM_SHUFFLE = 1000000, /* + epoch index */
    RNG_STREAM_DROPOUT = 2000000, /* + layer index */
    RNG_STREAM_AUGMENT = 3000000, /* + layer index */
    RNG_STREAM_FILES = 4000000    /* a folder's file order; + 1 for a test folder's */
};

/* A draw that depends on x alone (splitmix64's step and mix): for random
 * numbers addressed by a counter, as dropout's mask by (sample, unit).
 * Inline, so that a loop of them becomes vector code. */
static inline uint64_t rng_hash(uint64_t x)
{
    uint64_t z = x + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void tr_rng_seed(tr_rng *r, uint64_t seed, uint64_t stream);
uint64_t tr_rng_next(tr_rng *r);
/* Uniform float in [0, 1) with 24 random bits. */
float tr_rng_uniform(tr_rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t tr_rng_below(tr_rng *r, uint64_t n);
/* Fisher-Yates shuffle of idx[0..n). */
void tr_rng_shuffle(tr_rng *r, uint32_t *idx, uint32_t n);

#endif
