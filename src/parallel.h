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

#endif
