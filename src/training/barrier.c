#define _GNU_SOURCE /* syscall() */
#include "barrier.h"

#include <limits.h>
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
    if (b->spin_ns > 0) {
        const long long until = now_ns() + b->spin_ns;
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
