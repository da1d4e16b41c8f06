/* libFuzzer harness: the history.csv parser, and a format/parse round trip of
 * whatever it accepts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    epoch_stats *rows;
    int n;
    tr_error err;
    if (history_parse(&rows, &n, (const char *)data, size, "fuzz", &err))
        return 0;
    if (n < 1)
        abort();
    char *text;
    size_t len;
    if (history_format(rows, n, &text, &len, &err) == 0) {
        epoch_stats *again;
        int m;
        if (history_parse(&again, &m, text, len, "fuzz", &err) || m != n)
            abort(); /* what it writes, it must read */
        free(again);
        free(text);
    }
    free(rows);
    return 0;
}
