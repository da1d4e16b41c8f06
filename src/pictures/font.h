/* font.h - text as coverage masks for the canvas (internal to the library).
 *
 * Text is drawn with DejaVu Sans through FreeType, anti-aliased, where the
 * build has FreeType and the font file is found; otherwise with the built-in
 * 5x7 bitmap font.  Either way a text at `scale` has its capitals about
 * FONT_H * scale pixels tall, so the pictures keep their layout. */
#ifndef TRAINER_FONT_H
#define TRAINER_FONT_H

#include <stdint.h>

/* A line of text as coverage, a[h][w] from 0 (none) to 255 (ink); the top of
 * its capitals lies `top` rows below the mask's first row (the bitmap font:
 * 0; a vector font's ascenders and accents reach higher). */
typedef struct {
    int w, h, top;
    uint8_t *a; /* owned; free with tr_font_mask_free */
} font_mask;

/* Renders text (ASCII; other bytes draw as '?').  Returns 0, or -1 when out
 * of memory (*m is then empty). */
int tr_font_render(font_mask *m, const char *text, int scale);
void tr_font_mask_free(font_mask *m);

/* The advance width of text in pixels, as tr_font_render lays it out. */
int tr_font_text_width(const char *text, int scale);

/* NULL when the vector font is used, else why not (no FreeType in this
 * build, no font file found, a file FreeType cannot read). */
const char *tr_font_fallback_reason(void);

/* The bitmap glyph of ch as 35 characters, 7 rows of 5, '#' for ink;
 * characters outside printable ASCII give the glyph of '?'. */
const char *tr_font_glyph(int ch);

#endif
