#include "mlp.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tr_mlp_shape_make(tr_mlp_shape *s, int inputs, const int *hidden, int n_hidden,
                      int classes, tr_error *err)
{
    memset(s, 0, sizeof *s);
    if (n_hidden < 0 || n_hidden + 1 > MLP_MAX_LAYERS)
        return tr_error_set(err, "at most %d hidden layers are supported",
                            MLP_MAX_LAYERS - 1);
    int sizes[MLP_MAX_LAYERS + 1];
    sizes[0] = inputs;
    for (int l = 0; l < n_hidden; l++)
        sizes[l + 1] = hidden[l];
    sizes[n_hidden + 1] = classes;
    for (int l = 0; l <= n_hidden + 1; l++)
        if (sizes[l] < 1 || sizes[l] > MLP_MAX_WIDTH)
            return tr_error_set(err, "layer width %d is out of range (1 to %d)",
                                sizes[l], MLP_MAX_WIDTH);
    s->n_layers = n_hidden + 1;
    memcpy(s->sizes, sizes, sizeof(int) * (size_t)(n_hidden + 2));
    return 0;
}

int tr_mlp_parse_hidden(const char *text, int *widths, int *n, tr_error *err)
{
    *n = 0;
    const char *p = text;
    if (*p == '\0')
        return 0;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 1 || v > MLP_MAX_WIDTH ||
            (*end != ',' && *end != '\0'))
            return tr_error_set(err, "--hidden '%s': expected widths from 1 to %d "
                                "separated by commas, like 128,32", text, MLP_MAX_WIDTH);
        if (*n == MLP_MAX_LAYERS - 1)
            return tr_error_set(err, "--hidden '%s': at most %d hidden layers", text,
                                MLP_MAX_LAYERS - 1);
        widths[(*n)++] = (int)v;
        if (*end == '\0')
            return 0;
        p = end + 1;
    }
}

void tr_mlp_shape_format(const tr_mlp_shape *s, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int l = 0; l <= s->n_layers && used < size; l++)
        used += (size_t)snprintf(buf + used, size - used, l ? "-%d" : "%d", s->sizes[l]);
}
