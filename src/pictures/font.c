/* font.c - text for the canvas: DejaVu Sans through FreeType where it can be
 * had, and the 5x7 bitmap font of printable ASCII, drawn here, where it
 * cannot.  Each bitmap glyph is 7 rows of 5 pixels, '#' for ink. */
#include "font.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef TRAINER_FREETYPE
#include <ft2build.h>
#include FT_FREETYPE_H
#endif

#include "canvas.h"

/* The printable ASCII character that stands for byte ch. */
static int printable(int ch)
{
    return ch < 32 || ch > 126 ? '?' : ch;
}

static const char *const GLYPHS[95] = {
    /* ' '  */ "....." "....." "....." "....." "....." "....." ".....",
    /* '!'  */ "..#.." "..#.." "..#.." "..#.." "..#.." "....." "..#..",
    /* '"'  */ ".#.#." ".#.#." "....." "....." "....." "....." ".....",
    /* '#'  */ ".#.#." ".#.#." "#####" ".#.#." "#####" ".#.#." ".#.#.",
    /* '$'  */ "..#.." ".####" "#.#.." ".###." "..#.#" "####." "..#..",
    /* '%'  */ "##..." "##..#" "...#." "..#.." ".#..." "#..##" "...##",
    /* '&'  */ ".##.." "#..#." "#.#.." ".#..." "#.#.#" "#..#." ".##.#",
    /* '''  */ "..#.." "..#.." "....." "....." "....." "....." ".....",
    /* '('  */ "...#." "..#.." ".#..." ".#..." ".#..." "..#.." "...#.",
    /* ')'  */ ".#..." "..#.." "...#." "...#." "...#." "..#.." ".#...",
    /* star */ "....." "..#.." "#.#.#" ".###." "#.#.#" "..#.." ".....",
    /* '+'  */ "....." "..#.." "..#.." "#####" "..#.." "..#.." ".....",
    /* ','  */ "....." "....." "....." "....." ".##.." "..#.." ".#...",
    /* '-'  */ "....." "....." "....." "#####" "....." "....." ".....",
    /* '.'  */ "....." "....." "....." "....." "....." ".##.." ".##..",
    /* slash */ "....." "....#" "...#." "..#.." ".#..." "#...." ".....",
    /* '0'  */ ".###." "#...#" "#..##" "#.#.#" "##..#" "#...#" ".###.",
    /* '1'  */ "..#.." ".##.." "..#.." "..#.." "..#.." "..#.." ".###.",
    /* '2'  */ ".###." "#...#" "....#" "...#." "..#.." ".#..." "#####",
    /* '3'  */ "#####" "...#." "..#.." "...#." "....#" "#...#" ".###.",
    /* '4'  */ "...#." "..##." ".#.#." "#..#." "#####" "...#." "...#.",
    /* '5'  */ "#####" "#...." "####." "....#" "....#" "#...#" ".###.",
    /* '6'  */ "..##." ".#..." "#...." "####." "#...#" "#...#" ".###.",
    /* '7'  */ "#####" "....#" "...#." "..#.." ".#..." ".#..." ".#...",
    /* '8'  */ ".###." "#...#" "#...#" ".###." "#...#" "#...#" ".###.",
    /* '9'  */ ".###." "#...#" "#...#" ".####" "....#" "...#." ".##..",
    /* ':'  */ "....." ".##.." ".##.." "....." ".##.." ".##.." ".....",
    /* ';'  */ "....." ".##.." ".##.." "....." ".##.." "..#.." ".#...",
    /* '<'  */ "...#." "..#.." ".#..." "#...." ".#..." "..#.." "...#.",
    /* '='  */ "....." "....." "#####" "....." "#####" "....." ".....",
    /* '>'  */ ".#..." "..#.." "...#." "....#" "...#." "..#.." ".#...",
    /* '?'  */ ".###." "#...#" "....#" "...#." "..#.." "....." "..#..",
    /* '@'  */ ".###." "#...#" "....#" ".##.#" "#.#.#" "#.#.#" ".###.",
    /* 'A'  */ ".###." "#...#" "#...#" "#####" "#...#" "#...#" "#...#",
    /* 'B'  */ "####." "#...#" "#...#" "####." "#...#" "#...#" "####.",
    /* 'C'  */ ".###." "#...#" "#...." "#...." "#...." "#...#" ".###.",
    /* 'D'  */ "###.." "#..#." "#...#" "#...#" "#...#" "#..#." "###..",
    /* 'E'  */ "#####" "#...." "#...." "####." "#...." "#...." "#####",
    /* 'F'  */ "#####" "#...." "#...." "####." "#...." "#...." "#....",
    /* 'G'  */ ".###." "#...#" "#...." "#.###" "#...#" "#...#" ".####",
    /* 'H'  */ "#...#" "#...#" "#...#" "#####" "#...#" "#...#" "#...#",
    /* 'I'  */ ".###." "..#.." "..#.." "..#.." "..#.." "..#.." ".###.",
    /* 'J'  */ "..###" "...#." "...#." "...#." "...#." "#..#." ".##..",
    /* 'K'  */ "#...#" "#..#." "#.#.." "##..." "#.#.." "#..#." "#...#",
    /* 'L'  */ "#...." "#...." "#...." "#...." "#...." "#...." "#####",
    /* 'M'  */ "#...#" "##.##" "#.#.#" "#.#.#" "#...#" "#...#" "#...#",
    /* 'N'  */ "#...#" "#...#" "##..#" "#.#.#" "#..##" "#...#" "#...#",
    /* 'O'  */ ".###." "#...#" "#...#" "#...#" "#...#" "#...#" ".###.",
    /* 'P'  */ "####." "#...#" "#...#" "####." "#...." "#...." "#....",
    /* 'Q'  */ ".###." "#...#" "#...#" "#...#" "#.#.#" "#..#." ".##.#",
    /* 'R'  */ "####." "#...#" "#...#" "####." "#.#.." "#..#." "#...#",
    /* 'S'  */ ".####" "#...." "#...." ".###." "....#" "....#" "####.",
    /* 'T'  */ "#####" "..#.." "..#.." "..#.." "..#.." "..#.." "..#..",
    /* 'U'  */ "#...#" "#...#" "#...#" "#...#" "#...#" "#...#" ".###.",
    /* 'V'  */ "#...#" "#...#" "#...#" "#...#" "#...#" ".#.#." "..#..",
    /* 'W'  */ "#...#" "#...#" "#...#" "#.#.#" "#.#.#" "#.#.#" ".#.#.",
    /* 'X'  */ "#...#" "#...#" ".#.#." "..#.." ".#.#." "#...#" "#...#",
    /* 'Y'  */ "#...#" "#...#" ".#.#." "..#.." "..#.." "..#.." "..#..",
    /* 'Z'  */ "#####" "....#" "...#." "..#.." ".#..." "#...." "#####",
    /* '['  */ ".###." ".#..." ".#..." ".#..." ".#..." ".#..." ".###.",
    /* backslash */ "....." "#...." ".#..." "..#.." "...#." "....#" ".....",
    /* ']'  */ ".###." "...#." "...#." "...#." "...#." "...#." ".###.",
    /* '^'  */ "..#.." ".#.#." "#...#" "....." "....." "....." ".....",
    /* '_'  */ "....." "....." "....." "....." "....." "....." "#####",
    /* '`'  */ ".#..." "..#.." "....." "....." "....." "....." ".....",
    /* 'a'  */ "....." "....." ".###." "....#" ".####" "#...#" ".####",
    /* 'b'  */ "#...." "#...." "#.##." "##..#" "#...#" "#...#" "####.",
    /* 'c'  */ "....." "....." ".###." "#...." "#...." "#...#" ".###.",
    /* 'd'  */ "....#" "....#" ".##.#" "#..##" "#...#" "#...#" ".####",
    /* 'e'  */ "....." "....." ".###." "#...#" "#####" "#...." ".###.",
    /* 'f'  */ "..##." ".#..#" ".#..." "###.." ".#..." ".#..." ".#...",
    /* 'g'  */ "....." "....." ".####" "#...#" ".####" "....#" ".###.",
    /* 'h'  */ "#...." "#...." "#.##." "##..#" "#...#" "#...#" "#...#",
    /* 'i'  */ "..#.." "....." ".##.." "..#.." "..#.." "..#.." ".###.",
    /* 'j'  */ "...#." "....." "..##." "...#." "...#." "#..#." ".##..",
    /* 'k'  */ "#...." "#...." "#..#." "#.#.." "##..." "#.#.." "#..#.",
    /* 'l'  */ ".##.." "..#.." "..#.." "..#.." "..#.." "..#.." ".###.",
    /* 'm'  */ "....." "....." "##.#." "#.#.#" "#.#.#" "#...#" "#...#",
    /* 'n'  */ "....." "....." "#.##." "##..#" "#...#" "#...#" "#...#",
    /* 'o'  */ "....." "....." ".###." "#...#" "#...#" "#...#" ".###.",
    /* 'p'  */ "....." "....." "####." "#...#" "####." "#...." "#....",
    /* 'q'  */ "....." "....." ".##.#" "#..##" ".####" "....#" "....#",
    /* 'r'  */ "....." "....." "#.##." "##..#" "#...." "#...." "#....",
    /* 's'  */ "....." "....." ".###." "#...." ".###." "....#" "####.",
    /* 't'  */ ".#..." ".#..." "###.." ".#..." ".#..." ".#..#" "..##.",
    /* 'u'  */ "....." "....." "#...#" "#...#" "#...#" "#..##" ".##.#",
    /* 'v'  */ "....." "....." "#...#" "#...#" "#...#" ".#.#." "..#..",
    /* 'w'  */ "....." "....." "#...#" "#...#" "#.#.#" "#.#.#" ".#.#.",
    /* 'x'  */ "....." "....." "#...#" ".#.#." "..#.." ".#.#." "#...#",
    /* 'y'  */ "....." "....." "#...#" "#...#" ".####" "....#" ".###.",
    /* 'z'  */ "....." "....." "#####" "...#." "..#.." ".#..." "#####",
    /* '{'  */ "...#." "..#.." "..#.." ".#..." "..#.." "..#.." "...#.",
    /* '|'  */ "..#.." "..#.." "..#.." "..#.." "..#.." "..#.." "..#..",
    /* '}'  */ ".#..." "..#.." "..#.." "...#." "..#.." "..#.." ".#...",
    /* '~'  */ "....." "....." ".#..." "#.#.#" "...#." "....." ".....",
};

const char *tr_font_glyph(int ch)
{
    return GLYPHS[printable(ch) - 32];
}

static int bitmap_width(const char *text, int scale)
{
    size_t n = strlen(text);
    return n ? (int)(n * FONT_ADVANCE - (FONT_ADVANCE - FONT_W)) * scale : 0;
}

static int bitmap_render(font_mask *m, const char *text, int scale)
{
    m->w = bitmap_width(text, scale);
    m->h = FONT_H * scale;
    m->top = 0;
    m->a = calloc((size_t)(m->w ? m->w : 1) * (size_t)m->h, 1);
    if (!m->a)
        return -1;
    for (int k = 0; text[k]; k++) {
        const char *g = tr_font_glyph((unsigned char)text[k]);
        for (int row = 0; row < FONT_H * scale; row++)
            for (int col = 0; col < FONT_W * scale; col++)
                if (g[row / scale * FONT_W + col / scale] == '#')
                    m->a[(size_t)row * m->w + k * FONT_ADVANCE * scale + col] = 255;
    }
    return 0;
}

#ifdef TRAINER_FREETYPE
/* The em size in pixels for a scale: DejaVu Sans' capitals are 0.73 em
 * tall, so this makes them about as tall as the bitmap font's (a little
 * less: 13 pixels at scale 2, where the bitmap's are 14). */
static int em_pixels(int scale)
{
    return (FONT_H * scale * 5 + 2) / 4;
}

static FT_Library library;
static FT_Face face;
static int face_state; /* 0 not tried, 1 loaded, -1 failed */
static char fallback_reason[600];

/* Where Debian, Fedora and Arch put the font, unless TRAINER_FONT names a
 * file. */
static const char *const FONT_PATHS[] = {
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
};

static void load_face(void)
{
    face_state = -1;
    if (FT_Init_FreeType(&library)) {
        snprintf(fallback_reason, sizeof fallback_reason, "FreeType could not start");
        return;
    }
    const char *wanted = getenv("TRAINER_FONT");
    const int n = wanted && *wanted ? 1 : (int)(sizeof FONT_PATHS / sizeof *FONT_PATHS);
    for (int i = 0; i < n; i++) {
        const char *path = wanted && *wanted ? wanted : FONT_PATHS[i];
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        fclose(f);
        if (FT_New_Face(library, path, 0, &face) == 0) {
            face_state = 1;
            return;
        }
        snprintf(fallback_reason, sizeof fallback_reason, "%s is not a font FreeType reads",
                 path);
        FT_Done_FreeType(library);
        return;
    }
    if (wanted && *wanted)
        snprintf(fallback_reason, sizeof fallback_reason, "no font file at %s (TRAINER_FONT)",
                 wanted);
    else
        snprintf(fallback_reason, sizeof fallback_reason,
                 "no DejaVuSans.ttf found (Debian: fonts-dejavu-core)");
    FT_Done_FreeType(library);
}

static int use_face(int scale)
{
    if (face_state == 0)
        load_face();
    return face_state > 0 && FT_Set_Pixel_Sizes(face, 0, (FT_UInt)em_pixels(scale)) == 0;
}

/* Walks the glyphs of text, pen positions in 26.6 pixels, calling draw
 * (when not NULL) with each rendered glyph; returns the advance width in
 * whole pixels. */
static int walk_glyphs(const char *text, font_mask *draw, int baseline)
{
    FT_Pos pen = 0;
    FT_UInt prev = 0;
    for (int k = 0; text[k]; k++) {
        const FT_UInt index = FT_Get_Char_Index(face, (FT_ULong)printable((unsigned char)text[k]));
        if (prev && FT_HAS_KERNING(face)) {
            FT_Vector kern;
            if (FT_Get_Kerning(face, prev, index, FT_KERNING_DEFAULT, &kern) == 0)
                pen += kern.x;
        }
        prev = index;
        const FT_Int32 flags = FT_LOAD_TARGET_LIGHT | (draw ? FT_LOAD_RENDER : 0);
        if (FT_Load_Glyph(face, index, flags))
            continue;
        const FT_GlyphSlot g = face->glyph;
        if (draw) {
            const FT_Bitmap *b = &g->bitmap;
            const int x0 = (int)((pen + 32) >> 6) + g->bitmap_left;
            const int y0 = baseline - g->bitmap_top;
            for (unsigned r = 0; r < b->rows; r++)
                for (unsigned col = 0; col < b->width; col++) {
                    const int x = x0 + (int)col, y = y0 + (int)r;
                    if (x < 0 || y < 0 || x >= draw->w || y >= draw->h)
                        continue;
                    uint8_t *a = &draw->a[(size_t)y * draw->w + x];
                    const int sum = *a + b->buffer[(size_t)r * b->pitch + col];
                    *a = (uint8_t)(sum > 255 ? 255 : sum);
                }
        }
        pen += g->advance.x;
    }
    return (int)((pen + 63) >> 6);
}
#endif

int tr_font_text_width(const char *text, int scale)
{
#ifdef TRAINER_FREETYPE
    if (use_face(scale))
        return walk_glyphs(text, NULL, 0);
#endif
    return bitmap_width(text, scale);
}

int tr_font_render(font_mask *m, const char *text, int scale)
{
    memset(m, 0, sizeof *m);
#ifdef TRAINER_FREETYPE
    if (use_face(scale)) {
        const int ascent = (int)((face->size->metrics.ascender + 63) >> 6);
        const int descent = (int)((-face->size->metrics.descender + 63) >> 6);
        m->w = walk_glyphs(text, NULL, 0) + 2;
        m->h = ascent + descent;
        /* The capitals' top is FONT_H * scale above the baseline. */
        m->top = ascent - FONT_H * scale;
        m->a = calloc((size_t)m->w * (size_t)m->h, 1);
        if (!m->a)
            return -1;
        walk_glyphs(text, m, ascent);
        return 0;
    }
#endif
    return bitmap_render(m, text, scale);
}

void tr_font_mask_free(font_mask *m)
{
    free(m->a);
    memset(m, 0, sizeof *m);
}

const char *tr_font_fallback_reason(void)
{
#ifdef TRAINER_FREETYPE
    if (face_state == 0)
        load_face();
    return face_state > 0 ? NULL : fallback_reason;
#else
    return "this build has no FreeType (libfreetype-dev)";
#endif
}
