/* barrier.h - the barrier between the threads of a training step: spin,
 * then sleep, for as long as the machine allows.
 *
 * A step meets at a barrier a few times.  When other programs share the
 * cores, the thread being waited for may be off its core for a scheduler
 * slice (milliseconds).  A waiting thread must then give its core up at
 * once: OpenMP's barrier (libgomp) spins through most of such a slice,
 * taking the time the other program needed, so that the slow thread is
 * back later still (the MLP beside two busy processes took 14 s on 2
 * threads against 2 s on one).  Here it spins for about as long as a sleep
 * and a wake cost (TR_BARRIER_SPIN_NS), then sleeps until the last thread
 * arrives and wakes it; a thread that slept is scheduled promptly.
 *
 * On a quiet machine it must not sleep: the waits are the imbalance of the
 * threads' shares (0.6 ms on average in the recipe's steps), and a virtual
 * machine's idle core may go to another guest and come back late, its
 * caches cold (the recipe ran 9% slower sleeping after 5 us, as slow
 * after 1 ms, than spinning through).  So each thread looks, every
 * TR_BARRIER_LOOK_NS, whether the system preempted it more than twice since its last look (a
 * core shared with another runnable program: on a quiet machine once in
 * 471 looks, beside a busy process 2 in 3), and then the short spin
 * holds for every thread for TR_BARRIER_SHARED_NS; otherwise they spin up
 * to TR_BARRIER_QUIET_SPIN_NS.  More threads than processors preempt each
 * other, so they count as shared. */
#ifndef TRAINER_BARRIER_H
#define TRAINER_BARRIER_H

#include <stdatomic.h>

/* How long a waiting thread spins before it sleeps, in nanoseconds, when
 * the cores are shared and when they are not. */
#define TR_BARRIER_SPIN_NS 5000
#define TR_BARRIER_QUIET_SPIN_NS 50000000
/* How often a thread looks for preemptions, and how long what it saw
 * holds. */
#define TR_BARRIER_LOOK_NS 20000000
#define TR_BARRIER_SHARED_NS 200000000

typedef struct {
    atomic_uint arrived;  /* threads at the barrier in this round */
    atomic_uint round;    /* rounds completed: what sleepers wait on */
    atomic_uint sleepers; /* threads asleep or about to sleep */
    atomic_llong shared_until; /* CLOCK_MONOTONIC ns: the short spin holds till then */
    unsigned threads;
    long spin_ns, quiet_spin_ns;
} tr_barrier;

/* A barrier for `threads` threads (at least 1). */
void tr_barrier_init(tr_barrier *b, int threads);

/* Returns once all the barrier's threads have called it.  Every write a
 * thread made before its call is visible to every thread after theirs. */
void tr_barrier_wait(tr_barrier *b);

#endif
