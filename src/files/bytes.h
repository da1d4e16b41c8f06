/* bytes.h - little-endian fields in a byte buffer, for the binary formats
 * (internal to the library).  The reader never reads past its end: once a
 * read would, it sets `bad` and returns zeros. */
#ifndef TRAINER_BYTES_H
#define TRAINER_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>

typedef struct {
    uint8_t *p;
} byte_writer;

typedef struct {
    const uint8_t *p, *end;
    int bad;
} byte_reader;

static inline void put_u32(byte_writer *w, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        *w->p++ = (uint8_t)(v >> (8 * i));
}

static inline void put_u64(byte_writer *w, uint64_t v)
{
    put_u32(w, (uint32_t)v);
    put_u32(w, (uint32_t)(v >> 32));
}

static inline void put_f32(byte_writer *w, float f)
{
    uint32_t bits;
    memcpy(&bits, &f, 4);
    put_u32(w, bits);
}

static inline void put_f64(byte_writer *w, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, 8);
    put_u64(w, bits);
}

static inline void put_bytes(byte_writer *w, const void *src, size_t n)
{
    memcpy(w->p, src, n);
    w->p += n;
}

static inline int reader_take(byte_reader *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return 0;
    }
    return 1;
}

static inline uint32_t get_u32(byte_reader *r)
{
    if (!reader_take(r, 4))
        return 0;
    uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
                 (uint32_t)r->p[3] << 24;
    r->p += 4;
    return v;
}

static inline uint64_t get_u64(byte_reader *r)
{
    uint64_t lo = get_u32(r);
    return lo | (uint64_t)get_u32(r) << 32;
}

static inline float get_f32(byte_reader *r)
{
    uint32_t bits = get_u32(r);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline double get_f64(byte_reader *r)
{
    uint64_t bits = get_u64(r);
    double d;
    memcpy(&d, &bits, 8);
    return d;
}

static inline void get_bytes(byte_reader *r, void *dst, size_t n)
{
    if (!reader_take(r, n)) {
        memset(dst, 0, n);
        return;
    }
    memcpy(dst, r->p, n);
    r->p += n;
}

/* Whether the last 4 bytes of data[0..len) (len >= 4) are the CRC-32 of the
 * rest; gives both values for messages. */
static inline int crc_trailer_ok(const uint8_t *data, size_t len, uint32_t *stored,
                                 uint32_t *computed)
{
    *stored = (uint32_t)data[len - 4] | (uint32_t)data[len - 3] << 8 |
              (uint32_t)data[len - 2] << 16 | (uint32_t)data[len - 1] << 24;
    *computed = (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), data, len - 4);
    return *stored == *computed;
}

#endif
