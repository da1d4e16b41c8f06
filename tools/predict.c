/* trainer predict - the trained model on a user's own pictures.
 *
 * Each PNG or JPEG file is prepared the way MNIST's digits were made
 * (image.h) for a model of 28x28 grey data, or resized to the model's input
 * for a model of a folder's pictures (model.h's fit), unless --raw; an IDX
 * image file's items are taken as they are.  Prints
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
#include "plots.h"

#define EXIT_USAGE 2

/* The pictures --show draws, the first SHOW_MAX of them. */
enum { SHOW_MAX = PLOT_VERDICTS_MAX };

typedef struct {
    tr_plot_verdict v[SHOW_MAX];
    char name[SHOW_MAX][96];
    int n;    /* drawn */
    long all; /* classified */
} shown;

/* The pictures as the model saw them, for --save-input. */
typedef struct {
    uint8_t *px; /* [n][input size] */
    long n, cap;
} seen_pictures;

typedef struct {
    const char *model_path;
    const char *show;       /* --show OUT.png, or NULL */
    const char *save_input; /* --save-input OUT, or NULL */
    int raw, json;
    int prepare;            /* --prepare: a tr_model_fit, or -1 for the model's own */
    shown *pictures;        /* with show */
    seen_pictures *seen;    /* with save_input */
} predict_options;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: trainer predict [--model FILE] [--raw] [--json] [--show OUT]\n"
            "                       [--save-input OUT] IMAGE...\n"
            "Classify pictures with a trained model.\n\n"
            "  --model FILE   the model (default: model.ckpt)\n"
            "  --raw          take pictures as they are (the model's size; for digits\n"
            "                 white ink on black), without preparing them\n"
            "  --json         one JSON object per picture instead of text\n"
            "  --prepare HOW  digit (MNIST's preparation) or resize (the whole picture\n"
            "                 to the model's input); default: as the model was trained,\n"
            "                 digit for 28x28 grey images, resize for others\n"
            "  --show OUT     draw each picture beside what the model saw and its\n"
            "                 likeliest classes into the PNG file OUT (the first %d)\n"
            "  --save-input OUT\n"
            "                 write the classified pictures as the model saw them into\n"
            "                 the IDX image file OUT (which predict reads back as is)\n"
            "  --help         show this help\n\n"
            "IMAGE is a PNG file (grey, RGB or palette, any depth, with or without\n"
            "alpha), a JPEG file (grey or colour, turned upright as its EXIF\n"
            "orientation says; both up to %d pixels a side and %zu in all) or an IDX\n"
            "image file (plain or gzip), whose items are taken as they are.  For a\n"
            "model of 28x28 grey images (MNIST's), a picture is prepared as MNIST's\n"
            "digits were: grey levels, inverted on a light page, cropped to the ink,\n"
            "scaled to fit 20x20 (of a 28x28 field) keeping its aspect ratio, and\n"
            "centred by its centre of mass.  For a model of other pictures, it is\n"
            "resized to the model's input (bilinear), as its training data was.\n\n"
            "Exit status: 0 when every picture was classified, 1 when one could not\n"
            "be (each is named), 2 for a bad command line.\n",
            SHOW_MAX, IMAGE_MAX_SIDE, IMAGE_MAX_PIXELS);
}

/* Returns 0 to go on, 1 after --help, -1 on a bad command line. */
static int parse(predict_options *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'}, {"raw", no_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},        {"help", no_argument, NULL, 'h'},
        {"show", required_argument, NULL, 's'}, {"save-input", required_argument, NULL, 'i'},
        {"prepare", required_argument, NULL, 'p'}, {NULL, 0, NULL, 0},
    };
    *o = (predict_options){"model.ckpt", NULL, NULL, 0, 0, -1, NULL, NULL};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': o->model_path = optarg; break;
        case 'r': o->raw = 1; break;
        case 'j': o->json = 1; break;
        case 's': o->show = optarg; break;
        case 'i': o->save_input = optarg; break;
        case 'p':
            if (!strcmp(optarg, "digit"))
                o->prepare = MODEL_FIT_DIGIT;
            else if (!strcmp(optarg, "resize"))
                o->prepare = MODEL_FIT_RESIZE;
            else {
                fprintf(stderr, "trainer predict: --prepare '%s': expected digit or resize "
                        "(see trainer predict --help)\n", optarg);
                return -1;
            }
            break;
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

static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", (unsigned char)*s);
        else
            putchar(*s);
    }
    putchar('"');
}

/* A class in JSON: "class": its name and "index": its number, or, for a
 * model without names, "class": its number (as before names existed). */
static void print_json_class(const tr_model *m, int k)
{
    char name[CLASS_NAME_MAX];
    printf("\"class\": ");
    if (m->class_names[0]) {
        print_json_string(tr_class_name(m->class_names, k, name));
        printf(", \"index\": %d", k);
    } else {
        printf("%d", k);
    }
}

/* Prints one picture's verdict; item is its number in an IDX file, or -1. */
static void report(const predict_options *o, const tr_model *m, const char *file, long item,
                   const float *p, int classes)
{
    char name[CLASS_NAME_MAX];
    int top[3];
    const int shown = classes < 3 ? classes : 3;
    tr_model_top_classes(p, classes, top, shown);
    if (o->json) {
        printf("{\"file\": ");
        print_json_string(file);
        if (item >= 0)
            printf(", \"item\": %ld", item);
        printf(", ");
        print_json_class(m, top[0]);
        printf(", \"top\": [");
        for (int t = 0; t < shown; t++) {
            printf("%s{", t ? ", " : "");
            print_json_class(m, top[t]);
            printf(", \"probability\": %.6g}", (double)p[top[t]]);
        }
        printf("], \"probabilities\": [");
        for (int c = 0; c < classes; c++)
            printf("%s%.6g", c ? ", " : "", (double)p[c]);
        printf("]}\n");
        return;
    }
    if (item >= 0)
        printf("%s[%ld]: %s  (", file, item, tr_class_name(m->class_names, top[0], name));
    else
        printf("%s: %s  (", file, tr_class_name(m->class_names, top[0], name));
    for (int t = 0; t < shown; t++)
        printf("%s%s %.2f%%", t ? ", " : "", tr_class_name(m->class_names, top[t], name),
               100.0 * p[top[t]]);
    printf(")\n");
}

/* The picture shrunk to fit PLOT_THUMB (nearest pixel), composited on
 * white: a new [*th][*tw][3] buffer, or NULL when out of memory. */
static uint8_t *thumbnail(const tr_image *im, int *tw, int *th)
{
    const int side = im->w > im->h ? im->w : im->h;
    const int step = side > PLOT_THUMB ? (side + PLOT_THUMB - 1) / PLOT_THUMB : 1;
    *tw = (im->w + step - 1) / step, *th = (im->h + step - 1) / step;
    uint8_t *t = malloc((size_t)*tw * (size_t)*th * 3);
    if (!t)
        return NULL;
    for (int y = 0; y < *th; y++)
        for (int x = 0; x < *tw; x++) {
            const uint8_t *p = im->rgba + ((long)y * step * im->w + (long)x * step) * 4;
            for (int ch = 0; ch < 3; ch++)
                t[((long)y * *tw + x) * 3 + ch] =
                    (uint8_t)((p[ch] * p[3] + 255 * (255 - p[3]) + 127) / 255);
        }
    return t;
}

/* The pixels the model sees of a PNG or JPEG picture, as bytes ([h][w][c]),
 * and, with thumb not NULL, its thumbnail for --show (*thumb NULL if none). */
static int picture_pixels(const predict_options *o, const tr_model *m, const uint8_t *data,
                      size_t len, const char *name, uint8_t *px, uint8_t **thumb, int *tw,
                      int *th, tr_error *err)
{
    tr_image im;
    if (tr_image_decode(&im, data, len, name, err))
        return -1;
    if (thumb)
        *thumb = thumbnail(&im, tw, th);
    const tr_tensor_shape in = m->input;
    int rc = 0;
    if (o->raw) {
        if (im.w != in.w || im.h != in.h) {
            rc = tr_error_set(err, "%s: %dx%d pixels, the model takes %dx%d (without --raw "
                              "pictures of any size are prepared)", name, im.w, im.h, in.w, in.h);
        } else {
            for (long j = 0; j < (long)in.w * in.h; j++) {
                const uint8_t *p = im.rgba + 4 * j;
                const uint8_t grey = (uint8_t)((tr_image_grey(p) + 500) / 1000);
                for (int ch = 0; ch < in.c; ch++)
                    px[j * in.c + ch] = in.c == 3 ? p[ch] : grey;
            }
        }
        tr_image_free(&im);
        return rc;
    }
    /* A model of a folder's pictures sees them resized, as it trained. */
    if ((o->prepare >= 0 ? (tr_model_fit)o->prepare : m->fit) == MODEL_FIT_RESIZE) {
        if (in.c != 1 && in.c != 3)
            rc = tr_error_set(err, "%s: the model takes %d channels; pictures give 1 or 3", name,
                              in.c);
        else if (tr_image_bytes(px, &im, in.h, in.w, in.c))
            rc = tr_error_set(err, "%s: out of memory", name);
        tr_image_free(&im);
        return rc;
    }
    float *ink = malloc(sizeof(float) * (size_t)im.w * (size_t)im.h);
    uint8_t *field = malloc((size_t)in.w * (size_t)in.h);
    tr_error why;
    if (!ink || !field)
        rc = tr_error_set(err, "%s: out of memory", name);
    else if (tr_image_ink(&im, ink, &why) ||
             tr_image_prepare(field, in.h, in.w, ink, im.h, im.w, &why))
        rc = tr_error_set(err, "%s: %s", name, why.msg);
    else
        for (long j = 0; j < (long)in.w * in.h; j++)
            for (int ch = 0; ch < in.c; ch++)
                px[j * in.c + ch] = field[j];
    free(ink), free(field);
    tr_image_free(&im);
    return rc;
}

/* Keeps picture px ([h][w][c] bytes, as the model saw it) for --show, with
 * its thumbnail (thumb, or NULL: drawn from px) and probabilities. */
static void keep_shown(shown *sh, const tr_model *m, const uint8_t *px, const uint8_t *thumb,
                       int tw, int th, const char *file, long item, const float *p)
{
    sh->all++;
    if (sh->n == SHOW_MAX)
        return;
    const tr_tensor_shape in = m->input;
    const long pixels = (long)in.h * in.w;
    const int k = tr_model_classes(m);
    uint8_t *seen = malloc((size_t)pixels), *copy = malloc((size_t)(thumb ? tw * th : pixels) * 3);
    float *probs = malloc(sizeof(float) * (size_t)k);
    if (!seen || !copy || !probs) {
        free(seen), free(copy), free(probs);
        return;
    }
    for (long j = 0; j < pixels; j++) {
        unsigned sum = 0;
        for (int ch = 0; ch < in.c; ch++)
            sum += px[j * in.c + ch];
        seen[j] = (uint8_t)(sum / (unsigned)in.c);
    }
    if (thumb) {
        memcpy(copy, thumb, (size_t)tw * th * 3);
    } else {
        tw = in.w, th = in.h;
        for (long j = 0; j < pixels; j++)
            copy[3 * j] = copy[3 * j + 1] = copy[3 * j + 2] = (uint8_t)(255 - seen[j]);
    }
    memcpy(probs, p, sizeof(float) * (size_t)k);
    char *name = sh->name[sh->n];
    if (item >= 0)
        snprintf(name, sizeof sh->name[0], "%s[%ld]", file, item);
    else
        snprintf(name, sizeof sh->name[0], "%s", file);
    sh->v[sh->n++] = (tr_plot_verdict){name, copy, tw, th, seen, in.w, in.h, probs};
}

/* Appends n pictures of size bytes each; 0, or -1 when out of memory. */
static int keep_seen(seen_pictures *sp, const uint8_t *px, long n, long size)
{
    if (sp->n + n > sp->cap) {
        const long cap = sp->n + n > 2 * sp->cap ? sp->n + n : 2 * sp->cap;
        uint8_t *grown = realloc(sp->px, (size_t)cap * (size_t)size);
        if (!grown)
            return -1;
        sp->px = grown, sp->cap = cap;
    }
    memcpy(sp->px + sp->n * size, px, (size_t)(n * size));
    sp->n += n;
    return 0;
}

/* Writes the kept pictures into o->save_input as an IDX image file. */
static int save_seen(const predict_options *o, const tr_model *m, tr_error *err)
{
    const seen_pictures *sp = o->seen;
    if (sp->n == 0)
        return tr_error_set(err, "%s: no picture was classified, nothing to write", o->save_input);
    const tr_tensor_shape in = m->input;
    const uint32_t dims[4] = {(uint32_t)sp->n, (uint32_t)in.h, (uint32_t)in.w, (uint32_t)in.c};
    uint8_t *data;
    size_t len;
    if (tr_idx_encode(in.c == 1 ? 3 : 4, dims, sp->px, &data, &len, err))
        return -1;
    const int rc = tr_file_write_atomic(o->save_input, data, len, err);
    free(data);
    return rc;
}

/* Classifies n pictures of bytes ([n][input size]) and reports them; thumb
 * (or NULL) is the one picture's thumbnail for --show. */
static int classify(const predict_options *o, const tr_model *m, tr_model_work *w,
                    const uint8_t *px, long n, const char *file, long first_item, float *probs,
                    const uint8_t *thumb, int tw, int th, tr_error *err)
{
    const long size = tr_tensor_size(m->input);
    const int k = tr_model_classes(m);
    if (o->seen && keep_seen(o->seen, px, n, size))
        return tr_error_set(err, "%s: out of memory for --save-input", file);
    for (long s0 = 0; s0 < n; s0 += w->max_n) {
        const int b = n - s0 < w->max_n ? (int)(n - s0) : w->max_n;
        for (int s = 0; s < b; s++)
            w->rows[s] = px + (s0 + s) * size;
        const tr_layer_input in = tr_model_input(w, w->rows, 255.0f);
        tr_model_probabilities(m, w, &in, b, probs);
        for (int s = 0; s < b; s++) {
            const long item = first_item < 0 ? -1 : first_item + s0 + s;
            report(o, m, file, item, probs + (long)s * k, k);
            if (o->pictures)
                keep_shown(o->pictures, m, px + (s0 + s) * size, thumb, tw, th, file, item,
                           probs + (long)s * k);
        }
    }
    return 0;
}

/* Draws the kept pictures into o->show. */
static int draw_shown(const predict_options *o, const tr_model *m, tr_error *err)
{
    const shown *sh = o->pictures;
    if (sh->n == 0)
        return tr_error_set(err, "%s: no picture was classified, nothing to draw", o->show);
    char title[128];
    if (sh->all > sh->n)
        snprintf(title, sizeof title, "The first %d of %ld pictures: as given, as the model saw "
                 "it, its classes", sh->n, sh->all);
    else
        snprintf(title, sizeof title, "%d picture%s: as given, as the model saw it, its classes",
                 sh->n, sh->n == 1 ? "" : "s");
    tr_canvas c;
    int rc = tr_plot_verdicts(&c, sh->v, sh->n, tr_model_classes(m), title, err);
    if (rc == 0) {
        rc = tr_canvas_save_png(&c, o->show, err);
        tr_canvas_free(&c);
    }
    return rc;
}

/* One file: 0 when all its pictures were classified. */
static int predict_file(const predict_options *o, const tr_model *m, tr_model_work *w,
                        const char *path, float *probs, tr_error *err)
{
    uint8_t *data = NULL;
    size_t len = 0;
    if (tr_file_read_all(path, IMAGE_MAX_FILE_BYTES, &data, &len, err))
        return -1;
    int rc = 0;
    const long size = tr_tensor_size(m->input);
    if (len == 0) {
        rc = tr_error_set(err, "%s: empty file", path);
    } else if (tr_image_is_png(data, len) || tr_image_is_jpeg(data, len)) {
        uint8_t *px = malloc((size_t)size);
        uint8_t *thumb = NULL;
        int tw = 0, th = 0;
        rc = px ? picture_pixels(o, m, data, len, path, px, o->show ? &thumb : NULL, &tw, &th, err)
                : tr_error_set(err, "out of memory");
        if (rc == 0)
            rc = classify(o, m, w, px, 1, path, -1, probs, thumb, tw, th, err);
        free(px);
        free(thumb);
    } else if (len >= 4 && ((data[0] == 0 && data[1] == 0 && data[2] == 0x08) ||
                            (data[0] == 0x1f && data[1] == 0x8b))) {
        tr_idx_array a;
        if (tr_idx_load(&a, path, 0, err)) {
            rc = -1;
        } else {
            const tr_tensor_shape in = m->input;
            const uint32_t c = a.ndim == 4 ? a.dims[3] : 1;
            if (a.ndim < 3 || a.dims[1] != (uint32_t)in.h || a.dims[2] != (uint32_t)in.w ||
                c != (uint32_t)in.c)
                rc = tr_error_set(err, "%s: not IDX images of %dx%dx%d, which the model takes",
                                  path, in.h, in.w, in.c);
            else if (a.dims[0] == 0)
                rc = tr_error_set(err, "%s: no images in the file", path);
            else
                rc = classify(o, m, w, a.data, a.dims[0], path, 0, probs, NULL, 0, 0, err);
            tr_idx_free(&a);
        }
    } else {
        rc = tr_error_set(err, "%s: not a PNG, JPEG or IDX image file", path);
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
    tr_model m;
    if (tr_ckpt_load(&m, o.model_path, &err)) {
        fprintf(stderr, "trainer predict: %s\n", err.msg);
        return EXIT_FAILURE;
    }
    enum { BLOCK = 64 };
    tr_model_work w;
    float *probs = malloc(sizeof(float) * BLOCK * (size_t)tr_model_classes(&m));
    if (!probs || tr_model_work_init(&w, &m, BLOCK, &err)) {
        fprintf(stderr, "trainer predict: %s\n", probs ? err.msg : "out of memory");
        free(probs);
        tr_model_free(&m);
        return EXIT_FAILURE;
    }
    shown *pictures = o.show ? calloc(1, sizeof *pictures) : NULL;
    if (o.show && !pictures) {
        fprintf(stderr, "trainer predict: out of memory\n");
        return EXIT_FAILURE;
    }
    o.pictures = pictures;
    seen_pictures seen = {0};
    o.seen = o.save_input ? &seen : NULL;
    int failed = 0;
    for (int i = optind; i < argc; i++) {
        if (predict_file(&o, &m, &w, argv[i], probs, &err)) {
            fflush(stdout);
            fprintf(stderr, "trainer predict: %s\n", err.msg);
            failed = 1;
        }
    }
    if (o.show && draw_shown(&o, &m, &err)) {
        fprintf(stderr, "trainer predict: %s\n", err.msg);
        failed = 1;
    }
    if (o.save_input && save_seen(&o, &m, &err)) {
        fprintf(stderr, "trainer predict: %s\n", err.msg);
        failed = 1;
    }
    free(seen.px);
    for (int k = 0; pictures && k < pictures->n; k++) {
        free((void *)pictures->v[k].thumb);
        free((void *)pictures->v[k].seen);
        free((void *)pictures->v[k].probs);
    }
    free(pictures);
    tr_model_work_free(&w);
    free(probs);
    tr_model_free(&m);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
