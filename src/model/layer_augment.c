/* Keras' augmentation layers: RandomTranslation, RandomRotation and
 * RandomZoom.  In training each sample is moved by its own random affine
 * map, sampled bilinearly; in inference they pass their input through (and
 * the exports have no node for them).
 *
 * The factors mean what Keras' do (a number f stands for the range [-f, f]):
 *   random_translation(H,W): a shift of uniform(-H, H) x the height and
 *     uniform(-W, W) x the width, in pixels (may be fractional);
 *   random_rotation(F): a turn of uniform(-F, F) x 2 pi about the image's
 *     centre ((w - 1) / 2, (h - 1) / 2);
 *   random_zoom(H[,W]): a scale of 1 + uniform(-H, H) vertically and,
 *     without W, the same horizontally (1 + uniform(-W, W) with W): above 1
 *     zooms out, below 1 in.
 * An output pixel (x, y) reads the input at the map's image of it, as
 * Keras' affine_transform does, bilinearly; a point outside the image is
 * filled by `reflect` (Keras' default: d c b a | a b c d | d c b a, the
 * coordinate reflected about the edge of the last pixel) or `constant` (0,
 * MNIST's black), the spec's last word.
 *
 * The draws come from (seed, layer, epoch, step, the sample's place in its
 * batch) alone, so the bits depend on neither threads nor processes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_kinds.h"
#include "rng.h"

enum { FILL_REFLECT, FILL_CONSTANT };
static const char *const fills[] = {"reflect", "constant", NULL};

/* The affine map of one sample: input x = a[0] x + a[1] y + a[2], input y =
 * a[3] x + a[4] y + a[5]. */
typedef struct {
    float a[6];
} affine;

/* What sets the kinds apart: the map from two uniform draws in [-1, 1), and
 * the word that holds the fill mode.  The words: the factors' float bits
 * from hp[0], then the fill; random_zoom's hp[2] says whether a width factor
 * is given. */
typedef struct {
    affine (*map)(const tr_layer *l, float u, float v);
    int fill_at;
} augment_kind;

/* Two uniforms in [-1, 1) from the sample's draw. */
static void draws(const tr_layer *l, const tr_layer_pass *p, uint32_t sample, float *u, float *v)
{
    const uint64_t stream = rng_hash(p->seed) ^ (RNG_STREAM_AUGMENT + (uint64_t)l->index);
    const uint64_t key = rng_hash(rng_hash(stream) ^ ((uint64_t)p->epoch << 40) ^ (uint64_t)p->step);
    const uint64_t h = rng_hash(key ^ sample);
    *u = (float)(h >> 40) / 8388608.0f - 1.0f;
    *v = (float)((h >> 16) & 0xffffff) / 8388608.0f - 1.0f;
}

/* Keras' [1, 0, -dx, 0, 1, -dy]. */
static affine translation_map(const tr_layer *l, float u, float v)
{
    const float dy = u * word_float(l->hp[0]) * (float)l->in.h;
    const float dx = v * word_float(l->hp[1]) * (float)l->in.w;
    return (affine){{1.0f, 0.0f, -dx, 0.0f, 1.0f, -dy}};
}

/* A turn about the centre, as Keras' rotation matrix. */
static affine rotation_map(const tr_layer *l, float u, float v)
{
    (void)v;
    const float h = (float)l->in.h, w = (float)l->in.w;
    const double angle = (double)(u * word_float(l->hp[0])) * 2.0 * 3.14159265358979323846;
    const float c = (float)cos(angle), s = (float)sin(angle);
    const float x_off = ((w - 1.0f) - (c * (w - 1.0f) - s * (h - 1.0f))) / 2.0f;
    const float y_off = ((h - 1.0f) - (s * (w - 1.0f) + c * (h - 1.0f))) / 2.0f;
    return (affine){{c, -s, x_off, s, c, y_off}};
}

/* Keras' [zx, 0, (w - 1) / 2 (1 - zx), 0, zy, (h - 1) / 2 (1 - zy)]. */
static affine zoom_map(const tr_layer *l, float u, float v)
{
    const float h = (float)l->in.h, w = (float)l->in.w;
    const float zy = 1.0f + u * word_float(l->hp[0]);
    const float zx = l->hp[2] ? 1.0f + v * word_float(l->hp[1]) : zy;
    return (affine){{zx, 0.0f, (w - 1.0f) / 2.0f * (1.0f - zx), 0.0f, zy,
                     (h - 1.0f) / 2.0f * (1.0f - zy)}};
}

static const augment_kind translation_kind = {translation_map, 2};
static const augment_kind rotation_kind = {rotation_map, 1};
static const augment_kind zoom_kind = {zoom_map, 3};

static affine sample_map(const tr_layer *l, const augment_kind *k, const tr_layer_pass *p,
                         uint32_t sample)
{
    float u, v;
    draws(l, p, sample, &u, &v);
    return k->map(l, u, v);
}

/* A coordinate outside [0, len - 1] reflected back in about the edges of
 * the last pixels (d c b a | a b c d | d c b a), then clamped. */
static float reflect(float x, int len)
{
    if (len <= 1)
        return 0.0f;
    const float period = 2.0f * (float)len;
    if (x < 0.0f) {
        if (x < -period)
            x += period * (float)(int)(-x / period);
        x = x < -(float)len ? x + period : -x - 1.0f;
    } else if (x > (float)(len - 1)) {
        x -= period * (float)(int)(x / period);
        if (x >= (float)len)
            x = period - x - 1.0f;
    }
    return x < 0.0f ? 0.0f : x > (float)(len - 1) ? (float)(len - 1) : x;
}

/* Where output pixel (x, y) reads: the top-left neighbour (x0, y0) and the
 * weights of the right and lower ones (fx, fy). */
typedef struct {
    int x0, y0;
    float fx, fy;
} tap;

static tap tap_at(const affine *m, int x, int y, int w, int h, int fill)
{
    float sx = m->a[0] * (float)x + m->a[1] * (float)y + m->a[2];
    float sy = m->a[3] * (float)x + m->a[4] * (float)y + m->a[5];
    if (fill == FILL_REFLECT) {
        sx = reflect(sx, w);
        sy = reflect(sy, h);
    } else {
        /* Far outside: every neighbour is the fill; keep the indices small. */
        sx = sx < -2.0f ? -2.0f : sx > (float)w + 1.0f ? (float)w + 1.0f : sx;
        sy = sy < -2.0f ? -2.0f : sy > (float)h + 1.0f ? (float)h + 1.0f : sy;
    }
    const float x0 = floorf(sx), y0 = floorf(sy);
    return (tap){(int)x0, (int)y0, sx - x0, sy - y0};
}

static int inside(int x, int y, int w, int h)
{
    return x >= 0 && x < w && y >= 0 && y < h;
}

static void augment_forward(const tr_layer *l, const augment_kind *k, float *out,
                            const tr_layer_input *in, int n, const tr_layer_pass *pass)
{
    const long size = tr_tensor_size(l->in);
    if (!pass || !pass->training) {
        memcpy(out, in->x, sizeof(float) * (size_t)(n * size));
        return;
    }
    const int h = l->in.h, w = l->in.w, c = l->in.c, fill = (int)l->hp[k->fill_at];
    for (int s = 0; s < n; s++) {
        const affine m = sample_map(l, k, pass, pass->first + (uint32_t)s);
        const float *x = in->x + s * size;
        float *y = out + s * size;
        for (int oy = 0; oy < h; oy++)
            for (int ox = 0; ox < w; ox++) {
                const tap t = tap_at(&m, ox, oy, w, h, fill);
                const int x1 = t.x0 + 1, y1 = t.y0 + 1;
                const float *p00 = inside(t.x0, t.y0, w,
                                          h) ? x + ((long)t.y0 * w + t.x0) * c : NULL;
                const float *p01 = inside(x1, t.y0, w, h) ? x + ((long)t.y0 * w + x1) * c : NULL;
                const float *p10 = inside(t.x0, y1, w, h) ? x + ((long)y1 * w + t.x0) * c : NULL;
                const float *p11 = inside(x1, y1, w, h) ? x + ((long)y1 * w + x1) * c : NULL;
                float *o = y + ((long)oy * w + ox) * c;
                for (int ch = 0; ch < c; ch++) {
                    /* TensorFlow's order: across x on both rows, then down y. */
                    const float top = (1.0f - t.fx) * (p00 ? p00[ch] : 0.0f) +
                                      t.fx * (p01 ? p01[ch] : 0.0f);
                    const float bottom = (1.0f - t.fx) * (p10 ? p10[ch] : 0.0f) +
                                         t.fx * (p11 ? p11[ch] : 0.0f);
                    o[ch] = (1.0f - t.fy) * top + t.fy * bottom;
                }
            }
    }
}

/* The transpose of the sampling: each output's gradient goes back to the
 * four pixels it read, by their weights. */
static void augment_backward(const tr_layer *l, const augment_kind *k, float *d_in,
                             const float *d_out, int n, const tr_layer_pass *pass)
{
    if (!d_in)
        return;
    const long size = tr_tensor_size(l->in);
    const int h = l->in.h, w = l->in.w, c = l->in.c, fill = (int)l->hp[k->fill_at];
    memset(d_in, 0, sizeof(float) * (size_t)(n * size));
    for (int s = 0; s < n; s++) {
        const affine m = sample_map(l, k, pass, pass->first + (uint32_t)s);
        const float *g = d_out + s * size;
        float *dx = d_in + s * size;
        for (int oy = 0; oy < h; oy++)
            for (int ox = 0; ox < w; ox++) {
                const tap t = tap_at(&m, ox, oy, w, h, fill);
                const int xs[2] = {t.x0, t.x0 + 1}, ys[2] = {t.y0, t.y0 + 1};
                const float wx[2] = {1.0f - t.fx, t.fx}, wy[2] = {1.0f - t.fy, t.fy};
                const float *go = g + ((long)oy * w + ox) * c;
                for (int j = 0; j < 2; j++)
                    for (int i = 0; i < 2; i++) {
                        if (!inside(xs[i], ys[j], w, h))
                            continue;
                        float *d = dx + ((long)ys[j] * w + xs[i]) * c;
                        for (int ch = 0; ch < c; ch++)
                            d[ch] += wy[j] * wx[i] * go[ch];
                    }
            }
    }
}

static int augment_build(tr_layer *l, tr_error *err)
{
    (void)err;
    l->out = l->in;
    return 0;
}

/* The leading numbers of an item: its factors. */
static int count_numbers(const spec_item *it)
{
    int k = 0;
    while (k < it->n_args) {
        char *end;
        strtod(it->arg[k], &end);
        if (end == it->arg[k] || *end)
            break;
        k++;
    }
    return k;
}

/* n factors from 0 to 1 (1 excluded) into hp[0..n), then the fill word. */
static int parse_factors(const spec_item *it, uint32_t *hp, int min, int max, int fill_at,
                         const char *usage, tr_error *err)
{
    const int n = count_numbers(it);
    if (n < min || n > max)
        return tr_error_set(err, "'%s': expected %s", it->text, usage);
    for (int k = 0; k < n; k++) {
        float f;
        if (tr_spec_fraction(it, k, 0.0, 1.0, &f, "factor", err))
            return -1;
        hp[k] = float_word(f);
    }
    int fill = FILL_REFLECT;
    if (tr_spec_options(it, n, (const char *const *const[]){fills}, 1, &fill, err))
        return -1;
    hp[fill_at] = (uint32_t)fill;
    return n;
}

static int translation_parse(const spec_item *it, uint32_t *hp, int *head, tr_error *err)
{
    (void)head;
    return parse_factors(it, hp, 2, 2, 2, "random_translation(HEIGHT,WIDTH[,reflect|constant]) "
                         "with factors from 0 to 1", err) < 0 ? -1 : 0;
}

static int rotation_parse(const spec_item *it, uint32_t *hp, int *head, tr_error *err)
{
    (void)head;
    return parse_factors(it, hp, 1, 1, 1, "random_rotation(FACTOR[,reflect|constant]), a "
                         "fraction of a full turn from 0 to 1", err) < 0 ? -1 : 0;
}

static int zoom_parse(const spec_item *it, uint32_t *hp, int *head, tr_error *err)
{
    (void)head;
    const int n = parse_factors(it, hp, 1, 2, 3, "random_zoom(HEIGHT[,WIDTH][,reflect|"
                                "constant]) with factors from 0 to 1", err);
    if (n < 0)
        return -1;
    hp[2] = n == 2;
    return 0;
}

/* The spec's fill word: none for reflect, the default. */
static const char *fill_text(uint32_t fill)
{
    return fill == FILL_CONSTANT ? ",constant" : "";
}

static void translation_format(const tr_layer *l, int last, char *buf, size_t size)
{
    (void)last;
    snprintf(buf, size, "random_translation(%g,%g%s)", (double)word_float(l->hp[0]),
             (double)word_float(l->hp[1]), fill_text(l->hp[2]));
}

static void rotation_format(const tr_layer *l, int last, char *buf, size_t size)
{
    (void)last;
    snprintf(buf, size, "random_rotation(%g%s)", (double)word_float(l->hp[0]),
             fill_text(l->hp[1]));
}

static void zoom_format(const tr_layer *l, int last, char *buf, size_t size)
{
    (void)last;
    if (l->hp[2])
        snprintf(buf, size, "random_zoom(%g,%g%s)", (double)word_float(l->hp[0]),
                 (double)word_float(l->hp[1]), fill_text(l->hp[3]));
    else
        snprintf(buf, size, "random_zoom(%g%s)", (double)word_float(l->hp[0]),
                 fill_text(l->hp[3]));
}

/* A file's factors: floats from 0 to 1, 1 excluded. */
static int factors_ok(const uint32_t *words, int n)
{
    for (int k = 0; k < n; k++) {
        const float f = word_float(words[k]);
        if (!(f >= 0.0f && f < 1.0f))
            return 0;
    }
    return 1;
}

static int translation_check(const uint32_t *words, tr_error *err)
{
    if (!factors_ok(words, 2) || words[2] > FILL_CONSTANT)
        return tr_error_set(err, "random_translation factors or fill mode out of range");
    return 0;
}

static int rotation_check(const uint32_t *words, tr_error *err)
{
    if (!factors_ok(words, 1) || words[1] > FILL_CONSTANT)
        return tr_error_set(err, "random_rotation factor or fill mode out of range");
    return 0;
}

static int zoom_check(const uint32_t *words, tr_error *err)
{
    if (!factors_ok(words, 2) || words[2] > 1 || (!words[2] && words[1]) ||
        words[3] > FILL_CONSTANT)
        return tr_error_set(err, "random_zoom factors or fill mode out of range");
    return 0;
}

/* The identity in inference: PyTorch's module, no ONNX node. */
static void augment_export(const tr_layer *l, tr_tensor_shape order, layer_export *e)
{
    (void)l, (void)order;
    tr_export_add(e, NULL, "Identity()");
}

/* Each kind's passes: the shared ones with its map. */
#define AUGMENT_PASSES(prefix)                                                               \
    static void prefix##_forward(const tr_layer *l, float *out, const tr_layer_input *in,    \
                                 const float *params, void *work, int n,                     \
                                 const tr_layer_pass *pass)                                  \
    {                                                                                        \
        (void)params, (void)work;                                                            \
        augment_forward(l, &prefix##_kind, out, in, n, pass);                                \
    }                                                                                        \
    static void prefix##_backward(const tr_layer *l, float *d_in, float *grad, float *d_out, \
                                  const float *in, const float *out, const float *params,    \
                                  void *work, int n, const tr_layer_pass *pass)              \
    {                                                                                        \
        (void)grad, (void)in, (void)out, (void)params, (void)work;                           \
        augment_backward(l, &prefix##_kind, d_in, d_out, n, pass);                           \
    }
AUGMENT_PASSES(translation)
AUGMENT_PASSES(rotation)
AUGMENT_PASSES(zoom)

#define AUGMENT_OPS(kind_name, keras_name, prefix, n_words)                                 \
    {                                                                                       \
        .name = kind_name, .keras = keras_name, .keeps_order = 1, .parse = prefix##_parse,  \
        .format = prefix##_format, .words = n_words, .check = prefix##_check,               \
        .build = augment_build, .forward = prefix##_forward, .backward = prefix##_backward, \
        .export = augment_export,                                                           \
    }

const layer_ops tr_random_translation_layer_ops =
    AUGMENT_OPS("random_translation", "RandomTranslation", translation, 3);
const layer_ops tr_random_rotation_layer_ops =
    AUGMENT_OPS("random_rotation", "RandomRotation", rotation, 2);
const layer_ops tr_random_zoom_layer_ops = AUGMENT_OPS("random_zoom", "RandomZoom", zoom, 4);
