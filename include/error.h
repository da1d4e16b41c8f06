/* error.h - how the library reports failure.
 *
 * Library functions never print.  A function that can fail returns 0 on success
 * and -1 on failure, and on failure fills the caller's tr_error with one line
 * that names the file (or flag) and what was wrong.  Programs decide what to
 * print and which exit status to use. */
#ifndef TRAINER_ERROR_H
#define TRAINER_ERROR_H

#include <stddef.h>

typedef struct {
    char msg[512];
} tr_error;

/* Formats a message into err (when err is not NULL) and returns -1, so that a
 * failing function can end with `return tr_error_set(err, ...);`. */
int tr_error_set(tr_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
