/* exchange.h - what the processes of a group (group.h) send each other
 * during a training step: collective, called by every process of the group
 * in the same order, from one thread. */
#ifndef TRAINER_EXCHANGE_H
#define TRAINER_EXCHANGE_H

#include <stddef.h>

#include "group.h"

/* Whether flag is nonzero on any process. */
int tr_group_any(int flag);

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

#endif
