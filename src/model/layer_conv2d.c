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
#include <stdio.h>
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

/* The hyper-parameter words: filters, kernel side, padding (0 valid, 1
 * same), activation (0 none, 1 relu). */
static int filters(const tr_layer *l)
{
    return (int)l->hp[0];
}

static int kernel(const tr_layer *l)
{
    return (int)l->hp[1];
}

static int same(const tr_layer *l)
{
    return (int)l->hp[2];
}

static int relu(const tr_layer *l)
{
    return (int)l->hp[3];
}

static int pad_of(const tr_layer *l)
{
    return same(l) ? (kernel(l) - 1) / 2 : 0;
}

static int patch_len(const tr_layer *l)
{
    return kernel(l) * kernel(l) * l->in.c;
}

static long patch_rows(const tr_layer *l, int n)
{
    return (long)n * l->out.h * l->out.w;
}

static int conv_build(tr_layer *l, tr_error *err)
{
    const int k = kernel(l);
    if (filters(l) < 1 || filters(l) > 4096)
        return tr_error_set(err, "layer %d: conv2d with %d filters (1 to 4096)", l->index + 1,
                            filters(l));
    if (k < 1 || k > 64 || (same(l) && k % 2 == 0))
        return tr_error_set(err, "layer %d: conv2d kernel %d (1 to 64, odd with padding same)",
                            l->index + 1, k);
    if (!same(l) && (k > l->in.h || k > l->in.w))
        return tr_error_set(err, "layer %d: conv2d %dx%d on a %dx%d input", l->index + 1, k, k,
                            l->in.h, l->in.w);
    const int pad = pad_of(l);
    l->out = (tr_tensor_shape){conv_out_side(l->in.h, k, pad), conv_out_side(l->in.w, k, pad),
                            filters(l)};
    l->n_tensors = 2;
    l->count[DENSE_W] = (size_t)patch_len(l) * (size_t)filters(l);
    l->count[DENSE_B] = (size_t)filters(l);
    l->trainable[DENSE_W] = l->trainable[DENSE_B] = 1;
    return 0;
}

static const char *const activations[] = {"linear", "relu", "none", NULL};
static const char *const paddings[] = {"valid", "same", NULL};

static int conv_parse(const spec_item *it, uint32_t *hp, int *head, tr_error *err)
{
    (void)head;
    if (it->n_args < 2)
        return tr_error_set(err, "'%s': conv2d needs filters and a kernel size, as "
                            "conv2d(32,3,relu)", it->text);
    int choice[2] = {0, 0};
    if (tr_spec_whole(it, 0, 1, 4096, &hp[0], "filters", err) ||
        tr_spec_whole(it, 1, 1, 64, &hp[1], "kernel size", err) ||
        tr_spec_options(it, 2, (const char *const *const[]){activations, paddings}, 2, choice,
                        err))
        return -1;
    hp[2] = (uint32_t)choice[1];
    hp[3] = choice[0] == 1;
    return 0;
}

static void conv_format(const tr_layer *l, int last, char *buf, size_t size)
{
    (void)last;
    snprintf(buf, size, "conv2d(%d,%d%s%s)", filters(l), kernel(l), same(l) ? ",same" : "",
             relu(l) ? ",relu" : "");
}

static int conv_check(const uint32_t *words, tr_error *err)
{
    if (words[0] < 1 || words[0] > 4096 || words[1] < 1 || words[1] > 64 || words[2] > 1 ||
        words[3] > 1)
        return tr_error_set(err, "conv2d filters %u, kernel %u, padding %u, activation %u out "
                            "of range", words[0], words[1], words[2], words[3]);
    return 0;
}

static double conv_macs(const tr_layer *l)
{
    return (double)l->count[DENSE_W] * l->out.h * l->out.w;
}

static int chunk_samples(const tr_layer *l, int max_n)
{
    const size_t sample = sizeof(float) * (size_t)patch_rows(l, 1) * (size_t)patch_len(l);
    const size_t fit = CHUNK_BYTES / sample;
    return fit < 1 ? 1 : fit < (size_t)max_n ? (int)fit : max_n;
}

static size_t conv_work_bytes(const tr_layer *l, int max_n)
{
    const size_t rows = (size_t)patch_rows(l, chunk_samples(l, max_n));
    const size_t patches = sizeof(float) * rows * (size_t)patch_len(l);
    /* Padding valid reads its patch rows in place: it writes only their
     * gradients. */
    return align64(sizeof(conv_work)) + (same(l) ? 2 : 1) * align64(patches) +
           align64(sizeof(float) * l->count[DENSE_W]) + align64(sizeof(int) * rows);
}

static void conv_work_init(const tr_layer *l, void *mem, int max_n)
{
    conv_work *w = mem;
    w->chunk = chunk_samples(l, max_n);
    const size_t patches = sizeof(float) * (size_t)patch_rows(l, w->chunk) * (size_t)patch_len(l);
    char *p = (char *)mem + align64(sizeof *w);
    w->patches = same(l) ? (float *)p : NULL;
    p += same(l) ? align64(patches) : 0;
    w->d_patches = (float *)p;
    p += align64(patches);
    w->wt = (float *)p;
    p += align64(sizeof(float) * l->count[DENSE_W]);
    w->base = (int *)p;
    if (!same(l))
        tr_conv_patch_bases(w->base, w->chunk, l->in.h, l->in.w, l->in.c, kernel(l));
}

/* Glorot-uniform with fan_in = k * k * c and fan_out = k * k * f, as Keras
 * computes them for a convolution kernel; zero biases. */
static void conv_init(const tr_layer *l, float *params, uint64_t seed)
{
    const double fan_in = (double)patch_len(l), fan_out = (double)kernel(l) * kernel(l) * filters(l);
    const float limit = (float)sqrt(6.0 / (fan_in + fan_out));
    tr_rng r;
    tr_rng_seed(&r, seed, RNG_STREAM_INIT + (uint64_t)l->index);
    float *wk = params + l->offset[DENSE_W];
    for (size_t j = 0; j < l->count[DENSE_W]; j++)
        wk[j] = (2.0f * tr_rng_uniform(&r) - 1.0f) * limit;
    memset(params + l->offset[DENSE_B], 0, sizeof(float) * (size_t)filters(l));
}

static void conv_forward(const tr_layer *l, float *out, const tr_layer_input *in,
                         const float *params,
                         void *work, int n, const tr_layer_pass *pass)
{
    (void)pass;
    conv_work *w = work;
    for (int s = 0; s < n; s += w->chunk) {
        const int ns = n - s < w->chunk ? n - s : w->chunk;
        const float *x = in->x + s * tr_tensor_size(l->in), *wk = params + l->offset[DENSE_W];
        const float *b = params + l->offset[DENSE_B];
        float *y = out + s * tr_tensor_size(l->out);
        if (!same(l)) {
            tr_conv2d_forward_valid(y, x, w->base, wk, b, ns, l->in.h, l->in.w, l->in.c,
                                    kernel(l), filters(l), relu(l));
            continue;
        }
        tr_conv_im2col(w->patches, x, ns, l->in.h, l->in.w, l->in.c, kernel(l), pad_of(l));
        tr_dense_forward_small(y, w->patches, wk, b, (int)patch_rows(l, ns), patch_len(l),
                               filters(l), relu(l));
    }
}

static void conv_backward(const tr_layer *l, float *d_in, float *grad, float *d_out,
                          const float *in, const float *out, const float *params, void *work,
                          int n, const tr_layer_pass *pass)
{
    conv_work *w = work;
    /* A block that continues the one before finds its kernel transposed. */
    const int more = pass && pass->accumulate;
    if (d_in && !more)
        tr_dense_transpose(w->wt, params + l->offset[DENSE_W], patch_len(l), filters(l));
    for (int s = 0; s < n; s += w->chunk) {
        const int ns = n - s < w->chunk ? n - s : w->chunk;
        const long rows = patch_rows(l, ns);
        float *d = d_out + s * tr_tensor_size(l->out);
        if (relu(l) && !l->relu_by_next)
            tr_dense_relu_backward(d, out + s * tr_tensor_size(l->out), rows * filters(l));
        const float *x = in + s * tr_tensor_size(l->in);
        float *d_wk = grad + l->offset[DENSE_W], *d_b = grad + l->offset[DENSE_B];
        if (same(l)) {
            tr_conv_im2col(w->patches, x, ns, l->in.h, l->in.w, l->in.c, kernel(l), pad_of(l));
            tr_dense_weight_gradient_small(d_wk, d_b, d, w->patches, (int)rows, patch_len(l),
                                           filters(l), s > 0 || more);
        } else {
            tr_conv2d_weight_gradient_valid(d_wk, d_b, d, x, w->base, ns, l->in.h, l->in.w,
                                            l->in.c, kernel(l), filters(l), s > 0 || more);
        }
        if (!d_in)
            continue;
        tr_dense_input_gradient_small(w->d_patches, d, w->wt, (int)rows, patch_len(l), filters(l));
        tr_conv_col2im(d_in + s * tr_tensor_size(l->in), w->d_patches, ns, l->in.h, l->in.w,
                       l->in.c, kernel(l), pad_of(l));
    }
}

static void conv_export(const tr_layer *l, tr_tensor_shape order, layer_export *e)
{
    (void)order;
    const int k = kernel(l), pad = pad_of(l);
    export_module *m = tr_export_add(e, "Conv", "Conv2d(%d, %d, %d, padding=%d)", l->in.c,
                                     filters(l), k, pad);
    tr_export_attr_ints(m, "kernel_shape", 2, (const int64_t[]){k, k});
    tr_export_attr_ints(m, "pads", 4, (const int64_t[]){pad, pad, pad, pad});
    tr_export_attr_ints(m, "strides", 2, (const int64_t[]){1, 1});
    tr_export_param_add(m, "weight", DENSE_W, 4, (const int64_t[]){filters(l), l->in.c, k, k});
    tr_export_param_add(m, "bias", DENSE_B, 1, (const int64_t[]){filters(l)});
    if (relu(l))
        tr_export_add(e, "Relu", "ReLU()");
}

/* PyTorch's kernel is [f][c][k][k]; this one's [k][k][c][f]. */
static void conv_export_values(const tr_layer *l, const export_param *p, tr_tensor_shape order,
                               const float *params, float *out)
{
    (void)order;
    const float *w = params + l->offset[p->tensor];
    if (p->tensor == DENSE_B) {
        memcpy(out, w, sizeof(float) * l->count[DENSE_B]);
        return;
    }
    const int k = kernel(l), c = l->in.c, f = filters(l);
    for (int o = 0; o < f; o++)
        for (int ch = 0; ch < c; ch++)
            for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++)
                    *out++ = w[(((long)ky * k + kx) * c + ch) * f + o];
}

const layer_ops tr_conv2d_layer_ops = {
    .name = "conv2d",
    .keras = "Conv2D",
    .parse = conv_parse,
    .format = conv_format,
    .words = 4,
    .check = conv_check,
    .build = conv_build,
    .macs = conv_macs,
    .work_bytes = conv_work_bytes,
    .work_init = conv_work_init,
    .init = conv_init,
    .forward = conv_forward,
    .backward = conv_backward,
    .per_sample = 1,
    .ends_in_relu = relu,
    .export = conv_export,
    .export_values = conv_export_values,
};
