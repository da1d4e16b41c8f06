/* simd.h - 16-float vectors through GCC's vector extension.
 *
 * The compiler maps them onto whatever the build targets: one AVX-512
 * register, two AVX2 registers, or four SSE registers in the portable build.
 * Loads and stores go through memcpy, which compiles to unaligned moves. */
#ifndef TRAINER_SIMD_H
#define TRAINER_SIMD_H

#include <string.h>

#if defined(__AVX512F__)
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

/* a * b + c rounded as the vector code rounds it: fused where the target has
 * FMA (which -ffp-contract=fast makes the vector code use), so that the
 * scalar tails of a kernel sum exactly like its vector part. */
static inline float madd(float a, float b, float c)
{
#if defined(__FMA__)
    return __builtin_fmaf(a, b, c);
#else
    return a * b + c;
#endif
}

#endif
