/* Conv2D: f filters of k x k over the input's channels, stride 1, padding
 * valid or same, bias, ReLU or none.  The kernel is [k][k][c][f], as Keras
 * stores it, so that an im2col row times the kernel is an output pixel: the
 * passes are the dense kernels on the block's patch rows (conv.h). */
#include <math.h>
#include <string.h>

#include "conv.h"
#include "dense.h"
#include "layer_kinds.h"
#include "rng.h"

typedef struct {
    float *patches;   /* [max_n * oh * ow][k * k * c] */
    float *d_patches; /* likewise, for the input gradient */
    float *wt;        /* [f][k * k * c]: the kernel transposed */
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

static size_t conv_work_bytes(const layer *l, int max_n)
{
    const size_t patches = sizeof(float) * (size_t)patch_rows(l, max_n) * (size_t)patch_len(l);
    return align64(sizeof(conv_work)) + 2 * align64(patches) +
           align64(sizeof(float) * l->count[DENSE_W]);
}

static void conv_work_init(const layer *l, void *mem, int max_n)
{
    conv_work *w = mem;
    const size_t patches = sizeof(float) * (size_t)patch_rows(l, max_n) * (size_t)patch_len(l);
    char *p = (char *)mem + align64(sizeof *w);
    w->patches = (float *)p;
    p += align64(patches);
    w->d_patches = (float *)p;
    p += align64(patches);
    w->wt = (float *)p;
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
    conv_im2col(w->patches, in->x, n, l->in.h, l->in.w, l->in.c, l->kernel, pad_of(l));
    dense_forward_small(out, w->patches, params + l->offset[DENSE_W],
                        params + l->offset[DENSE_B], (int)patch_rows(l, n), patch_len(l),
                        l->units, l->relu);
}

static void conv_backward(const layer *l, float *d_in, float *grad, float *d_out,
                          const float *in, const float *out, const float *params, void *work,
                          int n)
{
    (void)in;
    conv_work *w = work;
    const long rows = patch_rows(l, n);
    if (l->relu)
        dense_relu_backward(d_out, out, rows * l->units);
    dense_backward_small(d_in ? w->d_patches : NULL, grad + l->offset[DENSE_W],
                         grad + l->offset[DENSE_B], d_out, w->patches,
                         params + l->offset[DENSE_W], w->wt, (int)rows, patch_len(l), l->units);
    if (d_in)
        conv_col2im(d_in, w->d_patches, n, l->in.h, l->in.w, l->in.c, l->kernel, pad_of(l));
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
