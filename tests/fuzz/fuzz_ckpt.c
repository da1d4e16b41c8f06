/* libFuzzer harness: the checkpoint decoder, on the input as it is and on a
 * copy whose last 4 bytes are made its correct CRC-32 (random mutations almost
 * never pass the checksum, which would leave the fields behind it unexplored).
 * Whatever the decoder accepts must encode back to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ckpt.h"

static void check_one(const uint8_t *data, size_t size)
{
    mlp m;
    tr_error err;
    if (ckpt_decode(&m, data, size, "fuzz", &err))
        return;
    uint8_t *again;
    size_t len;
    if (ckpt_encode(&m, &again, &len, &err) == 0) {
        if (len != size || memcmp(again, data, size) != 0)
            abort();
        free(again);
    }
    mlp_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_one(data, size);
    if (size < 4)
        return 0;
    uint8_t *fixed = malloc(size);
    memcpy(fixed, data, size);
    uint32_t crc = (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), fixed, size - 4);
    for (int i = 0; i < 4; i++)
        fixed[size - 4 + i] = (uint8_t)(crc >> (8 * i));
    check_one(fixed, size);
    free(fixed);
    return 0;
}
