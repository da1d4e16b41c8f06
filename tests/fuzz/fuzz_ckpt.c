/* libFuzzer harness: the checkpoint decoder, on the input as it is and on a
 * copy given its correct CRC-32 (see crc_variant.h).  Whatever the decoder
 * accepts must encode back to the same bytes when it is of the current
 * version; an older one is written in the current version, which must then
 * read back to the same parameters and encode to the same bytes again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "crc_variant.h"

/* Decodes data and encodes it again into *again (NULL when the decoder
 * refuses it); *params gets a copy of the parameters. */
static void round_trip(const uint8_t *data, size_t size, uint8_t **again, size_t *len,
                       float **params, size_t *n)
{
    tr_model m;
    tr_error err;
    *again = NULL;
    if (tr_ckpt_decode(&m, data, size, "fuzz", &err))
        return;
    if (tr_ckpt_encode(&m, again, len, &err) == 0) {
        *n = m.len;
        *params = malloc(sizeof(float) * m.len);
        if (!*params)
            abort();
        memcpy(*params, m.params, sizeof(float) * m.len);
    }
    tr_model_free(&m);
}

static void check_one(const uint8_t *data, size_t size)
{
    uint8_t *again, *twice;
    size_t len, len2, n, n2;
    float *p, *p2;
    round_trip(data, size, &again, &len, &p, &n);
    if (!again)
        return;
    const uint32_t version = (uint32_t)data[8] | (uint32_t)data[9] << 8 |
                             (uint32_t)data[10] << 16 | (uint32_t)data[11] << 24;
    if (version == CKPT_VERSION) {
        if (len != size || memcmp(again, data, size) != 0)
            abort();
    } else {
        round_trip(again, len, &twice, &len2, &p2, &n2);
        if (!twice || len2 != len || memcmp(twice, again, len) != 0 || n2 != n ||
            memcmp(p, p2, sizeof(float) * n) != 0)
            abort();
        free(twice);
        free(p2);
    }
    free(p);
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    with_crc_variant(data, size, check_one);
    return 0;
}
