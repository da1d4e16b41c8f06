#include "idx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fileio.h"

#define IDX_TYPE_UBYTE 0x08

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

/* Reads the header of buf and the total size it announces.  Returns 0 when the
 * header is complete and valid, 1 when more bytes are needed, -1 on error. */
static int parse_header(const uint8_t *buf, size_t len, const char *name,
                        tr_idx_array *hdr, size_t *total, tr_error *err)
{
    if (len < 4)
        return 1;
    if (buf[0] != 0 || buf[1] != 0)
        return tr_error_set(err, "%s: not an IDX file (magic bytes %02x %02x %02x %02x)",
                            name, buf[0], buf[1], buf[2], buf[3]);
    if (buf[2] != IDX_TYPE_UBYTE)
        return tr_error_set(err, "%s: IDX element type 0x%02x is not supported "
                            "(only unsigned bytes, 0x08)", name, buf[2]);
    int ndim = buf[3];
    if (ndim < 1 || ndim > IDX_MAX_DIMS)
        return tr_error_set(err, "%s: IDX header has %d dimensions (1 to %d supported)",
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
            return tr_error_set(err, "%s: dimension %d of the IDX header is 0", name, i);
        if (bytes > IDX_MAX_BYTES / d)
            return tr_error_set(err, "%s: IDX header announces more than %zu bytes",
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
                        tr_idx_array *hdr, size_t *offset, tr_error *err)
{
    if (len == 0)
        return tr_error_set(err, "%s: file is empty", name);
    size_t total = 0;
    int r = parse_header(buf, len, name, hdr, &total, err);
    if (r < 0)
        return -1;
    if (r > 0)
        return tr_error_set(err, "%s: truncated IDX header (%zu bytes)", name, len);
    if (len < total)
        return tr_error_set(err, "%s: truncated: header announces %u items of %zu bytes "
                            "(%zu bytes in all) but the file has %zu",
                            name, hdr->dims[0], hdr->item_size, total, len);
    if (len > total)
        return tr_error_set(err, "%s: unexpected bytes after the %u items the header "
                            "announces", name, hdr->dims[0]);
    *offset = 4 + 4 * (size_t)hdr->ndim;
    return 0;
}

int tr_idx_parse(tr_idx_array *out, const uint8_t *buf, size_t len, const char *name,
                 tr_error *err)
{
    memset(out, 0, sizeof *out);
    tr_idx_array hdr = {0};
    size_t offset = 0;
    if (check_layout(buf, len, name, &hdr, &offset, err))
        return -1;
    size_t payload = len - offset;
    hdr.data = malloc(payload);
    if (!hdr.data)
        return tr_error_set(err, "%s: out of memory for %zu bytes", name, payload);
    memcpy(hdr.data, buf + offset, payload);
    *out = hdr;
    return 0;
}

int tr_idx_encode(int ndim, const uint32_t *dims, const uint8_t *data, uint8_t **out,
                  size_t *len, tr_error *err)
{
    if (ndim < 1 || ndim > IDX_MAX_DIMS)
        return tr_error_set(err, "IDX: %d dimensions, not 1 to %d", ndim, IDX_MAX_DIMS);
    size_t items = 1;
    for (int d = 0; d < ndim; d++)
        items *= dims[d];
    const size_t header = 4 + 4 * (size_t)ndim;
    uint8_t *buf = malloc(header + items);
    if (!buf)
        return tr_error_set(err, "IDX: out of memory for %zu bytes", header + items);
    buf[0] = buf[1] = 0;
    buf[2] = 0x08;
    buf[3] = (uint8_t)ndim;
    for (int d = 0; d < ndim; d++)
        for (int k = 0; k < 4; k++)
            buf[4 + 4 * d + k] = (uint8_t)(dims[d] >> (24 - 8 * k));
    memcpy(buf + header, data, items);
    *out = buf;
    *len = header + items;
    return 0;
}

/* The reading side of tr_idx_load: a file read in chunks, its bytes handed to
 * the caller as they are or inflated when the file is gzip. */
typedef struct {
    FILE *f;
    const char *path;
    uint8_t in[1 << 16];
    z_stream zs;
    int gzip, zs_ready, member_open;
    uint32_t crc;       /* CRC-32 of the bytes produced so far */
    uint64_t member_len; /* bytes the open gzip member has produced */
} idx_reader;

/* Moves what is left of the input to the front of in[] and reads more after
 * it.  Returns the bytes now available, 0 at the end of the file, -1 on a
 * read error (err filled). */
static long refill(idx_reader *rd, tr_error *err)
{
    size_t have = rd->zs.avail_in;
    if (have && rd->zs.next_in != rd->in)
        memmove(rd->in, rd->zs.next_in, have);
    size_t n = fread(rd->in + have, 1, sizeof rd->in - have, rd->f);
    if (n == 0 && ferror(rd->f))
        return tr_error_set(err, "%s: read failed: %s", rd->path, strerror(errno));
    rd->zs.next_in = rd->in;
    rd->zs.avail_in = (uInt)(have + n);
    return (long)(have + n);
}

/* After a gzip member's end: another member may follow (as `cat a.gz b.gz`
 * makes, and gzip reads), anything else is an error.  Returns 1 when a member
 * follows, 0 at the end of the file, -1 on error. */
static int next_member(idx_reader *rd, tr_error *err)
{
    while (rd->zs.avail_in < 2) {
        size_t before = rd->zs.avail_in;
        long n = refill(rd, err);
        if (n < 0)
            return -1;
        if ((size_t)n == before)
            break;
    }
    if (rd->zs.avail_in == 0)
        return 0;
    if (rd->zs.avail_in < 2 || rd->zs.next_in[0] != 0x1f || rd->zs.next_in[1] != 0x8b)
        return tr_error_set(err, "%s: unexpected bytes after the end of the gzip data", rd->path);
    if (inflateReset(&rd->zs) != Z_OK)
        return tr_error_set(err, "%s: zlib could not start the next gzip member", rd->path);
    return 1;
}

/* Fills out[0..room) with the file's next bytes (inflated for gzip).  Returns
 * how many (0 at the end of the data), or -1 on error. */
static long produce(idx_reader *rd, uint8_t *out, size_t room, tr_error *err)
{
    if (!rd->gzip) {
        size_t n = rd->zs.avail_in < room ? rd->zs.avail_in : room;
        memcpy(out, rd->zs.next_in, n);
        rd->zs.next_in += n;
        rd->zs.avail_in -= (uInt)n;
        if (n == 0) {
            n = fread(out, 1, room, rd->f);
            if (n == 0 && ferror(rd->f))
                return tr_error_set(err, "%s: read failed: %s", rd->path, strerror(errno));
        }
        rd->crc = (uint32_t)crc32_z(rd->crc, out, n);
        return (long)n;
    }
    room = room > (1u << 30) ? 1u << 30 : room;
    rd->zs.next_out = out;
    rd->zs.avail_out = (uInt)room;
    while (rd->zs.avail_out == room) {
        if (!rd->member_open) {
            int more = next_member(rd, err);
            if (more <= 0)
                return more;
            rd->member_open = 1;
            rd->member_len = 0;
        }
        if (rd->zs.avail_in == 0) {
            long n = refill(rd, err);
            if (n < 0)
                return -1;
            if (n == 0)
                return tr_error_set(err, "%s: truncated gzip data", rd->path);
        }
        const size_t before = rd->zs.avail_out;
        int r = inflate(&rd->zs, Z_NO_FLUSH);
        rd->member_len += before - rd->zs.avail_out;
        if (r == Z_STREAM_END) {
            /* For gzip, zlib keeps the member's CRC-32 (checked against its
             * trailer) in adler: the fingerprint costs nothing more. */
            rd->crc = (uint32_t)crc32_combine(rd->crc, rd->zs.adler, (z_off_t)rd->member_len);
            rd->member_open = 0;
        } else if (r == Z_MEM_ERROR) {
            return tr_error_set(err, "%s: out of memory for zlib", rd->path);
        } else if (r != Z_OK && r != Z_BUF_ERROR) {
            return tr_error_set(err, "%s: corrupt gzip data (%s)", rd->path,
                                rd->zs.msg ? rd->zs.msg : "inflate failed");
        }
    }
    return (long)(room - rd->zs.avail_out);
}

int tr_idx_load(tr_idx_array *out, const char *path, uint32_t items, tr_error *err)
{
    memset(out, 0, sizeof *out);
    idx_reader *rd = calloc(1, sizeof *rd);
    if (!rd)
        return tr_error_set(err, "%s: out of memory", path);
    rd->path = path;
    size_t cap = 1 << 16, len = 0, total = 0;
    int have_total = 0;
    uint8_t *buf = NULL;
    int status = 0;
    rd->f = tr_file_open_regular(path, err);
    if (!rd->f) {
        status = -1;
        goto done;
    }
    if (refill(rd, err) < 0) {
        status = -1;
        goto done;
    }
    rd->gzip = rd->zs.avail_in >= 2 && rd->in[0] == 0x1f && rd->in[1] == 0x8b;
    if (rd->gzip) {
        if (inflateInit2(&rd->zs, 16 + MAX_WBITS) != Z_OK) {
            status = tr_error_set(err, "%s: zlib could not start", path);
            goto done;
        }
        rd->zs_ready = 1;
    }
    if (!(buf = malloc(cap))) {
        status = tr_error_set(err, "%s: out of memory", path);
        goto done;
    }
    for (;;) {
        if (len == cap) {
            size_t want = cap * 2;
            if (have_total && want > total + 1)
                want = total + 1;
            uint8_t *nb = realloc(buf, want);
            if (!nb) {
                status = tr_error_set(err, "%s: out of memory for %zu bytes", path, want);
                goto done;
            }
            buf = nb;
            cap = want;
        }
        long n = produce(rd, buf + len, cap - len, err);
        if (n < 0) {
            status = -1;
            goto done;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (!have_total) {
            tr_idx_array hdr;
            int r = parse_header(buf, len, path, &hdr, &total, err);
            if (r < 0) {
                status = -1;
                goto done;
            }
            have_total = r == 0;
            if (have_total && items && hdr.dims[0] != items) {
                status = tr_error_set(err, "%s: the header announces %u items, %u expected", path,
                                      hdr.dims[0], items);
                goto done;
            }
        }
        /* One byte past the announced size is enough to know there is junk. */
        if (have_total && len > total)
            break;
    }
    {
        /* Hand the buffer over instead of copying: the training images are
         * most of the program's memory. */
        tr_idx_array hdr = {0};
        size_t offset = 0;
        if (check_layout(buf, len, path, &hdr, &offset, err)) {
            status = -1;
            goto done;
        }
        memmove(buf, buf + offset, len - offset);
        uint8_t *shrunk = realloc(buf, len - offset);
        hdr.data = shrunk ? shrunk : buf;
        hdr.crc = rd->crc;
        buf = NULL;
        *out = hdr;
    }
done:
    free(buf);
    if (rd->zs_ready)
        inflateEnd(&rd->zs);
    if (rd->f)
        fclose(rd->f);
    free(rd);
    return status;
}

void tr_idx_free(tr_idx_array *a)
{
    free(a->data);
    a->data = NULL;
}
