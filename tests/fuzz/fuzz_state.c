/* libFuzzer harness: the training-state decoder, on the input as it is and on
 * a copy given its correct CRC-32 (see crc_variant.h).  Whatever the decoder
 * accepts must encode back to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "crc_variant.h"

static void check_one(const uint8_t *data, size_t size)
{
    train_state st;
    mlp m;
    float *m1, *m2;
    tr_error err;
    if (state_decode(&st, &m, &m1, &m2, data, size, "fuzz", &err))
        return;
    adam opt = {.len = m.len, .m = m1, .v = m2, .step = st.adam_step};
    uint8_t *again;
    size_t len;
    if (state_encode(&st, &m, &opt, &again, &len, &err) == 0) {
        if (len != size || memcmp(again, data, size) != 0)
            abort();
        free(again);
    }
    free(st.history);
    mlp_buffer_free(m1);
    mlp_buffer_free(m2);
    mlp_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    with_crc_variant(data, size, check_one);
    return 0;
}
