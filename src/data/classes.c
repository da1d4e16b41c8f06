#include "classes.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

/* Well-formed UTF-8 without control characters (C0, DEL, C1). */
int tr_class_name_valid(const char *name, size_t len)
{
    if (len < 1 || len >= CLASS_NAME_MAX)
        return 0;
    const uint8_t *s = (const uint8_t *)name;
    for (size_t i = 0; i < len;) {
        const uint8_t c = s[i];
        if (c < 0x20 || c == 0x7F)
            return 0;
        size_t extra = c < 0x80 ? 0 : c >= 0xC2 && c < 0xE0 ? 1 : c >= 0xE0 && c < 0xF0 ? 2
                     : c >= 0xF0 && c < 0xF5 ? 3 : 4;
        if (extra == 4 || (extra > 0 && i + extra >= len))
            return 0;
        uint32_t cp = extra == 0 ? c : c & (0x3F >> extra);
        for (size_t k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        static const uint32_t least[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < least[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000) ||
            (cp >= 0x80 && cp < 0xA0))
            return 0;
        i += extra + 1;
    }
    return 1;
}

int tr_class_names_count(const char *names)
{
    if (!names[0])
        return 0;
    int n = 1;
    for (const char *p = names; *p; p++)
        n += *p == '\n';
    return n;
}

int tr_class_names_check(const char *names, int classes, const char *what, tr_error *err)
{
    if (!names[0])
        return 0;
    if (strlen(names) >= CLASS_NAMES_MAX)
        return tr_error_set(err, "%s: class names of more than %d bytes in all", what,
                            CLASS_NAMES_MAX - 1);
    int k = 0;
    for (const char *p = names;; k++) {
        const char *end = strchr(p, '\n');
        const size_t len = end ? (size_t)(end - p) : strlen(p);
        if (!tr_class_name_valid(p, len))
            return tr_error_set(err, "%s: class name %d is %s", what, k + 1,
                                len == 0 ? "empty"
                                : len >= CLASS_NAME_MAX ? "too long (at most 63 bytes)"
                                                     : "not printable UTF-8");
        if (!end)
            break;
        p = end + 1;
    }
    if (k + 1 != classes)
        return tr_error_set(err, "%s: %d class names for %d classes", what, k + 1, classes);
    return 0;
}

const char *tr_class_name(const char *names, int k, char *buf)
{
    const char *p = names;
    for (int i = 0; p && *p && i < k; i++) {
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    if (!p || !*p) {
        snprintf(buf, CLASS_NAME_MAX, "%d", k);
        return buf;
    }
    const char *end = strchr(p, '\n');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len >= CLASS_NAME_MAX)
        len = CLASS_NAME_MAX - 1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    return buf;
}

int tr_class_names_add(char *names, const char *name, tr_error *err)
{
    const size_t have = strlen(names), len = strlen(name);
    if (!tr_class_name_valid(name, len))
        return tr_error_set(err, "%s: not a class name (1 to %d bytes of printable UTF-8)", name,
                            CLASS_NAME_MAX - 1);
    if (have + (have > 0) + len >= CLASS_NAMES_MAX)
        return tr_error_set(err, "%s: class names of more than %d bytes in all", name,
                            CLASS_NAMES_MAX - 1);
    if (have)
        names[have] = '\n';
    memcpy(names + have + (have > 0), name, len + 1);
    return 0;
}

int tr_class_names_read(char *names, const char *path, tr_error *err)
{
    uint8_t *data;
    size_t len;
    names[0] = '\0';
    if (tr_file_read_all(path, CLASS_NAMES_MAX * 2, &data, &len, err))
        return -1;
    char *text = (char *)data;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) /* "\r\n" as "\n" */
        if (!(text[i] == '\r' && i + 1 < len && text[i + 1] == '\n'))
            text[n++] = text[i];
    while (n > 0 && text[n - 1] == '\n')
        n--;
    int rc = 0;
    if (n == 0)
        rc = tr_error_set(err, "%s: no class names in the file", path);
    else if (memchr(text, '\0', n))
        rc = tr_error_set(err, "%s: not a text file of class names", path);
    else if (n >= CLASS_NAMES_MAX)
        rc = tr_error_set(err, "%s: class names of more than %d bytes in all", path,
                          CLASS_NAMES_MAX - 1);
    if (rc == 0) {
        memcpy(names, text, n);
        names[n] = '\0';
        rc = tr_class_names_check(names, tr_class_names_count(names), path, err);
        if (rc)
            names[0] = '\0';
    }
    free(data);
    return rc;
}

int tr_json_escape(char *out, size_t size, const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        const int special = s[i] == '"' || s[i] == '\\';
        if (n + 1 + (size_t)special >= size)
            return -1;
        if (special)
            out[n++] = '\\';
        out[n++] = s[i];
    }
    out[n] = '\0';
    return 0;
}

int tr_class_names_json(const char *names, char *buf, size_t size)
{
    size_t n = 0;
    if (size < 3)
        return -1;
    buf[n++] = '[';
    for (const char *p = names; *p;) {
        const char *end = strchr(p, '\n');
        const size_t len = end ? (size_t)(end - p) : strlen(p);
        if (n + 4 >= size)
            return -1;
        if (p != names)
            buf[n++] = ',';
        buf[n++] = '"';
        if (tr_json_escape(buf + n, size - n - 2, p, len))
            return -1;
        n += strlen(buf + n);
        buf[n++] = '"';
        p = end ? end + 1 : p + len;
    }
    buf[n++] = ']';
    buf[n] = '\0';
    return 0;
}
