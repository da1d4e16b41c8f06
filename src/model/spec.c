/* Layer specs: "conv2d(32,3,relu),maxpool2d(2),flatten,dropout(0.5),
 * dense(10,softmax)", Keras' layer names with their main arguments. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "model.h"

/* One item: its name and up to 4 arguments, as text. */
typedef struct {
    char text[128]; /* the whole item, for messages */
    char name[32];
    char arg[4][32];
    int n_args;
} spec_item;

static int same_word(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

/* Splits text[0..len) into an item; fails on what is not name or
 * name(a, b, ...). */
static int split_item(const char *text, size_t len, spec_item *it, tr_error *err)
{
    memset(it, 0, sizeof *it);
    while (len && isspace((unsigned char)*text))
        text++, len--;
    while (len && isspace((unsigned char)text[len - 1]))
        len--;
    snprintf(it->text, sizeof it->text, "%.*s", (int)len, text);
    const char *open = memchr(text, '(', len);
    const size_t name_len = open ? (size_t)(open - text) : len;
    if (name_len == 0 || name_len >= sizeof it->name)
        return error_set(err, "'%s': expected a layer such as dense(10,softmax)", it->text);
    memcpy(it->name, text, name_len);
    for (size_t i = 0; i < name_len; i++)
        if (!isalnum((unsigned char)it->name[i]) && it->name[i] != '_')
            return error_set(err, "'%s': expected a layer such as dense(10,softmax)", it->text);
    if (!open)
        return 0;
    if (text[len - 1] != ')')
        return error_set(err, "'%s': a ')' is missing", it->text);
    const char *p = open + 1, *end = text + len - 1;
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        while (p < stop && isspace((unsigned char)*p))
            p++;
        size_t n = (size_t)(stop - p);
        while (n && isspace((unsigned char)p[n - 1]))
            n--;
        if (it->n_args == 4 || n == 0 || n >= sizeof it->arg[0])
            return error_set(err, "'%s': expected up to 4 arguments separated by commas",
                             it->text);
        memcpy(it->arg[it->n_args++], p, n);
        p = stop + 1;
    }
    return 0;
}

static int whole(const spec_item *it, int k, long lo, long hi, int *out, const char *what,
                 tr_error *err)
{
    char *end;
    errno = 0;
    const long v = strtol(it->arg[k], &end, 10);
    if (*end || end == it->arg[k] || errno || v < lo || v > hi)
        return error_set(err, "'%s': %s '%s' (a whole number from %ld to %ld)", it->text, what,
                         it->arg[k], lo, hi);
    *out = (int)v;
    return 0;
}

/* Reads the words after the first arguments: an activation (relu, linear,
 * softmax where allowed) and, for a convolution, a padding. */
static int options(const spec_item *it, int from, layer *l, int padding, int softmax,
                   int *is_softmax, tr_error *err)
{
    for (int k = from; k < it->n_args; k++) {
        const char *a = it->arg[k];
        if (same_word(a, "relu"))
            l->relu = 1;
        else if (same_word(a, "linear") || same_word(a, "none"))
            l->relu = 0;
        else if (softmax && same_word(a, "softmax"))
            *is_softmax = 1;
        else if (padding && (same_word(a, "same") || same_word(a, "valid")))
            l->same = same_word(a, "same");
        else
            return error_set(err, "'%s': unknown argument '%s' (%s)", it->text, a,
                             padding ? "relu, linear, same or valid"
                                     : softmax ? "relu, linear or softmax" : "none here");
    }
    return 0;
}

/* One item as a layer; *head when it is dense(N, softmax). */
static int item_layer(const spec_item *it, layer *l, int *head, tr_error *err)
{
    memset(l, 0, sizeof *l);
    *head = 0;
    const char *n = it->name;
    if (same_word(n, "dense")) {
        l->kind = LAYER_DENSE;
        if (it->n_args < 1)
            return error_set(err, "'%s': dense needs its units, as dense(128,relu)", it->text);
        return whole(it, 0, 1, LAYER_MAX_WIDTH, &l->units, "units", err) ||
               options(it, 1, l, 0, 1, head, err);
    }
    if (same_word(n, "conv2d")) {
        l->kind = LAYER_CONV2D;
        if (it->n_args < 2)
            return error_set(err, "'%s': conv2d needs filters and a kernel size, as "
                             "conv2d(32,3,relu)", it->text);
        return whole(it, 0, 1, 4096, &l->units, "filters", err) ||
               whole(it, 1, 1, 64, &l->kernel, "kernel size", err) ||
               options(it, 2, l, 1, 0, head, err);
    }
    if (same_word(n, "maxpool2d") || same_word(n, "maxpooling2d")) {
        l->kind = LAYER_MAXPOOL2D;
        if (it->n_args != 1)
            return error_set(err, "'%s': maxpool2d takes its pool size, as maxpool2d(2)",
                             it->text);
        return whole(it, 0, 1, 64, &l->pool, "pool size", err);
    }
    if (same_word(n, "dropout")) {
        l->kind = LAYER_DROPOUT;
        char *end;
        errno = 0;
        const double rate = it->n_args == 1 ? strtod(it->arg[0], &end) : -1.0;
        if (it->n_args != 1 || *end || errno || !(rate >= 0.0 && rate < 1.0))
            return error_set(err, "'%s': dropout rate %s (from 0 to 1, 1 excluded)", it->text,
                             it->n_args ? it->arg[0] : "missing");
        l->rate = (float)rate;
        return 0;
    }
    if (same_word(n, "flatten")) {
        l->kind = LAYER_FLATTEN;
        if (it->n_args)
            return error_set(err, "'%s': flatten takes no arguments", it->text);
        return 0;
    }
    return error_set(err, "'%s': unknown layer '%s' (conv2d, maxpool2d, flatten, dropout, "
                     "dense)", it->text, n);
}

int model_parse_layers(const char *text, layer *out, int *n, tr_error *err)
{
    *n = 0;
    int depth = 0, head = 0;
    const char *start = text;
    for (const char *p = text;; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')' && --depth < 0)
            return error_set(err, "'%.*s': a ')' too many", (int)(p - start + 1), start);
        if ((*p != ',' || depth > 0) && *p != '\0')
            continue;
        spec_item it;
        if (depth > 0)
            return error_set(err, "'%s': a ')' is missing", start);
        if (head)
            return error_set(err, "dense(N,softmax) must be the last layer");
        if (*n == MODEL_MAX_LAYERS - 1)
            return error_set(err, "at most %d layers", MODEL_MAX_LAYERS - 1);
        if (split_item(start, (size_t)(p - start), &it, err) ||
            item_layer(&it, &out[*n], &head, err))
            return -1;
        (*n)++;
        if (*p == '\0')
            break;
        start = p + 1;
    }
    if (!head)
        return error_set(err, "the last layer must be dense(N,softmax), the classifier");
    out[(*n)++] = (layer){.kind = LAYER_SOFTMAX};
    return 0;
}

int model_format_layers(const model *m, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "%dx%dx%d", m->input.h, m->input.w,
                                   m->input.c);
    for (int i = 0; i < m->n_layers - 1 && used < size; i++) {
        const layer *l = &m->layer[i];
        const int last = i == m->n_layers - 2;
        char item[64];
        switch (l->kind) {
        case LAYER_CONV2D:
            snprintf(item, sizeof item, "conv2d(%d,%d%s%s)", l->units, l->kernel,
                     l->same ? ",same" : "", l->relu ? ",relu" : "");
            break;
        case LAYER_MAXPOOL2D: snprintf(item, sizeof item, "maxpool2d(%d)", l->pool); break;
        case LAYER_DROPOUT: snprintf(item, sizeof item, "dropout(%g)", (double)l->rate); break;
        case LAYER_DENSE:
            snprintf(item, sizeof item, "dense(%d%s)", l->units,
                     last ? ",softmax" : l->relu ? ",relu" : "");
            break;
        default: snprintf(item, sizeof item, "%s", layer_kind_name(l->kind)); break;
        }
        used += (size_t)snprintf(buf + used, size - used, " %s", item);
    }
    return used < size ? 0 : -1;
}
