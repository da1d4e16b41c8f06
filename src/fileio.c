#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Writes data to a new temporary file beside path and flushes it; its name
 * goes into tmp. */
static int write_temp(char *tmp, size_t size, const char *path, const void *data,
                      size_t len, tr_error *err)
{
    if (snprintf(tmp, size, "%s.tmp-XXXXXX", path) >= (int)size)
        return tr_error_set(err, "%s: path too long", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return tr_error_set(err, "%s: cannot create a file there: %s", path, strerror(errno));
    mode_t mask = umask(0);
    umask(mask);
    int status = 0;
    if (fchmod(fd, 0666 & ~mask) || write_all(fd, data, len) || fsync(fd)) {
        status = tr_error_set(err, "%s: write failed: %s", path, strerror(errno));
        close(fd);
    } else if (close(fd)) {
        status = tr_error_set(err, "%s: write failed: %s", path, strerror(errno));
    }
    if (status)
        unlink(tmp);
    return status;
}

int tr_file_batch_add(tr_file_batch *b, const char *path, const void *data, size_t len,
                      tr_error *err)
{
    if (b->n == FILE_BATCH_MAX) {
        tr_file_batch_abort(b);
        return tr_error_set(err, "%s: too many files in one batch", path);
    }
    if (write_temp(b->tmp[b->n], sizeof b->tmp[b->n], path, data, len, err)) {
        tr_file_batch_abort(b);
        return -1;
    }
    snprintf(b->dst[b->n], sizeof b->dst[b->n], "%s", path);
    b->n++;
    return 0;
}

/* How a file's earlier version is kept while a batch is committed. */
enum { KEPT_NONE, KEPT_LINK, KEPT_MOVED };

/* Keeps the file at dst (if any) under the name bak: a second hard link, so
 * that dst never goes missing, or where the file system has no hard links,
 * dst itself moved there.  Returns KEPT_*, or -1 with errno set. */
static int keep_old(const char *dst, const char *bak)
{
    struct stat st;
    /* Nothing to keep; nor of a directory, which no file can replace (its
     * rename fails, and that is reported). */
    if (lstat(dst, &st))
        return errno == ENOENT ? KEPT_NONE : -1;
    if (S_ISDIR(st.st_mode))
        return KEPT_NONE;
    if (link(dst, bak) == 0)
        return KEPT_LINK;
    if (errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP && errno != EMLINK &&
        errno != EXDEV)
        return -1;
    return rename(dst, bak) == 0 ? KEPT_MOVED : -1;
}

/* Puts back the earlier version of the file at dst kept under bak (or
 * removes dst when there was none).  Returns 0, or -1 with errno set. */
static int restore_old(const char *dst, const char *bak, int kept)
{
    if (kept == KEPT_NONE)
        return unlink(dst) == 0 || errno == ENOENT ? 0 : -1;
    return rename(bak, dst);
}

int tr_file_batch_commit(tr_file_batch *b, tr_error *err)
{
    char bak[FILE_BATCH_MAX][4096 + 8];
    int kept[FILE_BATCH_MAX];
    int placed = 0, status = 0;
    for (int i = 0; i < b->n; i++)
        snprintf(bak[i], sizeof bak[i], "%s.old", b->tmp[i]);
    int k = 0;
    for (; k < b->n; k++) {
        kept[k] = keep_old(b->dst[k], bak[k]);
        if (kept[k] < 0) {
            status = tr_error_set(err, "%s: cannot keep the earlier file while replacing it: %s",
                                  b->dst[k], strerror(errno));
            break;
        }
    }
    for (; status == 0 && placed < b->n; placed++) {
        if (rename(b->tmp[placed], b->dst[placed])) {
            const int e = errno;
            const char *failed = b->dst[placed];
            /* All or nothing: the files already replaced get their earlier
             * version back. */
            int j = placed - 1;
            for (; j >= 0; j--)
                if (restore_old(b->dst[j], bak[j], kept[j]))
                    break;
            if (j >= 0)
                status = tr_error_set(err, "%s: cannot replace: %s; and %s could not be put "
                                      "back: %s (its earlier version is %s)", failed,
                                      strerror(e), b->dst[j], strerror(errno), bak[j]);
            else
                status = tr_error_set(err, "%s: cannot replace: %s", failed, strerror(e));
            break;
        }
    }
    /* Once the new files are in place the earlier versions go.  After a
     * failure, those put back above are where they belong, and the files not
     * replaced yet are left (or moved back) as they were. */
    for (int i = status ? placed : 0; i < k; i++) {
        if (status && kept[i] == KEPT_MOVED)
            rename(bak[i], b->dst[i]);
        else if (kept[i] != KEPT_NONE)
            unlink(bak[i]);
    }
    for (int i = placed; i < b->n; i++)
        unlink(b->tmp[i]);
    b->n = 0;
    return status;
}

void tr_file_batch_abort(tr_file_batch *b)
{
    for (int i = 0; i < b->n; i++)
        unlink(b->tmp[i]);
    b->n = 0;
}

int tr_file_write_atomic(const char *path, const void *data, size_t len, tr_error *err)
{
    tr_file_batch b = {0};
    if (tr_file_batch_add(&b, path, data, len, err))
        return -1;
    return tr_file_batch_commit(&b, err);
}

FILE *tr_file_open_regular(const char *path, tr_error *err)
{
    /* O_NONBLOCK: opening a FIFO for reading would wait for a writer. */
    const int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        tr_error_set(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    const int flags = fcntl(fd, F_GETFL);
    FILE *f = NULL;
    if (fstat(fd, &st))
        tr_error_set(err, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        tr_error_set(err, "%s: not a regular file", path);
    else if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
        tr_error_set(err, "%s: %s", path, strerror(errno));
    else if (!(f = fdopen(fd, "rb")))
        tr_error_set(err, "%s: %s", path, strerror(errno));
    if (!f)
        close(fd);
    return f;
}

int tr_file_read_all(const char *path, size_t max, uint8_t **data, size_t *len,
                     tr_error *err)
{
    *data = NULL;
    *len = 0;
    FILE *f = tr_file_open_regular(path, err);
    if (!f)
        return -1;
    struct stat st;
    int status = 0;
    if (fstat(fileno(f), &st)) {
        status = tr_error_set(err, "%s: %s", path, strerror(errno));
    } else if ((unsigned long long)st.st_size > max) {
        status = tr_error_set(err, "%s: %lld bytes is larger than the %zu this file may "
                              "have", path, (long long)st.st_size, max);
    } else {
        size_t n = (size_t)st.st_size;
        uint8_t *buf = malloc(n ? n : 1);
        if (!buf) {
            status = tr_error_set(err, "%s: out of memory", path);
        } else if (fread(buf, 1, n, f) != n || ferror(f)) {
            status = tr_error_set(err, "%s: read failed", path);
            free(buf);
        } else {
            *data = buf;
            *len = n;
        }
    }
    fclose(f);
    return status;
}

int tr_file_make_dirs(const char *dir, tr_error *err)
{
    char buf[4096];
    if (dir[0] == '\0')
        return tr_error_set(err, "empty directory name");
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return tr_error_set(err, "%s: path too long", dir);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0777) && errno != EEXIST)
            return tr_error_set(err, "%s: cannot create directory: %s", buf, strerror(errno));
        *p = c;
        if (c == '\0')
            break;
    }
    struct stat st;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode))
        return tr_error_set(err, "%s: not a directory", dir);
    return 0;
}

int tr_file_check_writable(const char *dir, tr_error *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s/.trainer-probe-XXXXXX", dir) >= (int)sizeof tmp)
        return tr_error_set(err, "%s: path too long", dir);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return tr_error_set(err, "%s: cannot write there: %s", dir, strerror(errno));
    close(fd);
    unlink(tmp);
    return 0;
}

int tr_file_lock_dir(const char *dir, int *fd_out, tr_error *err)
{
    char path[4096];
    *fd_out = -1;
    if (snprintf(path, sizeof path, "%s/.trainer.lock", dir) >= (int)sizeof path)
        return tr_error_set(err, "%s: path too long", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return tr_error_set(err, "%s: cannot create a lock file there: %s", dir, strerror(errno));
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &lk) == 0) {
        *fd_out = fd;
        return 0;
    }
    const int e = errno;
    struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    const int known = fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK;
    close(fd);
    if (e != EAGAIN && e != EACCES)
        return tr_error_set(err, "%s: cannot lock %s: %s", dir, path, strerror(e));
    if (known)
        return tr_error_set(err, "%s is in use by process %ld", dir, (long)who.l_pid);
    return tr_error_set(err, "%s is in use by another process", dir);
}

void tr_file_unlock_dir(int fd)
{
    if (fd >= 0)
        close(fd);
}
