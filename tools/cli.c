#include "cli.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static const char *program = "trainer";

void cli_set_program(const char *name)
{
    program = name;
}

const char *cli_program(void)
{
    return program;
}

int cli_bad_flag(const char *flag, const char *value, const char *want)
{
    fprintf(stderr, "%s: %s '%s': %s (see --help)\n", program, flag, value, want);
    return -1;
}

int cli_image_size(const char *arg, int *rows, int *cols)
{
    char *end;
    errno = 0;
    const long h = strtol(arg, &end, 10);
    long w = h;
    if (*end == 'x' || *end == 'X') {
        const char *at = end + 1;
        w = strtol(at, &end, 10);
        if (end == at || !(*at >= '0' && *at <= '9'))
            w = 0;
    }
    if (end == arg || *end || errno || h < 1 || w < 1 || h > 4096 || w > 4096 ||
        !(arg[0] >= '0' && arg[0] <= '9'))
        return cli_bad_flag("--image-size", arg, "expected HEIGHTxWIDTH, e.g. 28x28 or 32x32 "
                            "(1 to 4096 each)");
    *rows = (int)h;
    *cols = (int)w;
    return 0;
}

int cli_color(const char *arg, int *channels)
{
    if (!strcmp(arg, "grayscale") || !strcmp(arg, "greyscale"))
        *channels = 1;
    else if (!strcmp(arg, "rgb"))
        *channels = 3;
    else
        return cli_bad_flag("--color", arg, "expected grayscale or rgb");
    return 0;
}

int cli_long(const char *flag, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    const long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno || v < lo || v > hi) {
        char want[96];
        snprintf(want, sizeof want, "expected a whole number from %ld to %ld", lo, hi);
        return cli_bad_flag(flag, s, want);
    }
    *out = v;
    return 0;
}

int cli_double(const char *flag, const char *s, double lo, int lo_open, double hi,
               int hi_open, double *out)
{
    char *end;
    errno = 0;
    const double v = strtod(s, &end);
    const int underflow = errno == ERANGE && fabs(v) <= DBL_MIN;
    if (end == s || *end != '\0' || (errno && !underflow) || !isfinite(v) ||
        (lo_open ? v <= lo : v < lo) || (hi_open ? v >= hi : v > hi)) {
        char want[96];
        snprintf(want, sizeof want, "expected a number from %g%s to %g%s", lo,
                 lo_open ? " (excluded)" : "", hi, hi_open ? " (excluded)" : "");
        return cli_bad_flag(flag, s, want);
    }
    *out = v;
    return 0;
}

const char *cli_exact(char *buf, size_t size, double v)
{
    for (int digits = 6; digits < 17; digits++) {
        snprintf(buf, size, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            return buf;
    }
    snprintf(buf, size, "%.17g", v);
    return buf;
}

/* The error, naming the process when there are several. */
void cli_fail_as(const tr_error *err, int rank, int ranks)
{
    if (ranks > 1) {
        char host[256] = "?";
        gethostname(host, sizeof host - 1);
        fprintf(stderr, "trainer: rank %d (%s): %s\n", rank, host, err->msg);
    } else {
        fprintf(stderr, "trainer: %s\n", err->msg);
    }
}

/* stderr to /dev/null; returns the descriptor that cli_restore_stderr puts
 * back (-1 if it could not be kept). */
int cli_silence_stderr(void)
{
    fflush(stderr);
    const int kept = dup(STDERR_FILENO);
    FILE *null = fopen("/dev/null", "w");
    if (kept < 0 || !null) {
        if (null)
            fclose(null);
        if (kept >= 0)
            close(kept);
        return -1;
    }
    dup2(fileno(null), STDERR_FILENO);
    fclose(null);
    return kept;
}

void cli_restore_stderr(int kept)
{
    if (kept < 0)
        return;
    fflush(stderr);
    dup2(kept, STDERR_FILENO);
    close(kept);
}

void cli_print_shell_word(FILE *f, const char *word)
{
    if (*word && strspn(word, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                              "0123456789_./:=+,@%-") == strlen(word)) {
        fputs(word, f);
        return;
    }
    fputc('\'', f);
    for (const char *c = word; *c; c++) {
        if (*c == '\'')
            fputs("'\\''", f); /* close, an escaped quote, reopen */
        else
            fputc(*c, f);
    }
    fputc('\'', f);
}
