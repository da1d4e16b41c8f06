#define _XOPEN_SOURCE 700 /* nftw */

#include "testutil.h"

#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "rng.h"

int test_failures;

void test_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "FAIL %s:%d: %s: ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    test_failures++;
}

int test_finish(const char *name)
{
    if (test_failures) {
        fprintf(stderr, "%s: %d check%s failed\n", name, test_failures,
                test_failures == 1 ? "" : "s");
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

static char tmpdir_path[4096];

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)st;
    (void)type;
    (void)f;
    return remove(path);
}

/* A passing run leaves nothing behind; a failing one keeps its files for a
 * look, and says where they are. */
static void remove_tmpdir(void)
{
    if (test_failures)
        fprintf(stderr, "the test's files are kept in %s\n", tmpdir_path);
    else if (nftw(tmpdir_path, remove_entry, 16, FTW_DEPTH | FTW_PHYS))
        perror(tmpdir_path);
}

void test_check_threads_ran(int ran, int threads, int shards)
{
#ifdef _OPENMP
    const int want = threads < shards ? threads : shards;
    CHECK(ran == want, "asked %d threads with %d shards: %d ran", threads, shards, ran);
#else
    (void)threads;
    (void)shards;
    static int said;
    if (!said++)
        printf("note: built without OpenMP: every session ran on 1 thread (%d here); the "
               "shard arithmetic was tested, the threads were not\n", ran);
#endif
}

const char *test_tmpdir(void)
{
    if (tmpdir_path[0]) {
        fprintf(stderr, "test_tmpdir: called twice\n");
        exit(1);
    }
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir_path, sizeof tmpdir_path, "%s/trainer-test-XXXXXX",
             base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir_path)) {
        perror("mkdtemp");
        exit(1);
    }
    atexit(remove_tmpdir);
    return tmpdir_path;
}

const char *test_write_file(const char *dir, const char *name, const void *data,
                            size_t len, int gz)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        if (!f || (len && gzwrite(f, data, (unsigned)len) != (int)len) ||
            gzclose(f) != Z_OK) {
            fprintf(stderr, "cannot write %s\n", path);
            exit(1);
        }
    } else {
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
            fprintf(stderr, "cannot write %s\n", path);
            exit(1);
        }
    }
    return path;
}

uint8_t *test_idx_bytes(const uint32_t *dims, int ndim, const uint8_t *items,
                        size_t *len)
{
    size_t count = 1;
    for (int i = 0; i < ndim; i++)
        count *= dims[i];
    size_t header = 4 + 4 * (size_t)ndim;
    uint8_t *buf = malloc(header + count);
    if (!buf)
        exit(1);
    buf[0] = buf[1] = 0;
    buf[2] = 0x08;
    buf[3] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++)
        for (int b = 0; b < 4; b++)
            buf[4 + 4 * i + b] = (uint8_t)(dims[i] >> (24 - 8 * b));
    memcpy(buf + header, items, count);
    *len = header + count;
    return buf;
}

void test_make_dataset(tr_dataset *d, uint32_t n, uint32_t rows, uint32_t cols,
                       uint64_t seed)
{
    tr_rng r;
    tr_rng_seed(&r, seed, 77);
    memset(d, 0, sizeof *d);
    d->n = n;
    d->rows = rows;
    d->cols = cols;
    d->channels = 1;
    d->dim = rows * cols;
    d->pixels = calloc((size_t)n * d->dim, 1);
    d->labels = malloc(n);
    d->owned = 1;
    if (!d->pixels || !d->labels)
        exit(1);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t label = (uint8_t)tr_rng_below(&r, 10);
        d->labels[i] = label;
        if (label >= d->classes)
            d->classes = label + 1u;
        uint8_t *img = d->pixels + (size_t)i * d->dim;
        for (uint32_t j = 0; j < d->dim; j++)
            if (tr_rng_below(&r, 4) == 0)
                img[j] = (uint8_t)tr_rng_below(&r, 120);
        /* Class c lights row (c * rows / 10), a pattern a small MLP learns. */
        uint32_t row = label * rows / 10;
        for (uint32_t x = 0; x < cols; x++)
            img[row * cols + x] = (uint8_t)(200 + tr_rng_below(&r, 56));
    }
}

static void write_pair(const char *dir, const tr_dataset *d, const char *images,
                       const char *labels, int gz)
{
    char name[256];
    size_t len;
    uint32_t idims[3] = {d->n, d->rows, d->cols}, ldims[1] = {d->n};
    uint8_t *buf = test_idx_bytes(idims, 3, d->pixels, &len);
    snprintf(name, sizeof name, "%s%s", images, gz ? ".gz" : "");
    test_write_file(dir, name, buf, len, gz);
    free(buf);
    buf = test_idx_bytes(ldims, 1, d->labels, &len);
    snprintf(name, sizeof name, "%s%s", labels, gz ? ".gz" : "");
    test_write_file(dir, name, buf, len, gz);
    free(buf);
}

void test_write_mnist_dir(const char *dir, const tr_dataset *d, const tr_dataset *t, int gz)
{
    write_pair(dir, d, DATASET_TRAIN_IMAGES, DATASET_TRAIN_LABELS, gz);
    write_pair(dir, t, DATASET_TEST_IMAGES, DATASET_TEST_LABELS, gz);
}
