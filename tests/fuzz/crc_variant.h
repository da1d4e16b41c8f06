/* crc_variant.h - runs a check on a fuzz input as it is and on a copy whose
 * last 4 bytes are made its correct CRC-32: random mutations almost never pass
 * a checksum, which would leave the fields behind it unexplored. */
#ifndef TRAINER_FUZZ_CRC_VARIANT_H
#define TRAINER_FUZZ_CRC_VARIANT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static inline void with_crc_variant(const uint8_t *data, size_t size,
                                    void (*check)(const uint8_t *, size_t))
{
    check(data, size);
    if (size < 4)
        return;
    uint8_t *fixed = malloc(size);
    if (!fixed)
        return;
    memcpy(fixed, data, size);
    uint32_t crc = (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), fixed, size - 4);
    for (int i = 0; i < 4; i++)
        fixed[size - 4 + i] = (uint8_t)(crc >> (8 * i));
    check(fixed, size);
    free(fixed);
}

#endif
