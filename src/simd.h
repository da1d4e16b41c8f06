/* simd.h - 16-float vectors through GCC's vector extension.
 *
 * The compiler maps them onto whatever the build targets: one AVX-512
 * register, two AVX2 registers, or four SSE registers in the portable build.
 * Loads and stores go through memcpy, which compiles to unaligned moves. */
#ifndef TRAINER_SIMD_H
#define TRAINER_SIMD_H

#include <string.h>

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

#endif
