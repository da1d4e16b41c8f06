/* testutil.h - the few helpers the test programs share.
 *
 * CHECK records a failure with its line and goes on, so one run reports every
 * broken assertion; test_finish() turns the count into the exit status. */
#ifndef TRAINER_TESTUTIL_H
#define TRAINER_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"

extern int test_failures;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond))                                                         \
            test_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);               \
    } while (0)

void test_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prints a summary and returns the exit status: 0 or 1. */
int test_finish(const char *name);

/* Where OpenMP is built in, checks that a session asked for `threads` with
 * `shards` shards ran on that many threads (at most the shards), so that a
 * test "on 4 threads" cannot pass on one; without OpenMP, says once that
 * the thread counts were not exercised. */
void test_check_threads_ran(int ran, int threads, int shards);

/* A new empty directory under $TMPDIR (or /tmp), removed with its files at
 * exit unless a check failed; aborts on failure.  One per test program. */
const char *test_tmpdir(void);

/* Writes len bytes to dir/name (gzip-compressed when gz); returns the path in
 * a static buffer that the next call overwrites. */
const char *test_write_file(const char *dir, const char *name, const void *data,
                            size_t len, int gz);

/* Builds an IDX image (header + items) of unsigned bytes in a new buffer. */
uint8_t *test_idx_bytes(const uint32_t *dims, int ndim, const uint8_t *items,
                        size_t *len);

/* A synthetic, learnable dataset of n images of rows x cols: each class draws
 * a bright bar at its own place, plus noise.  Owned; free with tr_dataset_free. */
void test_make_dataset(tr_dataset *d, uint32_t n, uint32_t rows, uint32_t cols,
                       uint64_t seed);

/* Writes d as the four MNIST files in dir (the training pair from d, the test
 * pair from t), gzipped when gz. */
void test_write_mnist_dir(const char *dir, const tr_dataset *d, const tr_dataset *t, int gz);

#endif
