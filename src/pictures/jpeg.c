/* jpeg.c - JPEG pictures through libjpeg(-turbo), turned upright as their
 * EXIF orientation says, and the one entry point that tells PNG from JPEG. */
#include "image.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

int tr_image_is_jpeg(const uint8_t *data, size_t len)
{
    return len >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
}

typedef struct {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_failure;

/* libjpeg's default would print and exit; this keeps its message instead. */
static void jpeg_fail(j_common_ptr cinfo)
{
    jpeg_failure *f = (jpeg_failure *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, f->msg);
    longjmp(f->jump, 1);
}

/* Corrupt-data warnings become errors: a damaged file is named, not half
 * decoded into grey blocks. */
static void jpeg_warn(j_common_ptr cinfo, int level)
{
    if (level < 0)
        jpeg_fail(cinfo);
}

static uint32_t exif_u16(const uint8_t *p, int big)
{
    return big ? (uint32_t)p[0] << 8 | p[1] : (uint32_t)p[1] << 8 | p[0];
}

static uint32_t exif_u32(const uint8_t *p, int big)
{
    return big ? exif_u16(p, 1) << 16 | exif_u16(p + 2, 1)
               : exif_u16(p + 2, 0) << 16 | exif_u16(p, 0);
}

/* The Orientation tag (0x0112) of IFD0 in an APP1 "Exif" segment, 1 to 8;
 * 1 (as stored) when absent or unreadable. */
static int exif_orientation(const uint8_t *seg, size_t len)
{
    if (len < 14 || memcmp(seg, "Exif\0\0", 6) != 0)
        return 1;
    const uint8_t *t = seg + 6;
    const size_t n = len - 6;
    int big;
    if (t[0] == 'I' && t[1] == 'I')
        big = 0;
    else if (t[0] == 'M' && t[1] == 'M')
        big = 1;
    else
        return 1;
    if (exif_u16(t + 2, big) != 42)
        return 1;
    const uint32_t ifd = exif_u32(t + 4, big);
    if (ifd > n || n - ifd < 2)
        return 1;
    const uint32_t count = exif_u16(t + ifd, big);
    for (uint32_t i = 0; i < count; i++) {
        const size_t at = (size_t)ifd + 2 + 12 * (size_t)i;
        if (at + 12 > n)
            return 1;
        if (exif_u16(t + at, big) == 0x0112) {
            const uint32_t v = exif_u16(t + at + 8, big);
            return v >= 1 && v <= 8 ? (int)v : 1;
        }
    }
    return 1;
}

/* Turns a picture stored with EXIF orientation o upright: o says where the
 * stored rows go (2 mirrored, 3 turned half way, 4 flipped, 5 transposed, 6
 * turned a quarter clockwise, 7 transversed, 8 a quarter anticlockwise). */
static int orient(tr_image *im, int o)
{
    if (o == 1)
        return 0;
    const int w = im->w, h = im->h;
    const int swap = o >= 5;
    const int ow = swap ? h : w, oh = swap ? w : h;
    uint32_t *dst = malloc((size_t)w * (size_t)h * 4);
    if (!dst)
        return -1;
    const uint32_t *src = (const uint32_t *)(void *)im->rgba;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            int sx, sy; /* the stored pixel shown at (x, y) */
            switch (o) {
            case 2: sx = w - 1 - x; sy = y; break;
            case 3: sx = w - 1 - x; sy = h - 1 - y; break;
            case 4: sx = x; sy = h - 1 - y; break;
            case 5: sx = y; sy = x; break;
            case 6: sx = y; sy = h - 1 - x; break;
            case 7: sx = w - 1 - y; sy = h - 1 - x; break;
            default: sx = w - 1 - y; sy = x; break; /* 8 */
            }
            dst[(size_t)y * ow + x] = src[(size_t)sy * w + sx];
        }
    free(im->rgba);
    im->rgba = (uint8_t *)dst;
    im->w = ow;
    im->h = oh;
    return 0;
}

/* What the setjmp'ed part of the decoder hands over: kept out of its locals,
 * which a longjmp may leave undefined. */
typedef struct {
    struct jpeg_decompress_struct cinfo;
    jpeg_failure fail;
    uint8_t *rgba;
    int orientation;
} jpeg_job;

static int jpeg_run(jpeg_job *j, const uint8_t *data, size_t len, tr_image *im,
                    const char *name, tr_error *err)
{
    struct jpeg_decompress_struct *c = &j->cinfo;
    if (setjmp(j->fail.jump))
        return tr_error_set(err, "%s: not a readable JPEG file: %s", name, j->fail.msg);
    jpeg_create_decompress(c);
    jpeg_mem_src(c, data, (unsigned long)len);
    jpeg_save_markers(c, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(c, TRUE);
    for (jpeg_saved_marker_ptr m = c->marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && j->orientation == 1)
            j->orientation = exif_orientation(m->data, m->data_length);
    if (c->image_width < 1 || c->image_height < 1 || c->image_width > IMAGE_MAX_SIDE ||
        c->image_height > IMAGE_MAX_SIDE ||
        (size_t)c->image_width * c->image_height > IMAGE_MAX_PIXELS)
        return tr_error_set(err, "%s: %ux%u pixels (at most %d a side and %zu in all)", name,
                            c->image_width, c->image_height, IMAGE_MAX_SIDE, IMAGE_MAX_PIXELS);
    const int cmyk = c->jpeg_color_space == JCS_CMYK || c->jpeg_color_space == JCS_YCCK;
    c->out_color_space = cmyk ? JCS_CMYK : JCS_EXT_RGBA;
    jpeg_start_decompress(c);
    const size_t w = c->output_width, h = c->output_height;
    j->rgba = malloc(w * h * 4);
    if (!j->rgba)
        return tr_error_set(err, "%s: out of memory", name);
    while (c->output_scanline < h) {
        JSAMPROW row = j->rgba + (size_t)c->output_scanline * w * 4;
        jpeg_read_scanlines(c, &row, 1);
    }
    jpeg_finish_decompress(c);
    /* Adobe's CMYK JPEGs store the inks inverted, which is what libjpeg
     * hands out: each channel times the key gives the colour. */
    for (size_t i = 0; cmyk && i < w * h; i++) {
        uint8_t *p = j->rgba + 4 * i;
        const unsigned k = p[3];
        for (int ch = 0; ch < 3; ch++)
            p[ch] = (uint8_t)((p[ch] * k + 127) / 255);
        p[3] = 255;
    }
    im->w = (int)w;
    im->h = (int)h;
    im->rgba = j->rgba;
    j->rgba = NULL;
    return 0;
}

int tr_image_decode_jpeg(tr_image *im, const uint8_t *data, size_t len, const char *name,
                         tr_error *err)
{
    memset(im, 0, sizeof *im);
    if (!tr_image_is_jpeg(data, len))
        return tr_error_set(err, "%s: not a JPEG file", name);
    jpeg_job *j = calloc(1, sizeof *j);
    if (!j)
        return tr_error_set(err, "%s: out of memory", name);
    j->cinfo.err = jpeg_std_error(&j->fail.mgr);
    j->fail.mgr.error_exit = jpeg_fail;
    j->fail.mgr.emit_message = jpeg_warn;
    j->orientation = 1;
    int rc = jpeg_run(j, data, len, im, name, err);
    jpeg_destroy_decompress(&j->cinfo);
    free(j->rgba);
    if (rc == 0 && orient(im, j->orientation)) {
        tr_image_free(im);
        rc = tr_error_set(err, "%s: out of memory", name);
    }
    free(j);
    return rc;
}

int tr_image_decode(tr_image *im, const uint8_t *data, size_t len, const char *name, tr_error *err)
{
    if (tr_image_is_png(data, len))
        return tr_image_decode_png(im, data, len, name, err);
    if (tr_image_is_jpeg(data, len))
        return tr_image_decode_jpeg(im, data, len, name, err);
    memset(im, 0, sizeof *im);
    return tr_error_set(err, "%s: not a PNG or JPEG picture", name);
}
