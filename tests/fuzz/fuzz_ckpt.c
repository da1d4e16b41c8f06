/* libFuzzer harness: the checkpoint decoder, on the input as it is and on a
 * copy given its correct CRC-32 (see crc_variant.h).
 * Whatever the decoder accepts must encode back to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "crc_variant.h"

static void check_one(const uint8_t *data, size_t size)
{
    model m;
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
    model_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    with_crc_variant(data, size, check_one);
    return 0;
}
