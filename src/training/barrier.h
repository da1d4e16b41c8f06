/* barrier.h - the barrier between the threads of a training step: a short
 * spin, then sleep.
 *
 * A step meets at a barrier a few times.  On a quiet machine the wait is the
 * few microseconds by which the threads' shares differ, and a spin catches
 * it.  When other programs share the cores, the thread being waited for may
 * be off its core for a scheduler slice (milliseconds).  OpenMP's barrier
 * (libgomp) spins for up to 300,000 pauses, through most of such a slice,
 * taking the time the other program needed, so that the slow thread is back
 * later still.  This one spins for about as long as a sleep and a wake cost
 * (TR_BARRIER_SPIN_NS), then sleeps until the last thread arrives and wakes
 * it; a thread that slept is scheduled promptly on waking.  The same holds
 * with more threads than processors, where a spinning thread may hold the
 * very processor the thread it waits for needs. */
#ifndef TRAINER_BARRIER_H
#define TRAINER_BARRIER_H

#include <stdatomic.h>

/* How long a waiting thread spins before it sleeps, in nanoseconds. */
#define TR_BARRIER_SPIN_NS 5000

typedef struct {
    atomic_uint arrived;  /* threads at the barrier in this round */
    atomic_uint round;    /* rounds completed: what sleepers wait on */
    atomic_uint sleepers; /* threads asleep or about to sleep */
    unsigned threads;
    long spin_ns;
} tr_barrier;

/* A barrier for `threads` threads (at least 1). */
void tr_barrier_init(tr_barrier *b, int threads);

/* Returns once all the barrier's threads have called it.  Every write a
 * thread made before its call is visible to every thread after theirs. */
void tr_barrier_wait(tr_barrier *b);

#endif
