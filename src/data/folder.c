/* folder.c - a data set from a folder of pictures, one subfolder per class,
 * as Keras' image_dataset_from_directory reads it. */
#define _DEFAULT_SOURCE /* DT_DIR, strcasecmp */
#include "dataset.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "fileio.h"
#include "image.h"
#include "rng.h"

/* Class folders nest their pictures at most this deep. */
#define FOLDER_MAX_DEPTH 16

typedef struct {
    char **path;    /* [n], owned */
    uint8_t *label; /* [n] */
    size_t n, cap;
    uint32_t ignored; /* files without a picture's extension */
} file_list;

static void file_list_free(file_list *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->path[i]);
    free(f->path);
    free(f->label);
    memset(f, 0, sizeof *f);
}

static int file_list_add(file_list *f, const char *path, int label, tr_error *err)
{
    if (f->n == f->cap) {
        const size_t cap = f->cap ? 2 * f->cap : 1024;
        char **p = realloc(f->path, cap * sizeof *p);
        if (p)
            f->path = p;
        uint8_t *l = realloc(f->label, cap);
        if (l)
            f->label = l;
        if (!p || !l)
            return tr_error_set(err, "out of memory listing the pictures");
        f->cap = cap;
    }
    if (f->n >= DATASET_MAX_SAMPLES)
        return tr_error_set(err, "%s: more than %u pictures", path, DATASET_MAX_SAMPLES);
    f->path[f->n] = strdup(path);
    if (!f->path[f->n])
        return tr_error_set(err, "out of memory listing the pictures");
    f->label[f->n++] = (uint8_t)label;
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct {
    char **name;
    size_t n;
    unsigned char *is_dir;
} dir_listing;

static void listing_free(dir_listing *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->name[i]);
    free(l->name);
    free(l->is_dir);
}

/* The entries of dir, hidden ones left out, sorted by their bytes (as
 * Python's sorted() orders UTF-8 names); is_dir follows symbolic links when
 * follow is set. */
static int list_dir(dir_listing *l, const char *dir, int follow, tr_error *err)
{
    memset(l, 0, sizeof *l);
    DIR *d = opendir(dir);
    if (!d)
        return tr_error_set(err, "%s: cannot read the folder: %s", dir, strerror(errno));
    size_t cap = 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (l->n == cap) {
            cap = cap ? 2 * cap : 64;
            char **p = realloc(l->name, cap * sizeof *p);
            if (!p) {
                rc = tr_error_set(err, "%s: out of memory", dir);
                break;
            }
            l->name = p;
        }
        if (!(l->name[l->n] = strdup(e->d_name)))
            rc = tr_error_set(err, "%s: out of memory", dir);
        else
            l->n++;
    }
    closedir(d);
    if (rc == 0 && l->n)
        qsort(l->name, l->n, sizeof *l->name, compare_names);
    l->is_dir = calloc(l->n ? l->n : 1, 1);
    if (rc == 0 && !l->is_dir)
        rc = tr_error_set(err, "%s: out of memory", dir);
    for (size_t i = 0; rc == 0 && i < l->n; i++) {
        char path[4096];
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s", dir, l->name[i]) >= (int)sizeof path)
            rc = tr_error_set(err, "%s/%s: path too long", dir, l->name[i]);
        else if ((follow ? stat(path, &st) : lstat(path, &st)) == 0)
            l->is_dir[i] = S_ISDIR(st.st_mode);
    }
    if (rc)
        listing_free(l);
    return rc;
}

static int has_picture_extension(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") ||
                   !strcasecmp(dot, ".jpeg"));
}

/* The pictures under dir, files before subfolders, each in sorted order;
 * symbolic links to folders are not followed (as os.walk). */
static int walk_class(file_list *f, const char *dir, int label, int depth, tr_error *err)
{
    if (depth > FOLDER_MAX_DEPTH)
        return tr_error_set(err, "%s: folders nested more than %d deep", dir, FOLDER_MAX_DEPTH);
    dir_listing l;
    if (list_dir(&l, dir, 0, err))
        return -1;
    int rc = 0;
    char path[4096];
    for (int pass = 0; pass < 2 && rc == 0; pass++)
        for (size_t i = 0; i < l.n && rc == 0; i++) {
            if (l.is_dir[i] != pass)
                continue;
            if (snprintf(path, sizeof path, "%s/%s", dir, l.name[i]) >= (int)sizeof path)
                rc = tr_error_set(err, "%s/%s: path too long", dir, l.name[i]);
            else if (pass == 1)
                rc = walk_class(f, path, label, depth + 1, err);
            else if (has_picture_extension(l.name[i]))
                rc = file_list_add(f, path, label, err);
            else
                f->ignored++;
        }
    listing_free(&l);
    return rc;
}

/* Lists dir's pictures with their classes.  names: the classes found (the
 * subfolders, sorted), or, with known set, the classes to map the
 * subfolders onto. */
static int list_pictures(file_list *f, const char *dir, char *names, int known,
                         tr_error *err)
{
    memset(f, 0, sizeof *f);
    dir_listing l;
    if (list_dir(&l, dir, 1, err))
        return -1;
    int rc = 0, classes = 0;
    char path[4096], buf[CLASS_NAME_MAX];
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        if (!l.is_dir[i]) {
            f->ignored++; /* pictures must be in a class's folder */
            continue;
        }
        if (snprintf(path, sizeof path, "%s/%s", dir, l.name[i]) >= (int)sizeof path) {
            rc = tr_error_set(err, "%s/%s: path too long", dir, l.name[i]);
            break;
        }
        int label = classes;
        if (known) {
            const int n = tr_class_names_count(names);
            for (label = 0; label < n; label++)
                if (!strcmp(tr_class_name(names, label, buf), l.name[i]))
                    break;
            if (label == n) {
                rc = tr_error_set(err, "%s: a class the training data does not have", path);
                break;
            }
        } else if (classes == DATASET_MAX_CLASSES) {
            rc = tr_error_set(err, "%s: more than %d classes (subfolders)", dir,
                              DATASET_MAX_CLASSES);
            break;
        } else if (tr_class_names_add(names, l.name[i], err)) {
            rc = tr_error_set(err, "%s: a folder name that cannot be a class name (1 to %d "
                              "bytes of printable UTF-8)", path, CLASS_NAME_MAX - 1);
            break;
        }
        classes++;
        rc = walk_class(f, path, label, 1, err);
    }
    listing_free(&l);
    if (rc == 0 && classes == 0)
        rc = tr_error_set(err, "%s: no subfolders: pictures go in one folder per class "
                          "(DIR/cat/1.png, DIR/dog/2.jpg)", dir);
    if (rc == 0 && f->n == 0)
        rc = tr_error_set(err, "%s: no PNG or JPEG pictures in its %d class folder%s", dir,
                          classes, classes == 1 ? "" : "s");
    if (rc)
        file_list_free(f);
    return rc;
}

static int picture_is_grey(const tr_image *im)
{
    const size_t n = (size_t)im->w * (size_t)im->h;
    for (size_t j = 0; j < n; j++) {
        const uint8_t *p = im->rgba + 4 * j;
        if (p[0] != p[1] || p[1] != p[2])
            return 0;
    }
    return 1;
}

static int read_picture(tr_image *im, const char *path, tr_error *err)
{
    uint8_t *data;
    size_t len;
    if (tr_file_read_all(path, IMAGE_MAX_FILE_BYTES, &data, &len, err))
        return -1;
    const int rc = tr_image_decode(im, data, len, path, err);
    free(data);
    return rc;
}

/* Decodes every picture of f in the order order[] into d->pixels (already
 * sized); *colour is set when a picture is not grey.  The first failure in
 * that order is reported. */
static int decode_pictures(tr_dataset *d, const file_list *f, const uint32_t *order,
                           int fixed_size, int *colour, tr_error *err)
{
    long failed_at = -1;
    int any_colour = 0;
    const long n = (long)f->n;
#pragma omp parallel reduction(| : any_colour)
    {
        tr_error why;
#pragma omp for schedule(dynamic, 8)
        for (long i = 0; i < n; i++) {
            long seen_failure;
#pragma omp atomic read
            seen_failure = failed_at;
            if (seen_failure >= 0 && seen_failure < i)
                continue;
            const char *path = f->path[order[i]];
            tr_image im;
            int rc = read_picture(&im, path, &why);
            if (rc == 0 && !fixed_size && (im.w != (int)d->cols || im.h != (int)d->rows))
                rc = tr_error_set(&why, "%s: %dx%d pixels, but %s has %ux%u (all pictures must "
                                  "have one size, or give --image-size HxW)", path, im.h, im.w,
                                  f->path[order[0]], d->rows, d->cols);
            if (rc == 0 && tr_image_bytes(d->pixels + (size_t)i * d->dim, &im, (int)d->rows,
                                          (int)d->cols, (int)d->channels))
                rc = tr_error_set(&why, "%s: out of memory", path);
            if (rc == 0) {
                any_colour |= !picture_is_grey(&im);
                d->labels[i] = f->label[order[i]];
            }
            tr_image_free(&im);
            if (rc) {
#pragma omp critical
                if (failed_at < 0 || i < failed_at) {
                    failed_at = i;
                    *err = why;
                }
            }
        }
    }
    *colour = any_colour;
    return failed_at >= 0 ? -1 : 0;
}

/* The files' order: shuffled with the seed, so that a validation split
 * takes some of every class (Keras shuffles the file list the same way). */
static uint32_t *file_order(size_t n, uint64_t seed, uint64_t stream)
{
    uint32_t *order = malloc(n * sizeof *order);
    if (!order)
        return NULL;
    for (size_t i = 0; i < n; i++)
        order[i] = (uint32_t)i;
    tr_rng r;
    tr_rng_seed(&r, seed, stream);
    for (size_t i = n; i > 1; i--) {
        const size_t j = (size_t)tr_rng_below(&r, i);
        const uint32_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    return order;
}

int tr_dataset_load_folder(tr_dataset *d, const char *dir, const tr_dataset_options *o,
                           const char *train_names, tr_error *err)
{
    memset(d, 0, sizeof *d);
    file_list f;
    if (train_names)
        snprintf(d->class_names, sizeof d->class_names, "%s", train_names);
    if (list_pictures(&f, dir, d->class_names, train_names != NULL, err))
        return -1;
    uint32_t *order = file_order(f.n, o->seed, train_names ? RNG_STREAM_FILES + 1
                                                            : RNG_STREAM_FILES);
    int rc = order ? 0 : tr_error_set(err, "%s: out of memory", dir);
    /* The size and colour come from the first picture unless given. */
    tr_image first = {0};
    if (rc == 0 && (!o->rows || !o->channels))
        rc = read_picture(&first, f.path[order[0]], err);
    if (rc == 0) {
        d->n = (uint32_t)f.n;
        d->rows = (uint32_t)(o->rows ? o->rows : first.h);
        d->cols = (uint32_t)(o->rows ? o->cols : first.w);
        d->channels = (uint32_t)(o->channels ? o->channels : picture_is_grey(&first) ? 1 : 3);
        d->dim = d->rows * d->cols * d->channels;
        d->classes = (uint32_t)tr_class_names_count(d->class_names);
        d->ignored = f.ignored;
        d->owned = 1;
        d->format = DATASET_FOLDER;
        if ((size_t)d->dim > DATASET_MAX_IMAGE)
            rc = tr_error_set(err, "%s: images of %ux%ux%u values, more than %d", dir, d->rows,
                              d->cols, d->channels, DATASET_MAX_IMAGE);
    }
    tr_image_free(&first);
    for (int attempt = 0; rc == 0 && attempt < 2; attempt++) {
        free(d->pixels);
        free(d->labels);
        d->pixels = malloc((size_t)d->n * d->dim);
        d->labels = malloc(d->n);
        if (!d->pixels || !d->labels) {
            rc = tr_error_set(err, "%s: out of memory for %u pictures of %ux%ux%u", dir, d->n,
                              d->rows, d->cols, d->channels);
            break;
        }
        int colour = 0;
        rc = decode_pictures(d, &f, order, o->rows != 0, &colour, err);
        /* Guessed grey from the first picture, but a later one has colour:
         * decoded once more in RGB (rare: the first picture is in colour in
         * any set of photographs). */
        if (rc || o->channels || d->channels == 3 || !colour)
            break;
        d->channels = 3;
        d->dim = d->rows * d->cols * 3;
    }
    if (rc == 0)
        tr_dataset_set_fingerprint(d);
    free(order);
    file_list_free(&f);
    if (rc)
        tr_dataset_free(d);
    return rc;
}
