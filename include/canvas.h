/* canvas.h - an RGB picture in memory: rectangles, anti-aliased lines and
 * disks, text, and PNG output through libpng.
 *
 * Pixels are drawn into a byte buffer first, so tests can look at them without
 * files; a PNG is encoded to memory and written with a temporary file and a
 * rename, so no half-written image is ever visible. */
#ifndef TRAINER_CANVAS_H
#define TRAINER_CANVAS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct {
    uint8_t r, g, b;
} tr_rgb;

typedef struct {
    int width, height;
    uint8_t *pixels; /* [height][width][3], owned */
} tr_canvas;

/* Text is anti-aliased DejaVu Sans (through FreeType) where the build has
 * FreeType and the font is found (TRAINER_FONT names another file), else the
 * built-in 5x7 bitmap font.  Its size is given as a scale: capitals about
 * FONT_H * scale pixels tall either way.  The bitmap font's cell: glyphs are
 * FONT_W x FONT_H pixels, advanced by FONT_ADVANCE, all times the scale. */
#define FONT_W 5
#define FONT_H 7
#define FONT_ADVANCE 6

/* Allocates a width x height canvas filled with bg.  Sizes 1 to 16384. */
int tr_canvas_init(tr_canvas *c, int width, int height, tr_rgb bg, tr_error *err);
void tr_canvas_free(tr_canvas *c);

/* Fills the rectangle [x, x + w) x [y, y + h), clipped to the canvas. */
void tr_canvas_fill_rect(tr_canvas *c, int x, int y, int w, int h, tr_rgb color);

/* A one-pixel rectangle outline. */
void tr_canvas_frame_rect(tr_canvas *c, int x, int y, int w, int h, tr_rgb color);

/* An anti-aliased line of the given width from (x0, y0) to (x1, y1), in pixel
 * coordinates (pixel centres at integer + 0.5), with round ends. */
void tr_canvas_line(tr_canvas *c, float x0, float y0, float x1, float y1, float width,
                    tr_rgb color);

/* An anti-aliased filled disk. */
void tr_canvas_disk(tr_canvas *c, float cx, float cy, float radius, tr_rgb color);

/* Text at scale with the top-left of its capitals at (x, y); descenders go
 * below y + FONT_H * scale.  Characters outside printable ASCII draw as '?'. */
void tr_canvas_text(tr_canvas *c, int x, int y, const char *text, int scale, tr_rgb color);

/* The same, turned 90 degrees counter-clockwise (reading bottom to top), with
 * the top-left of the turned text's bounding box at (x, y). */
void tr_canvas_text_up(tr_canvas *c, int x, int y, const char *text, int scale, tr_rgb color);

/* Width in pixels of text at scale (its capitals are about FONT_H * scale
 * tall). */
int tr_canvas_text_width(const char *text, int scale);

/* NULL when text is drawn with the vector font, else why it is drawn with
 * the bitmap font (for the programs to say once). */
const char *tr_canvas_font_fallback(void);

/* Draws a gray image enlarged by scale with its top-left at (x, y).
 * img: [h][w].  ink_dark: 0 = white paper, 255 = black ink, as MNIST digits
 * read best in a grid; else the values as brightness, as the model sees
 * them (white digits on black, as the drawing page shows them too). */
void tr_canvas_gray_image(tr_canvas *c, int x, int y, const uint8_t *img, int w, int h,
                          int scale, int ink_dark);

/* Encodes the canvas as an 8-bit RGB PNG into a new buffer (*png, freed by the
 * caller). */
int tr_canvas_encode_png(const tr_canvas *c, uint8_t **png, size_t *len, tr_error *err);

/* Encodes and writes path through a temporary file and a rename. */
int tr_canvas_save_png(const tr_canvas *c, const char *path, tr_error *err);

#endif
