/* libFuzzer harness: the training-state decoder, on the input as it is and on
 * a copy given its correct CRC-32 (see crc_variant.h).  Whatever the decoder
 * accepts must encode back to the same bytes when it is of the current
 * version; an older one is written in the current version, which must then
 * read back and encode to the same bytes again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "crc_variant.h"

/* Decodes data and encodes it again into *again (NULL when the decoder
 * refuses it). */
static void round_trip(const uint8_t *data, size_t size, uint8_t **again, size_t *len)
{
    tr_train_state st;
    tr_model m;
    float *m1, *m2;
    tr_error err;
    *again = NULL;
    if (tr_state_decode(&st, &m, &m1, &m2, data, size, "fuzz", &err))
        return;
    tr_optimizer opt = {.len = m.len, .m = m1, .v = m2, .step = st.opt_step};
    if (tr_state_encode(&st, &m, &opt, again, len, &err))
        *again = NULL;
    free(st.history);
    tr_model_buffer_free(st.best_weights);
    tr_model_buffer_free(m1);
    tr_model_buffer_free(m2);
    tr_model_free(&m);
}

static void check_one(const uint8_t *data, size_t size)
{
    uint8_t *again, *twice;
    size_t len, len2;
    round_trip(data, size, &again, &len);
    if (!again)
        return;
    const uint32_t version = size >= 12 ? (uint32_t)data[8] | (uint32_t)data[9] << 8 |
                                              (uint32_t)data[10] << 16 | (uint32_t)data[11] << 24
                                        : 0;
    if (version == STATE_VERSION) {
        if (len != size || memcmp(again, data, size) != 0)
            abort();
    } else {
        round_trip(again, len, &twice, &len2);
        if (!twice || len2 != len || memcmp(twice, again, len) != 0)
            abort();
        free(twice);
    }
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    with_crc_variant(data, size, check_one);
    return 0;
}
