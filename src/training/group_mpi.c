/* group.h over MPI: the ranks of MPI_COMM_WORLD. */
#include "group.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int started, rank, size = 1;
static double sent;

int group_start(tr_error *err)
{
    if (started || !group_launched())
        return 0;
    int provided;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return error_set(err, "MPI did not start");
    started = 1;
    if (provided < MPI_THREAD_FUNNELED)
        return error_set(err, "this MPI cannot be called from a threaded program");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    return 0;
}

void group_end(void)
{
    if (started)
        MPI_Finalize();
    started = 0;
}

int group_rank(void)
{
    return rank;
}

int group_size(void)
{
    return size;
}

int group_any(int flag)
{
    int any = flag != 0;
    if (size > 1)
        MPI_Allreduce(MPI_IN_PLACE, &any, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    return any;
}

int group_first(int flag)
{
    int first = flag ? rank : size;
    if (size > 1)
        MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return first < size ? first : -1;
}

void group_allgather(void *buf, size_t each)
{
    if (size == 1)
        return;
    MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, (int)each, MPI_BYTE, MPI_COMM_WORLD);
    sent += (double)each * (size - 1);
}

void group_allgather_floats(float *buf, const size_t *at)
{
    if (size == 1)
        return;
    int counts[size], displs[size];
    for (int r = 0; r < size; r++) {
        counts[r] = (int)(at[r + 1] - at[r]);
        displs[r] = (int)at[r];
    }
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT,
                   MPI_COMM_WORLD);
    sent += sizeof(float) * (double)counts[rank] * (size - 1);
}

void group_exchange(const group_transfer *send, int n_send, const group_transfer *recv,
                    int n_recv)
{
    if (n_send + n_recv == 0)
        return;
    MPI_Request *req = malloc(sizeof *req * (size_t)(n_send + n_recv));
    if (!req)
        MPI_Abort(MPI_COMM_WORLD, 1);
    for (int i = 0; i < n_recv; i++)
        MPI_Irecv(recv[i].buf, (int)recv[i].bytes, MPI_BYTE, recv[i].peer, recv[i].tag,
                  MPI_COMM_WORLD, &req[i]);
    for (int i = 0; i < n_send; i++)
        sent += (double)send[i].bytes;
    for (int i = 0; i < n_send; i++)
        MPI_Isend(send[i].buf, (int)send[i].bytes, MPI_BYTE, send[i].peer, send[i].tag,
                  MPI_COMM_WORLD, &req[n_recv + i]);
    MPI_Waitall(n_send + n_recv, req, MPI_STATUSES_IGNORE);
    free(req);
}

double group_bytes_sent(void)
{
    return sent;
}

void group_hosts(char *buf, size_t size_of_buf)
{
    enum { NAME = 64 };
    char *names = calloc((size_t)size, NAME);
    char mine[MPI_MAX_PROCESSOR_NAME] = "?";
    int len = 0;
    if (started)
        MPI_Get_processor_name(mine, &len);
    if (!names) {
        snprintf(buf, size_of_buf, "%d processes", size);
        return;
    }
    snprintf(names + (size_t)rank * NAME, NAME, "%s", mine);
    group_allgather(names, NAME);
    size_t at = 0;
    buf[0] = '\0';
    for (int r = 0; r < size && at < size_of_buf;) {
        int last = r;
        while (last + 1 < size && strcmp(names + (size_t)(last + 1) * NAME,
                                         names + (size_t)r * NAME) == 0)
            last++;
        int n = last == r ? snprintf(buf + at, size_of_buf - at, "%s%s (rank %d)",
                                     r ? ", " : "", names + (size_t)r * NAME, r)
                          : snprintf(buf + at, size_of_buf - at, "%s%s (ranks %d-%d)",
                                     r ? ", " : "", names + (size_t)r * NAME, r, last);
        at += n > 0 ? (size_t)n : 0;
        r = last + 1;
    }
    free(names);
}
