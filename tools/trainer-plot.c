/* trainer-plot - the pictures of a training run, as PNG files.
 *
 *   trainer-plot curves HISTORY.csv -o curves.png
 *   trainer-plot digits IMAGES [LABELS] -o samples.png [--count N] [--start N]
 *   trainer-plot predictions --model model.ckpt --data DIR -o predictions.png [--errors]
 *   trainer-plot confusion --model model.ckpt --data DIR -o confusion.png
 *
 * Exit status: 0 on success, 1 for a bad input file or an unwritable output,
 * 2 for a bad command line.  A PNG is written whole or not at all. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "canvas.h"
#include "cli.h"
#include "ckpt.h"
#include "dataset.h"
#include "history.h"
#include "idx.h"
#include "plots.h"
#include "train.h"

#define EXIT_USAGE 2

typedef struct {
    const char *out, *model, *data;
    long count, start;
    int errors_only, threads;
    int n_args;
    const char *args[2];
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: trainer-plot COMMAND [ARGS] -o OUT.png\n"
            "Draw the pictures of a training run as PNG files.\n"
            "\n"
            "  curves HISTORY.csv -o curves.png\n"
            "      accuracy and loss per epoch, training and validation\n"
            "  digits IMAGES.idx[.gz] [LABELS.idx[.gz]] -o samples.png [--count N] [--start N]\n"
            "      a grid of images with their labels (default: 20 from 0)\n"
            "  predictions --model model.ckpt --data DIR -o predictions.png [--errors]\n"
            "              [--count N] [--start N]\n"
            "      test images with predicted (true) labels, mistakes in red; --errors\n"
            "      shows only the mistakes (default: 40 from 0)\n"
            "  confusion --model model.ckpt --data DIR -o confusion.png\n"
            "      the test set's confusion matrix with per-class accuracy\n"
            "\n"
            "  --threads N   threads for the predictions (default: the cores available)\n"
            "\n"
            "DIR is what trainer --data reads: IDX files (the t10k-* test pair), CIFAR-10's\n"
            "batches (test_batch.bin), or a folder of class folders (DIR/test when DIR\n"
            "holds train/ and test/), resized to the model's input.\n"
            "\n"
            "Exit status: 0 on success, 1 for a bad input or output file, 2 for a bad\n"
            "command line.\n");
}

static int usage_error(const char *fmt, const char *what)
{
    fprintf(stderr, "trainer-plot: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, " (see --help)\n");
    return -1;
}

/* For a command given the wrong arguments: says so and gives the exit status. */
static int bad_usage(const char *what)
{
    usage_error("%s", what);
    return EXIT_USAGE;
}

/* Parses the options after the command word. */
static int parse(options *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'}, {"model", required_argument, NULL, 'm'},
        {"data", required_argument, NULL, 'd'},   {"count", required_argument, NULL, 'c'},
        {"start", required_argument, NULL, 's'},  {"errors", no_argument, NULL, 'e'},
        {"threads", required_argument, NULL, 't'}, {NULL, 0, NULL, 0},
    };
    opterr = 0;
    optind = 1;
    int c;
    long v;
    while ((c = getopt_long(argc, argv, "o:", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': o->out = optarg; break;
        case 'm': o->model = optarg; break;
        case 'd': o->data = optarg; break;
        case 'e': o->errors_only = 1; break;
        case 'c': if (cli_long("--count", optarg, 1, 100000, &o->count)) return -1; break;
        case 's': if (cli_long("--start", optarg, 0, 100000, &o->start)) return -1; break;
        case 't':
            if (cli_long("--threads", optarg, 1, 100000, &v))
                return -1;
            if (v > 256)
                return usage_error("--threads '%s': at most 256", optarg);
            o->threads = (int)v;
            break;
        default:
            return usage_error(optopt ? "option '%s' needs a value" : "unknown option '%s'",
                               argv[optind - 1]);
        }
    }
    for (; optind < argc; optind++) {
        if (o->n_args == 2)
            return usage_error("unexpected argument '%s'", argv[optind]);
        o->args[o->n_args++] = argv[optind];
    }
    if (!o->out)
        return usage_error("%s", "missing -o OUT.png");
    return 0;
}

static int fail(const tr_error *err)
{
    fprintf(stderr, "trainer-plot: %s\n", err->msg);
    return EXIT_FAILURE;
}

static int save(tr_canvas *c, const char *path)
{
    tr_error err;
    int status = tr_canvas_save_png(c, path, &err);
    tr_canvas_free(c);
    if (status)
        return fail(&err);
    printf("wrote %s\n", path);
    return EXIT_SUCCESS;
}

static int cmd_curves(const options *o)
{
    if (o->n_args != 1 || o->model || o->data || o->errors_only)
        return bad_usage("curves takes one HISTORY.csv and -o");
    tr_error err;
    tr_epoch_stats *rows;
    int n;
    if (tr_history_load(&rows, &n, NULL, o->args[0], &err))
        return fail(&err);
    tr_canvas c;
    int r = tr_plot_curves(&c, rows, n, NULL, &err);
    free(rows);
    return r ? fail(&err) : save(&c, o->out);
}

static int cmd_digits(const options *o)
{
    if (o->n_args < 1 || o->model || o->data || o->errors_only)
        return bad_usage("digits takes IMAGES [LABELS] and -o");
    tr_error err;
    tr_dataset d = {0};
    tr_idx_array images = {0};
    if (o->n_args == 2) {
        if (tr_dataset_load_files(&d, o->args[0], o->args[1], &err))
            return fail(&err);
    } else {
        if (tr_idx_load(&images, o->args[0], 0, &err))
            return fail(&err);
        if (images.ndim != 3) {
            tr_idx_free(&images);
            fprintf(stderr, "trainer-plot: %s: expected an image file (3 dimensions), "
                    "found %d\n", o->args[0], images.ndim);
            return EXIT_FAILURE;
        }
        d = (tr_dataset){.n = images.dims[0], .rows = images.dims[1], .cols = images.dims[2],
                      .dim = images.dims[1] * images.dims[2], .pixels = images.data};
    }
    tr_canvas c;
    int r = tr_plot_digits(&c, &d, (uint32_t)o->start, (uint32_t)(o->count ? o->count : 20),
                           o->n_args == 2, &err);
    tr_dataset_free(&d);
    tr_idx_free(&images);
    return r ? fail(&err) : save(&c, o->out);
}

/* Loads the model and the test set and predicts every test image; names
 * gets the model's class names. */
static int predict_test(const options *o, tr_dataset *test, uint8_t **pred, double *acc,
                        int *classes, char *names, tr_error *err)
{
    tr_model m;
    if (tr_ckpt_load(&m, o->model, err))
        return -1;
    /* A folder's pictures as the model saw its own: resized, its channels. */
    const tr_dataset_options pictures = {
        .rows = m.input.h, .cols = m.input.w,
        .channels = m.input.c == 3 ? 3 : 1};
    if (tr_dataset_load_test(test, o->data, m.class_names, &pictures, err)) {
        tr_model_free(&m);
        return -1;
    }
    int status = 0;
    double loss;
    char images[4096], labels[4096];
    if (test->format == DATASET_IDX) {
        snprintf(images, sizeof images, "%s/%s", o->data, DATASET_TEST_IMAGES);
        snprintf(labels, sizeof labels, "%s/%s", o->data, DATASET_TEST_LABELS);
    } else {
        snprintf(images, sizeof images, "%s (test set)", o->data);
        snprintf(labels, sizeof labels, "%s", images);
    }
    *classes = tr_model_classes(&m);
    memcpy(names, m.class_names, CLASS_NAMES_MAX);
    if (test->n == 0) {
        status = tr_error_set(err, "%s: no test images (IDX files need t10k-*)", o->data);
    } else if (tr_model_check_data(&m, test, images, labels, err)) {
        status = -1;
    } else if (!(*pred = malloc(test->n))) {
        status = tr_error_set(err, "out of memory");
    } else if (tr_evaluate(&m, test, o->threads, &loss, acc, *pred, err)) {
        free(*pred);
        *pred = NULL;
        status = -1;
    }
    tr_model_free(&m);
    if (status)
        tr_dataset_free(test);
    return status;
}

/* "37 of 10000 test images wrong; shown: #8 #247 ...", the line that goes
 * with --errors' picture: the images tr_plot_predictions drew. */
static void list_mistakes(const tr_dataset *test, const uint8_t *pred, uint32_t first,
                          uint32_t count)
{
    uint32_t *pick = malloc(sizeof *pick * count), wrong;
    if (!pick)
        return;
    const uint32_t n = tr_plot_pick(test, pred, first, count, 1, pick, &wrong);
    printf("%u of %u test images wrong%s; shown:", wrong, test->n - first,
           first ? " from the start index on" : "");
    for (uint32_t k = 0; k < n; k++)
        printf(" #%u", pick[k]);
    printf("\n");
    free(pick);
}

static int cmd_model(const options *o, int confusion)
{
    if (o->n_args || !o->model || !o->data || (confusion && (o->errors_only || o->count)))
        return bad_usage(confusion ? "confusion takes --model, --data and -o"
                                   : "predictions takes --model, --data and -o");
    tr_error err;
    tr_dataset test;
    uint8_t *pred = NULL;
    double acc;
    int classes;
    char names[CLASS_NAMES_MAX];
    if (predict_test(o, &test, &pred, &acc, &classes, names, &err))
        return fail(&err);
    tr_canvas c;
    int r;
    if (confusion) {
        uint32_t *counts = malloc(sizeof(uint32_t) * (size_t)classes * (size_t)classes);
        if (!counts) {
            free(pred);
            tr_dataset_free(&test);
            return fail(&(tr_error){"out of memory"});
        }
        tr_confusion_count(counts, classes, test.labels, pred, test.n);
        r = tr_plot_confusion(&c, counts, classes, names, &err);
        free(counts);
    } else {
        r = tr_plot_predictions(&c, &test, pred, (uint32_t)o->start,
                                (uint32_t)(o->count ? o->count : 40), o->errors_only, &err);
    }
    const int status = r ? fail(&err) : save(&c, o->out);
    if (status == EXIT_SUCCESS && o->errors_only)
        list_mistakes(&test, pred, (uint32_t)o->start, (uint32_t)(o->count ? o->count : 40));
    free(pred);
    tr_dataset_free(&test);
    return status;
}

int main(int argc, char **argv)
{
    /* Past the file-size limit a write fails with EFBIG, which is reported. */
    signal(SIGXFSZ, SIG_IGN);
    cli_set_program("trainer-plot");
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return EXIT_SUCCESS;
    }
    options o = {0};
    o.threads = tr_train_cores();
    const char *cmd = argv[1];
    int known = !strcmp(cmd, "curves") || !strcmp(cmd, "digits") ||
                !strcmp(cmd, "predictions") || !strcmp(cmd, "confusion");
    if (!known) {
        usage_error("unknown command '%s'", cmd);
        return EXIT_USAGE;
    }
    if (parse(&o, argc - 1, argv + 1))
        return EXIT_USAGE;
    const int status = !strcmp(cmd, "curves")   ? cmd_curves(&o)
                       : !strcmp(cmd, "digits") ? cmd_digits(&o)
                                                : cmd_model(&o, !strcmp(cmd, "confusion"));
    /* Said once, after the picture: a refused input keeps its one line. */
    const char *why = status == EXIT_SUCCESS ? tr_canvas_font_fallback() : NULL;
    if (why)
        fprintf(stderr, "trainer-plot: text in the built-in bitmap font: %s\n", why);
    return status;
}
