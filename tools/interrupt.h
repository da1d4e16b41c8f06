/* interrupt.h - how the trainer is stopped: the first SIGINT, SIGTERM or
 * SIGHUP asks training to stop after its current step (the state is then
 * saved); a second one ends the program at once, the files written so far
 * whole (every write goes through a temporary file). */
#ifndef TRAINER_TOOLS_INTERRUPT_H
#define TRAINER_TOOLS_INTERRUPT_H

#include <signal.h>

/* The first signal received, 0 before: tr_run_fit's stop flag. */
extern volatile sig_atomic_t interrupt_signal;

/* Installs the handlers; a SIGHUP ignored on entry (nohup) stays ignored.
 * under_mpi: the process is one of several under mpirun, which stops
 * reading their output when it stops the job. */
void interrupt_catch(int under_mpi);

/* Calls handler on sig; SA_RESTART, since the files being written when a
 * signal comes must still be written. */
void interrupt_handle(int sig, void (*handler)(int));

#endif
