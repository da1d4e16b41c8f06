/* trainer dataset - describes a data set the trainer can read (its classes
 * and their counts, the image shape, the pixels' mean and deviation), draws
 * samples of each class, and converts it to IDX files. */
#include "commands.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canvas.h"
#include "cli.h"
#include "dataset.h"
#include "fileio.h"
#include "idx.h"
#include "plots.h"

#define EXIT_USAGE 2
/* Samples drawn of each class by --show: one row of the grid. */
#define SHOW_PER_CLASS 10

typedef struct {
    tr_dataset_source source;
    const char *show;   /* --show OUT.png */
    const char *to_idx; /* --to-idx OUT */
} dataset_command;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: trainer dataset [OPTION]... DIR\n"
            "Describe a data set as the trainer reads it with --data DIR: its classes\n"
            "and their counts, the image shape, the pixels' mean and standard deviation.\n\n"
            "  --test-data DIR    the test set, when DIR does not hold it\n"
            "  --image-size HxW   resize a folder's pictures (as trainer --image-size)\n"
            "  --color MODE       grayscale or rgb (as trainer --color)\n"
            "  --class-names FILE names for an IDX set's classes, one per line\n"
            "  --seed N           the order of a folder's files (as trainer --seed;\n"
            "                     default: 0)\n"
            "  --show OUT.png     draw %d training images of each class\n"
            "  --to-idx OUT       write the set as IDX files into the folder OUT\n"
            "                     (train-*, and t10k-* for a test set) with\n"
            "                     class-names.txt: trainer --data OUT then trains bit\n"
            "                     for bit as --data DIR with the same --seed\n"
            "  --help             show this help\n\n"
            "DIR holds MNIST's IDX files, CIFAR-10's binary batches, or PNG and JPEG\n"
            "pictures in one subfolder per class (see trainer --help, --data).\n",
            SHOW_PER_CLASS);
}

static int parse(dataset_command *o, int argc, char **argv)
{
    enum { OPT_TEST = 256, OPT_SIZE, OPT_COLOR, OPT_NAMES, OPT_SEED, OPT_SHOW, OPT_TO_IDX };
    static const struct option longopts[] = {
        {"test-data", required_argument, NULL, OPT_TEST},
        {"image-size", required_argument, NULL, OPT_SIZE},
        {"color", required_argument, NULL, OPT_COLOR},
        {"class-names", required_argument, NULL, OPT_NAMES},
        {"seed", required_argument, NULL, OPT_SEED},
        {"show", required_argument, NULL, OPT_SHOW},
        {"to-idx", required_argument, NULL, OPT_TO_IDX},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof *o);
    cli_set_program("trainer dataset");
    optind = 1;
    opterr = 0;
    int c;
    long v;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_TEST: o->source.test_dir = optarg; break;
        case OPT_SIZE:
            if (cli_image_size(optarg, &o->source.pictures.rows, &o->source.pictures.cols))
                return -1;
            break;
        case OPT_COLOR:
            if (cli_color(optarg, &o->source.pictures.channels))
                return -1;
            break;
        case OPT_NAMES: o->source.class_names_file = optarg; break;
        case OPT_SEED:
            if (cli_long("--seed", optarg, 0, 0x7fffffffL, &v))
                return -1;
            o->source.pictures.seed = (uint64_t)v;
            break;
        case OPT_SHOW: o->show = optarg; break;
        case OPT_TO_IDX: o->to_idx = optarg; break;
        case 'h': usage(stdout); return 1;
        default:
            fprintf(stderr, "trainer dataset: %s '%s' (see trainer dataset --help)\n",
                    c == ':' ? "a value is missing after" : "unknown option",
                    argv[optind - 1]);
            return -1;
        }
    }
    if (argc - optind != 1) {
        fprintf(stderr, "trainer dataset: %s (see trainer dataset --help)\n",
                optind == argc ? "no data directory given" : "one data directory at a time");
        return -1;
    }
    o->source.dir = argv[optind];
    return 0;
}

static const char *format_name(const tr_dataset *d)
{
    return d->format == DATASET_IDX ? "IDX files" : d->format == DATASET_CIFAR10
                                                        ? "CIFAR-10 binary batches"
                                                        : "a folder of class folders";
}

/* Per channel, the mean and the standard deviation (population) of the
 * pixels on [0, 1], as a normalization layer would be given them. */
static void pixel_moments(const tr_dataset *d, double *mean, double *sd)
{
    const uint32_t c = d->channels;
    for (uint32_t ch = 0; ch < c && ch < 4; ch++) {
        double s = 0, s2 = 0;
        const size_t n = (size_t)d->n * d->dim / c;
        for (size_t j = 0; j < n; j++) {
            const double x = d->pixels[j * c + ch] / 255.0;
            s += x;
            s2 += x * x;
        }
        mean[ch] = n ? s / (double)n : 0;
        const double var = n ? s2 / (double)n - mean[ch] * mean[ch] : 0;
        sd[ch] = var > 0 ? sqrt(var) : 0;
    }
}

static void describe(const tr_dataset *train, const tr_dataset *test, const char *dir)
{
    printf("%s: %s\n", dir, format_name(train));
    printf("Images: %ux%u, %u channel%s%s\n", train->rows, train->cols, train->channels,
           train->channels == 1 ? "" : "s", train->channels == 1 ? " (grey)"
                                            : train->channels == 3 ? " (RGB)" : "");
    printf("Training: %u images; test: %u images", train->n, test->n);
    if (train->ignored + test->ignored)
        printf("; %u other file%s left out", train->ignored + test->ignored,
               train->ignored + test->ignored == 1 ? "" : "s");
    printf("\n");
    uint32_t *counts = calloc(2 * (size_t)train->classes + 2, sizeof *counts);
    if (counts) {
        for (uint32_t i = 0; i < train->n; i++)
            counts[2 * train->labels[i]]++;
        for (uint32_t i = 0; i < test->n; i++)
            if (test->labels[i] < train->classes)
                counts[2 * test->labels[i] + 1]++;
        int wide = 5;
        char name[CLASS_NAME_MAX];
        for (uint32_t k = 0; k < train->classes; k++) {
            const int len = (int)strlen(tr_class_name(train->class_names, (int)k, name));
            wide = len > wide ? len : wide;
        }
        printf("%5s  %-*s %9s %9s\n", "label", wide, "class", "training", "test");
        for (uint32_t k = 0; k < train->classes; k++)
            printf("%5u  %-*s %9u %9u\n", k, wide, tr_class_name(train->class_names, (int)k, name),
                   counts[2 * k], counts[2 * k + 1]);
        free(counts);
    }
    double mean[4], sd[4];
    pixel_moments(train, mean, sd);
    printf("Pixels of the training images, on [0, 1]: mean");
    for (uint32_t ch = 0; ch < train->channels && ch < 4; ch++)
        printf(" %.4f", mean[ch]);
    printf(", standard deviation");
    for (uint32_t ch = 0; ch < train->channels && ch < 4; ch++)
        printf(" %.4f", sd[ch]);
    printf("\n");
}

/* The first SHOW_PER_CLASS training images of each class, a row each. */
static int draw_classes(const tr_dataset *d, const char *path, tr_error *err)
{
    tr_canvas c;
    if (tr_plot_classes(&c, d, SHOW_PER_CLASS, err))
        return -1;
    const int rc = tr_canvas_save_png(&c, path, err);
    tr_canvas_free(&c);
    return rc;
}

/* Adds one set's two IDX files to the batch. */
static int add_idx_pair(tr_file_batch *b, const char *dir, const tr_dataset *d, int test,
                        tr_error *err)
{
    char images[4096], labels[4096];
    snprintf(images, sizeof images, "%s/%s", dir,
             test ? DATASET_TEST_IMAGES : DATASET_TRAIN_IMAGES);
    snprintf(labels, sizeof labels, "%s/%s", dir,
             test ? DATASET_TEST_LABELS : DATASET_TRAIN_LABELS);
    const uint32_t dims[4] = {d->n, d->rows, d->cols, d->channels};
    uint8_t *data;
    size_t len;
    if (tr_idx_encode(d->channels > 1 ? 4 : 3, dims, d->pixels, &data, &len, err))
        return -1;
    int rc = tr_file_batch_add(b, images, data, len, err);
    free(data);
    if (rc == 0 && tr_idx_encode(1, dims, d->labels, &data, &len, err) == 0) {
        rc = tr_file_batch_add(b, labels, data, len, err);
        free(data);
    } else if (rc == 0) {
        rc = -1;
    }
    return rc;
}

/* Writes the sets as IDX files, with class-names.txt, all or none. */
static int write_idx(const tr_dataset *train, const tr_dataset *test, const char *dir,
                     tr_error *err)
{
    if (tr_file_make_dirs(dir, err))
        return -1;
    tr_file_batch b = {0};
    if (add_idx_pair(&b, dir, train, 0, err) ||
        (test->n && add_idx_pair(&b, dir, test, 1, err)))
        return -1;
    if (train->class_names[0]) {
        char path[4096], text[CLASS_NAMES_MAX + 1];
        snprintf(path, sizeof path, "%s/%s", dir, DATASET_CLASS_NAMES);
        const int n = snprintf(text, sizeof text, "%s\n", train->class_names);
        if (tr_file_batch_add(&b, path, text, (size_t)n, err))
            return -1;
    }
    return tr_file_batch_commit(&b, err);
}

int dataset_main(int argc, char **argv)
{
    dataset_command o;
    const int parsed = parse(&o, argc, argv);
    if (parsed)
        return parsed > 0 ? EXIT_SUCCESS : EXIT_USAGE;
    tr_error err;
    tr_dataset train, test;
    if (tr_dataset_load_sets(&train, &test, &o.source, &err)) {
        fprintf(stderr, "trainer dataset: %s\n", err.msg);
        return EXIT_FAILURE;
    }
    describe(&train, &test, o.source.dir);
    int rc = 0;
    if (o.show && draw_classes(&train, o.show, &err) == 0)
        printf("Samples of each class: %s\n", o.show);
    else if (o.show)
        rc = -1;
    if (rc == 0 && o.to_idx) {
        if (write_idx(&train, &test, o.to_idx, &err) == 0)
            printf("IDX files: %s (train on them with --data %s)\n", o.to_idx, o.to_idx);
        else
            rc = -1;
    }
    if (rc)
        fprintf(stderr, "trainer dataset: %s\n", err.msg);
    tr_dataset_free(&train);
    tr_dataset_free(&test);
    return rc ? EXIT_FAILURE : EXIT_SUCCESS;
}
