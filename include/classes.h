/* classes.h - the names of a data set's classes, as they travel with its
 * images and the models trained on them.
 *
 * The names are one text, each name on its own line in label order ("" when
 * the classes have no names: they are then shown as their numbers).  A name
 * is 1 to CLASS_NAME_MAX - 1 bytes of UTF-8 without control characters. */
#ifndef TRAINER_CLASSES_H
#define TRAINER_CLASSES_H

#include <stddef.h>

#include "error.h"

#define CLASS_NAME_MAX 64      /* bytes of one name, its terminator included */
#define CLASS_NAMES_MAX 8192   /* bytes of all names, separators and terminator included */

/* Checks that names holds `classes` valid names (or is ""); what names the
 * names (a file, a folder) goes into the message. */
int tr_class_names_check(const char *names, int classes, const char *what, tr_error *err);

/* Whether name may be a class name. */
int tr_class_name_valid(const char *name, size_t len);

/* Class k's name into buf (of at least CLASS_NAME_MAX bytes): its name, or
 * its number when there are no names.  Returns buf. */
const char *tr_class_name(const char *names, int k, char *buf);

/* Appends name as the next class of names (of CLASS_NAMES_MAX bytes). */
int tr_class_names_add(char *names, const char *name, tr_error *err);

/* Reads a file of one name per line (trailing empty lines and a final
 * newline ignored, "\r\n" taken as "\n") into names. */
int tr_class_names_read(char *names, const char *path, tr_error *err);

/* names as a JSON array of strings (["cat","dog"]) into buf.  Returns -1
 * if buf is too small. */
int tr_class_names_json(const char *names, char *buf, size_t size);

/* The len bytes of s with '"' and '\\' escaped for a JSON string, into
 * out.  Returns -1 if out is too small. */
int tr_json_escape(char *out, size_t size, const char *s, size_t len);

/* The number of names in names. */
int tr_class_names_count(const char *names);

#endif
