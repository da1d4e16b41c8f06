/* dataset.h - labelled images in memory, as read from a data directory:
 * MNIST's IDX files, CIFAR-10's binary batches, or a folder of pictures with
 * one subfolder per class.
 *
 * Pixels stay uint8 (one byte per pixel, 0..255); they are scaled to [0, 1]
 * only when a batch is formed, which keeps MNIST at 55 MB instead of 220. */
#ifndef TRAINER_DATASET_H
#define TRAINER_DATASET_H

#include <stdint.h>

#include "classes.h"
#include "error.h"

/* Labels are bytes: at most 256 classes. */
#define DATASET_MAX_CLASSES 256
/* Values in one image, at most (a model's input bound). */
#define DATASET_MAX_IMAGE (1 << 24)
/* Samples in one set, at most. */
#define DATASET_MAX_SAMPLES 50000000u

typedef struct {
    uint32_t n;          /* number of samples */
    uint32_t rows, cols; /* image size */
    uint32_t channels;   /* 1, or the fourth dimension of a 4-D image file */
    uint32_t dim;        /* rows * cols * channels */
    uint8_t *pixels;     /* [n][rows][cols][channels] */
    uint8_t *labels;     /* [n] */
    uint32_t classes;    /* the file's largest label + 1 (views keep their set's) */
    uint32_t fingerprint; /* CRC-32 of the image file's bytes followed by the label
                             file's, decompressed (views keep their set's) */
    int owned;           /* whether tr_dataset_free releases pixels and labels */
    uint32_t ignored;    /* a folder's files that are not pictures, left out */
    int format;          /* DATASET_IDX, DATASET_CIFAR10 or DATASET_FOLDER */
    char class_names[CLASS_NAMES_MAX]; /* classes.h; "" when they have none */
} tr_dataset;

enum { DATASET_IDX, DATASET_CIFAR10, DATASET_FOLDER };

/* How a folder's pictures become a data set's images. */
typedef struct {
    int rows, cols;  /* resize every picture to this (bilinear); 0: all must
                        have the first picture's size */
    int channels;    /* 1 grey, 3 RGB; 0: grey when every picture is */
    uint64_t seed;   /* the file order (shuffled, as Keras does) */
} tr_dataset_options;

/* Where a run's data comes from. */
typedef struct {
    const char *dir;              /* IDX files, CIFAR-10 batches or class folders */
    const char *test_dir;         /* the test set's, or NULL (see tr_dataset_load_sets) */
    const char *class_names_file; /* names for an IDX set's classes, or NULL */
    tr_dataset_options pictures;
} tr_dataset_source;

/* The file names of the four MNIST files, without the optional ".gz". */
#define DATASET_TRAIN_IMAGES "train-images-idx3-ubyte"
#define DATASET_TRAIN_LABELS "train-labels-idx1-ubyte"
#define DATASET_TEST_IMAGES "t10k-images-idx3-ubyte"
#define DATASET_TEST_LABELS "t10k-labels-idx1-ubyte"
/* Beside IDX files: their classes' names, one a line (read when present). */
#define DATASET_CLASS_NAMES "class-names.txt"

/* Loads an image file (IDX, 3 dimensions: n, rows, columns; or 4: n, rows,
 * columns, channels) and a label file (IDX, 1 dimension), checking that the
 * counts agree. */
int tr_dataset_load_files(tr_dataset *d, const char *images_path, const char *labels_path,
                          tr_error *err);

/* Loads the training set (into train) and the test set (into test) that s
 * names.  dir is read as IDX files when it holds train-images-idx3-ubyte
 * (test: t10k-*), as CIFAR-10 when it holds data_batch_1.bin (test:
 * test_batch.bin), as the folders dir/train and dir/test when it holds both
 * and no test_dir is named, and else as a folder of class folders.  A named
 * test_dir is read the same way (its IDX or CIFAR-10 test files, or its class
 * folders); a folder of classes without one has no test set (test->n 0).
 * The test set has the training set's classes, names and image shape. */
int tr_dataset_load_sets(tr_dataset *train, tr_dataset *test, const tr_dataset_source *s,
                         tr_error *err);

/* The test set alone of what dir holds (as tr_dataset_load_sets reads it: its
 * IDX or CIFAR-10 test files, dir/test beside dir/train, or dir's class
 * folders), for a model whose classes are names (classes.h, "" for
 * numbers): a folder's subfolders are those classes, and an IDX set gets
 * the names. */
int tr_dataset_load_test(tr_dataset *test, const char *dir, const char *names,
                         const tr_dataset_options *o, tr_error *err);

/* A folder of class folders (see tr_dataset_load_sets); with train_names, the
 * subfolders are those classes (a test set's), else the classes found. */
int tr_dataset_load_folder(tr_dataset *d, const char *dir, const tr_dataset_options *o,
                           const char *train_names, tr_error *err);

/* CIFAR-10's binary training (or test) batches in dir, with the names of
 * batches.meta.txt when it is there. */
int tr_dataset_load_cifar10(tr_dataset *d, const char *dir, int test, tr_error *err);
int tr_dataset_is_cifar10(const char *dir);

/* The fingerprint of d's images and labels: what it would be for the IDX
 * files holding them (tr_dataset_idx_headers), so that a converted set resumes
 * a run of its source. */
void tr_dataset_set_fingerprint(tr_dataset *d);

/* The IDX headers of d's image file (16 bytes, or 20 with channels) and
 * label file (8 bytes).  Returns the image header's length. */
size_t tr_dataset_idx_headers(const tr_dataset *d, uint8_t images[20], uint8_t labels[8]);

/* Loads DIR/<base> or DIR/<base>.gz for the training or the test pair.
 * A missing directory or file is reported with the path that was looked for. */
int tr_dataset_load_dir(tr_dataset *d, const char *dir, int test, tr_error *err);

/* Writes the path of DIR/<base>, or DIR/<base>.gz if only that exists, into
 * buf.  Returns 0 if one of them exists, -1 if neither does (buf then holds the
 * .gz name). */
int tr_dataset_find_file(char *buf, size_t size, const char *dir, const char *base);

/* The data directory when none is named: data/mnist under the working
 * directory, else the one in the source tree the library was built from
 * (where tools/fetch-mnist puts it); NULL when neither holds MNIST's
 * training images. */
const char *tr_dataset_default_dir(void);

void tr_dataset_free(tr_dataset *d);

/* Keras' validation_split: the first floor(n * (1 - fraction)) samples train,
 * the rest validate, before any shuffle.  Both are views into all. */
void tr_dataset_split(const tr_dataset *all, double fraction, tr_dataset *train, tr_dataset *val);

/* tr_dataset_pixel_value[b] = b / 255 in float32, as Keras' x / 255: the value
 * the network sees for a pixel b, (float)b / DATASET_PIXEL_DIVISOR. */
#define DATASET_PIXEL_DIVISOR 255.0f
extern const float tr_dataset_pixel_value[256];

/* rows[k] = the image of sample idx[k] and y[k] = its label, for k < n; idx
 * may be NULL for the samples first..first+n in order.  The images ahead are
 * prefetched. */
void tr_dataset_rows(const uint8_t **rows, uint8_t *y, const tr_dataset *d, const uint32_t *idx,
                     uint32_t first, uint32_t n);

/* x[k][j] = pixels[idx[k]][j] / 255 and y[k] = labels[idx[k]] for k < n.
 * idx may be NULL for the samples first..first+n in order.  y may be NULL. */
void tr_dataset_gather(float *x, uint8_t *y, const tr_dataset *d, const uint32_t *idx,
                       uint32_t first, uint32_t n);

#endif
