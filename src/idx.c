#include "idx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_TYPE_UBYTE 0x08
/* Larger than any dataset this engine is meant for (MNIST is 47 MB), small
 * enough that a forged header cannot exhaust memory. */
#define IDX_MAX_BYTES ((size_t)1 << 31)

/* zlib's gzerror() text, without the "path: " it puts in front. */
static const char *gz_message(gzFile f, const char *path, int *code)
{
    const char *msg = gzerror(f, code);
    size_t n = strlen(path);
    if (strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
        msg += n + 2;
    return msg;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

/* Reads the header of buf and the total size it announces.  Returns 0 when the
 * header is complete and valid, 1 when more bytes are needed, -1 on error. */
static int parse_header(const uint8_t *buf, size_t len, const char *name,
                        idx_array *hdr, size_t *total, tr_error *err)
{
    if (len < 4)
        return 1;
    if (buf[0] != 0 || buf[1] != 0)
        return error_set(err, "%s: not an IDX file (magic bytes %02x %02x %02x %02x)",
                         name, buf[0], buf[1], buf[2], buf[3]);
    if (buf[2] != IDX_TYPE_UBYTE)
        return error_set(err, "%s: IDX element type 0x%02x is not supported "
                         "(only unsigned bytes, 0x08)", name, buf[2]);
    int ndim = buf[3];
    if (ndim < 1 || ndim > IDX_MAX_DIMS)
        return error_set(err, "%s: IDX header has %d dimensions (1 to %d supported)",
                         name, ndim, IDX_MAX_DIMS);
    size_t header = 4 + 4 * (size_t)ndim;
    if (len < header)
        return 1;
    size_t bytes = 1;
    hdr->ndim = ndim;
    hdr->item_size = 1;
    for (int i = 0; i < ndim; i++) {
        uint32_t d = be32(buf + 4 + 4 * i);
        hdr->dims[i] = d;
        if (d == 0)
            return error_set(err, "%s: dimension %d of the IDX header is 0", name, i);
        if (bytes > IDX_MAX_BYTES / d)
            return error_set(err, "%s: IDX header announces more than %zu bytes",
                             name, IDX_MAX_BYTES);
        bytes *= d;
        if (i > 0)
            hdr->item_size *= d;
    }
    *total = header + bytes;
    return 0;
}

/* Checks that buf holds exactly one well-formed IDX array; fills hdr (no data)
 * and the offset of the payload. */
static int check_layout(const uint8_t *buf, size_t len, const char *name,
                        idx_array *hdr, size_t *offset, tr_error *err)
{
    if (len == 0)
        return error_set(err, "%s: file is empty", name);
    size_t total = 0;
    int r = parse_header(buf, len, name, hdr, &total, err);
    if (r < 0)
        return -1;
    if (r > 0)
        return error_set(err, "%s: truncated IDX header (%zu bytes)", name, len);
    if (len < total)
        return error_set(err, "%s: truncated: header announces %u items of %zu bytes "
                         "(%zu bytes in all) but the file has %zu",
                         name, hdr->dims[0], hdr->item_size, total, len);
    if (len > total)
        return error_set(err, "%s: unexpected bytes after the %u items the header "
                         "announces", name, hdr->dims[0]);
    *offset = 4 + 4 * (size_t)hdr->ndim;
    return 0;
}

int idx_parse(idx_array *out, const uint8_t *buf, size_t len, const char *name,
              tr_error *err)
{
    memset(out, 0, sizeof *out);
    idx_array hdr = {0};
    size_t offset = 0;
    if (check_layout(buf, len, name, &hdr, &offset, err))
        return -1;
    size_t payload = len - offset;
    hdr.data = malloc(payload);
    if (!hdr.data)
        return error_set(err, "%s: out of memory for %zu bytes", name, payload);
    memcpy(hdr.data, buf + offset, payload);
    *out = hdr;
    return 0;
}

int idx_load(idx_array *out, const char *path, tr_error *err)
{
    memset(out, 0, sizeof *out);
    gzFile f = gzopen(path, "rb");
    if (!f)
        return error_set(err, "%s: cannot open: %s", path,
                         errno ? strerror(errno) : "out of memory");
    size_t cap = 1 << 16, len = 0, total = 0;
    int have_total = 0;
    uint8_t *buf = malloc(cap);
    int status = 0;
    if (!buf) {
        status = error_set(err, "%s: out of memory", path);
        goto done;
    }
    for (;;) {
        if (len == cap) {
            size_t want = cap * 2;
            if (have_total && want > total + 1)
                want = total + 1;
            uint8_t *nb = realloc(buf, want);
            if (!nb) {
                status = error_set(err, "%s: out of memory for %zu bytes", path, want);
                goto done;
            }
            buf = nb;
            cap = want;
        }
        size_t room = cap - len;
        unsigned chunk = room > (1u << 30) ? 1u << 30 : (unsigned)room;
        int n = gzread(f, buf + len, chunk);
        if (n < 0) {
            int code;
            const char *msg = gz_message(f, path, &code);
            if (code == Z_ERRNO)
                status = error_set(err, "%s: read failed: %s", path, strerror(errno));
            else
                status = error_set(err, "%s: corrupt gzip data (%s)", path, msg);
            goto done;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (!have_total) {
            idx_array hdr;
            int r = parse_header(buf, len, path, &hdr, &total, err);
            if (r < 0) {
                status = -1;
                goto done;
            }
            have_total = r == 0;
        }
        /* One byte past the announced size is enough to know there is junk. */
        if (have_total && len > total)
            break;
    }
    {
        int code;
        const char *msg = gz_message(f, path, &code);
        if (code != Z_OK && code != Z_STREAM_END) {
            status = error_set(err, "%s: corrupt or truncated gzip data (%s)", path, msg);
            goto done;
        }
    }
    {
        /* Hand the buffer over instead of copying: the training images are
         * most of the program's memory. */
        idx_array hdr = {0};
        size_t offset = 0;
        if (check_layout(buf, len, path, &hdr, &offset, err)) {
            status = -1;
            goto done;
        }
        memmove(buf, buf + offset, len - offset);
        uint8_t *shrunk = realloc(buf, len - offset);
        hdr.data = shrunk ? shrunk : buf;
        buf = NULL;
        *out = hdr;
    }
done:
    free(buf);
    gzclose(f);
    return status;
}

void idx_free(idx_array *a)
{
    free(a->data);
    a->data = NULL;
}
