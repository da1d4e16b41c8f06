/* cifar.c - CIFAR-10's binary version: data_batch_1.bin to data_batch_5.bin
 * (training), test_batch.bin and batches.meta.txt (the class names).
 *
 * A record is one label byte and 3,072 pixel bytes: the red plane of the
 * 32x32 picture, row by row, then the green, then the blue. */
#include "dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"

enum { CIFAR_SIDE = 32, CIFAR_PLANE = CIFAR_SIDE * CIFAR_SIDE, CIFAR_RECORD = 1 + 3 * CIFAR_PLANE };
#define CIFAR_BATCHES 5
/* 10,000 records a batch in the real files. */
#define CIFAR_MAX_FILE ((size_t)CIFAR_RECORD * 100000)

int tr_dataset_is_cifar10(const char *dir)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/data_batch_1.bin", dir);
    return stat(path, &st) == 0;
}

/* Appends the records of path to d (labels checked against classes). */
static int append_batch(tr_dataset *d, const char *path, uint32_t classes, tr_error *err)
{
    uint8_t *data;
    size_t len;
    if (tr_file_read_all(path, CIFAR_MAX_FILE, &data, &len, err))
        return -1;
    int rc = 0;
    if (len == 0 || len % CIFAR_RECORD)
        rc = tr_error_set(err, "%s: %zu bytes, not a whole number of CIFAR-10 records of %d "
                          "bytes", path, len, CIFAR_RECORD);
    const size_t n = len / CIFAR_RECORD;
    uint8_t *px = rc ? NULL : realloc(d->pixels, (d->n + n) * (size_t)d->dim);
    if (!rc && px)
        d->pixels = px;
    uint8_t *lb = rc ? NULL : realloc(d->labels, d->n + n);
    if (!rc && lb)
        d->labels = lb;
    if (!rc && (!px || !lb))
        rc = tr_error_set(err, "%s: out of memory", path);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const uint8_t *rec = data + i * CIFAR_RECORD;
        if (rec[0] >= classes) {
            rc = tr_error_set(err, "%s: record %zu has label %u, but there are %u classes", path,
                              i + 1, rec[0], classes);
            break;
        }
        d->labels[d->n + i] = rec[0];
        uint8_t *out = d->pixels + (d->n + i) * (size_t)d->dim;
        for (int j = 0; j < CIFAR_PLANE; j++)
            for (int ch = 0; ch < 3; ch++)
                out[3 * j + ch] = rec[1 + ch * CIFAR_PLANE + j];
    }
    if (rc == 0)
        d->n += (uint32_t)n;
    free(data);
    return rc;
}

int tr_dataset_load_cifar10(tr_dataset *d, const char *dir, int test, tr_error *err)
{
    memset(d, 0, sizeof *d);
    d->rows = d->cols = CIFAR_SIDE;
    d->channels = 3;
    d->dim = 3 * CIFAR_PLANE;
    d->owned = 1;
    d->format = DATASET_CIFAR10;
    char path[4096];
    snprintf(path, sizeof path, "%s/batches.meta.txt", dir);
    struct stat st;
    if (stat(path, &st) == 0 && tr_class_names_read(d->class_names, path, err))
        return -1;
    d->classes = d->class_names[0] ? (uint32_t)tr_class_names_count(d->class_names) : 10;
    int rc = 0;
    for (int b = 1; rc == 0 && b <= (test ? 1 : CIFAR_BATCHES); b++) {
        if (test)
            snprintf(path, sizeof path, "%s/test_batch.bin", dir);
        else
            snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, b);
        if (stat(path, &st) != 0)
            rc = tr_error_set(err, "%s: not found (CIFAR-10 has data_batch_1.bin to "
                              "data_batch_5.bin and test_batch.bin)", path);
        else
            rc = append_batch(d, path, d->classes, err);
    }
    if (rc == 0)
        tr_dataset_set_fingerprint(d);
    else
        tr_dataset_free(d);
    return rc;
}
