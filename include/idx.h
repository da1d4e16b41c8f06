/* idx.h - reading (and writing) IDX files (the MNIST format), plain or gzip-compressed.
 *
 * An IDX file is a 4-byte magic (two zero bytes, a type code, the number of
 * dimensions), one big-endian u32 per dimension, then the items.  Only the
 * unsigned-byte type (0x08) is accepted, which is what MNIST and Fashion-MNIST
 * use.  Compression is detected from the content, not the file name. */
#ifndef TRAINER_IDX_H
#define TRAINER_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define IDX_MAX_DIMS 4
/* The largest payload accepted (2 GiB): larger than any dataset this engine
 * is meant for (MNIST is 47 MB). */
#define IDX_MAX_BYTES ((size_t)1 << 31)

typedef struct {
    int ndim;                    /* 1 to IDX_MAX_DIMS */
    uint32_t dims[IDX_MAX_DIMS]; /* dims[0] is the item count */
    size_t item_size;            /* bytes per item: product of dims[1..ndim) */
    uint8_t *data;               /* dims[0] * item_size bytes, owned */
    uint32_t crc;                /* tr_idx_load: CRC-32 of the whole file as read, header
                                    included (decompressed, for gzip) */
} tr_idx_array;

/* Parses an uncompressed IDX image held in memory.  name is used in messages
 * only.  The header is checked against len before anything is allocated.
 * On success out->data is a new copy the caller frees with tr_idx_free. */
int tr_idx_parse(tr_idx_array *out, const uint8_t *buf, size_t len, const char *name,
                 tr_error *err);

/* Reads path (plain or gzip) and parses it as tr_idx_parse does.  A gzip file
 * may hold several members one after the other (as gzip itself reads them);
 * any other bytes after the gzip data are an error.  With items nonzero, a
 * header announcing another item count is refused before the items are read.
 *
 * Memory: the buffer grows with the bytes actually read (decompressed), and
 * reading stops one byte past the size the header announces, so a file costs
 * at most what its header announces and it really holds, and never more than
 * IDX_MAX_BYTES.  Deflate packs up to about 1000 bytes into one, so a small
 * gzip file can still hold, and cost, that much. */
int tr_idx_load(tr_idx_array *out, const char *path, uint32_t items, tr_error *err);

/* The IDX file of unsigned bytes with ndim dimensions dims (dims[0] the item
 * count) and items data: a new buffer in *out of *len bytes. */
int tr_idx_encode(int ndim, const uint32_t *dims, const uint8_t *data, uint8_t **out,
                  size_t *len, tr_error *err);

/* Frees out->data; safe on a zeroed or already freed array. */
void tr_idx_free(tr_idx_array *a);

#endif
