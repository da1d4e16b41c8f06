/* libFuzzer harness: the history.csv parser, and a format/parse round trip of
 * whatever it accepts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tr_epoch_stats *rows;
    int n, with_lr;
    tr_error err;
    if (tr_history_parse(&rows, &n, &with_lr, (const char *)data, size, "fuzz", &err))
        return 0;
    if (n < 1)
        abort();
    char *text;
    size_t len;
    if (tr_history_format(rows, n, with_lr, &text, &len, &err) == 0) {
        tr_epoch_stats *again;
        int m, again_lr;
        if (tr_history_parse(&again, &m, &again_lr, text, len, "fuzz", &err) || m != n ||
            again_lr != with_lr)
            abort(); /* what it writes, it must read */
        free(again);
        free(text);
    }
    free(rows);
    return 0;
}
