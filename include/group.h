/* group.h - the processes that train one model together.
 *
 * Started by an MPI launcher (mpirun, srun), the trainer's processes form a
 * group: the MPI ranks of MPI_COMM_WORLD.  Otherwise, and in a build without
 * MPI, the group is this process alone and every exchange below does
 * nothing.  The training step (train.h) uses the group to share its shards'
 * gradients (through its exchanges, src/group/exchange.h); the program
 * uses it to agree on failures and to name the processes.
 *
 * Every function but tr_group_rank, tr_group_size and tr_group_launched is
 * collective: every process of the group calls it, in the same order.  They
 * are called from one thread (the one that called tr_group_start). */
#ifndef TRAINER_GROUP_H
#define TRAINER_GROUP_H

#include <stddef.h>

#include "error.h"

/* Joins the group when the process was started by an MPI launcher (MPI
 * initialised for threads that call it from one thread at a time); else the
 * group is this process alone.  Fails when the launcher's environment is
 * there but MPI cannot start, or in a build without MPI. */
int tr_group_start(tr_error *err);

/* Leaves the group (MPI_Finalize); safe when not started. */
void tr_group_end(void);

/* Whether the process was started by an MPI launcher (its environment
 * says so), whether or not MPI is built in. */
int tr_group_launched(void);

int tr_group_rank(void); /* 0 to tr_group_size() - 1 */
int tr_group_size(void);

/* The lowest rank whose flag is nonzero, or -1. */
int tr_group_first(int flag);

/* The bytes this process has sent so far through the step's exchanges: what
 * it hands MPI to deliver (an allgather's block once per other process),
 * however MPI routes it. */
double tr_group_bytes_sent(void);

/* The host each process runs on, in rank order: "host (ranks 0-1), other
 * (rank 2)" into buf. */
void tr_group_hosts(char *buf, size_t size);

#endif
