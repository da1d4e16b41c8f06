/* The trainer's signals (interrupt.h). */
#include "interrupt.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* The first SIGINT, SIGTERM or SIGHUP asks training to stop after its current step;
 * a second one ends the program at once (the files written so far are whole:
 * every write goes through a temporary file). */
volatile sig_atomic_t interrupt_signal;
static volatile sig_atomic_t unblock_output; /* under mpirun */

static void on_signal(int sig)
{
    /* mpirun, stopping the job, no longer reads the processes' output: a
     * write into a full pipe would then wait until mpirun kills the
     * process, and the state would never be saved.  The writes fail
     * instead (fcntl is async-signal-safe). */
    if (unblock_output)
        for (int fd = STDOUT_FILENO; fd <= STDERR_FILENO; fd++)
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (interrupt_signal) {
        static const char msg[] = "\ntrainer: second signal, exiting at once; the last "
                                  "saved state is kept\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)ignored;
        _exit(128 + sig);
    }
    interrupt_signal = sig;
}

void interrupt_handle(int sig, void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

void interrupt_catch(int under_mpi)
{
    interrupt_handle(SIGINT, on_signal);
    interrupt_handle(SIGTERM, on_signal);
    /* A closed terminal or a dropped ssh session: the run is saved as for
     * SIGTERM, not lost; but a run started with SIGHUP ignored (nohup) goes
     * on, as its user asked. */
    struct sigaction hup;
    if (sigaction(SIGHUP, NULL, &hup) != 0 || hup.sa_handler != SIG_IGN)
        interrupt_handle(SIGHUP, on_signal);
    /* Nor may a write into a pipe that mpirun has closed end the process. */
    if (under_mpi) {
        unblock_output = 1;
        interrupt_handle(SIGPIPE, SIG_IGN);
    }
}
