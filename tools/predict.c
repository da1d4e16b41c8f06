/* trainer predict - the trained model on a user's own pictures.
 *
 * Each PNG file is prepared the way MNIST's digits were made (image.h)
 * unless --raw; an IDX image file's items are taken as they are.  Prints
 * each picture's class and its three likeliest classes, or a JSON object
 * per picture.  A picture that cannot be read is named with what is wrong,
 * the others are still classified, and the status is then 1. */
#include "commands.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "fileio.h"
#include "idx.h"
#include "image.h"
#include "model.h"

#define EXIT_USAGE 2

typedef struct {
    const char *model_path;
    int raw, json;
} predict_options;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: trainer predict [--model FILE] [--raw] [--json] IMAGE...\n"
            "Classify pictures with a trained model.\n\n"
            "  --model FILE   the model (default: model.ckpt)\n"
            "  --raw          take PNG pictures as they are (the model's size, white\n"
            "                 ink on black), without MNIST's preparation\n"
            "  --json         one JSON object per picture instead of text\n"
            "  --help         show this help\n\n"
            "IMAGE is a PNG file (grey, RGB or palette, any depth, with or without\n"
            "alpha; up to %d pixels a side and %zu in all) or an IDX image file\n"
            "(plain or gzip), whose items are taken as they are.  A PNG picture is prepared as MNIST's\n"
            "digits were: grey levels, inverted on a light page, cropped to the ink,\n"
            "scaled to fit 20x20 (of a 28x28 field) keeping its aspect ratio, and\n"
            "centred by its centre of mass.\n\n"
            "Exit status: 0 when every picture was classified, 1 when one could not\n"
            "be (each is named), 2 for a bad command line.\n",
            IMAGE_MAX_SIDE, IMAGE_MAX_PIXELS);
}

/* Returns 0 to go on, 1 after --help, -1 on a bad command line. */
static int parse(predict_options *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'}, {"raw", no_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (predict_options){"model.ckpt", 0, 0};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': o->model_path = optarg; break;
        case 'r': o->raw = 1; break;
        case 'j': o->json = 1; break;
        case 'h': usage(stdout); return 1;
        default:
            fprintf(stderr, "trainer predict: %s '%s' (see trainer predict --help)\n",
                    c == ':' ? "a value is missing after" : "unknown option",
                    argv[optind - 1]);
            return -1;
        }
    }
    if (optind == argc) {
        fprintf(stderr, "trainer predict: no pictures given (see trainer predict --help)\n");
        return -1;
    }
    return 0;
}

/* Prints one picture's verdict; item is its number in an IDX file, or -1. */
static void report(const predict_options *o, const char *file, long item, const float *p,
                   int classes)
{
    int top[3] = {-1, -1, -1};
    const int shown = classes < 3 ? classes : 3;
    for (int t = 0; t < shown; t++)
        for (int c = 0; c < classes; c++) {
            const int taken = (t > 0 && top[0] == c) || (t > 1 && top[1] == c);
            if (!taken && (top[t] < 0 || p[c] > p[top[t]]))
                top[t] = c;
        }
    if (o->json) {
        printf("{\"file\": \"");
        for (const char *s = file; *s; s++) {
            if (*s == '"' || *s == '\\')
                printf("\\%c", *s);
            else if ((unsigned char)*s < 0x20)
                printf("\\u%04x", (unsigned char)*s);
            else
                putchar(*s);
        }
        printf("\"");
        if (item >= 0)
            printf(", \"item\": %ld", item);
        printf(", \"class\": %d, \"top\": [", top[0]);
        for (int t = 0; t < shown; t++)
            printf("%s{\"class\": %d, \"probability\": %.6g}", t ? ", " : "", top[t],
                   (double)p[top[t]]);
        printf("], \"probabilities\": [");
        for (int c = 0; c < classes; c++)
            printf("%s%.6g", c ? ", " : "", (double)p[c]);
        printf("]}\n");
        return;
    }
    if (item >= 0)
        printf("%s[%ld]: %d  (", file, item, top[0]);
    else
        printf("%s: %d  (", file, top[0]);
    for (int t = 0; t < shown; t++)
        printf("%s%d %.2f%%", t ? ", " : "", top[t], 100.0 * p[top[t]]);
    printf(")\n");
}

/* The pixels the model sees of a PNG picture, as bytes ([h][w][c]). */
static int png_pixels(const predict_options *o, const model *m, const uint8_t *data,
                      size_t len, const char *name, uint8_t *px, tr_error *err)
{
    image im;
    if (image_decode_png(&im, data, len, name, err))
        return -1;
    const tensor_shape in = m->input;
    int rc = 0;
    if (o->raw) {
        if (im.w != in.w || im.h != in.h) {
            rc = error_set(err, "%s: %dx%d pixels, the model takes %dx%d (without --raw "
                           "pictures of any size are prepared)", name, im.w, im.h, in.w, in.h);
        } else {
            for (long j = 0; j < (long)in.w * in.h; j++) {
                const uint8_t *p = im.rgba + 4 * j;
                const uint8_t grey = (uint8_t)((299 * p[0] + 587 * p[1] + 114 * p[2] + 500) / 1000);
                for (int ch = 0; ch < in.c; ch++)
                    px[j * in.c + ch] = in.c == 3 ? p[ch] : grey;
            }
        }
        image_free(&im);
        return rc;
    }
    float *ink = malloc(sizeof(float) * (size_t)im.w * (size_t)im.h);
    uint8_t *field = malloc((size_t)in.w * (size_t)in.h);
    tr_error why;
    if (!ink || !field)
        rc = error_set(err, "%s: out of memory", name);
    else if (image_ink(&im, ink, &why) || image_prepare(field, in.h, in.w, ink, im.h, im.w, &why))
        rc = error_set(err, "%s: %s", name, why.msg);
    else
        for (long j = 0; j < (long)in.w * in.h; j++)
            for (int ch = 0; ch < in.c; ch++)
                px[j * in.c + ch] = field[j];
    free(ink), free(field);
    image_free(&im);
    return rc;
}

/* Classifies n pictures of bytes ([n][input size]) and reports them. */
static void classify(const predict_options *o, const model *m, model_work *w,
                     const uint8_t *px, long n, const char *file, long first_item, float *probs)
{
    const long size = tensor_size(m->input);
    const int k = model_classes(m);
    for (long s0 = 0; s0 < n; s0 += w->max_n) {
        const int b = n - s0 < w->max_n ? (int)(n - s0) : w->max_n;
        for (int s = 0; s < b; s++)
            w->rows[s] = px + (s0 + s) * size;
        const layer_input in = model_input(w, w->rows, 255.0f);
        model_probabilities(m, w, &in, b, probs);
        for (int s = 0; s < b; s++)
            report(o, file, first_item < 0 ? -1 : first_item + s0 + s, probs + (long)s * k, k);
    }
}

/* One file: 0 when all its pictures were classified. */
static int predict_file(const predict_options *o, const model *m, model_work *w,
                        const char *path, float *probs, tr_error *err)
{
    uint8_t *data = NULL;
    size_t len = 0;
    if (file_read_all(path, IMAGE_MAX_FILE_BYTES, &data, &len, err))
        return -1;
    int rc = 0;
    const long size = tensor_size(m->input);
    if (len == 0) {
        rc = error_set(err, "%s: empty file", path);
    } else if (image_is_png(data, len)) {
        uint8_t *px = malloc((size_t)size);
        rc = px ? png_pixels(o, m, data, len, path, px, err) : error_set(err, "out of memory");
        if (rc == 0)
            classify(o, m, w, px, 1, path, -1, probs);
        free(px);
    } else if (len >= 4 && ((data[0] == 0 && data[1] == 0 && data[2] == 0x08) ||
                            (data[0] == 0x1f && data[1] == 0x8b))) {
        idx_array a;
        if (idx_load(&a, path, 0, err)) {
            rc = -1;
        } else {
            const tensor_shape in = m->input;
            const uint32_t c = a.ndim == 4 ? a.dims[3] : 1;
            if (a.ndim < 3 || a.dims[1] != (uint32_t)in.h || a.dims[2] != (uint32_t)in.w ||
                c != (uint32_t)in.c)
                rc = error_set(err, "%s: not IDX images of %dx%dx%d, which the model takes",
                               path, in.h, in.w, in.c);
            else if (a.dims[0] == 0)
                rc = error_set(err, "%s: no images in the file", path);
            else
                classify(o, m, w, a.data, a.dims[0], path, 0, probs);
            idx_free(&a);
        }
    } else {
        rc = error_set(err, "%s: not a PNG or IDX image file", path);
    }
    free(data);
    return rc;
}

int predict_main(int argc, char **argv)
{
    predict_options o;
    const int parsed = parse(&o, argc, argv);
    if (parsed)
        return parsed > 0 ? EXIT_SUCCESS : EXIT_USAGE;
    tr_error err;
    model m;
    if (ckpt_load(&m, o.model_path, &err)) {
        fprintf(stderr, "trainer predict: %s\n", err.msg);
        return EXIT_FAILURE;
    }
    enum { BLOCK = 64 };
    model_work w;
    float *probs = malloc(sizeof(float) * BLOCK * (size_t)model_classes(&m));
    if (!probs || model_work_init(&w, &m, BLOCK, &err)) {
        fprintf(stderr, "trainer predict: %s\n", probs ? err.msg : "out of memory");
        free(probs);
        model_free(&m);
        return EXIT_FAILURE;
    }
    int failed = 0;
    for (int i = optind; i < argc; i++) {
        if (predict_file(&o, &m, &w, argv[i], probs, &err)) {
            fflush(stdout);
            fprintf(stderr, "trainer predict: %s\n", err.msg);
            failed = 1;
        }
    }
    model_work_free(&w);
    free(probs);
    model_free(&m);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
