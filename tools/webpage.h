/* webpage.h - the drawing page's files (tools/web), built into the program
 * by tools/embed.py, for `trainer export --web`. */
#ifndef TRAINER_TOOLS_WEBPAGE_H
#define TRAINER_TOOLS_WEBPAGE_H

#include <stddef.h>

typedef struct {
    const char *name;
    const unsigned char *data;
    size_t len;
} web_file;

extern const web_file web_files[];
extern const int web_file_count;

#endif
