/* The step's barrier: no thread leaves a round before every thread has
 * arrived, each sees what the others wrote before arriving, and a thread
 * that went to sleep is woken, whether it spun first or not, with more
 * threads than this machine's processors too. */
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "training/barrier.h"

enum { MAX_THREADS = 8 };

typedef struct {
    tr_barrier barrier;
    int threads, rounds;
    long late_ns;              /* thread 0 arrives this late in every round */
    volatile int seen[MAX_THREADS];
    int errors[MAX_THREADS];
} trial;

typedef struct {
    trial *trial;
    int t;
} worker;

static void pause_ns(long ns)
{
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
}

static void *run_rounds(void *arg)
{
    const worker *w = arg;
    trial *tr = w->trial;
    for (int i = 1; i <= tr->rounds; i++) {
        if (w->t == 0 && tr->late_ns)
            pause_ns(tr->late_ns);
        tr->seen[w->t] = i;
        tr_barrier_wait(&tr->barrier);
        for (int u = 0; u < tr->threads; u++)
            if (tr->seen[u] != i)
                tr->errors[w->t]++;
        /* Nobody writes the next round's value before all have read. */
        tr_barrier_wait(&tr->barrier);
    }
    return NULL;
}

/* Runs the trial's rounds on its threads; returns the errors seen. */
static int run_trial(trial *tr, const char *what)
{
    pthread_t id[MAX_THREADS];
    worker w[MAX_THREADS];
    for (int t = 0; t < tr->threads; t++) {
        tr->seen[t] = 0;
        tr->errors[t] = 0;
        w[t] = (worker){tr, t};
        if (pthread_create(&id[t], NULL, run_rounds, &w[t])) {
            fprintf(stderr, "FAIL %s: cannot start thread %d\n", what, t);
            return 1;
        }
    }
    int errors = 0;
    for (int t = 0; t < tr->threads; t++) {
        pthread_join(id[t], NULL);
        errors += tr->errors[t];
    }
    if (errors)
        fprintf(stderr, "FAIL %s: %d reads of a value from another round\n", what, errors);
    else
        printf("ok %s\n", what);
    return errors != 0;
}

int main(void)
{
    int failed = 0;
    static trial tr;
    const struct {
        const char *what;
        int threads, rounds;
        long spin_ns, late_ns;
    } cases[] = {
        {"2 threads, spinning first", 2, 20000, -1, 0},
        {"3 threads, sleeping at once", 3, 5000, 0, 0},
        {"8 threads", 8, 2000, -1, 0},
        {"2 threads, one late by 2 ms", 2, 50, -1, 2000000},
        {"4 threads asleep, one late by 1 ms", 4, 50, 0, 1000000},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        tr_barrier_init(&tr.barrier, cases[c].threads);
        if (cases[c].spin_ns >= 0)
            tr.barrier.spin_ns = tr.barrier.quiet_spin_ns = cases[c].spin_ns;
        tr.threads = cases[c].threads;
        tr.rounds = cases[c].rounds;
        tr.late_ns = cases[c].late_ns;
        failed |= run_trial(&tr, cases[c].what);
    }
    return failed;
}
