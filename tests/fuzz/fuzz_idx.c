/* libFuzzer harness: the IDX reader, from memory and through a file (which
 * takes the gzip path when the input starts like gzip). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "idx.h"

static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tr_idx_array a;
    tr_error err;
    if (tr_idx_parse(&a, data, size, "fuzz", &err) == 0) {
        if (a.item_size * a.dims[0] + 4 + 4 * (size_t)a.ndim != size)
            abort(); /* accepted a file whose size does not match its header */
        tr_idx_free(&a);
    }
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/fuzz-idx-%d", (int)getpid());
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    if (tr_idx_load(&a, path, 0, &err) == 0)
        tr_idx_free(&a);
    return 0;
}
