/* parallel.h - OpenMP calls with serial stand-ins, so the library also builds
 * (single-threaded) without OpenMP. */
#ifndef TRAINER_PARALLEL_H
#define TRAINER_PARALLEL_H

#ifdef _OPENMP
#include <omp.h>
#else
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_threads(void) { return 1; }
static inline void omp_set_dynamic(int on) { (void)on; }
#endif

#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__SSE__)
#include <xmmintrin.h>
#endif

/* Sets the calling thread to flush denormal floats to zero (FTZ and DAZ) and
 * returns the previous mode for fp_restore.  Adam's first moment decays by
 * beta1 each step, so the weights of rarely lit pixels drift into denormals,
 * which cost about a hundred cycles per operation: training slowed down by half
 * over three epochs without this.  TensorFlow, and so Keras, runs its CPU
 * kernels the same way.  A no-op where SSE is absent. */
static inline unsigned fp_flush_denormals(void)
{
#if defined(__SSE__)
    unsigned old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u);
    return old;
#else
    return 0;
#endif
}

static inline void fp_restore(unsigned mode)
{
#if defined(__SSE__)
    _mm_setcsr(mode);
#else
    (void)mode;
#endif
}

#endif
