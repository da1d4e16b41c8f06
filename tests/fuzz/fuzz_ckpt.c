/* libFuzzer harness: the checkpoint decoder.  Whatever it accepts must encode
 * back to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mlp m;
    tr_error err;
    if (ckpt_decode(&m, data, size, "fuzz", &err))
        return 0;
    uint8_t *again;
    size_t len;
    if (ckpt_encode(&m, &again, &len, &err) == 0) {
        if (len != size || memcmp(again, data, size) != 0)
            abort();
        free(again);
    }
    mlp_free(&m);
    return 0;
}
