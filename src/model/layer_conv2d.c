/* Conv2D: f filters of k x k over the input's channels, stride 1, padding
 * valid or same, bias, ReLU or none.  The kernel is [k][k][c][f], as Keras
 * stores it, so that an im2col row times the kernel is an output pixel: the
 * passes are products of the patch rows with the kernel (conv.h).  Padding
 * valid reads the patch rows in place; padding same writes them (im2col) and
 * uses the dense kernels.  The samples go through in chunks whose patch rows
 * (and their gradients) stay in the L2 cache between being written and being
 * read; padding same's backward pass writes its rows again rather than keep
 * the whole block's, which would stream through memory. */
#include <math.h>
#include <string.h>

#include "conv.h"
#include "dense.h"
#include "layer_kinds.h"
#include "rng.h"

/* A chunk's patch rows fill at most this many bytes (the L2 cache holds 1 or
 * 2 MB on current cores, and the rows share it with the chunk's outputs). */
enum { CHUNK_BYTES = 256 * 1024 };

typedef struct {
    float *patches;   /* [chunk * oh * ow][k * k * c], padding same only */
    float *d_patches; /* likewise, for the input gradient */
    int chunk;        /* samples per chunk */
    float *wt;        /* [f][k * k * c]: the kernel transposed */
    int *base;        /* [chunk * oh * ow]: where each patch row starts (valid) */
} conv_work;

static size_t align64(size_t bytes)
{
    return (bytes + 63) / 64 * 64;
}

static int pad_of(const layer *l)
{
    return l->same ? (l->kernel - 1) / 2 : 0;
}

static int patch_len(const layer *l)
{
    return l->kernel * l->kernel * l->in.c;
}

static long patch_rows(const layer *l, int n)
{
    return (long)n * l->out.h * l->out.w;
}

static int conv_build(layer *l, tr_error *err)
{
    const int k = l->kernel;
    if (l->units < 1 || l->units > 4096)
        return error_set(err, "layer %d: conv2d with %d filters (1 to 4096)", l->index + 1,
                         l->units);
    if (k < 1 || k > 64 || (l->same && k % 2 == 0))
        return error_set(err, "layer %d: conv2d kernel %d (1 to 64, odd with padding same)",
                         l->index + 1, k);
    if (!l->same && (k > l->in.h || k > l->in.w))
        return error_set(err, "layer %d: conv2d %dx%d on a %dx%d input", l->index + 1, k, k,
                         l->in.h, l->in.w);
    const int pad = pad_of(l);
    l->out = (tensor_shape){conv_out_side(l->in.h, k, pad), conv_out_side(l->in.w, k, pad),
                            l->units};
    l->n_tensors = 2;
    l->count[DENSE_W] = (size_t)patch_len(l) * (size_t)l->units;
    l->count[DENSE_B] = (size_t)l->units;
    return 0;
}

static void conv_encode(const layer *l, uint32_t *words)
{
    words[0] = (uint32_t)l->units;
    words[1] = (uint32_t)l->kernel;
    words[2] = (uint32_t)(l->same != 0);
    words[3] = (uint32_t)(l->relu != 0);
}

static int conv_decode(layer *l, const uint32_t *words, tr_error *err)
{
    if (words[0] < 1 || words[0] > 4096 || words[1] < 1 || words[1] > 64 || words[2] > 1 ||
        words[3] > 1)
        return error_set(err, "conv2d filters %u, kernel %u, padding %u, activation %u out "
                         "of range", words[0], words[1], words[2], words[3]);
    for (int k = 4; k < LAYER_HYPER_WORDS; k++)
        if (words[k])
            return error_set(err, "conv2d hyper-parameter word %d is %u, not 0", k, words[k]);
    l->units = (int)words[0];
    l->kernel = (int)words[1];
    l->same = (int)words[2];
    l->relu = (int)words[3];
    return 0;
}

static int chunk_samples(const layer *l, int max_n)
{
    const size_t sample = sizeof(float) * (size_t)patch_rows(l, 1) * (size_t)patch_len(l);
    const size_t fit = CHUNK_BYTES / sample;
    return fit < 1 ? 1 : fit < (size_t)max_n ? (int)fit : max_n;
}

static size_t conv_work_bytes(const layer *l, int max_n)
{
    const size_t rows = (size_t)patch_rows(l, chunk_samples(l, max_n));
    const size_t patches = sizeof(float) * rows * (size_t)patch_len(l);
    /* Padding valid reads its patch rows in place: it writes only their
     * gradients. */
    return align64(sizeof(conv_work)) + (l->same ? 2 : 1) * align64(patches) +
           align64(sizeof(float) * l->count[DENSE_W]) + align64(sizeof(int) * rows);
}

static void conv_work_init(const layer *l, void *mem, int max_n)
{
    conv_work *w = mem;
    w->chunk = chunk_samples(l, max_n);
    const size_t patches = sizeof(float) * (size_t)patch_rows(l, w->chunk) * (size_t)patch_len(l);
    char *p = (char *)mem + align64(sizeof *w);
    w->patches = l->same ? (float *)p : NULL;
    p += l->same ? align64(patches) : 0;
    w->d_patches = (float *)p;
    p += align64(patches);
    w->wt = (float *)p;
    p += align64(sizeof(float) * l->count[DENSE_W]);
    w->base = (int *)p;
    if (!l->same)
        conv_patch_bases(w->base, w->chunk, l->in.h, l->in.w, l->in.c, l->kernel);
}

/* Glorot-uniform with fan_in = k * k * c and fan_out = k * k * f, as Keras
 * computes them for a convolution kernel; zero biases. */
static void conv_init(const layer *l, float *params, uint64_t seed)
{
    const double fan_in = (double)patch_len(l), fan_out = (double)l->kernel * l->kernel * l->units;
    const float limit = (float)sqrt(6.0 / (fan_in + fan_out));
    rng r;
    rng_seed(&r, seed, RNG_STREAM_INIT + (uint64_t)l->index);
    float *wk = params + l->offset[DENSE_W];
    for (size_t j = 0; j < l->count[DENSE_W]; j++)
        wk[j] = (2.0f * rng_uniform(&r) - 1.0f) * limit;
    memset(params + l->offset[DENSE_B], 0, sizeof(float) * (size_t)l->units);
}

static void conv_forward(const layer *l, float *out, const layer_input *in, const float *params,
                         void *work, int n, const layer_pass *pass)
{
    (void)pass;
    conv_work *w = work;
    for (int s = 0; s < n; s += w->chunk) {
        const int ns = n - s < w->chunk ? n - s : w->chunk;
        const float *x = in->x + s * tensor_size(l->in), *wk = params + l->offset[DENSE_W];
        const float *b = params + l->offset[DENSE_B];
        float *y = out + s * tensor_size(l->out);
        if (!l->same) {
            conv2d_forward_valid(y, x, w->base, wk, b, ns, l->in.h, l->in.w, l->in.c,
                                 l->kernel, l->units, l->relu);
            continue;
        }
        conv_im2col(w->patches, x, ns, l->in.h, l->in.w, l->in.c, l->kernel, pad_of(l));
        dense_forward_small(y, w->patches, wk, b, (int)patch_rows(l, ns), patch_len(l),
                            l->units, l->relu);
    }
}

static void conv_backward(const layer *l, float *d_in, float *grad, float *d_out,
                          const float *in, const float *out, const float *params, void *work,
                          int n)
{
    conv_work *w = work;
    if (d_in)
        dense_transpose(w->wt, params + l->offset[DENSE_W], patch_len(l), l->units);
    for (int s = 0; s < n; s += w->chunk) {
        const int ns = n - s < w->chunk ? n - s : w->chunk;
        const long rows = patch_rows(l, ns);
        float *d = d_out + s * tensor_size(l->out);
        if (l->relu)
            dense_relu_backward(d, out + s * tensor_size(l->out), rows * l->units);
        const float *x = in + s * tensor_size(l->in);
        float *d_wk = grad + l->offset[DENSE_W], *d_b = grad + l->offset[DENSE_B];
        if (l->same) {
            conv_im2col(w->patches, x, ns, l->in.h, l->in.w, l->in.c, l->kernel, pad_of(l));
            dense_weight_gradient_small(d_wk, d_b, d, w->patches, (int)rows, patch_len(l),
                                        l->units, s > 0);
        } else {
            conv2d_weight_gradient_valid(d_wk, d_b, d, x, w->base, ns, l->in.h, l->in.w,
                                         l->in.c, l->kernel, l->units, s > 0);
        }
        if (!d_in)
            continue;
        dense_input_gradient_small(w->d_patches, d, w->wt, (int)rows, patch_len(l), l->units);
        conv_col2im(d_in + s * tensor_size(l->in), w->d_patches, ns, l->in.h, l->in.w,
                    l->in.c, l->kernel, pad_of(l));
    }
}

const layer_ops conv2d_layer_ops = {
    .name = "conv2d",
    .keras = "Conv2D",
    .build = conv_build,
    .encode = conv_encode,
    .decode = conv_decode,
    .work_bytes = conv_work_bytes,
    .work_init = conv_work_init,
    .init = conv_init,
    .forward = conv_forward,
    .backward = conv_backward,
};
