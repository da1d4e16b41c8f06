/* cli.h - what the programs' command lines share: number flags read whole
 * and range-checked, their messages, and the program's name in them. */
#ifndef TRAINER_TOOLS_CLI_H
#define TRAINER_TOOLS_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "error.h"

/* The name messages start with ("trainer", "trainer-plot"). */
void cli_set_program(const char *name);
const char *cli_program(void);

/* Says "NAME: FLAG 'VALUE': WANT (see --help)" on stderr; returns -1. */
int cli_bad_flag(const char *flag, const char *value, const char *want);

/* A whole number from lo to hi into *out; -1, said, otherwise. */
/* --image-size: HxW (or N for N x N), each 1 to 4096. */
int cli_image_size(const char *arg, int *rows, int *cols);

/* --color: grayscale (1 channel) or rgb (3). */
int cli_color(const char *arg, int *channels);

int cli_long(const char *flag, const char *s, long lo, long hi, long *out);

/* A real number between lo and hi, each bound included or not (lo_open,
 * hi_open); a number too small for a double reads as 0 and is judged so. */
int cli_double(const char *flag, const char *s, double lo, int lo_open, double hi,
               int hi_open, double *out);

/* The shortest text that reads back as v ("0.9999999", not "1"). */
const char *cli_exact(char *buf, size_t size, double v);

/* Says err on stderr as "trainer: ...", naming the process (rank and host)
 * when there are several. */
void cli_fail_as(const tr_error *err, int rank, int ranks);

/* word as a shell reads it back: as it is when it has only safe characters,
 * else in single quotes. */
void cli_print_shell_word(FILE *f, const char *word);

/* stderr to /dev/null; returns the descriptor that cli_restore_stderr puts
 * back (-1 if it could not be kept). */
int cli_silence_stderr(void);
void cli_restore_stderr(int kept);

#endif
