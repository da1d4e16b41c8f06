#define _GNU_SOURCE /* syscall(), RUSAGE_THREAD */
#include "barrier.h"

#include <limits.h>
#include <sys/resource.h>
#include <time.h>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#include <sched.h>
#endif

void tr_barrier_init(tr_barrier *b, int threads)
{
    atomic_init(&b->arrived, 0);
    atomic_init(&b->round, 0);
    atomic_init(&b->sleepers, 0);
    b->threads = threads < 1 ? 1u : (unsigned)threads;
    b->spin_ns = TR_BARRIER_SPIN_NS;
    b->quiet_spin_ns = TR_BARRIER_QUIET_SPIN_NS;
#ifdef RUSAGE_THREAD
    atomic_init(&b->shared_until, 0);
#else
    /* Nothing tells when the cores are shared: assume they are. */
    atomic_init(&b->shared_until, LLONG_MAX);
#endif
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Sleeps until woken, unless the round has moved past r (the kernel checks
 * that atomically, so a wake between the caller's check and the sleep is not
 * lost).  Without futexes: gives up the processor once. */
static void sleep_in_round(atomic_uint *round, unsigned r)
{
#ifdef __linux__
    syscall(SYS_futex, (unsigned *)round, FUTEX_WAIT_PRIVATE, r, NULL, NULL, 0);
#else
    (void)round;
    (void)r;
    sched_yield();
#endif
}

static void wake_sleepers(atomic_uint *round)
{
#ifdef __linux__
    syscall(SYS_futex, (unsigned *)round, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    (void)round;
#endif
}

/* When the calling thread last looked at its count of preemptions, and
 * the count then. */
static _Thread_local long long looked_at;
static _Thread_local long preemptions;

/* Marks the cores as shared for TR_BARRIER_SHARED_NS when the calling
 * thread was preempted more than twice since it last looked, at most every
 * TR_BARRIER_LOOK_NS. */
static void look_for_sharing(tr_barrier *b, long long now)
{
#ifdef RUSAGE_THREAD
    if (now - looked_at < TR_BARRIER_LOOK_NS)
        return;
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) == 0) {
        if (looked_at && ru.ru_nivcsw - preemptions > 2)
            atomic_store(&b->shared_until, now + TR_BARRIER_SHARED_NS);
        preemptions = ru.ru_nivcsw;
    }
    looked_at = now;
#else
    (void)b;
    (void)now;
#endif
}

void tr_barrier_wait(tr_barrier *b)
{
    const unsigned r = atomic_load(&b->round);
    if (atomic_fetch_add(&b->arrived, 1) + 1 == b->threads) {
        atomic_store(&b->arrived, 0);
        atomic_store(&b->round, r + 1);
        if (atomic_load(&b->sleepers))
            wake_sleepers(&b->round);
        return;
    }
    const long long now = now_ns();
    look_for_sharing(b, now);
    const long spin = now < atomic_load(&b->shared_until) ? b->spin_ns : b->quiet_spin_ns;
    if (spin > 0) {
        const long long until = now + spin;
        for (unsigned i = 1; atomic_load_explicit(&b->round, memory_order_acquire) == r; i++) {
            cpu_relax();
            if (i % 64 == 0 && now_ns() > until)
                break;
        }
    }
    /* The last thread stores the round before it reads sleepers, and a
     * sleeper counts itself before it reads the round: one of the two sees
     * the other. */
    if (atomic_load(&b->round) == r) {
        atomic_fetch_add(&b->sleepers, 1);
        while (atomic_load(&b->round) == r)
            sleep_in_round(&b->round, r);
        atomic_fetch_sub(&b->sleepers, 1);
    }
}
