#include "dataset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "idx.h"

int tr_dataset_load_files(tr_dataset *d, const char *images_path, const char *labels_path,
                          tr_error *err)
{
    memset(d, 0, sizeof *d);
    tr_idx_array im = {0}, lb = {0};
    /* The labels first: they are small, and the image file must then hold
     * as many items, which is checked from its header before its images are
     * read. */
    if (tr_idx_load(&lb, labels_path, 0, err))
        return -1;
    int status = 0;
    if (lb.ndim != 1)
        status = tr_error_set(err, "%s: expected a label file (1 dimension), found %d",
                              labels_path, lb.ndim);
    if (status || tr_idx_load(&im, images_path, lb.dims[0], err)) {
        tr_idx_free(&lb);
        return -1;
    }
    if (im.ndim != 3 && im.ndim != 4) {
        status = tr_error_set(err, "%s: expected an image file (3 dimensions, or 4 with "
                              "channels), found %d dimension%s", images_path, im.ndim,
                              im.ndim == 1 ? "" : "s");
        tr_idx_free(&im);
        tr_idx_free(&lb);
        return status;
    }
    if (im.item_size > DATASET_MAX_IMAGE) {
        status = tr_error_set(err, "%s: images of %zu values, more than %d", images_path,
                              im.item_size, DATASET_MAX_IMAGE);
        tr_idx_free(&im);
        tr_idx_free(&lb);
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

int tr_dataset_find_file(char *buf, size_t size, const char *dir, const char *base)
{
    static const char *const suffixes[] = {"", ".gz"};
    for (int i = 0; i < 2; i++) {
        int n = snprintf(buf, size, "%s/%s%s", dir, base, suffixes[i]);
        if (n >= 0 && (size_t)n < size && exists(buf))
            return 0;
    }
    return -1;
}

size_t tr_dataset_idx_headers(const tr_dataset *d, uint8_t images[20], uint8_t labels[8])
{
    const uint32_t dims[4] = {d->n, d->rows, d->cols, d->channels};
    const int ndim = d->channels > 1 ? 4 : 3;
    images[0] = images[1] = labels[0] = labels[1] = 0;
    images[2] = labels[2] = 0x08;
    images[3] = (uint8_t)ndim;
    labels[3] = 1;
    for (int k = 0; k < 4; k++) {
        uint8_t *p = k < ndim ? images + 4 + 4 * k : NULL;
        for (int b = 0; p && b < 4; b++)
            p[b] = (uint8_t)(dims[k] >> (24 - 8 * b));
    }
    memcpy(labels + 4, images + 4, 4);
    return 4 + 4 * (size_t)ndim;
}

void tr_dataset_set_fingerprint(tr_dataset *d)
{
    uint8_t ih[20], lh[8];
    const size_t ilen = tr_dataset_idx_headers(d, ih, lh);
    uLong ic = crc32_z(0, ih, ilen);
    ic = crc32_z(ic, d->pixels, (size_t)d->n * d->dim);
    uLong lc = crc32_z(0, lh, sizeof lh);
    lc = crc32_z(lc, d->labels, d->n);
    d->fingerprint = (uint32_t)crc32_combine(ic, lc, (z_off_t)(8 + (size_t)d->n));
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int has_idx(const char *dir, int test)
{
    char probe[4096];
    return tr_dataset_find_file(probe, sizeof probe, dir,
                                test ? DATASET_TEST_IMAGES : DATASET_TRAIN_IMAGES) == 0;
}

/* The test set from a directory of any kind, with the training set's
 * classes and channels. */
static int load_test_set(tr_dataset *test, const tr_dataset *train, const char *dir,
                         const tr_dataset_options *o, tr_error *err)
{
    if (!is_dir(dir))
        return tr_error_set(err, "%s: test data directory not found", dir);
    if (has_idx(dir, 1))
        return tr_dataset_load_dir(test, dir, 1, err);
    if (tr_dataset_is_cifar10(dir))
        return tr_dataset_load_cifar10(test, dir, 1, err);
    if (!train->class_names[0])
        return tr_error_set(err, "%s: a folder of classes needs named classes to test; the "
                            "training data has numbered ones", dir);
    tr_dataset_options to = *o;
    to.channels = (int)train->channels;
    return tr_dataset_load_folder(test, dir, &to, train->class_names, err);
}

int tr_dataset_load_test(tr_dataset *test, const char *dir, const char *names,
                         const tr_dataset_options *o, tr_error *err)
{
    memset(test, 0, sizeof *test);
    tr_dataset known = {.channels = (uint32_t)o->channels};
    snprintf(known.class_names, sizeof known.class_names, "%s", names);
    char train_dir[4096], test_dir[4096];
    snprintf(train_dir, sizeof train_dir, "%s/train", dir);
    snprintf(test_dir, sizeof test_dir, "%s/test", dir);
    const int split = is_dir(dir) && !has_idx(dir, 1) && !tr_dataset_is_cifar10(dir) &&
                      is_dir(train_dir) && is_dir(test_dir);
    if (load_test_set(test, &known, split ? test_dir : dir, o, err))
        return -1;
    if (!test->class_names[0])
        memcpy(test->class_names, known.class_names, sizeof test->class_names);
    return 0;
}

static int load_training_and_test(tr_dataset *train, tr_dataset *test, const tr_dataset_source *s,
                                  tr_error *err)
{
    const char *dir = s->dir;
    if (!is_dir(dir)) {
        struct stat st;
        if (stat(dir, &st) != 0)
            return tr_error_set(err, "%s: data directory not found: %s", dir, strerror(errno));
        return tr_error_set(err, "%s: not a directory", dir);
    }
    if (s->class_names_file && !has_idx(dir, 0))
        return tr_error_set(err, "--class-names %s: for IDX data, whose classes are numbers; %s "
                            "names its own", s->class_names_file, dir);
    if (has_idx(dir, 0)) {
        if (tr_dataset_load_dir(train, dir, 0, err))
            return -1;
        /* trainer dataset --to-idx writes the names beside the files. */
        char beside[4096];
        snprintf(beside, sizeof beside, "%s/%s", dir, DATASET_CLASS_NAMES);
        const char *names = s->class_names_file ? s->class_names_file
                            : is_file(beside)   ? beside
                                                : NULL;
        if (names) {
            if (tr_class_names_read(train->class_names, names, err))
                return -1;
            const int n = tr_class_names_count(train->class_names);
            if ((uint32_t)n < train->classes)
                return tr_error_set(err, "%s: %d class names, but %s has labels up to %u", names,
                                    n, dir, train->classes - 1);
            train->classes = (uint32_t)n;
        }
        if (s->test_dir)
            return load_test_set(test, train, s->test_dir, &s->pictures, err);
        return has_idx(dir, 1) ? tr_dataset_load_dir(test, dir, 1, err) : 0;
    }
    if (tr_dataset_is_cifar10(dir))
        return tr_dataset_load_cifar10(train, dir, 0, err) ||
               (s->test_dir ? load_test_set(test, train, s->test_dir, &s->pictures, err)
                            : tr_dataset_load_cifar10(test, dir, 1, err));
    char train_dir[4096], test_dir[4096];
    snprintf(train_dir, sizeof train_dir, "%s/train", dir);
    snprintf(test_dir, sizeof test_dir, "%s/test", dir);
    if (!s->test_dir && is_dir(train_dir) && is_dir(test_dir))
        return tr_dataset_load_folder(train, train_dir, &s->pictures, NULL, err) ||
               load_test_set(test, train, test_dir, &s->pictures, err);
    if (tr_dataset_load_folder(train, dir, &s->pictures, NULL, err))
        return -1;
    return s->test_dir ? load_test_set(test, train, s->test_dir, &s->pictures, err) : 0;
}

int tr_dataset_load_sets(tr_dataset *train, tr_dataset *test, const tr_dataset_source *s,
                         tr_error *err)
{
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (load_training_and_test(train, test, s, err)) {
        tr_dataset_free(train);
        tr_dataset_free(test);
        return -1;
    }
    if (test->n && (test->rows != train->rows || test->cols != train->cols ||
                    test->channels != train->channels)) {
        tr_error_set(err, "%s: test images are %ux%ux%u but training images %ux%ux%u",
                     s->test_dir ? s->test_dir : s->dir, test->rows, test->cols, test->channels,
                     train->rows, train->cols, train->channels);
        tr_dataset_free(train);
        tr_dataset_free(test);
        return -1;
    }
    test->classes = train->classes;
    memcpy(test->class_names, train->class_names, sizeof test->class_names);
    return 0;
}

int tr_dataset_load_dir(tr_dataset *d, const char *dir, int test, tr_error *err)
{
    memset(d, 0, sizeof *d);
    struct stat st;
    if (stat(dir, &st) != 0)
        return tr_error_set(err, "%s: data directory not found: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return tr_error_set(err, "%s: not a directory", dir);
    char images[4096], labels[4096];
    const char *ib = test ? DATASET_TEST_IMAGES : DATASET_TRAIN_IMAGES;
    const char *lb = test ? DATASET_TEST_LABELS : DATASET_TRAIN_LABELS;
    if (tr_dataset_find_file(images, sizeof images, dir, ib))
        return tr_error_set(err, "%s/%s[.gz]: not found", dir, ib);
    if (tr_dataset_find_file(labels, sizeof labels, dir, lb))
        return tr_error_set(err, "%s/%s[.gz]: not found", dir, lb);
    return tr_dataset_load_files(d, images, labels, err);
}

void tr_dataset_free(tr_dataset *d)
{
    if (d->owned) {
        free(d->pixels);
        free(d->labels);
    }
    memset(d, 0, sizeof *d);
}

/* Samples first..first+count of d as a view. */
static tr_dataset dataset_slice(const tr_dataset *d, uint32_t first, uint32_t count)
{
    tr_dataset v = *d;
    v.n = count;
    v.pixels = d->pixels + (size_t)first * d->dim;
    v.labels = d->labels + first;
    v.owned = 0;
    return v;
}

void tr_dataset_split(const tr_dataset *all, double fraction, tr_dataset *train, tr_dataset *val)
{
    /* Keras computes int(n * (1 - fraction)); the same double arithmetic here
     * gives the same split point. */
    uint32_t n_train = (uint32_t)((double)all->n * (1.0 - fraction));
    if (n_train > all->n)
        n_train = all->n;
    *train = dataset_slice(all, 0, n_train);
    *val = dataset_slice(all, n_train, all->n - n_train);
}

static void prefetch_image(const tr_dataset *d, uint32_t s)
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
const float tr_dataset_pixel_value[256] = {PIXEL_64(0), PIXEL_64(64), PIXEL_64(128),
                                        PIXEL_64(192)};

void tr_dataset_rows(const uint8_t **rows, uint8_t *y, const tr_dataset *d, const uint32_t *idx,
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

void tr_dataset_gather(float *x, uint8_t *y, const tr_dataset *d, const uint32_t *idx,
                       uint32_t first, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++) {
        uint32_t s = idx ? idx[first + k] : first + k;
        const uint8_t *p = d->pixels + (size_t)s * d->dim;
        float *row = x + (size_t)k * d->dim;
        for (uint32_t j = 0; j < d->dim; j++)
            row[j] = tr_dataset_pixel_value[p[j]];
        if (y)
            y[k] = d->labels[s];
    }
}

const char *tr_dataset_default_dir(void)
{
    static const char *const candidates[] = {"data/mnist", TRAINER_SOURCE_DIR "/data/mnist"};
    for (size_t i = 0; i < sizeof candidates / sizeof *candidates; i++) {
        char probe[4096];
        if (tr_dataset_find_file(probe, sizeof probe, candidates[i], DATASET_TRAIN_IMAGES) == 0)
            return candidates[i];
    }
    return NULL;
}
