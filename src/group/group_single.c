/* group.h without MPI: this process alone. */
#include "exchange.h"

#include <stdlib.h>
#include <unistd.h>
#include <stdio.h>

int tr_group_start(tr_error *err)
{
    /* Several copies of a program that cannot talk would each train the
     * whole model and write the same files. */
    if (tr_group_launched())
        return tr_error_set(err, "started by an MPI launcher, but this build has no MPI "
                            "(meson setup -Dmpi=enabled, with libopenmpi-dev)");
    return 0;
}

void tr_group_end(void) {}

void tr_group_open(void) {}

void tr_group_close(void) {}

int tr_group_rank(void)
{
    return 0;
}

int tr_group_size(void)
{
    return 1;
}

int tr_group_any(int flag)
{
    return flag != 0;
}

int tr_group_first(int flag)
{
    return flag ? 0 : -1;
}

void tr_group_allgather(void *buf, size_t each)
{
    (void)buf, (void)each;
}

void tr_group_allgather_floats(float *buf, const size_t *at)
{
    (void)buf, (void)at;
}

void tr_group_exchange(const tr_group_transfer *send, int n_send, const tr_group_transfer *recv,
                       int n_recv)
{
    (void)send, (void)n_send, (void)recv, (void)n_recv;
}

double tr_group_bytes_sent(void)
{
    return 0.0;
}

void tr_group_hosts(char *buf, size_t size)
{
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    snprintf(buf, size, "%s (rank 0)", host);
}
