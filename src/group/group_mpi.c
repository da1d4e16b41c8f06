/* group.h over MPI: the ranks of MPI_COMM_WORLD. */
#include "exchange.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int started, rank, size = 1;
static double sent;

/* Between tr_group_open and tr_group_close, operations are posted, not waited
 * for: their requests, and the counts an allgatherv reads until it ends. */
enum { MAX_POSTED = 4096, MAX_GATHERV = 4 };
static int open_section;
static MPI_Request posted[MAX_POSTED];
static int n_posted;
static int *gatherv_counts[MAX_GATHERV];
static int n_gatherv;

/* Waits for the posted operations when no section is open. */
static void settle(void)
{
    if (open_section)
        return;
    MPI_Waitall(n_posted, posted, MPI_STATUSES_IGNORE);
    n_posted = 0;
    n_gatherv = 0;
}

static MPI_Request *post(void)
{
    if (n_posted == MAX_POSTED) {
        MPI_Waitall(n_posted, posted, MPI_STATUSES_IGNORE);
        n_posted = 0;
    }
    return &posted[n_posted++];
}

void tr_group_open(void)
{
    open_section = size > 1;
}

void tr_group_close(void)
{
    open_section = 0;
    settle();
}

int tr_group_start(tr_error *err)
{
    if (started || !tr_group_launched())
        return 0;
    int provided;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return tr_error_set(err, "MPI did not start");
    started = 1;
    if (provided < MPI_THREAD_FUNNELED)
        return tr_error_set(err, "this MPI cannot be called from a threaded program");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    for (int k = 0; k < MAX_GATHERV; k++)
        if (!(gatherv_counts[k] = malloc(sizeof(int) * 2 * (size_t)size)))
            return tr_error_set(err, "out of memory for %d processes", size);
    return 0;
}

void tr_group_end(void)
{
    if (started)
        MPI_Finalize();
    started = 0;
    for (int k = 0; k < MAX_GATHERV; k++) {
        free(gatherv_counts[k]);
        gatherv_counts[k] = NULL;
    }
}

int tr_group_rank(void)
{
    return rank;
}

int tr_group_size(void)
{
    return size;
}

int tr_group_any(int flag)
{
    int any = flag != 0;
    if (size > 1)
        MPI_Allreduce(MPI_IN_PLACE, &any, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    return any;
}

int tr_group_first(int flag)
{
    int first = flag ? rank : size;
    if (size > 1)
        MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return first < size ? first : -1;
}

void tr_group_allgather(void *buf, size_t each)
{
    if (size == 1)
        return;
    MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, (int)each, MPI_BYTE, MPI_COMM_WORLD,
                   post());
    sent += (double)each * (size - 1);
    settle();
}

void tr_group_allgather_floats(float *buf, const size_t *at)
{
    if (size == 1)
        return;
    if (n_gatherv == MAX_GATHERV) {
        MPI_Waitall(n_posted, posted, MPI_STATUSES_IGNORE);
        n_posted = n_gatherv = 0;
    }
    int *counts = gatherv_counts[n_gatherv++], *displs = counts + size;
    for (int r = 0; r < size; r++) {
        counts[r] = (int)(at[r + 1] - at[r]);
        displs[r] = (int)at[r];
    }
    MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT,
                    MPI_COMM_WORLD, post());
    sent += sizeof(float) * (double)counts[rank] * (size - 1);
    settle();
}

void tr_group_exchange(const tr_group_transfer *send, int n_send, const tr_group_transfer *recv,
                       int n_recv)
{
    for (int i = 0; i < n_recv; i++)
        MPI_Irecv(recv[i].buf, (int)recv[i].bytes, MPI_BYTE, recv[i].peer, recv[i].tag,
                  MPI_COMM_WORLD, post());
    for (int i = 0; i < n_send; i++) {
        MPI_Isend(send[i].buf, (int)send[i].bytes, MPI_BYTE, send[i].peer, send[i].tag,
                  MPI_COMM_WORLD, post());
        sent += (double)send[i].bytes;
    }
    settle();
}

double tr_group_bytes_sent(void)
{
    return sent;
}

void tr_group_hosts(char *buf, size_t size_of_buf)
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
    tr_group_allgather(names, NAME);
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
