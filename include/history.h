/* history.h - history.csv, one row per epoch:
 *   epoch,loss,accuracy,val_loss,val_accuracy,seconds[,learning_rate]
 * Validation columns hold "nan" when training ran without a validation set.
 * The learning rate used in each epoch is there when it may change (a run
 * that lowers it on a plateau). */
#ifndef TRAINER_HISTORY_H
#define TRAINER_HISTORY_H

#include <stddef.h>

#include "error.h"
#include "epoch.h"

#define HISTORY_HEADER "epoch,loss,accuracy,val_loss,val_accuracy,seconds"
#define HISTORY_HEADER_LR HISTORY_HEADER ",learning_rate"

/* Formats rows[0..n) as CSV text into a new buffer (*text, freed by the
 * caller, NUL-terminated; *len excludes the NUL), with the learning-rate
 * column when with_lr is nonzero. */
int tr_history_format(const tr_epoch_stats *rows, int n, int with_lr, char **text, size_t *len,
                      tr_error *err);

/* Parses CSV text as written by tr_history_format into a new array (*rows, freed
 * by the caller); *with_lr (if not NULL) tells whether it had the
 * learning-rate column (without it, learning_rate is NaN).  Refuses a wrong
 * header, a short or long row, a field that is not a number, epochs that do
 * not count up from 1, and a file without rows.  name is used in messages,
 * which give the line number. */
int tr_history_parse(tr_epoch_stats **rows, int *n, int *with_lr, const char *text, size_t len,
                     const char *name, tr_error *err);

/* tr_history_format then a write through a temporary file and a rename. */
int tr_history_save(const tr_epoch_stats *rows, int n, int with_lr, const char *path,
                    tr_error *err);

/* Reads and parses path. */
int tr_history_load(tr_epoch_stats **rows, int *n, int *with_lr, const char *path, tr_error *err);

#endif
