#include "history.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

#define HISTORY_MAX_BYTES ((size_t)64 << 20)
#define HISTORY_MAX_ROWS 1000000

/* The rate as a float holds it: 9 significant digits give it back exactly. */
static int format_row(char *buf, size_t size, const tr_epoch_stats *r, int with_lr)
{
    if (with_lr)
        return snprintf(buf, size, "%d,%.6f,%.6f,%.6f,%.6f,%.3f,%.9g\n", r->epoch, r->loss,
                        r->accuracy, r->val_loss, r->val_accuracy, r->seconds,
                        r->learning_rate);
    return snprintf(buf, size, "%d,%.6f,%.6f,%.6f,%.6f,%.3f\n", r->epoch, r->loss,
                    r->accuracy, r->val_loss, r->val_accuracy, r->seconds);
}

int tr_history_format(const tr_epoch_stats *rows, int n, int with_lr, char **text, size_t *len,
                      tr_error *err)
{
    const char *header = with_lr ? HISTORY_HEADER_LR : HISTORY_HEADER;
    /* Sized exactly: a diverged loss can print hundreds of digits. */
    size_t cap = strlen(header) + 2;
    for (int i = 0; i < n; i++)
        cap += (size_t)format_row(NULL, 0, &rows[i], with_lr);
    char *buf = malloc(cap);
    if (!buf)
        return tr_error_set(err, "out of memory for the history");
    size_t used = (size_t)snprintf(buf, cap, "%s\n", header);
    for (int i = 0; i < n; i++)
        used += (size_t)format_row(buf + used, cap - used, &rows[i], with_lr);
    *text = buf;
    *len = used;
    return 0;
}

/* Parses the line [p, end) (no newline) into `want` numbers (the header's
 * columns); on failure says why in err, for line number `line` of name. */
static int parse_row(const char *p, const char *end, double *v, int want, const char *header,
                     const char *name, int line, tr_error *err)
{
    if (end > p && end[-1] == '\r')
        end--;
    int fields = 1;
    for (const char *q = p; q < end; q++)
        fields += *q == ',';
    if (fields != want)
        return tr_error_set(err, "%s: line %d: %d field%s, expected %d (%s)", name, line,
                            fields, fields == 1 ? "" : "s", want, header);
    for (int f = 0; f < want; f++) {
        const char *q = p;
        while (q < end && *q != ',')
            q++;
        char tmp[400]; /* %.6f of a diverged loss near DBL_MAX is 316 characters */
        size_t k = (size_t)(q - p);
        char *stop = tmp;
        if (k > 0 && k < sizeof tmp) {
            memcpy(tmp, p, k);
            tmp[k] = '\0';
            errno = 0;
            v[f] = strtod(tmp, &stop);
        }
        if (k == 0 || k >= sizeof tmp || *stop != '\0' || errno == ERANGE)
            return tr_error_set(err, "%s: line %d: field %d ('%.*s') is not a number", name,
                                line, f + 1, (int)(k < 32 ? k : 32), p);
        p = q + 1;
    }
    return 0;
}

/* Whether text starts with the line `header`. */
static int starts_with_line(const char *text, size_t len, const char *header)
{
    const size_t hl = strlen(header);
    return len >= hl && memcmp(text, header, hl) == 0 &&
           (len == hl || text[hl] == '\n' || text[hl] == '\r');
}

int tr_history_parse(tr_epoch_stats **rows_out, int *n_out, int *with_lr, const char *text,
                     size_t len, const char *name, tr_error *err)
{
    *rows_out = NULL;
    *n_out = 0;
    const char *p = text, *end = text + len;
    const int lr = starts_with_line(text, len, HISTORY_HEADER_LR);
    const char *header = lr ? HISTORY_HEADER_LR : HISTORY_HEADER;
    if (!lr && !starts_with_line(text, len, HISTORY_HEADER))
        return tr_error_set(err, "%s: line 1: expected the header '%s' (or '%s')", name,
                            HISTORY_HEADER, HISTORY_HEADER_LR);
    if (with_lr)
        *with_lr = lr;
    p += strlen(header);
    if (p < end && *p == '\r')
        p++;
    if (p < end && *p == '\n')
        p++;
    int cap = 64, n = 0;
    tr_epoch_stats *rows = malloc(sizeof *rows * (size_t)cap);
    if (!rows)
        return tr_error_set(err, "out of memory");
    int line = 2;
    while (p < end) {
        if (*p == '\n') { /* a blank line */
            p++;
            line++;
            continue;
        }
        if (n == HISTORY_MAX_ROWS) {
            free(rows);
            return tr_error_set(err, "%s: more than %d rows", name, HISTORY_MAX_ROWS);
        }
        if (n == cap) {
            cap *= 2;
            tr_epoch_stats *nr = realloc(rows, sizeof *rows * (size_t)cap);
            if (!nr) {
                free(rows);
                return tr_error_set(err, "out of memory");
            }
            rows = nr;
        }
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        double v[7];
        if (parse_row(p, eol, v, lr ? 7 : 6, header, name, line, err)) {
            free(rows);
            return -1;
        }
        p = eol < end ? eol + 1 : end;
        if (v[0] != (double)(n + 1)) {
            free(rows);
            return tr_error_set(err, "%s: line %d: epoch %g, expected %d", name, line, v[0],
                                n + 1);
        }
        rows[n] = (tr_epoch_stats){.epoch = n + 1, .loss = v[1], .accuracy = v[2],
                                  .val_loss = v[3], .val_accuracy = v[4],
                                  .seconds = v[5], .learning_rate = lr ? v[6] : NAN};
        n++;
        line++;
    }
    if (n == 0) {
        free(rows);
        return tr_error_set(err, "%s: no rows after the header", name);
    }
    *rows_out = rows;
    *n_out = n;
    return 0;
}

int tr_history_save(const tr_epoch_stats *rows, int n, int with_lr, const char *path,
                    tr_error *err)
{
    char *text;
    size_t len;
    if (tr_history_format(rows, n, with_lr, &text, &len, err))
        return -1;
    int status = tr_file_write_atomic(path, text, len, err);
    free(text);
    return status;
}

int tr_history_load(tr_epoch_stats **rows, int *n, int *with_lr, const char *path, tr_error *err)
{
    uint8_t *data;
    size_t len;
    if (tr_file_read_all(path, HISTORY_MAX_BYTES, &data, &len, err))
        return -1;
    int status = tr_history_parse(rows, n, with_lr, (const char *)data, len, path, err);
    free(data);
    return status;
}
