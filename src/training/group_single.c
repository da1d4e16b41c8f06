/* group.h without MPI: this process alone. */
#include "group.h"

#include <stdlib.h>
#include <unistd.h>
#include <stdio.h>

int group_start(tr_error *err)
{
    /* Several copies of a program that cannot talk would each train the
     * whole model and write the same files. */
    if (group_launched())
        return error_set(err, "started by an MPI launcher, but this build has no MPI "
                         "(meson setup -Dmpi=enabled, with libopenmpi-dev)");
    return 0;
}

void group_end(void) {}

void group_open(void) {}

void group_close(void) {}

int group_rank(void)
{
    return 0;
}

int group_size(void)
{
    return 1;
}

int group_any(int flag)
{
    return flag != 0;
}

int group_first(int flag)
{
    return flag ? 0 : -1;
}

void group_allgather(void *buf, size_t each)
{
    (void)buf, (void)each;
}

void group_allgather_floats(float *buf, const size_t *at)
{
    (void)buf, (void)at;
}

void group_exchange(const group_transfer *send, int n_send, const group_transfer *recv,
                    int n_recv)
{
    (void)send, (void)n_send, (void)recv, (void)n_recv;
}

double group_bytes_sent(void)
{
    return 0.0;
}

void group_hosts(char *buf, size_t size)
{
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    snprintf(buf, size, "%s (rank 0)", host);
}
