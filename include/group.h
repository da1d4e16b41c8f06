/* group.h - the processes that train one model together.
 *
 * Started by an MPI launcher (mpirun, srun), the trainer's processes form a
 * group: the MPI ranks of MPI_COMM_WORLD.  Otherwise, and in a build without
 * MPI, the group is this process alone and every exchange below does
 * nothing.  The training step (train.h) uses the group to share its shards'
 * gradients; the program uses it to agree on failures and to name the
 * processes.
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

/* Whether flag is nonzero on any process. */
int tr_group_any(int flag);

/* The lowest rank whose flag is nonzero, or -1. */
int tr_group_first(int flag);

/* Each process's `each` bytes at buf + rank * each, sent to every process:
 * buf holds all of them after. */
void tr_group_allgather(void *buf, size_t each);

/* Each process's floats [at[rank], at[rank + 1]) of buf sent to every
 * process (at: [size + 1] offsets). */
void tr_group_allgather_floats(float *buf, const size_t *at);

/* Point-to-point transfers, all at once: each send's bytes go to its peer,
 * each receive's buffer is filled from its peer; a send and its receive
 * pair by (peer, tag) in the order they are posted. */
typedef struct {
    void *buf;
    size_t bytes;
    int peer, tag;
} tr_group_transfer;
void tr_group_exchange(const tr_group_transfer *send, int n_send, const tr_group_transfer *recv,
                       int n_recv);

/* Between tr_group_open and tr_group_close, tr_group_allgather, tr_group_allgather_floats
 * and tr_group_exchange only start: they run together and tr_group_close waits
 * for them all, so that a step pays the processes' latency once.  Their
 * buffers must not be touched until then. */
void tr_group_open(void);
void tr_group_close(void);

/* The bytes this process has sent so far through the functions above: what
 * it hands MPI to deliver (an allgather's block once per other process),
 * however MPI routes it. */
double tr_group_bytes_sent(void);

/* The host each process runs on, in rank order: "host (ranks 0-1), other
 * (rank 2)" into buf. */
void tr_group_hosts(char *buf, size_t size);

#endif
