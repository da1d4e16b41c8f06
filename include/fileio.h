/* fileio.h - whole-file reads and writes that never leave a partial file. */
#ifndef TRAINER_FILEIO_H
#define TRAINER_FILEIO_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "error.h"

/* Writes len bytes to a new temporary file beside path, flushes it to disk and
 * renames it over path.  On any failure the temporary file is removed and
 * whatever was at path before is left as it was. */
int tr_file_write_atomic(const char *path, const void *data, size_t len, tr_error *err);

/* Several files replaced together or not at all: each is written to a
 * temporary file beside its path and flushed (tr_file_batch_add), and only when
 * all are written are they renamed into place (tr_file_batch_commit).  If any
 * write fails, the temporary files are removed and every earlier file stays
 * as it was.  While committing, each earlier file is kept under a second
 * name (a hard link): if one rename fails, the files already replaced get
 * their earlier versions back (and files that did not exist are removed), so
 * the set on disk is the old one or the new one, never a mix.  A crash in
 * the middle of a commit can still leave a mix, with the earlier versions
 * beside them as NAME.tmp-XXXXXX.old. */
#define FILE_BATCH_MAX 8
typedef struct {
    int n;
    char tmp[FILE_BATCH_MAX][4096];
    char dst[FILE_BATCH_MAX][4096];
} tr_file_batch;

/* Writes a file of the batch; on failure aborts the whole batch. */
int tr_file_batch_add(tr_file_batch *b, const char *path, const void *data, size_t len,
                      tr_error *err);
/* Renames every file of the batch into place; on failure puts back what it
 * had replaced and removes the temporary files. */
int tr_file_batch_commit(tr_file_batch *b, tr_error *err);
/* Removes the batch's temporary files. */
void tr_file_batch_abort(tr_file_batch *b);

/* Opens path for reading if it is a regular file: a FIFO, a device or a
 * directory is refused ("not a regular file") at once, without blocking.
 * NULL, with the reason, on failure; close with fclose. */
FILE *tr_file_open_regular(const char *path, tr_error *err);

/* Reads the whole of path into a new buffer (*data, freed by the caller).
 * Files larger than max bytes are refused before anything is allocated. */
int tr_file_read_all(const char *path, size_t max, uint8_t **data, size_t *len,
                     tr_error *err);

/* Creates dir and its missing parents (like mkdir -p). */
int tr_file_make_dirs(const char *dir, tr_error *err);

/* Fails unless a file can be created in dir (checked by creating and removing
 * one), so that a long run does not find out at its end. */
int tr_file_check_writable(const char *dir, tr_error *err);

/* Takes the lock of an output directory (a POSIX record lock on
 * DIR/.trainer.lock, created empty if missing), so that two runs never
 * write the same files; *fd holds it until tr_file_unlock_dir(*fd) or the
 * process ends.  When another process holds it, fails at once with "DIR is
 * in use by process N". */
int tr_file_lock_dir(const char *dir, int *fd, tr_error *err);
void tr_file_unlock_dir(int fd);

#endif
