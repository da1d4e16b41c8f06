/* simd.h - vectors of floats as wide as the target's registers.
 *
 * VF_LEN is 16 with AVX-512, 8 with AVX (and FMA) and 4 otherwise (SSE, or
 * the compiler's own lowering).  A vector wider than the registers is not
 * split cleanly by GCC: it goes through the stack, about 15 times below the
 * FMA peak on AVX2.  The kernels vectorize across outputs and add each
 * output's products in the same order at every width, so the width changes
 * speed, not bits.  VF_REGS, the number of vector registers, sizes their
 * register blocks.  Loads and stores go through memcpy, which compiles to
 * unaligned moves. */
#ifndef TRAINER_SIMD_H
#define TRAINER_SIMD_H

#include <string.h>

#if defined(__AVX512F__) || defined(__AVX__) || defined(__FMA__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define VF_LEN 16
#define VF_REGS 32
#elif defined(__AVX__)
#define VF_LEN 8
#define VF_REGS 16
#else
#define VF_LEN 4
#define VF_REGS 16
#endif

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
#if VF_LEN == 16
    return (vf){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x};
#elif VF_LEN == 8
    return (vf){x, x, x, x, x, x, x, x};
#else
    return (vf){x, x, x, x};
#endif
}

#if defined(__AVX__) && !defined(__AVX512F__)
/* All ones in the first `lanes` lanes, for AVX's masked moves. */
static inline __m256i vf_lane_mask(int lanes)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#endif

/* The first `lanes` floats at p (1 <= lanes <= VF_LEN), zeros after them;
 * nothing past them is read, so a row's last partial vector is safe. */
static inline vf vf_load_part(const float *p, int lanes)
{
    if (lanes == VF_LEN)
        return vf_load(p);
#if defined(__AVX512F__)
    return (vf)_mm512_maskz_loadu_ps((__mmask16)((1u << lanes) - 1), p);
#elif defined(__AVX__)
    return (vf)_mm256_maskload_ps(p, vf_lane_mask(lanes));
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
#elif defined(__AVX__)
    _mm256_maskstore_ps(p, vf_lane_mask(lanes), (__m256)v);
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
#elif defined(__AVX__) && defined(__FMA__)
    return (vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#elif defined(__FMA__)
    return (vf)_mm_fmadd_ps((__m128)a, (__m128)b, (__m128)c);
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
