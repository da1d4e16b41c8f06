#include "conv.h"

#include <string.h>

#include "dense.h"
#include "simd.h"

/* Lane masks of vf: all ones where a comparison holds, else 0. */
typedef int vmask __attribute__((vector_size(VF_LEN * sizeof(int))));

void tr_conv_im2col(float *restrict patches, const float *restrict in, int n, int h, int w,
                    int c, int k, int pad)
{
    const int oh = conv_out_side(h, k, pad), ow = conv_out_side(w, k, pad);
    const size_t row = (size_t)k * (size_t)c;
    float *p = patches;
    for (int s = 0; s < n; s++) {
        const float *img = in + (size_t)s * (size_t)h * (size_t)w * (size_t)c;
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                for (int ky = 0; ky < k; ky++, p += row) {
                    const int iy = y + ky - pad;
                    const int x0 = x - pad;
                    if (iy < 0 || iy >= h) {
                        memset(p, 0, sizeof(float) * row);
                        continue;
                    }
                    /* The kernel row's k pixels are neighbours in the image:
                     * one copy, with zeros where it hangs over an edge. */
                    const int lo = x0 < 0 ? -x0 : 0;
                    const int hi = x0 + k > w ? (w - x0 > lo ? w - x0 : lo) : k;
                    const float *src = img + ((size_t)iy * (size_t)w + (size_t)(x0 + lo)) * (size_t)c;
                    float *dst = p + (size_t)lo * (size_t)c;
                    /* A plain loop: rows of a few floats, where a call to
                     * memcpy or memset costs more than the copy. */
                    for (int j = 0; j < lo * c; j++)
                        p[j] = 0.0f;
                    for (int j = 0; j < (hi - lo) * c; j++)
                        dst[j] = src[j];
                    for (int j = hi * c; j < k * c; j++)
                        p[j] = 0.0f;
                }
    }
}

void tr_conv_col2im(float *restrict d_in, const float *restrict d_patches, int n, int h, int w,
                    int c, int k, int pad)
{
    const int oh = conv_out_side(h, k, pad), ow = conv_out_side(w, k, pad);
    memset(d_in, 0, sizeof(float) * (size_t)n * (size_t)h * (size_t)w * (size_t)c);
    const float *p = d_patches;
    for (int s = 0; s < n; s++) {
        float *img = d_in + (size_t)s * (size_t)h * (size_t)w * (size_t)c;
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                for (int ky = 0; ky < k; ky++) {
                    const int iy = y + ky - pad;
                    for (int kx = 0; kx < k; kx++, p += c) {
                        const int ix = x + kx - pad;
                        if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                            continue;
                        float *dst = img + ((size_t)iy * (size_t)w + (size_t)ix) * (size_t)c;
                        for (int ch = 0; ch < c; ch++)
                            dst[ch] += p[ch];
                    }
                }
    }
}

void tr_conv2d_forward_ref(float *out, const float *in, const float *wk, const float *b, int n,
                           int h, int w, int c, int k, int pad, int f, int relu)
{
    const int oh = conv_out_side(h, k, pad), ow = conv_out_side(w, k, pad);
    for (int s = 0; s < n; s++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                for (int o = 0; o < f; o++) {
                    float acc = b[o];
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            const int iy = y + ky - pad, ix = x + kx - pad;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                                continue;
                            for (int ch = 0; ch < c; ch++)
                                acc += in[(((long)s * h + iy) * w + ix) * c + ch] *
                                       wk[(((long)ky * k + kx) * c + ch) * f + o];
                        }
                    out[(((long)s * oh + y) * ow + x) * f + o] = relu && acc < 0.0f ? 0.0f
                                                                                    : acc;
                }
}

void tr_conv2d_backward_ref(float *d_in, float *d_wk, float *d_b, const float *d_out,
                            const float *in, const float *wk, int n, int h, int w, int c, int k,
                            int pad, int f)
{
    const int oh = conv_out_side(h, k, pad), ow = conv_out_side(w, k, pad);
    memset(d_wk, 0, sizeof(float) * (size_t)k * (size_t)k * (size_t)c * (size_t)f);
    memset(d_b, 0, sizeof(float) * (size_t)f);
    if (d_in)
        memset(d_in, 0, sizeof(float) * (size_t)n * (size_t)h * (size_t)w * (size_t)c);
    for (int s = 0; s < n; s++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                for (int o = 0; o < f; o++) {
                    const float g = d_out[(((long)s * oh + y) * ow + x) * f + o];
                    d_b[o] += g;
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            const int iy = y + ky - pad, ix = x + kx - pad;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                                continue;
                            for (int ch = 0; ch < c; ch++) {
                                const long i = (((long)s * h + iy) * w + ix) * c + ch;
                                const long j = (((long)ky * k + kx) * c + ch) * f + o;
                                d_wk[j] += in[i] * g;
                                if (d_in)
                                    d_in[i] += wk[j] * g;
                            }
                        }
                }
}

void tr_maxpool_forward(float *restrict out, const float *restrict in, int n, int h, int w,
                        int c, int p)
{
    const int oh = h / p, ow = w / p;
    for (int s = 0; s < n; s++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                /* The window's first pixel, then the others in row-major
                 * order, over all channels at once (contiguous: vectors). */
                float *restrict o = out + (((long)s * oh + y) * ow + x) * c;
                const float *first = in + (((long)s * h + (long)y * p) * w + (long)x * p) * c;
                memcpy(o, first, sizeof(float) * (size_t)c);
                for (int py = 0; py < p; py++)
                    for (int px = py ? 0 : 1; px < p; px++) {
                        const float *restrict v = first + ((long)py * w + px) * c;
                        for (int ch = 0; ch < c; ch++)
                            o[ch] = v[ch] > o[ch] ? v[ch] : o[ch];
                    }
            }
}

void tr_maxpool_backward(float *restrict d_in, const float *restrict d_out,
                         const float *restrict in, const float *restrict out, int n, int h, int w,
                         int c, int p, int relu)
{
    const int oh = h / p, ow = w / p;
    for (int s = 0; s < n; s++) {
        float *img = d_in + (long)s * h * w * c;
        /* Rows and columns past the last whole window get no gradient. */
        for (int y = oh * p; y < h; y++)
            memset(img + (long)y * w * c, 0, sizeof(float) * (size_t)w * (size_t)c);
        for (int y = 0; y < oh * p; y++)
            for (int x = ow * p; x < w; x++)
                memset(img + ((long)y * w + x) * c, 0, sizeof(float) * (size_t)c);
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                const long o = (((long)s * oh + y) * ow + x) * c;
                const long first = (((long)s * h + (long)y * p) * w + (long)x * p) * c;
                for (int c0 = 0; c0 < c; c0 += VF_LEN) {
                    const int lanes = c - c0 < VF_LEN ? c - c0 : VF_LEN;
                    const vf max = vf_load_part(out + o + c0, lanes);
                    vmask grad = (vmask)vf_load_part(d_out + o + c0, lanes);
                    if (relu)
                        grad &= max > vf_splat(0.0f);
                    /* The channels whose maximum has been met, in row-major
                     * order: only its first position gets the gradient. */
                    vmask met = {0};
                    for (int py = 0; py < p; py++)
                        for (int px = 0; px < p; px++) {
                            const long at = first + ((long)py * w + px) * c + c0;
                            const vmask hit = (vf_load_part(in + at, lanes) == max) & ~met;
                            met |= hit;
                            vf_store_part(d_in + at, (vf)(grad & hit), lanes);
                        }
                }
            }
    }
}

/* The valid convolution as a product whose rows are read in place: output
 * pixel p's patch row is the k image rows of k * c floats starting at
 * in + base[p] + ky * w * c, for ky = 0 .. k - 1, so no patch rows are
 * written.  The sums run over the patch row in order, as the dense kernels'
 * do over tr_conv_im2col's rows: the same bits. */

/* Pixel p's patch row's first float, from in: base[p] for p < n * oh * ow. */
void tr_conv_patch_bases(int *base, int n, int h, int w, int c, int k)
{
    const int oh = h - k + 1, ow = w - k + 1;
    int p = 0;
    for (int s = 0; s < n; s++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                base[p++] = ((s * h + y) * w + x) * c;
}

/* The output sums of CONV_PIXELS pixels by up to CONV_VECTORS vectors of
 * filters (24 of AVX-512's 32 registers, 12 of AVX2's 16); a block of fewer
 * pixels or filters leaves the rest of its sums out. */
enum { CONV_PIXELS = 6, CONV_VECTORS = VF_REGS >= 32 ? 4 : 2 };

/* out[m][o .. o + nv*VF_LEN) for the np pixels whose patch rows start at
 * x[m], the last vector `lanes` wide.  Inlined with constant np and nv. */
static inline __attribute__((always_inline)) void
forward_pixels(float *restrict out, const float *const *x, const float *restrict wk,
               const float *restrict b, int np, int nv, int lanes, int k, int kc, int stride,
               int f, int relu)
{
    vf acc[CONV_PIXELS][CONV_VECTORS];
    for (int m = 0; m < np; m++)
        for (int v = 0; v < nv; v++)
            acc[m][v] = vf_load_part(b + v * VF_LEN, v == nv - 1 ? lanes : VF_LEN);
    for (int ky = 0; ky < k; ky++) {
        const float *restrict wr = wk + (long)ky * kc * f;
        const long at = (long)ky * stride;
        for (int r = 0; r < kc; r++) {
            vf wi[CONV_VECTORS];
            for (int v = 0; v < nv; v++)
                wi[v] = vf_load_part(wr + (long)r * f + v * VF_LEN, v == nv - 1 ? lanes : VF_LEN);
            for (int m = 0; m < np; m++) {
                const vf xm = vf_splat(x[m][at + r]);
                for (int v = 0; v < nv; v++)
                    acc[m][v] = vf_madd(xm, wi[v], acc[m][v]);
            }
        }
    }
    for (int m = 0; m < np; m++)
        for (int v = 0; v < nv; v++) {
            /* tr_dense_relu's x < 0 ? 0 : x, -0 and NaN kept, on the way out */
            if (relu)
                acc[m][v] = (vf)((vmask)acc[m][v] & ~(acc[m][v] < vf_splat(0.0f)));
            vf_store_part(out + (long)m * f + v * VF_LEN, acc[m][v], v == nv - 1 ? lanes : VF_LEN);
        }
}

void tr_conv2d_forward_valid(float *restrict out, const float *restrict in, const int *base,
                             const float *restrict wk, const float *restrict b, int n, int h,
                             int w, int c, int k, int f, int relu)
{
    const long pixels = (long)n * (h - k + 1) * (w - k + 1);
    const int kc = k * c, stride = w * c;
    long p = 0;
    const float *x[CONV_PIXELS];
#define PIXELS_CHUNK(o, nv, lanes)                                                      \
    forward_pixels(out + p * f + (o), x, wk + (o), b + (o), CONV_PIXELS, nv, lanes, k, kc,  \
                   stride, f, relu)
#define LAST_CHUNK(np, o, nv, lanes)                                                    \
    forward_pixels(out + p * f + (o), x, wk + (o), b + (o), np, nv, lanes, k, kc, stride, f, \
                   relu)
#define LAST_CHUNK_1(o, nv, lanes) LAST_CHUNK(1, o, nv, lanes)
#define LAST_CHUNK_2(o, nv, lanes) LAST_CHUNK(2, o, nv, lanes)
#define LAST_CHUNK_3(o, nv, lanes) LAST_CHUNK(3, o, nv, lanes)
#define LAST_CHUNK_4(o, nv, lanes) LAST_CHUNK(4, o, nv, lanes)
#define LAST_CHUNK_5(o, nv, lanes) LAST_CHUNK(5, o, nv, lanes)
    for (; pixels - p >= CONV_PIXELS; p += CONV_PIXELS) {
        for (int m = 0; m < CONV_PIXELS; m++)
            x[m] = in + base[p + m];
        FOR_OUTPUT_CHUNKS(f, CONV_VECTORS, PIXELS_CHUNK);
    }
    /* The last pixels as one block: alone, a pixel's few sums would wait on
     * the FMA latency. */
    const int left = (int)(pixels - p);
    for (int m = 0; m < left; m++)
        x[m] = in + base[p + m];
    _Static_assert(CONV_PIXELS == 6, "a case for each count of pixels");
    switch (left) {
    case 1: FOR_OUTPUT_CHUNKS(f, CONV_VECTORS, LAST_CHUNK_1); break;
    case 2: FOR_OUTPUT_CHUNKS(f, CONV_VECTORS, LAST_CHUNK_2); break;
    case 3: FOR_OUTPUT_CHUNKS(f, CONV_VECTORS, LAST_CHUNK_3); break;
    case 4: FOR_OUTPUT_CHUNKS(f, CONV_VECTORS, LAST_CHUNK_4); break;
    case 5: FOR_OUTPUT_CHUNKS(f, CONV_VECTORS, LAST_CHUNK_5); break;
    default: break;
    }
#undef PIXELS_CHUNK
#undef LAST_CHUNK
#undef LAST_CHUNK_1
#undef LAST_CHUNK_2
#undef LAST_CHUNK_3
#undef LAST_CHUNK_4
#undef LAST_CHUNK_5
}

/* The weight gradient's sums of GRAD_ROWS kernel rows by up to GRAD_VECTORS
 * vectors of filters (16 registers; 12 where there are only 16), each over
 * the pixels in pixel order.  Fewer than 12 sums leave the FMA units waiting
 * on their latency: 4 x 2 ran at half the speed of 8 x 2. */
enum { GRAD_ROWS = VF_REGS >= 32 ? 8 : 6, GRAD_VECTORS = 2 };

/* d_wk[j][o .. o + nv*VF_LEN) for the nr kernel rows j whose floats sit at
 * off[j] from each pixel's patch row start; added to d_wk when accumulate.
 * Inlined with constant nr and nv. */
static inline __attribute__((always_inline)) void
weight_rows(float *restrict d_wk, const float *restrict in, const int *restrict base,
            const long *off, const float *restrict d_out, long pixels, int nr, int nv,
            int lanes, int f, int accumulate)
{
    vf acc[GRAD_ROWS][GRAD_VECTORS];
    for (int j = 0; j < nr; j++)
        for (int v = 0; v < nv; v++)
            acc[j][v] = accumulate ? vf_load_part(d_wk + (long)j * f + v * VF_LEN,
                                                  v == nv - 1 ? lanes : VF_LEN)
                                   : vf_splat(0.0f);
    for (long p = 0; p < pixels; p++) {
        vf d[GRAD_VECTORS];
        for (int v = 0; v < nv; v++)
            d[v] = vf_load_part(d_out + p * f + v * VF_LEN, v == nv - 1 ? lanes : VF_LEN);
        const float *restrict x = in + base[p];
        for (int j = 0; j < nr; j++) {
            const vf xj = vf_splat(x[off[j]]);
            for (int v = 0; v < nv; v++)
                acc[j][v] = vf_madd(xj, d[v], acc[j][v]);
        }
    }
    for (int j = 0; j < nr; j++)
        for (int v = 0; v < nv; v++)
            vf_store_part(d_wk + (long)j * f + v * VF_LEN, acc[j][v], v == nv - 1 ? lanes : VF_LEN);
}

void tr_conv2d_weight_gradient_valid(float *restrict d_wk, float *restrict d_b,
                                     const float *restrict d_out, const float *restrict in,
                                     const int *base, int n, int h, int w, int c, int k, int f,
                                     int accumulate)
{
    const long pixels = (long)n * (h - k + 1) * (w - k + 1);
    const int kc = k * c, rows = k * kc;
    tr_dense_bias_gradient(d_b, d_out, (int)pixels, f, accumulate);
    long off[GRAD_ROWS];
    int j = 0;
#define ROWS_CHUNK(o, nv, lanes)                                                        \
    weight_rows(d_wk + (long)j * f + (o), in, base, off, d_out + (o), pixels, GRAD_ROWS, nv, \
                lanes, f, accumulate)
#define ROW_CHUNK(o, nv, lanes)                                                         \
    weight_rows(d_wk + (long)j * f + (o), in, base, off, d_out + (o), pixels, 1, nv, lanes, \
                f, accumulate)
    for (; rows - j >= GRAD_ROWS; j += GRAD_ROWS) {
        for (int q = 0; q < GRAD_ROWS; q++)
            off[q] = (long)((j + q) / kc) * w * c + (j + q) % kc;
        FOR_OUTPUT_CHUNKS(f, GRAD_VECTORS, ROWS_CHUNK);
    }
    for (; j < rows; j++) {
        off[0] = (long)(j / kc) * w * c + j % kc;
        FOR_OUTPUT_CHUNKS(f, GRAD_VECTORS, ROW_CHUNK);
    }
#undef ROWS_CHUNK
#undef ROW_CHUNK
}
