/* fileio.h - whole-file reads and writes that never leave a partial file. */
#ifndef TRAINER_FILEIO_H
#define TRAINER_FILEIO_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Writes len bytes to a new temporary file beside path, flushes it to disk and
 * renames it over path.  On any failure the temporary file is removed and
 * whatever was at path before is left as it was. */
int file_write_atomic(const char *path, const void *data, size_t len, tr_error *err);

/* Reads the whole of path into a new buffer (*data, freed by the caller).
 * Files larger than max bytes are refused before anything is allocated. */
int file_read_all(const char *path, size_t max, uint8_t **data, size_t *len,
                  tr_error *err);

/* Creates dir and its missing parents (like mkdir -p). */
int file_make_dirs(const char *dir, tr_error *err);

/* Fails unless a file can be created in dir (checked by creating and removing
 * one), so that a long run does not find out at its end. */
int file_check_writable(const char *dir, tr_error *err);

#endif
