/* font.h - the canvas' bitmap font (internal to the library). */
#ifndef TRAINER_FONT_H
#define TRAINER_FONT_H

/* The glyph of ch as 35 characters, 7 rows of 5, '#' for ink; characters
 * outside printable ASCII give the glyph of '?'. */
const char *font_glyph(int ch);

#endif
