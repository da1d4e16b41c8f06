/* Layer specs: "conv2d(32,3,relu),maxpool2d(2),flatten,dropout(0.5),
 * dense(10,softmax)", Keras' layer names with their main arguments. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "layer_kinds.h"
#include "model.h"

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
        return tr_error_set(err, "'%s': expected a layer such as dense(10,softmax)", it->text);
    memcpy(it->name, text, name_len);
    for (size_t i = 0; i < name_len; i++)
        if (!isalnum((unsigned char)it->name[i]) && it->name[i] != '_')
            return tr_error_set(err, "'%s': expected a layer such as dense(10,softmax)", it->text);
    if (!open)
        return 0;
    if (text[len - 1] != ')')
        return tr_error_set(err, "'%s': a ')' is missing", it->text);
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
            return tr_error_set(err, "'%s': expected up to 4 arguments separated by commas",
                                it->text);
        memcpy(it->arg[it->n_args++], p, n);
        p = stop + 1;
    }
    return 0;
}

int tr_spec_whole(const spec_item *it, int k, long lo, long hi, uint32_t *out, const char *what,
                  tr_error *err)
{
    char *end;
    errno = 0;
    const long v = strtol(it->arg[k], &end, 10);
    if (*end || end == it->arg[k] || errno || v < lo || v > hi)
        return tr_error_set(err, "'%s': %s '%s' (a whole number from %ld to %ld)", it->text, what,
                            it->arg[k], lo, hi);
    *out = (uint32_t)v;
    return 0;
}

int tr_spec_fraction(const spec_item *it, int k, double lo, double hi, float *out,
                     const char *what, tr_error *err)
{
    char *end;
    errno = 0;
    const double v = strtod(it->arg[k], &end);
    if (*end || end == it->arg[k] || errno || !(v >= lo && v < hi))
        return tr_error_set(err, "'%s': %s %s (from %g to %g, %g excluded)", it->text, what,
                            it->arg[k], lo, hi, hi);
    *out = (float)v;
    return 0;
}

/* Appends the NULL-terminated words to buf (size bytes, used of them
 * taken), separated by ", "; returns the bytes taken. */
static size_t join_words(char *buf, size_t size, size_t used, const char *const *words)
{
    for (int w = 0; words[w] && used < size; w++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? ", " : "", words[w]);
    return used;
}

/* The group g and word w of groups that arg is; 0 when it is none. */
static int find_word(const char *const *const *groups, int n_groups, const char *arg, int *g,
                     int *w)
{
    for (*g = 0; *g < n_groups; (*g)++)
        for (*w = 0; groups[*g][*w]; (*w)++)
            if (same_word(arg, groups[*g][*w]))
                return 1;
    return 0;
}

int tr_spec_options(const spec_item *it, int from, const char *const *const *groups, int n_groups,
                    int *choice, tr_error *err)
{
    int given[8] = {0};
    char words[256];
    for (int k = from; k < it->n_args; k++) {
        int g, w;
        if (!find_word(groups, n_groups, it->arg[k], &g, &w)) {
            size_t used = 0;
            for (int q = 0; q < n_groups; q++)
                used = join_words(words, sizeof words, used, groups[q]);
            return tr_error_set(err, "'%s': unknown argument '%s' (%s)", it->text, it->arg[k],
                                used ? words : "none here");
        }
        if (given[g]) {
            join_words(words, sizeof words, 0, groups[g]);
            return tr_error_set(err, "'%s': '%s' after '%s': give one of %s", it->text,
                                it->arg[k], it->arg[given[g] - 1], words);
        }
        given[g] = k + 1;
        choice[g] = w;
    }
    return 0;
}

/* One item as a layer; *head when it also ends the model (dense(N, softmax)). */
static int item_layer(const spec_item *it, tr_layer *l, int *head, tr_error *err)
{
    memset(l, 0, sizeof *l);
    *head = 0;
    l->kind = tr_layer_kind_named(it->name);
    const layer_ops *k = tr_layer_kind_ops(l->kind);
    if (!k) {
        char names[256];
        tr_layer_kind_list(names, sizeof names);
        return tr_error_set(err, "'%s': unknown layer '%s' (%s)", it->text, it->name, names);
    }
    if (k->parse)
        return k->parse(it, l->hp, head, err);
    if (it->n_args)
        return tr_error_set(err, "'%s': %s takes no arguments", it->text, k->name);
    return 0;
}

int tr_model_parse_layers(const char *text, tr_layer *out, int *n, tr_error *err)
{
    *n = 0;
    int depth = 0, head = 0;
    const char *start = text;
    for (const char *p = text;; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')' && --depth < 0)
            return tr_error_set(err, "'%.*s': a ')' too many", (int)(p - start + 1), start);
        if ((*p != ',' || depth > 0) && *p != '\0')
            continue;
        spec_item it;
        if (depth > 0)
            return tr_error_set(err, "'%s': a ')' is missing", start);
        if (head)
            return tr_error_set(err, "dense(N,softmax) must be the last layer");
        if (*n == MODEL_MAX_LAYERS - 1)
            return tr_error_set(err, "at most %d layers", MODEL_MAX_LAYERS - 1);
        if (split_item(start, (size_t)(p - start), &it, err) ||
            item_layer(&it, &out[*n], &head, err))
            return -1;
        (*n)++;
        if (*p == '\0')
            break;
        start = p + 1;
    }
    if (!head)
        return tr_error_set(err, "the last layer must be dense(N,softmax), the classifier");
    out[(*n)++] = (tr_layer){.kind = LAYER_SOFTMAX};
    return 0;
}

int tr_model_format_layers(const tr_model *m, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "%dx%dx%d", m->input.h, m->input.w,
                                   m->input.c);
    for (int i = 0; i < m->n_layers - 1 && used < size; i++) {
        char item[96];
        tr_layer_format(&m->layer[i], i == m->n_layers - 2, item, sizeof item);
        used += (size_t)snprintf(buf + used, size - used, " %s", item);
    }
    return used < size ? 0 : -1;
}
