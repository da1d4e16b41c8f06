#include "dataset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "idx.h"

const char *const DATASET_TRAIN_IMAGES = "train-images-idx3-ubyte";
const char *const DATASET_TRAIN_LABELS = "train-labels-idx1-ubyte";
const char *const DATASET_TEST_IMAGES = "t10k-images-idx3-ubyte";
const char *const DATASET_TEST_LABELS = "t10k-labels-idx1-ubyte";

int dataset_load_files(dataset *d, const char *images_path, const char *labels_path,
                       tr_error *err)
{
    memset(d, 0, sizeof *d);
    idx_array im = {0}, lb = {0};
    /* The labels first: they are small, and the image file must then hold
     * as many items, which is checked from its header before its images are
     * read. */
    if (idx_load(&lb, labels_path, 0, err))
        return -1;
    int status = 0;
    if (lb.ndim != 1)
        status = error_set(err, "%s: expected a label file (1 dimension), found %d",
                           labels_path, lb.ndim);
    if (status || idx_load(&im, images_path, lb.dims[0], err)) {
        idx_free(&lb);
        return -1;
    }
    if (im.ndim != 3 && im.ndim != 4) {
        status = error_set(err, "%s: expected an image file (3 dimensions, or 4 with "
                           "channels), found %d dimension%s", images_path, im.ndim,
                           im.ndim == 1 ? "" : "s");
        idx_free(&im);
        idx_free(&lb);
        return status;
    }
    if (im.item_size > DATASET_MAX_IMAGE) {
        status = error_set(err, "%s: images of %zu values, more than %d", images_path,
                           im.item_size, DATASET_MAX_IMAGE);
        idx_free(&im);
        idx_free(&lb);
        return status;
    }
    d->n = im.dims[0];
    d->rows = im.dims[1];
    d->cols = im.dims[2];
    d->channels = im.ndim == 4 ? im.dims[3] : 1;
    d->dim = d->rows * d->cols * d->channels;
    for (uint32_t i = 0; i < d->n; i++)
        if (lb.data[i] >= d->classes)
            d->classes = lb.data[i] + 1u;
    d->pixels = im.data;
    d->labels = lb.data;
    d->fingerprint = (uint32_t)crc32_combine(im.crc, lb.crc,
                                             (z_off_t)(8 + (size_t)lb.dims[0]));
    d->owned = 1;
    return 0;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int dataset_find_file(char *buf, size_t size, const char *dir, const char *base)
{
    static const char *const suffixes[] = {"", ".gz"};
    for (int i = 0; i < 2; i++) {
        int n = snprintf(buf, size, "%s/%s%s", dir, base, suffixes[i]);
        if (n >= 0 && (size_t)n < size && exists(buf))
            return 0;
    }
    return -1;
}

int dataset_load_dir(dataset *d, const char *dir, int test, tr_error *err)
{
    memset(d, 0, sizeof *d);
    struct stat st;
    if (stat(dir, &st) != 0)
        return error_set(err, "%s: data directory not found: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return error_set(err, "%s: not a directory", dir);
    char images[4096], labels[4096];
    const char *ib = test ? DATASET_TEST_IMAGES : DATASET_TRAIN_IMAGES;
    const char *lb = test ? DATASET_TEST_LABELS : DATASET_TRAIN_LABELS;
    if (dataset_find_file(images, sizeof images, dir, ib))
        return error_set(err, "%s/%s[.gz]: not found", dir, ib);
    if (dataset_find_file(labels, sizeof labels, dir, lb))
        return error_set(err, "%s/%s[.gz]: not found", dir, lb);
    return dataset_load_files(d, images, labels, err);
}

void dataset_free(dataset *d)
{
    if (d->owned) {
        free(d->pixels);
        free(d->labels);
    }
    memset(d, 0, sizeof *d);
}

/* Samples first..first+count of d as a view. */
static dataset dataset_slice(const dataset *d, uint32_t first, uint32_t count)
{
    dataset v = *d;
    v.n = count;
    v.pixels = d->pixels + (size_t)first * d->dim;
    v.labels = d->labels + first;
    v.owned = 0;
    return v;
}

void dataset_split(const dataset *all, double fraction, dataset *train, dataset *val)
{
    /* Keras computes int(n * (1 - fraction)); the same double arithmetic here
     * gives the same split point. */
    uint32_t n_train = (uint32_t)((double)all->n * (1.0 - fraction));
    if (n_train > all->n)
        n_train = all->n;
    *train = dataset_slice(all, 0, n_train);
    *val = dataset_slice(all, n_train, all->n - n_train);
}

static void prefetch_image(const dataset *d, uint32_t s)
{
    const uint8_t *q = d->pixels + (size_t)s * d->dim;
    for (uint32_t j = 0; j < d->dim; j += 64)
        __builtin_prefetch(q + j, 0, 3);
}

/* Folded by the compiler, which rounds the quotients as the division would. */
#define PIXEL_1(b) ((float)(b) / DATASET_PIXEL_DIVISOR)
#define PIXEL_4(b) PIXEL_1(b), PIXEL_1(b + 1), PIXEL_1(b + 2), PIXEL_1(b + 3)
#define PIXEL_16(b) PIXEL_4(b), PIXEL_4(b + 4), PIXEL_4(b + 8), PIXEL_4(b + 12)
#define PIXEL_64(b) PIXEL_16(b), PIXEL_16(b + 16), PIXEL_16(b + 32), PIXEL_16(b + 48)
const float dataset_pixel_value[256] = {PIXEL_64(0), PIXEL_64(64), PIXEL_64(128),
                                        PIXEL_64(192)};

void dataset_rows(const uint8_t **rows, uint8_t *y, const dataset *d, const uint32_t *idx,
                  uint32_t first, uint32_t n)
{
    /* The shuffled images are scattered over 47 MB: their reads were most of
     * the time spent gathering a batch until they were prefetched. */
    enum { AHEAD = 6 };
    for (uint32_t k = 0; idx && k < n && k < AHEAD; k++)
        prefetch_image(d, idx[first + k]);
    for (uint32_t k = 0; k < n; k++) {
        uint32_t s = idx ? idx[first + k] : first + k;
        if (idx && k + AHEAD < n)
            prefetch_image(d, idx[first + k + AHEAD]);
        rows[k] = d->pixels + (size_t)s * d->dim;
        y[k] = d->labels[s];
    }
}

void dataset_gather(float *x, uint8_t *y, const dataset *d, const uint32_t *idx,
                    uint32_t first, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++) {
        uint32_t s = idx ? idx[first + k] : first + k;
        const uint8_t *p = d->pixels + (size_t)s * d->dim;
        float *row = x + (size_t)k * d->dim;
        for (uint32_t j = 0; j < d->dim; j++)
            row[j] = dataset_pixel_value[p[j]];
        if (y)
            y[k] = d->labels[s];
    }
}

const char *dataset_default_dir(void)
{
    static const char *const candidates[] = {"data/mnist", TRAINER_SOURCE_DIR "/data/mnist"};
    for (size_t i = 0; i < sizeof candidates / sizeof *candidates; i++) {
        char probe[4096];
        if (dataset_find_file(probe, sizeof probe, candidates[i], DATASET_TRAIN_IMAGES) == 0)
            return candidates[i];
    }
    return NULL;
}
