/* simd.h - 16-float vectors through GCC's vector extension.
 *
 * The compiler maps them onto whatever the build targets: one AVX-512
 * register, two AVX2 registers, or four SSE registers in the portable build.
 * Loads and stores go through memcpy, which compiles to unaligned moves. */
#ifndef TRAINER_SIMD_H
#define TRAINER_SIMD_H

#include <string.h>

#if defined(__AVX512F__) || defined(__FMA__)
#include <immintrin.h>
#endif

#define VF_LEN 16

typedef float vf __attribute__((vector_size(VF_LEN * sizeof(float))));

static inline vf vf_load(const float *p)
{
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void vf_store(float *p, vf v)
{
    memcpy(p, &v, sizeof v);
}

static inline vf vf_splat(float x)
{
    return (vf){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x};
}

/* The first `lanes` floats at p (1 <= lanes <= VF_LEN), zeros after them;
 * nothing past them is read, so a row's last partial vector is safe. */
static inline vf vf_load_part(const float *p, int lanes)
{
    if (lanes == VF_LEN)
        return vf_load(p);
#if defined(__AVX512F__)
    return (vf)_mm512_maskz_loadu_ps((__mmask16)((1u << lanes) - 1), p);
#else
    vf v = vf_splat(0.0f);
    memcpy(&v, p, sizeof(float) * (size_t)lanes);
    return v;
#endif
}

/* Stores the first `lanes` floats of v at p. */
static inline void vf_store_part(float *p, vf v, int lanes)
{
    if (lanes == VF_LEN) {
        vf_store(p, v);
        return;
    }
#if defined(__AVX512F__)
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << lanes) - 1), (__m512)v);
#else
    memcpy(p, &v, sizeof(float) * (size_t)lanes);
#endif
}

/* a * b + c, fused (rounded once) where the target has FMA, else a product
 * and a sum.  The kernels accumulate only through these two, never through
 * the compiler's own contraction, which differs between compilers, flags and
 * even neighbouring loops: so that kernels that add the same products in the
 * same order give the same bits, and scalar tails sum like vector parts. */
static inline float madd(float a, float b, float c)
{
#if defined(__FMA__)
    return __builtin_fmaf(a, b, c);
#else
    return a * b + c;
#endif
}

static inline vf vf_madd(vf a, vf b, vf c)
{
#if defined(__AVX512F__)
    return (vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif defined(__FMA__)
    __m256 h[3][2];
    memcpy(h[0], &a, sizeof a);
    memcpy(h[1], &b, sizeof b);
    memcpy(h[2], &c, sizeof c);
    h[2][0] = _mm256_fmadd_ps(h[0][0], h[1][0], h[2][0]);
    h[2][1] = _mm256_fmadd_ps(h[0][1], h[1][1], h[2][1]);
    memcpy(&c, h[2], sizeof c);
    return c;
#else
    return a * b + c;
#endif
}

/* Chunks of max_nv vectors of outputs, then at most one of 4 and one of 2
 * (when they are smaller than max_nv), then single vectors, the last one
 * possibly partial, over out_dim outputs: body(o, nv, lanes) computes the
 * chunk at output o of nv vectors, the last of them `lanes` wide, with nv a
 * constant in each call so that the kernels keep their sums in registers. */
#define FOR_OUTPUT_CHUNKS(out_dim, max_nv, body)                                       \
    do {                                                                                \
        int o_ = 0;                                                                     \
        for (; (out_dim) - o_ >= (max_nv) * VF_LEN; o_ += (max_nv) * VF_LEN)            \
            body(o_, (max_nv), VF_LEN);                                                 \
        if ((max_nv) > 4 && (out_dim) - o_ >= 4 * VF_LEN) {                             \
            body(o_, 4, VF_LEN);                                                        \
            o_ += 4 * VF_LEN;                                                           \
        }                                                                               \
        if ((max_nv) > 2 && (out_dim) - o_ >= 2 * VF_LEN) {                             \
            body(o_, 2, VF_LEN);                                                        \
            o_ += 2 * VF_LEN;                                                           \
        }                                                                               \
        for (; (out_dim) - o_ >= VF_LEN; o_ += VF_LEN)                                  \
            body(o_, 1, VF_LEN);                                                        \
        if (o_ < (out_dim))                                                             \
            body(o_, 1, (out_dim) - o_);                                                \
    } while (0)

#endif
